"""The message state table is what the pipeline does: a property test on both engines.

Hypothesis drives the real store through random sequences of pipeline operations (accept with
local rejects, claims by live, dead and no workers, every submit outcome kind, receipts known
and unknown, recovery of dead claims, expiry) and a database trigger records every change of
``messages.state``. Every (before, after) pair observed must be in ``status.TRANSITIONS``, and
nothing may leave a final state (status.py rules 1 and 2).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from seed import seed_customer

from cloudsms.domain.codes import LOCAL_REJECTED, SmsState
from cloudsms.domain.models import NewMessage, PacketWrite
from cloudsms.domain.pipeline import PartResult, ReceiptEvent, SubmitOutcome
from cloudsms.domain.status import FINAL_STATES, TRANSITIONS, MessageState
from cloudsms.storage.store import Store

#: A trigger per engine appends every state change to ``seen_transitions``.
RECORDER = {
    "sqlite": [
        "CREATE TABLE seen_transitions (before TEXT, after TEXT)",
        "CREATE TRIGGER record_transition AFTER UPDATE OF state ON messages"
        " WHEN OLD.state <> NEW.state BEGIN"
        " INSERT INTO seen_transitions VALUES (OLD.state, NEW.state); END",
    ],
    "postgresql": [
        "CREATE TABLE seen_transitions (before TEXT, after TEXT)",
        "CREATE FUNCTION record_transition() RETURNS trigger AS $$ BEGIN"
        " INSERT INTO seen_transitions VALUES (OLD.state, NEW.state); RETURN NEW; END"
        " $$ LANGUAGE plpgsql",
        "CREATE TRIGGER record_transition AFTER UPDATE OF state ON messages FOR EACH ROW"
        " WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION record_transition()",
    ],
}
STATS = {
    SmsState.DELIVERED: "DELIVRD",
    SmsState.UNDELIVERABLE: "UNDELIV",
    SmsState.EXPIRED: "EXPIRED",
    SmsState.REJECTED: "REJECTD",
    SmsState.DELETED: "DELETED",
    SmsState.UNKNOWN: "UNKNOWN",
    SmsState.ENROUTE: "ENROUTE",
    SmsState.ACCEPTED: "ACCEPTD",
}
OUTCOMES = ["submitted", "failed", "unsendable", "rejected", "retry", "handoff"]
UIDS = itertools.count()


def now() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Pipeline:
    """The store, the workers that claim, and what the carrier was given (for receipts)."""

    store: Store
    customer_id: int
    route: str
    #: None (no claimer), a live worker, a dead one (its claims are recovered).
    claimers: list[int | None]
    uids: list[str] = field(default_factory=list)
    carrier_ids: dict[str, list[str]] = field(default_factory=dict)

    def accept(self, n: int, segments: int, rejected: bool) -> None:
        stamp = now()
        batch = []
        for _ in range(n):
            uid = f"P{next(UIDS):08d}"
            self.uids.append(uid)
            batch.append(
                NewMessage(
                    sms_uid=uid, customer_id=self.customer_id, serial=1, country_code=852,
                    dest_msisdn="67000000", route_name=self.route, sender="CloudSMS",
                    content="hi", encoding="gsm7", segments=segments, priority=0,
                    send_at_ms=stamp, customer_body=None,
                    state=MessageState.REJECTED if rejected else MessageState.ACCEPTED,
                    result_desc=LOCAL_REJECTED if rejected else None, detail=None,
                    fee_micros=0 if rejected else 1, currency="HKD", created_ms=stamp,
                )
            )  # fmt: skip
        write = PacketWrite(
            customer_id=self.customer_id, packet_key=None, messages=tuple(batch), answer=b"{}",
            created_ms=stamp,
        )  # fmt: skip
        self.store.accept_packets([write], replay_window_ms=0)

    def run(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "accept":
            self.accept(*op[1:])
        elif kind == "claim":
            self.store.claim_due(now(), op[1], claimer=self.claimers[op[2]])
        elif kind == "outcome" and self.uids:
            _, which, outcome, claimer = op
            uid = self.uids[which % len(self.uids)]
            parts: tuple[PartResult, ...] = ()
            if outcome == "submitted":
                ids = [f"{uid}-{len(self.carrier_ids.get(uid, []))}-{seq}" for seq in (1, 2)]
                self.carrier_ids.setdefault(uid, []).extend(ids)
                parts = tuple(PartResult(seq, cid, 0) for seq, cid in enumerate(ids, 1))
            result = SubmitOutcome(
                sms_uid=uid, kind=outcome, connector_id=1, parts=parts, detail="x",
                retry_at_ms=now(),
            )  # fmt: skip
            self.store.record_dispatch([result], [], now(), claimer=self.claimers[claimer])
        elif kind == "receipt" and self.uids:
            _, which, pick, state = op
            ids = self.carrier_ids.get(self.uids[which % len(self.uids)]) or ["unknown-id"]
            event = ReceiptEvent(
                connector_id=1, carrier_id=ids[pick % len(ids)], sms_state=state,
                stat=STATS[state], err="000", report_ms=now(),
            )  # fmt: skip
            self.store.record_dispatch([], [event], now())
        elif kind == "recover":
            self.store.recover_in_flight()
        elif kind == "expire":
            self.store.expire_overdue(now(), 0)


RECEIPT_STATES = list(STATS)
operations = st.one_of(
    st.tuples(st.just("accept"), st.integers(1, 3), st.integers(1, 2), st.booleans()),
    st.tuples(st.just("claim"), st.integers(1, 4), st.integers(0, 2)),
    st.tuples(st.just("outcome"), st.integers(0, 50), st.sampled_from(OUTCOMES), st.integers(0, 2)),
    st.tuples(st.just("receipt"), st.integers(0, 50), st.integers(0, 5),
              st.sampled_from(RECEIPT_STATES)),
    st.tuples(st.just("recover")),
    st.tuples(st.just("expire")),
)  # fmt: skip


@pytest.fixture
def pipeline(store: Store) -> Iterator[Pipeline]:
    with store.engine.begin() as conn:
        for sql in RECORDER[store.dialect]:
            conn.exec_driver_sql(sql)
    seeded = seed_customer(store.engine)
    live = store.register_worker(name="live", host="t", pid=1, role="worker", lease_ms=600_000)
    dead = store.register_worker(name="dead", host="t", pid=2, role="worker", lease_ms=1)
    yield Pipeline(store, seeded.customer_id, seeded.route, [None, live, dead])


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(operations, min_size=1, max_size=25))
def test_every_transition_the_pipeline_makes_is_in_the_table(
    pipeline: Pipeline, ops: list[tuple[Any, ...]]
) -> None:
    for op in ops:
        pipeline.run(op)
    with pipeline.store.engine.begin() as conn:
        seen = {
            (MessageState(before), MessageState(after))
            for before, after in conn.exec_driver_sql("SELECT before, after FROM seen_transitions")
        }
        conn.exec_driver_sql("DELETE FROM seen_transitions")
    stray = {(b, a) for b, a in seen if a not in TRANSITIONS[b]}
    assert not stray, f"transitions outside status.TRANSITIONS: {sorted(stray)}"
    assert not {b for b, _ in seen} & FINAL_STATES
