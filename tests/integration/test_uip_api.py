"""The UIP endpoint through real HTTP on 127.0.0.1, on SQLite and PostgreSQL: every result code."""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

import httpx
import orjson
import pytest
from seed import Seeded, bump, seed_customer
from sqlalchemy import text, update

from cloudsms.domain.codes import ResultCode
from cloudsms.domain.status import MessageState
from cloudsms.storage import tables
from cloudsms.storage.store import Store

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
UID_RE = re.compile(r"^[0-9A-Z]{1,32}$")


def packet(seeded: Seeded, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "METHOD": "SMS_SEND_REQUEST",
        "TYPE": "REQUEST",
        "SERIAL": 7,
        "TIME": "Please input your local time",
        "AUTH_KEY": seeded.auth_key,
        "ROUTE_ID": seeded.route,
        "MULTI_MSISDN_LIST": [{"DEST_MSISDN": "67000011", "COUNTRY_CODE": 852}],
        "SMS_CONTENT": "Your code is 123345.",
        "VERSION": "2021-01-01",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not _ABSENT}


_ABSENT = object()


def post(client: httpx.Client, url: str, body: Any, **kw: Any) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    response = client.post(url, content=raw, **kw)
    return response.status_code, orjson.loads(response.content)


def codes(answer: dict[str, Any]) -> list[int]:
    return [d["RESULT_CODE"] for d in answer["DETAIL_LIST"]]


@pytest.fixture
def seeded(store: Store) -> Seeded:
    return seed_customer(store.engine)


def test_single_send_ok_and_stored(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    server = make_server()
    status, ans = post(
        http,
        server.url,
        packet(seeded, CUSTOMER_BODY={"order": "A-1", "n": [1, 2]}, PRIORITY=1, REPEAT=0),
    )
    assert status == 200
    assert ans["METHOD"] == "SMS_SEND_REQUEST" and ans["TYPE"] == "ANSWER" and ans["SERIAL"] == 7
    assert TIME_RE.match(ans["TIME"])
    assert (ans["RESULT_CODE"], ans["RESULT_DESC"]) == (1, "OK")
    [d] = ans["DETAIL_LIST"]
    assert d["RESULT_CODE"] == 1 and d["DEST_MSISDN"] == "67000011" and d["COUNTRY_CODE"] == 852
    assert UID_RE.match(d["SMS_UID"])
    message = store.get_message(d["SMS_UID"])
    assert message is not None
    assert message.state == MessageState.ACCEPTED
    assert message.fee_micros == 50_000 and message.currency == "HKD"
    assert message.priority == 1 and message.segments == 1 and message.encoding == "gsm7"
    assert orjson.loads(message.customer_body or "") == {"order": "A-1", "n": [1, 2]}
    assert store.customer_balance(seeded.customer_id) == 1_000_000_000 - 50_000


def test_batch_mixed_recipients(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    server = make_server()
    recipients = [
        {"DEST_MSISDN": "67000011", "COUNTRY_CODE": 852},  # OK
        {"DEST_MSISDN": "1380013800", "COUNTRY_CODE": 86},  # China, 10 digits
        {"DEST_MSISDN": "67000012", "COUNTRY_CODE": 999},  # unassigned calling code
        {"DEST_MSISDN": "12ab", "COUNTRY_CODE": 852},  # not digits
        {"DEST_MSISDN": "4915112345678", "COUNTRY_CODE": 49},  # no price for Germany
        {"COUNTRY_CODE": 852},  # DEST_MSISDN missing
        {"DEST_MSISDN": "71234567", "COUNTRY_CODE": 65},  # Singapore starting with 7
        "not an object",
    ]
    status, ans = post(http, server.url, packet(seeded, MULTI_MSISDN_LIST=recipients))
    assert status == 200 and ans["RESULT_CODE"] == ResultCode.OK
    assert codes(ans) == [
        ResultCode.OK,
        ResultCode.INVALID_PARAMETER,
        ResultCode.INVALID_PARAMETER,
        ResultCode.INVALID_PARAMETER,
        ResultCode.UNPRICED_AREA,
        ResultCode.LOST_INFO,
        ResultCode.OK,
        ResultCode.INVALID_PARAMETER,
    ]
    uids = [d["SMS_UID"] for d in ans["DETAIL_LIST"]]
    assert uids[0] and uids[6] and all(u == "" for i, u in enumerate(uids) if i not in (0, 6))
    singapore = store.get_message(uids[6])
    assert singapore is not None
    assert singapore.state == MessageState.REJECTED
    assert singapore.result_desc == "LOCAL_REJECTED" and singapore.fee_micros == 0
    assert store.customer_balance(seeded.customer_id) == 1_000_000_000 - 50_000


def test_top_level_code_when_nothing_accepted(
    seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    server = make_server()
    same = [{"DEST_MSISDN": "1", "COUNTRY_CODE": 49}, {"DEST_MSISDN": "2", "COUNTRY_CODE": 44}]
    _, ans = post(http, server.url, packet(seeded, MULTI_MSISDN_LIST=same))
    assert ans["RESULT_CODE"] == ResultCode.UNPRICED_AREA
    mixed = [{"DEST_MSISDN": "1", "COUNTRY_CODE": 49}, {"DEST_MSISDN": "x", "COUNTRY_CODE": 852}]
    _, ans = post(http, server.url, packet(seeded, MULTI_MSISDN_LIST=mixed))
    assert ans["RESULT_CODE"] == ResultCode.INVALID_PARAMETER
    assert codes(ans) == [ResultCode.UNPRICED_AREA, ResultCode.INVALID_PARAMETER]


def test_200_recipients_and_201(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    server = make_server()
    many = [{"DEST_MSISDN": f"6{i:07d}", "COUNTRY_CODE": 852} for i in range(200)]
    _, ans = post(http, server.url, packet(seeded, MULTI_MSISDN_LIST=many))
    assert ans["RESULT_CODE"] == 1 and codes(ans) == [1] * 200
    uids = [d["SMS_UID"] for d in ans["DETAIL_LIST"]]
    assert len(set(uids)) == 200 and uids == sorted(uids)
    assert store.count_messages(customer_id=seeded.customer_id) == 200
    _, ans = post(http, server.url, packet(seeded, MULTI_MSISDN_LIST=[*many, many[0]]))
    assert ans["RESULT_CODE"] == ResultCode.INVALID_PARAMETER


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", ResultCode.EMPTY_BODY),
        (b"   ", ResultCode.EMPTY_BODY),
        (b"{}", ResultCode.EMPTY_DATA),
        (b"null", ResultCode.EMPTY_DATA),
        (b"[]", ResultCode.EMPTY_DATA),
        (b"[1,2]", ResultCode.EMPTY_DATA),
        (b'"text"', ResultCode.EMPTY_DATA),
        (b'{"METHOD": "SMS_SEND_REQUEST", "TYPE": ', ResultCode.INVALID_CONTEXT),
        (b'{"METHOD": "\xff\xfe"}', ResultCode.INVALID_CONTEXT),
        (b"[" * 5000 + b"]" * 5000, ResultCode.INVALID_CONTEXT),
        (b"not json at all", ResultCode.INVALID_CONTEXT),
    ],
)
def test_body_level_codes(
    raw: bytes, code: ResultCode, make_server: Any, store: Store, http: httpx.Client
) -> None:
    server = make_server()
    status, ans = post(http, server.url, raw, headers={"content-type": "text/plain"})
    assert status == 200
    assert ans["RESULT_CODE"] == code and ans["RESULT_DESC"] == code.desc
    assert ans["TYPE"] == "ANSWER" and ans["DETAIL_LIST"] == []


def test_field_errors(seeded: Seeded, make_server: Any, http: httpx.Client) -> None:
    server = make_server()
    cases: list[tuple[dict[str, Any], ResultCode]] = [
        ({"METHOD": _ABSENT}, ResultCode.LOST_INFO),
        ({"TYPE": _ABSENT}, ResultCode.LOST_INFO),
        ({"SERIAL": _ABSENT}, ResultCode.LOST_INFO),
        ({"TIME": _ABSENT}, ResultCode.LOST_INFO),
        ({"AUTH_KEY": _ABSENT}, ResultCode.LOST_INFO),
        ({"VERSION": _ABSENT}, ResultCode.LOST_INFO),
        ({"ROUTE_ID": _ABSENT}, ResultCode.LOST_INFO),
        ({"MULTI_MSISDN_LIST": _ABSENT}, ResultCode.LOST_INFO),
        ({"METHOD": "SMS_DELETE"}, ResultCode.INVALID_PARAMETER),
        ({"TYPE": "ANSWER"}, ResultCode.INVALID_PARAMETER),
        ({"SERIAL": 0}, ResultCode.INVALID_PARAMETER),
        ({"SERIAL": 65536}, ResultCode.INVALID_PARAMETER),
        ({"SERIAL": "1"}, ResultCode.INVALID_PARAMETER),
        ({"SERIAL": True}, ResultCode.INVALID_PARAMETER),
        ({"TIME": ""}, ResultCode.INVALID_PARAMETER),
        ({"TIME": "x" * 33}, ResultCode.INVALID_PARAMETER),
        ({"AUTH_KEY": 12}, ResultCode.INVALID_PARAMETER),
        ({"VERSION": "2020-01-01"}, ResultCode.INVALID_VERSION),
        ({"VERSION": 2021}, ResultCode.INVALID_PARAMETER),
        ({"MULTI_MSISDN_LIST": []}, ResultCode.INVALID_PARAMETER),
        ({"MULTI_MSISDN_LIST": "67000011"}, ResultCode.INVALID_PARAMETER),
        ({"ROUTE_ID": ""}, ResultCode.INVALID_PARAMETER),
        ({"ROUTE_ID": "r" * 256}, ResultCode.INVALID_PARAMETER),
        ({"ORIGINAL_ADDR": "a" * 33}, ResultCode.INVALID_PARAMETER),
        ({"ORIGINAL_ADDR": "Clöud"}, ResultCode.INVALID_PARAMETER),
        ({"ORIGINAL_ADDR": "tab\there"}, ResultCode.INVALID_PARAMETER),
        ({"SIGNATURE": "s" * 65, "SIGNATURE_TYPE": 1}, ResultCode.INVALID_PARAMETER),
        ({"SIGNATURE": "签" * 33, "SIGNATURE_TYPE": 1}, ResultCode.INVALID_PARAMETER),
        ({"SIGNATURE": "CloudSMS", "SIGNATURE_TYPE": 6}, ResultCode.INVALID_PARAMETER),
        ({"SIGNATURE_TYPE": 0}, ResultCode.INVALID_PARAMETER),
        ({"PRIORITY": 2}, ResultCode.INVALID_PARAMETER),
        ({"PRIORITY": "1"}, ResultCode.INVALID_PARAMETER),
        ({"CUSTOMER_BODY": [1]}, ResultCode.INVALID_PARAMETER),
        ({"CUSTOMER_BODY": {"k": "v" * 300}}, ResultCode.INVALID_PARAMETER),
        ({"SMS_SEND_TIME": "tomorrow"}, ResultCode.INVALID_PARAMETER),
        ({"SMS_SEND_TIME": "2999-01-01 00:00:00"}, ResultCode.INVALID_PARAMETER),
        ({"SMS_CONTENT": _ABSENT}, ResultCode.INVALID_CONTEXT),
        ({"SMS_CONTENT": ""}, ResultCode.INVALID_CONTEXT),
        ({"SMS_CONTENT": 5}, ResultCode.INVALID_CONTEXT),
        ({"SMS_CONTENT": "a" * 1601}, ResultCode.INVALID_CONTEXT),
        ({"SMS_CONTENT": "中" * 801}, ResultCode.INVALID_CONTEXT),
        # 1531 GSM characters: within 1600 bytes but 11 segments.
        ({"SMS_CONTENT": "a" * 1531}, ResultCode.INVALID_CONTEXT),
        # The signature counts: 1596 + len("【CloudSMS】")*2 > 1600 bytes.
        (
            {"SMS_CONTENT": "中" * 795, "SIGNATURE": "CloudSMS", "SIGNATURE_TYPE": 1},
            ResultCode.INVALID_CONTEXT,
        ),
    ]
    failures = []
    for fields, expected in cases:
        status, ans = post(http, server.url, packet(seeded, **fields))
        if status != 200 or ans["RESULT_CODE"] != expected:
            failures.append((fields, expected, status, ans["RESULT_CODE"]))
        assert ans["TYPE"] == "ANSWER"
        # Every refusal says why, naming the field (RESULT_DETAIL, issue 12 item 12).
        if next(iter(fields)) not in ans.get("RESULT_DETAIL", ""):
            failures.append((fields, "RESULT_DETAIL", ans.get("RESULT_DETAIL")))
    assert failures == []


def test_content_limits_at_the_edge(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    server = make_server()
    for content, segments, encoding in [
        ("a" * 1530, 10, "gsm7"),
        ("中" * 670, 10, "ucs2"),
        ("a" * 161, 2, "gsm7"),
        ("€" * 80, 1, "gsm7"),
    ]:
        _, ans = post(http, server.url, packet(seeded, SMS_CONTENT=content))
        assert ans["RESULT_CODE"] == 1, content[:5]
        message = store.get_message(ans["DETAIL_LIST"][0]["SMS_UID"])
        assert message is not None
        assert (message.segments, message.encoding) == (segments, encoding)
        assert message.fee_micros == 50_000 * segments


def test_signature_applied_and_stored(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    server = make_server()
    expected = {
        1: "【CloudSMS】Hello",
        2: "Hello【CloudSMS】",
        3: "[CloudSMS]Hello",
        4: "Hello[CloudSMS]",
        5: "Hello",
    }
    for sig_type, final in expected.items():
        _, ans = post(
            http,
            server.url,
            packet(seeded, SMS_CONTENT="Hello", SIGNATURE="CloudSMS", SIGNATURE_TYPE=sig_type),
        )
        assert ans["RESULT_CODE"] == 1
        message = store.get_message(ans["DETAIL_LIST"][0]["SMS_UID"])
        assert message is not None and message.content == final


def test_channel_not_exist(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    server = make_server()
    status, ans = post(http, server.url, packet(seeded, AUTH_KEY="x" * 128))
    assert (status, ans["RESULT_CODE"]) == (200, ResultCode.CHANNEL_NOT_EXIST)
    with store.engine.begin() as conn:
        conn.execute(update(tables.customers).values(enabled=False))
    bump(store.engine)
    server.wait_config(lambda: not server.platform.config.current.snapshot.customers_by_key)
    status, ans = post(http, server.url, packet(seeded))
    assert (status, ans["RESULT_CODE"]) == (200, ResultCode.CHANNEL_NOT_EXIST)
    assert store.count_messages(customer_id=seeded.customer_id) == 0


def test_source_ip_whitelist(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    server = make_server()
    with store.engine.begin() as conn:
        conn.execute(
            tables.customer_networks.insert().values(
                customer_id=seeded.customer_id, cidr="10.0.0.0/8"
            )
        )
    bump(store.engine)
    server.wait_config(
        lambda: bool(
            server.platform.config.current.snapshot.customers_by_key[seeded.auth_key].networks
        )
    )
    status, ans = post(http, server.url, packet(seeded))
    assert (status, ans["RESULT_CODE"]) == (403, ResultCode.CHANNEL_NOT_EXIST)
    with store.engine.begin() as conn:
        conn.execute(
            tables.customer_networks.insert().values(
                customer_id=seeded.customer_id, cidr="127.0.0.0/24"
            )
        )
    bump(store.engine)
    server.wait_config(
        lambda: (
            len(server.platform.config.current.snapshot.customers_by_key[seeded.auth_key].networks)
            == 2
        )
    )
    status, ans = post(http, server.url, packet(seeded))
    assert (status, ans["RESULT_CODE"]) == (200, ResultCode.OK)


def test_intercept_blacklist_and_registration(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    server = make_server()
    with store.engine.begin() as conn:
        conn.execute(
            tables.blacklist.insert().values(customer_id=None, number="85267000011", created_ms=0)
        )
        conn.execute(
            tables.blacklist.insert().values(
                customer_id=seeded.customer_id, number="85267000012", created_ms=0
            )
        )
    bump(store.engine)
    server.wait_config(lambda: bool(server.platform.config.current.snapshot.blacklist_global))
    recipients = [
        {"DEST_MSISDN": "67000011", "COUNTRY_CODE": 852},
        {"DEST_MSISDN": "67000012", "COUNTRY_CODE": 852},
        {"DEST_MSISDN": "67000013", "COUNTRY_CODE": 852},
        # China requires a registered template and signature (seeded country policy).
        {"DEST_MSISDN": "13800138000", "COUNTRY_CODE": 86},
    ]
    _, ans = post(http, server.url, packet(seeded, MULTI_MSISDN_LIST=recipients))
    assert codes(ans) == [
        ResultCode.INTERCEPT,
        ResultCode.INTERCEPT,
        ResultCode.OK,
        ResultCode.INTERCEPT,
    ]
    _, ans = post(http, server.url, packet(seeded, MULTI_MSISDN_LIST=recipients[:2]))
    assert ans["RESULT_CODE"] == ResultCode.INTERCEPT

    # Register and approve a template, a signature and a sender: China now accepts.
    with store.engine.begin() as conn:
        conn.execute(
            tables.templates.insert().values(
                customer_id=seeded.customer_id,
                body="Your code is {code}.",
                status="approved",
                created_ms=0,
            )
        )
        conn.execute(
            tables.signatures.insert().values(
                customer_id=seeded.customer_id, text="CloudSMS", status="approved", created_ms=0
            )
        )
        conn.execute(
            tables.sender_ids.insert().values(
                customer_id=seeded.customer_id,
                sender="10690001",
                country_code=86,
                status="approved",
                created_ms=0,
            )
        )
    bump(store.engine)
    server.wait_config(lambda: bool(server.platform.config.current.snapshot.templates))
    china = packet(
        seeded,
        MULTI_MSISDN_LIST=[recipients[3]],
        SMS_CONTENT="Your code is 4711.",
        SIGNATURE="CloudSMS",
        SIGNATURE_TYPE=1,
        ORIGINAL_ADDR="10690001",
    )
    _, ans = post(http, server.url, china)
    assert ans["RESULT_CODE"] == ResultCode.OK
    _, ans = post(http, server.url, {**china, "SMS_CONTENT": "Buy cheap stuff now", "SERIAL": 8})
    assert ans["RESULT_CODE"] == ResultCode.INTERCEPT


def test_local_rejected_routes(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    server = make_server()
    with store.engine.begin() as conn:
        conn.execute(tables.routes.insert().values(name="NotMine", latin1=False, enabled=True))
    bump(store.engine)
    server.wait_config(lambda: "NotMine" in server.platform.config.current.snapshot.routes_by_name)
    for route, cause in [("NoSuchRoute", "route_unknown"), ("NotMine", "route_not_granted")]:
        _, ans = post(http, server.url, packet(seeded, ROUTE_ID=route))
        assert ans["RESULT_CODE"] == ResultCode.OK
        uid = ans["DETAIL_LIST"][0]["SMS_UID"]
        message = store.get_message(uid)
        assert message is not None
        assert (message.state, message.result_desc, message.detail) == (
            MessageState.REJECTED,
            "LOCAL_REJECTED",
            cause,
        )
        assert message.fee_micros == 0
    assert store.customer_balance(seeded.customer_id) == 1_000_000_000


def test_insufficient_balance_is_local_rejected(
    store: Store, make_server: Any, http: httpx.Client
) -> None:
    seeded = seed_customer(store.engine, balance_micros=120_000)  # two messages at 0.05
    server = make_server()
    many = [{"DEST_MSISDN": f"6700001{i}", "COUNTRY_CODE": 852} for i in range(3)]
    _, ans = post(http, server.url, packet(seeded, MULTI_MSISDN_LIST=many))
    assert ans["RESULT_CODE"] == 1 and codes(ans) == [1, 1, 1]
    states = [store.get_message(d["SMS_UID"]) for d in ans["DETAIL_LIST"]]
    assert [m.state for m in states if m] == [
        MessageState.ACCEPTED,
        MessageState.ACCEPTED,
        MessageState.REJECTED,
    ]
    assert states[2] is not None and states[2].detail == "insufficient_balance"
    assert store.customer_balance(seeded.customer_id) == 20_000


def test_send_failed_when_route_suspended(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    server = make_server()
    with store.engine.begin() as conn:
        conn.execute(update(tables.routes).values(enabled=False))
    bump(store.engine)
    server.wait_config(
        lambda: not server.platform.config.current.snapshot.routes_by_name[seeded.route].enabled
    )
    _, ans = post(http, server.url, packet(seeded))
    assert ans["RESULT_CODE"] == ResultCode.SEND_FAILED
    assert codes(ans) == [ResultCode.SEND_FAILED] and ans["DETAIL_LIST"][0]["SMS_UID"] == ""


def test_busy_and_queue_too_large(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    busy = make_server(pending_writes_limit=-1)
    _, ans = post(http, busy.url, packet(seeded))
    assert ans["RESULT_CODE"] == ResultCode.BUSY
    full = make_server(customer_max_backlog=1)
    two = [
        {"DEST_MSISDN": "67000011", "COUNTRY_CODE": 852},
        {"DEST_MSISDN": "67000012", "COUNTRY_CODE": 852},
    ]
    _, ans = post(http, full.url, packet(seeded, MULTI_MSISDN_LIST=two))
    assert ans["RESULT_CODE"] == ResultCode.QUEUE_TOO_LARGE
    _, ans = post(http, full.url, packet(seeded))
    assert ans["RESULT_CODE"] == ResultCode.OK
    _, ans = post(http, full.url, packet(seeded, SERIAL=8))
    assert ans["RESULT_CODE"] == ResultCode.QUEUE_TOO_LARGE
    assert store.count_messages(customer_id=seeded.customer_id) == 1


def test_db_not_find_when_store_fails(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    server = make_server()
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE messages RENAME TO messages_away"))
    _, ans = post(http, server.url, packet(seeded))
    assert ans["RESULT_CODE"] == ResultCode.DB_NOT_FIND
    with store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE messages_away RENAME TO messages"))
    assert store.count_messages() == 0
    assert store.customer_balance(seeded.customer_id) == 1_000_000_000
    _, ans = post(http, server.url, packet(seeded, SERIAL=9))
    assert ans["RESULT_CODE"] == ResultCode.OK


def test_unknown_error_never_leaks(seeded: Seeded, make_server: Any, http: httpx.Client) -> None:
    server = make_server()

    async def broken(_packet: Any) -> Any:
        raise RuntimeError("internal detail that must not leak")

    server.platform.writer.write = broken  # fault injection at the store boundary
    response = http.post(server.url, content=orjson.dumps(packet(seeded)))
    body = response.content
    assert response.status_code == 200
    assert orjson.loads(body)["RESULT_CODE"] == ResultCode.UNKNOWN_ERROR
    assert b"internal detail" not in body and b"Traceback" not in body


def test_replay_returns_original_answer(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    server = make_server()
    raw = orjson.dumps(packet(seeded))
    first = http.post(server.url, content=raw).content
    again = http.post(server.url, content=raw).content
    assert first == again
    assert store.count_messages(customer_id=seeded.customer_id) == 1
    # A different SERIAL is a different packet.
    other = orjson.loads(
        http.post(server.url, content=orjson.dumps(packet(seeded, SERIAL=8))).content
    )
    assert other["DETAIL_LIST"][0]["SMS_UID"] != orjson.loads(first)["DETAIL_LIST"][0]["SMS_UID"]
    # After a restart the store still remembers the packet.
    server.__exit__(None, None, None)
    restarted = make_server()
    assert http.post(restarted.url, content=raw).content == first
    assert store.count_messages(customer_id=seeded.customer_id) == 2


def test_keep_alive_and_content_types(seeded: Seeded, make_server: Any) -> None:
    server = make_server()
    with httpx.Client(timeout=10) as client:
        for i, ctype in enumerate(
            [None, "text/plain", "application/x-www-form-urlencoded", "application/json"]
        ):
            headers = {"content-type": ctype} if ctype else {}
            response = client.post(
                server.url, content=orjson.dumps(packet(seeded, SERIAL=i + 1)), headers=headers
            )
            assert orjson.loads(response.content)["RESULT_CODE"] == 1
            assert response.headers.get("connection", "keep-alive") != "close"
        assert server.platform is not None


def test_oversized_body_refused_early(seeded: Seeded, make_server: Any, http: httpx.Client) -> None:
    server = make_server(max_body_bytes=4096)
    status, ans = post(http, server.url, packet(seeded, SMS_CONTENT="a" * 5000))
    assert status == 413 and ans["RESULT_CODE"] == ResultCode.INVALID_CONTEXT

    # Chunked upload without a length is cut off too.
    def chunks() -> Any:
        yield b'{"METHOD": "SMS_SEND_REQUEST", "pad": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    response = http.post(server.url, content=chunks())
    assert response.status_code == 413


def test_wrong_http_method(make_server: Any, store: Store, http: httpx.Client) -> None:
    server = make_server()
    response = http.get(server.url)
    assert response.status_code == 405
    assert orjson.loads(response.content)["TYPE"] == "ANSWER"


def uip_answer(response: httpx.Response) -> int:
    """The RESULT_CODE of a JSON UIP ANSWER (asserting that it is one)."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    answer = orjson.loads(response.content)
    assert (answer["METHOD"], answer["TYPE"], answer["SERIAL"]) == ("SMS_SEND_REQUEST", "ANSWER", 0)
    assert answer["RESULT_DESC"] == ResultCode(answer["RESULT_CODE"]).desc
    return int(answer["RESULT_CODE"])


def test_other_paths_answer_a_uip_json_answer(make_server: Any, http: httpx.Client) -> None:
    """Issue 12 item 15: wrong paths and methods on the UIP port got Starlette's plain text."""
    server = make_server()
    base = server.url.removesuffix(server.settings.path)
    for method, path in [("POST", "/"), ("GET", "/nope"), ("POST", "/dave/io2"),
                         ("POST", "/dave"), ("PUT", "/health/x")]:  # fmt: skip
        response = http.request(method, base + path, content=b"{}")
        assert response.status_code == 404, (method, path)
        assert uip_answer(response) == ResultCode.INVALID_PARAMETER
    for method, path in [("POST", "/health"), ("DELETE", "/ready")]:
        response = http.request(method, base + path)
        assert response.status_code == 405 and "GET" in response.headers["allow"]
        assert uip_answer(response) == ResultCode.INVALID_PARAMETER
    # The listener's own paths are unchanged.
    assert http.get(base + "/health").json() == {"status": "ok"}
    assert http.get(base + "/ready").status_code == 200


def test_unexpected_failure_outside_the_uip_path_is_a_json_500(
    make_server: Any, http: httpx.Client
) -> None:
    server = make_server()
    platform = server.platform
    config = platform.config

    class Broken:
        @property
        def current(self) -> Any:
            raise RuntimeError("injected failure")

    platform.config = Broken()
    try:
        response = http.get(server.url.removesuffix(server.settings.path) + "/ready")
    finally:
        platform.config = config
    assert response.status_code == 500
    assert uip_answer(response) == ResultCode.UNKNOWN_ERROR
    assert b"injected" not in response.content


def test_scheduled_send_time_stored(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    import datetime as dt

    from cloudsms.domain.timefmt import format_uip_time

    server = make_server()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    _, ans = post(http, server.url, packet(seeded, SMS_SEND_TIME=format_uip_time(later)))
    message = store.get_message(ans["DETAIL_LIST"][0]["SMS_UID"])
    assert message is not None
    assert abs(message.send_at_ms - int(later.timestamp()) * 1000) < 1000
    _, ans = post(http, server.url, packet(seeded, SERIAL=8, SMS_SEND_TIME="2001-01-01 00:00:00"))
    past = store.get_message(ans["DETAIL_LIST"][0]["SMS_UID"])
    assert past is not None and abs(past.send_at_ms - past.created_ms) < 1000


def test_java_example_single_object_list(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    server = make_server()
    _, ans = post(
        http,
        server.url,
        packet(seeded, MULTI_MSISDN_LIST={"DEST_MSISDN": "67000011", "COUNTRY_CODE": 852}),
    )
    assert ans["RESULT_CODE"] == 1 and len(ans["DETAIL_LIST"]) == 1


def test_dr_query_answers_and_refusals_echo_its_method(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    server = make_server()
    _, sent = post(http, server.url, packet(seeded))
    uid = sent["DETAIL_LIST"][0]["SMS_UID"]
    query = {
        "METHOD": "DR_QUERY", "TYPE": "REQUEST", "SERIAL": 3, "TIME": "t",
        "AUTH_KEY": seeded.auth_key, "VERSION": "2021-01-01", "SMS_UID_LIST": [uid, "NOPE"],
    }  # fmt: skip
    _, ans = post(http, server.url, query)
    assert (ans["METHOD"], ans["RESULT_CODE"], ans["SERIAL"]) == ("DR_QUERY", 1, 3)
    first, missing = ans["SMS_RESULT_LIST"]
    assert first["SMS_UID"] == uid and first["SMS_STATE"] == 9 and first["SMS_COUNT"] == 1
    assert missing["RESULT_CODE"] == ResultCode.DB_NOT_FIND
    _, refused = post(http, server.url, {**query, "AUTH_KEY": "k" * 128})
    assert (refused["METHOD"], refused["RESULT_CODE"]) == ("DR_QUERY", ResultCode.CHANNEL_NOT_EXIST)
    assert "DETAIL_LIST" not in refused
    _, odd = post(http, server.url, {**query, "METHOD": ["DR_QUERY"]})
    assert (odd["METHOD"], odd["RESULT_CODE"]) == ("SMS_SEND_REQUEST", ResultCode.INVALID_PARAMETER)


def test_refusals_say_why(
    store: Store,
    seeded: Seeded,
    make_server: Any,
    http: httpx.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """RESULT_DETAIL beside RESULT_DESC, top level and per recipient; logged with the customer.

    An accepted recipient's entry and an accepted packet's top level stay exactly the
    document's (no RESULT_DETAIL), so clients written to the v2.4 document read them as before.
    """
    server = make_server()
    caplog.set_level(logging.INFO, logger="cloudsms.api.refusals")

    _, ans = post(http, server.url, packet(seeded, SMS_SEND_TIME="tomorrow 9am"))
    assert ans["RESULT_CODE"] == ResultCode.INVALID_PARAMETER
    assert ans["RESULT_DETAIL"] == (
        'SMS_SEND_TIME must be YYYY-MM-DD HH:MM:SS in UTC+8, not "tomorrow 9am"'
    )
    assert list(ans)[4:7] == ["RESULT_CODE", "RESULT_DESC", "RESULT_DETAIL"]

    recipients = [
        {"DEST_MSISDN": "67000011", "COUNTRY_CODE": 852},  # OK
        {"DEST_MSISDN": "1380013800", "COUNTRY_CODE": 86},  # 10 digits
        {"DEST_MSISDN": "4915112345678", "COUNTRY_CODE": 49},  # no price
        {"DEST_MSISDN": "71234567", "COUNTRY_CODE": 65},  # LOCAL_REJECTED
        {"COUNTRY_CODE": 852},
    ]
    _, ans = post(http, server.url, packet(seeded, SERIAL=8, MULTI_MSISDN_LIST=recipients))
    assert ans["RESULT_CODE"] == ResultCode.OK and "RESULT_DETAIL" not in ans
    ok, china, germany, singapore, missing = ans["DETAIL_LIST"]
    assert "RESULT_DETAIL" not in ok and list(ok) == [
        "RESULT_CODE", "RESULT_DESC", "DEST_MSISDN", "COUNTRY_CODE", "SMS_UID"
    ]  # fmt: skip
    assert china["RESULT_DETAIL"] == (
        "DEST_MSISDN 1380013800 has 10 digits; mainland China mobiles have 11"
    )
    assert germany["RESULT_DETAIL"] == "no price for +49 4915112345678 in this account's price list"
    assert singapore["RESULT_CODE"] == ResultCode.OK and singapore["SMS_UID"]
    assert singapore["RESULT_DETAIL"] == (
        "LOCAL_REJECTED, will not be sent or charged (a REJECTED report follows): Singapore (65)"
        " mobiles have 8 digits starting with 8 or 9, not '71234567'"
    )
    assert missing["RESULT_DETAIL"] == "DEST_MSISDN is missing"

    # Nothing accepted: the top level says why too.
    _, ans = post(http, server.url, packet(seeded, SERIAL=9, MULTI_MSISDN_LIST=recipients[1:2]))
    assert ans["RESULT_DETAIL"] == china["RESULT_DETAIL"]
    _, ans = post(http, server.url, packet(seeded, SERIAL=10, ROUTE_ID="NoSuchRoute"))
    assert ans["DETAIL_LIST"][0]["RESULT_DETAIL"].endswith(
        "ROUTE_ID 'NoSuchRoute' is not a route of this account"
    )

    # Before the customer is known: what is wrong with the body.
    _, ans = post(http, server.url, b'{"METHOD": "SMS_SEND_REQUEST", "SERIAL": 1,}')
    assert ans["RESULT_DETAIL"] == (
        "the body is not valid JSON: trailing comma is not allowed (line 1, column 43)"
    )
    _, ans = post(http, server.url, packet(seeded, AUTH_KEY="k" * 128))
    assert ans["RESULT_DETAIL"] == "AUTH_KEY is unknown or disabled"

    logged = [r.getMessage() for r in caplog.records if r.name == "cloudsms.api.refusals"]
    assert any(
        line.startswith("customer acme (127.0.0.1): packet SERIAL 7 refused, Invalid_parameter:")
        and "SMS_SEND_TIME must be" in line
        for line in logged
    ), logged
    assert any(
        "packet SERIAL 8: 3 of 5 recipients refused: #2 +86 1380013800 Invalid_parameter:"
        " DEST_MSISDN 1380013800 has 10 digits" in line
        for line in logged
    ), logged
    record = next(r for r in caplog.records if "SERIAL 7 refused" in r.getMessage())
    assert (record.customer, record.serial) == ("acme", 7)  # type: ignore[attr-defined]


def test_replay_keys_lead_with_the_time_and_older_keys_still_replay(
    store: Store, seeded: Seeded, make_server: Any, http: httpx.Client
) -> None:
    """Keys are written in TIME order; a packet stored under an older release's key (the bare
    SHA-256) is still found after the upgrade, and purging the old rows ends the extra lookup."""
    server = make_server()
    raw = orjson.dumps(packet(seeded, TIME="2026-12-07 01:55:00"))
    first = http.post(server.url, content=raw).content
    with store.engine.begin() as conn:
        (key,) = conn.execute(text("SELECT packet_key FROM replays")).one()
        assert key.startswith("t2026120701550000007")  # TIME's digits, then SERIAL
        older = hashlib.sha256(seeded.customer_id.to_bytes(8, "big") + raw).hexdigest()
        conn.execute(text("UPDATE replays SET packet_key = :k"), {"k": older})
    server.__exit__(None, None, None)  # the new process has no answer in memory
    restarted = make_server()
    assert http.post(restarted.url, content=raw).content == first
    assert store.count_messages(customer_id=seeded.customer_id) == 1
    # Past the window the older row is purged; the same bytes are then a new packet.
    assert store.purge_replays(store.now_ms() + 1) == 1
    restarted.__exit__(None, None, None)
    again = make_server()
    assert http.post(again.url, content=raw).content != first
    assert store.count_messages(customer_id=seeded.customer_id) == 2
