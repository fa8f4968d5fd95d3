"""Optional parameters (TLVs), SMPP 3.4 §3.2.4 and §5.3: Tag (2 octets), Length (2), Value.

A :class:`Tlv` keeps its value as raw octets, so tags this code does not know round-trip
untouched; typed constructors and accessors cover the common encodings (§5.3.2: integers of
1, 2 or 4 octets, and C-Octet Strings).
"""

from __future__ import annotations

from dataclasses import dataclass

from cloudsms.smpp.constants import CommandStatus, Tag
from cloudsms.smpp.errors import LocalProtocolError

S = CommandStatus

__all__ = ["Tag", "Tlv"]


@dataclass(frozen=True, slots=True)
class Tlv:
    """One optional parameter. ``value`` is the raw octets; unknown tags are kept as they came.

    >>> Tlv.uint16(Tag.SAR_MSG_REF_NUM, 7).value
    b'\\x00\\x07'
    """

    tag: int
    value: bytes

    def __post_init__(self) -> None:
        if type(self.tag) is not int and not isinstance(self.tag, int):
            raise LocalProtocolError(
                "TLV tag must be an int", command_status=S.ESME_RINVOPTPARSTREAM
            )
        if not 0 <= self.tag <= 0xFFFF:
            raise LocalProtocolError(
                f"TLV tag {self.tag!r} is not 2 octets", command_status=S.ESME_RINVOPTPARSTREAM
            )
        if not isinstance(self.value, bytes):
            raise LocalProtocolError("TLV value must be bytes", command_status=S.ESME_RINVPARLEN)
        if len(self.value) > 0xFFFF:
            raise LocalProtocolError(
                "TLV value longer than 65535 octets", command_status=S.ESME_RINVPARLEN
            )

    @classmethod
    def uint8(cls, tag: int, value: int) -> Tlv:
        return cls(tag, _int_bytes(value, 1))

    @classmethod
    def uint16(cls, tag: int, value: int) -> Tlv:
        return cls(tag, _int_bytes(value, 2))

    @classmethod
    def uint32(cls, tag: int, value: int) -> Tlv:
        return cls(tag, _int_bytes(value, 4))

    @classmethod
    def cstring(cls, tag: int, value: str) -> Tlv:
        """A C-Octet String TLV (e.g. receipted_message_id, §5.3.2.12): value plus NUL."""
        try:
            return cls(tag, value.encode("latin-1") + b"\0")
        except UnicodeEncodeError as exc:
            raise LocalProtocolError(
                f"TLV 0x{tag:04X} is not Latin-1", command_status=S.ESME_RINVOPTPARAMVAL
            ) from exc

    def as_int(self) -> int:
        """The value as a big-endian unsigned integer (any length; empty is 0)."""
        return int.from_bytes(self.value, "big")

    def as_str(self) -> str:
        """The value as text, up to its first NUL (lenient: a missing NUL is accepted)."""
        return self.value.split(b"\0", 1)[0].decode("latin-1")


def _int_bytes(value: int, size: int) -> bytes:
    try:
        return value.to_bytes(size, "big")
    except (OverflowError, AttributeError) as exc:
        raise LocalProtocolError(
            f"TLV value {value!r} does not fit {size} octet(s)",
            command_status=S.ESME_RINVOPTPARAMVAL,
        ) from exc
