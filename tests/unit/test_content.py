"""cloudsms.domain.content: signature placement, the document's byte rule, the content plan."""

from __future__ import annotations

import dataclasses
import doctest

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudsms.domain import content as content_module
from cloudsms.domain.content import (
    MAX_CONTENT_BYTES,
    MAX_SEGMENTS,
    ContentPlan,
    apply_signature,
    content_bytes,
    plan_content,
)


def test_doc_examples_hold() -> None:
    result = doctest.testmod(content_module)
    assert result.attempted >= 4
    assert result.failed == 0


def test_limits() -> None:
    assert MAX_CONTENT_BYTES == 1600
    assert MAX_SEGMENTS == 10


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (1, "【CloudSMS】您的验证码是123456"),
        (2, "您的验证码是123456【CloudSMS】"),
        (3, "[CloudSMS]您的验证码是123456"),
        (4, "您的验证码是123456[CloudSMS]"),
        (5, "您的验证码是123456"),
        (None, "【CloudSMS】您的验证码是123456"),  # SIGNATURE without SIGNATURE_TYPE: type 1
    ],
)
def test_signature_placement(kind: int | None, expected: str) -> None:
    assert apply_signature("您的验证码是123456", "CloudSMS", kind) == expected


@pytest.mark.parametrize("kind", [None, 1, 2, 3, 4, 5, 99])
@pytest.mark.parametrize("signature", [None, ""])
def test_no_signature_leaves_content_unchanged(signature: str | None, kind: int | None) -> None:
    assert apply_signature("Code 1234", signature, kind) == "Code 1234"


@pytest.mark.parametrize("kind", [0, 6, -1])
def test_invalid_signature_type_raises(kind: int) -> None:
    with pytest.raises(ValueError, match="SIGNATURE_TYPE"):
        apply_signature("Code 1234", "ACME", kind)


def test_content_already_signed_keeps_its_own_signature() -> None:
    assert apply_signature("[ACME] Code 1234", "Other", 5) == "[ACME] Code 1234"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("Hello, world!", 13),
        ("a" * 1600, 1600),
        ("Hello中", 12),  # mixed: the English letters count 2 as well
        ("您的验证码", 10),
        ("café", 8),  # é is not ASCII, so Latin-1 text counts double too
        ("Hi，", 6),  # full-width comma: "标点符号全为半角" is required for 1 byte each
        ("😀", 2),  # one character (code point), two bytes
        ("\x7f\t", 2),
    ],
)
def test_content_bytes(text: str, expected: int) -> None:
    assert content_bytes(text) == expected


@given(st.text(max_size=200))
def test_content_bytes_is_len_or_double(text: str) -> None:
    expected = len(text) if all(ord(c) < 128 for c in text) else 2 * len(text)
    assert content_bytes(text) == expected


def test_plan_content_applies_signature_first() -> None:
    # 158 GSM characters fit one segment; the signature [ACME] (6) makes 164: two segments.
    plan = plan_content("a" * 158, "ACME", 3, latin1_ok=False)
    assert plan == ContentPlan(
        text="[ACME]" + "a" * 158, encoding="gsm7", segments=2, length_bytes=164
    )
    # 【】 are not GSM characters: the signature alone switches the message to UCS-2.
    plan = plan_content("Code 1234", "ACME", 1, latin1_ok=True)
    assert plan.encoding == "ucs2"
    assert plan.segments == 1
    assert plan.length_bytes == 2 * len("【ACME】Code 1234")


def test_plan_content_latin1_depends_on_route() -> None:
    assert plan_content("Olá " * 40, None, None, latin1_ok=True).encoding == "latin1"
    assert plan_content("Olá " * 40, None, None, latin1_ok=True).segments == 2  # 160 > 140
    no_latin1 = plan_content("Olá " * 40, None, None, latin1_ok=False)
    assert (no_latin1.encoding, no_latin1.segments) == ("ucs2", 3)  # 160 units / 67


def test_plan_content_chinese_over_ten_segments() -> None:
    plan = plan_content("验" * 671, None, None, latin1_ok=False)
    assert plan.segments == 11
    assert plan.segments > MAX_SEGMENTS
    assert plan.length_bytes == 1342


def test_content_plan_is_frozen() -> None:
    plan = plan_content("hi", None, None, latin1_ok=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.segments = 2  # type: ignore[misc]
