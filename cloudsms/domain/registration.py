"""Destination registration rules (appendix 短信内容注册): templates, signatures, sender IDs.

Why pure: which countries are regulated, and how, is operator-editable data (``CountryPolicy``
rows seeded from the appendix); this module only applies a policy to one packet. Every function is
deterministic and does no I/O, so the API may call ``check_destination`` once per (packet,
destination country) and reuse the answer for every recipient in that country.

Templates. A template body is literal text with ``{slot}`` variables (``{{`` and ``}}`` are literal
braces). A slot name is one or more word characters (letters of any script, digits, ``_``). Each
slot stands for 1..64 characters other than a newline. Content matches when the *whole* content
matches the body (``compile_template(body).fullmatch(content)``); matching is exact, with no case
folding or whitespace normalisation, because the regulator registered exactly that text.

Strategy for matching. The regular expression from ``compile_template`` defines the semantics and
is what the CLI shows, but the hot path does not run it: with a few slots separated by a common
character (``{a} {b} {c} {d} {e}!``) Python's backtracking engine takes seconds to reject hostile
content, and content comes from customers. ``template_matches`` instead walks the literal parts
left to right, keeping the set of content offsets a prefix of the template can end at, so it costs
O(slots × content length) whatever the input. A property test pins it to the regex.

Signatures. When SIGNATURE is given (type 1..4, or no type, which means 1), it must be one of the
customer's approved signatures. When it is absent, or SIGNATURE_TYPE is 5 ("already signed"), the
text that reaches the handset is the customer's content, so that content must start or end with
``【S】`` or ``[S]`` for an approved ``S``; such a bracketed signature may also be left out of the
registered template (both the content as sent and the content without it are tried).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Final

from cloudsms.domain.models import CountryPolicy, Template

__all__ = [
    "SLOT_MAX_CHARS",
    "check_destination",
    "compile_template",
    "template_matches",
]

#: Most characters one ``{slot}`` may stand for.
SLOT_MAX_CHARS: Final = 64

_SLOT_NAME: Final = re.compile(r"\w+")
_BRACKETS: Final = (("【", "】"), ("[", "]"))


@functools.lru_cache(maxsize=4096)
def _parse(body: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Split ``body`` into literal parts and slot runs: ``(L0, L1, …, Lk)``, ``(n1, …, nk)``.

    ``n_i`` is how many adjacent slots sit between ``L(i-1)`` and ``L(i)`` (``{a}{b}`` is one run
    of 2, standing for 2..128 characters). Raises ValueError with the position of the problem.
    """
    if not body:
        raise ValueError("template body is empty")
    literals: list[str] = []
    runs: list[int] = []
    current: list[str] = []
    after_slot = False
    index = 0
    while index < len(body):
        char = body[index]
        if char == "{" and body.startswith("{{", index):
            current.append("{")
            index += 2
        elif char == "{":
            close = body.find("}", index + 1)
            if close == -1:
                raise ValueError(f"unclosed '{{' at position {index}: write '{{{{' for a brace")
            name = body[index + 1 : close]
            if not _SLOT_NAME.fullmatch(name):
                raise ValueError(
                    f"invalid slot {{{name}}} at position {index}: a slot name is letters,"
                    " digits and '_' (write '{{' and '}}' for literal braces)"
                )
            if after_slot:  # {a}{b}: one run of two slots, nothing literal between them
                runs[-1] += 1
            else:
                literals.append("".join(current))
                runs.append(1)
            current = []
            after_slot = True
            index = close + 1
            continue
        elif char == "}" and body.startswith("}}", index):
            current.append("}")
            index += 2
        elif char == "}":
            raise ValueError(f"unmatched '}}' at position {index}: write '}}}}' for a brace")
        else:
            current.append(char)
            index += 1
        after_slot = False
    literals.append("".join(current))
    return tuple(literals), tuple(runs)


@functools.lru_cache(maxsize=4096)
def compile_template(body: str) -> re.Pattern[str]:
    """The regular expression a template body stands for; use it with ``fullmatch``.

    Literal text is escaped; each ``{slot}`` becomes ``.{1,64}?`` (no newline, non-greedy), and
    ``n`` adjacent slots one ``.{n,64n}?`` (the same strings, without the backtracking that
    ``n`` separate quantifiers cost). Raises ``ValueError`` with a readable message for an
    empty body or unbalanced braces.

    >>> compile_template("Code {code}, valid 5 min.").fullmatch("Code 1234, valid 5 min.")
    <re.Match object; span=(0, 23), match='Code 1234, valid 5 min.'>
    >>> compile_template("Price {p}").fullmatch("Price") is None
    True
    """
    literals, runs = _parse(body)
    pieces = [re.escape(literals[0])]
    for literal, run in zip(literals[1:], runs, strict=True):
        pieces.append(f".{{{run},{SLOT_MAX_CHARS * run}}}?")
        pieces.append(re.escape(literal))
    return re.compile("".join(pieces))


def _fullmatch(body: str, content: str) -> bool:
    """``compile_template(body).fullmatch(content)`` in O(slots × len(content)), no backtracking."""
    literals, runs = _parse(body)
    head = literals[0]
    if not content.startswith(head):
        return False
    if not runs:
        return content == head
    size = len(content)
    # Offsets where the template prefix matched so far can end (a slot run starts there).
    starts = {len(head)}
    last = len(runs) - 1
    for step, run in enumerate(runs):
        literal = literals[step + 1]
        # Each start p lets the run end anywhere in [p + run, p + 64 * run], not past a newline.
        # Starts ascend, so the spans come out sorted and merge into disjoint intervals: each
        # content offset is then searched once per step.
        spans: list[tuple[int, int]] = []
        for start in sorted(starts):
            newline = content.find("\n", start)
            stop = min(start + SLOT_MAX_CHARS * run, size if newline == -1 else newline)
            if stop < start + run:
                continue
            if spans and start + run <= spans[-1][1] + 1:  # overlaps the previous span: merge
                spans[-1] = (spans[-1][0], max(spans[-1][1], stop))
            else:
                spans.append((start + run, stop))
        if step == last:
            # The tail literal must end the content, right after the run.
            end = size - len(literal)
            return content.endswith(literal) and any(lo <= end <= hi for lo, hi in spans)
        starts = set()
        for lo, hi in spans:
            found = content.find(literal, lo, hi + len(literal))
            while found != -1:
                starts.add(found + len(literal))
                found = content.find(literal, found + 1, hi + len(literal))
        if not starts:
            return False
    return False  # unreachable: the last run returns above


def _usable(template: Template, country_code: int) -> bool:
    return template.status == "approved" and template.country_code in (None, country_code)


def template_matches(content: str, templates: Iterable[Template], country_code: int) -> bool:
    """True when ``content`` fully matches an approved template valid for ``country_code``.

    ``content`` is the customer's SMS_CONTENT before the signature is applied. A template with
    ``country_code`` None serves every regulated destination. A stored template whose body does
    not parse (the CLI refuses those, so only hand-edited data) never matches.

    >>> t = Template(id=1, customer_id=1, body="验证码{code}", country_code=86, status="approved")
    >>> template_matches("验证码123456", [t], 86), template_matches("验证码123456", [t], 66)
    (True, False)
    """
    for template in templates:
        if not _usable(template, country_code):
            continue
        try:
            if _fullmatch(template.body, content):
                return True
        except ValueError:
            continue
    return False


def _unsigned_body(content: str, approved_signatures: frozenset[str]) -> str | None:
    """``content`` without its leading or trailing ``【S】``/``[S]`` for an approved S, or None."""
    for signature in approved_signatures:
        if not signature:
            continue
        for opening, closing in _BRACKETS:
            signed = f"{opening}{signature}{closing}"
            if content.startswith(signed):
                return content[len(signed) :]
            if content.endswith(signed):
                return content[: -len(signed)]
    return None


def check_destination(
    policy: CountryPolicy | None,
    *,
    content: str,
    signature: str | None,
    signature_type: int | None,
    sender: str,
    approved_signatures: frozenset[str],
    templates: Sequence[Template],
    approved_senders: frozenset[tuple[str, int | None]],
) -> str | None:
    """None when ``policy`` lets this packet through, else the reason it is intercepted.

    Reasons, checked in this order: ``template_not_registered``, ``signature_not_registered``,
    ``sender_not_registered``, ``sender_not_numeric``, ``sender_not_alpha``. No policy means an
    unregulated destination. Pure and deterministic: cache the answer per destination country.

    >>> kr = CountryPolicy(country_code=82, region="KR", requires_template=False,
    ...     requires_signature=False, requires_registered_sender=False, sender_format="numeric")
    >>> check_destination(kr, content="hi", signature=None, signature_type=None, sender="ACME",
    ...     approved_signatures=frozenset(), templates=(), approved_senders=frozenset())
    'sender_not_numeric'
    """
    if policy is None:
        return None
    self_signed = not signature or signature_type == 5
    unsigned = _unsigned_body(content, approved_signatures) if self_signed else None
    if policy.requires_template:
        bodies = (content,) if unsigned is None else (content, unsigned)
        if not any(template_matches(body, templates, policy.country_code) for body in bodies):
            return "template_not_registered"
    if policy.requires_signature:
        ok = unsigned is not None if self_signed else signature in approved_signatures
        if not ok:
            return "signature_not_registered"
    if policy.requires_registered_sender and not (
        sender
        and (
            (sender, policy.country_code) in approved_senders or (sender, None) in approved_senders
        )
    ):
        return "sender_not_registered"
    if policy.sender_format == "numeric" and not (sender.isascii() and sender.isdigit()):
        return "sender_not_numeric"
    if policy.sender_format == "alpha" and not any(char.isalpha() for char in sender):
        return "sender_not_alpha"
    return None
