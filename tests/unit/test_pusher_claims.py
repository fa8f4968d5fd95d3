"""The pusher claims no more than its customers can take: nothing claimed only to be released.

A store stand-in (no network: the reports have no callback URL, so each is settled at once as
"give_up") records every claim's limit and every outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from cloudsms.domain.pipeline import DueReport, ReportResult
from cloudsms.workers.webhooks import ReportPusher, WebhookSettings


def due(i: int, customer: int) -> DueReport:
    return DueReport(
        id=i, sms_uid=f"U{i}", customer_id=customer, sms_state=2, result_desc="DELIVERED",
        report_ms=0, created_ms=0, attempts=0, next_attempt_ms=0, serial=1, callback_url=None,
        auth_key="k", sender="S", country_code=852, dest_msisdn="6", customer_body=None,
        segments=1, fee_micros=0, currency="HKD",
    )  # fmt: skip


class Outbox:
    def __init__(self, rows: list[DueReport]) -> None:
        self.rows = rows
        self.limits: list[int] = []
        self.results: list[ReportResult] = []

    def claim_due_reports(
        self,
        now_ms: int,
        limit: int,
        *,
        lease_ms: int = 0,
        exclude_customers: Sequence[int] = (),
        claimer: int | None = None,
        hold_ms: int = 0,
    ) -> list[DueReport]:
        self.limits.append(limit)
        taken = [r for r in self.rows if r.customer_id not in exclude_customers][:limit]
        ids = {r.id for r in taken}
        self.rows = [r for r in self.rows if r.id not in ids]
        return taken

    def record_report_results(
        self,
        results: Sequence[ReportResult],
        *,
        now_ms: int,
        defer: Mapping[int, int] | None = None,
    ) -> None:
        self.results.extend(results)


async def settle(outbox: Outbox, settings: WebhookSettings, total: int) -> None:
    pusher = ReportPusher(outbox, settings)
    await pusher.start()
    pusher.wake()
    for _ in range(500):
        if sum(r.outcome == "give_up" for r in outbox.results) >= total:
            break
        await asyncio.sleep(0.01)
    await pusher.stop()


async def test_one_customer_is_claimed_its_bound_at_a_time() -> None:
    outbox = Outbox([due(i, 1) for i in range(1, 201)])
    await settle(
        outbox,
        WebhookSettings(concurrency_per_host=8, max_queued_per_customer=16, poll_s=0.01),
        200,
    )
    assert sorted(r.id for r in outbox.results if r.outcome == "give_up") == list(range(1, 201))
    assert not [r for r in outbox.results if r.outcome == "release"]
    assert max(outbox.limits) == 16


async def test_many_customers_are_claimed_together() -> None:
    outbox = Outbox([due(i, 1 + i % 10) for i in range(1, 401)])
    settings = WebhookSettings(
        concurrency_per_host=8, max_queued_per_customer=40, claim_batch=500, poll_s=0.01
    )
    await settle(outbox, settings, 400)
    assert len({r.id for r in outbox.results if r.outcome == "give_up"}) == 400
    assert max(outbox.limits) > 40  # once the customers are known, their room together
