"""Text encodings, segment counting and splitting, and concatenation UDHs for SMS.

Why one module: the API charges a customer per segment and the SMPP client later submits those
segments. If the two counted differently, a customer would be billed for N segments while the
carrier charged us for N+1. Both call this file, and nothing here does I/O.

Strategy:

1. **Choose the encoding** (``choose_encoding``). GSM 03.38 7-bit (SMPP data_coding 0) when every
   character is in the GSM default alphabet or its extension table; else Latin-1 (data_coding 3)
   when the route's carrier accepts it and every character is in ISO-8859-1; else UCS-2
   (data_coding 8). The GSM alphabet comes from the ``gsm0338`` codec, not from a table typed here.

2. **Cost every character in units** (``units``). gsm7: 1 septet, 2 for an extension-table
   character (``€ { } [ ] ~ ^ | \\`` and form feed are sent as ESC + code). latin1: 1 byte.
   ucs2: 1 code unit, 2 for a character outside the BMP (a UTF-16 surrogate pair).

3. **Pack whole characters greedily into segments.** Limits, from the appendix
   "CloudSMS短信切片规则" of the CloudSMS Web API document:

   ========  ==============  =======================  ==========================
   encoding  single segment  multipart, 8-bit ref UDH  multipart, 16-bit ref UDH
   ========  ==============  =======================  ==========================
   gsm7      160 septets     153 septets (1530 = 10)  152 septets
   latin1    140 bytes       134 bytes (1340 = 10)    133 bytes
   ucs2      70 units        67 units (670 = 10)      66 units
   ========  ==============  =======================  ==========================

   A message that fits the single-segment limit is one segment with no UDH. Otherwise each segment
   carries a concatenation UDH (3GPP TS 23.040 §9.2.3.24.1/.8): 6 bytes with an 8-bit reference
   (``05 00 03 ref total seq``), 7 bytes with a 16-bit one (``06 08 04 refhi reflo total seq``),
   which leaves 140 - 6 = 134 bytes (67 UCS-2 units; 153 septets, since 48 UDH bits pad to 7
   septets) or 140 - 7 = 133 bytes (66 units; 152 septets). A segment never ends between the two
   halves of a surrogate pair or between ESC and its extension code, so a 2-unit character that
   would straddle a boundary moves whole to the next segment; that is why counting is a greedy
   packing, not ``ceil(units / 153)``. Greedy packing is optimal for contiguous splits, so no
   cleverer packing could use fewer segments.

   ``count_segments`` and ``split_text`` follow the document's tables (8-bit reference) by
   default; the customer is charged by that count. ``split_for_submit(..., sixteen_bit=True)``
   packs to the smaller 16-bit-reference capacity and so may yield one segment more than was
   charged: connectors should use 8-bit references (the default) unless a carrier insists.

4. **Empty text is one segment.** An empty short_message is still one submit_sm that a carrier
   bills; the API refuses empty SMS_CONTENT anyway, so this only keeps the functions total
   (``split_text("")`` is ``[""]``, matching ``count_segments("") == 1``).

5. **Bytes on the wire.** gsm7 is sent unpacked, one septet per byte (the SMPP 3.4 default for
   data_coding 0; the SMSC does the packing), so a gsm7 payload is as many bytes as septets.
   ``decode_text`` is lenient because receipts and MO messages come from carriers: undecodable
   input becomes U+FFFD, it never raises.
"""

from __future__ import annotations

import codecs
import re
from bisect import bisect_left
from typing import Final, Literal

import gsm0338  # noqa: F401  (importing registers the "gsm03.38" codec)

__all__ = [
    "DATA_CODING",
    "GSM_BASIC",
    "GSM_CHARS",
    "GSM_CODEC",
    "GSM_EXTENSION",
    "MULTI_LIMIT",
    "MULTI_LIMIT_16BIT",
    "SINGLE_LIMIT",
    "Encoding",
    "choose_encoding",
    "count_segments",
    "decode_text",
    "encode_text",
    "is_gsm7",
    "split_for_submit",
    "split_text",
    "udh_concat",
    "units",
]

GSM_CODEC: Final = "gsm03.38"

#: The three text encodings a message is sent in: GSM 03.38 7-bit, ISO-8859-1, UCS-2.
Encoding = Literal["gsm7", "latin1", "ucs2"]

#: SMPP 3.4 §5.2.19 data_coding values for each encoding.
DATA_CODING: Final[dict[Encoding, int]] = {"gsm7": 0, "latin1": 3, "ucs2": 8}

#: Units that fit one segment without a UDH (140 octets of user data).
SINGLE_LIMIT: Final[dict[Encoding, int]] = {"gsm7": 160, "latin1": 140, "ucs2": 70}
#: Units per segment of a multipart message with a 6-byte UDH (8-bit reference): the seed tables.
MULTI_LIMIT: Final[dict[Encoding, int]] = {"gsm7": 153, "latin1": 134, "ucs2": 67}
#: Units per segment with a 7-byte UDH (16-bit reference).
MULTI_LIMIT_16BIT: Final[dict[Encoding, int]] = {"gsm7": 152, "latin1": 133, "ucs2": 66}

_ESC: Final = 0x1B


def _derive_gsm_alphabet() -> tuple[frozenset[str], frozenset[str]]:
    """Ask the gsm0338 codec for its alphabet: (default-table chars, extension-table chars).

    Decoding every single byte and every ESC+byte pair, and keeping only characters that encode
    back to exactly those bytes, yields the alphabet without touching the library's private
    tables. This deliberately leaves out U+001B itself: the codec would encode it as a bare
    0x1B byte, which a handset reads as the escape prefix of the *next* character.
    """
    basic: set[str] = set()
    extension: set[str] = set()
    for code in range(0x80):
        for raw, target in ((bytes([code]), basic), (bytes([_ESC, code]), extension)):
            text = raw.decode(GSM_CODEC, "ignore")
            if len(text) == 1 and text.encode(GSM_CODEC, "strict") == raw:
                target.add(text)
    return frozenset(basic), frozenset(extension)


#: Characters of the GSM 03.38 default alphabet (1 septet) and its extension table (2 septets).
GSM_BASIC, GSM_EXTENSION = _derive_gsm_alphabet()
GSM_CHARS: Final = GSM_BASIC | GSM_EXTENSION

#: ``str.translate`` table: each character of GSM_CHARS → its unpacked septet(s) as Latin-1
#: characters (``ESC`` + code for the extension table). It is taken from the codec itself, one
#: character at a time, so the two cannot disagree; it exists because the codec's pure-Python
#: loop costs about 25 µs for a 30-character SMS on the submit path and ``translate`` under 1 µs.
_GSM_TRANSLATE: Final[dict[int, str]] = {
    ord(char): codecs.encode(char, GSM_CODEC, "strict").decode("latin-1") for char in GSM_CHARS
}


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` can be sent in GSM 03.38 7-bit."""
    return GSM_CHARS.issuperset(text)


def choose_encoding(text: str, latin1_ok: bool) -> Encoding:
    """The cheapest encoding that can carry ``text``.

    >>> choose_encoding("Price: 5€", latin1_ok=True)
    'gsm7'
    >>> choose_encoding("Olá, ça va", latin1_ok=True), choose_encoding("ça", latin1_ok=False)
    ('latin1', 'ucs2')
    """
    if GSM_CHARS.issuperset(text):
        return "gsm7"
    if latin1_ok and (not text or max(text) <= "\xff"):
        return "latin1"
    return "ucs2"


def _unit(char: str, encoding: Encoding) -> int:
    if encoding == "gsm7":
        return 2 if char in GSM_EXTENSION else 1
    if encoding == "ucs2":
        return 2 if char > "\uffff" else 1
    return 1


def units(text: str, encoding: Encoding) -> list[int]:
    """The cost of each character of ``text`` in ``encoding``'s units (septets, bytes, UTF-16).

    >>> units("a€😀", "gsm7")[:2], units("a€😀", "ucs2")
    ([1, 2], [1, 1, 2])
    """
    return [_unit(char, encoding) for char in text]


# Characters that cost 2 units; in latin1 every character costs 1.
_WIDE: Final[dict[Encoding, re.Pattern[str]]] = {
    "gsm7": re.compile("[" + re.escape("".join(sorted(GSM_EXTENSION))) + "]"),
    "ucs2": re.compile("[\U00010000-\U0010ffff]"),
}


def _wide_positions(text: str, encoding: Encoding) -> list[int]:
    pattern = _WIDE.get(encoding)
    return [] if pattern is None else [match.start() for match in pattern.finditer(text)]


def _capacity(total_units: int, encoding: Encoding, sixteen_bit: bool) -> int | None:
    """Units per segment, or None when ``total_units`` fit one segment without a UDH."""
    if total_units <= SINGLE_LIMIT[encoding]:
        return None
    return (MULTI_LIMIT_16BIT if sixteen_bit else MULTI_LIMIT)[encoding]


def _boundaries(size: int, wide: list[int], capacity: int) -> list[int]:
    """Start offsets of each segment, packing whole characters greedily into ``capacity``.

    ``wide`` lists the (sorted) offsets of the 2-unit characters, so the units of characters
    ``[0, end)`` are ``end + bisect_left(wide, end)``. Each segment's end is the largest offset
    whose units still fit, found by binary search: O(segments × log² len) instead of a Python
    step per character. ``units()`` is the per-character reference the tests compare against.
    """
    starts = [0]
    start = 0
    while True:
        budget = capacity + start + bisect_left(wide, start)  # units up to the segment's end
        low, high = start + 1, min(size, start + capacity)  # capacity >= 2: one char always fits
        while low < high:
            middle = (low + high + 1) // 2
            if middle + bisect_left(wide, middle) <= budget:
                low = middle
            else:
                high = middle - 1
        if low >= size:
            return starts
        start = low
        starts.append(start)


def count_segments(text: str, encoding: Encoding, *, sixteen_bit: bool = False) -> int:
    """How many segments ``text`` takes in ``encoding`` (the number the customer is charged).

    >>> count_segments("a" * 160, "gsm7"), count_segments("a" * 161, "gsm7")
    (1, 2)
    >>> count_segments("a" * 152 + "€" + "a" * 152, "gsm7")  # 306 septets, but the € moves on
    3
    """
    wide = _wide_positions(text, encoding)
    total = len(text) + len(wide)
    capacity = _capacity(total, encoding, sixteen_bit)
    if capacity is None:
        return 1
    if not wide:  # every character costs 1 unit: nothing can straddle a boundary
        return -(-total // capacity)
    return len(_boundaries(len(text), wide, capacity))


def split_text(text: str, encoding: Encoding, *, sixteen_bit: bool = False) -> list[str]:
    """The text of each segment, packed as ``count_segments`` counts them.

    >>> [len(part) for part in split_text("x" * 200, "gsm7")]
    [153, 47]
    """
    wide = _wide_positions(text, encoding)
    capacity = _capacity(len(text) + len(wide), encoding, sixteen_bit)
    if capacity is None:
        return [text]
    starts = _boundaries(len(text), wide, capacity)
    ends = [*starts[1:], len(text)]
    return [text[start:end] for start, end in zip(starts, ends, strict=True)]


def encode_text(text: str, encoding: Encoding) -> bytes:
    """``text`` as the bytes of a short_message in ``encoding``.

    gsm7 is unpacked (one septet per byte, extension characters as ``1B xx``); ucs2 is
    UTF-16-BE, so characters outside the BMP become surrogate pairs. Raises
    ``UnicodeEncodeError`` (a ``ValueError``) when ``text`` has a character the encoding cannot
    carry: call ``choose_encoding`` first. A lone surrogate (which valid JSON input cannot
    produce) is passed through as its 16-bit code unit rather than crashing a dispatcher.

    >>> encode_text("a€", "gsm7"), encode_text("é", "latin1"), encode_text("中", "ucs2")
    (b'a\\x1be', b'\\xe9', b'N-')
    """
    if encoding == "gsm7":
        if not GSM_CHARS.issuperset(text):
            position = next(i for i, char in enumerate(text) if char not in GSM_CHARS)
            raise UnicodeEncodeError(
                GSM_CODEC, text, position, position + 1, "not in the GSM 03.38 alphabet"
            )
        return text.translate(_GSM_TRANSLATE).encode("latin-1")
    if encoding == "latin1":
        return text.encode("latin-1", "strict")
    return text.encode("utf-16-be", "surrogatepass")


def decode_text(data: bytes, data_coding: int) -> str:
    """Decode a short_message received from a carrier; never raises.

    data_coding 0 (SMSC default, taken as GSM 03.38 unpacked) decodes as GSM 03.38; 1 (IA5) as
    ASCII; 3 as Latin-1; 8 as UTF-16-BE; any other value (binary, or a national encoding we do
    not carry) as Latin-1, which maps every byte to some character so receipt text such as
    ``id:… stat:DELIVRD`` stays readable.
    Undecodable bytes become U+FFFD.

    >>> decode_text(b"\\x1be5", 0), decode_text(b"\\xd8\\x00", 8)
    ('€5', '\\ufffd')
    """
    if data_coding == 0:
        return _decode_gsm(data)
    if data_coding == 1:
        return data.decode("ascii", "replace")
    if data_coding == 8:
        return data.decode("utf-16-be", "replace")
    return data.decode("latin-1")


def _decode_gsm(data: bytes) -> str:
    # Septets are 7 bits: a byte with the high bit set is a carrier sending 8-bit text under
    # data_coding 0. The codec turns it (and unknown ESC sequences) into U+FFFD.
    text: str = codecs.decode(data, GSM_CODEC, "replace")
    if (len(data) - len(data.rstrip(b"\x1b"))) % 2 == 1:
        # The codec silently drops a trailing lone ESC; show that something was there.
        text += "\ufffd"
    return text


def udh_concat(ref: int, total: int, seq: int, sixteen_bit: bool = False) -> bytes:
    """The concatenation User Data Header for part ``seq`` of ``total`` (3GPP TS 23.040).

    >>> udh_concat(0x2A, 3, 1).hex(" "), udh_concat(0x1234, 3, 2, sixteen_bit=True).hex(" ")
    ('05 00 03 2a 03 01', '06 08 04 12 34 03 02')
    """
    if not 1 <= total <= 255:
        raise ValueError(f"total must be 1..255, got {total}")
    if not 1 <= seq <= total:
        raise ValueError(f"seq must be 1..{total}, got {seq}")
    if sixteen_bit:
        if not 0 <= ref <= 0xFFFF:
            raise ValueError(f"a 16-bit reference must be 0..65535, got {ref}")
        return bytes((0x06, 0x08, 0x04, ref >> 8, ref & 0xFF, total, seq))
    if not 0 <= ref <= 0xFF:
        raise ValueError(f"an 8-bit reference must be 0..255, got {ref}")
    return bytes((0x05, 0x00, 0x03, ref, total, seq))


def split_for_submit(text: str, encoding: Encoding, sixteen_bit: bool = False) -> list[bytes]:
    """Each segment's encoded short_message payload, without its UDH.

    A single-element list means "send as is, no UDH". Otherwise prefix payload ``i`` with
    ``udh_concat(ref, len(parts), i + 1, sixteen_bit)`` and set esm_class UDHI (0x40). With
    ``sixteen_bit`` the UDH is one byte longer, so segments hold one unit less (152/133/66) and
    there may be one more segment than ``count_segments`` charged.

    >>> [len(p) for p in split_for_submit("é" * 141, "latin1")]
    [134, 7]
    """
    if len(text) * 2 <= SINGLE_LIMIT[encoding]:
        # Even if every character cost 2 units it would fit one segment: skip the search for
        # 2-unit characters (most SMS are this short).
        return [encode_text(text, encoding)]
    return [
        encode_text(part, encoding) for part in split_text(text, encoding, sixteen_bit=sixteen_bit)
    ]
