"""An asyncio SMPP server (the SMSC end): accepts ESMEs, authenticates binds, routes requests.

Strategy: :class:`SmppServer` owns the listening socket and the set of live connections;
:class:`SmscConnection` is one accepted link (a :class:`~cloudsms.transport.connection.
SmppConnection` with ``Role.SMSC``: TCP_NODELAY, coalesced writes, the codec's error contract).
Subclasses customise the server through a few hooks, as aiosmtpd's handler hooks do:

* :meth:`SmppServer.authenticate` — the command_status to answer a bind with (§4.1), or an
  awaitable of it (slow checks such as password hashing then run off the read path);
* :meth:`SmppServer.handle_request` — every request other than bind / enquire_link / unbind,
  e.g. submit_sm; it answers through ``conn.send(...)`` now or later (or never);
* :meth:`SmppServer.on_bound` / :meth:`SmppServer.on_closed` — bookkeeping.

What a peer controls is treated as hostile (HOUSE_STYLE §10): command_length is capped by the
decoder (fatal error → generic_nack and close), a connection that has not bound within
``bind_timeout_s`` is closed, a refused bind closes the connection, and when the peer stops
reading our answers (the transport's write buffer is over its high-water mark) we stop reading
its requests until it catches up. With ``enquire_link_s``, a bound session idle that long gets an
enquire_link and is aborted when no response comes within ``response_timeout_s`` (the keepalive
of :class:`~cloudsms.transport.connection.SmppConnection`): an ESME gone without FIN or RST
would otherwise keep its session, and a slot of its account, until TCP gives up.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import ssl
from collections.abc import Awaitable
from typing import Final, Literal

from cloudsms.smpp.codec import DEFAULT_MAX_COMMAND_LENGTH
from cloudsms.smpp.constants import CommandStatus
from cloudsms.smpp.errors import LocalProtocolError
from cloudsms.smpp.pdu import (
    RESPONSE_CLASS,
    AlertNotification,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    Unbind,
    UnbindResp,
)
from cloudsms.smpp.session import Role
from cloudsms.transport.connection import SmppConnection

log = logging.getLogger(__name__)

BindKind = Literal["tx", "rx", "trx"]
BindRequest = BindTransmitter | BindReceiver | BindTransceiver

_BIND_KIND: Final[dict[type[Pdu], BindKind]] = {
    BindTransmitter: "tx",
    BindReceiver: "rx",
    BindTransceiver: "trx",
}
_BindResp = BindTransmitterResp | BindReceiverResp | BindTransceiverResp
_BIND_RESP: Final[dict[type[Pdu], type[_BindResp]]] = {
    BindTransmitter: BindTransmitterResp,
    BindReceiver: BindReceiverResp,
    BindTransceiver: BindTransceiverResp,
}


class SmscConnection(SmppConnection):
    """One ESME connected to an :class:`SmppServer`."""

    def __init__(self, server: SmppServer) -> None:
        super().__init__(
            Role.SMSC,
            response_timeout_s=server.response_timeout_s,
            max_command_length=server.max_command_length,
            enquire_link_s=server.enquire_link_s,
        )
        self.server = server
        #: Set once bound: who bound, and as what.
        self.system_id: str = ""
        self.bind_kind: BindKind | None = None
        #: Free for the server subclass (e.g. outstanding counters).
        self.outstanding_requests = 0
        self._bind_timer: asyncio.TimerHandle | None = None
        #: A bind whose (awaitable) authentication has not finished yet.
        self._binding: asyncio.Task[None] | None = None

    @property
    def can_receive(self) -> bool:
        """Bound as receiver or transceiver: deliver_sm may be sent (§2.2)."""
        return self.bound and self.bind_kind in ("rx", "trx")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.server.connections.add(self)
        self._bind_timer = self.loop.call_later(self.server.bind_timeout_s, self._bind_timeout)

    def link_closed(self, exc: Exception | None) -> None:
        if self._bind_timer is not None:
            self._bind_timer.cancel()
        self.server.connections.discard(self)
        self.server.on_closed(self)

    def keepalive_failed(self) -> None:
        log.warning(
            "%s: %r did not answer enquire_link within %g s; closing the session",
            self.peer,
            self.system_id,
            self.response_timeout_s,
        )
        self.abort()

    def pause_writing(self) -> None:
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and self.is_open:
            self.transport.resume_reading()

    def _bind_timeout(self) -> None:
        self._bind_timer = None
        if self.bind_kind is None and self.is_open:
            log.info("%s: no bind within %g s, closing", self.peer, self.server.bind_timeout_s)
            self.close()

    def request_received(self, pdu: Pdu) -> None:
        cls = type(pdu)
        if cls in _BIND_KIND:
            assert isinstance(pdu, BindTransmitter | BindReceiver | BindTransceiver)
            self._bind(pdu)
        elif cls is EnquireLink:
            self.server.on_enquire_link(self, pdu)
        elif cls is Unbind:  # §4.2: answer, then close
            self.send(UnbindResp(sequence_number=pdu.sequence_number))
            self.close()
        elif cls is AlertNotification:  # pragma: no cover - the session refuses it from an ESME
            pass
        else:
            self.server.handle_request(self, pdu)

    def _bind(self, pdu: BindRequest) -> None:
        server = self.server
        if self._binding is not None:
            resp = _BIND_RESP[type(pdu)]
            self.send(resp(sequence_number=pdu.sequence_number, command_status=5))  # RALYBND
            return
        try:
            verdict = server.authenticate(self, pdu)
        except Exception:
            log.exception("%s: authenticate() failed", self.peer)
            verdict = CommandStatus.ESME_RBINDFAIL
        if inspect.isawaitable(verdict):
            self._binding = self.loop.create_task(self._bind_later(pdu, verdict))
            return
        self._finish_bind(pdu, verdict)

    async def _bind_later(self, pdu: BindRequest, verdict: Awaitable[int]) -> None:
        try:
            status = await verdict
        except Exception:
            log.exception("%s: authenticate() failed", self.peer)
            status = CommandStatus.ESME_RBINDFAIL
        if self.is_open:
            self._finish_bind(pdu, status)
        self._binding = None

    def _finish_bind(self, pdu: BindRequest, status: int) -> None:
        server = self.server
        resp_cls = _BIND_RESP[type(pdu)]
        if status:
            self.send(resp_cls(sequence_number=pdu.sequence_number, command_status=status))
            log.info("%s: bind as %r refused (%s)", self.peer, pdu.system_id, status)
            self.close()
            return
        self.send(resp_cls(sequence_number=pdu.sequence_number, system_id=server.system_id))
        self.system_id = pdu.system_id
        self.bind_kind = _BIND_KIND[type(pdu)]
        if self._bind_timer is not None:
            self._bind_timer.cancel()
            self._bind_timer = None
        server.on_bound(self)

    def answer(self, pdu: Pdu, command_status: int, **fields: object) -> None:
        """Send the response to request ``pdu`` (ignored when the link is gone)."""
        if not self.is_open:
            return
        try:
            self.send(pdu.response(command_status, **fields))
        except LocalProtocolError:
            log.debug("%s: cannot answer %s now", self.peer, type(pdu).__name__)


class SmppServer:
    """Listens on ``host:port``; subclass and override the hooks."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 2775,
        *,
        system_id: str = "cloudsms",
        response_timeout_s: float = 30.0,
        bind_timeout_s: float = 30.0,
        max_command_length: int = DEFAULT_MAX_COMMAND_LENGTH,
        ssl_context: ssl.SSLContext | None = None,
        enquire_link_s: float = 0.0,
    ) -> None:
        self.host = host
        #: SMPP over TLS when set (the context may ask for client certificates).
        self.ssl_context = ssl_context
        self._port = port
        self.system_id = system_id
        self.response_timeout_s = response_timeout_s
        self.bind_timeout_s = bind_timeout_s
        #: Seconds a bound session may stay idle before we send enquire_link (0: never).
        self.enquire_link_s = enquire_link_s
        self.max_command_length = max_command_length
        self.connections: set[SmscConnection] = set()
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port listened on (the real one when constructed with port 0)."""
        if self._server is not None and self._server.sockets:
            port: int = self._server.sockets[0].getsockname()[1]
            return port
        return self._port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SmscConnection(self),
            self.host,
            self._port,
            reuse_address=True,
            ssl=self.ssl_context,
        )

    async def stop(self) -> None:
        """Stop listening and close every connection (what was queued is flushed first)."""
        if self._server is not None:
            self._server.close()
        conns = list(self.connections)
        for conn in conns:
            conn.close()
        if conns:
            waiters = [asyncio.shield(c.closed) for c in conns]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await asyncio.gather(*waiters)
            for conn in conns:
                conn.abort()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> SmppServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- hooks ----------------------------------------------------------------------------------

    def authenticate(self, conn: SmscConnection, bind: BindRequest) -> int | Awaitable[int]:
        """The bind response's command_status: 0 accepts (§4.1.2). Default: accept everyone.

        An awaitable is awaited on a task of its own; the bind is answered when it is done.
        """
        return 0

    def handle_request(self, conn: SmscConnection, pdu: Pdu) -> None:
        """A request from a bound ESME (submit_sm, data_sm, query_sm…). Default: refuse."""
        if type(pdu) in RESPONSE_CLASS:
            conn.answer(pdu, CommandStatus.ESME_RINVCMDID)
        else:
            conn.send(GenericNack(sequence_number=pdu.sequence_number, command_status=3))

    def on_enquire_link(self, conn: SmscConnection, pdu: Pdu) -> None:
        """An enquire_link (§4.11). Default: answer it."""
        conn.send(EnquireLinkResp(sequence_number=pdu.sequence_number))

    def on_bound(self, conn: SmscConnection) -> None:
        """``conn`` has just bound."""

    def on_closed(self, conn: SmscConnection) -> None:
        """``conn`` is gone (its outstanding requests were failed with ConnectionLost)."""
