"""The platform split into processes by role, on one database (docs/operations.md §1–2).

* One SQLite file, ``--role api`` + ``--role worker``: their writers take turns on the
  database's ``-writelock`` (cloudsms.storage.write_lock) while clients load the API and the
  worker submits, stores receipts and pushes reports; meanwhile an operator changes the
  configuration from a third process. No process may log "database is locked".
* ``--role dispatcher`` + two ``--role reports`` (+ api), on SQLite and on PostgreSQL, one reports
  process killed mid-load.

Every SMS_UID answered OK must be stored (no recipient twice), DELIVERED, reach the carrier
exactly once (submits counted at the simulator) and be reported — exactly once where no process
died, and twice only for reports the killed process had pushed (pushes counted at the sink).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_crash_pipeline import (
    SETTLE_S,
    Load,
    check_carrier,
    check_reports,
    check_store,
    describe,
    free_port,
    seed,
    start_platform,
    stop,
    wait_reported,
    wait_settled,
)
from test_end_to_end import CallbackSink, SimulatorThread
from test_scale_out import owners

from cloudsms.storage.store import Store

OPERATOR = """
import sys
from cloudsms.services.operator import Operator
from cloudsms.storage.store import Store
store = Store.open(sys.argv[1], migrate=False)
op = Operator(store, actor="test")
for i in range(40):
    op.create_price_list(f"during-load-{i}", "HKD")
store.close()
"""


def test_api_and_worker_processes_share_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cloudsms.db'}"
    logs = [tmp_path / "worker.log", tmp_path / "api.log"]
    with CallbackSink() as sink, SimulatorThread(accounts={"c1": "secret"}) as smsc:
        seeded = seed(url, smsc.sim.port, sink.url, ["c1"])
        procs = []
        try:
            procs.append(start_platform(url, free_port(), logs[0], role="worker"))
            api_port = free_port()
            procs.append(start_platform(url, api_port, logs[1], role="api"))
            api = f"http://127.0.0.1:{api_port}/dave/io"
            with Load([api], seeded.auth_key, seeded.route, clients=8) as load:
                load.wait_acked(500, timeout=30)
                operator = subprocess.run(
                    [sys.executable, "-c", OPERATOR, url], capture_output=True, text=True,
                    timeout=60,
                )  # fmt: skip
                load.wait_acked(len(load.acked) + 1500, timeout=60)
            acked = dict(load.acked)
            missing = wait_reported(sink, set(acked), timeout=90)
            wait_settled(url)
        finally:
            for proc in procs:
                stop(proc)
    assert operator.returncode == 0, operator.stderr[-2000:]
    assert missing == set(), f"{len(missing)} never reported: {describe(url, missing)}"
    check_store(url, acked)
    assert check_carrier(smsc, acked) == 0  # nothing crashed: each sent exactly once
    assert check_reports(sink) == 0  # and each reported exactly once
    for log in logs:
        assert "database is locked" not in log.read_text()


def test_dispatcher_and_reports_processes_split_the_worker(
    database_url: str, tmp_path: Path
) -> None:
    """``--role dispatcher`` runs the carrier side only, ``--role reports`` pushes the reports:
    four processes on one SQLite file (api, dispatcher, two reports processes). One reports
    process is killed with SIGKILL mid-load while it holds claims; with a 600 s report lease,
    the survivor still pushes everything at once (the claims carry the dead process's worker id,
    and its worker lease runs out in 5 s)."""
    url = database_url
    with CallbackSink() as sink, SimulatorThread(accounts={"c1": "secret"}) as smsc:
        seeded = seed(url, smsc.sim.port, sink.url, ["c1"])
        procs = []
        try:
            dispatcher = start_platform(url, free_port(), tmp_path / "dispatcher.log",
                                        role="dispatcher")  # fmt: skip
            reporters = [
                start_platform(url, free_port(), tmp_path / f"reports{i}.log", role="reports",
                               report_lease_s=600, report_push_timeout_s=3)
                for i in range(2)
            ]  # fmt: skip
            procs.extend([dispatcher, *reporters])
            api_port = free_port()
            procs.append(start_platform(url, api_port, tmp_path / "api.log", role="api"))
            roles = worker_roles(url)
            assert roles == {dispatcher.pid: "dispatcher", **{r.pid: "reports" for r in reporters}}
            api = f"http://127.0.0.1:{api_port}/dave/io"
            with Load([api], seeded.auth_key, seeded.route, clients=8) as load:
                load.wait_acked(1000, timeout=30)
                os.kill(reporters[0].pid, signal.SIGKILL)
                reporters[0].wait(timeout=10)
                killed = time.monotonic()
                fault_over = killed + SETTLE_S
                load.wait_acked(len(load.acked) + 1000, timeout=60)
            acked = dict(load.acked)
            missing = wait_reported(sink, set(acked), timeout=90)
            wait_settled(url)
            drained = time.monotonic() - killed
        finally:
            for proc in procs:
                stop(proc)
    assert missing == set(), f"{len(missing)} never reported: {describe(url, missing)}"
    assert drained < 60  # not after the 600 s report lease
    check_store(url, acked)
    assert check_carrier(smsc, acked) == 0  # the dispatcher did not die: each sent once
    check_reports(sink, fault_over)  # twice only what the dead process had pushed
    owner = owners(url)
    assert set(owner.values()) <= {None}  # every lease ended with its process


def worker_roles(url: str) -> dict[int, str]:
    """pid → role of the live registered workers."""
    store = Store.open(url, migrate=False)
    try:
        return {w.pid: w.role for w in store.list_workers(live_only=True)}
    finally:
        store.close()
