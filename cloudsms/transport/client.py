"""SmppClient: an ESME connector towards one carrier SMSC (SMPP 3.4).

Strategy: the client owns policy, the links own I/O. A supervisor task per link
(one transceiver, or a transmitter plus a receiver for ``bind_mode="tx_rx"``) connects, binds
and, whenever the link drops, reconnects with exponential back-off capped at
``reconnect_max_s``. A submit may go out when (:meth:`SmppClient.wait_s` says 0):

1. a window slot is free (never more than ``window`` submits outstanding, §2.7's
   "asynchronous" windowing);
2. no throttling back-off is running (after ESME_RTHROTTLED / ESME_RMSGQFUL, §5.1.3: 0.5 s
   doubling to 10 s, reset by the next ESME_ROK);
3. a throughput token is there (``throughput`` segments/s, token bucket with a small burst).

The hot path is :meth:`SmppClient.submit_nowait`: it gives the PDU our sequence number by
patching the encoded header (no dataclass rebuild), writes it (coalesced with the other writes
of this loop iteration) and registers a callback for the answer — no task and no future per
submit (the dispatcher's links keep a window of 100 full this way at thousands a second).
:meth:`SmppClient.submit` is the same as a coroutine that waits for its turn, for callers that
send a few.

The answer is the submit_sm_resp **whatever its command_status**; the caller decides what an
error means for the message. Or it is an error: NotBound (nothing sent), SubmitTimeout and
ConnectionLost (sent, outcome unknown) and SubmitNacked (generic_nack, §4.3: refused). A
response timeout also recycles the link: an SMSC that stops answering is treated as dead.

Incoming deliver_sm / data_sm (receipts, MO) go to ``on_deliver``; their response is sent only
after it returns (see :mod:`cloudsms.transport.esme`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Literal, Protocol

from cloudsms.smpp.codec import encode
from cloudsms.smpp.constants import CommandStatus
from cloudsms.smpp.errors import RemoteProtocolError, SmppError
from cloudsms.smpp.pdu import (
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DataSm,
    DeliverSm,
    GenericNack,
    Pdu,
    SubmitSm,
    SubmitSmResp,
)
from cloudsms.transport.connection import settle, with_sequence
from cloudsms.transport.errors import (
    BindFailed,
    ConnectionLost,
    NotBound,
    SubmitError,
    SubmitNacked,
    SubmitTimeout,
    TransportError,
    status_name,
)
from cloudsms.transport.esme import BindPdu, EsmeLink
from cloudsms.transport.throttle import Backoff, TokenBucket

__all__ = [
    "BindFailed",
    "ClientStats",
    "ConnectionLost",
    "NotBound",
    "SmppClient",
    "SubmitError",
    "SubmitNacked",
    "SubmitTimeout",
]

log = logging.getLogger(__name__)

ClientState = Literal["down", "connecting", "bound", "throttled", "stopped"]
LinkKind = Literal["trx", "tx", "rx"]

#: command_status values that mean "slow down and retry" (SMPP 3.4 §5.1.3).
THROTTLE_STATUSES: Final = frozenset({CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RMSGQFUL})

#: Gets a submit's outcome: the submit_sm_resp (any command_status), or the SubmitError
#: (SubmitTimeout, ConnectionLost, SubmitNacked, …) that stands for it.
SubmitAnswer = Callable[[SubmitSmResp | Exception], None]


@dataclass(slots=True)
class ClientStats:
    """Counters of one client since it was created (a snapshot: ``SmppClient.stats()``)."""

    #: submit_sm written to the SMSC.
    submitted: int = 0
    #: submit_sm_resp ESME_ROK / with an error status (throttling included).
    acked_ok: int = 0
    acked_error: int = 0
    #: responses with ESME_RTHROTTLED or ESME_RMSGQFUL (also counted in acked_error).
    throttled: int = 0
    #: submits that got no response in time / whose link dropped / that got generic_nack.
    timeouts: int = 0
    connection_lost: int = 0
    nacked: int = 0
    #: times a bound link dropped and the client reconnected.
    reconnects: int = 0
    #: deliver_sm / data_sm received, and how many of their callbacks raised.
    delivered: int = 0
    deliver_errors: int = 0
    window_in_use: int = 0
    last_error: str | None = None
    #: submit_sm per second over the last interval (about one second).
    submit_rate: float = 0.0


class _Slot:
    """One link the client keeps up: its kind, current link, state and supervisor."""

    __slots__ = ("bound_event", "kind", "link", "state", "task")

    def __init__(self, kind: LinkKind) -> None:
        self.kind: LinkKind = kind
        self.link: EsmeLink | None = None
        self.state: ClientState = "down"
        self.bound_event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


_BIND_CLASS: Final[dict[LinkKind, type[BindPdu]]] = {
    "trx": BindTransceiver,
    "tx": BindTransmitter,
    "rx": BindReceiver,
}


class LinkSettings(Protocol):
    """What a client needs of its connector's configuration.

    The domain's ``ConnectorConfig`` (one ``connectors`` row) has all of it; declaring it here
    keeps the transport below the domain (it imports nothing from ``cloudsms.domain``).
    """

    @property
    def name(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def system_id(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def system_type(self) -> str: ...
    #: "trx": one transceiver bind; anything else: a transmitter plus a receiver bind.
    @property
    def bind_mode(self) -> str: ...
    @property
    def window(self) -> int: ...
    #: Segments per second at most; 0: unlimited.
    @property
    def throughput(self) -> int: ...
    @property
    def enquire_link_s(self) -> int: ...
    @property
    def response_timeout_s(self) -> int: ...
    @property
    def reconnect_max_s(self) -> int: ...


class SmppClient:
    """An ESME connector.

    >>> client = SmppClient(config, on_deliver=store_receipt)
    >>> # await client.start(); await client.wait_bound(5)
    >>> # resp = await client.submit(SubmitSm(sequence_number=0, destination_addr="85261234567",
    >>> #                                     short_message=b"hi", registered_delivery=1))
    >>> # await client.stop()
    """

    def __init__(
        self,
        config: LinkSettings,
        *,
        on_deliver: Callable[[DeliverSm | DataSm], Awaitable[None]],
        on_state: Callable[[str], None] | None = None,
        reconnect_initial_s: float = 0.5,
        throttle_initial_s: float = 0.5,
        throttle_max_s: float = 10.0,
        unbind_timeout_s: float = 2.0,
    ) -> None:
        if config.window < 1:
            raise ValueError("window must be at least 1")
        self.config = config
        self._on_deliver = on_deliver
        self._on_state = on_state
        self._reconnect_initial_s = reconnect_initial_s
        self._unbind_timeout_s = unbind_timeout_s
        self._window_size = config.window
        #: Submits sent and not answered yet (the window in use).
        self._in_use = 0
        #: submit() callers waiting for a window slot, oldest first.
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._bucket = TokenBucket(config.throughput) if config.throughput > 0 else None
        self._throttle = Backoff(throttle_initial_s, throttle_max_s)
        self._throttle_until = 0.0
        self._slots = [_Slot("trx")] if config.bind_mode == "trx" else [_Slot("tx"), _Slot("rx")]
        self._tx = self._slots[0]
        self._stats = ClientStats()
        self._rate_stamp = time.monotonic()
        self._rate_count = 0
        self._started = False
        self._stopping = False
        self._stopped = False
        self._last_state: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- public state ---------------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """ "down" | "connecting" | "bound" | "throttled" | "stopped" (of the submitting link)."""
        if self._stopped:
            return "stopped"
        state = self._tx.state
        if state == "bound" and self._throttled_now():
            return "throttled"
        return state

    @property
    def available(self) -> bool:
        """Bound and not in a throttling back-off: new submits go out at once."""
        link = self._tx.link
        return not self._stopping and link is not None and link.bound and not self._throttled_now()

    @property
    def window_in_use(self) -> int:
        return self._in_use

    def stats(self) -> ClientStats:
        """A snapshot of the counters, with ``submit_rate`` over the last interval."""
        now = time.monotonic()
        elapsed = now - self._rate_stamp
        if elapsed >= 1.0:
            self._stats.submit_rate = (self._stats.submitted - self._rate_count) / elapsed
            self._rate_stamp, self._rate_count = now, self._stats.submitted
        delivered = errors = 0
        for slot in self._slots:
            if slot.link is not None:
                delivered += slot.link.delivered
                errors += slot.link.deliver_errors
        return dataclasses.replace(
            self._stats,
            window_in_use=self._in_use,
            delivered=self._stats.delivered + delivered,
            deliver_errors=self._stats.deliver_errors + errors,
        )

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting and binding in the background; returns at once."""
        if self._started:
            return
        self._started = True
        self._loop = asyncio.get_running_loop()
        for slot in self._slots:
            slot.task = self._loop.create_task(self._supervise(slot), name=f"smpp-{slot.kind}")

    async def wait_bound(self, timeout: float) -> bool:  # noqa: ASYNC109 (the interface)
        """Wait until every link is bound (both for tx_rx); False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                for slot in self._slots:
                    await slot.bound_event.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Let in-flight submits finish (bounded), unbind, fail what is left, close."""
        if self._stopped or self._stopping:
            return
        self._stopping = True
        grace = self._unbind_timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._in_use and loop.time() < deadline:  # noqa: ASYNC110 (bounded poll at stop)
            await asyncio.sleep(0.01)
        for slot in self._slots:
            link = slot.link
            if link is not None:
                await link.drain_callbacks(grace)
                await link.unbind(grace)
                link.fail_pending(ConnectionLost, "client stopped")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(link.closed), grace)
                link.abort()
        for slot in self._slots:
            if slot.task is not None:
                slot.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await slot.task
            slot.state = "down"
        self._stopped = True
        self._emit_state()

    # -- submitting -----------------------------------------------------------------------------

    def wait_s(self) -> float | None:
        """How long until a submit may go out: 0.0 now; seconds until the throttling back-off
        ends or a throughput token comes; ``math.inf`` while the window is full (an answer frees
        a slot); None when no link is bound (or the client stops)."""
        link = self._tx.link
        if self._stopping or link is None or not link.bound:
            return None
        if self._in_use >= self._window_size:
            return math.inf
        if self._throttle_until:
            remaining = self._throttle_until - time_of(self._loop)
            if remaining > 0:
                return remaining
        if self._bucket is not None:
            return self._bucket.wait_s()
        return 0.0

    def submit_nowait(self, pdu: SubmitSm, answer: SubmitAnswer) -> None:
        """Send one submit_sm now; ``answer`` is called once with the outcome (module doc).

        The caller checks :meth:`wait_s` first: this does not wait for a window slot, the end of
        a back-off or a token (it takes the token if one is there). Raises NotBound, or
        LocalProtocolError when ``pdu`` cannot be encoded (a deterministic error: sending it
        again fails the same way); nothing is sent then and ``answer`` is not called.
        """
        link = self._tx.link
        if self._stopping or link is None or not link.bound:
            raise NotBound(f"connector {self.config.name!r} is not bound")
        data = encode(pdu)
        if self._bucket is not None:
            self._bucket.try_take()
        seq = link.session.sequence.next()
        link.expect_answer(seq, with_sequence(data, seq), functools.partial(self._answered, answer))
        self._in_use += 1
        self._stats.submitted += 1

    async def submit(self, pdu: SubmitSm) -> SubmitSmResp:
        """Send one submit_sm and return its response (any command_status); see module doc.

        Waits for a window slot, the end of a back-off and a token first. Raises NotBound,
        SubmitTimeout, ConnectionLost, SubmitNacked, SubmitError, and LocalProtocolError with
        nothing sent when ``pdu`` cannot be encoded.
        """
        loop = asyncio.get_running_loop()
        while (delay := self.wait_s()) != 0.0:
            if delay is None:
                raise NotBound(f"connector {self.config.name!r} is not bound")
            if delay == math.inf:
                slot: asyncio.Future[None] = loop.create_future()
                self._slot_waiters.append(slot)
                try:
                    await slot
                finally:
                    if not slot.done():
                        slot.cancel()
            else:
                await asyncio.sleep(delay)
        answered: asyncio.Future[SubmitSmResp] = loop.create_future()
        self.submit_nowait(pdu, functools.partial(settle, answered))
        return await answered

    def _answered(self, answer: SubmitAnswer, outcome: Pdu | Exception) -> None:
        """The link's answer to one submit: free its slot, count it, pass it on."""
        self._in_use -= 1
        waiters = self._slot_waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
        result: SubmitSmResp | Exception
        if isinstance(outcome, Exception):
            if isinstance(outcome, SubmitTimeout):
                self._stats.timeouts += 1
            elif isinstance(outcome, ConnectionLost):
                self._stats.connection_lost += 1
            elif isinstance(outcome, RemoteProtocolError):
                self._stats.last_error = f"malformed response: {outcome}"
                outcome = SubmitError(f"malformed submit_sm_resp: {outcome}")
            result = outcome
        elif type(outcome) is SubmitSmResp:
            status = outcome.command_status
            if status == 0:
                self._stats.acked_ok += 1
                self._throttle.reset()
            else:
                self._stats.acked_error += 1
                if status in THROTTLE_STATUSES:
                    self._stats.throttled += 1
                    self._enter_throttle()
            result = outcome
        elif type(outcome) is GenericNack:
            status = outcome.command_status
            self._stats.nacked += 1
            if status in THROTTLE_STATUSES:
                self._stats.throttled += 1
                self._enter_throttle()
            result = SubmitNacked(f"generic_nack {status_name(status)}", command_status=status)
        else:
            result = SubmitError(f"unexpected {type(outcome).__name__} in answer to submit_sm")
        try:
            answer(result)
        except Exception:  # it runs inside the link's read loop, which must go on
            log.exception("connector %s: a submit's answer callback failed", self.config.name)

    def _throttled_now(self) -> bool:
        return bool(self._throttle_until) and self._throttle_until > time_of(self._loop)

    def _enter_throttle(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        if now < self._throttle_until:
            return  # responses to submits sent before the back-off began: same episode
        delay = self._throttle.next()
        self._throttle_until = now + delay
        self._stats.last_error = f"throttled by the SMSC: backing off {delay:g} s"
        self._emit_state()
        loop.call_later(delay, self._throttle_over)

    def _throttle_over(self) -> None:
        if self._loop is not None and self._loop.time() >= self._throttle_until:
            self._throttle_until = 0.0
        self._emit_state()

    # -- links ----------------------------------------------------------------------------------

    async def _supervise(self, slot: _Slot) -> None:
        cfg = self.config
        backoff = Backoff(self._reconnect_initial_s, max(cfg.reconnect_max_s, 0.1))
        while not self._stopping:
            slot.state = "connecting"
            self._emit_state()
            try:
                link = await self._connect(slot)
            except (OSError, TimeoutError, TransportError, SmppError) as exc:
                self._stats.last_error = f"{slot.kind} link: {exc or type(exc).__name__}"
                log.info("connector %s: %s", cfg.name, self._stats.last_error)
                slot.state = "down"
                self._emit_state()
                await asyncio.sleep(backoff.next())
                continue
            backoff.reset()
            slot.link = link
            slot.state = "bound"
            slot.bound_event.set()
            self._emit_state()
            await asyncio.shield(link.closed)
            self._fold_link_stats(link)
            slot.link = None
            slot.bound_event.clear()
            slot.state = "down"
            self._emit_state()
            if self._stopping:
                return
            self._stats.reconnects += 1
            log.info("connector %s: %s link lost, reconnecting", cfg.name, slot.kind)
            await asyncio.sleep(backoff.next())

    async def _connect(self, slot: _Slot) -> EsmeLink:
        cfg = self.config
        loop = asyncio.get_running_loop()
        name = f"{cfg.name}/{slot.kind}"

        def factory() -> EsmeLink:
            return EsmeLink(
                name=name,
                on_deliver=self._on_deliver,
                response_timeout_s=cfg.response_timeout_s,
                enquire_link_s=cfg.enquire_link_s,
                on_timeout=self._link_timed_out,
            )

        async with asyncio.timeout(cfg.response_timeout_s):
            _, link = await loop.create_connection(factory, cfg.host, cfg.port)
        try:
            bind = _BIND_CLASS[slot.kind](
                sequence_number=1,
                system_id=cfg.system_id,
                password=cfg.password,
                system_type=cfg.system_type,
            )
            await link.bind(bind)
        except BaseException:
            link.abort()
            raise
        return link

    def _link_timed_out(self, link: EsmeLink, count: int) -> None:
        self._stats.last_error = f"{link.name}: {count} request(s) timed out, link recycled"
        for slot in self._slots:  # the link is being aborted: not bound from now on
            if slot.link is link:
                slot.bound_event.clear()
                slot.state = "down"
        self._emit_state()

    def _fold_link_stats(self, link: EsmeLink) -> None:
        self._stats.delivered += link.delivered
        self._stats.deliver_errors += link.deliver_errors
        link.delivered = link.deliver_errors = 0

    def _emit_state(self) -> None:
        state = self.state
        if state == self._last_state:
            return
        self._last_state = state
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                log.exception("on_state callback failed")


def time_of(loop: asyncio.AbstractEventLoop | None) -> float:
    return loop.time() if loop is not None else 0.0
