"""How fast this machine is right now, printed by the benchmarks beside their figures.

The machine kind is shared: the same code measured ~2× apart a few hours later
(``bench/store_dispatch.py`` 72 → 139 µs per message with no change to the store, 2026-11-25
20:40 → 22:36 UTC; bench/README.md). A figure is
only comparable with another taken at a similar calibration, so each benchmark prints this line:
a fixed pure-Python loop (what the platform's CPU-bound work scales with) and the latency of a
4 KiB write + fsync (what every durable commit waits for).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time


def python_loop_s(n: int = 5_000_000) -> float:
    """Seconds for ``n`` additions in a Python loop (best of three)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(n):
            total += i
        best = min(best, time.perf_counter() - started)
    return best


def fsync_ms(where: str | None = None, rounds: int = 30) -> float:
    """Median milliseconds of a 4 KiB write + fsync in ``where`` (the benchmark's work dir)."""
    fd, path = tempfile.mkstemp(dir=where)
    try:
        times = []
        for _ in range(rounds):
            os.write(fd, b"x" * 4096)
            started = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000
    finally:
        os.close(fd)
        os.unlink(path)


def calibration(where: str | None = None) -> str:
    return (
        f"machine: {os.cpu_count()} cores, Python loop of 5M additions {python_loop_s():.2f} s,"
        f" fsync p50 {fsync_ms(where):.2f} ms"
    )


if __name__ == "__main__":
    print(calibration())
