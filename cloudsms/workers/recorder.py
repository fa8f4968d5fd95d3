"""Group commit for the carrier side: submit outcomes and receipts, in order, few transactions.

Strategy: one asyncio task owns the store calls. It takes every event queued so far, applies them
with a single ``store.record_dispatch`` through the store's gate (``cloudsms.storage.gate``: one
transaction, one fsync, taking what was queued while it waited), then
resolves each event's future. Events are applied in the order they were queued, which is what
makes a receipt find the carrier id that its submit_sm_resp recorded just before it.

A receipt's deliver_sm_resp waits for its future, so the carrier is told "received" only once the
receipt is durably stored (SPEC: the deliver_sm_resp is sent only after the receipt is stored).
The futures resolve (and ``on_committed`` runs) once the transaction is on disk; the next
transaction may start before that (``Gate.run_early``: on SQLite the log is flushed after the
write lock is released, and the next batch is written meanwhile). A batch that could not be
flushed fails its futures: no receipt of it is acknowledged, no report of it pushed.

When this process also pushes reports (``report_claims``), each transaction claims the reports
it enqueues for that pusher (``ReportClaim``) and the committed result carries them
(``DispatchResult.claimed_reports``), so they need no claim transaction of their own.

A batch whose data the database refuses (``BatchRejected``) is stored again one event per
transaction, so only the event refused alone is dropped (with an error line); a database that is
down makes the recorder retry the batch until it is back (:meth:`DispatchRecorder._refused`).

Outcomes are applied under :attr:`DispatchRecorder.claimer`, this worker's id: the store applies an
outcome only to a message still claimed by it, so after a lost lease (``claimer`` set to
:data:`FENCED`) nothing this process still reports can overwrite another worker's claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable

from cloudsms.domain.pipeline import DispatchResult, ReceiptEvent, ReportClaim, SubmitOutcome
from cloudsms.exceptions import StoreError
from cloudsms.storage.base import BatchRejected
from cloudsms.storage.gate import Gate, ThreadGate
from cloudsms.storage.interfaces import DispatchSink

log = logging.getLogger("cloudsms.dispatch")

Event = SubmitOutcome | ReceiptEvent
#: A claimer id no worker has (ids start at 1): outcomes recorded under it apply to nothing.
FENCED = 0


class DispatchRecorder:
    def __init__(
        self,
        store: DispatchSink,
        *,
        max_batch: int = 2000,
        on_committed: Callable[[DispatchResult], None] | None = None,
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._on_committed = on_committed
        self._queue: list[tuple[Event, asyncio.Future[None]]] = []
        #: Committed batches whose flush to disk is under way.
        self._flushing: set[asyncio.Future[None]] = set()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.transactions = 0
        #: Events still to record one per transaction, after the database refused a batch.
        self._one_at_a_time = 0
        #: The worker id whose claims our outcomes apply to (None: no check, single use).
        self.claimer: int | None = None
        #: Asked before each transaction (on the event loop): what reports to claim for this
        #: process's pusher (see the module docstring). None: no pusher here.
        self.report_claims: Callable[[], ReportClaim | None] | None = None
        #: Where the store call runs (``cloudsms.storage.gate``; the composition root sets it).
        self.gate: Gate = ThreadGate()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dispatch-recorder")

    def record(self, event: Event) -> asyncio.Future[None]:
        """Queue an event; the future completes when it is committed (or fails with the error)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((event, future))
        self._wakeup.set()
        return future

    def pending(self) -> int:
        return len(self._queue)

    async def flush(self) -> None:
        """Wait until everything queued so far is committed (or failed).

        Callers bound the wait themselves (``asyncio.timeout``): while the store is down this
        waits for it.
        """
        futures = [future for _, future in self._queue]
        if futures:
            await asyncio.gather(*futures, return_exceptions=True)
        if self._flushing:
            await asyncio.wait(self._flushing)

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._flushing:
            await asyncio.wait(self._flushing)

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            report_claim = self.report_claims() if self.report_claims is not None else None
            taken: list[list[tuple[Event, asyncio.Future[None]]]] = []
            try:
                result, flushed = await self.gate.run_early(
                    functools.partial(self._take_and_record, taken, report_claim)
                )
            except BatchRejected as exc:
                self._refused(taken[0], exc)
                continue
            except Exception as exc:
                # Keep the batch and try again: events are facts we must not drop. While the
                # store is down, receipts stay unacknowledged (the carrier redelivers them) and
                # claimed messages stay QUEUED (recovered at the next start).
                batch = taken[0] if taken else []
                log.exception("could not record %d dispatch events; retrying", len(batch))
                if self._closing:
                    del self._queue[: len(batch)]
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                await asyncio.sleep(0.5)
                continue
            batch = taken[0]
            del self._queue[: len(batch)]
            self._one_at_a_time = max(0, self._one_at_a_time - 1)
            self.transactions += 1
            self._flushing.add(flushed)
            flushed.add_done_callback(functools.partial(self._flushed, batch, result))

    def _flushed(
        self,
        batch: list[tuple[Event, asyncio.Future[None]]],
        result: DispatchResult,
        flushed: asyncio.Future[None],
    ) -> None:
        """The batch's transaction is on disk: resolve its events, hand on what it committed."""
        self._flushing.discard(flushed)
        error = (
            StoreError("stopped before the flush") if flushed.cancelled() else flushed.exception()
        )
        if error is not None:
            log.error("%d dispatch events committed but not flushed to disk: %s", len(batch), error)
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
                    future.exception()  # nobody may be waiting (outcomes)
            return
        for _, future in batch:
            if not future.done():
                future.set_result(None)
        if self._on_committed is not None:
            self._on_committed(result)

    def _take_and_record(
        self, taken: list[list[tuple[Event, asyncio.Future[None]]]], claim: ReportClaim | None
    ) -> DispatchResult:
        """Runs once the store's gate is passed: what arrived meanwhile goes in too."""
        batch = self._queue[: 1 if self._one_at_a_time else self._max_batch]
        taken.append(batch)
        return self._store.record_dispatch(
            [e for e, _ in batch if isinstance(e, SubmitOutcome)],
            [e for e, _ in batch if isinstance(e, ReceiptEvent)],
            time.time_ns() // 1_000_000,
            claimer=self.claimer,
            report_claim=claim,
        )

    def _refused(self, batch: list[tuple[Event, asyncio.Future[None]]], exc: BatchRejected) -> None:
        """The database refused the batch's data: find the event it refuses, drop only that one.

        A batch is retried one event per transaction; a lone event refused is dropped with an
        error line (it would be refused every time, and would hold up every event behind it).
        Its future fails: a receipt is then not acknowledged to the carrier (its deliver_sm gets
        an error, so the carrier may send it again), a submit outcome leaves its message QUEUED
        under this worker's claim (recovered when the worker stops).
        """
        if len(batch) > 1:
            log.warning(
                "the database refused a batch of %d dispatch events (%s); recording them one by"
                " one", len(batch), exc,
            )  # fmt: skip
            self._one_at_a_time = len(batch)
            return
        del self._queue[:1]
        self._one_at_a_time = max(0, self._one_at_a_time - 1)
        [(event, future)] = batch
        log.error("dispatch event refused by the database, dropped: %r (%s)", event, exc)
        if not future.done():
            future.set_exception(exc)
            future.exception()  # nobody may be waiting (outcomes): not an unretrieved error
