"""SMPP 3.4 PDUs as frozen, validated value objects: one class per command.

Strategy: each PDU is a ``@dataclass(frozen=True, slots=True, kw_only=True)`` whose fields are the
command's mandatory parameters in wire order (SMPP 3.4 §4), followed by ``tlvs``, the optional
parameters (§3.2.4, §5.3) as a tuple of :class:`Tlv` so that unknown tags round-trip untouched.
The wire layout of a field is declared once, in the field's metadata (:func:`cstr`, :func:`u8`,
:func:`short_message`, …): :mod:`cloudsms.smpp.codec` compiles its encoders and decoders from it,
and the constructor validates against it. Constructors raise :class:`LocalProtocolError` with the
status SMPP 3.4 §5.1.3 assigns to the field (``ESME_RINVSRCADR`` for a source address that is too
long); the decoder runs the same constructor and turns that into a :class:`RemoteProtocolError`,
so an SMSC answers an over-long address with the right status.

Strings (C-Octet Strings, §3.1) are ``str``; the codec maps them to octets with Latin-1, so any
octet a peer sends decodes, and a character outside Latin-1 fails at encode time. Sizes below are
the specification's maximum *including* the terminating NUL, as its tables give them.

    >>> SubmitSm(sequence_number=1, source_addr="CloudSMS", destination_addr="6591234567",
    ...          short_message=b"hello").command_id.name
    'SUBMIT_SM'
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from cloudsms.smpp.constants import SMPP_VERSION_34, CommandId, CommandStatus, Tag
from cloudsms.smpp.errors import LocalProtocolError
from cloudsms.smpp.tlv import Tlv as Tlv

S = CommandStatus

# Kinds of mandatory field, as the codec sees them.
C_STR = 0  # C-Octet String: octets then NUL (§3.1)
U8 = 1  # 1-octet Integer
SHORT_MESSAGE = 2  # sm_length (1 octet) + that many octets (§5.2.21, §5.2.22)
DEST_ADDRESSES = 3  # number_of_dests + dest_address list (submit_multi, §4.5.1.1)
UNSUCCESS_SMES = 4  # no_unsuccess + unsuccess_sme list (submit_multi_resp, §4.5.2)

#: SMPP 3.4 §5.2.21: sm_length is 0–254.
MAX_SHORT_MESSAGE = 254
#: SMPP 3.4 §4.5.1: number_of_dests, "maximum 254 allowed".
MAX_DESTINATIONS = 254


class Wire(NamedTuple):
    """How one mandatory field is laid out on the wire (dataclass field metadata)."""

    kind: int
    #: For C_STR: maximum size in octets including the NUL (the spec's table value).
    size: int = 0
    #: command_status for a value out of bounds (SMPP 3.4 §5.1.3).
    status: CommandStatus = S.ESME_RSYSERR


def cstr(size: int, status: CommandStatus = S.ESME_RSYSERR, default: str = "") -> Any:
    """A C-Octet String field of at most ``size`` octets including its NUL."""
    return dataclasses.field(default=default, metadata={"wire": Wire(C_STR, size, status)})


def u8(default: int = 0, status: CommandStatus = S.ESME_RSYSERR) -> Any:
    """A 1-octet unsigned integer field."""
    return dataclasses.field(default=default, metadata={"wire": Wire(U8, 0, status)})


def _short_message() -> Any:
    return dataclasses.field(
        default=b"", metadata={"wire": Wire(SHORT_MESSAGE, 0, S.ESME_RINVMSGLEN)}
    )


def _special(kind: int, status: CommandStatus) -> Any:
    return dataclasses.field(default=(), metadata={"wire": Wire(kind, 0, status)})


# --------------------------------------------------------------------------------------------
# The base class


@dataclass(frozen=True, slots=True, kw_only=True)
class Pdu:
    """Fields every PDU has: the header (§3.2) less command_length, plus its TLVs."""

    command_id: ClassVar[CommandId]

    #: SMPP 3.4 §3.2: 0x00000001–0x7FFFFFFF; see :class:`cloudsms.smpp.codec.SequenceCounter`.
    #: Only "fits 4 octets" is enforced so that a sloppy peer's numbers can still be answered.
    sequence_number: int
    #: SMPP 3.4 §5.1.3; requests carry 0 (ESME_ROK).
    command_status: int = 0
    #: Optional parameters in wire order (§3.2.4).
    tlvs: tuple[Tlv, ...] = ()

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def is_response(self) -> bool:
        return bool(self.command_id & 0x80000000)

    def tlv(self, tag: int) -> Tlv | None:
        """The first TLV with this tag, or None."""
        for t in self.tlvs:
            if t.tag == tag:
                return t
        return None

    def _tlv_int(self, tag: int) -> int | None:
        t = self.tlv(tag)
        return None if t is None else t.as_int()

    @property
    def message_payload(self) -> bytes | None:
        """message_payload TLV (§5.3.2.32): the text when it exceeds 254 octets."""
        t = self.tlv(Tag.MESSAGE_PAYLOAD)
        return None if t is None else t.value

    @property
    def receipted_message_id(self) -> str | None:
        """receipted_message_id TLV (§5.3.2.12): the SMSC id a receipt refers to."""
        t = self.tlv(Tag.RECEIPTED_MESSAGE_ID)
        return None if t is None else t.as_str()

    @property
    def message_state(self) -> int | None:
        """message_state TLV (§5.3.2.35), see :class:`SmppMessageState`."""
        return self._tlv_int(Tag.MESSAGE_STATE)

    @property
    def network_error_code(self) -> tuple[int, int] | None:
        """network_error_code TLV (§5.3.2.31) as (network type, error code)."""
        t = self.tlv(Tag.NETWORK_ERROR_CODE)
        if t is None or len(t.value) < 1:
            return None
        return t.value[0], int.from_bytes(t.value[1:3], "big")

    @property
    def sar(self) -> tuple[int, int, int] | None:
        """(sar_msg_ref_num, sar_total_segments, sar_segment_seqnum), §5.3.2.22–24, if all set."""
        ref = self._tlv_int(Tag.SAR_MSG_REF_NUM)
        total = self._tlv_int(Tag.SAR_TOTAL_SEGMENTS)
        seq = self._tlv_int(Tag.SAR_SEGMENT_SEQNUM)
        if ref is None or total is None or seq is None:
            return None
        return ref, total, seq

    @property
    def user_message_reference(self) -> int | None:
        return self._tlv_int(Tag.USER_MESSAGE_REFERENCE)

    @property
    def sc_interface_version(self) -> int | None:
        return self._tlv_int(Tag.SC_INTERFACE_VERSION)

    def response(self, command_status: int = 0, **fields: Any) -> Pdu:
        """The response to this request with the same sequence number (§3.2).

        >>> EnquireLink(sequence_number=9).response()
        EnquireLinkResp(sequence_number=9, command_status=0, tlvs=())
        """
        resp_cls = RESPONSE_CLASS.get(type(self))
        if resp_cls is None:
            raise LocalProtocolError(f"{type(self).__name__} has no response PDU")
        return resp_cls(
            sequence_number=self.sequence_number, command_status=command_status, **fields
        )


# --------------------------------------------------------------------------------------------
# Header-only PDUs


@dataclass(frozen=True, slots=True, kw_only=True)
class GenericNack(Pdu):
    """generic_nack, §4.3: answers a PDU whose header was invalid."""

    command_id = CommandId.GENERIC_NACK


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLink(Pdu):
    """enquire_link, §4.11."""

    command_id = CommandId.ENQUIRE_LINK


@dataclass(frozen=True, slots=True, kw_only=True)
class EnquireLinkResp(Pdu):
    command_id = CommandId.ENQUIRE_LINK_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class Unbind(Pdu):
    """unbind, §4.2."""

    command_id = CommandId.UNBIND


@dataclass(frozen=True, slots=True, kw_only=True)
class UnbindResp(Pdu):
    command_id = CommandId.UNBIND_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelSmResp(Pdu):
    command_id = CommandId.CANCEL_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceSmResp(Pdu):
    command_id = CommandId.REPLACE_SM_RESP


# --------------------------------------------------------------------------------------------
# Binding (§4.1) and outbind (§4.1.7)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Bind(Pdu):
    system_id: str = cstr(16, S.ESME_RINVSYSID)  # §4.1.1: 15 characters + NUL
    password: str = cstr(9, S.ESME_RINVPASWD)  # 8 + NUL
    system_type: str = cstr(13, S.ESME_RINVSYSTYP)  # 12 + NUL
    interface_version: int = u8(SMPP_VERSION_34)
    addr_ton: int = u8()
    addr_npi: int = u8()
    address_range: str = cstr(41, S.ESME_RBINDFAIL)  # 40 + NUL


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransmitter(_Bind):
    """bind_transmitter, §4.1.1."""

    command_id = CommandId.BIND_TRANSMITTER


@dataclass(frozen=True, slots=True, kw_only=True)
class BindReceiver(_Bind):
    """bind_receiver, §4.1.3."""

    command_id = CommandId.BIND_RECEIVER


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiver(_Bind):
    """bind_transceiver, §4.1.5."""

    command_id = CommandId.BIND_TRANSCEIVER


@dataclass(frozen=True, slots=True, kw_only=True)
class _BindResp(Pdu):
    #: SMSC identifier; may be absent when command_status is an error (§4.1.2).
    system_id: str = cstr(16, S.ESME_RINVSYSID)


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransmitterResp(_BindResp):
    command_id = CommandId.BIND_TRANSMITTER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class BindReceiverResp(_BindResp):
    command_id = CommandId.BIND_RECEIVER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class BindTransceiverResp(_BindResp):
    command_id = CommandId.BIND_TRANSCEIVER_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class Outbind(Pdu):
    """outbind, §4.1.7: the SMSC asks the ESME to bind_receiver."""

    command_id = CommandId.OUTBIND

    system_id: str = cstr(16, S.ESME_RINVSYSID)
    password: str = cstr(9, S.ESME_RINVPASWD)


# --------------------------------------------------------------------------------------------
# Messages (§4.4 submit_sm, §4.6 deliver_sm share one layout)


@dataclass(frozen=True, slots=True, kw_only=True)
class _ShortMessagePdu(Pdu):
    service_type: str = cstr(6, S.ESME_RINVSERTYP)  # §5.2.11: 5 + NUL
    source_addr_ton: int = u8(0, S.ESME_RINVSRCTON)
    source_addr_npi: int = u8(0, S.ESME_RINVSRCNPI)
    source_addr: str = cstr(21, S.ESME_RINVSRCADR)  # §4.4.1: 20 + NUL
    dest_addr_ton: int = u8(0, S.ESME_RINVDSTTON)
    dest_addr_npi: int = u8(0, S.ESME_RINVDSTNPI)
    destination_addr: str = cstr(21, S.ESME_RINVDSTADR)  # 20 + NUL
    esm_class: int = u8(0, S.ESME_RINVESMCLASS)  # §5.2.12
    protocol_id: int = u8()
    priority_flag: int = u8(0, S.ESME_RINVPRTFLG)
    schedule_delivery_time: str = cstr(17, S.ESME_RINVSCHED)  # §7.1.1: 16 + NUL or NULL
    validity_period: str = cstr(17, S.ESME_RINVEXPIRY)
    registered_delivery: int = u8(0, S.ESME_RINVREGDLVFLG)  # §5.2.17
    replace_if_present_flag: int = u8(0, S.ESME_RINVREPFLAG)
    data_coding: int = u8()  # §5.2.19
    sm_default_msg_id: int = u8(0, S.ESME_RINVDFTMSGID)
    #: §5.2.22: at most 254 octets; longer text goes in the message_payload TLV.
    short_message: bytes = _short_message()

    @property
    def payload(self) -> bytes:
        """The user data: message_payload when present (§5.3.2.32), else short_message."""
        mp = self.message_payload
        return self.short_message if mp is None else mp


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSm(_ShortMessagePdu):
    """submit_sm, §4.4.1."""

    command_id = CommandId.SUBMIT_SM


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSm(_ShortMessagePdu):
    """deliver_sm, §4.6.1 (an MO message or, with esm_class 0x04, a delivery receipt)."""

    command_id = CommandId.DELIVER_SM


@dataclass(frozen=True, slots=True, kw_only=True)
class _MessageIdResp(Pdu):
    #: §5.2.23: up to 64 characters + NUL; may be absent on an error status (§4.4.2).
    message_id: str = cstr(65, S.ESME_RINVMSGID)


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitSmResp(_MessageIdResp):
    """submit_sm_resp, §4.4.2."""

    command_id = CommandId.SUBMIT_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverSmResp(_MessageIdResp):
    """deliver_sm_resp, §4.6.2 (message_id unused, NULL)."""

    command_id = CommandId.DELIVER_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSmResp(_MessageIdResp):
    """data_sm_resp, §4.7.2."""

    command_id = CommandId.DATA_SM_RESP


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSm(Pdu):
    """data_sm, §4.7.1: the user data travels in the message_payload TLV."""

    command_id = CommandId.DATA_SM

    service_type: str = cstr(6, S.ESME_RINVSERTYP)
    source_addr_ton: int = u8(0, S.ESME_RINVSRCTON)
    source_addr_npi: int = u8(0, S.ESME_RINVSRCNPI)
    source_addr: str = cstr(65, S.ESME_RINVSRCADR)  # §4.7.1: 64 + NUL
    dest_addr_ton: int = u8(0, S.ESME_RINVDSTTON)
    dest_addr_npi: int = u8(0, S.ESME_RINVDSTNPI)
    destination_addr: str = cstr(65, S.ESME_RINVDSTADR)
    esm_class: int = u8(0, S.ESME_RINVESMCLASS)
    registered_delivery: int = u8(0, S.ESME_RINVREGDLVFLG)
    data_coding: int = u8()

    @property
    def payload(self) -> bytes:
        mp = self.message_payload
        return b"" if mp is None else mp


# --------------------------------------------------------------------------------------------
# Message management: query_sm §4.8, cancel_sm §4.9, replace_sm §4.10


@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySm(Pdu):
    command_id = CommandId.QUERY_SM

    message_id: str = cstr(65, S.ESME_RINVMSGID)
    source_addr_ton: int = u8(0, S.ESME_RINVSRCTON)
    source_addr_npi: int = u8(0, S.ESME_RINVSRCNPI)
    source_addr: str = cstr(21, S.ESME_RINVSRCADR)


@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySmResp(Pdu):
    command_id = CommandId.QUERY_SM_RESP

    message_id: str = cstr(65, S.ESME_RINVMSGID)
    final_date: str = cstr(17, S.ESME_RQUERYFAIL)
    message_state: int = u8(0, S.ESME_RQUERYFAIL)  # shadows Pdu.message_state (the TLV)
    error_code: int = u8(0, S.ESME_RQUERYFAIL)


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelSm(Pdu):
    command_id = CommandId.CANCEL_SM

    service_type: str = cstr(6, S.ESME_RINVSERTYP)
    message_id: str = cstr(65, S.ESME_RINVMSGID)
    source_addr_ton: int = u8(0, S.ESME_RINVSRCTON)
    source_addr_npi: int = u8(0, S.ESME_RINVSRCNPI)
    source_addr: str = cstr(21, S.ESME_RINVSRCADR)
    dest_addr_ton: int = u8(0, S.ESME_RINVDSTTON)
    dest_addr_npi: int = u8(0, S.ESME_RINVDSTNPI)
    destination_addr: str = cstr(21, S.ESME_RINVDSTADR)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceSm(Pdu):
    command_id = CommandId.REPLACE_SM

    message_id: str = cstr(65, S.ESME_RINVMSGID)
    source_addr_ton: int = u8(0, S.ESME_RINVSRCTON)
    source_addr_npi: int = u8(0, S.ESME_RINVSRCNPI)
    source_addr: str = cstr(21, S.ESME_RINVSRCADR)
    schedule_delivery_time: str = cstr(17, S.ESME_RINVSCHED)
    validity_period: str = cstr(17, S.ESME_RINVEXPIRY)
    registered_delivery: int = u8(0, S.ESME_RINVREGDLVFLG)
    sm_default_msg_id: int = u8(0, S.ESME_RINVDFTMSGID)
    short_message: bytes = _short_message()


# --------------------------------------------------------------------------------------------
# submit_multi §4.5 and alert_notification §4.12


@dataclass(frozen=True, slots=True)
class SmeAddress:
    """dest_flag 1 (§5.2.25): an SME address in a submit_multi destination list."""

    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""


@dataclass(frozen=True, slots=True)
class DistributionList:
    """dest_flag 2 (§5.2.25): a distribution list name (20 characters + NUL)."""

    dl_name: str = ""


@dataclass(frozen=True, slots=True)
class UnsuccessSme:
    """One unsuccess_sme entry of submit_multi_resp (§4.5.2)."""

    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    error_status_code: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitMulti(Pdu):
    command_id = CommandId.SUBMIT_MULTI

    service_type: str = cstr(6, S.ESME_RINVSERTYP)
    source_addr_ton: int = u8(0, S.ESME_RINVSRCTON)
    source_addr_npi: int = u8(0, S.ESME_RINVSRCNPI)
    source_addr: str = cstr(21, S.ESME_RINVSRCADR)
    #: number_of_dests + dest_address list (at most 254 entries).
    dest_addresses: tuple[SmeAddress | DistributionList, ...] = _special(
        DEST_ADDRESSES, S.ESME_RINVNUMDESTS
    )
    esm_class: int = u8(0, S.ESME_RINVESMCLASS)
    protocol_id: int = u8()
    priority_flag: int = u8(0, S.ESME_RINVPRTFLG)
    schedule_delivery_time: str = cstr(17, S.ESME_RINVSCHED)
    validity_period: str = cstr(17, S.ESME_RINVEXPIRY)
    registered_delivery: int = u8(0, S.ESME_RINVREGDLVFLG)
    replace_if_present_flag: int = u8(0, S.ESME_RINVREPFLAG)
    data_coding: int = u8()
    sm_default_msg_id: int = u8(0, S.ESME_RINVDFTMSGID)
    short_message: bytes = _short_message()


@dataclass(frozen=True, slots=True, kw_only=True)
class SubmitMultiResp(Pdu):
    command_id = CommandId.SUBMIT_MULTI_RESP

    message_id: str = cstr(65, S.ESME_RINVMSGID)
    unsuccess_smes: tuple[UnsuccessSme, ...] = _special(UNSUCCESS_SMES, S.ESME_RINVNUMDESTS)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertNotification(Pdu):
    command_id = CommandId.ALERT_NOTIFICATION

    source_addr_ton: int = u8(0, S.ESME_RINVSRCTON)
    source_addr_npi: int = u8(0, S.ESME_RINVSRCNPI)
    source_addr: str = cstr(65, S.ESME_RINVSRCADR)
    esme_addr_ton: int = u8()
    esme_addr_npi: int = u8()
    esme_addr: str = cstr(65, S.ESME_RINVDSTADR)


# --------------------------------------------------------------------------------------------
# Registries and validation

#: Every concrete PDU class, by command_id.
PDU_CLASSES: dict[int, type[Pdu]] = {
    cls.command_id: cls
    for cls in (
        GenericNack,
        BindReceiver,
        BindReceiverResp,
        BindTransmitter,
        BindTransmitterResp,
        QuerySm,
        QuerySmResp,
        SubmitSm,
        SubmitSmResp,
        DeliverSm,
        DeliverSmResp,
        Unbind,
        UnbindResp,
        ReplaceSm,
        ReplaceSmResp,
        CancelSm,
        CancelSmResp,
        BindTransceiver,
        BindTransceiverResp,
        Outbind,
        EnquireLink,
        EnquireLinkResp,
        SubmitMulti,
        SubmitMultiResp,
        AlertNotification,
        DataSm,
        DataSmResp,
    )
}

#: request class → response class (§3.1: response command_id = request's | 0x80000000).
RESPONSE_CLASS: dict[type[Pdu], type[Pdu]] = {
    cls: PDU_CLASSES[cid | 0x80000000]
    for cid, cls in PDU_CLASSES.items()
    if not cid & 0x80000000 and cid | 0x80000000 in PDU_CLASSES
}

#: Per class: its mandatory fields in wire order as (name, Wire).
WIRE_FIELDS: dict[type[Pdu], tuple[tuple[str, Wire], ...]] = {
    cls: tuple(
        (f.name, f.metadata["wire"]) for f in dataclasses.fields(cls) if "wire" in f.metadata
    )
    for cls in PDU_CLASSES.values()
}

# Precomputed checks per class, so that validation is a few tight loops.
_STR_CHECKS: dict[type[Pdu], tuple[tuple[str, int, CommandStatus], ...]] = {
    cls: tuple((n, w.size - 1, w.status) for n, w in fs if w.kind == C_STR)
    for cls, fs in WIRE_FIELDS.items()
}
_U8_CHECKS: dict[type[Pdu], tuple[tuple[str, CommandStatus], ...]] = {
    cls: tuple((n, w.status) for n, w in fs if w.kind == U8) for cls, fs in WIRE_FIELDS.items()
}
_OTHER: dict[type[Pdu], tuple[str, ...]] = {
    cls: tuple(n for n, w in fs if w.kind not in (C_STR, U8)) for cls, fs in WIRE_FIELDS.items()
}


def _fail(pdu: Pdu, message: str, status: int) -> LocalProtocolError:
    return LocalProtocolError(
        f"{type(pdu).__name__}: {message}",
        command_status=CommandStatus(status),
        sequence_number=pdu.sequence_number if isinstance(pdu.sequence_number, int) else None,
        command_id=pdu.command_id,
    )


def _validate(pdu: Pdu) -> None:
    cls = type(pdu)
    if cls not in WIRE_FIELDS:
        raise LocalProtocolError(f"{cls.__name__} is not a concrete PDU class")
    seq = pdu.sequence_number
    if not isinstance(seq, int) or not 0 <= seq <= 0xFFFFFFFF:
        raise _fail(pdu, f"sequence_number {seq!r} is not a 4-octet integer", S.ESME_RSYSERR)
    status = pdu.command_status
    if not isinstance(status, int) or not 0 <= status <= 0xFFFFFFFF:
        raise _fail(pdu, f"command_status {status!r} is not a 4-octet integer", S.ESME_RSYSERR)
    for name, limit, code in _STR_CHECKS[cls]:
        v = getattr(pdu, name)
        if type(v) is not str:
            raise _fail(pdu, f"{name} must be str, not {type(v).__name__}", code)
        if len(v) > limit:
            raise _fail(pdu, f"{name} is longer than {limit} characters (SMPP 3.4 §5.2)", code)
        if "\0" in v:
            raise _fail(pdu, f"{name} contains a NUL", code)
    for name, code in _U8_CHECKS[cls]:
        v = getattr(pdu, name)
        if not isinstance(v, int) or not 0 <= v <= 0xFF:
            raise _fail(pdu, f"{name} {v!r} is not a 1-octet integer", code)
    for name in _OTHER[cls]:
        _validate_other(pdu, name, getattr(pdu, name))
    tlvs = pdu.tlvs
    if type(tlvs) is not tuple:
        raise _fail(pdu, "tlvs must be a tuple of Tlv", S.ESME_RINVOPTPARSTREAM)
    for t in tlvs:
        if type(t) is not Tlv:
            raise _fail(pdu, f"tlvs must hold Tlv, not {type(t).__name__}", S.ESME_RINVOPTPARSTREAM)


def _validate_other(pdu: Pdu, name: str, v: object) -> None:
    if name == "short_message":
        if not isinstance(v, bytes):
            raise _fail(pdu, "short_message must be bytes", S.ESME_RINVMSGLEN)
        if len(v) > MAX_SHORT_MESSAGE:
            raise _fail(
                pdu,
                f"short_message is {len(v)} octets, over 254 (SMPP 3.4 §5.2.21);"
                " use the message_payload TLV",
                S.ESME_RINVMSGLEN,
            )
        return
    if not isinstance(v, tuple) or len(v) > MAX_DESTINATIONS:
        raise _fail(pdu, f"{name} must be a tuple of at most 254 entries", S.ESME_RINVNUMDESTS)
    for item in v:
        if isinstance(item, SmeAddress):
            _check_addr(pdu, item.dest_addr_ton, item.dest_addr_npi, item.destination_addr)
        elif isinstance(item, DistributionList) and name == "dest_addresses":
            if not isinstance(item.dl_name, str) or len(item.dl_name) > 20:
                raise _fail(pdu, "dl_name must be at most 20 characters", S.ESME_RINVDLNAME)
        elif isinstance(item, UnsuccessSme) and name == "unsuccess_smes":
            _check_addr(pdu, item.dest_addr_ton, item.dest_addr_npi, item.destination_addr)
            if not isinstance(item.error_status_code, int) or not (
                0 <= item.error_status_code <= 0xFFFFFFFF
            ):
                raise _fail(pdu, "error_status_code is not a 4-octet integer", S.ESME_RSYSERR)
        else:
            raise _fail(pdu, f"{name} cannot hold {type(item).__name__}", S.ESME_RINVDESTFLAG)


def _check_addr(pdu: Pdu, ton: object, npi: object, addr: object) -> None:
    for v in (ton, npi):
        if not isinstance(v, int) or not 0 <= v <= 0xFF:
            raise _fail(pdu, f"TON/NPI {v!r} is not a 1-octet integer", S.ESME_RINVDSTTON)
    if not isinstance(addr, str) or len(addr) > 20 or "\0" in addr:
        raise _fail(pdu, "destination_addr must be at most 20 characters", S.ESME_RINVDSTADR)
