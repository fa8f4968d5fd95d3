"""Carrier-delivery benchmark: accepted → submitted over SMPP → receipt stored, messages/s.

Issue 3's figure, isolated from the HTTP API and from report pushing:

1. ``cloudsms serve --role api`` accepts a backlog of 200-recipient packets over HTTP (no
   worker runs, so nothing is dispatched yet), then stops;
2. ``cloudsms serve --role dispatcher`` starts against the simulator (``cloudsms smsc-sim``, another
   process, a receipt per message) and drains the backlog: claim, submit_sm, submit_sm_resp,
   deliver_sm receipt, receipt stored and matched, message final — all durable (SQLite WAL,
   synchronous=FULL, or PostgreSQL with ``--pg``);
3. the rate is read back from the store's own timestamps: messages made final divided by the
   span from the first submit to the last final state (acceptance is not in it: the backlog
   was accepted before the drain started), and the same over the middle 80 % of the final
   states (steady state, without start-up and tail).

Each final state enqueues its report in the same transaction (the outbox), as always; the
dispatcher role does not push reports (report pushing is measured by ``bench/e2e.py``).
``--role worker`` drains with the combined role instead, which also closes those reports (the
customer has no callback URL). The draining processes' CPU time and the simulator's are printed
too: the figure is CPU-bound, so compare runs at similar CPU per message.

    .venv/bin/python bench/pipeline.py [--messages 100000] [--role worker] [--pg]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
from sqlalchemy import text

from cloudsms.storage.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from e2e import free_port, seed, stop_all, wait_port
from machine import calibration
from scale import drop_pg, fresh_pg, serve

BIN = Path(sys.executable).parent
RECIPIENTS = 200


def load_backlog(url: str, key: str, messages: int) -> int:
    """Accept about ``messages`` messages with the API alone; returns how many were stored."""
    port = free_port()
    api = serve(url, "api", port)
    packets = max(1, messages // RECIPIENTS)
    template = {
        "METHOD": "SMS_SEND_REQUEST", "TYPE": "REQUEST", "AUTH_KEY": key, "ROUTE_ID": "BENCH",
        "VERSION": "2021-01-01", "SMS_CONTENT": "Your verification code is 123456.",
        "MULTI_MSISDN_LIST": [
            {"DEST_MSISDN": f"6{i:07d}", "COUNTRY_CODE": 852} for i in range(RECIPIENTS)
        ],
    }  # fmt: skip

    def send(first: int) -> None:
        with httpx.Client(timeout=60) as client:
            for n in range(first, packets, 4):
                body = {**template, "SERIAL": n % 65535 + 1, "TIME": f"p{n}"}
                answer = client.post(f"http://127.0.0.1:{port}/dave/io", content=orjson.dumps(body))
                if answer.json().get("RESULT_CODE") != 1:
                    raise SystemExit(f"packet refused: {answer.text[:200]}")

    try:
        wait_port(port, api)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(send, range(4)))
    finally:
        stop_all([api])
    store = Store.open(url)
    try:
        return store.count_messages()
    finally:
        store.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def final_count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(text("SELECT count(*) FROM messages WHERE final_ms IS NOT NULL")).scalar()
            or 0
        )


def drain(
    url: str, accepted: int, timeout_s: float, profile: str | None, workers: int = 1,
    sim_pid: int | None = None, role: str = "dispatcher",
) -> None:  # fmt: skip
    store = Store.open(url)
    sim_cpu_before = cpu_seconds(sim_pid) if sim_pid else 0.0
    procs = [serve(url, role, free_port()) for _ in range(workers)]
    worker = procs[0]
    spy = None
    if profile:  # py-spy samples the worker while it drains
        spy = subprocess.Popen(
            [
                str(BIN / "py-spy"),
                "record",
                "--nonblocking",
                *os.environ.get("PYSPY_ARGS", "").split(),
                "-o",
                profile,
                "-p",
                str(worker.pid),
                *(["--format", "raw"] if not profile.endswith(".svg") else []),
            ],
            stdout=subprocess.DEVNULL,
        )
    started = time.monotonic()
    try:
        last, last_change = -1, time.monotonic()
        while time.monotonic() - started < timeout_s:
            done = final_count(store)
            if done >= accepted:
                break
            if done != last:
                last, last_change = done, time.monotonic()
            elif time.monotonic() - last_change > 20:
                print(f"  stalled at {done:,} of {accepted:,}")
                break
            time.sleep(0.25)
        cpu_s = sum(cpu_seconds(p.pid) for p in procs)
        sim_cpu_s = cpu_seconds(sim_pid) - sim_cpu_before if sim_pid else 0.0
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        stop_all(procs)
    with store.engine.connect() as conn:
        submitted = sorted(
            r[0] for r in conn.execute(text("SELECT submitted_ms FROM messages "
                                            "WHERE submitted_ms IS NOT NULL"))
        )  # fmt: skip
        finals = sorted(
            r[0] for r in conn.execute(text("SELECT final_ms FROM messages "
                                            "WHERE final_ms IS NOT NULL"))
        )  # fmt: skip
        receipts = conn.execute(text("SELECT count(*) FROM receipts")).scalar() or 0
        states: dict[str, int] = {
            str(state): int(n)
            for state, n in conn.execute(
                text("SELECT state, count(*) FROM messages GROUP BY state")
            )
        }
    store.close()
    if not finals:
        raise SystemExit("no message reached a final state")
    span = (finals[-1] - submitted[0]) / 1000
    lo, hi = finals[len(finals) // 10], finals[len(finals) * 9 // 10]
    steady = (len(finals) * 8 // 10) / max((hi - lo) / 1000, 1e-3)
    print(f"  final: {len(finals):,} of {accepted:,} accepted; receipts stored: {receipts:,}")
    print(f"  states: {states}")
    print(
        f"  first submit → last final state: {len(finals) / span:,.0f} messages/s "
        f"({len(finals):,} messages made final in {span:.1f} s; each submitted over SMPP, its "
        "receipt stored and matched, durable; acceptance happened before and is not counted)"
    )
    print(f"  steady state (middle 80 % of the final states): {steady:,.0f} messages/s")
    marks = [(q, (finals[min(len(finals) - 1, int(len(finals) * q))] - submitted[0]) / 1000)
             for q in (0.1, 0.5, 0.9, 0.99, 1.0)]  # fmt: skip
    print("  final states reached after the first submit: "
          + ", ".join(f"{q:.0%} at {t:.1f} s" for q, t in marks))  # fmt: skip
    marks = [(q, (submitted[min(len(submitted) - 1, int(len(submitted) * q))] - submitted[0])
              / 1000) for q in (0.1, 0.5, 0.9, 0.99, 1.0)]  # fmt: skip
    print("  submits recorded after the first submit: "
          + ", ".join(f"{q:.0%} at {t:.1f} s" for q, t in marks))  # fmt: skip
    print(
        f"  worker CPU: {cpu_s:.1f} s in all = {cpu_s / len(finals) * 1e6:,.0f} µs per message "
        "(start-up included; the figure that holds when the machine is shared)"
    )
    if sim_pid:
        print(f"  simulator (carrier) CPU meanwhile: {sim_cpu_s:.1f} s "
              f"= {sim_cpu_s / len(finals) * 1e6:,.0f} µs per message")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (they share the connectors by lease: use with --binds)",
    )
    parser.add_argument(
        "--binds",
        type=int,
        default=1,
        help="connectors (binds) to the carrier, sharing the route; each has its own windows",
    )
    parser.add_argument(
        "--profile",
        help="py-spy profile of the worker: FILE.svg flame graph, else collapsed stacks",
    )
    parser.add_argument(
        "--role",
        choices=("dispatcher", "worker"),
        default="dispatcher",
        help="role of the draining processes: dispatcher (carrier side only, the default) or "
        "worker (also closes the reports the customer has no callback for)",
    )
    parser.add_argument(
        "--sim-deliver-window",
        type=int,
        default=100,
        help="receipts the simulator (the carrier) keeps outstanding per link",
    )
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    print(calibration(), flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="cloudsms-pipeline-"))
    pg_name = None
    sim_port = free_port()
    names = tuple("bench" if i == 0 else f"bench{i + 1}" for i in range(args.binds))
    accounts = [arg for name in names for arg in ("--account", f"{name}:bench")]
    sim = subprocess.Popen(
        [str(BIN / "cloudsms"), "smsc-sim", "--port", str(sim_port), *accounts,
         "--quiet", "--record-limit", "0", "--deliver-window", str(args.sim_deliver_window)],
    )  # fmt: skip
    try:
        if args.pg:
            url, pg_name = fresh_pg(args.pg_admin_url)
        else:
            url = f"sqlite:///{workdir / 'pipeline.db'}"
        wait_port(sim_port, sim)
        key = seed(url, sim_port, None, accounts=names, window=args.window)
        accepted = load_backlog(url, key, args.messages)
        engine = "PostgreSQL" if args.pg else "SQLite"
        print(f"{engine}, {args.binds} bind(s), window {args.window}: "
              f"backlog of {accepted:,} accepted messages")  # fmt: skip
        drain(
            url, accepted, timeout_s=600, profile=args.profile, workers=args.workers,
            sim_pid=sim.pid, role=args.role,
        )  # fmt: skip
    finally:
        stop_all([sim])
        if pg_name:
            drop_pg(args.pg_admin_url, pg_name)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
