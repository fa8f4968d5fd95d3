"""Read-side queries for customers and operators: ``QueryOps``, one mixin of the store."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from cloudsms.domain.pipeline import MessageRecord
from cloudsms.storage import tables
from cloudsms.storage.base import StoreBase

_m = tables.messages.c


class QueryOps(StoreBase):
    def customer_messages(self, customer_id: int, sms_uids: Sequence[str]) -> list[MessageRecord]:
        """The caller's own messages among ``sms_uids`` (others' are simply not returned)."""
        if not sms_uids:
            return []
        with self._connect(write=False) as conn:
            rows = conn.execute(
                select(tables.messages).where(
                    _m.customer_id == customer_id, _m.sms_uid.in_(list(sms_uids))
                )
            )
            return [MessageRecord.from_row(row._mapping) for row in rows]
