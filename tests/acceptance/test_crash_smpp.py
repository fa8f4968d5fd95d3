"""kill -9 of the platform while a customer's SMPP sessions send and receive, and MOs come in.

``cloudsms serve`` (role all, with the customers' SMPP server; with two cores, an API process
and its worker child) runs as real processes in a process group of their own; the carrier is
the built-in simulator, in this process. Without pause:

* the customer's ESME (our own ``EsmeLink`` over a real socket, bound as a transceiver) submits
  messages asking for receipts, each to a number of its own, and answers every deliver_sm;
* the simulator originates MOs from a handset to two inbound numbers: one of a customer whose
  SMPP account takes MOs (they come to the ESME as deliver_sm), one of a customer with an HTTP
  MO URL (SMS_PUSH_MO to a small HTTP server here).

In the middle of it, every process of the platform is killed with SIGKILL at once; the platform
is started again on the same store and the ESME binds again by itself. Then:

* every submit_sm answered ESME_ROK has its message in the store, for its number, and its
  receipt (receipted_message_id = the message_id) reached the customer over SMPP;
* every MO the simulator got an ESME_ROK deliver_sm_resp for reached its customer (over SMPP
  or over HTTP); and every MO the simulator originated was acknowledged in the end (it
  delivers again what the dead platform never answered).

Receipts and SMPP MOs that the killed process had claimed but not settled are leased for 60 s
(``api/smpp_outbox.OutboxSender``, decisions "MOs over SMPP"): they come after the lease, so
the test waits up to 100 s for the last of them. The figures go to the ``-s`` output.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mo_callback import MoCallback
from seed import add_carrier, bump, seed_customer
from simulator_thread import ThreadedSimulator
from sqlalchemy import select

from cloudsms.services.operator import Operator
from cloudsms.smpp.encoding import decode_text
from cloudsms.smpp.pdu import BindTransceiver, DeliverSm, SubmitSm
from cloudsms.storage import tables
from cloudsms.storage.store import Store
from cloudsms.transport.esme import EsmeLink

pytestmark = pytest.mark.slow

CLOUDSMS = str(Path(sys.executable).with_name("cloudsms"))
HANDSET = "85261230000"
SMPP_NUMBER, HTTP_NUMBER = "85230001234", "85230005678"
SYSTEM_ID, PASSWORD = "acme1", "s3cret"
#: Submits, receipts and MOs through before the kill, and submits after the restart.
BEFORE, AFTER = 400, 300
#: How long the receipts and MOs of a killed process may take: its claims' lease (60 s) and
#: the time to send what waited meanwhile.
SETTLE_TIMEOUT_S = 100.0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_platform(url: str, port: int, smpp_port: int, log: Path) -> subprocess.Popen[bytes]:
    """``cloudsms serve`` in a process group of its own (so one SIGKILL takes the API process
    and its worker child at once); returns once /ready answers."""
    env = {
        **os.environ,
        "CLOUDSMS_DATABASE_URL": url,
        "CLOUDSMS_PORT": str(port),
        "CLOUDSMS_SMPP_PORT": str(smpp_port),
        "CLOUDSMS_ROLE": "all",
        "CLOUDSMS_ADMIN_ENABLED": "false",
        "CLOUDSMS_LOG_LEVEL": "warning",
        "CLOUDSMS_CONFIG_POLL_S": "0.2",
        "CLOUDSMS_REPORT_RETRY_BASE_S": "0.5",
        "CLOUDSMS_REPORT_RETRY_MAX_DELAY_S": "2",
        "CLOUDSMS_REPORT_PUSH_TIMEOUT_S": "3",
        "CLOUDSMS_REPORT_LEASE_S": "10",
    }
    with log.open("ab") as err:
        proc = subprocess.Popen(
            [CLOUDSMS, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=err,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the platform died: {log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return proc
        time.sleep(0.05)
    kill_group(proc)
    raise RuntimeError("the platform did not become ready")


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL to every process of the platform (its group: the one we started, and its child)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            kill_group(proc)


class Customer:
    """The customer's ESME, in a thread of its own: binds (again whenever its connection is
    lost), submits without pause from ``submitters`` tasks while ``submitting`` is set, and
    answers every deliver_sm, counting receipts by message id and MOs by text."""

    def __init__(self, port: int, *, submitters: int = 4) -> None:
        self.port, self.submitters = port, submitters
        #: message_id (SMS_UID) of each submit_sm answered ESME_ROK → its destination number.
        self.acked: dict[str, str] = {}
        self.receipts: collections.Counter[str] = collections.Counter()
        self.mos: collections.Counter[str] = collections.Counter()
        self.binds: list[float] = []  # time.monotonic() of each successful bind
        self.submitting = threading.Event()
        self.submitting.set()
        self._numbers = iter(range(1, 10_000_000))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Customer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(20)

    async def _on_deliver(self, pdu: Any) -> None:
        assert isinstance(pdu, DeliverSm)
        if pdu.esm_class & 0x04:
            self.receipts[pdu.receipted_message_id or ""] += 1
        else:
            self.mos[decode_text(pdu.short_message, pdu.data_coding)] += 1

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            closed = asyncio.Event()
            factory = functools.partial(
                EsmeLink, name="customer", on_deliver=self._on_deliver, response_timeout_s=10,
                enquire_link_s=5, on_closed=functools.partial(_set, closed),
            )  # fmt: skip
            try:
                _, link = await loop.create_connection(factory, "127.0.0.1", self.port)
                await link.bind(
                    BindTransceiver(sequence_number=1, system_id=SYSTEM_ID, password=PASSWORD)
                )
            except Exception:  # the platform is down, or not listening yet: try again
                await asyncio.sleep(0.1)
                continue
            self.binds.append(time.monotonic())
            tasks = [
                asyncio.create_task(self._submit(link, closed)) for _ in range(self.submitters)
            ]
            while not closed.is_set() and not self._stop.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            link.abort()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _submit(self, link: EsmeLink, closed: asyncio.Event) -> None:
        while not closed.is_set() and not self._stop.is_set():
            if not self.submitting.is_set():
                await asyncio.sleep(0.05)
                continue
            number = f"6{next(self._numbers):07d}"
            try:
                resp = await link.send_request(
                    SubmitSm(sequence_number=link.session.sequence.next(),
                             destination_addr=f"852{number}", registered_delivery=1,
                             short_message=b"crash test " + number.encode())
                )  # fmt: skip
            except (
                Exception
            ):  # the connection died under us: what was not answered was not promised
                return
            if resp.command_status == 0:
                self.acked[resp.message_id] = "852" + number
            await asyncio.sleep(0.01)


def _set(event: asyncio.Event, _link: EsmeLink) -> None:
    event.set()


class MoSource:
    """The carrier's handset traffic: one MO every ``interval_s`` to each inbound number in turn,
    each with a text of its own, from a thread (it waits while the platform is not bound)."""

    def __init__(self, smsc: ThreadedSimulator, *, interval_s: float = 0.02) -> None:
        self.smsc, self.interval_s = smsc, interval_s
        self.sent: dict[str, str] = {}  # text → inbound number
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MoSource:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            n += 1
            number = SMPP_NUMBER if n % 2 else HTTP_NUMBER
            text = f"MO {n:05d} to {number[-4:]}"
            try:
                self.smsc.send_mo(HANDSET, number, text)
            except ValueError:  # nobody bound for 15 s: the test's own wait will fail
                continue
            self.sent[text] = number
            time.sleep(self.interval_s)


def seed(url: str, smsc_port: int, mo_url: str) -> int:
    """acme (SMPP account taking MOs, inbound SMPP_NUMBER) and beta (HTTP MO URL, inbound
    HTTP_NUMBER); one carrier connector to the simulator. Returns acme's customer id."""
    store = Store.open(url)
    try:
        acme = seed_customer(store.engine, with_carrier=False, balance_micros=10**13)
        seed_customer(store.engine, name="beta", with_carrier=False, callback_url=mo_url)
        with store.engine.begin() as conn:
            route_id = conn.execute(
                select(tables.routes.c.id).where(tables.routes.c.name == acme.route)
            ).scalar_one()
            add_carrier(conn, route_id, port=smsc_port)
        bump(store.engine)
        store.add_inbound_number(SMPP_NUMBER, "", "acme")
        store.add_inbound_number(HTTP_NUMBER, "", "beta")
        account = Operator(store).add_smpp_account(
            "acme", SYSTEM_ID, password=PASSWORD, route=acme.route, binds="trx"
        )
        assert account.mo
        return acme.customer_id
    finally:
        store.close()


def wait(predicate: Callable[[], bool], what: str, timeout: float) -> float:
    """Seconds it took for ``predicate`` to hold; fails after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, f"timed out waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture
def mo_sink() -> Iterator[MoCallback]:
    sink = MoCallback()
    yield sink
    sink.close()


def test_kill_9_with_smpp_sessions_and_mos_loses_nothing(
    database_url: str, mo_sink: MoCallback, tmp_path: Path
) -> None:
    log = tmp_path / "platform.log"
    with ThreadedSimulator() as smsc:
        customer_id = seed(database_url, smsc.sim.port, mo_sink.url)
        port, smpp_port = free_port(), free_port()
        proc = start_platform(database_url, port, smpp_port, log)
        try:
            with Customer(smpp_port) as esme, MoSource(smsc) as mos:
                wait(lambda: len(esme.acked) >= BEFORE and len(esme.receipts) >= BEFORE // 4
                     and len(esme.mos) >= 20 and len(mo_sink.pushes) >= 20,
                     "traffic before the kill", 60)  # fmt: skip
                acked_before = len(esme.acked)
                kill_group(proc)
                killed = time.monotonic()
                proc = start_platform(database_url, port, smpp_port, log)
                ready = time.monotonic() - killed
                wait(lambda: len(esme.binds) >= 2, "the ESME's bind after the restart", 30)
                rebound = esme.binds[-1] - killed
                wait(lambda: len(esme.acked) >= acked_before + AFTER, "submits after it", 60)
                esme.submitting.clear()
                mos.stop()
                # Everything accepted gets its receipt; every MO is acknowledged and delivered.
                settled = wait(
                    lambda: set(esme.acked) <= set(esme.receipts)
                    and all(r.acknowledged for r in smsc.sim.mos)
                    and {t for t, n in mos.sent.items() if n == SMPP_NUMBER} <= set(esme.mos)
                    and {t for t, n in mos.sent.items() if n == HTTP_NUMBER}
                    <= {p["SMS_CONTENT"] for p in mo_sink.pushes},
                    "every receipt and MO", SETTLE_TIMEOUT_S,
                )  # fmt: skip
                acked, receipts = dict(esme.acked), collections.Counter(esme.receipts)
                smpp_mos = collections.Counter(esme.mos)
        finally:
            stop_group(proc)
        records = list(smsc.sim.mos)

    # Every acknowledged submit_sm is stored, for its number, and no recipient twice.
    store = Store.open(database_url)
    try:
        m = tables.messages.c
        with store.engine.connect() as conn:
            rows = conn.execute(
                select(m.sms_uid, m.country_code, m.dest_msisdn)
                .where(m.customer_id == customer_id)
            ).all()  # fmt: skip
    finally:
        store.close()
    number_of = {uid: f"{cc}{number}" for uid, cc, number in rows}
    assert [uid for uid, number in acked.items() if number_of.get(uid) != number] == []
    per_number = collections.Counter(number_of.values())
    assert [n for n, count in per_number.items() if count > 1] == []
    # Its receipt reached the customer (at least once), and only receipts of its messages came.
    assert set(acked) <= set(receipts) <= set(number_of)
    # Every MO the platform acknowledged reached its customer, over SMPP or HTTP.
    http_mos = collections.Counter(p["SMS_CONTENT"] for p in mo_sink.pushes)
    acknowledged = [r for r in records if r.acknowledged]
    assert len(acknowledged) == len(records)  # and the carrier got an answer for every one
    for r in acknowledged:
        got = smpp_mos if r.destination == SMPP_NUMBER else http_mos
        assert got[r.text] >= 1, f"MO {r.text!r} acknowledged to the carrier, never delivered"
    assert set(smpp_mos) | set(http_mos) <= {r.text for r in records}
    twice = {
        "receipts": sum(1 for n in receipts.values() if n > 1),
        "SMPP MOs": sum(1 for n in smpp_mos.values() if n > 1),
        "HTTP MOs": sum(1 for n in http_mos.values() if n > 1),
    }
    engine = database_url.partition(":")[0]
    print(
        f"\nkill -9 with SMPP sessions ({engine}, role all): {len(acked)} submits acknowledged "
        f"({acked_before} before the kill), {len(records)} MOs ({len(smpp_mos)} over SMPP, "
        f"{len(http_mos)} over HTTP); 0 lost; ready again {ready:.2f} s after the kill, the "
        f"ESME bound again after {rebound:.2f} s; the last receipt / MO {settled:.1f} s after "
        f"the submits stopped; delivered twice: {twice}"
    )
