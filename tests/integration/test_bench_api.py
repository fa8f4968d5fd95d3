"""bench/api.py counts accepted packets from the answers, not from wrk's requests/s.

A customer limited to 100 packets/s is driven by the benchmark's own wrk run against the real
UIP endpoint: most answers are Busy. The figure the benchmark reports as accepted must be the OK
answers — which every stored row backs — not every answer wrk read.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from needs import unavailable

from cloudsms.storage.store import Store

BENCH_API = Path(__file__).resolve().parents[2] / "bench" / "api.py"
CONNECTIONS = 8


def bench_api() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_api", BENCH_API)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def test_accepted_rate_counts_ok_answers_only(
    make_server: Callable[..., Any], database_url: str, tmp_path: Path
) -> None:
    if shutil.which("wrk") is None:
        unavailable("wrk is not installed (make system-deps)")
    bench = bench_api()
    key = bench.seed(database_url)
    server = make_server(customer_packets_per_s=100)
    server.wait_config(lambda: bool(server.platform.config.current.snapshot.customers_by_key))
    store: Store = server.platform.store

    run = bench.run_wrk(server.port, key, 1, 1, CONNECTIONS, tmp_path)
    stored = store.count_messages()

    assert run.answers > 3 * run.ok_packets, "the rate limit did not make wrk see Busy"
    assert 0 < run.ok_packets == run.ok_messages
    # Every OK answer is a stored row; a few more rows are packets wrk sent but stopped
    # reading before their answer came (one per connection at most).
    assert run.ok_messages <= stored <= run.ok_messages + CONNECTIONS
    assert "answered OK" in bench.check_stored(run, stored, CONNECTIONS, 1)
    with pytest.raises(SystemExit, match="were answered OK"):  # a lost OK is reported
        bench.check_stored(run, run.ok_messages - 1, CONNECTIONS, 1)
