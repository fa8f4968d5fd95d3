"""The audit trail: who changed what, recorded for every operator change.

The admin API and the console call ``AuditTrail.record`` after each change succeeds, with the
change's arguments; secrets among them (passwords, AUTH_KEYs, tokens) are masked before they are
written. Balance changes are also in the ledger (``balance_ledger``) with the same actor.

    >>> trail = AuditTrail(store, actor="token:alice")
    >>> trail.record("customer.top_up", "acme", {"amount": "25", "note": "invoice 1234"})
"""

from __future__ import annotations

from typing import Any

from cloudsms.storage.interfaces import AuditSink

#: Argument names whose values never reach the audit log.
SECRET_FIELDS = frozenset({"password", "auth_key", "token", "secret"})
MASK = "***"


def mask(detail: dict[str, Any] | None) -> dict[str, Any] | None:
    """A copy of ``detail`` with secret fields replaced by ``***`` (None stays None)."""
    if detail is None:
        return None
    return {k: (MASK if k in SECRET_FIELDS and v is not None else v) for k, v in detail.items()}


class AuditTrail:
    """Writes audit entries under one actor (``token:NAME``, ``console:NAME``, ``cli:USER``)."""

    def __init__(self, sink: AuditSink, actor: str) -> None:
        self.sink = sink
        self.actor = actor

    def record(self, action: str, target: str | None, detail: dict[str, Any] | None = None) -> int:
        return self.sink.record_audit(self.actor, action, target, mask(detail))


#: Service methods that change something, by the start of their name; the rest only read.
CHANGING_PREFIXES = (
    "create", "set", "top_up", "adjust", "rotate", "add", "remove", "grant", "revoke",
    "decide", "delete", "update", "enable", "disable", "approve", "reject",
)  # fmt: skip


class Audited:
    """A service object (``Operator``, ``CarrierOperator``) whose changing calls are recorded.

    The CLI wraps its services in this, so a change made from the command line lands in the
    same audit log as one made through the admin API or the console:

        >>> ops = Audited(Operator(store), AuditTrail(store, "cli:alice"), "customer")
        >>> ops.top_up("acme", "25")          # recorded as customer.top_up on "acme"
    """

    def __init__(self, service: Any, trail: AuditTrail, area: str) -> None:
        self._service = service
        self._trail = trail
        self._area = area

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._service, name)
        if not callable(attr) or not name.startswith(CHANGING_PREFIXES):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            target = str(args[0]) if args else None
            detail = {f"arg{i}": a for i, a in enumerate(args[1:], start=1)} | kwargs
            self._trail.record(f"{self._area}.{name}", target, detail or None)
            return result

        return call
