"""JSON in and out with the standard library, so the SDK needs nothing compiled.

The platform uses orjson; here a packet is a few hundred bytes and the stdlib is fast enough.
What the stdlib does differently is made strict again: output is compact UTF-8 without NaN;
input must be UTF-8 without NaN or Infinity (not JSON); and any failure, including nesting deep
enough to exhaust the recursion limit (``json`` raises RecursionError), is one ``ValueError``.
"""

from __future__ import annotations

import json
from typing import Any


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; ValueError for NaN/Infinity or text that is not valid Unicode."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def loads(data: bytes) -> Any:
    """Decode UTF-8 JSON; ValueError when the bytes are not that."""
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_not_json)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
