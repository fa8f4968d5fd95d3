"""Opt-out keywords and the per-customer opt-out list: what STOP, 退订 and START mean.

Strategy: a handset that answers a customer's message with STOP (or UNSUBSCRIBE, 退订, TD, or
the keywords its country's policy sets) goes on that customer's opt-out list; START takes it off.
Only the FIRST word of the text counts, compared after normalising both sides the same way
(:func:`normalise_word`): Unicode NFKC folds full-width forms (``ＳＴＯＰ`` → ``STOP``, the
ideographic space U+3000 → a space), ``casefold`` ignores case, and punctuation around the word
is dropped ("Stop." and "STOP!" both count). "STOP sending me offers" opts out; "please STOP"
does not: carriers' and regulators' rules (CTIA, MIIT 退订) ask for the keyword as the message,
and a keyword anywhere in the text would opt people out of conversations they meant to keep.

A country policy with keywords of its own (``country_policies.opt_out_keywords`` /
``opt_in_keywords``) REPLACES the defaults for numbers of that calling code, so an operator can
drop a default that means something else locally. A sent message to a number on the list is
refused with Intercept for that recipient (``api/accept.py``), like the blacklist.

    >>> opt_keyword("ｓｔｏｐ please", None)
    <OptAction.OPT_OUT: 'opt_out'>
    >>> opt_keyword("start", None)
    <OptAction.OPT_IN: 'opt_in'>
    >>> opt_keyword("please stop", None) is None
    True
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from cloudsms.domain.models import CountryPolicy
from cloudsms.domain.numbers import CALLING_CODES

#: How a number came on the list: an inbound keyword, an operator (CLI, admin API, console),
#: or the customer itself (portal).
OptVia = Literal["keyword", "operator", "customer"]
OPT_VIAS: Final[tuple[str, ...]] = ("keyword", "operator", "customer")

DEFAULT_OPT_OUT_KEYWORDS: Final[tuple[str, ...]] = ("STOP", "UNSUBSCRIBE", "退订", "TD")
DEFAULT_OPT_IN_KEYWORDS: Final[tuple[str, ...]] = ("START",)
#: Longest keyword an operator may set (a first word longer than this is never a keyword).
MAX_KEYWORD: Final = 32


class OptAction(enum.Enum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"


OPT_OUT: Final = OptAction.OPT_OUT
OPT_IN: Final = OptAction.OPT_IN


@dataclass(frozen=True, slots=True, kw_only=True)
class OptOut:
    """One number on one customer's opt-out list."""

    customer_id: int
    customer: str
    #: E.164 digits, calling code first (``85261234567``), as the blacklist stores numbers.
    number: str
    via: OptVia
    #: The keyword that put it there (the first word as received), when ``via`` is keyword.
    keyword: str | None
    created_ms: int


def normalise_word(word: str) -> str:
    """The form keywords are compared in: NFKC (full-width → ASCII), casefolded, unpunctuated."""
    folded = unicodedata.normalize("NFKC", word).casefold()
    start, end = 0, len(folded)
    while start < end and _is_edge(folded[start]):
        start += 1
    while end > start and _is_edge(folded[end - 1]):
        end -= 1
    return folded[start:end]


def _is_edge(ch: str) -> bool:
    # Punctuation (P*) and symbols (S*: emoji, ~) around the word do not change its meaning.
    return unicodedata.category(ch)[0] in "PS"


def first_word(text: str) -> str:
    """The first whitespace-separated word of ``text`` after NFKC (U+3000 is a space then)."""
    words = unicodedata.normalize("NFKC", text).split(None, 1)
    return words[0] if words else ""


def keyword_set(keywords: Iterable[str]) -> frozenset[str]:
    return frozenset(n for n in (normalise_word(k) for k in keywords) if n)


_DEFAULT_OUT = keyword_set(DEFAULT_OPT_OUT_KEYWORDS)
_DEFAULT_IN = keyword_set(DEFAULT_OPT_IN_KEYWORDS)


def keywords_for(country: CountryPolicy | None) -> tuple[frozenset[str], frozenset[str]]:
    """(opt-out, opt-in) keywords, normalised, of a destination: its policy's, else defaults."""
    out = _DEFAULT_OUT
    in_ = _DEFAULT_IN
    if country is not None:
        if country.opt_out_keywords is not None:
            out = keyword_set(country.opt_out_keywords)
        if country.opt_in_keywords is not None:
            in_ = keyword_set(country.opt_in_keywords)
    return out, in_


def opt_keyword(text: str, country: CountryPolicy | None) -> OptAction | None:
    """OPT_OUT, OPT_IN or None for an inbound text from a number of ``country``'s calling code.

    ``country`` is the policy of the handset's calling code (None: no policy, the defaults).
    A word that is both (an operator's mistake) opts out: the safe side.
    """
    word = normalise_word(first_word(text))
    if not word:
        return None
    out, in_ = keywords_for(country)
    if word in out:
        return OptAction.OPT_OUT
    if word in in_:
        return OptAction.OPT_IN
    return None


def calling_code_of(number: str) -> int | None:
    """The calling code a full number (digits) starts with; None when none is assigned.

    ITU calling codes are a prefix code (no code is the start of another), so the first of 1, 2
    or 3 leading digits that is assigned is the one.
    """
    for n in (1, 2, 3):
        if len(number) > n and int(number[:n]) in CALLING_CODES:
            return int(number[:n])
    return None


def inbound_number(source: str) -> str | None:
    """An MO's source address as the list stores numbers: digits with calling code, or None.

    Carriers send ``+85261234567``, ``0085261234567`` or ``85261234567`` (TON international);
    spaces and dashes are dropped. A number that does not start with an assigned calling code
    (a national-format address) cannot be told apart from another country's, so it is None.
    """
    text = unicodedata.normalize("NFKC", source).strip().replace(" ", "").replace("-", "")
    if text.startswith("+"):
        text = text[1:]
    elif text.startswith("00"):
        text = text[2:]
    if not text.isascii() or not text.isdigit() or not 4 <= len(text) <= 20:
        return None
    return text if calling_code_of(text) is not None else None


@dataclass(frozen=True, slots=True)
class OptChange:
    """What an inbound message asks of its customer's opt-out list (``opt_change``)."""

    #: The handset, as the list stores numbers (``inbound_number``).
    number: str
    action: OptAction
    #: The first word as received (at most 64 characters), kept with an opt-out entry.
    keyword: str


def opt_change(source: str, text: str, policies: Mapping[int, CountryPolicy]) -> OptChange | None:
    """The list change an MO from ``source`` saying ``text`` makes; None when it makes none.

    ``policies`` are the country policies by calling code (the configuration snapshot's): the
    handset's calling code chooses the keywords. A source in national format has no calling
    code to choose by: None (``inbound_number``).

        >>> opt_change("+85261234567", "Stop.", {})
        OptChange(number='85261234567', action=<OptAction.OPT_OUT: 'opt_out'>, keyword='Stop.')
    """
    number = inbound_number(source)
    if number is None:
        return None
    cc = calling_code_of(number)
    action = opt_keyword(text, None if cc is None else policies.get(cc))
    if action is None:
        return None
    return OptChange(number, action, first_word(text)[:64])
