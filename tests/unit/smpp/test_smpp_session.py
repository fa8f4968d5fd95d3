"""Session state machine: transitions, allowed and forbidden PDUs for both roles."""

from __future__ import annotations

from typing import Any

import pytest

from cloudsms.smpp import (
    NEED_DATA,
    AlertNotification,
    BindReceiver,
    BindReceiverResp,
    BindTransceiver,
    BindTransceiverResp,
    BindTransmitter,
    BindTransmitterResp,
    CommandStatus,
    DataSm,
    DeliverSm,
    DeliverSmResp,
    EnquireLink,
    EnquireLinkResp,
    GenericNack,
    LocalProtocolError,
    Outbind,
    Pdu,
    QuerySm,
    RemoteProtocolError,
    Role,
    Session,
    State,
    SubmitSm,
    SubmitSmResp,
    Unbind,
    UnbindResp,
    encode,
    error_response,
)
from cloudsms.smpp.session import ALLOWED, Direction

S = CommandStatus


class Pair:
    """An ESME and an SMSC session joined by a fake wire (h11's ConnectionPair idea)."""

    def __init__(self) -> None:
        self.esme = Session(Role.ESME)
        self.smsc = Session(Role.SMSC)

    def esme_sends(self, pdu: Pdu) -> Pdu:
        self.smsc.receive_data(self.esme.send(pdu))
        got = self.smsc.next_event()
        assert got == pdu
        assert self.smsc.next_event() is NEED_DATA
        return got

    def smsc_sends(self, pdu: Pdu) -> Pdu:
        self.esme.receive_data(self.smsc.send(pdu))
        got = self.esme.next_event()
        assert got == pdu
        return got

    def states(self) -> tuple[State, State]:
        return self.esme.state, self.smsc.state


BINDS: list[tuple[Any, Any, State, State]] = [
    (BindTransmitter, BindTransmitterResp, State.BINDING_TX, State.BOUND_TX),
    (BindReceiver, BindReceiverResp, State.BINDING_RX, State.BOUND_RX),
    (BindTransceiver, BindTransceiverResp, State.BINDING_TRX, State.BOUND_TRX),
]


def bound(kind: Any) -> Pair:
    pair = Pair()
    for bind, resp, _, _ in BINDS:
        if bind is kind:
            pair.esme_sends(bind(sequence_number=1, system_id="acme", password="pw"))
            pair.smsc_sends(resp(sequence_number=1, system_id="SMSC"))
    return pair


@pytest.mark.parametrize(("bind", "resp", "binding", "bound_state"), BINDS)
def test_bind_unbind_lifecycle(bind: Any, resp: Any, binding: State, bound_state: State) -> None:
    pair = Pair()
    assert pair.states() == (State.OPEN, State.OPEN)
    pair.esme_sends(bind(sequence_number=1, system_id="acme", password="pw"))
    assert pair.states() == (binding, binding)
    pair.smsc_sends(resp(sequence_number=1, system_id="SMSC"))
    assert pair.states() == (bound_state, bound_state)
    assert pair.esme.is_bound and pair.smsc.is_bound
    pair.esme_sends(EnquireLink(sequence_number=2))
    pair.smsc_sends(EnquireLinkResp(sequence_number=2))
    pair.esme_sends(Unbind(sequence_number=3))
    assert pair.states() == (State.UNBINDING, State.UNBINDING)
    pair.smsc_sends(UnbindResp(sequence_number=3))
    assert pair.states() == (State.UNBOUND, State.UNBOUND)
    pair.esme.close()
    assert pair.esme.state is State.CLOSED
    with pytest.raises(LocalProtocolError):
        pair.esme.send(EnquireLink(sequence_number=4))


def test_refused_bind_returns_to_open_and_can_retry() -> None:
    pair = Pair()
    pair.esme_sends(BindTransceiver(sequence_number=1, system_id="acme", password="bad"))
    pair.smsc_sends(BindTransceiverResp(sequence_number=1, command_status=S.ESME_RINVPASWD))
    assert pair.states() == (State.OPEN, State.OPEN)
    pair.esme_sends(BindTransceiver(sequence_number=2, system_id="acme", password="good"))
    pair.smsc_sends(BindTransceiverResp(sequence_number=2))
    assert pair.states() == (State.BOUND_TRX, State.BOUND_TRX)


def test_smsc_initiated_unbind() -> None:
    pair = bound(BindTransceiver)
    pair.smsc_sends(Unbind(sequence_number=9))
    assert pair.states() == (State.UNBINDING, State.UNBINDING)
    pair.esme_sends(UnbindResp(sequence_number=9))
    assert pair.states() == (State.UNBOUND, State.UNBOUND)


def test_simultaneous_unbind() -> None:
    pair = bound(BindTransmitter)
    a = pair.esme.send(Unbind(sequence_number=5))
    b = pair.smsc.send(Unbind(sequence_number=6))
    pair.smsc.receive_data(a)
    pair.esme.receive_data(b)
    assert pair.smsc.next_event() == Unbind(sequence_number=5)
    assert pair.esme.next_event() == Unbind(sequence_number=6)
    pair.smsc_sends(UnbindResp(sequence_number=5))
    pair.esme_sends(UnbindResp(sequence_number=6))
    assert pair.states() == (State.UNBOUND, State.UNBOUND)


def test_outstanding_responses_still_flow_while_unbinding() -> None:
    pair = bound(BindTransceiver)
    pair.esme_sends(SubmitSm(sequence_number=2))
    pair.smsc_sends(DeliverSm(sequence_number=70))
    pair.esme_sends(Unbind(sequence_number=3))
    pair.smsc_sends(SubmitSmResp(sequence_number=2, message_id="m"))
    pair.esme_sends(DeliverSmResp(sequence_number=70))
    with pytest.raises(LocalProtocolError):
        pair.esme.send(SubmitSm(sequence_number=4))


def test_receipt_crossing_the_esme_unbind_is_received_and_answered() -> None:
    pair = bound(BindTransceiver)
    unbind = pair.esme.send(Unbind(sequence_number=3))
    receipt = pair.smsc.send(DeliverSm(sequence_number=71))  # written before it read the unbind
    pair.esme.receive_data(receipt)
    assert pair.esme.next_event() == DeliverSm(sequence_number=71)
    pair.smsc.receive_data(unbind)
    assert pair.smsc.next_event() == Unbind(sequence_number=3)
    pair.smsc_sends(UnbindResp(sequence_number=3))
    assert pair.states() == (State.UNBOUND, State.UNBOUND)
    pair.esme_sends(DeliverSmResp(sequence_number=71))  # answered after the unbind_resp too
    with pytest.raises(LocalProtocolError):  # but no new request from the ESME
        pair.esme.send(SubmitSm(sequence_number=4))


def test_outbind_then_bind_receiver() -> None:
    pair = Pair()
    pair.smsc_sends(Outbind(sequence_number=1, system_id="SMSC", password="pw"))
    pair.esme_sends(BindReceiver(sequence_number=1, system_id="acme", password="pw"))
    pair.smsc_sends(BindReceiverResp(sequence_number=1))
    assert pair.states() == (State.BOUND_RX, State.BOUND_RX)


# --- what each side may send in which state -----------------------------------------------

ESME_SENDS: list[tuple[type[Pdu], set[State]]] = [
    (SubmitSm, {State.BOUND_TX, State.BOUND_TRX}),
    (QuerySm, {State.BOUND_TX, State.BOUND_TRX}),
    (DataSm, {State.BOUND_TX, State.BOUND_TRX}),
    (DeliverSmResp, {State.BOUND_RX, State.BOUND_TRX, State.UNBINDING, State.UNBOUND}),
    (BindTransmitter, {State.OPEN}),
    (
        EnquireLink,
        {State.OPEN, State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX}
        | {State.BINDING_TX, State.BINDING_RX, State.BINDING_TRX},
    ),
    (Unbind, {State.BOUND_TX, State.BOUND_RX, State.BOUND_TRX, State.UNBINDING}),
    (DeliverSm, set()),
    (AlertNotification, set()),
    (Outbind, set()),
]

SMSC_SENDS: list[tuple[type[Pdu], set[State]]] = [
    # Rule 5: the SMSC's requests may cross an ESME's unbind.
    (DeliverSm, {State.BOUND_RX, State.BOUND_TRX, State.UNBINDING}),
    (DataSm, {State.BOUND_RX, State.BOUND_TRX, State.UNBINDING}),
    (AlertNotification, {State.BOUND_RX, State.BOUND_TRX, State.UNBINDING}),
    (SubmitSmResp, {State.BOUND_TX, State.BOUND_TRX, State.UNBINDING, State.UNBOUND}),
    (BindTransmitterResp, {State.BINDING_TX}),
    (BindReceiverResp, {State.BINDING_RX}),
    (Outbind, {State.OPEN}),
    (SubmitSm, set()),
    (BindTransceiver, set()),
]


def session_in(role: Role, state: State) -> Session:
    session = Session(role)
    session.state = state
    return session


@pytest.mark.parametrize(("cls", "allowed"), ESME_SENDS, ids=lambda x: getattr(x, "__name__", ""))
def test_esme_send_permissions(cls: type[Pdu], allowed: set[State]) -> None:
    for state in State:
        session = session_in(Role.ESME, state)
        pdu = cls(sequence_number=1)
        if state in allowed:
            assert isinstance(session.send(pdu), bytes), state
        else:
            with pytest.raises(LocalProtocolError) as info:
                session.send(pdu)
            assert info.value.command_status == S.ESME_RINVBNDSTS
            assert session.state is state  # a refused send changes nothing


@pytest.mark.parametrize(("cls", "allowed"), ESME_SENDS, ids=lambda x: getattr(x, "__name__", ""))
def test_send_encoded_follows_the_same_tables(cls: type[Pdu], allowed: set[State]) -> None:
    # send_encoded (a cached encoding, sequence_number patched) checks and moves like send.
    for state in State:
        by_send, by_encoded = session_in(Role.ESME, state), session_in(Role.ESME, state)
        pdu = cls(sequence_number=1)
        data = bytearray(encode(pdu))
        if state in allowed:
            assert by_send.send(pdu) == by_encoded.send_encoded(pdu, data, 7)
            assert by_send.state is by_encoded.state, state
        else:
            with pytest.raises(LocalProtocolError) as info:
                by_encoded.send_encoded(pdu, data, 7)
            assert info.value.command_status == S.ESME_RINVBNDSTS
            assert info.value.sequence_number == 7
            assert by_encoded.state is state


@pytest.mark.parametrize(("cls", "allowed"), SMSC_SENDS, ids=lambda x: getattr(x, "__name__", ""))
def test_smsc_send_permissions(cls: type[Pdu], allowed: set[State]) -> None:
    for state in State:
        session = session_in(Role.SMSC, state)
        assert session.can_send(cls(sequence_number=1)) == (state in allowed), state


@pytest.mark.parametrize(("cls", "allowed"), ESME_SENDS, ids=lambda x: getattr(x, "__name__", ""))
def test_smsc_receive_mirrors_esme_send(cls: type[Pdu], allowed: set[State]) -> None:
    for state in State:
        if state is State.CLOSED:
            continue
        session = session_in(Role.SMSC, state)
        session.receive_data(encode(cls(sequence_number=33)))
        if state in allowed:
            assert session.next_event() == cls(sequence_number=33)
        else:
            with pytest.raises(RemoteProtocolError) as info:
                session.next_event()
            assert info.value.sequence_number == 33
            assert not info.value.fatal
            assert session.state is state


def test_submit_before_bind_is_answered_with_rinvbndsts() -> None:
    smsc = Session(Role.SMSC)
    smsc.receive_data(
        encode(SubmitSm(sequence_number=40)) + encode(EnquireLink(sequence_number=41))
    )
    with pytest.raises(RemoteProtocolError) as info:
        smsc.next_event()
    assert info.value.command_status == S.ESME_RINVBNDSTS
    answer = error_response(info.value)
    assert answer == SubmitSmResp(sequence_number=40, command_status=S.ESME_RINVBNDSTS)
    assert isinstance(smsc.send(answer), bytes)  # Rule 4: an error response may always go
    assert smsc.next_event() == EnquireLink(sequence_number=41)  # and the stream goes on


def test_second_bind_is_already_bound() -> None:
    pair = bound(BindTransceiver)
    pair.smsc.receive_data(encode(BindTransmitter(sequence_number=8)))
    with pytest.raises(RemoteProtocolError) as info:
        pair.smsc.next_event()
    assert info.value.command_status == S.ESME_RALYBND
    assert error_response(info.value) == BindTransmitterResp(
        sequence_number=8, command_status=S.ESME_RALYBND
    )
    assert pair.smsc.state is State.BOUND_TRX


def test_esme_receiving_deliver_sm_on_transmitter_bind() -> None:
    esme = session_in(Role.ESME, State.BOUND_TX)
    esme.receive_data(encode(DeliverSm(sequence_number=50)))
    with pytest.raises(RemoteProtocolError) as info:
        esme.next_event()
    assert info.value.command_status == S.ESME_RINVBNDSTS
    assert error_response(info.value) == DeliverSmResp(
        sequence_number=50, command_status=S.ESME_RINVBNDSTS
    )


def test_generic_nack_and_error_responses_allowed_except_closed() -> None:
    for state in State:
        session = session_in(Role.SMSC, state)
        nack = GenericNack(sequence_number=1, command_status=S.ESME_RINVCMDID)
        assert session.can_send(nack) == (state is not State.CLOSED)
        err = SubmitSmResp(sequence_number=1, command_status=S.ESME_RSYSERR)
        assert session.can_send(err) == (state is not State.CLOSED)


def test_fatal_decoder_error_passes_through_session() -> None:
    smsc = Session(Role.SMSC, max_command_length=1024)
    smsc.receive_data(b"\x00\x10\x00\x00" + b"\x00" * 12)
    with pytest.raises(RemoteProtocolError) as info:
        smsc.next_event()
    assert info.value.fatal
    nack = error_response(info.value)
    assert isinstance(nack, GenericNack)
    assert isinstance(smsc.send(nack), bytes)


def test_tables_cover_every_state() -> None:
    for direction in Direction:
        assert set(ALLOWED[direction]) == set(State)
        assert ALLOWED[direction][State.CLOSED] == frozenset()


def test_sequence_counter_on_session() -> None:
    session = Session(Role.ESME)
    assert [session.sequence() for _ in range(3)] == [1, 2, 3]
    assert repr(session) == "<Session ESME OPEN>"
