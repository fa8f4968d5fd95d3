"""UIP API benchmark: accepted packets/s, recipients/s and latency at a fixed rate, durable.

Starts `cloudsms serve --role api` on a fresh SQLite file (WAL, synchronous=FULL, group commit)
in its own process, seeds a customer through the operator service layer, then drives the server
from other processes:

* throughput: `wrk` (Debian package `wrk`) with a Lua script that makes every packet unique
  (SERIAL and TIME change per request, so the replay cache never answers for the store) and
  reads every answer: only answers with the top-level RESULT_CODE 1 (OK) count as accepted
  packets, and their non-empty SMS_UIDs as accepted messages. wrk's own Requests/sec counts
  every answer — Busy, refusals, HTTP 503 — and is printed beside it, never as "accepted";
* latency: an asyncio client sending at a fixed rate, reporting p50/p99/max.

Afterwards it counts the stored messages: at least every accepted message must be stored (an OK
is only sent after commit), and at most the packets still in flight when wrk stopped (whose
answers it never read: one per connection) may add more. Anything else is reported as a failure.

    .venv/bin/python bench/api.py [--duration 10] [--connections 64] [--rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from cloudsms.services.carrier import CarrierOperator
from cloudsms.services.operator import Operator
from cloudsms.storage.store import Store

CLOUDSMS = str(Path(sys.executable).with_name("cloudsms"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def seed(url: str) -> str:
    store = Store.open(url)
    try:
        op = Operator(store, actor="bench")
        op.create_price_list("bench", "HKD")
        op.set_price("bench", "852", "0.05")
        op.create_route("BENCH")
        # A carrier rule, so messages are accepted (not LOCAL_REJECTED for want of a carrier);
        # the server runs the API role only, so nothing is dispatched during the measurement.
        carrier = CarrierOperator(store)
        carrier.add_connector("sim", host="127.0.0.1", port="2775", system_id="x", password="x")
        carrier.add_rule("BENCH", "sim")
        customer = op.create_customer(
            "bench", currency="HKD", price_list="bench", balance="1000000000"
        )
        op.grant_route("BENCH", "bench")
        op.update_settings("bench", max_backlog="100000000")
        return customer.auth_key
    finally:
        store.close()


def start(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CLOUDSMS_DATABASE_URL": url,
        "CLOUDSMS_PORT": str(port),
        "CLOUDSMS_LOG_LEVEL": "warning",
        "CLOUDSMS_MAX_BACKLOG": "100000000",
        "CLOUDSMS_ROLE": "api",
        "CLOUDSMS_ADMIN_ENABLED": "false",
    }
    proc = subprocess.Popen([CLOUDSMS, "serve"], env=env)
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start")


#: Read by run_wrk from the script's done(): totals over wrk's threads.
_COUNTS = re.compile(r"CLOUDSMS answers=(\d+) ok_packets=(\d+) ok_messages=(\d+) duration_us=(\d+)")


def wrk_script(key: str, recipients: int) -> str:
    numbers = ",".join(
        f'{{"DEST_MSISDN":"6{i:07d}","COUNTRY_CODE":852}}' for i in range(recipients)
    )
    return textwrap.dedent(f"""
        local counter = 0
        local threads = {{}}
        function setup(thread)
          table.insert(threads, thread)
          thread:set("tid", #threads)
        end
        function init(args)
          counter = 0
          answers, ok_packets, ok_messages = 0, 0, 0
        end
        wrk.method = "POST"
        wrk.headers["Content-Type"] = "application/json"
        request = function()
          counter = counter + 1
          local body = '{{"METHOD":"SMS_SEND_REQUEST","TYPE":"REQUEST","SERIAL":' ..
            (counter % 65535 + 1) .. ',"TIME":"t' .. tid .. '-' .. counter .. '",' ..
            '"AUTH_KEY":"{key}","ROUTE_ID":"BENCH","VERSION":"2021-01-01",' ..
            '"SMS_CONTENT":"Your verification code is 123456.",' ..
            '"MULTI_MSISDN_LIST":[{numbers}]}}'
          return wrk.format(nil, nil, nil, body)
        end
        -- The first RESULT_CODE of an ANSWER is the top level one (it precedes DETAIL_LIST).
        response = function(status, headers, body)
          answers = answers + 1
          if status == 200 and body:match('"RESULT_CODE":(%d+)') == "1" then
            ok_packets = ok_packets + 1
            for _ in body:gmatch('"SMS_UID":"[0-9A-Z]') do ok_messages = ok_messages + 1 end
          end
        end
        function done(summary, latency, requests)
          local a, p, m = 0, 0, 0
          for _, thread in ipairs(threads) do
            a = a + thread:get("answers")
            p = p + thread:get("ok_packets")
            m = m + thread:get("ok_messages")
          end
          io.write(string.format(
            "CLOUDSMS answers=%d ok_packets=%d ok_messages=%d duration_us=%d\\n",
            a, p, m, summary.duration))
        end
    """)


@dataclass(frozen=True)
class WrkRun:
    """One wrk run, counted from the answers it read."""

    answers: int
    ok_packets: int
    ok_messages: int
    seconds: float

    @property
    def ok_packets_per_s(self) -> float:
        return self.ok_packets / self.seconds

    @property
    def ok_messages_per_s(self) -> float:
        return self.ok_messages / self.seconds


def run_wrk(
    port: int, key: str, recipients: int, duration: int, connections: int, workdir: Path
) -> WrkRun:
    script = workdir / f"send{recipients}.lua"
    script.write_text(wrk_script(key, recipients))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/dave/io",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counts = _COUNTS.search(out)
    if counts is None:
        raise SystemExit(f"wrk printed no answer counts:\n{out}")
    answers, ok_packets, ok_messages, duration_us = (int(g) for g in counts.groups())
    run = WrkRun(answers, ok_packets, ok_messages, duration_us / 1e6)
    latency = re.search(r"99%\s+(\S+)", out)
    print(
        f"  wrk: {answers / run.seconds:,.0f} answers/s, of which {run.ok_packets_per_s:,.0f} "
        f"OK packets/s ({answers - ok_packets:,} answers not OK: Busy, refusals, HTTP errors); "
        f"p99 under saturation {latency.group(1) if latency else '?'}"
    )
    return run


def check_stored(run: WrkRun, stored: int, connections: int, recipients: int) -> str:
    """What the store holds against what was answered OK; exits on a contradiction."""
    in_flight = connections * recipients  # packets sent but not answered when wrk stopped
    if not run.ok_messages <= stored <= run.ok_messages + in_flight:
        raise SystemExit(
            f"stored {stored:,} messages, but {run.ok_messages:,} were answered OK "
            f"(and at most {in_flight:,} more were in flight when wrk stopped)"
        )
    return (
        f"stored {stored:,} messages = {run.ok_messages:,} answered OK "
        f"+ {stored - run.ok_messages:,} whose answer wrk did not read before it stopped"
    )


async def fixed_rate(port: int, key: str, rate: int, duration: int) -> list[float]:
    """Send at ``rate`` packets/s (open loop) and return each packet's latency in seconds."""
    import aiohttp

    url = f"http://127.0.0.1:{port}/dave/io"
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            nonlocal errors
            body = orjson.dumps(
                {
                    "METHOD": "SMS_SEND_REQUEST",
                    "TYPE": "REQUEST",
                    "SERIAL": i % 65535 + 1,
                    "TIME": f"lat-{i}",
                    "AUTH_KEY": key,
                    "ROUTE_ID": "BENCH",
                    "VERSION": "2021-01-01",
                    "SMS_CONTENT": "latency probe",
                    "MULTI_MSISDN_LIST": [{"DEST_MSISDN": "67000011", "COUNTRY_CODE": 852}],
                }
            )
            t0 = time.perf_counter()
            async with session.post(url, data=body) as response:
                payload = await response.read()
            latencies.append(time.perf_counter() - t0)
            if orjson.loads(payload)["RESULT_CODE"] != 1:
                errors += 1

        tasks = []
        start = time.perf_counter()
        for i in range(rate * duration):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    if errors:
        print(f"  {errors} packets not OK during the latency run")
    return latencies


def count_messages(url: str) -> int:
    store = Store.open(url)
    try:
        return store.count_messages()
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    workdir = Path(tempfile.mkdtemp(prefix="cloudsms-bench-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.db'}"
    key = seed(url)
    port = free_port()
    proc = start(url, port)
    try:
        print(f"store: {url.split('@')[-1]}")
        print(f"fixed rate {args.rate}/s for {args.duration}s, 1-recipient packets:")
        lat = sorted(asyncio.run(fixed_rate(port, key, args.rate, args.duration)))
        p50 = statistics.median(lat) * 1000
        p99 = lat[int(len(lat) * 0.99) - 1] * 1000
        print(
            f"  p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {lat[-1] * 1000:.2f} ms "
            f"({len(lat)} packets)"
        )
        print(f"1-recipient packets, {args.connections} connections, {args.duration}s:")
        before = count_messages(url)
        single = run_wrk(port, key, 1, args.duration, args.connections, workdir)
        print("  " + check_stored(single, count_messages(url) - before, args.connections, 1))
        print(f"200-recipient packets, 16 connections, {args.duration}s:")
        before = count_messages(url)
        bulk = run_wrk(port, key, 200, args.duration, 16, workdir)
        print(f"  = {bulk.ok_messages_per_s:,.0f} accepted recipients/s")
        print("  " + check_stored(bulk, count_messages(url) - before, 16, 200))
        print("\nsummary (OK answers only; every one of them stored):")
        print(f"  accepted 1-recipient packets/s   {single.ok_packets_per_s:,.0f}")
        print(f"  accepted recipients/s (200/pkt)  {bulk.ok_messages_per_s:,.0f}")
        print(f"  p50/p99 at {args.rate}/s            {p50:.2f} / {p99:.2f} ms")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
