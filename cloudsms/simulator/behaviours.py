"""The simulator's catalogue of carrier behaviours: one small class per (mis)behaviour.

Strategy: like jasmin's ``HappySMSC`` / ``NoResponseOnSubmitSMSC`` / ``QoSSMSC_2MPS``, but as
plain policy objects instead of server subclasses. The simulator asks its behaviour two things:

* :meth:`Behaviour.bind_status` — refuse a bind before the password is even checked;
* :meth:`Behaviour.on_submit` — what to do with the ``index``-th submit_sm it has received
  (1-based, counted over the simulator's lifetime, all connections): a :class:`Decision`.

A Decision is REPLY (with a command_status, after an optional delay), NO_REPLY (keep the
submit outstanding forever) or DISCONNECT (drop the connection now, without answering).
Behaviours keep their own counters, so "once" misbehaviours survive the client's reconnect.

    >>> [Throttling(every_n=2).on_submit(i).status for i in (1, 2)]
    [0, 88]
"""

from __future__ import annotations

import time
from typing import Final, NamedTuple

from cloudsms.smpp.constants import CommandStatus

REPLY: Final = 0
NO_REPLY: Final = 1
DISCONNECT: Final = 2


class Decision(NamedTuple):
    """What to do with one submit_sm."""

    action: int = REPLY
    #: command_status of the submit_sm_resp (REPLY only).
    status: int = 0
    #: seconds to wait before replying (REPLY only).
    delay: float = 0.0


#: The common case, allocated once.
REPLY_OK: Final = Decision()
_NO_REPLY: Final = Decision(NO_REPLY)
_DISCONNECT: Final = Decision(DISCONNECT)


class Behaviour:
    """Base: accept every bind, answer every submit ESME_ROK at once (the Happy carrier)."""

    #: The name the CLI uses (``--behaviour NAME[:ARGS]``).
    name = "happy"
    #: False: enquire_link goes unanswered too (a dead SMSC whose socket is still open).
    answers_enquire_link = True

    def bind_status(self, system_id: str) -> int:
        """0 to go on with the password check, or the command_status to refuse with."""
        return 0

    def on_submit(self, index: int) -> Decision:
        return REPLY_OK

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Happy(Behaviour):
    """Every submit gets ESME_ROK at once."""


class Throttling(Behaviour):
    """ESME_RTHROTTLED (§5.1.3) on every ``every_n``-th submit, or above ``rate`` submits/s."""

    name = "throttle"

    def __init__(
        self,
        every_n: int | None = None,
        *,
        rate: float | None = None,
        status: int = CommandStatus.ESME_RTHROTTLED,
    ) -> None:
        if (every_n is None) == (rate is None):
            raise ValueError("give exactly one of every_n and rate")
        if every_n is not None and every_n < 1:
            raise ValueError("every_n must be at least 1")
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self.every_n = every_n
        self.rate = rate
        self.status = status
        self._window_start = 0.0
        self._in_window = 0

    def on_submit(self, index: int) -> Decision:
        if self.every_n is not None:
            return Decision(REPLY, self.status) if index % self.every_n == 0 else REPLY_OK
        assert self.rate is not None
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._in_window = now, 0
        self._in_window += 1
        return Decision(REPLY, self.status) if self._in_window > self.rate else REPLY_OK


class NoResponse(Behaviour):
    """Answers the first ``after_n`` submits, then never answers a submit again.

    With ``enquire_link=False`` it ignores enquire_link as well: the SMSC looks dead.
    """

    name = "noresponse"

    def __init__(self, after_n: int = 0, *, enquire_link: bool = True) -> None:
        self.after_n = after_n
        self.answers_enquire_link = enquire_link

    def on_submit(self, index: int) -> Decision:
        return REPLY_OK if index <= self.after_n else _NO_REPLY


class SlowResponse(Behaviour):
    """Answers every submit ESME_ROK after ``delay`` seconds (responses still pipeline)."""

    name = "slow"

    def __init__(self, delay: float) -> None:
        if delay < 0:
            raise ValueError("delay must not be negative")
        self.delay = delay
        self._decision = Decision(REPLY, 0, delay)

    def on_submit(self, index: int) -> Decision:
        return self._decision


class DisconnectMidWindow(Behaviour):
    """Answers ``after_n`` submits, keeps the next ``hold`` unanswered, then drops the link.

    The ``hold`` submits (and whatever else the client had in flight) are the ones whose
    outcome the client cannot know. With ``once`` (the default) it happens a single time, so
    the client's reconnect finds a healthy carrier.
    """

    name = "disconnect"

    def __init__(self, after_n: int, hold: int = 1, *, once: bool = True) -> None:
        if after_n < 0 or hold < 1:
            raise ValueError("after_n must be >= 0 and hold >= 1")
        self.after_n = after_n
        self.hold = hold
        self.once = once
        self._base = 0
        self._done = False

    def on_submit(self, index: int) -> Decision:
        if self._done:
            return REPLY_OK
        n = index - self._base
        if n <= self.after_n:
            return REPLY_OK
        if n < self.after_n + self.hold:
            return _NO_REPLY
        if self.once:
            self._done = True
        else:
            self._base = index
        return _DISCONNECT


class ErrorOnSubmit(Behaviour):
    """Every ``every_n``-th submit is refused with ``status`` (e.g. ESME_RINVDSTADR)."""

    name = "error"

    def __init__(self, status: int = CommandStatus.ESME_RSUBMITFAIL, every_n: int = 1) -> None:
        if every_n < 1:
            raise ValueError("every_n must be at least 1")
        self.status = status
        self.every_n = every_n
        self._decision = Decision(REPLY, status)

    def on_submit(self, index: int) -> Decision:
        return self._decision if index % self.every_n == 0 else REPLY_OK


class RejectBind(Behaviour):
    """Refuses every bind with ``status`` (default ESME_RBINDFAIL, §5.1.3)."""

    name = "rejectbind"

    def __init__(self, status: int = CommandStatus.ESME_RBINDFAIL) -> None:
        self.status = status

    def bind_status(self, system_id: str) -> int:
        return self.status


def parse_behaviour(spec: str) -> Behaviour:
    """The behaviour a CLI spec names.

    ``happy`` | ``throttle:N`` (every Nth) | ``throttle-rate:R`` (above R/s) | ``slow:SECONDS`` |
    ``noresponse`` | ``noresponse:N`` | ``disconnect:N`` | ``disconnect:N:HOLD`` |
    ``error:STATUS:N`` (STATUS a name such as ESME_RINVDSTADR, or a number) | ``rejectbind``.

    >>> parse_behaviour("error:ESME_RINVDSTADR:3")
    ErrorOnSubmit(status=<CommandStatus.ESME_RINVDSTADR: 11>, every_n=3)
    """
    name, _, rest = spec.strip().partition(":")
    args = rest.split(":") if rest else []
    name = name.lower()
    try:
        if name == "happy" and not args:
            return Happy()
        if name == "throttle" and len(args) == 1:
            return Throttling(every_n=int(args[0]))
        if name == "throttle-rate" and len(args) == 1:
            return Throttling(rate=float(args[0]))
        if name == "slow" and len(args) == 1:
            return SlowResponse(float(args[0]))
        if name == "noresponse" and len(args) <= 1:
            return NoResponse(int(args[0]) if args else 0)
        if name == "disconnect" and 1 <= len(args) <= 2:
            return DisconnectMidWindow(int(args[0]), int(args[1]) if len(args) == 2 else 1)
        if name == "error" and 1 <= len(args) <= 2:
            return ErrorOnSubmit(parse_status(args[0]), int(args[1]) if len(args) == 2 else 1)
        if name == "rejectbind" and len(args) <= 1:
            return RejectBind(parse_status(args[0]) if args else CommandStatus.ESME_RBINDFAIL)
    except ValueError as exc:
        raise ValueError(f"bad behaviour {spec!r}: {exc}") from exc
    raise ValueError(
        f"bad behaviour {spec!r}: expected happy, throttle:N, throttle-rate:R, slow:SECONDS, "
        "noresponse[:N], disconnect:N[:HOLD], error:STATUS[:N] or rejectbind[:STATUS]"
    )


def parse_status(text: str) -> CommandStatus:
    """A command_status from its name (``ESME_RTHROTTLED``) or number (``88``, ``0x58``)."""
    text = text.strip()
    if text.upper() in CommandStatus.__members__:
        return CommandStatus[text.upper()]
    try:
        return CommandStatus(int(text, 0))
    except ValueError:
        raise ValueError(f"unknown command_status {text!r}") from None
