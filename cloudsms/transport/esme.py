"""The ESME end of one SMPP link: bind, keepalive, and incoming deliver_sm / data_sm.

Strategy: :class:`EsmeLink` knows one connection and nothing of windows, throughput or
reconnection (that is :class:`cloudsms.transport.client.SmppClient`'s job). It

* binds (:meth:`EsmeLink.bind`, §4.1) and unbinds gracefully (:meth:`EsmeLink.unbind`, §4.2);
* answers the SMSC's enquire_link (§4.11) and unbind (§4.2.1: unbind_resp, then close);
* sends enquire_link when the link has been idle ``enquire_link_s`` (the keepalive of
  :class:`~cloudsms.transport.connection.SmppConnection`); the response is a normal outstanding
  request, so a missing enquire_link_resp times out like any request and the link is declared
  dead (closed, in-flight requests fail with ConnectionLost);
* calls ``on_deliver`` for each deliver_sm / data_sm (the read loop never waits for it) and
  sends deliver_sm_resp / data_sm_resp **only once what it returned is done**: ESME_ROK, or
  ESME_RX_T_APPN ("temporary application error", §5.1.3) if it raised, so the SMSC
  redelivers. ``on_deliver`` returns an awaitable: a coroutine runs as a task of its own; a
  future (the dispatcher's receipts: the recorder's commit) is followed by a done callback, with
  no task per receipt. At most ``max_callbacks`` run at once; above that, reading pauses (TCP
  back-pressure on the SMSC instead of unbounded work).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from cloudsms.smpp.codec import encode
from cloudsms.smpp.constants import CommandStatus
from cloudsms.smpp.errors import LocalProtocolError
from cloudsms.smpp.pdu import (
    AlertNotification,
    BindReceiver,
    BindTransceiver,
    BindTransmitter,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Pdu,
    Unbind,
    UnbindResp,
)
from cloudsms.smpp.session import Role
from cloudsms.transport.connection import SmppConnection
from cloudsms.transport.errors import BindFailed, TransportError, status_name

log = logging.getLogger(__name__)

DeliverCallback = Callable[[DeliverSm | DataSm], Awaitable[None]]
BindPdu = BindTransmitter | BindReceiver | BindTransceiver

#: Callbacks running at once before the link stops reading.
DEFAULT_MAX_CALLBACKS: Final = 1000


def _ok_response(cls: type[DeliverSmResp | DataSmResp]) -> tuple[Pdu, bytes]:
    pdu = cls(sequence_number=0)
    return pdu, encode(pdu)


#: The ESME_ROK answer to each incoming request class, with its encoding: one is sent per
#: receipt, so it is encoded once and only its sequence_number is patched in.
_OK_RESPONSES: Final[dict[type[Pdu], tuple[Pdu, bytes]]] = {
    DeliverSm: _ok_response(DeliverSmResp),
    DataSm: _ok_response(DataSmResp),
}


class EsmeLink(SmppConnection):
    """One ESME connection. Create it with ``loop.create_connection(lambda: EsmeLink(...))``."""

    def __init__(
        self,
        *,
        name: str,
        on_deliver: DeliverCallback,
        response_timeout_s: float,
        enquire_link_s: float,
        on_timeout: Callable[[EsmeLink, int], None] | None = None,
        on_closed: Callable[[EsmeLink], None] | None = None,
        max_callbacks: int = DEFAULT_MAX_CALLBACKS,
    ) -> None:
        super().__init__(
            Role.ESME, response_timeout_s=response_timeout_s, enquire_link_s=enquire_link_s
        )
        self.name = name
        self._on_deliver = on_deliver
        self._on_timeout = on_timeout
        self._on_closed = on_closed
        self.max_callbacks = max_callbacks
        #: What on_deliver returned, for the deliver_sm not answered yet.
        self._callbacks: set[asyncio.Future[None]] = set()
        self._reading_paused = False
        #: deliver_sm / data_sm received, and how many callbacks raised.
        self.delivered = 0
        self.deliver_errors = 0

    # -- lifecycle ------------------------------------------------------------------------------

    def link_closed(self, exc: Exception | None) -> None:
        if self._on_closed is not None:
            self._on_closed(self)

    async def bind(self, pdu: BindPdu) -> str:
        """Send the bind and wait for its response; returns the SMSC's system_id.

        Raises BindFailed (the SMSC refused: ``command_status`` says why), SubmitTimeout or
        ConnectionLost.
        """
        bind = dataclasses.replace(pdu, sequence_number=self.session.sequence.next())
        resp = await self.send_request(bind)
        if resp.command_status != 0 or isinstance(resp, GenericNack):
            status = resp.command_status
            raise BindFailed(
                f"{type(pdu).__name__} refused by {self.peer}: {status_name(status)}",
                command_status=status,
            )
        system_id: str = getattr(resp, "system_id", "")
        return system_id

    async def unbind(self, grace: float) -> None:
        """Send unbind, wait (at most ``grace`` seconds) for unbind_resp, then close (§4.2).

        Receipts that crossed the unbind (session Rule 5) are answered before the close: their
        callbacks get another ``grace`` seconds.
        """
        if self.bound:
            try:
                fut = self.send_request(Unbind(sequence_number=self.session.sequence.next()))
                await asyncio.wait_for(fut, grace)
            except (TimeoutError, TransportError, LocalProtocolError):
                pass
        await self.drain_callbacks(grace)
        self.close()

    # -- incoming requests ----------------------------------------------------------------------

    def request_received(self, pdu: Pdu) -> None:
        cls = type(pdu)
        if cls is DeliverSm or cls is DataSm:
            assert isinstance(pdu, DeliverSm | DataSm)
            self._start_callback(pdu)
        elif cls is EnquireLink:
            self.send(EnquireLinkResp(sequence_number=pdu.sequence_number))
        elif cls is Unbind:  # §4.2: answer, then the connection closes
            self.send(UnbindResp(sequence_number=pdu.sequence_number))
            self.close()
        elif cls is AlertNotification:  # §4.12: no response PDU exists
            pass
        else:
            resp = _response_or_nack(pdu, CommandStatus.ESME_RINVCMDID)
            with contextlib.suppress(LocalProtocolError):  # Rule 4 allows error responses
                self.send(resp)

    def _start_callback(self, pdu: DeliverSm | DataSm) -> None:
        self.delivered += 1
        try:
            pending = self._on_deliver(pdu)
            waiting = (
                pending if isinstance(pending, asyncio.Future)
                else asyncio.ensure_future(pending, loop=self.loop)
            )  # fmt: skip
        except Exception as exc:
            self._callback_failed(exc)
            self._answer(pdu, CommandStatus.ESME_RX_T_APPN)
            return
        self._callbacks.add(waiting)
        waiting.add_done_callback(functools.partial(self._callback_done, pdu))
        if len(self._callbacks) >= self.max_callbacks and not self._reading_paused:
            self._reading_paused = True
            if self.transport is not None:
                self.transport.pause_reading()

    def _callback_done(self, pdu: DeliverSm | DataSm, done: asyncio.Future[None]) -> None:
        self._callbacks.discard(done)
        error = asyncio.CancelledError() if done.cancelled() else done.exception()
        if error is not None:
            self._callback_failed(error)
            self._answer(pdu, CommandStatus.ESME_RX_T_APPN)
        else:
            self._answer(pdu, CommandStatus.ESME_ROK)
        if self._reading_paused and len(self._callbacks) < self.max_callbacks // 2:
            self._reading_paused = False
            if self.transport is not None and self.is_open:
                self.transport.resume_reading()

    def _callback_failed(self, error: BaseException) -> None:
        # §5.1.3 ESME_RX_T_APPN: temporary application error, the SMSC retries later.
        self.deliver_errors += 1
        log.error("%s: on_deliver failed; answering ESME_RX_T_APPN", self.name, exc_info=error)

    def _answer(self, pdu: DeliverSm | DataSm, status: int) -> None:
        if not self.is_open:
            return  # the SMSC will redeliver on another connection
        try:
            if status == CommandStatus.ESME_ROK:
                template, data = _OK_RESPONSES[type(pdu)]
                self.send_template(template, data, pdu.sequence_number)
            elif type(pdu) is DeliverSm:
                self.send(DeliverSmResp(sequence_number=pdu.sequence_number, command_status=status))
            else:
                self.send(DataSmResp(sequence_number=pdu.sequence_number, command_status=status))
        except LocalProtocolError:
            log.debug("%s: cannot answer deliver_sm in state %s", self.name, self.session.state)

    async def drain_callbacks(self, grace: float) -> None:
        """Wait (bounded) for running on_deliver callbacks, so their responses go out."""
        if self._callbacks:
            await asyncio.wait(set(self._callbacks), timeout=grace)

    # -- timeouts -------------------------------------------------------------------------------

    def requests_timed_out(self, count: int) -> None:
        # A missing response means the SMSC (or the path to it) is stuck: recycle the link
        # rather than keep a window slot's worth of doubt per request.
        log.warning("%s: %d request(s) timed out; closing the link", self.name, count)
        if self._on_timeout is not None:
            self._on_timeout(self, count)
        self.abort()


def _response_or_nack(pdu: Pdu, status: int) -> Pdu:
    try:
        return pdu.response(status)
    except LocalProtocolError:
        return GenericNack(sequence_number=pdu.sequence_number, command_status=status)
