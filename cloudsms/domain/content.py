"""The CloudSMS document's content rules: signature placement, byte length, and the send plan.

Why a module of its own: the API validates and prices a packet from these numbers, the store
keeps them, and the dispatcher sends the same final text, so the rules live in one pure place.

Decisions (the document leaves them open; SPEC §3 settles the rest):

- **Signature first.** ``plan_content`` applies the signature, then measures length, chooses the
  encoding and counts segments on the final text: the text the handset shows is the text billed.
- **No space between signature and content.** The SIGNATURE_TYPE table writes ``【Signature】 xxx``
  but every example in the document (验证码常见格式: ``【CloudSMS】您的短信验证码是…``) has none,
  and a space would cost a character (a whole segment at a boundary) the customer never typed.
- **SIGNATURE without SIGNATURE_TYPE means type 1** (``【S】`` at the start): the document pairs the
  two fields ("如使用SIGNATURE参数，请配合选择SIGNATURE_TYPE字段") and both of its request examples
  use type 1 with SIGNATURE. Type 5 means "content already signed": SIGNATURE is not added.
- **No signature** (absent or ``""``) leaves the content unchanged whatever the type.
- **Byte length** (section SMS_CONTENT参数): ASCII-only text counts 1 byte per character; one
  non-ASCII character makes every character count 2. A character is a Unicode code point, so an
  emoji counts as one character (2 bytes) here, though it costs 2 UCS-2 units in a segment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cloudsms.smpp.encoding import Encoding, choose_encoding, count_segments

__all__ = [
    "DEFAULT_SIGNATURE_TYPE",
    "MAX_CONTENT_BYTES",
    "MAX_SEGMENTS",
    "ContentPlan",
    "apply_signature",
    "content_bytes",
    "plan_content",
]

#: Document section SMS_CONTENT参数: "允许最大长度为1600字节".
MAX_CONTENT_BYTES: Final = 1600
#: The slicing tables of appendix CloudSMS短信切片规则 stop at 10 segments.
MAX_SEGMENTS: Final = 10
#: Used when SIGNATURE is given without SIGNATURE_TYPE.
DEFAULT_SIGNATURE_TYPE: Final = 1

# SIGNATURE_TYPE → (opening bracket, closing bracket, signature goes first?)
_PLACEMENT: Final[dict[int, tuple[str, str, bool]]] = {
    1: ("【", "】", True),
    2: ("【", "】", False),
    3: ("[", "]", True),
    4: ("[", "]", False),
}


def apply_signature(content: str, signature: str | None, signature_type: int | None) -> str:
    """The final text: ``content`` with ``signature`` placed as SIGNATURE_TYPE says.

    The API has already checked that ``signature_type`` is 1..5; any other value raises
    ``ValueError`` here rather than sending an unsigned message by mistake.

    >>> apply_signature("您的验证码是123456", "CloudSMS", 1)
    '【CloudSMS】您的验证码是123456'
    >>> apply_signature("Code 123456", "CloudSMS", 4)
    'Code 123456[CloudSMS]'
    """
    if not signature:
        return content
    kind = DEFAULT_SIGNATURE_TYPE if signature_type is None else signature_type
    if kind == 5:
        return content
    try:
        opening, closing, first = _PLACEMENT[kind]
    except KeyError:
        raise ValueError(f"SIGNATURE_TYPE must be 1..5, got {signature_type!r}") from None
    signed = f"{opening}{signature}{closing}"
    return signed + content if first else content + signed


def content_bytes(text: str) -> int:
    """Length of ``text`` by the document's rule: 1 byte a character if ASCII-only, else 2.

    >>> content_bytes("Hello"), content_bytes("Hello你"), content_bytes("é")
    (5, 12, 2)
    """
    return len(text) if text.isascii() else 2 * len(text)


@dataclass(frozen=True, slots=True)
class ContentPlan:
    """What one packet's content becomes: computed once per packet, shared by its recipients."""

    #: The final text (signature applied) that is stored, priced and sent.
    text: str
    #: gsm7, latin1 or ucs2, as ``cloudsms.smpp.encoding.choose_encoding`` picks.
    encoding: Encoding
    #: Segments the customer is charged per recipient (the document's slicing tables).
    segments: int
    #: The document's byte length of ``text`` (compare with MAX_CONTENT_BYTES).
    length_bytes: int


def plan_content(
    content: str, signature: str | None, signature_type: int | None, latin1_ok: bool
) -> ContentPlan:
    """Apply the signature, then measure, choose the encoding and count segments.

    Limits are not checked here: the API compares ``length_bytes`` with MAX_CONTENT_BYTES and
    ``segments`` with MAX_SEGMENTS and answers Invalid_context.

    >>> plan_content("Code 1234", "CloudSMS", 3, latin1_ok=False)
    ContentPlan(text='[CloudSMS]Code 1234', encoding='gsm7', segments=1, length_bytes=19)
    """
    text = apply_signature(content, signature, signature_type)
    encoding = choose_encoding(text, latin1_ok)
    return ContentPlan(
        text=text,
        encoding=encoding,
        segments=count_segments(text, encoding),
        length_bytes=content_bytes(text),
    )
