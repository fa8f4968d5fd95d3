"""The SMPP 3.4 session state machine (§2.2, §2.3, §4.1, §4.2) as tables, with no I/O.

Rule 1: everything that decides whether a PDU may be sent or received, and what state follows,
lives in the tables of this file. The transport never checks bind states itself.

Rule 2: both ends of a link walk the *same* state machine. The tables are therefore keyed by the
direction a PDU travels (ESME → SMSC or SMSC → ESME), not by who is looking: an ESME *sends*
with ``ESME_TO_SMSC`` and *receives* with ``SMSC_TO_ESME``; an SMSC does the opposite.

Rule 3: a PDU is allowed in a state when its class is in ``ALLOWED[direction][state]``. After it
passes, ``TRANSITIONS[direction][(state, class)]`` gives ``(next state if command_status is 0,
next state otherwise)``; a PDU absent from TRANSITIONS leaves the state alone. The only
transitions that look at command_status are the bind responses: a refused bind goes back to
OPEN (§4.1.2).

Rule 4: a response with a non-zero command_status, and generic_nack, may travel in any state
except CLOSED: that is how a PDU received in the wrong state is refused (ESME_RINVBNDSTS,
§5.1.3), and how the peer's refusal reaches us.

Rule 5: while UNBINDING, the SMSC's deliver_sm, data_sm and alert_notification may still travel:
an SMSC writes them before it reads the ESME's unbind, and refusing a receipt with an error status
can make a carrier drop it for good. The ESME stores and answers them before it closes; an SMSC
sends no new ones once it is not bound (``SmscConnection.can_receive``). The ESME's own requests
get no such allowance: a submit_sm crossing an SMSC's unbind is refused and retried elsewhere.

    OPEN ──bind_x──▶ BINDING_x ──bind_x_resp OK──▶ BOUND_x ──unbind──▶ UNBINDING
      ▲                  │                                               │ unbind_resp
      └──bind_x_resp err─┘                                               ▼
                                              CLOSED ◀──close()── any   UNBOUND

``x`` is TX, RX or TRX (§2.2). After UNBOUND the connection is closed (§4.2): a new bind
needs a new connection. enquire_link is allowed in OPEN, BINDING_* and BOUND_* (§4.11; some
SMSCs probe before the bind completes); responses to outstanding requests still flow while
UNBINDING and UNBOUND.

Receiving a PDU the tables forbid raises RemoteProtocolError (``fatal=False``, the PDU was
consumed) with ``command_status`` ESME_RINVBNDSTS, or ESME_RALYBND for a bind on a link that is
already binding or bound (§4.1). The transport answers it exactly as it answers a decoding error::

    try:
        pdu = session.next_event()
    except RemoteProtocolError as exc:
        if (answer := error_response(exc)) is not None:
            sock.sendall(session.send(answer))      # allowed by Rule 4
        if exc.fatal:
            session.close(); sock.close()
"""

from __future__ import annotations

import enum
from typing import Final

from cloudsms.smpp.codec import (
    DEFAULT_MAX_COMMAND_LENGTH,
    NEED_DATA,
    Decoder,
    NeedData,
    SequenceCounter,
    encode,
)
from cloudsms.smpp.constants import CommandStatus
from cloudsms.smpp.errors import LocalProtocolError, RemoteProtocolError
from cloudsms.smpp.pdu import (
    AlertNotification,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CancelSm,
    CancelSmResp,
    DataSm,
    DataSmResp,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    Outbind,
    Pdu,
    QuerySm,
    QuerySmResp,
    ReplaceSm,
    ReplaceSmResp,
    SubmitMulti,
    SubmitMultiResp,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
)


class Role(enum.Enum):
    ESME = "ESME"  # the client: binds, submits (cloudsms towards a carrier)
    SMSC = "SMSC"  # the server: accepts binds, delivers (the simulator)


class State(enum.Enum):
    # Members are singletons compared by identity, so the identity hash is a valid hash; Enum's
    # own hashes the name in Python code, and the tables below are looked up for every PDU.
    __hash__ = object.__hash__

    OPEN = "OPEN"  # connected, not bound (§2.3)
    BINDING_TX = "BINDING_TX"  # bind_transmitter sent, response pending
    BINDING_RX = "BINDING_RX"
    BINDING_TRX = "BINDING_TRX"
    BOUND_TX = "BOUND_TX"  # §2.2.1
    BOUND_RX = "BOUND_RX"  # §2.2.2
    BOUND_TRX = "BOUND_TRX"  # §2.2.3
    UNBINDING = "UNBINDING"  # unbind sent or received, unbind_resp pending
    UNBOUND = "UNBOUND"  # unbind completed: close the connection (§4.2)
    CLOSED = "CLOSED"  # the transport closed the connection


class Direction(enum.Enum):
    __hash__ = object.__hash__  # as State's

    ESME_TO_SMSC = "ESME_TO_SMSC"
    SMSC_TO_ESME = "SMSC_TO_ESME"


D = Direction
_BINDING = (State.BINDING_TX, State.BINDING_RX, State.BINDING_TRX)
_BOUND = (State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX)
_BINDS = frozenset({BindTransmitter, BindReceiver, BindTransceiver})

PduSet = frozenset[type[Pdu]]

_LINK: PduSet = frozenset({EnquireLink, EnquireLinkResp, GenericNack})

# ESME → SMSC, by what the bind allows (§2.2 and the "Bound state" column of §4's PDUs).
_ESME_TX_REQUESTS: PduSet = frozenset({SubmitSm, SubmitMulti, DataSm, QuerySm, CancelSm, ReplaceSm})
_ESME_RX_RESPONSES: PduSet = frozenset({DeliverSmResp, DataSmResp})
# SMSC → ESME
_SMSC_TX_RESPONSES: PduSet = frozenset(
    {SubmitSmResp, SubmitMultiResp, DataSmResp, QuerySmResp, CancelSmResp, ReplaceSmResp}
)
_SMSC_RX_REQUESTS: PduSet = frozenset({DeliverSm, DataSm, AlertNotification})

_UNBIND: PduSet = frozenset({Unbind})
_WIND_DOWN: PduSet = frozenset({Unbind, UnbindResp, EnquireLinkResp, GenericNack})

#: Which PDUs may travel in each direction in each state (Rule 3).
ALLOWED: Final[dict[Direction, dict[State, PduSet]]] = {
    D.ESME_TO_SMSC: {
        State.OPEN: _LINK | _BINDS,
        State.BINDING_TX: _LINK,
        State.BINDING_RX: _LINK,
        State.BINDING_TRX: _LINK,
        State.BOUND_TX: _LINK | _UNBIND | _ESME_TX_REQUESTS,
        State.BOUND_RX: _LINK | _UNBIND | _ESME_RX_RESPONSES,
        State.BOUND_TRX: _LINK | _UNBIND | _ESME_TX_REQUESTS | _ESME_RX_RESPONSES,
        State.UNBINDING: _WIND_DOWN | _ESME_RX_RESPONSES,
        State.UNBOUND: frozenset({UnbindResp, GenericNack}) | _ESME_RX_RESPONSES,
        State.CLOSED: frozenset(),
    },
    D.SMSC_TO_ESME: {
        State.OPEN: _LINK | {Outbind},
        State.BINDING_TX: _LINK | {BindTransmitterResp},
        State.BINDING_RX: _LINK | {BindReceiverResp},
        State.BINDING_TRX: _LINK | {BindTransceiverResp},
        State.BOUND_TX: _LINK | _UNBIND | _SMSC_TX_RESPONSES,
        State.BOUND_RX: _LINK | _UNBIND | _SMSC_RX_REQUESTS,
        State.BOUND_TRX: _LINK | _UNBIND | _SMSC_TX_RESPONSES | _SMSC_RX_REQUESTS,
        # deliver_sm / data_sm the SMSC sent before it read our unbind (module doc, Rule 5).
        State.UNBINDING: _WIND_DOWN | _SMSC_TX_RESPONSES | _SMSC_RX_REQUESTS,
        State.UNBOUND: frozenset({UnbindResp, GenericNack}) | _SMSC_TX_RESPONSES,
        State.CLOSED: frozenset(),
    },
}

_Next = tuple[State, State]  # (if command_status == 0, otherwise)

#: State changes (Rule 3). Missing (state, class) pairs leave the state unchanged.
TRANSITIONS: Final[dict[Direction, dict[tuple[State, type[Pdu]], _Next]]] = {
    D.ESME_TO_SMSC: {
        (State.OPEN, BindTransmitter): (State.BINDING_TX, State.BINDING_TX),
        (State.OPEN, BindReceiver): (State.BINDING_RX, State.BINDING_RX),
        (State.OPEN, BindTransceiver): (State.BINDING_TRX, State.BINDING_TRX),
        (State.BOUND_TX, Unbind): (State.UNBINDING, State.UNBINDING),
        (State.BOUND_RX, Unbind): (State.UNBINDING, State.UNBINDING),
        (State.BOUND_TRX, Unbind): (State.UNBINDING, State.UNBINDING),
        (State.UNBINDING, UnbindResp): (State.UNBOUND, State.UNBOUND),
    },
    D.SMSC_TO_ESME: {
        (State.BINDING_TX, BindTransmitterResp): (State.BOUND_TX, State.OPEN),
        (State.BINDING_RX, BindReceiverResp): (State.BOUND_RX, State.OPEN),
        (State.BINDING_TRX, BindTransceiverResp): (State.BOUND_TRX, State.OPEN),
        (State.BOUND_TX, Unbind): (State.UNBINDING, State.UNBINDING),
        (State.BOUND_RX, Unbind): (State.UNBINDING, State.UNBINDING),
        (State.BOUND_TRX, Unbind): (State.UNBINDING, State.UNBINDING),
        (State.UNBINDING, UnbindResp): (State.UNBOUND, State.UNBOUND),
    },
}


def is_allowed(direction: Direction, state: State, pdu: Pdu) -> bool:
    """Rules 3 and 4: may ``pdu`` travel in ``direction`` while the link is in ``state``?"""
    if type(pdu) in ALLOWED[direction][state]:
        return True
    return state is not State.CLOSED and pdu.is_response and pdu.command_status != 0


def next_state(direction: Direction, state: State, pdu: Pdu) -> State:
    """The state after an allowed ``pdu`` travelled in ``direction`` (Rule 3)."""
    nxt = TRANSITIONS[direction].get((state, type(pdu)))
    if nxt is None:
        return state
    return nxt[0] if pdu.command_status == 0 else nxt[1]


class Session:
    """One end of an SMPP link: checks every PDU against the tables, encodes and decodes.

    ESME side::

        session = Session(Role.ESME)
        sock.sendall(session.send(BindTransceiver(sequence_number=session.sequence(),
                                                  system_id="acme", password="secret")))
        while True:
            session.receive_data(sock.recv(65536))
            while (pdu := session.next_event()) is not NEED_DATA:
                ...  # session.state is BOUND_TRX once the bind_transceiver_resp is OK

    ``send`` raises LocalProtocolError (ESME_RINVBNDSTS) and changes nothing when the state
    forbids the PDU; ``next_event`` raises RemoteProtocolError (see the module docstring).
    """

    __slots__ = ("_decoder", "_recv_direction", "_send_direction", "role", "sequence", "state")

    def __init__(self, role: Role, *, max_command_length: int = DEFAULT_MAX_COMMAND_LENGTH) -> None:
        self.role = role
        self.state = State.OPEN
        #: This end's sequence numbers for requests it originates (§3.2).
        self.sequence = SequenceCounter()
        self._decoder = Decoder(max_command_length)
        if role is Role.ESME:
            self._send_direction, self._recv_direction = D.ESME_TO_SMSC, D.SMSC_TO_ESME
        else:
            self._send_direction, self._recv_direction = D.SMSC_TO_ESME, D.ESME_TO_SMSC

    def __repr__(self) -> str:
        return f"<Session {self.role.value} {self.state.value}>"

    @property
    def is_bound(self) -> bool:
        return self.state in _BOUND

    def can_send(self, pdu: Pdu) -> bool:
        return is_allowed(self._send_direction, self.state, pdu)

    def send(self, pdu: Pdu) -> bytes:
        """Check ``pdu`` against the state, encode it and move to the next state."""
        self._check_send(pdu, pdu.sequence_number)
        data = encode(pdu)
        self.state = next_state(self._send_direction, self.state, pdu)
        return data

    def send_encoded(self, pdu: Pdu, data: bytearray, sequence_number: int) -> bytearray:
        """:meth:`send` for a PDU already encoded as ``data``; returns ``data``.

        For callers that keep the encoding of a PDU they send over and over (an ESME_ROK
        deliver_sm_resp) and patch ``sequence_number`` into its bytes: ``pdu`` is what the
        tables check, exactly as :meth:`send` would check the PDU itself.
        """
        self._check_send(pdu, sequence_number)
        self.state = next_state(self._send_direction, self.state, pdu)
        return data

    def _check_send(self, pdu: Pdu, sequence_number: int) -> None:
        if not is_allowed(self._send_direction, self.state, pdu):
            raise LocalProtocolError(
                f"{self.role.value} cannot send {type(pdu).__name__} in state {self.state.value}",
                command_status=CommandStatus.ESME_RINVBNDSTS,
                sequence_number=sequence_number,
                command_id=pdu.command_id,
            )

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the connection."""
        self._decoder.receive_data(data)

    def next_event(self) -> Pdu | NeedData:
        """The next PDU received, or NEED_DATA; raises RemoteProtocolError (module docstring)."""
        pdu = self._decoder.next_pdu()
        if pdu is NEED_DATA:
            return pdu
        state = self.state
        if not is_allowed(self._recv_direction, state, pdu):
            binding = type(pdu) in _BINDS and (state in _BOUND or state in _BINDING)
            raise RemoteProtocolError(
                f"{type(pdu).__name__} not allowed from the "
                f"{'SMSC' if self.role is Role.ESME else 'ESME'} in state {state.value}",
                command_status=(
                    CommandStatus.ESME_RALYBND if binding else CommandStatus.ESME_RINVBNDSTS
                ),
                sequence_number=pdu.sequence_number,
                command_id=pdu.command_id,
            )
        self.state = next_state(self._recv_direction, state, pdu)
        return pdu

    @property
    def ignored_octets(self) -> int:
        """Octets of trailing garbage the decoder ignored (see codec)."""
        return self._decoder.ignored_octets

    def close(self) -> None:
        """The transport closed (or lost) the connection: nothing may travel any more."""
        self.state = State.CLOSED
