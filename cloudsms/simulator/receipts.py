"""What the simulator reports for each segment: outcome, delay, and the receipt PDU itself.

Strategy: :class:`ReceiptPolicy` is pure and seeded by the caller's ``random.Random``, so a test
is deterministic. The outcome of a segment comes from the first :class:`Rule` whose destination
prefix/suffix matches (for tests that need a known answer per number), else from the weighted
draw ``delivered / undeliverable / rejected / expired``. ``expired`` sends no receipt at all: the
platform's own expiry timer has to notice (SPEC §5). The delay is :class:`Fixed`,
:class:`Uniform` or :class:`Exponential`.

:func:`build_receipt` writes the receipt the way most carriers do: a deliver_sm with esm_class
0x04 (SMSC delivery receipt, §5.2.12), source and destination swapped, the SMPP 3.4 Appendix B
text in short_message, and the receipted_message_id (§5.3.2.12) and message_state (§5.3.2.35)
TLVs carrying the same facts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from cloudsms.smpp.constants import EsmClass, SmppMessageState, Tag
from cloudsms.smpp.pdu import DeliverSm
from cloudsms.smpp.tlv import Tlv

Outcome = Literal["delivered", "undeliverable", "rejected", "expired", "deleted", "unknown"]
#: The outcomes drawn by weight; ``deleted`` and ``unknown`` (rarer final states) come from
#: rules only.
OUTCOMES: Final[tuple[Outcome, ...]] = ("delivered", "undeliverable", "rejected", "expired")

#: Outcome → (Appendix B stat, message_state TLV value §5.2.28, err).
_STAT: Final[dict[str, tuple[str, int, str]]] = {
    "delivered": ("DELIVRD", SmppMessageState.DELIVERED, "000"),
    "undeliverable": ("UNDELIV", SmppMessageState.UNDELIVERABLE, "001"),
    "rejected": ("REJECTD", SmppMessageState.REJECTED, "002"),
    "deleted": ("DELETED", SmppMessageState.DELETED, "003"),
    "unknown": ("UNKNOWN", SmppMessageState.UNKNOWN, "004"),
}


@dataclass(frozen=True, slots=True)
class Fixed:
    """Always ``seconds``."""

    seconds: float = 0.0

    def sample(self, rng: random.Random) -> float:
        return self.seconds


@dataclass(frozen=True, slots=True)
class Uniform:
    """Uniformly between ``low`` and ``high`` seconds."""

    low: float
    high: float

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True, slots=True)
class Exponential:
    """Exponentially distributed with the given ``mean`` (seconds)."""

    mean: float

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean) if self.mean > 0 else 0.0


Delay = Fixed | Uniform | Exponential


def parse_delay(text: str) -> Delay:
    """``0.1`` (fixed) | ``uniform:A:B`` | ``exp:MEAN``, in seconds.

    >>> parse_delay("uniform:0.1:2"), parse_delay("exp:0.5"), parse_delay("0")
    (Uniform(low=0.1, high=2.0), Exponential(mean=0.5), Fixed(seconds=0.0))
    """
    kind, _, rest = text.strip().partition(":")
    try:
        if not rest:
            value = float(kind)
            if value < 0:
                raise ValueError("negative")
            return Fixed(value)
        args = [float(a) for a in rest.split(":")]
        if kind == "uniform" and len(args) == 2 and 0 <= args[0] <= args[1]:
            return Uniform(args[0], args[1])
        if kind in ("exp", "exponential") and len(args) == 1 and args[0] >= 0:
            return Exponential(args[0])
    except ValueError:
        pass
    raise ValueError(f"bad delay {text!r}: expected SECONDS, uniform:A:B or exp:MEAN")


@dataclass(frozen=True, slots=True)
class Rule:
    """Destinations starting with ``prefix`` and ending with ``suffix`` get ``outcome``."""

    outcome: Outcome
    prefix: str = ""
    suffix: str = ""

    def matches(self, destination: str) -> bool:
        return destination.startswith(self.prefix) and destination.endswith(self.suffix)


class ReceiptPolicy:
    """Outcome and delay of each segment's receipt.

    >>> policy = ReceiptPolicy(rules=[Rule("rejected", suffix="3")])
    >>> policy.outcome("85261234563", random.Random(1)), policy.outcome("852", random.Random(1))
    ('rejected', 'delivered')
    """

    def __init__(
        self,
        *,
        delivered: float = 1.0,
        undeliverable: float = 0.0,
        rejected: float = 0.0,
        expired: float = 0.0,
        rules: Sequence[Rule] = (),
        delay: Delay = Fixed(0.0),
    ) -> None:
        weights = (delivered, undeliverable, rejected, expired)
        if any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError("outcome weights must be >= 0 and not all 0")
        total = sum(weights)
        self.weights = tuple(w / total for w in weights)
        self.rules = tuple(rules)
        self.delay = delay
        self._only: Outcome | None = next(
            (o for o, w in zip(OUTCOMES, weights, strict=True) if w == total), None
        )

    def outcome(self, destination: str, rng: random.Random) -> Outcome:
        for rule in self.rules:
            if rule.matches(destination):
                return rule.outcome
        if self._only is not None:
            return self._only
        draw = rng.random()
        for outcome, weight in zip(OUTCOMES, self.weights, strict=True):
            if draw < weight:
                return outcome
            draw -= weight
        return OUTCOMES[-1]  # pragma: no cover - rounding

    def sample_delay(self, rng: random.Random) -> float:
        return self.delay.sample(rng)

    def __repr__(self) -> str:
        w = ", ".join(f"{o}={x:g}" for o, x in zip(OUTCOMES, self.weights, strict=True))
        return f"ReceiptPolicy({w}, rules={list(self.rules)!r}, delay={self.delay!r})"


_stamp_cache: list[object] = [0, ""]


def receipt_date(now: float | None = None) -> str:
    """YYMMDDhhmm in local time (Appendix B), cached per minute."""
    now = time.time() if now is None else now
    minute = int(now // 60)
    if _stamp_cache[0] != minute:
        _stamp_cache[0] = minute
        _stamp_cache[1] = time.strftime("%y%m%d%H%M", time.localtime(now))
    return str(_stamp_cache[1])


def build_receipt(
    *,
    message_id: str,
    outcome: Outcome,
    original_source: str,
    original_destination: str,
    submit_date: str,
    text: str,
    source_ton: int = 1,
    source_npi: int = 1,
    dest_ton: int = 0,
    dest_npi: int = 0,
) -> DeliverSm:
    """The deliver_sm receipt for one segment (sequence_number 0: the sender assigns it)."""
    stat, state, err = _STAT[outcome]
    dlvrd = "001" if outcome == "delivered" else "000"
    snippet = text[:20]
    if not (snippet.isascii() and snippet.isprintable()):
        snippet = "".join(c if " " <= c <= "~" else "?" for c in snippet)
    body = (
        f"id:{message_id} sub:001 dlvrd:{dlvrd} submit date:{submit_date} "
        f"done date:{receipt_date()} stat:{stat} err:{err} text:{snippet}"
    )
    return DeliverSm(
        sequence_number=0,
        source_addr_ton=source_ton,
        source_addr_npi=source_npi,
        source_addr=original_destination,
        dest_addr_ton=dest_ton,
        dest_addr_npi=dest_npi,
        destination_addr=original_source,
        esm_class=EsmClass.DELIVERY_RECEIPT,
        short_message=body.encode("ascii"),
        tlvs=(
            Tlv(Tag.RECEIPTED_MESSAGE_ID, message_id.encode("ascii") + b"\0"),
            Tlv(Tag.MESSAGE_STATE, bytes((state,))),
        ),
    )
