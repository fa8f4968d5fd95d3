"""The store's share of carrier delivery and report pushing, per message, without any network.

What a worker asks of the store for each message, in the batches it uses under load:
``claim_due`` → ``record_dispatch`` (submit outcomes) → ``record_dispatch`` (receipts: matched,
settled, report enqueued) → ``claim_due_reports`` → ``record_report_results`` (+ the attempt
log). Prints µs of this process's time per message for each step, so an optimisation of the
store shows up here before it shows up in ``bench/pipeline.py`` / ``bench/e2e.py``.

    .venv/bin/python bench/store_dispatch.py [--messages 50000] [--batch 500] [--pg] [--as-worker]

``--as-worker`` asks as a worker of the two-process layout does under the side-by-side harness:
messages claimed under its worker id, each batch's submit outcomes and receipts in one
``record_dispatch`` (the carrier answered within the group commit) that claims the reports it
enqueues for this process's pusher (``ReportClaim``), then those reports' outcomes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from cloudsms.domain.codes import SmsState
from cloudsms.domain.pipeline import (
    PartResult,
    ReceiptEvent,
    ReportClaim,
    ReportResult,
    SubmitOutcome,
)
from cloudsms.storage.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from machine import calibration
from store_accept import WINDOW_MS, add_customer, make_packets, scratch_postgres

CONNECTOR = 1


def run(store: Store, messages: int, batch: int, *, as_worker: bool = False) -> None:
    cid = add_customer(store)
    # The callback is never called here: report results are recorded as if pushed.
    with store.engine.begin() as conn:
        conn.exec_driver_sql(
            f"UPDATE customers SET callback_url = 'http://127.0.0.1:9/dr' WHERE id = {cid}"
        )
    packets = make_packets(cid, messages // 100, 100)
    for i in range(0, len(packets), 16):
        store.accept_packets(packets[i : i + 16], replay_window_ms=WINDOW_MS)
    spent: dict[str, float] = defaultdict(float)
    done = 0
    worker = None
    if as_worker:
        worker = store.register_worker(name="bench", host="bench", pid=os.getpid(),
                                       role="worker", lease_ms=600_000)  # fmt: skip
    claim = ReportClaim(claimer=worker, limit=batch, lease_ms=120_000, hold_ms=3_600_000)
    carrier_seq = 0

    def timed(step: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.process_time()
        result = fn(*args, **kwargs)
        spent[step] += time.process_time() - start
        return result

    while True:
        now = store.now_ms()
        claimed = timed("claim_due", store.claim_due, now, batch, claimer=worker)
        if not claimed:
            break
        outcomes, receipts = [], []
        for message in claimed:
            carrier_seq += 1
            carrier_id = f"{carrier_seq:x}"
            outcomes.append(
                SubmitOutcome(
                    sms_uid=message.sms_uid,
                    kind="submitted",
                    connector_id=CONNECTOR,
                    parts=(PartResult(1, carrier_id, 0),),
                )
            )
            receipts.append(
                ReceiptEvent(
                    connector_id=CONNECTOR,
                    carrier_id=carrier_id,
                    sms_state=SmsState.DELIVERED,
                    stat="DELIVRD",
                    err="000",
                    report_ms=now,
                    raw=f"id:{carrier_id} sub:001 dlvrd:001 submit date:2611251200 "
                    "done date:2611251200 stat:DELIVRD err:000 text:",
                )
            )
        if as_worker:
            step = "record_dispatch (submits, receipts, reports claimed)"
            dispatched = timed(step, store.record_dispatch, outcomes, receipts, now,
                               claimer=worker, report_claim=claim)  # fmt: skip
            due = dispatched.claimed_reports
        else:
            timed("record_dispatch (submit outcomes)", store.record_dispatch, outcomes, [], now)
            timed("record_dispatch (receipts)", store.record_dispatch, [], receipts, now)
            due = timed("claim_due_reports", store.claim_due_reports, now, batch)
        results = [
            ReportResult(r.id, "done", sms_uid=r.sms_uid, attempted_ms=now, duration_ms=2,
                         http_status=200, answer='{"RESULT_CODE":1}')
            for r in due
        ]  # fmt: skip
        timed("record_report_results", store.record_report_results, results, now_ms=now)
        done += len(claimed)
    total = sum(spent.values())
    for step, seconds in spent.items():
        print(f"  {step:<36} {seconds / done * 1e6:7.1f} µs/message")
    print(f"  {'total':<36} {total / done * 1e6:7.1f} µs/message  ({done:,} messages, "
          f"{done / total:,.0f} messages/s of store time)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--as-worker", action="store_true", help="a worker's calls (docstring)")
    args = parser.parse_args()
    print(calibration(), flush=True)
    if args.pg:
        admin = os.environ.get("CLOUDSMS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
        with scratch_postgres(admin) as url:
            print("PostgreSQL")
            store = Store.open(url)
            run(store, args.messages, args.batch, as_worker=args.as_worker)
            store.close()
        return
    with tempfile.TemporaryDirectory() as tmp:
        print("SQLite (WAL, synchronous=FULL)")
        store = Store.open(f"sqlite:///{tmp}/dispatch.db")
        run(store, args.messages, args.batch, as_worker=args.as_worker)
        store.close()


if __name__ == "__main__":
    main()
