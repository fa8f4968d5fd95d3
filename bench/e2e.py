"""End-to-end benchmark: packets in over HTTP → dispatcher → SMPP simulator → receipts → reports
into a callback sink, all durable on SQLite (WAL, synchronous=FULL), on this machine.

Four processes on 127.0.0.1: the platform (`cloudsms serve`, role all; with ``--split`` a
``--role api`` and a ``--role worker`` process on the same SQLite file), the SMSC simulator
(`cloudsms smsc-sim`, another process like a real carrier), a callback sink (a lean HTTP/1.1
server on a raw asyncio protocol — it was aiohttp.web, whose CPU competed with the platform's on
a small machine — that answers the UIP ANSWER and notes when each SMS_UID's report arrived), and
`wrk` sending unique packets.

It prints: accepted messages/s while loading, end-to-end messages/s (reports received over the
time from the first acceptance to the last report), the time from acceptance to report
(p50/p99), and the platform processes' CPU time (user + system, all threads) per message
reported, once for 1-recipient packets and once for 200-recipient packets.

    .venv/bin/python bench/e2e.py [--duration 10] [--connections 32] [--split]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from cloudsms.services.carrier import CarrierOperator
from cloudsms.services.operator import Operator
from cloudsms.storage.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from api import wrk_script
from machine import calibration

BIN = Path(sys.executable).parent

#: The callback sink: a real HTTP/1.1 server (keep-alive, Content-Length bodies) on a raw asyncio
#: protocol rather than aiohttp.web, so that on a 2-core machine its CPU is small next to the
#: platform's and the bench measures the platform. POST answers the UIP ANSWER (RESULT_CODE 1,
#: the packet's SERIAL) and notes when each SMS_UID's report first arrived; GET /stats counts
#: them, GET /stats?dump=1 lists them.
SINK = r"""
import asyncio, sys, time, orjson, uvloop
arrived = {}
def answer(serial):
    body = orjson.dumps({"METHOD": "SMS_PUSH_REPORT", "TYPE": "ANSWER", "SERIAL": serial,
                         "TIME": "", "RESULT_CODE": 1, "RESULT_DESC": "OK"})
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(body)) + body
ANSWERS = {}
class Sink(asyncio.Protocol):
    def connection_made(self, transport):
        self.t, self.buf = transport, b""
    def data_received(self, data):
        buf = self.buf + data
        out = []
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buf[:end]
            low = head.lower()
            i = low.find(b"\r\ncontent-length:")
            n = 0
            if i >= 0:
                j = low.find(b"\r\n", i + 2)
                n = int(low[i + 17 : j if j > 0 else None])
            if len(buf) < end + 4 + n:
                break
            body = buf[end + 4 : end + 4 + n]
            buf = buf[end + 4 + n :]
            if head.startswith(b"POST"):
                packet = orjson.loads(body)
                arrived.setdefault(packet["SMS_UID"], time.time())
                serial = packet["SERIAL"]
                reply = ANSWERS.get(serial)
                if reply is None:
                    reply = ANSWERS[serial] = answer(serial)
                out.append(reply)
            else:
                dump = b"dump=" in head.split(b"\r\n", 1)[0]
                stats = orjson.dumps(arrived if dump else {"count": len(arrived)})
                out.append(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           b"Content-Length: %d\r\n\r\n" % len(stats) + stats)
        self.buf = buf
        if out:
            self.t.write(b"".join(out))
async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Sink, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    await server.serve_forever()
uvloop.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"process {proc.args!r} died")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM in reverse start order, then wait (killing what does not stop within 30 s)."""
    for proc in reversed(procs):
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def seed(
    url: str,
    sim_port: int,
    sink_url: str | None,
    *,
    accounts: tuple[str, ...] = ("bench",),
    window: int = 100,
) -> str:
    """Route BENCH through one connector per simulator account (password "bench") to a customer
    "bench" whose reports go to ``sink_url`` (None: no callback); returns its AUTH_KEY."""
    store = Store.open(url)
    try:
        op = Operator(store, actor="bench")
        op.create_price_list("bench", "HKD")
        op.set_price("bench", "852", "0.05")
        op.create_route("BENCH")
        carrier = CarrierOperator(store)
        for account in accounts:
            carrier.add_connector(
                account, host="127.0.0.1", port=str(sim_port), system_id=account,
                password="bench", window=str(window),
            )  # fmt: skip
            carrier.add_rule("BENCH", account)
        customer = op.create_customer(
            "bench", currency="HKD", price_list="bench", balance="1000000000", callback_url=sink_url
        )
        op.grant_route("BENCH", "bench")
        op.update_settings("bench", max_backlog="100000000")
        return customer.auth_key
    finally:
        store.close()


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far, all threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sink_count(port: int) -> int:
    count: int = httpx.get(f"http://127.0.0.1:{port}/stats", timeout=10).json()["count"]
    return count


def run_case(
    recipients: int,
    connections: int,
    duration: int,
    workdir: Path,
    profile: str | None = None,
    split: bool = False,
    reports: int = 0,
    apis: int = 1,
) -> None:
    url = f"sqlite:///{workdir / f'e2e{recipients}.db'}"
    sim_port, sink_port, api_port = free_port(), free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        sim = subprocess.Popen(
            [
                str(BIN / "cloudsms"),
                "smsc-sim",
                "--port",
                str(sim_port),
                "--account",
                "bench:bench",
                "--quiet",
                "--record-limit",
                "0",
            ]
        )
        procs.append(sim)
        sink = subprocess.Popen([sys.executable, "-c", SINK, str(sink_port)])
        procs.append(sink)
        wait_port(sim_port, sim)
        wait_port(sink_port, sink)
        key = seed(url, sim_port, f"http://127.0.0.1:{sink_port}/dr")
        env = {
            **os.environ,
            "CLOUDSMS_DATABASE_URL": url,
            "CLOUDSMS_PORT": str(api_port),
            "CLOUDSMS_LOG_LEVEL": "warning",
            "CLOUDSMS_MAX_BACKLOG": "100000000",
        }
        platform: list[subprocess.Popen[bytes]] = []
        # --split: a worker (or, with --reports N, a dispatcher and N report pushers) beside
        # the API process, all on the same SQLite file.
        roles = ["dispatcher", *["reports"] * reports] if reports else ["worker"]
        for role in roles if split else []:
            worker_port = free_port()
            worker = subprocess.Popen(
                [str(BIN / "cloudsms"), "serve", "--role", role, "--port", str(worker_port)],
                env={**env, "CLOUDSMS_ADMIN_ENABLED": "false"},
            )
            procs.append(worker)
            platform.append(worker)
            wait_port(worker_port, worker)
        for i in range(apis if split else 1):  # several: one port, SO_REUSEPORT
            api = subprocess.Popen(
                [str(BIN / "cloudsms"), "serve",
                 *(["--role", "api"] if split else []), *(["--reuse-port"] if apis > 1 else [])],
                env={**env, "CLOUDSMS_ADMIN_ENABLED": "false"} if i else env,
            )  # fmt: skip
            procs.append(api)
            platform.append(api)
            wait_port(api_port, api)
        if profile:  # py-spy samples the platform until it stops (collapsed stacks)
            procs.insert(0, subprocess.Popen(
                [str(BIN / "py-spy"), "record", "--nonblocking", "--format", "raw", "-o",
                 f"{profile}.{recipients}", "-p", str(api.pid)],
                stdout=subprocess.DEVNULL,
            ))  # fmt: skip
        time.sleep(1.0)  # links bind
        script = workdir / f"e2e{recipients}.lua"
        script.write_text(wrk_script(key, recipients).replace('"BENCH"', '"BENCH"'))
        cpu_start = sum(process_cpu(p.pid) for p in platform)
        started = time.time()
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{duration}s",
                "-s",
                str(script),
                f"http://127.0.0.1:{api_port}/dave/io",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        load_end = time.time()
        packets = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        store = Store.open(url)
        accepted = store.count_messages()
        # Wait for the pipeline to drain: every accepted message reported.
        deadline = time.time() + 300
        last, last_change = -1, time.time()
        while time.time() < deadline:
            got = sink_count(sink_port)
            # Packets wrk gave up on at the end may still commit: count again.
            accepted = store.count_messages()
            if got >= accepted:
                break
            if got != last:
                last, last_change = got, time.time()
            elif time.time() - last_change > 20:
                break
            time.sleep(0.25)
        cpu = sum(process_cpu(p.pid) for p in platform) - cpu_start
        arrived: dict[str, float] = orjson.loads(
            httpx.get(f"http://127.0.0.1:{sink_port}/stats?dump=1", timeout=60).content
        )
        created = {m.sms_uid: m.created_ms / 1000 for m in store.list_messages(limit=10**7)}
        store.close()
        latencies = sorted(arrived[u] - created[u] for u in arrived if u in created)
        finished = max(arrived.values()) if arrived else load_end
        layout = (
            f"{apis} × api, {' + '.join(roles)} processes" if split else "one process (role all)"
        )
        print(
            f"{recipients}-recipient packets, {connections} connections, {duration}s of load,"
            f" {layout}:"
        )
        print(f"  accepted {accepted:,} messages ({packets * recipients:,.0f}/s while loading)")
        print(f"  reported {len(arrived):,} ({len(arrived) / max(accepted, 1):.1%})")
        print(
            f"  end to end: {len(arrived) / (finished - started):,.0f} messages/s "
            f"({finished - started:.1f} s from first packet to last report)"
        )
        print(
            f"  platform CPU: {cpu:.1f} s, {cpu / max(len(arrived), 1) * 1e6:,.0f} µs per message"
            " reported (accept + dispatch + receipt + report push)"
        )
        if latencies:
            p50 = statistics.median(latencies)
            p99 = latencies[int(len(latencies) * 0.99) - 1]
            print(f"  acceptance → report: p50 {p50 * 1000:,.0f} ms, p99 {p99 * 1000:,.0f} ms")
    finally:
        if profile and procs:  # py-spy writes its file on SIGINT
            procs[0].send_signal(signal.SIGINT)
            procs[0].wait(timeout=60)
        stop_all(procs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", choices=["1", "200"], default=None)
    parser.add_argument(
        "--profile", help="py-spy the platform: collapsed stacks to FILE.<recipients>"
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="the platform as a --role api and a --role worker process on the same SQLite file",
    )
    parser.add_argument(
        "--reports", type=int, default=0, help="with --split: a --role dispatcher process and"
        " this many --role reports processes instead of one --role worker",
    )  # fmt: skip
    parser.add_argument(
        "--apis", type=int, default=1, help="with --split: --role api processes (--reuse-port)",
    )  # fmt: skip
    args = parser.parse_args()
    print(calibration(), flush=True)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    workdir = Path(tempfile.mkdtemp(prefix="cloudsms-e2e-"))
    try:
        layout = {"split": args.split, "reports": args.reports, "apis": args.apis}
        if args.only in (None, "1"):
            run_case(1, args.connections, args.duration, workdir, args.profile, **layout)
        if args.only in (None, "200"):
            run_case(200, 8, args.duration, workdir, args.profile, **layout)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
