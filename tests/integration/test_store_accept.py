"""The accept path of the store on real databases (SQLite file and PostgreSQL).

What a client relies on once it has read OK (SPEC §3, §4): every accepted recipient is stored
verbatim, the balance is debited exactly once and never below the credit limit, a blind retry
gets the same answer and writes nothing, and a failed batch writes nothing at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select

from cloudsms.domain.codes import LOCAL_REJECTED
from cloudsms.domain.ids import UidGenerator
from cloudsms.domain.models import Encoding, NewMessage, PacketWrite
from cloudsms.domain.pipeline import MessageRecord
from cloudsms.domain.status import MessageState
from cloudsms.exceptions import ConfigError, NotFound, StoreError
from cloudsms.storage import tables
from cloudsms.storage.messages import INSUFFICIENT_BALANCE, BatchRejected
from cloudsms.storage.store import Store

#: The ``add_customer`` fixture (tests/conftest.py): keyword arguments → new customer id.
CustomerFactory = Callable[..., int]

T0 = 1_764_000_000_000
WINDOW = 60_000
UIDS = UidGenerator()
#: Breaks the database under the store (other tables may reference messages).
DROP_MESSAGES = {"sqlite": "DROP TABLE messages", "postgresql": "DROP TABLE messages CASCADE"}
ACCEPTED = MessageState.ACCEPTED


def message(
    customer_id: int,
    *,
    fee: int = 52_500,
    state: MessageState = ACCEPTED,
    content: str = "hello",
    encoding: Encoding = "gsm7",
    customer_body: str | None = None,
    created_ms: int = T0,
    sms_uid: str | None = None,
    **fields: Any,
) -> NewMessage:
    values: dict[str, Any] = {
        "sms_uid": sms_uid or UIDS.next_uid(),
        "customer_id": customer_id,
        "serial": 7,
        "country_code": 852,
        "dest_msisdn": "91234567",
        "route_name": "VerifyCode_516",
        "sender": "CloudSMS",
        "content": content,
        "encoding": encoding,
        "segments": 1,
        "priority": 0,
        "send_at_ms": created_ms,
        "customer_body": customer_body,
        "state": state,
        "result_desc": None,
        "detail": None,
        "fee_micros": fee,
        "currency": "HKD",
        "created_ms": created_ms,
    }
    values.update(fields)
    return NewMessage(**values)


def packet(
    customer_id: int,
    messages: list[NewMessage],
    *,
    key: str | None = None,
    answer: bytes | None = None,
    created_ms: int = T0,
) -> PacketWrite:
    if answer is None:
        uids = [m.sms_uid for m in messages]
        answer = json.dumps({"RESULT_CODE": 1, "UIDS": uids}).encode()
    return PacketWrite(
        customer_id=customer_id,
        packet_key=key,
        messages=tuple(messages),
        answer=answer,
        created_ms=created_ms,
    )


def count_rows(store: Store, table: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.fixture
def statements(store: Store) -> Iterator[list[str]]:
    """Every SQL statement the store sends through SQLAlchemy (executemany counts once)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    yield seen
    event.remove(store.engine, "before_cursor_execute", record)


# ------------------------------------------------------------------------- accept and read back


def test_accept_and_read_back_verbatim(store: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer(balance_micros=10_000_000)
    body = '{"订单":"A-1", "n": [1, 2.50, null], "emoji": "😀"}'
    first = message(
        cid,
        content="【云短信】您的验证码是 123456，5分钟内有效。😀",
        encoding="ucs2",
        segments=2,
        priority=1,
        country_code=86,
        dest_msisdn="13800138000",
        sender="106900",
        customer_body=body,
        send_at_ms=T0 + 3_600_000,
        fee=80_000,
    )
    second = message(cid, content="tab\tnewline\nbackslash\\ quote' \"", fee=1)
    write = packet(cid, [first, second], key="k" * 64)

    [outcome] = store.accept_packets([write], replay_window_ms=WINDOW)

    assert outcome.answer == write.answer
    assert not outcome.replayed
    assert outcome.balance_rejected == ()
    for sent in (first, second):
        record = store.get_message(sent.sms_uid)
        assert record is not None
        expected = {name: getattr(sent, name) for name in NewMessage.__dataclass_fields__}
        got = {name: getattr(record, name) for name in NewMessage.__dataclass_fields__}
        assert got == expected
        assert record.sms_state is None
        assert record.updated_ms == sent.created_ms
        assert (record.attempts, record.connector_id, record.final_ms) == (0, None, None)
    assert store.get_message("NOPE") is None
    assert store.customer_balance(cid) == 10_000_000 - 80_001


def test_queries(store: Store, add_customer: CustomerFactory) -> None:
    a = add_customer(balance_micros=10**9)
    b = add_customer(balance_micros=10**9)
    msgs_a = [message(a, created_ms=T0 + i) for i in range(3)]
    msgs_b = [message(b, created_ms=T0 + 10), message(b, state=MessageState.REJECTED, fee=0)]
    store.accept_packets([packet(a, msgs_a), packet(b, msgs_b)], replay_window_ms=WINDOW)
    store.transition([msgs_a[0].sms_uid], MessageState.QUEUED)
    store.transition([msgs_a[1].sms_uid], MessageState.QUEUED)
    store.transition([msgs_a[1].sms_uid], MessageState.SUBMITTED)

    assert store.count_messages() == 5
    assert store.count_messages(customer_id=a) == 3
    assert store.count_messages(state=ACCEPTED) == 2
    assert store.count_messages(customer_id=b, state=MessageState.REJECTED) == 1
    # Backlog: not yet handed to a carrier (ACCEPTED or QUEUED).
    assert store.backlog_by_customer() == {a: 2, b: 1}

    newest_first = store.list_messages(customer_id=a)
    assert [r.sms_uid for r in newest_first] == [m.sms_uid for m in reversed(msgs_a)]
    assert all(isinstance(r, MessageRecord) for r in newest_first)
    assert len(store.list_messages(limit=2)) == 2
    assert [r.sms_uid for r in store.list_messages(state=MessageState.SUBMITTED)] == [
        msgs_a[1].sms_uid
    ]
    with pytest.raises(NotFound):
        store.customer_balance(999_999)


def test_empty_batch_and_rejected_only_packets(store: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer(balance_micros=0)
    assert store.accept_packets([], replay_window_ms=WINDOW) == []
    # Recipients the API rejected locally (unknown route, bad number) cost nothing, need no money.
    rejected = message(
        cid,
        state=MessageState.REJECTED,
        fee=0,
        result_desc=LOCAL_REJECTED,
        detail="route_unknown",
    )
    [outcome] = store.accept_packets([packet(cid, [rejected])], replay_window_ms=WINDOW)
    assert outcome.balance_rejected == ()
    record = store.get_message(rejected.sms_uid)
    assert record is not None and record.detail == "route_unknown"
    assert store.customer_balance(cid) == 0


# ----------------------------------------------------------------------------------- replays


def test_replay_inside_window_returns_first_answer_and_writes_nothing(
    store: Store, add_customer: CustomerFactory
) -> None:
    cid = add_customer(balance_micros=1_000_000)
    first = packet(cid, [message(cid, fee=100_000)], key="a" * 64, created_ms=T0)
    retry = packet(cid, [message(cid, fee=100_000)], key="a" * 64, created_ms=T0 + WINDOW - 1)

    [o1] = store.accept_packets([first], replay_window_ms=WINDOW)
    [o2] = store.accept_packets([retry], replay_window_ms=WINDOW)

    assert (o1.replayed, o2.replayed) == (False, True)
    assert o2.answer == first.answer != retry.answer
    assert store.count_messages() == 1
    assert store.get_message(retry.messages[0].sms_uid) is None
    assert store.customer_balance(cid) == 900_000


def test_replay_outside_window_is_a_new_packet(store: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer(balance_micros=1_000_000)
    first = packet(cid, [message(cid, fee=100_000)], key="b" * 64, created_ms=T0)
    later = packet(cid, [message(cid, fee=100_000)], key="b" * 64, created_ms=T0 + WINDOW)
    again = packet(cid, [message(cid, fee=100_000)], key="b" * 64, created_ms=T0 + WINDOW + 5)

    store.accept_packets([first], replay_window_ms=WINDOW)
    [o2] = store.accept_packets([later], replay_window_ms=WINDOW)
    [o3] = store.accept_packets([again], replay_window_ms=WINDOW)

    assert not o2.replayed and o2.answer == later.answer
    # The stale row was replaced: a retry of the second packet gets the second answer.
    assert o3.replayed and o3.answer == later.answer
    assert store.count_messages() == 2
    assert count_rows(store, tables.replays) == 1
    assert store.customer_balance(cid) == 800_000


def test_replay_inside_one_batch(store: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer(balance_micros=1_000_000)
    first = packet(cid, [message(cid, fee=1)], key="c" * 64)
    dup = packet(cid, [message(cid, fee=1)], key="c" * 64, created_ms=T0 + 1)
    other = packet(cid, [message(cid, fee=1)], key="d" * 64)
    unkeyed = packet(cid, [message(cid, fee=1)])

    outcomes = store.accept_packets([first, dup, other, unkeyed], replay_window_ms=WINDOW)

    assert [o.replayed for o in outcomes] == [False, True, False, False]
    assert [o.answer for o in outcomes] == [
        first.answer,
        first.answer,
        other.answer,
        unkeyed.answer,
    ]
    assert store.count_messages() == 3
    assert store.get_message(dup.messages[0].sms_uid) is None
    assert count_rows(store, tables.replays) == 2
    assert store.customer_balance(cid) == 1_000_000 - 3


def test_batch_cost_is_constant_in_statements(
    store: Store, add_customer: CustomerFactory, statements: list[str]
) -> None:
    """Keys, customers, debits and messages: a fixed number of statements, whatever the size."""
    customers = [add_customer(balance_micros=10**9) for _ in range(3)]

    def run(n: int) -> int:
        writes = [
            packet(cid, [message(cid), message(cid)], key=f"{n}-{i}-{cid}")
            for i in range(n)
            for cid in customers
        ]
        statements.clear()
        store.accept_packets(writes, replay_window_ms=WINDOW)
        return len(statements)

    # 18 vs 150 packets (36 vs 300 messages): both past the PostgreSQL COPY threshold for the
    # messages and the replay rows (COPY is invisible to these events).
    run(1)  # the store's first accept also looks once for replay keys of an older release
    small, large = run(6), run(50)
    assert small == large
    assert sum("replays" in s and s.lstrip().upper().startswith("SELECT") for s in statements) == 1


# -------------------------------------------------------------------------------------- money


def test_debit_is_exact_in_micros(store: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer(balance_micros=1_000_000)
    w1 = packet(cid, [message(cid, fee=333_333), message(cid, fee=333_333)])
    w2 = packet(cid, [message(cid, fee=333_333)])
    outcomes = store.accept_packets([w1, w2], replay_window_ms=WINDOW)
    assert all(o.balance_rejected == () for o in outcomes)
    assert store.customer_balance(cid) == 1
    fees = [r.fee_micros for r in store.list_messages(customer_id=cid)]
    assert fees == [333_333] * 3


def test_credit_limit_is_the_floor(store: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer(balance_micros=100, credit_limit_micros=1_000)
    ok1, ok2, over = message(cid, fee=600), message(cid, fee=500), message(cid, fee=1)
    [outcome] = store.accept_packets([packet(cid, [ok1, ok2, over])], replay_window_ms=WINDOW)
    # 100 - 600 - 500 = -1000: exactly at the floor is allowed; one micro more is not.
    assert store.customer_balance(cid) == -1_000
    assert outcome.balance_rejected == (over.sms_uid,)


def test_insufficient_balance_is_local_rejected_and_not_charged(
    store: Store, add_customer: CustomerFactory
) -> None:
    cid = add_customer(balance_micros=100)
    a, b, c = message(cid, fee=80), message(cid, fee=50), message(cid, fee=20)
    write = packet(cid, [a, b, c])
    [outcome] = store.accept_packets([write], replay_window_ms=WINDOW)

    assert outcome.balance_rejected == (b.sms_uid,)
    assert outcome.answer == write.answer  # the ANSWER bytes stay OK
    assert not outcome.replayed
    rejected = store.get_message(b.sms_uid)
    assert rejected is not None
    assert (rejected.state, rejected.result_desc, rejected.detail, rejected.fee_micros) == (
        MessageState.REJECTED,
        LOCAL_REJECTED,
        INSUFFICIENT_BALANCE,
        0,
    )
    # Later, cheaper messages still fit: each message is checked on its own, in order.
    for ok in (a, c):
        record = store.get_message(ok.sms_uid)
        assert (
            record is not None and record.state is ACCEPTED and record.fee_micros == ok.fee_micros
        )
    assert store.customer_balance(cid) == 0


def test_running_balance_across_packets_and_customers(
    store: Store, add_customer: CustomerFactory
) -> None:
    rich = add_customer(balance_micros=1_000)
    poor = add_customer(balance_micros=150)
    w1 = packet(poor, [message(poor, fee=100)])
    w2 = packet(rich, [message(rich, fee=100)])
    w3 = packet(poor, [message(poor, fee=100)])  # 50 left: rejected
    w4 = packet(poor, [message(poor, fee=50)])  # exactly 50: accepted
    outcomes = store.accept_packets([w1, w2, w3, w4], replay_window_ms=WINDOW)
    assert [len(o.balance_rejected) for o in outcomes] == [0, 0, 1, 0]
    assert store.customer_balance(poor) == 0
    assert store.customer_balance(rich) == 900


# ---------------------------------------------------------------------------------- rollback


def test_failed_batch_writes_nothing(store: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer(balance_micros=1_000_000)
    good = packet(cid, [message(cid, fee=1_000)], key="e" * 64)
    uid = UIDS.next_uid()
    poison = packet(cid, [message(cid, fee=1_000, sms_uid=uid), message(cid, sms_uid=uid)])

    with pytest.raises(BatchRejected) as info:
        store.accept_packets([good, poison], replay_window_ms=WINDOW)

    assert isinstance(info.value, StoreError)
    assert info.value.__cause__ is not None
    assert store.count_messages() == 0
    assert count_rows(store, tables.replays) == 0
    assert store.customer_balance(cid) == 1_000_000
    # The same good packet alone goes through: nothing of it was left half-written.
    [outcome] = store.accept_packets([good], replay_window_ms=WINDOW)
    assert not outcome.replayed and store.customer_balance(cid) == 999_000


def test_failed_large_batch_writes_nothing(store: Store, add_customer: CustomerFactory) -> None:
    """Past the PostgreSQL COPY threshold: a duplicate inside the COPY still rolls back all."""
    cid = add_customer(balance_micros=1_000_000)
    msgs = [message(cid, fee=10) for _ in range(40)]
    msgs.append(message(cid, fee=10, sms_uid=msgs[3].sms_uid))
    writes = [packet(cid, msgs[:20], key="f" * 64), packet(cid, msgs[20:])]
    with pytest.raises(BatchRejected):
        store.accept_packets(writes, replay_window_ms=WINDOW)
    assert store.count_messages() == 0
    assert count_rows(store, tables.replays) == 0
    assert store.customer_balance(cid) == 1_000_000
    # The connection went back to the pool in a usable state.
    store.accept_packets([packet(cid, msgs[:40])], replay_window_ms=WINDOW)
    assert store.count_messages() == 40 and store.customer_balance(cid) == 1_000_000 - 400


def test_existing_uid_and_unknown_customer_are_refused(
    store: Store, add_customer: CustomerFactory
) -> None:
    cid = add_customer(balance_micros=1_000)
    m = message(cid, fee=1)
    store.accept_packets([packet(cid, [m])], replay_window_ms=WINDOW)
    with pytest.raises(BatchRejected):
        store.accept_packets([packet(cid, [m])], replay_window_ms=WINDOW)
    with pytest.raises(BatchRejected):
        store.accept_packets([packet(424_242, [message(424_242)])], replay_window_ms=WINDOW)
    assert store.customer_balance(cid) == 999


def test_database_failure_is_store_error(store: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer(balance_micros=1_000)
    with store.engine.begin() as conn:
        conn.exec_driver_sql(DROP_MESSAGES[store.dialect])
    with pytest.raises(StoreError) as info:
        store.accept_packets([packet(cid, [message(cid)])], replay_window_ms=WINDOW)
    assert not isinstance(info.value, BatchRejected)
    assert store.customer_balance(cid) == 1_000
    with pytest.raises(StoreError):
        store.count_messages()


def test_open_errors() -> None:
    with pytest.raises(ConfigError):
        Store.open("mysql://nowhere/db")
    with pytest.raises(StoreError):
        Store.open("postgresql://postgres@127.0.0.1:1/nothing")


# ------------------------------------------------------------------------ replays janitor


def test_purge_replays(store: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer(balance_micros=0)
    writes = [packet(cid, [], key=f"{i:064d}", created_ms=T0 + i * 1000) for i in range(5)]
    store.accept_packets(writes, replay_window_ms=WINDOW)
    assert store.purge_replays(T0 + 2_000) == 2
    assert count_rows(store, tables.replays) == 3
    assert store.purge_replays(T0) == 0


# ----------------------------------------------------------------------------- transitions


def test_guarded_transitions(store: Store, add_customer: CustomerFactory) -> None:
    cid = add_customer(balance_micros=10**6)
    msgs = [message(cid) for _ in range(3)]
    uids = [m.sms_uid for m in msgs]
    store.accept_packets([packet(cid, msgs)], replay_window_ms=WINDOW)
    q, s = MessageState.QUEUED, MessageState.SUBMITTED

    assert store.transition(uids[:2], q, expected=ACCEPTED) == 2
    assert store.transition(uids[:2], q, expected=ACCEPTED) == 0  # already claimed: no double
    # Without `expected`, any state the table allows as a source: only uids[0..1] are QUEUED.
    assert store.transition(uids, s) == 2
    assert store.transition([uids[0]], MessageState.DELIVERED, sms_state=2) == 1
    # A final state never changes again (status.py rule 2).
    assert store.transition([uids[0]], MessageState.UNDELIVERABLE) == 0
    assert store.transition(["NO-SUCH-UID"], q) == 0

    with pytest.raises(ValueError):  # a claim, not a submit, moves an ACCEPTED message
        store.transition(uids, MessageState.SUBMITTED, expected=ACCEPTED)
    with pytest.raises(ValueError):
        store.transition(uids, ACCEPTED, expected=MessageState.DELIVERED)

    delivered = store.get_message(uids[0])
    assert delivered is not None
    assert delivered.state is MessageState.DELIVERED and delivered.sms_state == 2
    assert delivered.updated_ms > delivered.created_ms
    untouched = store.get_message(uids[2])
    assert untouched is not None and untouched.state is ACCEPTED
    # A locally rejected transition carries its cause.
    assert store.transition([uids[2]], MessageState.REJECTED, result_desc=LOCAL_REJECTED) == 1
    rejected = store.get_message(uids[2])
    assert rejected is not None and rejected.result_desc == LOCAL_REJECTED
