"""Why a message was rejected by the platform, on its page in the console and in the portal,
read in real headless Chromium (issue 12 item 12).

A recipient the platform accepts but will never send (LOCAL_REJECTED: an invalid Singapore
number, a ROUTE_ID that is not the customer's) is stored; its page says why in words, the same
sentence the ANSWER carried as RESULT_DETAIL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_console_browser import Live


@pytest.fixture
def live(tmp_path: Path, browser: Any) -> Iterator[Live]:
    env = Live(tmp_path)
    try:
        yield env
    finally:
        env.close()


def test_local_rejected_reason_on_the_message_pages(live: Live, page: Any) -> None:
    acme, _ = live.seed()
    [_, singapore] = live.send(acme.auth_key, acme.route, 1, ["852-67000011", "65-71234567"], "hi")
    [no_route] = live.send(acme.auth_key, "NoSuchRoute", 2, ["852-67000012"], "hi")
    base = live.admin.base

    page.goto(base + "/console/login")
    page.fill("#token", live.token)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/console/")
    page.goto(f"{base}/console/messages/{singapore}")
    assert page.locator("dd.reason").inner_text() == (
        "Singapore (65) mobiles have 8 digits starting with 8 or 9, not '71234567'"
    )
    assert "invalid_singapore_number" in page.locator("dl.facts").inner_text()
    page.goto(f"{base}/console/messages/{no_route}")
    assert page.locator("dd.reason").inner_text() == (
        "ROUTE_ID 'NoSuchRoute' is not a route of this account"
    )

    page.goto(base + "/portal/login")
    page.fill("#auth_key", acme.auth_key)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/portal/")
    page.goto(f"{base}/portal/messages/{no_route}")
    assert page.locator("dd.reason").inner_text() == (
        "ROUTE_ID 'NoSuchRoute' is not a route of this account"
    )
    assert "rejected by the platform" in page.locator(".timeline").inner_text()
    assert "route_unknown" not in page.locator("main").inner_text()  # the code is the operator's
