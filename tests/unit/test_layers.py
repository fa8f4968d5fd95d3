"""The packages stack in one direction: each imports only from the layers below it.

    smpp → transport → simulator → domain → storage → services → workers | api | admin
         → runtime → cli

The top-level modules (``config``, ``exceptions``, ``logging``, ``metrics``, ``periodic``,
``roles``…) are the floor: anyone may import them and they import only each other. Siblings of
one layer (workers, api, admin) do not import each other. The walk reads every module's imports
with ``ast`` (those inside functions and ``TYPE_CHECKING`` blocks too), so a lazy import does not
hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cloudsms

ROOT = Path(cloudsms.__file__).parent

#: Package → its layer; a package may import from lower layers and from itself only.
LAYERS = {
    "smpp": 1,
    "transport": 2,
    "simulator": 3,
    "domain": 4,
    "storage": 5,
    "services": 6,
    "workers": 7,
    "api": 7,
    "admin": 7,
    "runtime": 8,
    "cli": 9,
}
#: Top-level modules and packages outside the stack: the floor, and the two entry points.
FLOOR = 0
ENTRY = {"__main__": 10, "client": FLOOR}


def layer_of(unit: str) -> int:
    if unit in LAYERS:
        return LAYERS[unit]
    if unit in ENTRY:
        return ENTRY[unit]
    return FLOOR


def unit_of(module: str) -> str | None:
    """``cloudsms.api.uip`` → ``api``; ``cloudsms.config`` → ``config``; None outside cloudsms."""
    parts = module.split(".")
    if parts[0] != "cloudsms":
        return None
    return parts[1] if len(parts) > 1 else ""


def imports(path: Path) -> set[str]:
    """Every ``cloudsms`` module ``path`` imports (``from cloudsms import x`` counts as x)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "cloudsms":
                found.update(f"cloudsms.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return {name for name in found if name.split(".")[0] == "cloudsms"}


def edges() -> dict[tuple[str, str], list[str]]:
    """(importing unit, imported unit) → the modules where it happens."""
    seen: dict[tuple[str, str], list[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        rel = path.relative_to(ROOT)
        source = rel.parts[0].removesuffix(".py")
        for module in imports(path):
            target = unit_of(module)
            if target and target != source:
                seen.setdefault((source, target), []).append(f"{rel} → {module}")
    return seen


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(LAYERS) | set(ENTRY), packages - set(LAYERS) - set(ENTRY)


def test_imports_go_down_only() -> None:
    wrong = [
        where
        for (source, target), places in edges().items()
        if layer_of(target) >= layer_of(source)
        and not (layer_of(source) == layer_of(target) == FLOOR)
        for where in places
    ]
    assert not wrong, "imports from the same or a higher layer:\n" + "\n".join(wrong)


def test_no_cycle_between_units() -> None:
    graph: dict[str, set[str]] = {}
    for source, target in edges():
        graph.setdefault(source, set()).add(target)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(unit for unit in graph if reaches(unit, unit, {unit}))
    assert not cycles, f"units in an import cycle: {cycles}"


def test_workers_import_nothing_from_api_and_api_nothing_from_the_simulator() -> None:
    """Lower in the stack, so allowed by the layers, but the UIP endpoint runs no carrier."""
    found = edges()
    assert ("workers", "api") not in found
    assert ("api", "simulator") not in found


def test_the_walk_sees_lazy_imports() -> None:
    """The walk is not blind: the CLI's lazy import of the runtime is an edge."""
    assert ("cli", "runtime") in edges()
