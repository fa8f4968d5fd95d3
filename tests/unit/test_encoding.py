"""cloudsms.smpp.encoding: the seed's slicing tables, whole-character packing, codecs and UDHs."""

from __future__ import annotations

import codecs
import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudsms.domain.models import Encoding
from cloudsms.smpp import encoding
from cloudsms.smpp.encoding import (
    DATA_CODING,
    GSM_BASIC,
    GSM_CHARS,
    GSM_EXTENSION,
    MULTI_LIMIT,
    MULTI_LIMIT_16BIT,
    SINGLE_LIMIT,
    choose_encoding,
    count_segments,
    decode_text,
    encode_text,
    split_for_submit,
    split_text,
    udh_concat,
    units,
)

EXTENSION_CHARS = "€{}[]~^|\\\x0c"
EMOJI = "😀"  # U+1F600: outside the BMP, a surrogate pair in UTF-16

# Every boundary row of appendix "CloudSMS短信切片规则": (characters, segments).
GSM7_TABLE = [
    (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4), (612, 4), (613, 5),
    (765, 5), (766, 6), (918, 6), (919, 7), (1071, 7), (1072, 8), (1224, 8), (1225, 9),
    (1377, 9), (1378, 10), (1530, 10), (1531, 11),
]  # fmt: skip
LATIN1_TABLE = [
    (1, 1), (140, 1), (141, 2), (268, 2), (269, 3), (402, 3), (403, 4), (536, 4), (537, 5),
    (670, 5), (671, 6), (804, 6), (805, 7), (938, 7),
    # The seed prints "938 - 1072 characters → 8": a typo. 938 is the last row of 7
    # (805–938 = 7 × 134 = 938), so 8 segments start at 939; 1072 = 8 × 134 confirms it.
    (939, 8), (1072, 8), (1073, 9), (1206, 9), (1207, 10), (1340, 10), (1341, 11),
]  # fmt: skip
UCS2_TABLE = [
    (1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4), (268, 4), (269, 5),
    (335, 5), (336, 6), (402, 6), (403, 7), (469, 7), (470, 8), (536, 8), (537, 9), (603, 9),
    (604, 10), (670, 10), (671, 11),
]  # fmt: skip

TABLES: list[tuple[Encoding, str, int, int]] = [
    *[("gsm7", "a", n, s) for n, s in GSM7_TABLE],
    *[("latin1", "á", n, s) for n, s in LATIN1_TABLE],  # á: Latin-1, not GSM
    *[("ucs2", "中", n, s) for n, s in UCS2_TABLE],
]

ENCODINGS: list[Encoding] = ["gsm7", "latin1", "ucs2"]

gsm_text = st.text(alphabet=sorted(GSM_CHARS), max_size=700)
gsm_heavy = st.text(alphabet="a€{" + EXTENSION_CHARS, max_size=500)
latin1_text = st.text(alphabet=st.characters(max_codepoint=0xFF), max_size=700)
ucs2_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=400) | st.text(
    alphabet="a中" + EMOJI, max_size=400
)
any_text: st.SearchStrategy[tuple[Encoding, str]] = st.one_of(
    st.tuples(st.just("gsm7"), gsm_text | gsm_heavy),
    st.tuples(st.just("latin1"), latin1_text),
    st.tuples(st.just("ucs2"), ucs2_text),
)


def test_doc_examples_hold() -> None:
    result = doctest.testmod(encoding)
    assert result.attempted >= 10
    assert result.failed == 0


@pytest.mark.parametrize(("enc", "char", "length", "segments"), TABLES)
def test_seed_slicing_tables(enc: Encoding, char: str, length: int, segments: int) -> None:
    text = char * length
    assert choose_encoding(text, latin1_ok=True) == enc
    assert count_segments(text, enc) == segments
    assert len(split_text(text, enc)) == segments


def test_limits_are_the_seed_numbers() -> None:
    assert SINGLE_LIMIT == {"gsm7": 160, "latin1": 140, "ucs2": 70}
    assert MULTI_LIMIT == {"gsm7": 153, "latin1": 134, "ucs2": 67}
    assert MULTI_LIMIT_16BIT == {"gsm7": 152, "latin1": 133, "ucs2": 66}
    assert DATA_CODING == {"gsm7": 0, "latin1": 3, "ucs2": 8}


# --- alphabet and encoding choice -------------------------------------------------------------


def test_alphabet_comes_from_the_codec() -> None:
    assert len(GSM_BASIC) == 127  # 128 codes minus 0x1B, the escape
    assert set(EXTENSION_CHARS) == GSM_EXTENSION
    assert {"@", "£", "$", "¥", "è", "Δ", "Ø", "ß", "É", "¤", "¡", "§", "¿", "à", "\n", "\r"} <= (
        GSM_BASIC
    )
    assert "\x1b" not in GSM_CHARS  # a bare ESC would swallow the next character on a handset
    assert not GSM_BASIC & GSM_EXTENSION


@pytest.mark.parametrize(
    ("text", "latin1_ok", "expected"),
    [
        ("Hello, world! @£$¥", False, "gsm7"),
        ("Price 5€ {x} [y] ~^|\\", False, "gsm7"),
        ("", False, "gsm7"),
        ("Olá, ça va? ñ", True, "latin1"),  # á and ç are not GSM; all are Latin-1
        ("Olá, ça va? ñ", False, "ucs2"),
        ("naïve\xa0text", True, "latin1"),
        ("5€ and ç", True, "ucs2"),  # € is GSM but not Latin-1, ç is Latin-1 but not GSM
        ("您的验证码是123456", True, "ucs2"),
        (f"ok {EMOJI}", True, "ucs2"),
        ("esc\x1b", True, "latin1"),
        ("esc\x1b", False, "ucs2"),
    ],
)
def test_choose_encoding(text: str, latin1_ok: bool, expected: Encoding) -> None:
    assert choose_encoding(text, latin1_ok) == expected


def test_units() -> None:
    assert units("a€{b", "gsm7") == [1, 2, 2, 1]
    assert units("aé", "latin1") == [1, 1]
    assert units(f"a中{EMOJI}", "ucs2") == [1, 1, 2]
    assert units("", "ucs2") == []


# --- packing: extension characters and surrogate pairs --------------------------------------


@pytest.mark.parametrize("char", list(EXTENSION_CHARS))
def test_extension_chars_cost_two_septets(char: str) -> None:
    assert count_segments(char * 80, "gsm7") == 1  # 160 septets
    assert count_segments(char * 81, "gsm7") == 2  # 162 septets
    assert count_segments("a" * 159 + char, "gsm7") == 2  # 161 septets


@pytest.mark.parametrize("char", list(EXTENSION_CHARS))
def test_extension_char_straddling_a_boundary_moves_to_next_segment(char: str) -> None:
    # 152 + 2 + 152 = 306 septets would be 2 segments by division, but the escape pair cannot
    # start at septet 153, so it opens segment 2, which then overflows into a third.
    text = "a" * 152 + char + "a" * 152
    parts = split_text(text, "gsm7")
    assert parts == ["a" * 152, char + "a" * 151, "a"]
    assert count_segments(text, "gsm7") == 3
    assert all(not p.endswith(b"\x1b") for p in split_for_submit(text, "gsm7"))
    assert split_for_submit(text, "gsm7")[1].startswith(b"\x1b")


def test_surrogate_pair_never_split_and_costs_two() -> None:
    assert count_segments(EMOJI * 35, "ucs2") == 1  # 70 units
    assert count_segments(EMOJI * 36, "ucs2") == 2  # 72 units
    text = "中" * 66 + EMOJI + "中" * 66  # 134 units: 2 by division, 3 by whole characters
    parts = split_text(text, "ucs2")
    assert parts == ["中" * 66, EMOJI + "中" * 65, "中"]
    payloads = split_for_submit(text, "ucs2")
    assert [len(p) for p in payloads] == [132, 134, 2]
    assert payloads[1][:4] == EMOJI.encode("utf-16-be")  # high and low surrogate together


def test_empty_text_is_one_segment() -> None:
    for enc in ENCODINGS:
        assert count_segments("", enc) == 1
        assert split_text("", enc) == [""]
        assert split_for_submit("", enc) == [b""]


def test_sixteen_bit_reference_shrinks_segments() -> None:
    text = "a" * 306
    assert count_segments(text, "gsm7") == 2
    assert count_segments(text, "gsm7", sixteen_bit=True) == 3
    assert [len(p) for p in split_for_submit(text, "gsm7", sixteen_bit=True)] == [152, 152, 2]
    assert [len(p) for p in split_for_submit("á" * 268, "latin1", True)] == [133, 133, 2]
    assert [len(p) for p in split_for_submit("中" * 134, "ucs2", True)] == [132, 132, 4]
    # A text that fits one segment has no UDH, so the reference size does not matter.
    assert split_for_submit("a" * 160, "gsm7", sixteen_bit=True) == [b"a" * 160]


def naive_split(text: str, enc: Encoding, capacity: int) -> list[str]:
    """The obvious greedy packing, one character at a time, from ``units``."""
    parts: list[str] = []
    current, used = "", 0
    for char, cost in zip(text, units(text, enc), strict=True):
        if used + cost > capacity:
            parts.append(current)
            current, used = "", 0
        current += char
        used += cost
    return [*parts, current]


@given(any_text, st.booleans())
def test_split_matches_naive_greedy_packing(case: tuple[Encoding, str], sixteen_bit: bool) -> None:
    enc, text = case
    if sum(units(text, enc)) <= SINGLE_LIMIT[enc]:
        expected = [text]
    else:
        limit = (MULTI_LIMIT_16BIT if sixteen_bit else MULTI_LIMIT)[enc]
        expected = naive_split(text, enc, limit)
    assert split_text(text, enc, sixteen_bit=sixteen_bit) == expected
    assert count_segments(text, enc, sixteen_bit=sixteen_bit) == len(expected)


@given(any_text, st.booleans())
def test_split_properties(case: tuple[Encoding, str], sixteen_bit: bool) -> None:
    enc, text = case
    parts = split_text(text, enc, sixteen_bit=sixteen_bit)
    assert "".join(parts) == text
    assert len(parts) == count_segments(text, enc, sixteen_bit=sixteen_bit)
    if len(parts) == 1:
        assert sum(units(text, enc)) <= SINGLE_LIMIT[enc]
    else:
        limit = (MULTI_LIMIT_16BIT if sixteen_bit else MULTI_LIMIT)[enc]
        assert sum(units(text, enc)) > SINGLE_LIMIT[enc]
        for index, part in enumerate(parts):
            assert part
            assert sum(units(part, enc)) <= limit
            if index + 1 < len(parts):  # greedy: the next character would not have fitted
                assert sum(units(part + parts[index + 1][0], enc)) > limit
    payloads = split_for_submit(text, enc, sixteen_bit)
    assert [decode_text(p, DATA_CODING[enc]) for p in payloads] == parts


@given(any_text)
def test_chosen_encoding_can_carry_the_text(case: tuple[Encoding, str]) -> None:
    _, text = case
    chosen = choose_encoding(text, latin1_ok=True)
    data = encode_text(text, chosen)  # never raises for the encoding choose_encoding picked
    if chosen == "gsm7":
        assert len(data) == sum(units(text, "gsm7"))
    elif chosen == "latin1":
        assert len(data) == len(text)
        assert not set(text) <= GSM_CHARS
    else:
        assert len(data) == 2 * sum(units(text, "ucs2"))
        assert any(ord(char) > 0xFF for char in text)


# --- byte codecs --------------------------------------------------------------------------------


def test_encode_known_bytes() -> None:
    assert encode_text("@£$", "gsm7") == b"\x00\x01\x02"
    assert encode_text("a€{}[]~^|\\", "gsm7") == (
        b"a\x1be\x1b(\x1b)\x1b<\x1b>\x1b=\x1b\x14\x1b@\x1b/"
    )
    assert encode_text("é¿", "latin1") == b"\xe9\xbf"
    assert encode_text(f"中{EMOJI}", "ucs2") == b"\x4e\x2d\xd8\x3d\xde\x00"


@pytest.mark.parametrize(
    ("text", "enc"), [("中", "gsm7"), ("ç", "gsm7"), ("\x1b", "gsm7"), ("€", "latin1")]
)
def test_encode_refuses_characters_outside_the_encoding(text: str, enc: Encoding) -> None:
    with pytest.raises(UnicodeEncodeError):
        encode_text("ok " + text, enc)


@given(gsm_text | gsm_heavy)
def test_gsm7_encoding_is_the_codecs(text: str) -> None:
    # encode_text translates with a table taken from the codec; both must give the same bytes.
    assert encode_text(text, "gsm7") == codecs.encode(text, encoding.GSM_CODEC, "strict")


def test_gsm7_table_covers_the_whole_alphabet() -> None:
    text = "".join(sorted(GSM_CHARS))
    assert encode_text(text, "gsm7") == codecs.encode(text, encoding.GSM_CODEC, "strict")


@given(gsm_text | gsm_heavy)
def test_gsm7_round_trip(text: str) -> None:
    assert decode_text(encode_text(text, "gsm7"), 0) == text


@given(latin1_text)
def test_latin1_round_trip(text: str) -> None:
    assert decode_text(encode_text(text, "latin1"), 3) == text


@given(ucs2_text)
def test_ucs2_round_trip(text: str) -> None:
    assert decode_text(encode_text(text, "ucs2"), 8) == text


@pytest.mark.parametrize(
    ("data", "coding", "expected"),
    [
        (b"\x1be5", 0, "€5"),
        (b"id:1 stat:DELIVRD", 0, "id:1 stat:DELIVRD"),
        (b"a\x80b", 0, "a\ufffdb"),  # high bit set: not a septet
        (b"a\x1b", 0, "a\ufffd"),  # trailing lone escape is shown, not dropped
        (b"a\x1b\x1b", 0, "a\ufffd"),
        (b"\x1bA", 0, "\ufffd"),  # ESC + code with no extension character
        (b"ok\xff", 1, "ok\ufffd"),
        (b"\xe9", 3, "é"),
        (b"\x4e", 8, "\ufffd"),  # odd length
        (b"\xd8\x3d", 8, "\ufffd"),  # lone high surrogate
        (b"\xe9\x00", 4, "é\x00"),  # unknown coding: Latin-1, every byte readable
        (b"\xff", 245, "ÿ"),
    ],
)
def test_decode_is_lenient(data: bytes, coding: int, expected: str) -> None:
    assert decode_text(data, coding) == expected


@given(st.binary(max_size=300), st.sampled_from([0, 1, 2, 3, 4, 8, 0xF0, 255, -1]))
def test_decode_never_raises(data: bytes, coding: int) -> None:
    assert isinstance(decode_text(data, coding), str)


# --- UDH ---------------------------------------------------------------------------------------


def test_udh_concat_bytes() -> None:
    assert udh_concat(0xAB, 3, 2) == bytes.fromhex("050003ab0302")
    assert udh_concat(0x1234, 10, 10, sixteen_bit=True) == bytes.fromhex("06080412340a0a")
    assert len(udh_concat(0, 2, 1)) == 6
    assert len(udh_concat(0, 2, 1, True)) == 7


@pytest.mark.parametrize(
    ("ref", "total", "seq", "sixteen_bit"),
    [(256, 2, 1, False), (-1, 2, 1, False), (65536, 2, 1, True), (1, 0, 1, False),
     (1, 256, 1, False), (1, 3, 0, False), (1, 3, 4, True)],
)  # fmt: skip
def test_udh_concat_rejects_out_of_range(ref: int, total: int, seq: int, sixteen_bit: bool) -> None:
    with pytest.raises(ValueError):
        udh_concat(ref, total, seq, sixteen_bit)


@pytest.mark.parametrize("enc", ENCODINGS)
@pytest.mark.parametrize("sixteen_bit", [False, True])
def test_segment_with_udh_fits_140_octets(enc: Encoding, sixteen_bit: bool) -> None:
    text = {"gsm7": "a€", "latin1": "á", "ucs2": "中" + EMOJI}[enc] * 700
    udh = udh_concat(1, 2, 1, sixteen_bit)
    payloads = split_for_submit(text, enc, sixteen_bit)
    assert len(payloads) > 1
    for payload in payloads:
        if enc == "gsm7":  # septets: the UDH is padded to a septet boundary, 160 septets in all
            assert -(-len(udh) * 8 // 7) + len(payload) <= 160
        else:
            assert len(udh) + len(payload) <= 140
