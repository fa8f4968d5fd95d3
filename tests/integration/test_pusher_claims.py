"""The pusher claims no more than its customers can take: nothing claimed only to be released.

The pusher works a real ``MemoryStore`` outbox (reports of accepted messages) and pushes to a real
HTTP callback on 127.0.0.1 that answers every report with ``RESULT_CODE`` 1. ``ClaimSpy`` wraps
the store (composition, not a subclass) to record each claim's limit and every outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import orjson
import pytest

from cloudsms.domain.codes import SmsState
from cloudsms.domain.models import NewMessage, PacketWrite
from cloudsms.domain.pipeline import DueReport, ReportResult
from cloudsms.domain.status import MessageState
from cloudsms.storage.memory import MemoryStore
from cloudsms.workers.webhooks import ReportPusher, WebhookSettings


class ClaimSpy:
    """The pusher's two store operations on a MemoryStore, recorded."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.limits: list[int] = []
        self.results: list[ReportResult] = []

    def claim_due_reports(self, now_ms: int, limit: int, **kwargs: Any) -> list[DueReport]:
        self.limits.append(limit)
        return self.store.claim_due_reports(now_ms, limit, **kwargs)

    def record_report_results(
        self,
        results: Sequence[ReportResult],
        *,
        now_ms: int,
        defer: Mapping[int, int] | None = None,
    ) -> None:
        self.results.extend(results)
        self.store.record_report_results(results, now_ms=now_ms, defer=defer)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A customer's callback: every SMS_PUSH_REPORT answered RESULT_CODE 1, keep-alive."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            report = orjson.loads(await reader.readexactly(length))
            body = orjson.dumps({"METHOD": "SMS_PUSH_REPORT", "TYPE": "ANSWER",
                                 "SERIAL": report["SERIAL"], "TIME": "2026-01-01 00:00:00",
                                 "RESULT_CODE": 1, "RESULT_DESC": "OK"})  # fmt: skip
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


@pytest.fixture
async def callback_url() -> AsyncIterator[str]:
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}/dr"
    server.close()


def outbox(url: str, reports_per_customer: Mapping[int, int]) -> ClaimSpy:
    """A MemoryStore with customers 1..n, each with that many DELIVERED reports pending."""
    store = MemoryStore()
    for customer, count in sorted(reports_per_customer.items()):
        assert store.add_customer(callback_url=url) == customer
        add_reports(store, customer, range(count))
    return ClaimSpy(store)


def add_reports(store: MemoryStore, customer: int, numbers: range) -> None:
    """Messages of ``customer`` (one per number), accepted and DELIVERED, reports pending."""
    now = time.time_ns() // 1_000_000
    messages = tuple(
        NewMessage(
            sms_uid=f"C{customer}M{i:05d}", customer_id=customer, serial=1, country_code=852,
            dest_msisdn=f"6{i:07d}", route_name="main", sender="CloudSMS", content="hi",
            encoding="gsm7", segments=1, priority=0, send_at_ms=now, customer_body=None,
            state=MessageState.ACCEPTED, result_desc=None, detail=None, fee_micros=0,
            currency="HKD", created_ms=now,
        )
        for i in numbers
    )  # fmt: skip
    store.accept_packets(
        [PacketWrite(customer_id=customer, packet_key=None, messages=messages,
                     answer=b"{}", created_ms=now)],
        replay_window_ms=0,
    )  # fmt: skip
    for m in messages:
        assert store.enqueue_report_now(
            sms_uid=m.sms_uid, customer_id=customer, sms_state=int(SmsState.DELIVERED),
            result_desc="DELIVERED", report_ms=now,
        )  # fmt: skip


async def settle(spy: ClaimSpy, settings: WebhookSettings, total: int) -> None:
    pusher = ReportPusher(spy, settings)
    await pusher.start()
    pusher.wake()
    for _ in range(1000):
        if sum(r.outcome == "done" for r in spy.results) >= total:
            break
        await asyncio.sleep(0.01)
    await pusher.stop()


async def test_one_customer_is_claimed_its_bound_at_a_time(callback_url: str) -> None:
    spy = outbox(callback_url, {1: 200})
    await settle(
        spy, WebhookSettings(concurrency_per_host=8, max_queued_per_customer=16, poll_s=0.01), 200
    )
    assert len({r.id for r in spy.results if r.outcome == "done"}) == 200
    assert not [r for r in spy.results if r.outcome == "release"]
    assert max(spy.limits) == 16
    assert spy.store.report_counts().done == 200


async def test_many_customers_are_claimed_together(callback_url: str) -> None:
    spy = outbox(callback_url, {c: 40 for c in range(1, 11)})
    settings = WebhookSettings(
        concurrency_per_host=8, max_queued_per_customer=40, claim_batch=500, poll_s=0.01
    )
    await settle(spy, settings, 400)
    assert len({r.id for r in spy.results if r.outcome == "done"}) == 400
    assert max(spy.limits) > 40  # once the customers are known, their room together


async def test_the_outbox_is_claimed_when_told_not_each_time_a_batch_finishes(
    callback_url: str,
) -> None:
    # Reports are mostly claimed by the dispatch transaction that enqueues them, so a claim
    # each time a batch finishes mostly found nothing, and took SQLite's write lock each time.
    spy = outbox(callback_url, {1: 10})
    settings = WebhookSettings(concurrency_per_host=4, max_queued_per_customer=16, poll_s=30)
    pusher = ReportPusher(spy, settings)
    await pusher.start()
    try:
        pusher.wake()

        async def done(count: int) -> None:
            for _ in range(500):
                if sum(r.outcome == "done" for r in spy.results) >= count:
                    return
                await asyncio.sleep(0.01)
            raise AssertionError(f"{count} reports not pushed")

        await done(10)
        await asyncio.sleep(0.3)
        assert len(spy.limits) == 1  # the batch finished: no claim (there were 2 before)
        add_reports(spy.store, 1, range(10, 11))
        pusher.wake()  # a commit left a report in the outbox: claimed at once
        await done(11)
        assert len(spy.limits) == 2
    finally:
        await pusher.stop()
