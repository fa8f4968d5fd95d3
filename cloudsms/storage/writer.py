"""Group commit: one writer turns many concurrent packets into few durable transactions.

Strategy: the API (on the asyncio event loop) calls ``await writer.write(packet)``, which queues
the packet with a future and returns when the packet is durably stored. One drain task per
process (SQLite wants a single writer; datasette ``database.py::_execute_writes`` works the same
way) passes the store's gate (``cloudsms.storage.gate``) and then takes *everything queued so
far* (up to ``max_batch`` packets), stores it with one ``store.accept_packets`` call, i.e. one
transaction and one fsync, and resolves the futures. While a transaction commits — or waits for
SQLite's write lock — new packets pile up and go into the next one, so the batch size adapts to
the load by itself: an idle server commits a lone packet at once (no added latency), a busy one
commits hundreds per fsync. Where the call runs is the gate's choice: on SQLite, on the event
loop once the write lock is ours (a worker thread would hold the lock while it waits for the
GIL); on PostgreSQL, in a worker thread. A batch's callers are answered once its commit is on
disk, but the next batch is taken as soon as the store is free (``Gate.run_early``): on SQLite
its transaction is written while the previous one's log flush is still under way.

Failure policy (decided here, documented for operators):

* A batch refused because of its data (``BatchRejected``: a constraint or a value, e.g. an
  SMS_UID that already exists) is retried one packet per transaction, so one poison packet
  fails alone instead of failing up to ``max_batch - 1`` innocent ones. The retries cost one
  fsync each, but only on this rare path.
* Any other ``StoreError`` (database down, disk full, lock timeout) is about the database, not the
  packets: retrying 256 packets one by one would only multiply the wait. Every caller of that
  batch gets the error (the API answers DB_not_find; the client may retry, and the replay key
  makes the retry safe).
* An unexpected exception (a bug) is logged with its traceback and given to every caller of the
  batch as a ``StoreError`` whose cause is the bug, so the API still answers and the thread keeps
  serving.

A caller whose task is cancelled after queueing is not un-queued: its packet may still be
committed (the client saw no answer; its retry is answered from the replay row).

Callers share the drain task's event loop (one per process; a caller on another loop is answered
through ``call_soon_threadsafe``).

When the process also runs a dispatcher (``intake``), each transaction claims the messages it
accepts that are due now for that dispatcher (``LocalClaim``: written QUEUED under its worker id)
and hands them over in memory once committed, so they are not written twice and the dispatcher
does not query for them (issue 14: one write per message at acceptance).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from cloudsms.domain.models import PacketOutcome, PacketWrite
from cloudsms.domain.pipeline import LocalClaim, OutboundMessage
from cloudsms.exceptions import StoreError
from cloudsms.storage.base import BatchRejected
from cloudsms.storage.gate import Gate, ThreadGate
from cloudsms.storage.interfaces import PacketSink

log = logging.getLogger(__name__)

_Result = PacketOutcome | StoreError


class WriterClosed(StoreError):
    """The group-commit writer is stopped: the packet was not stored (answer Busy)."""


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters for observability (metrics, tests). Read with :meth:`GroupCommitWriter.stats`."""

    #: Transactions attempted (batches and single-packet retries), committed or not.
    transactions: int
    #: Batches taken from the queue (each is one or, after BatchRejected, several transactions).
    batches: int
    #: Packets durably stored (replays included: they got their stored answer).
    packets_committed: int
    #: Packets whose caller got a StoreError.
    packets_failed: int
    #: Batches split into single-packet transactions after BatchRejected.
    batches_split: int
    #: The largest batch taken so far.
    largest_batch: int


class LocalIntake(Protocol):
    """This process's dispatcher, as the writer sees it (see the module docstring)."""

    def local_claim(self) -> LocalClaim | None:
        """Called where the transaction runs, before it: what to claim (None: nothing)."""
        ...

    def take_claimed(self, messages: list[OutboundMessage]) -> None:
        """Called after the commit (on the event loop): the claimed messages."""
        ...


@dataclass(slots=True)
class _Job:
    packet: PacketWrite
    future: asyncio.Future[PacketOutcome]
    loop: asyncio.AbstractEventLoop


class GroupCommitWriter:
    """Durable, batched ``accept_packets`` for asyncio callers.

    Example::

        writer = GroupCommitWriter(store, replay_window_ms=86_400_000, gate=gate_for(lock))
        outcome = await writer.write(packet)   # returns once the packet is committed
        ...
        await writer.close()                   # commits what is queued, then refuses packets
    """

    def __init__(
        self,
        store: PacketSink,
        *,
        replay_window_ms: int,
        max_batch: int = 256,
        gate: Gate | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._store = store
        self._replay_window_ms = replay_window_ms
        self._gate: Gate = gate if gate is not None else ThreadGate()
        #: This process's dispatcher, when it runs one (set by the composition root).
        self.intake: LocalIntake | None = None
        self._max_batch = max_batch
        self._queue: deque[_Job] = deque()
        self._in_flight = 0
        #: Committed batches whose flush to disk is under way (their callers wait for it).
        self._flushing: set[asyncio.Future[None]] = set()
        #: Messages claimed for the dispatcher by committed transactions and not handed over
        #: yet (their flush is under way): the next transaction's claim leaves room for them.
        self._handing_over = 0
        #: Guards the counts a call changes from a worker thread (ThreadGate) while the loop
        #: finishes an earlier batch: ``_in_flight`` and ``_handing_over``.
        self._counts_lock = threading.Lock()
        self._closing = False
        self._drainer: asyncio.Task[None] | None = None
        self._transactions = 0
        self._batches = 0
        self._packets_committed = 0
        self._packets_failed = 0
        self._batches_split = 0
        self._largest_batch = 0

    # -------------------------------------------------------------------------------- public

    def start(self) -> None:
        """Kept for the components' start order: the drain task starts with the first packet."""
        if self._closing:
            raise WriterClosed()

    async def write(self, packet: PacketWrite) -> PacketOutcome:
        """Store ``packet`` in the next group commit and return its outcome once durable.

        Raises StoreError (or its subclass BatchRejected) if the packet could not be stored,
        WriterClosed if the writer is stopping or stopped.
        """
        if self._closing:
            raise WriterClosed()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[PacketOutcome] = loop.create_future()
        self._queue.append(_Job(packet, future, loop))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain(), name="cloudsms-group-commit")
        return await future

    def pending(self) -> int:
        """Packets queued or being committed, not yet answered (the API sheds load above it)."""
        return len(self._queue) + self._in_flight

    def stats(self) -> WriterStats:
        return WriterStats(
            transactions=self._transactions,
            batches=self._batches,
            packets_committed=self._packets_committed,
            packets_failed=self._packets_failed,
            batches_split=self._batches_split,
            largest_batch=self._largest_batch,
        )

    async def close(self) -> None:
        """Refuse new packets, commit everything already queued."""
        self._closing = True
        drainer = self._drainer
        if drainer is not None and drainer is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError):
                await drainer
        if self._flushing:
            await asyncio.wait(self._flushing)
        self._commit_left_over()

    def close_sync(self) -> None:
        """:meth:`close` for code without an event loop (CLI, tests, atexit)."""
        self._closing = True
        self._commit_left_over()

    # ------------------------------------------------------------------------------ internals

    async def _drain(self) -> None:
        """Commit batches until the queue is empty (a new packet starts a new drain task)."""
        while self._queue:
            taken: list[_Job] = []
            call = functools.partial(self._take_and_commit, taken)
            results, flushed = await self._gate.run_early(call)
            self._flushing.add(flushed)
            flushed.add_done_callback(functools.partial(self._flushed, taken, results))

    def _flushed(
        self, taken: list[_Job], results: list[_Result], flushed: asyncio.Future[None]
    ) -> None:
        """The batch's commit is on disk (or could not be flushed: then nobody is told OK)."""
        self._flushing.discard(flushed)
        cancelled = flushed.cancelled()
        error = StoreError("stopped before the flush") if cancelled else flushed.exception()
        if error is not None:
            log.error("the commit of %d packets was not flushed to disk: %s", len(taken), error)
            # Claimed messages not handed over stay QUEUED under the claim, as after a failed
            # hand-over (recovered with the claim); the next claims need not leave room for them.
            self._hand_over_failed(results)
            failure = error if isinstance(error, StoreError) else StoreError(repr(error))
            results = [_copy_error(failure) for _ in results]
        self._finish(taken, results)

    def _take_and_commit(self, taken: list[_Job]) -> list[_Result]:
        """Runs once the gate is passed: everything queued while we waited goes in."""
        count = min(len(self._queue), self._max_batch)
        taken.extend(self._queue.popleft() for _ in range(count))
        with self._counts_lock:
            self._in_flight += count
        return self._commit(taken)

    def _commit_left_over(self) -> None:
        """Commit what is still queued (a drain task that could not run: its loop is gone)."""
        while self._queue:
            count = min(len(self._queue), self._max_batch)
            batch = [self._queue.popleft() for _ in range(count)]
            self._finish(batch, self._commit(batch))

    def _finish(self, batch: list[_Job], results: list[_Result]) -> None:
        self._record(batch, results)
        with self._counts_lock:
            self._in_flight = max(0, self._in_flight - len(batch))
        self._hand_over(results)
        _deliver(batch, results)

    def _commit(self, batch: list[_Job]) -> list[_Result]:
        """Store the batch; one result per job (an outcome, or the error for that caller)."""
        try:
            return list(self._accept([job.packet for job in batch]))
        except BatchRejected as exc:
            if len(batch) == 1 and batch[0].packet.packet_key is None:
                return [exc]
            # A lone packet with a replay key is retried once too: another process may have
            # committed the same packet meanwhile (the key's unique index refused ours), and
            # the retry then finds that row and answers with the original ANSWER.
            log.warning("batch of %d refused (%s): retrying packet by packet", len(batch), exc)
            self._batches_split += 1
            return self._commit_one_by_one(batch)
        except StoreError as exc:
            log.error("group commit of %d packets failed: %s", len(batch), exc)
            return [_copy_error(exc) for _ in batch]
        except Exception as exc:
            log.exception("bug in the group commit of %d packets", len(batch))
            err = StoreError(f"internal error while storing: {exc!r}")
            err.__cause__ = exc
            return [_copy_error(err) for _ in batch]

    def _commit_one_by_one(self, batch: list[_Job]) -> list[_Result]:
        results: list[_Result] = []
        for index, job in enumerate(batch):
            try:
                results.extend(self._accept([job.packet]))
            except BatchRejected as exc:
                results.append(exc)  # this packet is the poison
            except Exception as exc:
                # The database itself failed meanwhile: stop retrying, fail the rest.
                err = exc if isinstance(exc, StoreError) else StoreError(repr(exc))
                if err is not exc:
                    err.__cause__ = exc
                results.extend(_copy_error(err) for _ in batch[index:])
                break
        return results

    def _accept(self, packets: list[PacketWrite]) -> list[PacketOutcome]:
        self._transactions += 1
        claim = self._local_claim()
        outcomes = self._store.accept_packets(
            packets, replay_window_ms=self._replay_window_ms, claim=claim
        )
        if len(outcomes) != len(packets):
            raise StoreError(f"store returned {len(outcomes)} outcomes for {len(packets)} packets")
        with self._counts_lock:
            self._handing_over += sum(len(o.claimed) for o in outcomes)
        return outcomes

    def _local_claim(self) -> LocalClaim | None:
        """What this transaction may claim for the dispatcher: its room, less what earlier
        transactions claimed that is not handed over yet (their flush is under way)."""
        claim = self.intake.local_claim() if self.intake is not None else None
        with self._counts_lock:
            pending = self._handing_over
        if claim is None or not pending:
            return claim
        limit = claim.limit - pending
        return LocalClaim(claim.claimer, limit) if limit > 0 else None

    def _hand_over(self, results: list[_Result]) -> None:
        """Give the messages claimed at acceptance to this process's dispatcher."""
        if self.intake is None:
            return
        claimed = [m for r in results if not isinstance(r, StoreError) for m in r.claimed]
        with self._counts_lock:
            self._handing_over = max(0, self._handing_over - len(claimed))
        if claimed:
            try:
                self.intake.take_claimed(claimed)
            except Exception:  # they stay QUEUED under our claim: recovered if we die
                log.exception("could not hand %d claimed messages to the dispatcher", len(claimed))

    def _hand_over_failed(self, results: list[_Result]) -> None:
        claimed = sum(len(r.claimed) for r in results if not isinstance(r, StoreError))
        with self._counts_lock:
            self._handing_over = max(0, self._handing_over - claimed)

    def _record(self, batch: list[_Job], results: list[_Result]) -> None:
        failed = sum(1 for r in results if isinstance(r, StoreError))
        self._batches += 1
        self._largest_batch = max(self._largest_batch, len(batch))
        self._packets_failed += failed
        self._packets_committed += len(results) - failed


def _copy_error(exc: StoreError) -> StoreError:
    """A fresh exception per caller (each ``raise`` adds its own traceback), same type and cause."""
    err = type(exc)(str(exc))
    err.__cause__ = exc.__cause__ if exc.__cause__ is not None else exc
    return err


def _deliver(batch: list[_Job], results: list[_Result]) -> None:
    """Resolve the futures: at once on the running loop, one thread-safe wake-up per other loop."""
    try:
        here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        here = None
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[PacketOutcome], _Result]]]
    by_loop = {}
    for job, result in zip(batch, results, strict=True):
        by_loop.setdefault(job.loop, []).append((job.future, result))
    for loop, items in by_loop.items():
        if loop is here:
            _resolve(items)
            continue
        # A closed loop raises RuntimeError: nobody is waiting for these answers any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve, items)


def _resolve(items: list[tuple[asyncio.Future[PacketOutcome], _Result]]) -> None:
    for future, result in items:
        if future.done():  # the caller was cancelled
            continue
        if isinstance(result, StoreError):
            future.set_exception(result)
        else:
            future.set_result(result)
