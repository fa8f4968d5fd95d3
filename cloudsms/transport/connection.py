"""One SMPP link over one TCP connection: the asyncio Protocol both ends build on.

Strategy: a plain :class:`asyncio.Protocol` (no streams: a StreamReader costs a task switch and a
buffer copy per read) around the sans-IO :class:`~cloudsms.smpp.session.Session`. Bytes go in
through ``data_received``, which drains every complete PDU at once; requests go to the subclass
(``request_received``), a response goes to the answer callback of the request with the same
sequence number (§3.2): a callback, not a future, so a busy carrier link needs no task per
submit (``expect_answer``; ``expect`` wraps it in a future for bind, unbind and the like).
Three things make it fast on a busy link:

* **TCP_NODELAY** on every socket (SPEC §7: without it small PDUs wait ~40 ms for delayed ACKs);
* **write coalescing**: PDUs written during one loop iteration are joined and handed to
  ``transport.write`` once, by a callback scheduled with ``call_soon`` on the first write;
* **one timer per link, not per request**: outstanding requests sit in an insertion-ordered dict
  with their deadline; a sweep every fraction of the response timeout pops the expired ones
  from its front (all requests share one timeout, so the front is the oldest).

Keepalive is here too, for both ends (the carrier links of ``transport.client`` and the
customers' sessions of ``api.smpp_server``): a bound link that has received nothing for
``enquire_link_s`` sends enquire_link (§4.11), one at a time. Its response is an ordinary
outstanding request, so when none comes within the response timeout the link is dead — a peer
gone without FIN or RST (a NAT or firewall forgot the connection) is otherwise only found when
TCP gives up — and :meth:`SmppConnection.keepalive_failed` aborts it.

Decoder and session errors follow the codec contract (:mod:`cloudsms.smpp.codec`): a non-fatal
error is answered with :func:`~cloudsms.smpp.codec.error_response` and reading goes on; a fatal
one (bad command_length) is answered with generic_nack and the connection is closed. A response
that cannot be decoded fails the request it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import struct
from collections.abc import Callable
from typing import Final, TypeVar, cast

from cloudsms.smpp.codec import DEFAULT_MAX_COMMAND_LENGTH, NEED_DATA, error_response
from cloudsms.smpp.errors import LocalProtocolError, RemoteProtocolError
from cloudsms.smpp.pdu import EnquireLink, Pdu
from cloudsms.smpp.session import Role, Session, State
from cloudsms.transport.errors import ConnectionLost, SubmitError, SubmitTimeout, TransportError

log = logging.getLogger(__name__)

_SEQ: Final = struct.Struct(">I")
_BOUND: Final = frozenset({State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX})

#: Called once with a request's response PDU, or with the error that ended the wait for it
#: (SubmitTimeout, ConnectionLost, a RemoteProtocolError for a response that cannot be decoded).
Answer = Callable[[Pdu | Exception], None]
P = TypeVar("P", bound=Pdu)


def settle(future: asyncio.Future[P], outcome: P | Exception) -> None:
    """An answer callback that resolves ``future`` (:meth:`SmppConnection.expect`, and
    ``SmppClient.submit``)."""
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
        future.exception()  # mark retrieved: a caller that gave up must not cause a warning
    else:
        future.set_result(outcome)


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Disable Nagle's algorithm on the transport's socket (SPEC §7)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):  # the socket closed under us
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def with_sequence(data: bytes, sequence_number: int) -> bytearray:
    """An encoded PDU with its header's sequence_number (octets 12–15, §3.2) replaced.

    Cheaper than ``dataclasses.replace`` (which re-validates every field) on the submit path.
    """
    out = bytearray(data)
    _SEQ.pack_into(out, 12, sequence_number)
    return out


class SmppConnection(asyncio.Protocol):
    """Base class of an SMPP link; subclasses implement :meth:`request_received`."""

    def __init__(
        self,
        role: Role,
        *,
        response_timeout_s: float,
        max_command_length: int = DEFAULT_MAX_COMMAND_LENGTH,
        enquire_link_s: float = 0.0,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.session = Session(role, max_command_length=max_command_length)
        self.response_timeout_s = float(response_timeout_s)
        #: Seconds without receiving anything before a bound link sends enquire_link (0: never).
        self.enquire_link_s = float(enquire_link_s)
        self.transport: asyncio.Transport | None = None
        self.peer: str = "?"
        #: loop.time() of the last bytes received (keepalive decisions).
        self.last_received = self.loop.time()
        self.closed: asyncio.Future[None] = self.loop.create_future()
        self._out: list[bytes | bytearray] = []
        self._closing = False
        #: sequence_number → (answer callback, deadline), oldest first.
        self._pending: dict[int, tuple[Answer, float]] = {}
        self._sweeper: asyncio.TimerHandle | None = None
        self._keepalive: asyncio.TimerHandle | None = None
        #: An enquire_link of ours is waiting for its response (no second one meanwhile).
        self._enquiring = False

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        set_nodelay(transport)
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = f"{peer[0]}:{peer[1]}"
        self.last_received = self.loop.time()
        self._schedule_sweep()
        if self.enquire_link_s > 0:
            self._keepalive = self.loop.call_later(self.enquire_link_s, self._check_idle)

    def data_received(self, data: bytes) -> None:
        self.last_received = self.loop.time()
        session = self.session
        session.receive_data(data)
        pending = self._pending
        while not self._closing:
            try:
                pdu = session.next_event()
            except RemoteProtocolError as exc:
                self._protocol_error(exc)
                if exc.fatal:
                    return
                continue
            if pdu is NEED_DATA:
                return
            if pdu.command_id & 0x80000000:
                entry = pending.pop(pdu.sequence_number, None)
                if entry is None:
                    self.unexpected_response(pdu)
                else:
                    entry[0](pdu)
            else:
                self.request_received(pdu)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self.session.close()
        self._out.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        self.fail_pending(ConnectionLost, f"connection to {self.peer} lost")
        if not self.closed.done():
            self.closed.set_result(None)
        self.link_closed(exc)

    # -- hooks for subclasses -------------------------------------------------------------------

    def request_received(self, pdu: Pdu) -> None:
        """A request PDU the session allowed in the current state."""
        raise NotImplementedError

    def unexpected_response(self, pdu: Pdu) -> None:
        """A response no request of ours is waiting for (late, or a peer's bug)."""
        log.debug("%s: unexpected %s seq=%d", self.peer, type(pdu).__name__, pdu.sequence_number)

    def requests_timed_out(self, count: int) -> None:
        """``count`` requests just failed with SubmitTimeout."""

    def link_closed(self, exc: Exception | None) -> None:
        """The connection is gone (after the pending requests were failed)."""

    def keepalive_failed(self) -> None:
        """Our enquire_link got no response within the response timeout: the peer is gone.

        Aborted, not closed: nothing queued for a dead peer is worth flushing.
        """
        log.warning(
            "%s: no enquire_link_resp within %g s; closing", self.peer, self.response_timeout_s
        )
        self.abort()

    # -- state ----------------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self._closing

    @property
    def bound(self) -> bool:
        return not self._closing and self.session.state in _BOUND

    @property
    def outstanding(self) -> int:
        """Requests sent and not answered yet."""
        return len(self._pending)

    # -- writing --------------------------------------------------------------------------------

    def write(self, data: bytes | bytearray) -> None:
        """Queue encoded PDU bytes; everything queued in this loop iteration goes out at once."""
        if self._closing:
            return
        out = self._out
        out.append(data)
        if len(out) == 1:
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        out = self._out
        if not out:
            return
        if self.transport is not None and not self._closing:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        out.clear()

    def send(self, pdu: Pdu) -> None:
        """Send a PDU through the session (raises LocalProtocolError if the state forbids it)."""
        self.write(self.session.send(pdu))

    def send_template(self, template: Pdu, data: bytes, sequence_number: int) -> None:
        """Send ``template`` (encoded once as ``data``) with ``sequence_number`` patched in.

        The session checks ``template`` exactly as :meth:`send` would check the PDU; the PDU
        object and its encoding are not rebuilt for every response.
        """
        patched = with_sequence(data, sequence_number)
        self.write(self.session.send_encoded(template, patched, sequence_number))

    def send_request(self, pdu: Pdu) -> asyncio.Future[Pdu]:
        """Send a request that carries its own sequence number; the future gets the response."""
        data = self.session.send(pdu)
        return self.expect(pdu.sequence_number, data)

    def expect(self, sequence_number: int, data: bytes | bytearray) -> asyncio.Future[Pdu]:
        """Write already-encoded request bytes; the future gets the response (or the error)."""
        fut: asyncio.Future[Pdu] = self.loop.create_future()
        self.expect_answer(sequence_number, data, functools.partial(settle, fut))
        return fut

    def expect_answer(self, sequence_number: int, data: bytes | bytearray, answer: Answer) -> None:
        """Write already-encoded request bytes; ``answer`` is called once with the response, or
        with the error that ended the wait (it must not raise: it runs inside the read loop).

        Raises ConnectionLost, with nothing written, when the connection is closing.
        """
        if self._closing:
            raise ConnectionLost(f"connection to {self.peer} is closing")
        self._pending[sequence_number] = (answer, self.loop.time() + self.response_timeout_s)
        self.write(data)

    def close(self) -> None:
        """Flush what is queued and close the connection (the peer reads everything first)."""
        if self._closing:
            return
        self.flush()
        self._closing = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Close at once, discarding anything not yet sent."""
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    def fail_pending(self, error: type[SubmitError], message: str) -> int:
        """Fail every outstanding request with ``error(message)``; returns how many there were."""
        pending = self._pending
        count = 0
        while pending:
            _, (answer, _) = pending.popitem()
            answer(error(message))
            count += 1
        return count

    # -- internals ------------------------------------------------------------------------------

    def _protocol_error(self, exc: RemoteProtocolError) -> None:
        log.warning("%s: protocol error: %s", self.peer, exc)
        answer = error_response(exc)
        if answer is not None:
            with contextlib.suppress(LocalProtocolError):  # Rule 4 allows error responses
                self.send(answer)
        elif exc.sequence_number is not None:
            entry = self._pending.pop(exc.sequence_number, None)
            if entry is not None:
                entry[0](exc)
        if exc.fatal:
            self.close()

    def _schedule_sweep(self) -> None:
        interval = min(1.0, max(0.05, self.response_timeout_s / 4))
        self._sweeper = self.loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        if self._closing:
            return
        now = self.loop.time()
        expired: list[int] = []
        for seq, (_, deadline) in self._pending.items():
            if deadline > now:
                break
            expired.append(seq)
        if expired:
            message = f"no response from {self.peer} in {self.response_timeout_s:g} s"
            for seq in expired:
                answer, _ = self._pending.pop(seq)
                answer(SubmitTimeout(message))
            self.requests_timed_out(len(expired))
        if not self._closing:
            self._schedule_sweep()

    def _check_idle(self) -> None:
        self._keepalive = None
        if not self.is_open:
            return
        idle = self.loop.time() - self.last_received
        if idle < self.enquire_link_s:
            delay = max(0.05, self.enquire_link_s - idle)
        else:
            if self.bound and not self._enquiring:
                try:
                    seq = self.session.sequence.next()
                    fut = self.send_request(EnquireLink(sequence_number=seq))
                except (LocalProtocolError, TransportError):  # pragma: no cover - closing
                    pass
                else:
                    self._enquiring = True
                    fut.add_done_callback(self._enquire_link_done)
            delay = self.enquire_link_s
        self._keepalive = self.loop.call_later(delay, self._check_idle)

    def _enquire_link_done(self, fut: asyncio.Future[Pdu]) -> None:
        self._enquiring = False
        if fut.cancelled():
            return
        if isinstance(fut.exception(), SubmitTimeout) and not self._closing:
            self.keepalive_failed()
