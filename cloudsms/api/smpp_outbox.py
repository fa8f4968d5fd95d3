"""What the SMPP server sends from an outbox: deliver_sm to customers' bound RX / TRX sessions.

Strategy: receipts (``api.smpp_receipts``) and inbound messages (``api.smpp_mo``) wait in an
outbox in the store until a session that may receive them is bound, and go out by the same
rules, so :class:`OutboxSender` holds those rules once and each subclass says what it claims,
how one row becomes deliver_sm PDUs and how rows are settled. It polls (and is woken when a
receiving session binds, or a row is stored in this process), and after a round that found
rows starts the next one at once (rounds at the poll interval alone capped a session at
``window`` deliveries per poll: 20/s, ``bench/smpp_customer.py``). A round claims, for the
targets with a receiving session, as many due rows as the sessions' windows have room for,
sends each on the least busy of its target's sessions and settles the rows once answered:
ESME_ROK is done; an error status, no answer in time or a lost session is retried with
back-off, without end (the row waits in the store). A session that leaves a deliver_sm
unanswered for ``response_timeout_s`` is closed (aborted): its peer is gone or stuck, and a
session kept would hold its slot and take a share of every round, each round then waiting out
the timeout. Rounds run one after the other.

The store calls go through ``self.gate`` (``cloudsms.storage.gate``; the composition root sets
it), as every hot store call does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, Protocol, TypeVar

from cloudsms.domain.smpp_accounts import SmppAccount
from cloudsms.smpp.pdu import DeliverSm
from cloudsms.storage.gate import Gate, ThreadGate
from cloudsms.transport.server import SmscConnection

log = logging.getLogger("cloudsms.smpp")

#: Seconds a customer's ESME has to answer a deliver_sm (and the server's enquire_link).
RESPONSE_TIMEOUT_S = 10.0


class Receivers(Protocol):
    """Where the deliver_sm go: the bound sessions able to receive, by account."""

    def receivers(self) -> dict[int, tuple[SmppAccount, list[SmscConnection]]]: ...
    def delivered(self, conn: SmscConnection, what: str) -> None:
        """A deliver_sm (``what``: "receipt" or "mo") was answered on ``conn``."""


class Row(Protocol):
    """What the sender reads of a claimed row."""

    @property
    def outbox_id(self) -> int: ...
    @property
    def attempts(self) -> int: ...


R = TypeVar("R", bound=Row)
#: A target (an account, a customer…): the account the row goes out for, and its sessions.
Target = tuple[SmppAccount, list[SmscConnection]]
#: What became of one row: ("done" | "skipped" | "retry", why).
Outcome = tuple[str, str]


class OutboxSender(Generic[R]):
    """Delivers due rows to bound sessions, windowed, retried until answered."""

    #: The asyncio task's name and what the log says failed.
    name = "smpp-outbox"
    #: What each deliver_sm is, for the sessions' counters (``Receivers.delivered``).
    what = "receipt"

    def __init__(
        self,
        receivers: Receivers,
        *,
        poll_s: float = 0.5,
        window: int = 10,
        response_timeout_s: float = RESPONSE_TIMEOUT_S,
        lease_s: float = 60.0,
        retry_base_s: float = 5.0,
        retry_max_s: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = receivers
        self.poll_s = poll_s
        self.window = window
        self.response_timeout_s = response_timeout_s
        self.lease_ms = int(lease_s * 1000)
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self._clock = clock
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: dict[SmscConnection, int] = {}
        #: Where the store calls run (``cloudsms.storage.gate``; the composition root sets it).
        self.gate: Gate = ThreadGate()

    # -- what a subclass says ---------------------------------------------------------------

    def targets(self) -> dict[int, Target]:
        """Target key → (account, receiving sessions); by default the accounts themselves."""
        return self.source.receivers()

    def key(self, row: R) -> int:
        """The target a claimed row goes to."""
        raise NotImplementedError

    def claim(self, keys: list[int], *, now_ms: int, lease_ms: int, limit: int) -> list[R]:
        """Claim due rows of these targets (blocking: runs through the gate)."""
        raise NotImplementedError

    def settle(
        self,
        *,
        now_ms: int,
        done: Sequence[int],
        skipped: Sequence[tuple[int, str]],
        retry: Sequence[tuple[int, int, str]],
    ) -> None:
        """Record the outcomes of a round (blocking: runs through the gate)."""
        raise NotImplementedError

    async def deliver(
        self, row: R, account: SmppAccount, conns: Sequence[SmscConnection]
    ) -> Outcome:
        """Send one row (usually through :meth:`send`)."""
        raise NotImplementedError

    # -- the loop -------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for due rows now (a receiving session has just bound, or a row was stored)."""
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop sending; rows claimed but not settled become due again when their lease ends."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        busy = False
        while True:
            if busy:  # the last round found rows: more are likely due, look again at once
                await asyncio.sleep(0)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await self._wake.wait()
            self._wake.clear()
            try:
                busy = await self.round() > 0
            except Exception:  # the next round tries again; nothing is lost (the outbox)
                log.exception("%s: sending failed", self.name)
                busy = False

    async def round(self) -> int:
        """One claim and its deliveries; how many rows were settled."""
        targets = self.targets()
        if not targets:
            return 0
        room = sum(self.window for _, conns in targets.values() for _ in conns)
        now_ms = int(self._clock() * 1000)
        claimed = await self.gate.run(
            functools.partial(
                self.claim, sorted(targets), now_ms=now_ms, lease_ms=self.lease_ms, limit=room
            )
        )
        if not claimed:
            return 0
        outcomes = await asyncio.gather(*(self.deliver(r, *targets[self.key(r)]) for r in claimed))
        pairs = list(zip(claimed, outcomes, strict=True))
        now = self._clock()
        await self.gate.run(
            functools.partial(
                self.settle,
                now_ms=int(now * 1000),
                done=[r.outbox_id for r, (kind, _) in pairs if kind == "done"],
                skipped=[(r.outbox_id, why) for r, (kind, why) in pairs if kind == "skipped"],
                retry=[
                    (r.outbox_id, int((now + self._delay(r.attempts)) * 1000), why)
                    for r, (kind, why) in pairs
                    if kind == "retry"
                ],
            )
        )
        return len(claimed)

    def _delay(self, attempts: int) -> float:
        return float(min(self.retry_max_s, self.retry_base_s * 2 ** min(attempts, 16)))

    async def send(
        self, conns: Iterable[SmscConnection], pdus: Sequence[Callable[[int], DeliverSm]]
    ) -> Outcome:
        """Send ``pdus`` (each built from its sequence number) in order on the least busy open
        receiving session; done once every one is answered ESME_ROK."""
        conn = self._least_busy(c for c in conns if c.is_open and c.can_receive)
        if conn is None:
            return "retry", "no receiving session bound"
        self._inflight[conn] = self._inflight.get(conn, 0) + 1
        try:
            for build in pdus:
                try:
                    async with asyncio.timeout(self.response_timeout_s):
                        resp = await conn.send_request(build(conn.session.sequence.next()))
                except TimeoutError:
                    # The ESME stopped answering (gone without a FIN, or stuck): drop the
                    # session, or it keeps its slot and a share of every round, each one
                    # waiting out this timeout (its rows then go to its other sessions).
                    log.warning(
                        "%s: deliver_sm unanswered for %g s; closing the session",
                        conn.peer, self.response_timeout_s,
                    )  # fmt: skip
                    conn.abort()
                    return "retry", f"no deliver_sm_resp within {self.response_timeout_s:g} s"
                except Exception as exc:  # the session went away, or cannot send now
                    return "retry", f"deliver_sm not answered: {type(exc).__name__}: {exc}"
                self.source.delivered(conn, self.what)
                if resp.command_status:
                    return (
                        "retry",
                        f"deliver_sm_resp refused it (command_status 0x{resp.command_status:08X})",
                    )
        finally:
            left = self._inflight.pop(conn, 1) - 1
            if left:
                self._inflight[conn] = left
        return "done", ""

    def _least_busy(self, conns: Iterable[SmscConnection]) -> SmscConnection | None:
        return min(conns, key=lambda c: self._inflight.get(c, 0), default=None)
