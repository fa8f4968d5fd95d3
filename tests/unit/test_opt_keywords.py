"""Opt-out keywords (``domain/opt_out.py``): first word only, any case, full-width folded, and a
country policy's own keywords replacing the defaults."""

from __future__ import annotations

import pytest

from cloudsms.domain.models import CountryPolicy
from cloudsms.domain.opt_out import (
    OPT_IN,
    OPT_OUT,
    calling_code_of,
    inbound_number,
    opt_keyword,
)


def policy(out: tuple[str, ...] | None = None, in_: tuple[str, ...] | None = None) -> CountryPolicy:
    return CountryPolicy(
        country_code=86, region="CN", requires_template=False, requires_signature=False,
        requires_registered_sender=False, sender_format="any",
        opt_out_keywords=out, opt_in_keywords=in_,
    )  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "STOP", "stop", "Stop", "sToP", "STOP.", "stop!", "  STOP  ", "STOP please",
        # full-width letters, full-width !, the ideographic space U+3000
        "ＳＴＯＰ", "ｓｔｏｐ", "Ｓｔｏｐ！", "ＳＴＯＰ　谢谢",
        "UNSUBSCRIBE", "unsubscribe me", "Ｕｎｓｕｂｓｃｒｉｂｅ",
        "退订", "退订。", "退订 谢谢", "【退订】",
        "TD", "td", "Td", "ＴＤ", "ｔｄ",
        "STOP\\nthanks", "\\tstop",
    ],
)  # fmt: skip
def test_default_opt_out_words(text: str) -> None:
    text = text.replace("\\n", "\n").replace("\\t", "\t")
    assert opt_keyword(text, None) is OPT_OUT


@pytest.mark.parametrize("text", ["START", "start", "Start!", "ＳＴＡＲＴ", "ｓｔａｒｔ again"])
def test_default_opt_in_words(text: str) -> None:
    assert opt_keyword(text, None) is OPT_IN


@pytest.mark.parametrize(
    "text",
    [
        "", "   ", "please stop", "STOPPED", "stops", "tdd", "unsubscribed", "退订了吗",
        "STARTED", "restart", "ok STOP", "S T O P", "!!!", "😀",
    ],
)  # fmt: skip
def test_not_a_keyword(text: str) -> None:
    assert opt_keyword(text, None) is None


def test_a_country_policy_replaces_the_defaults() -> None:
    cn = policy(out=("退订", "ＴＤ", "取消"), in_=("开启",))
    assert opt_keyword("取消", cn) is OPT_OUT
    assert opt_keyword("td", cn) is OPT_OUT  # the policy's full-width TD matches plain td
    assert opt_keyword("STOP", cn) is None  # not among this country's words
    assert opt_keyword("开启", cn) is OPT_IN
    assert opt_keyword("START", cn) is None
    # Only one side set: the other keeps the defaults.
    assert opt_keyword("START", policy(out=("QUIT",))) is OPT_IN
    assert opt_keyword("STOP", policy(in_=("GO",))) is OPT_OUT
    # A word on both lists opts out (the safe side).
    assert opt_keyword("STOP", policy(out=("STOP",), in_=("STOP",))) is OPT_OUT
    # No policy keywords at all: nothing is a keyword.
    assert opt_keyword("STOP", policy(out=(), in_=())) is None


@pytest.mark.parametrize(
    ("source", "number"),
    [
        ("+85261234567", "85261234567"), ("0085261234567", "85261234567"),
        ("85261234567", "85261234567"), ("+852 6123-4567", "85261234567"),
        ("＋８５２６１２３４５６７", "85261234567"), ("8613800138000", "8613800138000"),
        ("+1 415 555 0100", "14155550100"),
        ("61234567x", None), ("", None), ("+", None), ("12", None), ("+9991234567", None),
    ],
)  # fmt: skip
def test_inbound_number(source: str, number: str | None) -> None:
    assert inbound_number(source) == number


def test_calling_code_of() -> None:
    assert calling_code_of("85261234567") == 852
    assert calling_code_of("8613800138000") == 86
    assert calling_code_of("14155550100") == 1
    assert calling_code_of("9991234") is None
