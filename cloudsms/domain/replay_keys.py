"""Packet keys: the fingerprint replay protection finds a blind client retry by (SPEC replay).

The API computes a packet's key, the store keeps the first answer under it (``replays``). Both
sides need the key's form — the store also finds keys written by older releases — so it lives
here, below both.
"""

from __future__ import annotations

import hashlib
import re

#: Digits of the client's TIME that lead a packet key, of its SERIAL after them, and hex digits
#: of the digest after those.
_TIME_DIGITS = 14
_SERIAL_DIGITS = 5
_DIGEST_HEX = 44
#: Every packet key starts with this letter; the keys of releases before it (the bare digest)
#: start with a hex digit, so ``packet_key < 'g'`` finds the older ones (``MessageOps``).
KEY_MARK = "t"
#: Anything but an ASCII digit (for an ASCII TIME, the characters ``str.isdigit`` refuses).
_NOT_DIGITS = re.compile(r"[^0-9]")


def packet_key(customer_id: int, packet_time: str, serial: int, body: bytes) -> str:
    """The fingerprint of a packet: same key, SERIAL, TIME and body ⇔ same raw bytes.

    Why the client's TIME and SERIAL lead it: the store's replay index is ordered by this key,
    and a key that is only a digest puts every new packet on a random page of that index — a
    page of the index written to SQLite's log per packet, most of what the accept transaction
    wrote (bench/README.md, "Replay keys in time order"). A client's TIME is mostly the time it
    sent the packet, so keys led by its digits arrive in order and fill the index's last pages;
    TIME has whole seconds, and within a second a client's SERIAL counts up, so SERIAL comes
    next. TIME is not parsed (SPEC §1: placeholder text is allowed): a TIME without digits
    leaves SERIAL and the digest in front, and the digest makes the key unique either way.
    64 characters: ``t``, 14 digits of TIME (zero-padded), SERIAL in 5 digits, and the first
    44 hex digits of the SHA-256.
    """
    if packet_time.isascii():  # the usual case: the ASCII digits, one C-level pass
        digits = _NOT_DIGITS.sub("", packet_time)
    else:  # str.isdigit's own digits (superscripts too), as keys have always been made
        digits = "".join(c for c in packet_time if c.isdigit())
    digits = digits[:_TIME_DIGITS].ljust(_TIME_DIGITS, "0")
    order = f"{digits}{serial % 10**_SERIAL_DIGITS:0{_SERIAL_DIGITS}d}"
    return KEY_MARK + order + _digest(customer_id, body)[:_DIGEST_HEX]


def legacy_digest_prefix(key: str) -> str:
    """The start of the key an older release stored for the same packet (its bare SHA-256)."""
    return key[1 + _TIME_DIGITS + _SERIAL_DIGITS :]


def _digest(customer_id: int, body: bytes) -> str:
    digest = hashlib.sha256(customer_id.to_bytes(8, "big"))
    digest.update(body)
    return digest.hexdigest()
