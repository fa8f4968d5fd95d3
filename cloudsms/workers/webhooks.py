"""The report pusher: SMS_PUSH_REPORT to customers' callbacks, at least once, in order.

Strategy (theory of operation):

- The outbox (``storage.report_ops``) is the only schedule. The pusher claims due reports in a
  worker thread (store calls block), which leases them for ``lease_s``; if this process dies, the
  reports become due again when the lease runs out. Nothing is lost; a report may arrive twice.
- Claimed reports wait in one queue per customer, oldest first, taken by at most
  ``concurrency_per_host`` push loops of that customer; at most ``max_queued_per_customer``
  reports are claimed and unfinished per customer: a customer that is slow keeps its own
  reports waiting and is left out of further claims, while every other customer goes on at
  full speed. A customer with half its bound or
  more still queued is left out too, and a claim asks for no more rows than the customers it may
  return can take, so reports are not claimed only to be released again. No task per report
  and no semaphore: a loop pushes one report after another while its customer's queue holds
  some; the callback's URL and TLS context are prepared once per customer. One lean
  HTTP/1.1 client (``transport.http_client``: a keep-alive pool per callback origin, at most
  ``concurrency_per_host`` connections each) reuses connections (SPEC §7: Kannel reuses,
  Jasmin does not, and it shows).
- Failures come in two kinds. A *report* failure (HTTP 500 or 4xx, a wrong or malformed ANSWER)
  retries that report alone, by the retry policy. An *endpoint* failure (connection refused or
  dropped, timeout, TLS, HTTP 429/502/503/504) says the callback is unavailable: the report is
  rescheduled by the policy and every pending report of the customer is deferred (persisted) to
  the same time; the customer goes to probe mode, where one report is pushed alone and the rest
  follow only once it succeeds. A callback that is down for an hour gets one request per backoff
  step, and when it returns receives everything, oldest first, at its concurrency limit.
- Outcomes are recorded in batches by a flusher task (one transaction per flush). A failed flush
  keeps the outcomes and tries again; meanwhile the leases protect the rows.

Lifecycle::

    pusher = ReportPusher(store, WebhookSettings.from_settings(settings))
    await pusher.start()
    pusher.wake()          # after committing new reports (any thread)
    await pusher.stop()    # finishes in-flight pushes within stop_grace_s
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import random
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from cloudsms import metrics
from cloudsms.config import Settings
from cloudsms.domain.pipeline import DueReport, Outcome, ReportClaim, ReportResult
from cloudsms.domain.reports import MAX_ANSWER_BYTES, build_report, read_answer
from cloudsms.domain.retry import RetryPolicy
from cloudsms.storage.gate import Gate, ThreadGate
from cloudsms.storage.interfaces import ReportStore
from cloudsms.transport.http_client import ErrorKind, HttpClient, HttpClientError, Target

log = logging.getLogger("cloudsms.webhooks")

#: HTTP statuses that mean "the endpoint is unavailable", not "this report is refused".
_UNAVAILABLE = frozenset({429, 502, 503, 504})

#: How a failed request is named in ``last_error`` ("ClientConnectorError: cannot connect to
#: …"): the names aiohttp, the client before ``transport.http_client``, gave these failures, so
#: the outbox reads the same before and after (operators' searches, the portal's history).
_ERROR_NAMES: dict[ErrorKind, str] = {
    "connect": "ClientConnectorError",
    "tls": "ClientSSLError",
    "closed": "ServerDisconnectedError",
    "protocol": "ClientResponseError",
    "url": "InvalidURL",
}


def _platform(name: str) -> Any:
    """A knob that is the platform setting ``name`` (``cloudsms.config.Settings``): its default."""
    return field(default=Settings.__dataclass_fields__[name].default, metadata={"setting": name})


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookSettings:
    """Knobs of the pusher and the expiry job.

    Those that operators set are platform settings (``report_*`` in ``cloudsms.config``): their
    defaults come from there, and :meth:`from_settings` reads them. The others are internal.
    """

    #: Whole push (connect, send, answer), seconds.
    push_timeout_s: float = _platform("report_push_timeout_s")
    connect_timeout_s: float = 5.0
    #: Pushes in flight per customer (and connections per callback host).
    concurrency_per_host: int = _platform("report_concurrency_per_host")
    #: Reports claimed and unfinished per customer, at most (bounds memory and lease use).
    max_queued_per_customer: int = _platform("report_queue_per_customer")
    #: Reports claimed per store round trip.
    claim_batch: int = 500
    #: How long a claim holds a report before another claim may take it again.
    lease_s: float = _platform("report_lease_s")
    #: Idle poll interval; ``wake()`` cuts it short.
    poll_s: float = 0.2
    #: Outcomes are written at least this often (and at once past 200 pending).
    flush_interval_s: float = 0.05
    #: stop(): how long in-flight pushes may finish.
    stop_grace_s: float = 5.0
    keepalive_s: float = 30.0
    retry_base_s: float = _platform("report_retry_base_s")
    retry_factor: float = 2.0
    retry_max_delay_s: float = _platform("report_retry_max_delay_s")
    retry_give_up_after_s: float = _platform("report_retry_give_up_after_s")
    retry_jitter: float = 0.2
    #: SUBMITTED with no final receipt this long after submission → EXPIRED (document: 25 h).
    expire_after_s: float = _platform("report_expire_after_s")
    expiry_interval_s: float = 60.0
    #: PEM client certificate and key presented to HTTPS callbacks ("" = none).
    client_cert: str = _platform("report_client_cert")
    client_key: str = _platform("report_client_key")
    #: PEM CA bundle to verify callbacks with ("" = the system trust store); a customer's own
    #: CA (``customers.callback_ca_pem``) wins over it.
    ca_file: str = _platform("report_ca_file")
    #: Source address for outbound callbacks ("" = chosen by the OS).
    source_address: str = _platform("report_source_address")

    def __post_init__(self) -> None:
        if self.concurrency_per_host < 1 or self.max_queued_per_customer < 1:
            raise ValueError("concurrency_per_host and max_queued_per_customer must be ≥ 1")
        if self.lease_s <= 2 * self.push_timeout_s:
            raise ValueError("lease_s must exceed twice push_timeout_s")

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookSettings:
        """The knobs the platform runs with: the ``report_*`` settings, and what follows.

        The lease is at least three push timeouts; a claim takes at least what a customer may
        queue; expired messages are looked for every tenth of the expiry age (0.2 s to 60 s).
        """
        values = {
            f.name: getattr(settings, f.metadata["setting"])
            for f in fields(cls)
            if "setting" in f.metadata
        }
        values["lease_s"] = max(settings.report_lease_s, 3 * settings.report_push_timeout_s)
        values["claim_batch"] = max(500, settings.report_queue_per_customer)
        values["expiry_interval_s"] = min(60.0, max(0.2, settings.report_expire_after_s / 10))
        return cls(**values)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_s=self.retry_base_s,
            factor=self.retry_factor,
            max_delay_s=self.retry_max_delay_s,
            give_up_after_s=self.retry_give_up_after_s,
            jitter=self.retry_jitter,
        )


@dataclass(slots=True)
class _Customer:
    """In-memory state per customer: its claimed reports waiting for a push, and a throttle;
    the schedule is in the database."""

    #: Claimed and not started, oldest first (each claim's rows are in order; claims append).
    waiting: deque[DueReport] = field(default_factory=deque)
    #: Push loops taking from ``waiting`` (at most ``concurrency_per_host``; one while failing).
    pushers: int = 0
    #: Claimed and not yet finished.
    outstanding: int = 0
    #: Probe mode: the last attempt failed at the endpoint; ``retry_at`` is its next time.
    failing: bool = False
    retry_at: int = 0
    #: A claim of ours left this customer out (it had enough work): its reports may wait in
    #: the outbox, older than any a dispatch transaction enqueues now. Until a claim takes
    #: them, it gets none claimed in the dispatch transactions (oldest first, per customer).
    backlog: bool = False


#: How long a woken pusher waits for more reports before it claims (see ``_run``).
_COALESCE_S = 0.01


class ReportPusher:
    """Pushes due delivery reports; see the module docstring. One per process (or more on PG)."""

    def __init__(
        self,
        store: ReportStore,
        settings: WebhookSettings | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or WebhookSettings()
        self.policy = self.settings.retry_policy
        self._rng = rng or random.Random()
        self._customers: dict[int, _Customer] = {}
        self._inflight: set[int] = set()
        self._results: list[ReportResult] = []
        self._defer: dict[int, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ssl: dict[str, ssl.SSLContext] = {}
        #: (customer, callback URL, CA PEM) → the prepared request target, made once per callback.
        self._targets: dict[tuple[int, str, str | None], Target] = {}
        self._wake = asyncio.Event()
        #: The last wake-up came from a finished batch (claim at once, no coalescing).
        self._room_freed = False
        #: The outbox may hold reports due for our claim: set by a wake-up (a commit left
        #: reports unclaimed, a NOTIFY), by a claim that filled its batch or left customers
        #: out; see ``_run``.
        self._outbox_due = True
        self._flush_now = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: HttpClient | None = None
        self._runner: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._stopping = False
        #: This process's worker id (``workers.id``) for the claims, read at each claim (it
        #: changes when the process re-registers): if the worker dies its claimed reports are
        #: due again at once (``recover_claimed_reports``). None: claims expire by lease only.
        self.claimer: Callable[[], int | None] = lambda: None
        #: Where the hot store calls run (``cloudsms.storage.gate``; the composition root sets it).
        self.gate: Gate = ThreadGate()
        #: Counters for tests and metrics.
        self.pushed = 0
        self.failed = 0

    # ---------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Open the HTTP client and start claiming. Call from the event loop that will run it."""
        s = self.settings
        self._loop = asyncio.get_running_loop()
        self._client = HttpClient(
            max_per_origin=s.concurrency_per_host,
            connect_timeout_s=s.connect_timeout_s,
            timeout_s=s.push_timeout_s,
            keepalive_s=s.keepalive_s,
            max_body=MAX_ANSWER_BYTES,
            local_address=s.source_address or None,
            content_type="application/json; charset=utf-8",
        )
        self._runner = asyncio.create_task(self._run(), name="report-pusher")
        self._flusher = asyncio.create_task(self._flush_loop(), name="report-flusher")

    async def stop(self) -> None:
        """Stop claiming, let in-flight pushes finish within ``stop_grace_s``, record, close.

        Reports claimed but not finished by then are not lost: they are released (or, if even
        that write fails, become due again when their lease runs out).
        """
        self._stopping = True
        self._wake.set()
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.settings.stop_grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._flusher is not None:
            self._flush_now.set()
            await asyncio.gather(self._flusher, return_exceptions=True)
        try:
            await self._flush()
        except Exception:
            log.exception("could not record report outcomes at stop; their leases will expire")
        if self._client is not None:
            await self._client.close()

    def wake(self) -> None:
        """Look for due reports now (safe from any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake_up()
        else:
            loop.call_soon_threadsafe(self._wake_up)

    def _wake_up(self) -> None:
        self._outbox_due = True
        self._wake.set()

    # ------------------------------------------------------------------------------ claiming

    async def _run(self) -> None:
        # Why not claim each time a batch finishes (room freed): reports are mostly claimed by
        # the dispatch transaction that enqueues them (``report_claim``), so such a claim
        # mostly finds nothing, and each one takes SQLite's write lock ahead of the API's next
        # commit (~30-45 a second under the harness). The outbox is claimed from when told it
        # may hold reports for us, and at least every ``poll_s`` for what nobody announces
        # (retries coming due, leases running out).
        loop = asyncio.get_running_loop()
        claimed_at = -math.inf
        while not self._stopping:
            poll = self.settings.poll_s
            if self._outbox_due or loop.time() - claimed_at >= poll:
                self._outbox_due = False
                claimed_at = loop.time()
                try:
                    more = await self._claim_once()
                except Exception:
                    log.exception("claiming due reports failed")
                    more = False
                    self._outbox_due = True
                    await asyncio.sleep(1.0)
                if more:
                    await asyncio.sleep(0)
                    continue
            self._wake.clear()
            self._room_freed = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), max(0.0, poll - (loop.time() - claimed_at))
                )
                if not self._room_freed:
                    # Woken by a commit that enqueued reports: let a few more commits land, so
                    # one claim takes them together instead of one write transaction per commit
                    # (claims take turns with the dispatcher's commits for SQLite's lock).
                    await asyncio.sleep(_COALESCE_S)

    async def _claim_once(self) -> bool:
        """Claim one batch and start pushing it; True when a full batch suggests more is due."""
        s = self.settings
        limit, full = self._claim_bounds()
        now = _now_ms()
        rows = await self.gate.run(
            functools.partial(
                self.store.claim_due_reports,
                now,
                limit,
                lease_ms=int(s.lease_s * 1000),
                exclude_customers=full,
                claimer=self.claimer(),
                # Reports of a customer without a callback URL wait this long for one.
                hold_ms=int(s.retry_give_up_after_s * 1000),
            )
        )
        self.take_claimed(rows)
        drained = len(rows) < limit  # nothing more due for the customers this claim took
        for cid, st in self._customers.items():
            if cid in full:
                st.backlog = True
            elif drained:
                st.backlog = False
        if not drained:
            self._outbox_due = True
        # A full claim suggests more is due; claim again at once only if a known customer can
        # still take some (otherwise when a batch finishes, or at the poll).
        busy = self._half_bound
        return len(rows) >= limit and any(st.outstanding < busy for st in self._customers.values())

    @property
    def _half_bound(self) -> int:
        """A customer with this many reports claimed and unpushed has enough work: our own
        claims leave it out until it is below (see ``_claim_bounds``)."""
        return (self.settings.max_queued_per_customer + 1) // 2

    def _claim_bounds(self) -> tuple[int, list[int]]:
        """How many reports to claim now, and the customers to leave out of the claim."""
        s = self.settings
        cap = s.max_queued_per_customer
        # Left out of this claim: customers with half their bound or more still queued (they
        # have work; the rest are claimed for when they have room for at least half of it).
        busy = self._half_bound
        full: list[int] = []
        room = 0
        for c, st in self._customers.items():
            if st.outstanding >= busy:
                full.append(c)
            else:
                room += cap - st.outstanding
        # No more than the known customers can take (at least one customer's worth, for those
        # not seen yet): claiming 500 for a customer with room for 64 would lease, serialize
        # and release the other 436 again, every claim.
        return min(s.claim_batch, max(room, cap)), full

    def report_claim(self) -> ReportClaim | None:
        """The claim a dispatch transaction of this process may make for us (ReportClaim).

        None while stopping. Each customer's reports are claimed up to its room (its bound
        minus what it has claimed and unpushed); the rest wait in the outbox for a claim of
        ours. Why not the half-full rule of our own claims (``_claim_bounds``): that rule saves
        claim transactions, and this claim rides in a transaction that happens anyway — its
        reports are written claimed, one row write and one transaction less per batch (under the
        harness a customer sat above half its bound, and every report took the separate claim:
        ~33 claim transactions a second holding SQLite's lock 1.9 ms each).
        """
        if self._stopping or self._loop is None:
            return None
        s = self.settings
        cap = s.max_queued_per_customer
        return ReportClaim(
            claimer=self.claimer(),
            limit=s.claim_batch,
            lease_ms=int(s.lease_s * 1000),
            hold_ms=int(s.retry_give_up_after_s * 1000),
            customer_room={
                c: 0 if st.backlog else cap - st.outstanding for c, st in self._customers.items()
            },
        )

    def take_claimed(self, rows: Sequence[DueReport]) -> None:
        """Start pushing reports claimed for us (by our claim, or by a dispatch transaction)."""
        if self._stopping:
            # Claimed by a transaction that was in flight when we stopped: they stay leased to
            # this worker, and are due again once it is gone (recover_claimed_reports).
            return
        s = self.settings
        groups: dict[int, list[DueReport]] = {}
        for row in rows:
            if row.id in self._inflight:  # re-claimed after a lease ran out: already ours
                continue
            groups.setdefault(row.customer_id, []).append(row)
        for cid, group in groups.items():
            st = self._customer(cid)
            room = max(0, s.max_queued_per_customer - st.outstanding)
            take, excess = group[:room], group[room:]
            # Over the customer's bound: back to where they were, no attempt counted.
            self._record(
                *(ReportResult(r.id, "release", r.next_attempt_ms, attempted=False) for r in excess)
            )
            if not take:
                continue
            st.outstanding += len(take)
            self._inflight.update(r.id for r in take)
            st.waiting.extend(take)
            self._start_pushers(st)

    def _customer(self, cid: int) -> _Customer:
        st = self._customers.get(cid)
        if st is None:
            st = self._customers[cid] = _Customer()
        return st

    # ------------------------------------------------------------------------------- pushing

    def _start_pushers(self, st: _Customer) -> None:
        """Enough push loops for the customer's waiting reports, within its bound: one (a probe)
        while its endpoint is failing, else ``concurrency_per_host``.

        Why loops sharing one queue per customer rather than a task per claim with a
        semaphore: the semaphore's acquire and release (asyncio's, with its fairness checks)
        and the per-claim gather were ~4 % of the worker's CPU under load.
        """
        limit = 1 if st.failing else self.settings.concurrency_per_host
        while st.pushers < limit and st.pushers < len(st.waiting):
            st.pushers += 1
            task = asyncio.create_task(self._push_loop(st, probe=st.failing))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _push_loop(self, st: _Customer, *, probe: bool) -> None:
        """Push the customer's waiting reports, oldest first, one at a time.

        A probe loop (started while the endpoint was failing) pushes the oldest alone: if it
        fails, the rest go back to the outbox until the customer's retry time; if it succeeds,
        the customer gets its full concurrency again. A push failing at the endpoint stops the
        other loops; the last one out puts what still waits back into the outbox (as it does
        when the pusher stops), without an attempt counted.
        """
        try:
            while st.waiting and not self._stopping and not (st.failing and not probe):
                row = st.waiting.popleft()
                try:
                    if not row.callback_url:
                        self._record(ReportResult(row.id, "give_up", error="no callback_url",
                                                  attempted=False))  # fmt: skip
                        continue
                    await self._push_one(st, row)
                finally:
                    self._settle(st, row)
                if probe:
                    if st.failing:
                        break
                    probe = False
                    self._start_pushers(st)  # the endpoint answers again
        finally:
            st.pushers -= 1
            if st.pushers == 0 and st.waiting:
                self._release_waiting(st)
            if not self._stopping:
                self._room_freed = True
                self._outbox_due_if_room(st)
                self._wake.set()

    def _settle(self, st: _Customer, row: DueReport) -> None:
        """``row`` is no longer ours to push (pushed, given up, or abandoned mid-push)."""
        self._inflight.discard(row.id)
        st.outstanding -= 1
        crossed = st.outstanding == self._half_bound - 1  # just under half its bound
        if crossed and not self._stopping and self._outbox_due_if_room(st):
            self._room_freed = True
            self._wake.set()

    def _outbox_due_if_room(self, st: _Customer) -> bool:
        """Mark the outbox due when ``st`` has reports waiting there and room for at least half
        its bound (the rule of ``_claim_bounds``); whether it did."""
        if st.backlog and st.outstanding < self._half_bound:
            self._outbox_due = True
            return True
        return False

    def _release_waiting(self, st: _Customer) -> None:
        """Back into the outbox (stopping, or the endpoint failing): no attempt counted; the
        database already has the customer's defer time."""
        while st.waiting:
            r = st.waiting.popleft()
            at = max(r.next_attempt_ms, st.retry_at) if st.failing else r.next_attempt_ms
            self._record(ReportResult(r.id, "release", at, attempted=False))
            self._settle(st, r)

    async def _push_one(self, st: _Customer, row: DueReport) -> None:
        """One POST; records the outcome and updates the customer's probe state."""
        assert self._client is not None
        push_ms = _now_ms()
        body = self._body(row, push_ms)
        endpoint = False
        status: int | None = None
        answer = b""
        try:
            resp = await self._client.post(self._target(row), body)
            status, answer = resp.status, resp.body
            ok, reason = read_answer(status, answer)
            endpoint = status in _UNAVAILABLE
        except HttpClientError as exc:
            name = _ERROR_NAMES.get(exc.kind)
            ok, reason, endpoint = False, f"{name}: {exc}" if name else str(exc), True
        now = _now_ms()
        seen = answer[:500].decode("utf-8", "replace") if answer else reason
        metrics.report_pushed(ok, (now - push_ms) / 1000, transport_error=status is None)
        if ok:
            st.failing = False
            self.pushed += 1
            self._record(
                ReportResult(
                    row.id, "done", 0, "", sms_uid=row.sms_uid, attempted_ms=push_ms,
                    duration_ms=now - push_ms, http_status=status, answer=seen,
                )
            )  # fmt: skip
            return
        self.failed += 1
        attempts = row.attempts + 1
        at = self.policy.next_attempt(attempts, row.created_ms, now, self._rng)
        log.info(
            "report push failed: %s",
            reason,
            extra={"sms_uid": row.sms_uid, "customer_id": row.customer_id, "attempt": attempts},
        )
        outcome: Outcome = "give_up" if at is None else "retry"
        self._record(
            ReportResult(
                row.id, outcome, at or 0, reason, sms_uid=row.sms_uid, attempted_ms=push_ms,
                duration_ms=now - push_ms, http_status=status, answer=seen,
            )
        )  # fmt: skip
        if at is not None and endpoint:
            st.retry_at = max(st.retry_at, at) if st.failing else at
            st.failing = True
            self._defer[row.customer_id] = max(self._defer.get(row.customer_id, 0), st.retry_at)

    def _body(self, row: DueReport, push_ms: int) -> bytes:
        """The packet to POST for a claimed row (``workers.mo_pusher`` pushes SMS_PUSH_MO)."""
        return build_report(row, push_ms=push_ms)

    def _target(self, row: DueReport) -> Target:
        """The callback's prepared request target, made once per customer and callback.

        Raises HttpClientError for a URL that cannot be pushed to (recorded like any failure).
        """
        assert row.callback_url and self._client is not None
        key = (row.customer_id, row.callback_url, row.callback_ca_pem)
        target = self._targets.get(key)
        if target is None:
            if len(self._targets) >= 10_000:
                self._targets.clear()
            tls = self._ssl_for(row)
            target = self._targets[key] = self._client.target(row.callback_url, ssl=tls)
        return target

    def _ssl_for(self, row: DueReport) -> ssl.SSLContext | None:
        """Verification context for an HTTPS callback: per-customer CA, platform client cert."""
        assert row.callback_url is not None
        if not row.callback_url.strip().lower().startswith("https:"):
            return None
        s = self.settings
        # The customer's own CA (stored PEM) wins over the configured file, then the system store.
        key = row.callback_ca_pem or s.ca_file
        ctx = self._ssl.get(key)
        if ctx is None:
            if row.callback_ca_pem:
                ctx = ssl.create_default_context(cadata=row.callback_ca_pem)
            else:
                ctx = ssl.create_default_context(cafile=key or None)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if s.client_cert:
                ctx.load_cert_chain(s.client_cert, s.client_key or None)
            self._ssl[key] = ctx
        return ctx

    # ----------------------------------------------------------------------------- recording

    def _record(self, *results: ReportResult) -> None:
        self._results.extend(results)
        if len(self._results) >= 200:
            self._flush_now.set()

    async def _flush_loop(self) -> None:
        while not self._stopping or self._results:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), self.settings.flush_interval_s)
            self._flush_now.clear()
            try:
                await self._flush()
            except Exception:
                log.exception("recording report outcomes failed; retrying")
                await asyncio.sleep(0.5)
            if self._stopping:
                return

    async def _flush(self) -> None:
        if not self._results and not self._defer:
            return
        results, defer = self._results, self._defer
        self._results, self._defer = [], {}
        try:
            await self.gate.run(
                functools.partial(
                    self.store.record_report_results, results, now_ms=_now_ms(), defer=defer
                )
            )
        except BaseException:
            self._results[:0] = results
            for cid, until in defer.items():
                self._defer[cid] = max(until, self._defer.get(cid, 0))
            raise


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
