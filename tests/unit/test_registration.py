"""cloudsms.domain.registration: templates with slots, signatures and sender IDs per country."""

from __future__ import annotations

import doctest
import time
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloudsms.domain import registration
from cloudsms.domain.models import ApprovalStatus, CountryPolicy, Template
from cloudsms.domain.registration import (
    SLOT_MAX_CHARS,
    check_destination,
    compile_template,
    template_matches,
)


def tpl(
    body: str, country_code: int | None = None, status: ApprovalStatus = "approved"
) -> Template:
    return Template(id=1, customer_id=7, body=body, country_code=country_code, status=status)


def policy(
    country_code: int = 86,
    *,
    template: bool = False,
    signature: bool = False,
    sender: bool = False,
    sender_format: Literal["any", "numeric", "alpha"] = "any",
) -> CountryPolicy:
    return CountryPolicy(
        country_code=country_code,
        region="XX",
        requires_template=template,
        requires_signature=signature,
        requires_registered_sender=sender,
        sender_format=sender_format,
    )


def test_doc_examples_hold() -> None:
    result = doctest.testmod(registration)
    assert result.attempted >= 5
    assert result.failed == 0


# --- compile_template ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content", "matches"),
    [
        ("Your code is {code}.", "Your code is 123456.", True),
        ("Your code is {code}.", "Your code is .", False),  # a slot is at least 1 character
        ("Your code is {code}.", "Your code is 1234", False),  # fullmatch: the dot is needed
        ("Your code is {code}.", "xYour code is 1234.", False),
        ("Your code is {code}.", "Your code is 1234.!", False),
        ("Hi {name}, code {code}", "Hi Ann, code 42", True),
        ("{a}{b}", "x", False),  # two adjacent slots need two characters
        ("{a}{b}", "xy", True),
        ("{a}", "x" * SLOT_MAX_CHARS, True),
        ("{a}", "x" * (SLOT_MAX_CHARS + 1), False),
        ("{a}{b}", "x" * (2 * SLOT_MAX_CHARS), True),
        ("{a}{b}", "x" * (2 * SLOT_MAX_CHARS + 1), False),
        ("Code {c} ok", "Code 1\n2 ok", False),  # a slot never spans a newline
        ("Code {c}\nok", "Code 12\nok", True),  # a literal newline is fine
        ("您的验证码是{code}，5分钟内有效。", "您的验证码是123456，5分钟内有效。", True),
        ("您的验证码是{验证码}。", "您的验证码是八八。", True),  # slot names in any script
        ("您的验证码是{code}。", "您的验证码是123456", False),
        ("Price: $5.00 (x+y)*? ^[a]|b\\d {n}", "Price: $5.00 (x+y)*? ^[a]|b\\d 3", True),
        ("Price: $5.00 {n}", "Price: $5X00 3", False),  # '.' is literal, not any character
        ("a|b {n}", "b 1", False),  # '|' is literal, not alternation
        ('JSON {{"code": {c}}}', 'JSON {"code": 42}', True),
        ("{{literal}}", "{literal}", True),
        ("{{literal}}", "x", False),
        ("no slots", "no slots", True),
        ("no slots", "no slots!", False),
    ],
)
def test_template_semantics(body: str, content: str, matches: bool) -> None:
    assert (compile_template(body).fullmatch(content) is not None) is matches
    assert template_matches(content, [tpl(body)], 86) is matches


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "empty"),
        ("Code {code", "unclosed '{' at position 5"),
        ("Code code}", "unmatched '}' at position 9"),
        ("Code {}", "invalid slot {}"),
        ("Code {my code}", "invalid slot {my code}"),
        ("Code {a-b}", "invalid slot"),
        ("Code {a{b}", "invalid slot"),
        ("{{{x", "unclosed"),
    ],
)
def test_bad_templates_raise_readable_errors(body: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        compile_template(body)


def test_adjacent_slots_compile_to_one_run() -> None:
    assert compile_template("a{x}{y}{z}b").pattern == "a.{3,192}?b"
    assert compile_template("{x} {y}").pattern == ".{1,64}?\\ .{1,64}?"


def test_compile_template_is_cached() -> None:
    assert compile_template("Cached {x}") is compile_template("Cached {x}")


def test_bad_stored_template_never_matches_and_does_not_hide_good_ones() -> None:
    assert template_matches("Code 1", [tpl("Code {x")], 86) is False
    assert template_matches("Code 1", [tpl("Code {x"), tpl("Code {x}")], 86) is True


def test_template_country_and_status_filters() -> None:
    templates = [
        tpl("CN only {x}", country_code=86),
        tpl("Anywhere {x}", country_code=None),
        tpl("Pending {x}", status="pending"),
        tpl("Rejected {x}", status="rejected"),
    ]
    assert template_matches("CN only 1", templates, 86)
    assert not template_matches("CN only 1", templates, 66)
    assert template_matches("Anywhere 1", templates, 66)
    assert not template_matches("Pending 1", templates, 86)
    assert not template_matches("Rejected 1", templates, 86)
    assert not template_matches("Anything", [], 86)


def test_hostile_content_is_rejected_in_linear_time() -> None:
    # The backtracking regex takes seconds on this; the position-set matcher must not.
    body = " ".join(f"{{s{i}}}" for i in range(30)) + "!"
    started = time.perf_counter()
    assert not template_matches("a " * 800, [tpl(body)], 86)
    assert not template_matches("a" * 1600, [tpl("{a}{b}{c}{d}{e}{f}X")], 86)
    assert time.perf_counter() - started < 0.5


_TEMPLATE_PIECE = st.one_of(
    st.sampled_from(["{a}", "{b}", "{{", "}}"]), st.text(alphabet="ab .\n", min_size=1, max_size=3)
)


# At most 3 slots: the *reference* regex backtracks exponentially in the number of slots.
_BODIES = (
    st.lists(_TEMPLATE_PIECE, min_size=1, max_size=6)
    .filter(lambda pieces: sum(piece in ("{a}", "{b}") for piece in pieces) <= 3)
    .map("".join)
)


@settings(deadline=None)
@given(
    _BODIES,
    # Short mixed text, and long runs without newlines that reach the 64-character slot bound.
    st.text(alphabet="ab .\n{}", max_size=150) | st.text(alphabet="a b", min_size=60, max_size=300),
)
def test_matcher_agrees_with_the_regex(body: str, content: str) -> None:
    expected = compile_template(body).fullmatch(content) is not None
    assert template_matches(content, [tpl(body)], 1) is expected


@given(_BODIES, st.data())
def test_filled_template_matches(body: str, data: st.DataObject) -> None:
    # Fill every slot with 1..64 non-newline characters: the result must match.
    compile_template(body)  # every generated body is valid
    pieces: list[str] = []
    index = 0
    while index < len(body):
        if body.startswith(("{{", "}}"), index):
            pieces.append(body[index])
            index += 2
        elif body[index] == "{":
            close = body.index("}", index)
            pieces.append(data.draw(st.text(alphabet="xy 中", min_size=1, max_size=64)))
            index = close + 1
        else:
            pieces.append(body[index])
            index += 1
    assert template_matches("".join(pieces), [tpl(body)], 1)


# --- check_destination ------------------------------------------------------------------------

SIGS = frozenset({"CloudSMS", "ACME"})
TEMPLATES = (tpl("您的验证码是{code}。", 86), tpl("Your code is {code}.", None))
SENDERS = frozenset({("10690001", 86), ("ACME", None)})


def check(
    pol: CountryPolicy | None,
    content: str = "您的验证码是1234。",
    signature: str | None = "CloudSMS",
    signature_type: int | None = 1,
    sender: str = "10690001",
) -> str | None:
    return check_destination(
        pol,
        content=content,
        signature=signature,
        signature_type=signature_type,
        sender=sender,
        approved_signatures=SIGS,
        templates=TEMPLATES,
        approved_senders=SENDERS,
    )


CN = policy(86, template=True, signature=True, sender=True)


def test_unregulated_destination_is_allowed() -> None:
    assert check(None, content="anything", signature=None, sender="") is None
    assert check(policy(44), content="anything", signature=None, sender="") is None


def test_cn_happy_path() -> None:
    assert check(CN) is None
    assert check(CN, signature_type=None) is None  # no type: type 1, still the SIGNATURE field
    assert check(CN, content="Your code is 1.", signature="ACME", signature_type=4) is None


def test_template_not_registered() -> None:
    assert check(CN, content="您的验证码是1234") == "template_not_registered"
    # A CN template does not serve Thailand; a country-less one does.
    th = policy(66, template=True)
    assert check(th, content="您的验证码是1234。") == "template_not_registered"
    assert check(th, content="Your code is 9.") is None


@pytest.mark.parametrize(
    ("signature", "signature_type"), [("Unknown", 1), ("Unknown", None), ("Unknown", 3)]
)
def test_signature_not_registered(signature: str, signature_type: int | None) -> None:
    assert check(CN, signature=signature, signature_type=signature_type) == (
        "signature_not_registered"
    )


@pytest.mark.parametrize(
    ("content", "signature", "signature_type", "expected"),
    [
        ("【CloudSMS】您的验证码是1234。", None, None, None),
        ("您的验证码是1234。[ACME]", "", 2, None),
        ("[CloudSMS]您的验证码是1234。", "Ignored", 5, None),  # type 5: the content's own
        ("您的验证码是1234。【ACME】", None, 5, None),
        # Only an approved signature is stripped before template matching, so an unknown one
        # is just unregistered text: letting any [..] through would bypass the template rule.
        ("【Other】您的验证码是1234。", None, 5, "template_not_registered"),
        ("您的验证码是1234。", None, None, "signature_not_registered"),
        ("您的验证码是1234。", "CloudSMS", 5, "signature_not_registered"),
        ("您的【CloudSMS】验证码是1234。", None, 5, "template_not_registered"),
    ],
)
def test_content_signed_by_the_customer(
    content: str, signature: str | None, signature_type: int | None, expected: str | None
) -> None:
    assert check(CN, content, signature, signature_type) == expected


def test_self_signed_content_may_match_a_template_that_includes_the_signature() -> None:
    signed_template = (tpl("【ACME】Login code {c}", 86),)
    result = check_destination(
        CN,
        content="【ACME】Login code 77",
        signature=None,
        signature_type=5,
        sender="ACME",
        approved_signatures=SIGS,
        templates=signed_template,
        approved_senders=SENDERS,
    )
    assert result is None


def test_signature_not_required_is_not_checked() -> None:
    in_policy = policy(91, template=True, sender=True)
    assert check(in_policy, content="Your code is 5.", signature=None, sender="ACME") is None


def test_sender_registration() -> None:
    assert check(CN, sender="10690001") is None
    assert check(CN, sender="ACME") is None  # registered for every country
    assert check(CN, sender="10690002") == "sender_not_registered"
    assert check(CN, sender="") == "sender_not_registered"
    th = policy(66, sender=True)
    assert check(th, sender="10690001") == "sender_not_registered"  # registered for 86 only


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("0101234", None),
        ("", "sender_not_numeric"),
        ("+8210", "sender_not_numeric"),
        ("ACME", "sender_not_numeric"),
        ("12 34", "sender_not_numeric"),
        ("١٢٣", "sender_not_numeric"),  # Arabic-Indic digits are not what a carrier means
    ],
)
def test_korea_numeric_sender_only(sender: str, expected: str | None) -> None:
    kr = policy(82, sender_format="numeric")
    assert check(kr, content="hello", signature=None, sender=sender) == expected


@pytest.mark.parametrize(
    ("sender", "expected"),
    [("ACME", None), ("ACME1", None), ("1234", "sender_not_alpha"), ("", "sender_not_alpha")],
)
def test_alpha_sender(sender: str, expected: str | None) -> None:
    assert check(policy(852, sender_format="alpha"), sender=sender) == expected


def test_reasons_come_in_a_fixed_order() -> None:
    strict = policy(86, template=True, signature=True, sender=True, sender_format="numeric")
    assert check(strict, "bad", "Bad", 1, "X") == "template_not_registered"
    assert check(strict, "您的验证码是1。", "Bad", 1, "X") == "signature_not_registered"
    assert check(strict, "您的验证码是1。", "ACME", 1, "X") == "sender_not_registered"
    assert check(strict, "您的验证码是1。", "ACME", 1, "ACME") == "sender_not_numeric"
    assert check(strict, "您的验证码是1。", "ACME", 1, "10690001") is None
