"""The audit trail: who changed what, recorded for every operator change.

The admin API and the console call ``AuditTrail.record`` after each change succeeds, with the
change's arguments; secrets among them (passwords, AUTH_KEYs, tokens) are masked before they are
written. Balance changes are also in the ledger (``balance_ledger``) with the same actor.

    >>> trail = AuditTrail(store, actor="token:alice")
    >>> trail.record("customer.top_up", "acme", {"amount": "25", "note": "invoice 1234"})
"""

from __future__ import annotations

from typing import Any, Protocol

#: Argument names whose values never reach the audit log.
SECRET_FIELDS = frozenset({"password", "auth_key", "token", "secret"})
MASK = "***"


class AuditSink(Protocol):
    def record_audit(
        self, actor: str, action: str, target: str | None, detail: dict[str, Any] | None
    ) -> int: ...


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
