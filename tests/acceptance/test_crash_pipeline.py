"""Crashes under sustained load, end to end: kill -9 of the platform, restart of PostgreSQL.

The platform runs as real processes (``cloudsms serve``); clients send packets over HTTP without
pause, the built-in SMSC simulator (in this process) takes the submits and returns receipts, a
callback sink takes the reports. In the middle of it all, the platform is killed with SIGKILL
(or the database restarted). Then, for every SMS_UID a client read in an OK answer:

* it is stored, for the number it was sent to, and no recipient is stored twice (every
  recipient of the load has a number of its own, so rows are counted per number: counted per
  SMS_UID, the primary key, they could never show a duplicate);
* it reached the carrier — submits counted at the simulator, per number — at most twice, and
  twice only if the first submit came before the fault was over (it was in flight at the
  crash: the documented window of the platform's link queues plus the carrier window);
* its final report (DELIVERED) reached the customer's callback — pushes counted at the sink,
  per SMS_UID — at most twice, and twice only if the first push came before the fault was over
  (the process that pushed it died before it recorded the customer's answer).

Each test prints its figures (messages, recovery time, duplicates) on the ``-s`` output.
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from needs import unavailable
from seed import Seeded, bump, seed_customer
from sqlalchemy import func, select, update
from test_end_to_end import CallbackSink, SimulatorThread

from cloudsms.storage import tables
from cloudsms.storage.store import Store

CLOUDSMS = str(Path(sys.executable).with_name("cloudsms"))
#: Connector window in these tests; a crash may resend at most what a link holds: its queue
#: (4 × window) and its window of submits in flight.
WINDOW = 50
IN_FLIGHT_BOUND = 5 * WINDOW
#: A fault is over this long after the dead process was reaped (or the database was back): what
#: it had already written to a socket is read by then by the simulator's and the sink's threads
#: (which share this process's GIL with the load). Re-sending needs the dead worker's lease to
#: run out (5 s) or a restart (> 1 s), so nothing sent twice by a survivor hides in this margin.
SETTLE_S = 1.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_platform(
    url: str, port: int, log: Path, *, role: str = "all", reuse_port: bool = False,
    **settings: Any,
) -> subprocess.Popen[bytes]:  # fmt: skip
    """``cloudsms serve`` as a process; returns once /ready answers (or raises)."""
    env = {
        **os.environ,
        "CLOUDSMS_DATABASE_URL": url,
        "CLOUDSMS_PORT": str(port),
        "CLOUDSMS_ROLE": role,
        "CLOUDSMS_ADMIN_ENABLED": "false",
        "CLOUDSMS_LOG_LEVEL": "warning",
        "CLOUDSMS_CONFIG_POLL_S": "0.2",
        "CLOUDSMS_REPORT_RETRY_BASE_S": "0.5",
        "CLOUDSMS_REPORT_RETRY_MAX_DELAY_S": "2",
        # Reports claimed by a process that is then killed go out again after this lease.
        "CLOUDSMS_REPORT_PUSH_TIMEOUT_S": "3",
        "CLOUDSMS_REPORT_LEASE_S": "10",
        **{f"CLOUDSMS_{k.upper()}": str(v) for k, v in settings.items()},
    }
    args = [CLOUDSMS, "serve", *(["--reuse-port"] if reuse_port else [])]
    with log.open("ab") as err:
        proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{role} process died: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("platform did not become ready")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class Load:
    """Clients sending packets of ``recipients`` unique numbers, without pause, from a thread.

    ``acked`` maps each SMS_UID answered OK to its destination number. A packet whose answer
    never came (the server died) promised nothing; clients go on trying until stopped.
    """

    def __init__(self, urls: list[str], key: str, route: str, *, clients: int = 8,
                 recipients: int = 5) -> None:  # fmt: skip
        self.urls, self.key, self.route = urls, key, route
        self.clients, self.recipients = clients, recipients
        self.acked: dict[str, str] = {}
        self.errors = 0
        self._numbers = iter(range(1, 10_000_000))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def wait_acked(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.acked) >= count, f"only {len(self.acked)} messages accepted"

    async def _run(self) -> None:
        await asyncio.gather(*(self._client(i) for i in range(self.clients)))

    async def _client(self, index: int) -> None:
        url = self.urls[index % len(self.urls)]
        serial = 0
        async with httpx.AsyncClient(timeout=10) as client:
            while not self._stop.is_set():
                serial = serial % 65535 + 1
                numbers = [f"6{next(self._numbers):07d}" for _ in range(self.recipients)]
                body = orjson.dumps({
                    "METHOD": "SMS_SEND_REQUEST", "TYPE": "REQUEST", "SERIAL": serial,
                    "TIME": f"c{index}-{serial}", "AUTH_KEY": self.key, "ROUTE_ID": self.route,
                    "VERSION": "2021-01-01", "SMS_CONTENT": "crash test",
                    "MULTI_MSISDN_LIST": [
                        {"COUNTRY_CODE": 852, "DEST_MSISDN": n} for n in numbers
                    ],
                })  # fmt: skip
                try:
                    response = await client.post(url, content=body)
                except httpx.TransportError:
                    self.errors += 1
                    await asyncio.sleep(0.05)
                    continue
                answer = orjson.loads(response.content)
                if answer.get("RESULT_CODE") == 1:
                    for number, detail in zip(numbers, answer["DETAIL_LIST"], strict=True):
                        if detail["SMS_UID"]:
                            self.acked[detail["SMS_UID"]] = "852" + number


def seed(url: str, smsc_port: int, sink_url: str, accounts: list[str]) -> Seeded:
    """A customer whose route shares traffic equally over one connector per SMSC account."""
    store = Store.open(url)
    try:
        seeded = seed_customer(store.engine, balance_micros=10**13, with_carrier=False,
                               callback_url=sink_url)  # fmt: skip
        now = int(time.time() * 1000)
        with store.engine.begin() as conn:
            route_id = conn.execute(
                select(tables.routes.c.id).where(tables.routes.c.name == seeded.route)
            ).scalar_one()
            for account in accounts:
                connector_id = conn.execute(
                    tables.connectors.insert().values(
                        name=f"smsc-{account}", host="127.0.0.1", port=smsc_port,
                        system_id=account, password="secret", system_type="", bind_mode="trx",
                        window=WINDOW, throughput=0, enquire_link_s=5, response_timeout_s=2,
                        reconnect_max_s=1, long_mode="udh8", data_codings="0,8", dest_ton=1,
                        dest_npi=1, id_mode="as_is", enabled=True, created_ms=now,
                        updated_ms=now,
                    )
                ).inserted_primary_key[0]  # fmt: skip
                conn.execute(
                    tables.route_rules.insert().values(
                        route_id=route_id,
                        prefix="",
                        connector_id=connector_id,
                        priority=0,
                        weight=1,
                    )
                )
            conn.execute(
                update(tables.customers)
                .where(tables.customers.c.id == seeded.customer_id)
                .values(max_backlog=10_000_000)
            )
        bump(store.engine)
        return seeded
    finally:
        store.close()


def submits_per_number(smsc: SimulatorThread) -> tuple[collections.Counter[str], dict[str, float]]:
    """Every submit the carrier received (answered or not), by destination; and when the first
    submit to each destination arrived (time.monotonic())."""
    counts: collections.Counter[str] = collections.Counter()
    first: dict[str, float] = {}
    for segment in list(smsc.sim.segments):
        counts[segment.destination_addr] += 1
        first.setdefault(segment.destination_addr, segment.at)
    return counts, first


def wait_reported(sink: CallbackSink, uids: set[str], timeout: float) -> set[str]:
    """SMS_UIDs of ``uids`` still without a final (DELIVERED) report after ``timeout``."""
    deadline = time.monotonic() + timeout
    missing = set(uids)
    seen = 0
    while missing and time.monotonic() < deadline:
        reports = sink.reports[seen:]
        seen += len(reports)
        for report in reports:
            if report["SMS_RESULT_LIST"][0]["SMS_STATE"] == 2:
                missing.discard(report["SMS_UID"])
        time.sleep(0.1)
    return missing


#: States of a message still waiting for its carrier or its receipt.
_PENDING = ("accepted", "queued", "submitted")


def wait_settled(url: str, timeout: float = 30.0) -> None:
    """Wait (up to ``timeout``) until no stored message waits for its carrier or its receipt.

    A packet committed whose answer the load never read (the load stopped with it in flight, or
    the platform died before answering) is not in ``acked`` but is stored, so it is sent and
    reported after the acknowledged ones; :func:`check_store` wants it final too. A dead
    worker's claims come back after its lease (about 5 s), hence the margin.
    """
    deadline = time.monotonic() + timeout
    store = Store.open(url)
    try:
        while time.monotonic() < deadline:
            with store.engine.connect() as conn:
                pending = conn.execute(
                    select(func.count()).where(tables.messages.c.state.in_(_PENDING))
                ).scalar_one()
            if pending == 0:
                return
            time.sleep(0.1)
    finally:
        store.close()


def describe(url: str, uids: set[str]) -> str:
    """States of the given messages (for a failure message)."""
    store = Store.open(url)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(
                select(tables.messages.c.state, tables.messages.c.detail, func.count())
                .where(tables.messages.c.sms_uid.in_(sorted(uids)[:500]))
                .group_by(tables.messages.c.state, tables.messages.c.detail)
            ).all()
    finally:
        store.close()
    return ", ".join(f"{state}/{detail}: {n}" for state, detail, n in rows)


def check_store(url: str, acked: dict[str, str]) -> None:
    """Every acknowledged SMS_UID stored for its number and DELIVERED; no recipient stored twice.

    Each recipient of :class:`Load` has a number of its own, so two rows for one number are one
    recipient stored twice (under two SMS_UIDs), whatever the cause.
    """
    m = tables.messages.c
    store = Store.open(url)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(select(m.sms_uid, m.country_code, m.dest_msisdn, m.state)).all()
    finally:
        store.close()
    number_of = {uid: f"{cc}{number}" for uid, cc, number, _ in rows}
    assert [uid for uid in acked if uid not in number_of] == []  # nothing acknowledged is lost
    assert [uid for uid, n in acked.items() if number_of[uid] != n] == []
    per_number = collections.Counter(number_of.values())
    assert [n for n, count in per_number.items() if count > 1] == []
    states = collections.Counter(state for *_, state in rows)
    assert set(states) == {"delivered"}, states


def _twice(
    counts: collections.Counter[str], first: dict[str, float], fault_over: float | None, what: str
) -> int:
    """How many keys came twice; fails on three times, or twice with a first copy after the
    fault was over (or at all when there was no fault)."""
    assert [k for k, n in counts.items() if n > 2] == [], f"{what} three times or more"
    twice = [k for k, n in counts.items() if n == 2]
    if fault_over is None:
        assert twice == [], f"{len(twice)} {what} twice, and there was no fault"
    late = [k for k in twice if fault_over is not None and first[k] >= fault_over]
    assert late == [], f"{len(late)} {what} twice, the first time after the fault was over"
    return len(twice)


def check_carrier(
    smsc: SimulatorThread, acked: dict[str, str], fault_over: float | None = None
) -> int:
    """Each acknowledged message reached the carrier; a destination got at most two submits, two
    only if the first came before ``fault_over`` (in flight at the crash; ``None``: there was
    no fault, so none twice) and at most the in-flight bound of them. Returns how many twice."""
    counts, first = submits_per_number(smsc)
    assert [uid for uid, number in acked.items() if counts[number] == 0] == []
    duplicates = _twice(counts, first, fault_over, "messages submitted")
    assert duplicates <= IN_FLIGHT_BOUND, f"{duplicates} duplicates: more than was in flight"
    return duplicates


def check_reports(sink: CallbackSink, fault_over: float | None = None) -> int:
    """No SMS_UID reported three times, none twice unless its first push arrived before
    ``fault_over`` (``None``: no fault, each reported once). Returns how many twice."""
    with sink.lock:
        pushes = list(zip(sink.arrived, sink.reports, strict=True))
    counts: collections.Counter[str] = collections.Counter()
    first: dict[str, float] = {}
    for at, report in pushes:
        counts[report["SMS_UID"]] += 1
        first.setdefault(report["SMS_UID"], at)
    return _twice(counts, first, fault_over, "reports pushed")


@pytest.fixture
def sink() -> Iterator[CallbackSink]:
    with CallbackSink() as s:
        yield s


@pytest.mark.slow
def test_kill_9_under_load_loses_nothing_and_resends_only_in_flight(
    sqlite_url: str, sink: CallbackSink, tmp_path: Path
) -> None:
    with SimulatorThread(accounts={"c1": "secret"}) as smsc:
        seeded = seed(sqlite_url, smsc.sim.port, sink.url, ["c1"])
        port = free_port()
        log = tmp_path / "platform.log"
        proc = start_platform(sqlite_url, port, log)
        url = f"http://127.0.0.1:{port}/dave/io"
        with Load([url], seeded.auth_key, seeded.route) as load:
            load.wait_acked(1500, timeout=30)
            while len(sink.reports) < 200:  # pushes are flowing too
                time.sleep(0.02)
            before = len(load.acked)
            os.kill(proc.pid, signal.SIGKILL)
            killed = time.monotonic()
            proc.wait(timeout=10)
            fault_over = time.monotonic() + SETTLE_S
            proc = start_platform(sqlite_url, port, log)
            restarted = time.monotonic() - killed
            submits = len(smsc.sim.segments)
            while len(smsc.sim.segments) == submits:
                time.sleep(0.01)
            resumed = time.monotonic() - killed
            load.wait_acked(before + 1000, timeout=30)
        acked = dict(load.acked)
        missing = wait_reported(sink, set(acked), timeout=90)
        wait_settled(sqlite_url)
        stop(proc)
    assert missing == set(), f"{len(missing)} never reported: {describe(sqlite_url, missing)}"
    check_store(sqlite_url, acked)
    duplicates = check_carrier(smsc, acked, fault_over)
    pushed_twice = check_reports(sink, fault_over)
    print(
        f"\nkill -9 (SQLite, role all): {len(acked)} messages acknowledged, 0 lost; "
        f"ready again {restarted:.2f} s after the kill, submitting again after {resumed:.2f} s; "
        f"{duplicates} sent twice (in flight at the kill); {len(sink.reports)} reports pushed, "
        f"{pushed_twice} of them twice (pushed before the kill, answer not yet recorded)"
    )


# --- PostgreSQL restart: a throwaway cluster of our own, so no other test sees the restart ---

PG_VERSION_DIR = Path("/etc/postgresql")


@pytest.fixture
def own_cluster() -> Iterator[tuple[str, list[str]]]:
    """A PostgreSQL cluster created for this test (as root, with the Debian cluster tools).

    Restarting the shared server would break whatever else runs against it at the same time,
    so the test makes its own cluster on a free port, with trust authentication on 127.0.0.1,
    and drops it afterwards. Skipped where that is not possible (not root, no pg_createcluster
    or no PostgreSQL installed), failed instead under CI (tests/needs.py); a pg_createcluster
    that fails where everything is installed fails the test, with its message.
    """
    if os.geteuid() != 0 or shutil.which("pg_createcluster") is None:
        unavailable("needs root and the Debian PostgreSQL cluster tools to restart a server")
    versions = sorted(p.name for p in PG_VERSION_DIR.iterdir()) if PG_VERSION_DIR.exists() else []
    if not versions:
        unavailable(f"no PostgreSQL installation under {PG_VERSION_DIR}")
    version, name, port = versions[-1], f"crash{os.getpid()}", free_port()
    created = subprocess.run(
        ["pg_createcluster", version, name, "--port", str(port), "--start", "--",
         "--auth=trust"],
        capture_output=True, text=True,
    )  # fmt: skip
    if created.returncode != 0:
        subprocess.run(["pg_dropcluster", "--stop", version, name], capture_output=True)
        pytest.fail(f"pg_createcluster failed: {(created.stderr or created.stdout).strip()}")
    restart = ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart"]
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres", restart
    finally:
        subprocess.run(
            ["pg_dropcluster", "--stop", version, name], check=False, capture_output=True
        )


@pytest.mark.slow
@pytest.mark.postgres
def test_postgres_restart_under_load_loses_nothing(
    own_cluster: tuple[str, list[str]], sink: CallbackSink, tmp_path: Path
) -> None:
    url, restart = own_cluster
    with SimulatorThread(accounts={"c1": "secret"}) as smsc:
        seeded = seed(url, smsc.sim.port, sink.url, ["c1"])
        port = free_port()
        proc = start_platform(url, port, tmp_path / "platform.log")
        with Load([f"http://127.0.0.1:{port}/dave/io"], seeded.auth_key, seeded.route) as load:
            load.wait_acked(1500, timeout=30)
            while len(sink.reports) < 200:
                time.sleep(0.02)
            before = len(load.acked)
            started = time.monotonic()
            subprocess.run(restart, check=True, capture_output=True, timeout=60)
            restarted = time.monotonic() - started
            fault_over = time.monotonic() + SETTLE_S
            load.wait_acked(before + 1000, timeout=60)  # accepting again
            recovered = time.monotonic() - started
        acked = dict(load.acked)
        missing = wait_reported(sink, set(acked), timeout=90)
        wait_settled(url)
        alive = proc.poll() is None
        stop(proc)
    assert alive, "the platform must survive a database restart"
    assert missing == set(), f"{len(missing)} never reported: {describe(url, missing)}"
    check_store(url, acked)
    duplicates = check_carrier(smsc, acked, fault_over)
    pushed_twice = check_reports(sink, fault_over)
    print(
        f"\nPostgreSQL restart (role all): {len(acked)} messages acknowledged, 0 lost; "
        f"restart took {restarted:.2f} s, 1000 more accepted {recovered:.2f} s after it began; "
        f"{duplicates} sent twice, {pushed_twice} reports pushed twice; "
        f"{load.errors} requests failed at the transport"
    )
