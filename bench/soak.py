"""Soak: a steady load (e.g. 70 % of the measured end-to-end capacity) for a long time, watching
the platform process's memory (RSS) and its backlog.

Processes on 127.0.0.1: the platform (`cloudsms serve`, role all, SQLite by default), the SMSC
simulator and the callback sink of ``bench/e2e.py``. This process paces packets of
``--recipients`` numbers at ``--rate`` messages/s over keep-alive connections (the platform's
own lean HTTP/1.1 client, ``cloudsms.transport.http_client``, the one that pushes reports:
aiohttp cost ~190 µs of CPU per packet on the platform's two cores, so it could not offer 70 %
of the harness's capacity), samples the
platform's RSS (``/proc/PID/status``) and the pipeline's backlog (accepted − reported) every
``--every`` seconds, and prints RSS at the start of the load (after ``--warmup``) and at the end.

    .venv/bin/python bench/soak.py --rate 1400 --minutes 10 [--recipients 10]
        [--database-url postgresql://…] [--tracemalloc DIR | --memory DIR]

``--memory DIR`` writes, every ``--every`` seconds, where each platform process's memory is
(``DIR/memory-<pid>.txt``: anonymous RSS, Python's blocks and objects, SQLite's own allocations,
glibc's free lists), without tracing: at the full rate. ``--tracemalloc DIR`` traces the
platform's allocations (``bench/tracemalloc_probe``): every
``--every`` seconds after the warm-up, ``DIR/tracemalloc-<pid>.txt`` gets the allocation sites
that grew most since the end of the warm-up, for the API process and its worker child. Tracing
slows the processes: hold a lower rate than without it.

Flat memory means: RSS at the end within a few MB of RSS after warm-up, no steady climb in the
samples, and a backlog that stays small (the load is below capacity).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).parent))
from e2e import SINK, free_port, seed, sink_count, stop_all, wait_port

from cloudsms.transport.http_client import HttpClient, HttpClientError, Target

BIN = Path(sys.executable).parent


def rss_mb(pid: int) -> float:
    """RSS of ``pid`` and its descendants (``serve``'s worker child too), in MB."""
    total = 0.0
    for proc in family(pid):
        try:
            for line in Path(f"/proc/{proc}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def family(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    out = [pid]
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            out += family(int(child))
    return out


class Pacer:
    """Sends ``rate`` messages/s in packets of ``recipients``, from ``clients`` connections."""

    def __init__(self, port: int, key: str, rate: float, recipients: int, clients: int) -> None:
        self.port, self.key = port, key
        self.interval = recipients / rate * clients
        self.recipients, self.clients = recipients, clients
        self.sent = self.ok = self.failed = 0
        self._numbers = itertools.count(1)
        self._stop = asyncio.Event()

    async def run(self, seconds: float) -> None:
        client = HttpClient(max_per_origin=self.clients, connect_timeout_s=5, timeout_s=30)
        target = client.target(f"http://127.0.0.1:{self.port}/dave/io")
        tasks = [asyncio.create_task(self._client(i, client, target)) for i in range(self.clients)]
        await asyncio.sleep(seconds)
        self._stop.set()
        await asyncio.gather(*tasks)
        await client.close()

    async def _client(self, index: int, client: HttpClient, target: Target) -> None:
        serial = 0
        next_at = time.monotonic() + index * self.interval / self.clients
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            next_at += self.interval
            serial = serial % 65535 + 1
            numbers = [f"6{next(self._numbers) % 10_000_000:07d}" for _ in range(self.recipients)]
            body = orjson.dumps({
                "METHOD": "SMS_SEND_REQUEST", "TYPE": "REQUEST", "SERIAL": serial,
                "TIME": f"s{index}-{serial}-{time.monotonic_ns()}", "AUTH_KEY": self.key,
                "ROUTE_ID": "BENCH", "VERSION": "2021-01-01", "SMS_CONTENT": "soak test",
                "MULTI_MSISDN_LIST": [{"COUNTRY_CODE": 852, "DEST_MSISDN": n} for n in numbers],
            })  # fmt: skip
            try:
                answer = await client.post(target, body)
                reply = orjson.loads(answer.body) if answer.status == 200 else {}
            except (HttpClientError, orjson.JSONDecodeError):
                self.failed += 1
                continue
            self.sent += self.recipients
            if reply.get("RESULT_CODE") == 1:
                self.ok += self.recipients
            else:
                self.failed += 1


async def soak(args: argparse.Namespace, api_port: int, sink_port: int, key: str, pid: int) -> None:
    pacer = Pacer(api_port, key, args.rate, args.recipients, args.clients)
    total = args.minutes * 60
    load = asyncio.create_task(pacer.run(total))
    started = time.monotonic()
    baseline = None
    samples: list[float] = []
    print(f"platform pid {pid}: RSS {rss_mb(pid):.1f} MB before the load", flush=True)
    while not load.done():
        await asyncio.sleep(args.every)
        elapsed = time.monotonic() - started
        rss = rss_mb(pid)
        samples.append(rss)
        reported = await asyncio.to_thread(sink_count, sink_port)
        if baseline is None and elapsed >= args.warmup:
            baseline = rss
            print(f"after {elapsed:.0f} s of warm-up: RSS {rss:.1f} MB (the baseline)", flush=True)
        print(
            f"{elapsed:6.0f} s  RSS {rss:7.1f} MB  accepted {pacer.ok:>10,}  reported "
            f"{reported:>10,}  backlog {pacer.ok - reported:>7,}  ({pacer.ok / elapsed:,.0f}/s)",
            flush=True,
        )
    await load
    end = rss_mb(pid)
    print(
        f"\n{args.minutes:g} min at {args.rate:g} messages/s target: {pacer.ok:,} accepted "
        f"({pacer.ok / total:,.0f}/s), {pacer.failed} failed packets"
    )
    print(f"RSS: {baseline or samples[0]:.1f} MB after warm-up → {end:.1f} MB at the end "
          f"(max {max(samples):.1f} MB)")  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        reported = await asyncio.to_thread(sink_count, sink_port)
        if reported >= pacer.ok:
            break
        await asyncio.sleep(0.5)
    print(f"reported {reported:,} of {pacer.ok:,} after the load stopped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, required=True, help="messages/s to hold")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--recipients", type=int, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--every", type=float, default=30, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=60)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--tracemalloc",
        metavar="DIR",
        default="",
        help="write allocation growth by site to DIR (see the docstring)",
    )
    parser.add_argument(
        "--memory",
        metavar="DIR",
        default="",
        help="write where each platform process's memory is to DIR, untraced (see the docstring)",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cloudsms-soak-"))
    db = args.database_url or f"sqlite:///{workdir / 'soak.db'}"
    sim_port, sink_port, api_port = free_port(), free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen([
            str(BIN / "cloudsms"), "smsc-sim", "--port", str(sim_port), "--account",
            "bench:bench", "--quiet", "--record-limit", "0",
        ]))  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, "-c", SINK, str(sink_port)]))
        wait_port(sim_port, procs[0])
        wait_port(sink_port, procs[1])
        key = seed(db, sim_port, f"http://127.0.0.1:{sink_port}/dr")
        env = {
            **os.environ, "CLOUDSMS_DATABASE_URL": db, "CLOUDSMS_PORT": str(api_port),
            "CLOUDSMS_LOG_LEVEL": "warning", "CLOUDSMS_ADMIN_ENABLED": "false",
            "CLOUDSMS_MAX_BACKLOG": "100000000",
        }  # fmt: skip
        if args.tracemalloc or args.memory:
            out_dir = args.memory or args.tracemalloc
            os.makedirs(out_dir, exist_ok=True)
            probe = str(Path(__file__).parent / "tracemalloc_probe")
            mode = "MEMORY" if args.memory else "TRACEMALLOC"
            env.update({
                "PYTHONPATH": os.pathsep.join(p for p in (probe, env.get("PYTHONPATH")) if p),
                f"CLOUDSMS_BENCH_{mode}_DIR": os.path.abspath(out_dir),
                "CLOUDSMS_BENCH_TRACEMALLOC_WARMUP": str(args.warmup),
                "CLOUDSMS_BENCH_TRACEMALLOC_EVERY": str(args.every),
            })  # fmt: skip
        platform = subprocess.Popen([str(BIN / "cloudsms"), "serve"], env=env)
        procs.append(platform)
        wait_port(api_port, platform)
        time.sleep(1.5)
        asyncio.run(soak(args, api_port, sink_port, key, platform.pid))
    finally:
        stop_all(procs)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
