"""Validation of raw operator input: one function per kind of value, each raising ConfigError.

The CLI, the admin REST API and the web console all pass what a person typed through these, so
one rule gives one message everywhere. Each function returns the value in its stored form
(``" hkd "`` → ``"HKD"``, ``"10.0.0.1"`` → ``"10.0.0.1/32"``).

Rules worth knowing (also in the operator docs):

* AUTH_KEY: 128 characters (document: 固定长度为 128 字节) drawn with ``secrets`` from the 62
  letters and digits — about 762 bits, safe to paste into JSON, shell and URLs unquoted. The
  document's example looks base64 (``+``, ``/``, ``=``); those need quoting in shells and
  escaping in URLs, and buy nothing at this length.
* Amounts: plain decimals (``12``, ``0.0525``, ``-3.5``), at most 6 decimals (micro-units), never
  float, no exponents, at most 10**12 in magnitude (so any sum fits a 64-bit integer).
* Prefixes and blacklisted numbers: digits only (a leading ``+`` is dropped), beginning with an
  assigned ITU calling code taken from ``phonenumbers`` metadata.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import string
from typing import Literal, cast
from urllib.parse import urlsplit

import phonenumbers

from cloudsms.domain import money
from cloudsms.domain.models import ApprovalStatus
from cloudsms.domain.opt_out import MAX_KEYWORD
from cloudsms.domain.packet import MAX_SENDER
from cloudsms.domain.smpp_accounts import BIND_MODES, MAX_PASSWORD, MAX_SYSTEM_ID
from cloudsms.exceptions import ConfigError

AUTH_KEY_LENGTH = 128
AUTH_KEY_ALPHABET = string.ascii_letters + string.digits
#: Every assigned ITU calling code (geographic and non-geographic such as 800 and 882).
CALLING_CODES: frozenset[int] = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)
MAX_AMOUNT_MICROS = 10**12 * money.MICROS
SENDER_FORMATS = ("any", "numeric", "alpha")
STATUSES = ("pending", "approved", "rejected")

_AMOUNT = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def generate_auth_key() -> str:
    """A new AUTH_KEY: 128 cryptographically random letters and digits."""
    return "".join(secrets.choice(AUTH_KEY_ALPHABET) for _ in range(AUTH_KEY_LENGTH))


def check_auth_key(key: str) -> str:
    """An operator-supplied key (e.g. carried over from another platform)."""
    if len(key) != AUTH_KEY_LENGTH or not _PRINTABLE_ASCII.fullmatch(key) or " " in key:
        raise ConfigError(
            f"an AUTH_KEY is exactly {AUTH_KEY_LENGTH} printable ASCII characters without spaces"
        )
    return key


def check_name(name: str, what: str = "customer name", limit: int = 64) -> str:
    """Names people type and read back: 1..limit printable characters, no edge whitespace."""
    if not name or len(name) > limit:
        raise ConfigError(f"{what} must be 1 to {limit} characters, got {len(name)}")
    if not name.isprintable() or name != name.strip():
        raise ConfigError(f"{what} {name!r} has control characters or leading/trailing spaces")
    return name


def check_route_name(name: str) -> str:
    """A ROUTE_ID as customers send it: 1..255 printable ASCII characters."""
    if not 0 < len(name) <= 255 or not _PRINTABLE_ASCII.fullmatch(name):
        raise ConfigError(f"ROUTE_ID {name!r} must be 1 to 255 printable ASCII characters")
    return check_name(name, "ROUTE_ID", 255)


def check_currency(code: str) -> str:
    try:
        return money.check_currency(code)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def parse_money(text: str, what: str = "amount", *, allow_negative: bool = False) -> int:
    """An exact decimal amount → micro-units; ``"1.2.3"``, ``"1e3"`` and floats' noise refused."""
    text = text.strip()
    if not _AMOUNT.fullmatch(text):
        raise ConfigError(f"{what} {text!r} is not a decimal number like 12 or 0.0525")
    try:
        micros = money.parse_amount(text)
    except ValueError as exc:
        raise ConfigError(f"{what} {text!r}: at most 6 decimals (one micro-unit)") from exc
    if micros < 0 and not allow_negative:
        raise ConfigError(f"{what} {text!r} must not be negative")
    if abs(micros) > MAX_AMOUNT_MICROS:
        raise ConfigError(f"{what} {text!r} is too large")
    return micros


def parse_cidr(text: str) -> str:
    """An IPv4/IPv6 address or network, normalised (host bits cleared, single address → /32)."""
    try:
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError as exc:
        raise ConfigError(f"{text!r} is not an IP address or CIDR network") from exc


def check_callback_url(url: str) -> str:
    """Where reports are pushed: an http or https URL with a host."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ConfigError(f"callback URL {url!r} is not a valid URL") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"callback URL {url!r} must be http:// or https:// with a host")
    if len(url) > 2048 or any(ch.isspace() for ch in url):
        raise ConfigError(f"callback URL {url!r} is too long or contains spaces")
    return url


def check_country_code(value: str | int) -> int:
    """An assigned ITU calling code (``852``, ``+86``)."""
    text = str(value).strip().removeprefix("+")
    if not text.isascii() or not text.isdigit() or int(text) not in CALLING_CODES:
        raise ConfigError(f"{value!r} is not an assigned country calling code")
    return int(text)


def _digits_with_calling_code(text: str, what: str, limit: int) -> str:
    digits = text.strip().removeprefix("+")
    if not digits.isascii() or not digits.isdigit() or len(digits) > limit:
        raise ConfigError(f"{what} {text!r} must be 1 to {limit} digits")
    if not any(int(digits[:n]) in CALLING_CODES for n in (1, 2, 3) if len(digits) >= n):
        raise ConfigError(f"{what} {text!r} does not start with an assigned country calling code")
    return digits


def check_prefix(text: str) -> str:
    """A price prefix: a calling code or a longer prefix of one (``852``, ``8526``)."""
    return _digits_with_calling_code(text, "prefix", 16)


def check_number(text: str) -> str:
    """A full number, calling code first (``85261234567``), as the blacklist stores it."""
    digits = _digits_with_calling_code(text, "number", 35)
    if len(digits) < 4:
        raise ConfigError(f"number {text!r} is too short: give calling code + number")
    return digits


def check_signature(text: str) -> str:
    """A signature as applied inside 【】 or []: 1..64 printable characters, no brackets."""
    check_name(text, "signature", 64)
    if any(ch in "【】[]" for ch in text):
        raise ConfigError(f"signature {text!r}: give the text without 【】 or [] brackets")
    return text


def check_sender(text: str) -> str:
    """A sender ID (ORIGINAL_ADDR): 0x20–0x7E (SPEC §2), at most what a carrier takes (20)."""
    if not 0 < len(text) <= MAX_SENDER or not _PRINTABLE_ASCII.fullmatch(text):
        raise ConfigError(
            f"sender {text!r} must be 1 to {MAX_SENDER} printable ASCII characters"
            " (SMPP source_addr)"
        )
    return text


def check_template(body: str) -> str:
    """A template body with ``{name}`` slots; it must compile as the accept path compiles it."""
    # Imported here: the registration module is the accept path's, and loads its own data.
    from cloudsms.domain.registration import compile_template

    if not body.strip():
        raise ConfigError("template body is empty")
    if len(body) > 1600:
        raise ConfigError("template body is longer than 1600 characters (SPEC §3)")
    try:
        compile_template(body)
    except ValueError as exc:
        raise ConfigError(f"template {body!r}: {exc}") from exc
    return body


def check_sender_format(value: str) -> Literal["any", "numeric", "alpha"]:
    lowered = value.strip().lower()
    if lowered not in SENDER_FORMATS:
        raise ConfigError(f"sender format {value!r}: one of {', '.join(SENDER_FORMATS)}")
    return cast(Literal["any", "numeric", "alpha"], lowered)


def check_status(value: str) -> ApprovalStatus:
    lowered = value.strip().lower()
    if lowered not in STATUSES:
        raise ConfigError(f"status {value!r}: one of {', '.join(STATUSES)}")
    return cast(ApprovalStatus, lowered)


def check_cert_sha256(value: str) -> str:
    """A certificate fingerprint: 64 hex digits, colons allowed (``openssl x509 -fingerprint``)."""
    hexed = value.strip().replace(":", "").lower()
    if not _SHA256_HEX.fullmatch(hexed):
        raise ConfigError(f"{value!r} is not a SHA-256 fingerprint (64 hex digits)")
    return hexed


def check_backlog(value: str | int) -> int:
    text = str(value).strip()
    if not text.isascii() or not text.isdigit() or int(text) > 2**31 - 1:
        raise ConfigError(f"max backlog {value!r} must be a whole number ≥ 0")
    return int(text)


def region_of(country_code: int) -> str:
    """The main ISO region of a calling code; "ZZ" for non-geographic codes (800, 882, …)."""
    region = phonenumbers.region_code_for_country_code(country_code)
    return region if len(region) == 2 else "ZZ"


def check_system_id(value: str) -> str:
    """An SMPP system_id: 1..15 printable ASCII characters (SMPP 3.4 §5.2.1)."""
    if not 0 < len(value) <= MAX_SYSTEM_ID or not _PRINTABLE_ASCII.fullmatch(value):
        raise ConfigError(
            f"system_id {value!r} must be 1 to {MAX_SYSTEM_ID} printable ASCII characters"
        )
    return value


def check_smpp_password(value: str) -> str:
    """An SMPP password: 1..8 printable ASCII characters (SMPP 3.4 §5.2.2)."""
    if not 0 < len(value) <= MAX_PASSWORD or not _PRINTABLE_ASCII.fullmatch(value):
        raise ConfigError(
            f"the SMPP password must be 1 to {MAX_PASSWORD} printable ASCII characters"
        )
    return value


def check_binds(value: str) -> frozenset[str]:
    """Bind modes, comma-separated: a non-empty subset of tx, rx, trx."""
    modes = frozenset(m.strip().lower() for m in value.split(",") if m.strip())
    unknown = modes - set(BIND_MODES)
    if not modes or unknown:
        raise ConfigError(f"binds must be a comma-separated list of tx, rx, trx; got {value!r}")
    return modes


def check_range(value: str | int, what: str, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high`` typed by an operator."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a whole number, got {value!r}") from None
    if not low <= number <= high:
        raise ConfigError(f"{what} must be {low} to {high}, got {number}")
    return number


def check_inbound_number(value: str) -> str:
    """A long number or short code: 3 to 20 digits once spaces, dashes and a leading + go."""
    digits = value.strip().removeprefix("+").replace(" ", "").replace("-", "")
    if not (digits.isascii() and digits.isdigit() and 3 <= len(digits) <= 20):
        raise ConfigError(f"inbound number {value!r} must be 3 to 20 digits (a leading + is fine)")
    return digits


def check_keyword(value: str | None) -> str:
    """A keyword of a shared short code: one word of at most 32 characters, any case ("" none)."""
    word = (value or "").strip()
    if len(word) > 32 or any(ch.isspace() for ch in word):
        raise ConfigError(f"keyword {value!r} must be one word of at most 32 characters")
    return word.upper()


def check_keywords(text: str) -> tuple[str, ...]:
    """Opt-out / opt-in keywords, comma-separated (``STOP,TD,退订``): each one word, 1-32."""
    words = tuple(w.strip() for w in text.split(","))
    for word in words:
        if not 0 < len(word) <= MAX_KEYWORD or any(ch.isspace() for ch in word):
            raise ConfigError(
                f"keyword {word!r}: give comma-separated single words of 1 to {MAX_KEYWORD}"
                " characters, e.g. STOP,TD,退订"
            )
    return words
