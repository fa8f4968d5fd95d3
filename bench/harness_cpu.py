"""The shared harness's figures with the CPU of every cloudsms process counted.

``../shared/anchors/bench.py`` counts the CPU of the processes it starts. ``cloudsms serve`` on
two cores runs its worker as a child process (``cloudsms.runtime.layout``), which the harness
lists among "foreign processes" instead: its ``cpu_gateway_cores`` and the CPU per message
printed by ``vs-kannel.sh`` leave the worker out. This script reads a results folder and prints,
per repetition and as medians, the figures with the child's CPU added back.

    .venv/bin/python bench/harness_cpu.py /tmp/vk1      # the folder vs-kannel.sh printed
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

#: A process is the gateway's when its command line runs this virtualenv's Python (the one
#: running this script) with ``-m cloudsms serve``: another checkout's tests may run meanwhile.
GATEWAY_PREFIX = str(Path(sys.executable).parent)
GATEWAY_COMMAND = "-m cloudsms serve"


def corrected(result: dict[str, Any]) -> dict[str, float]:
    """accepted/s, p50/p99, e2e msgs/s, gateway cores (child included) and µs per message."""
    window = result["window_s"]
    cores = float(result["cpu_gateway_cores"])
    children = [
        p
        for p in result.get("foreign_processes", {}).get("top", [])
        if p["name"].startswith(GATEWAY_PREFIX) and GATEWAY_COMMAND in p["name"]
    ]
    cores += sum(p["cpu_s"] for p in children) / window
    e2e = float(result["e2e_msgs_per_s"] or 0)
    lat = result["http"]["lat_ms"]
    return {
        "accepted_per_s": float(result["http"]["accepted_per_s"]),
        "p50_ms": float(lat.get("p50", 0)),
        "p99_ms": float(lat.get("p99", 0)),
        "e2e_per_s": e2e,
        "cores": cores,
        "us_per_msg": 1e6 * cores / e2e if e2e else float("nan"),
        "children": float(len(children)),
    }


def main(folder: str) -> None:
    rows: dict[str, list[dict[str, float]]] = {}
    for path in sorted(Path(folder).glob("*-r*/rep1/result.json")):
        system = path.parent.parent.name.rsplit("-r", 1)[0]
        figures = corrected(json.loads(path.read_text()))
        rows.setdefault(system, []).append(figures)
        print(
            f"{path.parent.parent.name:14} accepted/s {figures['accepted_per_s']:6.0f}"
            f"  p50/p99 {figures['p50_ms']:5.1f}/{figures['p99_ms']:5.1f} ms"
            f"  e2e {figures['e2e_per_s']:6.0f} msg/s  {figures['cores']:.2f} cores"
            f" ({figures['children']:.0f} child)  {figures['us_per_msg']:4.0f} µs/msg"
        )
    print("\n| system | reps | accepted/s | p50 / p99 ms | e2e msg/s | cores (all) | µs/msg |")
    print("|---|---|---|---|---|---|---|")
    medians: dict[str, float] = {}
    for system, figs in rows.items():

        def med(key: str, figs: list[dict[str, float]] = figs) -> float:
            return statistics.median(f[key] for f in figs)

        medians[system] = med("e2e_per_s")
        print(
            f"| {system} | {len(figs)} | {med('accepted_per_s'):.0f} | {med('p50_ms'):.1f} /"
            f" {med('p99_ms'):.1f} | {med('e2e_per_s'):.0f} | {med('cores'):.2f} |"
            f" {med('us_per_msg'):.0f} |"
        )
    if "cloudsms" in medians and medians.get("kannel"):
        ratio = medians["cloudsms"] / medians["kannel"]
        print(f"\nratio cloudsms / Kannel, end to end: {ratio:.2f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
