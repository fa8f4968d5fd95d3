"""How fast this machine is right now, printed by the benchmarks beside their figures.

The machine kind is shared: the same code measured ~2× apart a few hours later
(``bench/store_dispatch.py`` 72 → 139 µs per message with no change to the store, 2026-11-25
20:40 → 22:36 UTC; bench/README.md). A figure is
only comparable with another taken at a similar calibration, so each benchmark prints this line:
a fixed pure-Python loop (what the platform's CPU-bound work scales with), the latency of a
4 KiB write + fsync (what every durable commit waits for), and the CPU a message costs its sender
when the receiving process is asleep and must be woken, against when it is already awake.

Why the last one: on this virtual machine waking a process on the other core costs the waker
several times what the same message costs when the peer is awake (2026-12-07, this probe:
14–25 µs of CPU per exchange one at a time against 4–8 µs in bursts of 16; over loopback TCP
37 against 9). The gateway's processes, the load generator, the simulator and the sink pass
every message between them, so a day with costly wake-ups is a slow day for every gateway
(bench/README.md, 2026-12-07 14:17 UTC).
"""

from __future__ import annotations

import os
import socket
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


def exchange_cpu_us(sockets: int, rounds: int) -> float:
    """The sender's CPU µs per exchange with a child process over ``sockets`` socket pairs: a
    message on each, then each answer, ``rounds`` times. With one socket the child sleeps
    between messages (every message wakes it); with many it is woken once per burst."""
    pairs = [socket.socketpair() for _ in range(sockets)]
    child = os.fork()
    if child == 0:  # the peer: answer every message, sleeping in recv when there is none
        try:
            for _ in range(rounds):
                for _, theirs in pairs:
                    theirs.recv(512)
                    theirs.send(b"a" * 100)
        finally:
            os._exit(0)
    before = time.process_time()
    for _ in range(rounds):
        for mine, _ in pairs:
            mine.send(b"m" * 300)
        for mine, _ in pairs:
            mine.recv(512)
    spent = time.process_time() - before
    os.waitpid(child, 0)
    for a, b in pairs:
        a.close()
        b.close()
    return spent / (sockets * rounds) * 1e6


def calibration(where: str | None = None) -> str:
    return (
        f"machine: {os.cpu_count()} cores, Python loop of 5M additions {python_loop_s():.2f} s,"
        f" fsync p50 {fsync_ms(where):.2f} ms, CPU per message to a sleeping peer"
        f" {exchange_cpu_us(1, 4000):.0f} µs, in bursts of 16 {exchange_cpu_us(16, 250):.0f} µs"
    )


if __name__ == "__main__":
    print(calibration())
