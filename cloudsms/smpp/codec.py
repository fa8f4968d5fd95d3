"""Bytes ↔ PDUs: ``encode(pdu) -> bytes`` and an incremental :class:`Decoder`. No I/O.

Strategy: the wire layout of every PDU is declared once, as field metadata in
:mod:`cloudsms.smpp.pdu`; at import this module compiles it into a short list of operations per
class: a C-Octet String, a run of consecutive 1-octet integers packed by one precompiled
``struct.Struct``, the sm_length + short_message pair, the submit_multi lists. Encoding and
decoding walk that list, so the cost is per field, never per octet; C-Octet Strings are found
with ``bytes.find(b"\\0", pos)``.

The decoder keeps one ``bytearray`` and an offset (as h11's ``_receivebuffer.py`` does): a PDU is
consumed by moving the offset, and the consumed prefix is dropped only when it is the whole
buffer or more than half of it, so the work stays O(bytes received) however the stream is cut.

Decoder contract (what the transport does with each outcome of ``next_pdu()``):

* a :class:`~cloudsms.smpp.pdu.Pdu`: handle it, call ``next_pdu()`` again;
* ``NEED_DATA``: read from the socket, ``receive_data()``, call again;
* ``RemoteProtocolError`` with ``fatal=False``: the header was valid and exactly that PDU's
  ``command_length`` octets were consumed, but its command_id is unknown (``ESME_RINVCMDID``) or
  its body is malformed (``ESME_RINVCMDLEN``, ``ESME_RINVMSGLEN``, ``ESME_RINVOPTPARSTREAM``, or
  the field's own status such as ``ESME_RINVSRCADR``). ``sequence_number`` and ``command_id``
  are set. Send :func:`error_response` (if not None) and keep calling ``next_pdu()``;
* ``RemoteProtocolError`` with ``fatal=True``: command_length is below 16 or above
  ``max_command_length`` (``ESME_RINVCMDLEN``). The stream cannot be resynchronised: the body
  was not buffered, the buffer is dropped, later ``receive_data()`` calls discard their input
  and every later ``next_pdu()`` raises the same error. Send :func:`error_response` (a
  generic_nack) and close the connection.

Leniency, because real SMSCs are sloppy: a missing NUL on the *last* mandatory C-Octet String of
a body is accepted (the string runs to the end of the body); a response body that ends early at
a field boundary (typical of ``submit_sm_resp`` with an error status, §4.4.2, or an empty
``deliver_sm_resp``) gives the remaining fields their defaults; fewer than 4 octets left after
the mandatory fields (too short to be a TLV header, typically a stray NUL) are ignored and
counted in ``Decoder.ignored_octets``. A TLV whose length runs past the end of the PDU is
``ESME_RINVOPTPARSTREAM``; a request body shorter than its mandatory fields is
``ESME_RINVCMDLEN``.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from collections.abc import Callable
from typing import Any, Final, Literal, NamedTuple

from cloudsms.smpp import compiled
from cloudsms.smpp.constants import HEADER_LENGTH, MAX_SEQUENCE_NUMBER, CommandStatus
from cloudsms.smpp.errors import LocalProtocolError, RemoteProtocolError, SmppError
from cloudsms.smpp.pdu import (
    C_STR,
    DEST_ADDRESSES,
    MAX_DESTINATIONS,
    MAX_SHORT_MESSAGE,
    PDU_CLASSES,
    RESPONSE_CLASS,
    SHORT_MESSAGE,
    U8,
    UNSUCCESS_SMES,
    WIRE_FIELDS,
    DistributionList,
    GenericNack,
    Pdu,
    SmeAddress,
    UnsuccessSme,
)
from cloudsms.smpp.tlv import Tlv

S = CommandStatus

#: Default cap on command_length. The largest PDU a conforming peer sends is a data_sm or
#: submit_sm whose message_payload TLV holds its maximum of 65,535 octets (its Length field is
#: 2 octets, §3.2.4; §5.3.2.32 says "up to 64K"), plus mandatory fields and a few other TLVs:
#: 64 KiB + 1 KiB covers that. Anything bigger is an attack or a desynchronised stream, and the
#: cap is also the most a connection can make us buffer.
DEFAULT_MAX_COMMAND_LENGTH: Final = 65_536 + 1_024

_HEADER = struct.Struct(">IIII")
_TLV_HEADER = struct.Struct(">HH")
_U32 = struct.Struct(">I")
_ADDR_TON_NPI = struct.Struct(">BB")


class _Sentinel(enum.Enum):
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return self.value


#: Returned by :meth:`Decoder.next_pdu` when more bytes are needed for the next PDU.
NEED_DATA: Final = _Sentinel.NEED_DATA
NeedData = Literal[_Sentinel.NEED_DATA]

# ---------------------------------------------------------------------------------------------
# Compiled operations


_OP_CSTR = compiled.OP_CSTR
_OP_BYTE = compiled.OP_BYTE
_OP_GROUP = compiled.OP_GROUP
_OP_SM = compiled.OP_SM
_OP_DESTS = compiled.OP_DESTS
_OP_UNSUCCESS = compiled.OP_UNSUCCESS

_Op = compiled.Op


def _compile(cls: type[Pdu]) -> tuple[_Op, ...]:
    """The operations for ``cls``; ``index`` is the field's position in dataclasses.fields()."""
    position = {f.name: i for i, f in enumerate(dataclasses.fields(cls))}
    ops: list[_Op] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) == 1:
            ops.append((_OP_BYTE, run[0], position[run[0]]))
        elif run:
            names = tuple(run)
            first = position[names[0]]
            ops.append(
                (
                    _OP_GROUP,
                    names,
                    first,
                    struct.Struct(">" + "B" * len(names)),
                    first + len(names),
                )
            )
        run.clear()

    for name, wire in WIRE_FIELDS[cls]:
        if wire.kind == U8:
            if run and position[name] != position[run[-1]] + 1:  # pragma: no cover
                flush()
            run.append(name)
            continue
        flush()
        if wire.kind == C_STR:
            ops.append((_OP_CSTR, name, position[name], wire.size, wire.status))
        elif wire.kind == SHORT_MESSAGE:
            ops.append((_OP_SM, name, position[name], wire.status))
        elif wire.kind == DEST_ADDRESSES:
            ops.append((_OP_DESTS, name, position[name], wire.status))
        elif wire.kind == UNSUCCESS_SMES:
            ops.append((_OP_UNSUCCESS, name, position[name], wire.status))
        else:  # pragma: no cover - a new kind added to pdu.py without codec support
            raise AssertionError(wire.kind)
    flush()
    return tuple(ops)


class _Layout(NamedTuple):
    """What the decoder needs to build instances of one class without calling __init__."""

    cls: type[Pdu]
    ops: tuple[_Op, ...]
    is_response: bool
    #: slot setters of every dataclass field, in field order
    setters: tuple[Callable[[Any, Any], None], ...]
    #: default value of every field, in field order (sequence_number's is a placeholder)
    defaults: tuple[Any, ...]
    index_status: int
    index_tlvs: int


def _layout(cls: type[Pdu]) -> _Layout:
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    return _Layout(
        cls=cls,
        ops=_OPS[cls],
        is_response=bool(cls.command_id & 0x80000000),
        setters=tuple(getattr(cls, f.name).__set__ for f in fields),
        defaults=tuple(None if f.default is dataclasses.MISSING else f.default for f in fields),
        index_status=names.index("command_status"),
        index_tlvs=names.index("tlvs"),
    )


_OPS: dict[type[Pdu], tuple[_Op, ...]] = {cls: _compile(cls) for cls in PDU_CLASSES.values()}
_LAYOUTS: dict[int, _Layout] = {cid: _layout(cls) for cid, cls in PDU_CLASSES.items()}
#: The fast decoder of each command_id that has one (see :func:`decode_body`).
_FAST: dict[int, compiled.FastDecoder] = {
    cid: fast
    for cid, layout in _LAYOUTS.items()
    if (fast := compiled.make_fast_decoder(
        layout.cls, layout.ops, layout.setters, layout.index_status, layout.index_tlvs
    )) is not None
}  # fmt: skip
# sequence_number is the first field of every PDU (pdu.Pdu); the decoder relies on it.
assert all(dataclasses.fields(c)[0].name == "sequence_number" for c in PDU_CLASSES.values())

# ---------------------------------------------------------------------------------------------
# Encoding


def encode(pdu: Pdu) -> bytes:
    """The wire form of ``pdu`` (header included).

    >>> from cloudsms.smpp.pdu import EnquireLink
    >>> encode(EnquireLink(sequence_number=1)).hex()
    '00000010000000150000000000000001'

    Raises LocalProtocolError when a value cannot be represented (e.g. a character outside
    Latin-1 in a C-Octet String). Each class has its own encoder, generated from its layout
    (:mod:`cloudsms.smpp.compiled`).
    """
    try:
        encoder = _ENCODERS[type(pdu)]
    except KeyError:
        raise LocalProtocolError(f"cannot encode {type(pdu).__name__}") from None
    try:
        return encoder(pdu)
    except (UnicodeEncodeError, struct.error, ValueError, TypeError, AttributeError) as exc:
        raise LocalProtocolError(
            f"cannot encode {type(pdu).__name__}: {exc}",
            sequence_number=pdu.sequence_number,
            command_id=pdu.command_id,
        ) from exc


def _dests_bytes(dests: tuple[SmeAddress | DistributionList, ...]) -> bytes:
    out = bytearray()
    _encode_dests(out, dests)
    return bytes(out)


def _unsuccess_bytes(smes: tuple[UnsuccessSme, ...]) -> bytes:
    out = bytearray()
    _encode_unsuccess(out, smes)
    return bytes(out)


def _encode_dests(out: bytearray, dests: tuple[SmeAddress | DistributionList, ...]) -> None:
    out.append(len(dests))
    for d in dests:
        if isinstance(d, SmeAddress):
            out += bytes((1, d.dest_addr_ton, d.dest_addr_npi))
            out += d.destination_addr.encode("latin-1")
        else:
            out.append(2)
            out += d.dl_name.encode("latin-1")
        out.append(0)


def _encode_unsuccess(out: bytearray, smes: tuple[UnsuccessSme, ...]) -> None:
    out.append(len(smes))
    for u in smes:
        out += _ADDR_TON_NPI.pack(u.dest_addr_ton, u.dest_addr_npi)
        out += u.destination_addr.encode("latin-1")
        out.append(0)
        out += _U32.pack(u.error_status_code)


_ENCODERS: dict[type[Pdu], compiled.Encoder] = {
    cls: compiled.make_encoder(
        cls, _OPS[cls], {_OP_DESTS: _dests_bytes, _OP_UNSUCCESS: _unsuccess_bytes}
    )
    for cls in PDU_CLASSES.values()
}


# ---------------------------------------------------------------------------------------------
# Decoding


class _Truncated(Exception):
    """Internal: the body ended inside a mandatory field."""


def decode_body(
    command_id: int, command_status: int, sequence_number: int, body: bytes
) -> tuple[Pdu, int]:
    """Decode one PDU from its header values and body; returns (pdu, ignored trailing octets).

    Raises RemoteProtocolError (never fatal: the caller knows where the PDU ends).

    A well-formed body is decoded by the class's generated fast decoder; anything it does not
    accept (leniencies, errors, the submit_multi lists) by the generic one below, which is the
    reference for what a body means (:mod:`cloudsms.smpp.compiled`).
    """
    fast = _FAST.get(command_id)
    if fast is not None:
        try:
            return fast(command_status, sequence_number, body), 0
        except Exception:
            pass  # the generic decoder below says what is wrong
    layout = _LAYOUTS.get(command_id)
    if layout is None:
        raise RemoteProtocolError(
            f"unknown command_id 0x{command_id:08X}",
            command_status=S.ESME_RINVCMDID,
            sequence_number=sequence_number,
            command_id=command_id,
        )
    try:
        return _decode(layout, command_status, sequence_number, body)
    except RemoteProtocolError as exc:
        if exc.sequence_number is None:  # raised by a helper that did not know the header
            exc.sequence_number = sequence_number
            exc.command_id = command_id
        raise
    except _Truncated as exc:
        raise RemoteProtocolError(
            f"{layout.cls.__name__}: command_length too short for the mandatory fields ({exc})",
            command_status=S.ESME_RINVCMDLEN,
            sequence_number=sequence_number,
            command_id=command_id,
        ) from exc
    except (SmppError, struct.error, IndexError, ValueError, KeyError, TypeError) as exc:
        # Safety net: the checks below should make these unreachable.
        raise RemoteProtocolError(
            f"{layout.cls.__name__}: malformed body ({exc!r})",
            command_status=getattr(exc, "command_status", S.ESME_RINVCMDLEN),
            sequence_number=sequence_number,
            command_id=command_id,
        ) from exc


def _remote(cls: type[Pdu], msg: str, status: CommandStatus, seq: int) -> RemoteProtocolError:
    return RemoteProtocolError(
        f"{cls.__name__}: {msg}",
        command_status=status,
        sequence_number=seq,
        command_id=cls.command_id,
    )


def _decode(layout: _Layout, status: int, seq: int, body: bytes) -> tuple[Pdu, int]:
    """Parse ``body`` into a new instance of ``layout.cls``.

    The instance is built with ``object.__new__`` and the slots' setters instead of __init__:
    the parse below already guarantees what the constructor checks (octet ranges, no NUL in
    strings, the size limits, which it checks itself), and skipping the dataclass __init__
    makes decoding about three times faster. The property tests assert that every decoded PDU
    passes the constructor's validation.
    """
    vals = list(layout.defaults)
    vals[0] = seq
    vals[layout.index_status] = status
    find = body.find
    n = len(body)
    p = 0
    ops = layout.ops
    last = len(ops) - 1
    for i, op in enumerate(ops):
        if p >= n:
            if layout.is_response:  # §4.4.2 & co: an error response may stop early
                break
            raise _Truncated(f"no {op[1]}")
        kind = op[0]
        if kind == _OP_CSTR:
            z = find(b"\0", p)
            if z < 0:
                if i != last:
                    raise _Truncated(f"{op[1]} has no NUL")
                z = n  # lenient: the last string of the body lost its NUL
            if z - p >= op[3]:
                raise _remote(layout.cls, f"{op[1]} is longer than {op[3] - 1} octets", op[4], seq)
            vals[op[2]] = body[p:z].decode("latin-1")
            p = z + 1
        elif kind == _OP_GROUP:
            st = op[3]
            if p + st.size > n:
                raise _Truncated(f"{op[1]} incomplete")
            vals[op[2] : op[4]] = st.unpack_from(body, p)
            p += st.size
        elif kind == _OP_BYTE:
            vals[op[2]] = body[p]
            p += 1
        elif kind == _OP_SM:
            length = body[p]
            p += 1
            if length > MAX_SHORT_MESSAGE or p + length > n:
                raise _remote(layout.cls, f"sm_length {length} is invalid", op[3], seq)
            vals[op[2]] = body[p : p + length]
            p += length
        elif kind == _OP_DESTS:
            vals[op[2]], p = _decode_dests(body, p)
        else:
            vals[op[2]], p = _decode_unsuccess(body, p)
    ignored = 0
    if p < n:
        tlvs: list[Tlv] = []
        while p < n:
            if n - p < 4:  # too short for a TLV header: trailing garbage, ignored (module doc)
                ignored = n - p
                break
            tag, length = _TLV_HEADER.unpack_from(body, p)
            p += 4
            if p + length > n:
                raise _remote(
                    layout.cls,
                    f"TLV 0x{tag:04X} length {length} runs past the PDU",
                    S.ESME_RINVOPTPARSTREAM,
                    seq,
                )
            tlv = _new_tlv(Tlv)
            _set_tag(tlv, tag)
            _set_value(tlv, body[p : p + length])
            tlvs.append(tlv)
            p += length
        vals[layout.index_tlvs] = tuple(tlvs)
    pdu = _new(layout.cls)
    for setter, value in zip(layout.setters, vals, strict=True):
        setter(pdu, value)
    return pdu, ignored


_new: Callable[[type[Pdu]], Pdu] = object.__new__
_new_tlv: Callable[[type[Tlv]], Tlv] = object.__new__
_set_tag: Callable[[Tlv, int], None] = vars(Tlv)["tag"].__set__
_set_value: Callable[[Tlv, bytes], None] = vars(Tlv)["value"].__set__


def _cstr_at(
    body: bytes, p: int, max_octets: int, what: str, status: CommandStatus
) -> tuple[str, int]:
    z = body.find(b"\0", p)
    if z < 0:
        raise _Truncated(f"{what} has no NUL")
    if z - p >= max_octets:
        raise RemoteProtocolError(
            f"{what} is longer than {max_octets - 1} octets", command_status=status
        )
    return body[p:z].decode("latin-1"), z + 1


def _decode_dests(body: bytes, p: int) -> tuple[tuple[SmeAddress | DistributionList, ...], int]:
    count = body[p]
    p += 1
    if count > MAX_DESTINATIONS:
        raise RemoteProtocolError(
            f"number_of_dests {count} is over 254", command_status=S.ESME_RINVNUMDESTS
        )
    out: list[SmeAddress | DistributionList] = []
    for _ in range(count):
        if p >= len(body):
            raise _Truncated("dest_address list")
        flag = body[p]
        if flag == 1:
            if p + 3 > len(body):
                raise _Truncated("dest_address")
            ton, npi = body[p + 1], body[p + 2]
            addr, p = _cstr_at(body, p + 3, 21, "destination_addr", S.ESME_RINVDSTADR)
            out.append(SmeAddress(ton, npi, addr))
        elif flag == 2:
            name, p = _cstr_at(body, p + 1, 21, "dl_name", S.ESME_RINVDLNAME)
            out.append(DistributionList(name))
        else:
            raise _remote_dest_flag(flag)
    return tuple(out), p


def _remote_dest_flag(flag: int) -> RemoteProtocolError:
    # sequence_number/command_id are filled in by decode_body's re-raise below.
    return RemoteProtocolError(
        f"dest_flag {flag} is neither 1 nor 2 (§5.2.25)", command_status=S.ESME_RINVDESTFLAG
    )


def _decode_unsuccess(body: bytes, p: int) -> tuple[tuple[UnsuccessSme, ...], int]:
    count = body[p]
    p += 1
    if count > MAX_DESTINATIONS:
        raise RemoteProtocolError(
            f"no_unsuccess {count} is over 254", command_status=S.ESME_RINVNUMDESTS
        )
    out: list[UnsuccessSme] = []
    for _ in range(count):
        if p + 2 > len(body):
            raise _Truncated("unsuccess_sme")
        ton, npi = body[p], body[p + 1]
        addr, p = _cstr_at(body, p + 2, 21, "destination_addr", S.ESME_RINVDSTADR)
        if p + 4 > len(body):
            raise _Truncated("error_status_code")
        (code,) = _U32.unpack_from(body, p)
        p += 4
        out.append(UnsuccessSme(ton, npi, addr, code))
    return tuple(out), p


def decode(data: bytes) -> Pdu:
    """Decode exactly one complete PDU (a convenience for tests and tools).

    >>> decode(bytes.fromhex('00000010000000150000000000000001'))
    EnquireLink(sequence_number=1, command_status=0, tlvs=())
    """
    decoder = Decoder()
    decoder.receive_data(data)
    pdu = decoder.next_pdu()
    if pdu is NEED_DATA or decoder.buffered:
        raise RemoteProtocolError(
            "data is not exactly one PDU", command_status=S.ESME_RINVCMDLEN, fatal=True
        )
    return pdu


class Decoder:
    """Incremental PDU decoder: feed bytes with ``receive_data``, pull PDUs with ``next_pdu``.

    >>> d = Decoder()
    >>> d.receive_data(bytes.fromhex('0000001000000015'))
    >>> d.next_pdu()
    NEED_DATA
    >>> d.receive_data(bytes.fromhex('0000000000000007'))
    >>> d.next_pdu()
    EnquireLink(sequence_number=7, command_status=0, tlvs=())

    See the module docstring for the error and skip contract.
    """

    __slots__ = ("_buf", "_error", "_pos", "ignored_octets", "max_command_length")

    def __init__(self, max_command_length: int = DEFAULT_MAX_COMMAND_LENGTH) -> None:
        if max_command_length < HEADER_LENGTH:
            raise ValueError("max_command_length must be at least 16")
        self.max_command_length = max_command_length
        #: Trailing octets after the mandatory fields that were too short to be a TLV.
        self.ignored_octets = 0
        self._buf = bytearray()
        self._pos = 0
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Octets received and not yet consumed."""
        return len(self._buf) - self._pos

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the peer (any chunking). Discarded after a fatal error."""
        if self._error is not None:
            return
        buf = self._buf
        pos = self._pos
        if pos:
            # Drop the consumed prefix only when it is everything or over half the buffer:
            # amortised O(1) per octet, and the buffer never keeps more dead bytes than live.
            if pos >= len(buf):
                buf.clear()
                self._pos = 0
            elif pos > 4096 and pos * 2 > len(buf):
                del buf[:pos]
                self._pos = 0
        buf += data

    def next_pdu(self) -> Pdu | NeedData:
        """The next complete PDU, or NEED_DATA. Raises RemoteProtocolError (see module doc)."""
        if self._error is not None:
            raise self._error
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < HEADER_LENGTH:
            return NEED_DATA
        length, command_id, status, seq = _HEADER.unpack_from(buf, pos)
        if length < HEADER_LENGTH or length > self.max_command_length:
            self._error = RemoteProtocolError(
                f"command_length {length} outside 16..{self.max_command_length}",
                command_status=S.ESME_RINVCMDLEN,
                sequence_number=seq,
                command_id=command_id,
                fatal=True,
            )
            self._buf = bytearray()
            self._pos = 0
            raise self._error
        end = pos + length
        if len(buf) < end:
            return NEED_DATA
        self._pos = end
        pdu, ignored = decode_body(command_id, status, seq, bytes(buf[pos + HEADER_LENGTH : end]))
        if ignored:
            self.ignored_octets += ignored
        return pdu


def error_response(exc: SmppError) -> Pdu | None:
    """The PDU to answer a protocol error with, or None when nothing should be sent.

    * the offending PDU was a request with a response type → that ``*_resp`` with the error's
      command_status and sequence number (e.g. ``submit_sm_resp`` ``ESME_RINVSRCADR``);
    * unknown command_id, invalid command_length, or a request without a response type
      (outbind, alert_notification) → ``generic_nack`` (§4.3);
    * the offending PDU was itself a response (and the stream is usable) → None: responses
      are never answered; the transport fails the matching outstanding request instead.
    """
    seq = exc.sequence_number if exc.sequence_number is not None else 0
    cid = exc.command_id
    fatal = isinstance(exc, RemoteProtocolError) and exc.fatal
    cls = PDU_CLASSES.get(cid) if cid is not None else None
    if cls is None or fatal:
        return GenericNack(sequence_number=seq, command_status=exc.command_status)
    if cls.command_id & 0x80000000:
        return None
    resp_cls = RESPONSE_CLASS.get(cls)
    if resp_cls is None:
        return GenericNack(sequence_number=seq, command_status=exc.command_status)
    return resp_cls(sequence_number=seq, command_status=exc.command_status)


class SequenceCounter:
    """Sequence numbers 1, 2, …, 0x7FFFFFFF, 1, … (SMPP 3.4 §3.2: 0x00000001–0x7FFFFFFF).

    >>> c = SequenceCounter(start=0x7FFFFFFF)
    >>> c.next(), c.next()
    (2147483647, 1)
    """

    __slots__ = ("_next",)

    def __init__(self, start: int = 1) -> None:
        if not 1 <= start <= MAX_SEQUENCE_NUMBER:
            raise ValueError("start must be in 1..0x7FFFFFFF")
        self._next = start

    def next(self) -> int:
        n = self._next
        self._next = 1 if n >= MAX_SEQUENCE_NUMBER else n + 1
        return n

    def __call__(self) -> int:
        return self.next()

    def peek(self) -> int:
        """The number ``next()`` will return, without consuming it."""
        return self._next
