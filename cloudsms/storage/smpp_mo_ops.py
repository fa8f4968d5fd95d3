"""Inbound messages over SMPP: the SMPP server's side of the MO outbox, ``SmppMoOps``.

Strategy: an MO routed to a customer that has an enabled SMPP account taking MOs
(``smpp_accounts.mo``) is stored with ``inbound_messages.channel = 'smpp'``
(``storage.inbound_ops``: decided once, in the transaction that stores it). That column tells
the two readers of the outbox apart, as ``messages.smpp_account_id`` does for receipts: the
HTTP pusher's ``claim_due_mo`` takes only ``http`` rows, the SMPP server claims ``smpp`` rows
here, only for customers with a session bound that may receive them, so the others wait in
the outbox. The claim leases rows (``next_attempt_ms = now + lease``) as the pusher's does: a
process that dies mid-send leaves them due again. There is no give-up: an MO over SMPP waits
until the customer's ESME answers it (the receipts' rule).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update

from cloudsms.domain.smpp_accounts import SmppMo
from cloudsms.storage import tables as t
from cloudsms.storage.base import StoreBase


class SmppMoOps(StoreBase):
    """Claiming and settling the MOs that go out as deliver_sm on customers' sessions."""

    def claim_smpp_mo(
        self, customer_ids: Sequence[int], *, now_ms: int, lease_ms: int, limit: int
    ) -> list[SmppMo]:
        """Claim up to ``limit`` due SMPP MOs of these customers for ``lease_ms``, oldest first."""
        if not customer_ids or limit <= 0:
            return []
        m = t.inbound_messages.c
        query = (
            select(m.id, m.mo_uid, m.customer_id, m.source, m.destination, m.text, m.attempts)
            .where(
                m.push_state == "pending",
                m.channel == "smpp",
                m.next_attempt_ms <= now_ms,
                m.customer_id.in_(sorted(set(customer_ids))),
            )
            .order_by(m.next_attempt_ms, m.id)
            .limit(limit)
        )
        # A read first: polled while sessions are bound, the claim must not take SQLite's write
        # lock when nothing is due, which is most of the time.
        with self._connect(write=False) as conn:
            if conn.execute(query.limit(1)).first() is None:
                return []
        if self.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        with self._connect(write=True, durable=False) as conn:
            rows = conn.execute(query).all()
            if rows:
                conn.execute(
                    update(t.inbound_messages)
                    .where(m.id.in_([r.id for r in rows]))
                    .values(next_attempt_ms=now_ms + lease_ms)
                )
        return [
            SmppMo(
                outbox_id=r.id,
                mo_uid=r.mo_uid,
                customer_id=r.customer_id,
                source=r.source,
                destination=r.destination,
                text=r.text,
                attempts=r.attempts,
            )
            for r in rows
        ]

    def record_smpp_mo(
        self,
        *,
        now_ms: int,
        done: Sequence[int] = (),
        retry: Sequence[tuple[int, int, str]] = (),
    ) -> None:
        """Settle claimed MOs in one transaction: ``done`` ids (every part answered ESME_ROK),
        ``retry`` (id, next attempt ms, error). Only pending rows change."""
        if not (done or retry):
            return
        m = t.inbound_messages.c
        pending = m.push_state == "pending"
        with self._connect(write=True, durable=False) as conn:
            if done:
                conn.execute(
                    update(t.inbound_messages)
                    .where(m.id.in_(list(done)), pending)
                    .values(
                        push_state="done",
                        done_ms=now_ms,
                        attempts=m.attempts + 1,
                        last_error=None,
                    )
                )
            for outbox_id, next_ms, error in retry:
                conn.execute(
                    update(t.inbound_messages)
                    .where(m.id == outbox_id, pending)
                    .values(
                        next_attempt_ms=next_ms, attempts=m.attempts + 1, last_error=error[:1000]
                    )
                )
