"""The dispatch recorder when the database refuses a batch's data: only the refused event is lost.

A MemoryStore wrapper (composition) refuses, as the SQL store does on a constraint or a value
error (``BatchRejected``), every transaction that contains a receipt for carrier id ``POISON``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from cloudsms.domain.codes import SmsState
from cloudsms.domain.pipeline import DispatchResult, ReceiptEvent
from cloudsms.storage.base import BatchRejected
from cloudsms.storage.memory import MemoryStore
from cloudsms.workers.recorder import DispatchRecorder


class Refusing:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.transactions: list[int] = []

    def record_dispatch(
        self, outcomes: Any, receipts: Any, now_ms: int, **kw: Any
    ) -> DispatchResult:
        self.transactions.append(len(outcomes) + len(receipts))
        if any(r.carrier_id == "POISON" for r in receipts):
            raise BatchRejected("could not store: refused by the database: value too long")
        return self.store.record_dispatch(outcomes, receipts, now_ms, **kw)


def receipt(carrier_id: str) -> ReceiptEvent:
    return ReceiptEvent(
        connector_id=1, carrier_id=carrier_id, sms_state=SmsState.DELIVERED, stat="DELIVRD",
        err="000", report_ms=time.time_ns() // 1_000_000,
    )  # fmt: skip


async def test_a_refused_event_is_dropped_alone_and_the_rest_is_recorded() -> None:
    store = Refusing(MemoryStore())
    recorder = DispatchRecorder(store)  # type: ignore[arg-type]
    futures = [recorder.record(receipt(cid)) for cid in ("A1", "POISON", "A2")]
    recorder.start()
    try:
        done = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 10)
        assert done[0] is None and done[2] is None
        assert isinstance(done[1], BatchRejected)
        # The batch of 3 was refused, then each event went alone.
        assert store.transactions[:4] == [3, 1, 1, 1]
        stored = {r["carrier_id"] for r in store.store.unmatched_receipts()}
        assert stored == {"A1", "A2"}
        # The recorder goes on with whole batches afterwards.
        await asyncio.wait_for(
            asyncio.gather(recorder.record(receipt("B1")), recorder.record(receipt("B2"))), 10
        )
        assert store.transactions[-1] == 2
    finally:
        await recorder.close()


@pytest.mark.parametrize("first", ["POISON", "A1"])
async def test_a_lone_refused_event_does_not_block_the_queue(first: str) -> None:
    store = Refusing(MemoryStore())
    recorder = DispatchRecorder(store, max_batch=1)  # type: ignore[arg-type]
    recorder.start()
    try:
        results = await asyncio.wait_for(
            asyncio.gather(
                recorder.record(receipt(first)), recorder.record(receipt("A9")),
                return_exceptions=True,
            ),
            10,
        )  # fmt: skip
        assert results[1] is None
        assert isinstance(results[0], BatchRejected) == (first == "POISON")
    finally:
        await recorder.close()
