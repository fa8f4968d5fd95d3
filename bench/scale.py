"""Scale-out benchmark: end-to-end messages/s for 1, 2 and 4 platform processes on PostgreSQL,
and for 1, 2 and 3 processes on one SQLite file, on this machine.

Each configuration gets a fresh database, the SMSC simulator (`cloudsms smsc-sim`, its own
process, two accounts) and the callback sink of ``bench/e2e.py``; the route shares traffic
equally between two connectors (one per account), so two workers each own one. ``wrk`` sends
unique packets for ``--duration`` seconds; the figure is reports received / (last report −
first packet): the sustained rate of the whole pipeline (accept → claim → submit → receipt →
report push), whatever stage is the slowest.

Configurations (processes of ``cloudsms serve``):

* ``sqlite``: 1 process, role all (the default deployment);
* ``sqlite-2``: 1 ``--role api`` + 1 ``--role worker`` on the same SQLite file;
* ``sqlite-3``: 1 ``--role api`` + 1 ``--role dispatcher`` + 1 ``--role reports``;
* ``pg-1``: 1 process, role all;
* ``pg-2``: 1 ``--role api`` + 1 ``--role worker``;
* ``pg-3``: 1 ``--role api`` + 1 ``--role dispatcher`` + 1 ``--role reports``;
* ``pg-4``: 2 ``--role api`` (``--reuse-port``, one port) + 2 ``--role worker``.

    .venv/bin/python bench/scale.py [--duration 15] [--connections 32] [--recipients 10]
        [--only sqlite,sqlite-2,sqlite-3,pg-1,pg-2,pg-3,pg-4]

PostgreSQL: the server at 127.0.0.1:5432 (user postgres), or ``--pg-admin-url``.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from cloudsms.storage.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from api import wrk_script
from e2e import SINK, free_port, seed, sink_count, stop_all, wait_port
from machine import calibration

BIN = Path(sys.executable).parent
#: The processes of each configuration, by role (``cloudsms serve --role``).
CONFIGS = {
    "sqlite": ("all",),
    "sqlite-2": ("api", "worker"),
    "sqlite-3": ("api", "dispatcher", "reports"),
    "pg-1": ("all",),
    "pg-2": ("api", "worker"),
    "pg-3": ("api", "dispatcher", "reports"),
    "pg-4": ("api", "api", "worker", "worker"),
}


def fresh_pg(admin_url: str) -> tuple[str, str]:
    name = f"cloudsms_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin_url.rpartition('/')[0]}/{name}", name


def drop_pg(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def serve(url: str, role: str, port: int, *, reuse_port: bool = False) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CLOUDSMS_DATABASE_URL": url,
        "CLOUDSMS_PORT": str(port),
        "CLOUDSMS_ROLE": role,
        "CLOUDSMS_LOG_LEVEL": "warning",
        "CLOUDSMS_MAX_BACKLOG": "100000000",
        "CLOUDSMS_ADMIN_ENABLED": "false",
    }
    args = [str(BIN / "cloudsms"), "serve", *(["--reuse-port"] if reuse_port else [])]
    return subprocess.Popen(args, env=env)


def run_config(
    name: str, url: str, recipients: int, connections: int, duration: int, workdir: Path
) -> float:
    roles = CONFIGS[name]
    n_api = roles.count("api")
    n_worker = sum(1 for role in roles if role in ("worker", "dispatcher"))
    sim_port, sink_port, api_port = free_port(), free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        sim = subprocess.Popen([
            str(BIN / "cloudsms"), "smsc-sim", "--port", str(sim_port), "--account",
            "bench1:bench", "--account", "bench2:bench", "--quiet", "--record-limit", "0",
        ])  # fmt: skip
        procs.append(sim)
        sink = subprocess.Popen([sys.executable, "-c", SINK, str(sink_port)])
        procs.append(sink)
        wait_port(sim_port, sim)
        wait_port(sink_port, sink)
        key = seed(url, sim_port, f"http://127.0.0.1:{sink_port}/dr", accounts=("bench1", "bench2"))
        for role in sorted(roles, key=lambda r: r in ("all", "api")):  # the API last
            if role in ("all", "api"):
                procs.append(serve(url, role, api_port, reuse_port=n_api > 1))
            else:
                procs.append(serve(url, role, free_port()))
        wait_port(api_port, procs[-1])
        time.sleep(3.0 if n_worker > 1 else 1.5)  # links bind; two workers split the connectors
        script = workdir / f"{name}.lua"
        # Unique content per packet: identical packets would be replays (answered, not stored).
        unique = "Your code is ' .. tid .. '-' .. counter .. '."
        # (and ``tid`` must be the global that setup() sets per thread, not a local shadowing it)
        lua = wrk_script(key, recipients).replace("local tid = 0", "tid = 0")
        script.write_text(lua.replace("Your verification code is 123456.", unique))
        started = time.time()
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "-s", str(script),
             f"http://127.0.0.1:{api_port}/dave/io"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        packets = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        store = Store.open(url)
        last, last_change = -1, time.time()
        finished = time.time()
        while time.time() - started < duration + 600:
            got = sink_count(sink_port)
            # Packets wrk gave up on at the end may still commit: count each time.
            accepted = store.count_messages()
            if got != last:
                last, last_change, finished = got, time.time(), time.time()
            if got >= accepted or time.time() - last_change > 20:
                break
            time.sleep(0.2)
        store.close()
        rate = last / (finished - started)
        print(
            f"{name:8} {' + '.join(roles)}: accepted {accepted:,} "
            f"({packets * recipients:,.0f}/s while loading), reported {last:,} "
            f"({last / max(accepted, 1):.1%}); end to end {rate:,.0f} messages/s "
            f"({finished - started:.1f} s)",
            flush=True,
        )
        return rate
    finally:
        stop_all(procs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--recipients", type=int, default=10)
    parser.add_argument("--only", default=",".join(CONFIGS))
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    print(calibration(), flush=True)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install wrk")
    workdir = Path(tempfile.mkdtemp(prefix="cloudsms-scale-"))
    print(f"{os.cpu_count()} cores; {args.recipients}-recipient packets, {args.connections} "
          f"connections, {args.duration} s of load per configuration", flush=True)  # fmt: skip
    results: dict[str, float] = {}
    try:
        for name in args.only.split(","):
            if name.startswith("sqlite"):
                results[name] = run_config(
                    name, f"sqlite:///{workdir / f'{name}.db'}", args.recipients,
                    args.connections, args.duration, workdir,
                )  # fmt: skip
                continue
            url, db = fresh_pg(args.pg_admin_url)
            try:
                results[name] = run_config(
                    name, url, args.recipients, args.connections, args.duration, workdir
                )
            finally:
                drop_pg(args.pg_admin_url, db)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    best = max(results, key=results.__getitem__)
    print(f"best: {best} at {results[best]:,.0f} messages/s end to end")


if __name__ == "__main__":
    main()
