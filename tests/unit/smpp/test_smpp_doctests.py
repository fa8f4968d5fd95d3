"""The usage examples in the SMPP modules' docstrings are tested."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from cloudsms.smpp import codec, pdu, receipt, tlv


@pytest.mark.parametrize("module", [codec, pdu, receipt, tlv], ids=lambda m: m.__name__)
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_no_io_or_clock_imports_in_the_protocol_layer() -> None:
    import ast
    from pathlib import Path

    forbidden = {"asyncio", "socket", "time", "logging", "selectors", "threading"}
    for path in Path(codec.__file__).parent.glob("*.py"):
        if path.name == "encoding.py":  # another engineer's module
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not {n.split(".")[0] for n in names} & forbidden, (path.name, names)
