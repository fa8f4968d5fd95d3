"""The console's Messages page over HTTP: the newest messages by default, paged by SMS_UID."""

from __future__ import annotations

import html
import re

import httpx
from conftest import Admin, send_sms
from helpers import login
from seed import seed_customer
from sqlalchemy import update

from cloudsms.storage import tables


def _listed(page: httpx.Response) -> list[str]:
    """SMS_UIDs in the page's results table, in page order."""
    assert page.status_code == 200, page.text
    return re.findall(r'class="uid">([0-9A-Z]+)</a>', page.text)


def _older(page: httpx.Response) -> str | None:
    found = re.search(r'<a href="([^"]+)" id="older">', page.text)
    return html.unescape(found.group(1)) if found else None


def _walk(web: httpx.Client, url: str) -> list[list[str]]:
    """Follow the "Older" links from ``url`` to the last page; the SMS_UIDs of each page."""
    pages: list[list[str]] = []
    next_url: str | None = url
    while next_url is not None:
        assert len(pages) < 20, "paging does not end"
        response = web.get(next_url)
        pages.append(_listed(response))
        if len(pages) > 1:
            assert 'id="newest"' in response.text  # a way back to the first page
        next_url = _older(response)
    return pages


def _accept(admin: Admin) -> tuple[list[str], list[str]]:
    """Seven messages of acme's and two of globex's, through the real UIP endpoint."""
    acme = seed_customer(admin.store.engine, name="acme")
    globex = seed_customer(admin.store.engine, name="globex", route=acme.route)
    admin.platform.wait_config(
        lambda: len(admin.platform.platform.config.current.snapshot.customers_by_key) == 2
    )
    acme_uids: list[str] = []
    globex_uids: list[str] = []
    with httpx.Client(timeout=10) as client:
        for serial, numbers in enumerate(([1, 2, 3], [4, 5], [6, 7]), start=1):
            answer = send_sms(client, admin.uip_url, acme.auth_key, acme.route, serial,
                              [f"852-670000{n:02d}" for n in numbers], "paging test")  # fmt: skip
            acme_uids += [d["SMS_UID"] for d in answer["DETAIL_LIST"]]
        answer = send_sms(client, admin.uip_url, globex.auth_key, globex.route, 1,
                          ["852-67000091", "852-67000092"], "other customer")  # fmt: skip
        globex_uids += [d["SMS_UID"] for d in answer["DETAIL_LIST"]]
    assert all(acme_uids + globex_uids)
    return acme_uids, globex_uids


def test_messages_page_lists_the_newest_by_default_and_pages_back(admin: Admin) -> None:
    acme_uids, globex_uids = _accept(admin)
    newest_first = sorted(acme_uids + globex_uids, reverse=True)
    with httpx.Client(base_url=admin.url, timeout=10) as web:
        login(web, "console", admin.readonly_token)
        # No filter: every message, newest first, and no "Older" link when all fit on a page.
        first = web.get("/console/messages")
        assert _listed(first) == newest_first
        assert "Most recent messages" in first.text
        assert _older(first) is None and 'id="newest"' not in first.text

        # Pages of 4: each message exactly once, in order, and the last page links no further.
        pages = _walk(web, "/console/messages?limit=4")
        assert [len(p) for p in pages] == [4, 4, 1]
        assert [uid for p in pages for uid in p] == newest_first

        # Paging keeps the filter: acme's seven, in pages of 3.
        pages = _walk(web, "/console/messages?customer=acme&limit=3")
        assert [len(p) for p in pages] == [3, 3, 1]
        assert [uid for p in pages for uid in p] == sorted(acme_uids, reverse=True)

        # A page size that fills the last page exactly shows no link to an empty page.
        assert [len(p) for p in _walk(web, "/console/messages?customer=globex&limit=2")] == [2]

        # Bad input is a readable error, not a traceback.
        bad = web.get("/console/messages?limit=many")
        assert bad.status_code == 400 and "limit must be a whole number" in bad.text


def test_paging_skips_nothing_when_accept_times_disagree_with_uids(admin: Admin) -> None:
    """Two requests served at once: the one that started first (smaller ``created_ms``) can be
    given the larger SMS_UID. Paging by SMS_UID must then also sort by SMS_UID, or a page
    boundary between the two skips one of them for good."""
    acme_uids, globex_uids = _accept(admin)
    everything = sorted(acme_uids + globex_uids, reverse=True)
    newest = everything[0]
    m = tables.messages.c
    with admin.store.engine.begin() as conn:  # the newest SMS_UID, accepted "earliest"
        conn.execute(
            update(tables.messages).where(m.sms_uid == newest).values(created_ms=m.created_ms - 5)
        )
    with httpx.Client(base_url=admin.url, timeout=10) as web:
        login(web, "console", admin.readonly_token)
        pages = _walk(web, "/console/messages?limit=2")
    assert sorted(uid for p in pages for uid in p) == sorted(everything)
    assert [uid for p in pages for uid in p] == everything
