"""Which RESULT_CODE a recipient gets when it qualifies for several: the documented order.

docs/decisions.md ("Per-recipient order of checks") and guide §3: structure (Invalid_parameter)
→ blacklist (Intercept) → registration policy (Intercept) → price (Unpriced_area) → route
suspended by an operator (Send_failed) → the LOCAL_REJECTED causes. Each recipient below
qualifies for its own code and every later one, so a swap of any two neighbours changes an
answer.
"""

from __future__ import annotations

from typing import Any

import httpx
from seed import bump, seed_customer
from sqlalchemy import update
from test_uip_api import codes, packet, post

from cloudsms.domain.codes import ResultCode
from cloudsms.storage import tables
from cloudsms.storage.store import Store

R = ResultCode


def test_each_recipient_gets_the_first_code_it_qualifies_for(
    store: Store, make_server: Any, http: httpx.Client
) -> None:
    # Hong Kong and Singapore priced; mainland China (registration rules) and the UK are not.
    seeded = seed_customer(store.engine, prices={"852": 50_000, "65": 30_000})
    server = make_server()
    with store.engine.begin() as conn:
        for number in ("447700900123", "85267000012"):
            conn.execute(
                tables.blacklist.insert().values(customer_id=None, number=number, created_ms=0)
            )
        conn.execute(update(tables.routes).values(enabled=False))  # suspended by an operator
    bump(store.engine)
    server.wait_config(
        lambda: not server.platform.config.current.snapshot.routes_by_name[seeded.route].enabled
    )
    cases = [
        # China with 10 digits: malformed, unregistered content, unpriced, suspended route.
        ((86, "1380013800"), R.INVALID_PARAMETER),
        # Blacklisted, unpriced, suspended route.
        ((44, "7700900123"), R.INTERCEPT),
        # Fails China's registration rule (no approved template), unpriced, suspended route.
        ((86, "13800138000"), R.INTERCEPT),
        # Unpriced, suspended route.
        ((44, "7700900999"), R.UNPRICED_AREA),
        # Suspended route, and an invalid Singapore number (a LOCAL_REJECTED cause).
        ((65, "71234567"), R.SEND_FAILED),
        # Blacklisted, priced, suspended route.
        ((852, "67000012"), R.INTERCEPT),
    ]
    recipients = [{"COUNTRY_CODE": cc, "DEST_MSISDN": n} for (cc, n), _ in cases]
    _, ans = post(http, server.url, packet(seeded, MULTI_MSISDN_LIST=recipients))
    assert codes(ans) == [int(code) for _, code in cases]
    assert all(d["SMS_UID"] == "" for d in ans["DETAIL_LIST"])

    # With the route back in service the Singapore number reaches its LOCAL_REJECTED cause.
    with store.engine.begin() as conn:
        conn.execute(update(tables.routes).values(enabled=True))
    bump(store.engine)
    server.wait_config(
        lambda: server.platform.config.current.snapshot.routes_by_name[seeded.route].enabled
    )
    _, ans = post(http, server.url, packet(seeded, SERIAL=8, MULTI_MSISDN_LIST=recipients))
    assert codes(ans)[3:5] == [int(R.UNPRICED_AREA), int(R.OK)]
    message = store.get_message(ans["DETAIL_LIST"][4]["SMS_UID"])
    assert message is not None and message.result_desc == "LOCAL_REJECTED"
