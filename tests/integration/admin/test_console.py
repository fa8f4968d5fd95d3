"""The operator console over HTTP: login, CSRF, form actions through the same operations."""

from __future__ import annotations

import re

from conftest import Admin, ok, send_sms
from helpers import csrf_of, login
from seed import seed_customer


def test_console_login_pages_and_actions(admin: Admin) -> None:
    seeded = seed_customer(admin.store.engine, name="acme")
    admin.platform.wait_config(
        lambda: bool(admin.platform.platform.config.current.snapshot.customers_by_key)
    )
    with admin.client() as client:
        answer = send_sms(client, admin.uip_url, seeded.auth_key, seeded.route, 1,
                          ["852-67000011"], "console test")  # fmt: skip
    uid = answer["DETAIL_LIST"][0]["SMS_UID"]
    with admin.client() as web:
        assert (
            web.get("/console/", follow_redirects=False)
            .headers["location"]
            .startswith("/console/login?next=")
        )
        assert "unknown or revoked token" in login(web, "console", "csa_nope").text
        home = login(web, "console", admin.admin_token)
        assert home.status_code == 200 and "Dashboard" in home.text and "carrier-1" in home.text
        assert "default-src 'self'" in home.headers["content-security-policy"]
        csrf = csrf_of(home.text)
        for page in ("messages", "customers", "customers/acme", "prices", "routes", "connectors",
                     "smpp", "smpp/sessions", "inbound", "blacklist", "policies", "approvals",
                     "audit"):  # fmt: skip
            response = web.get(f"/console/{page}")
            assert response.status_code == 200, page
        found = web.get("/console/messages", params={"number": "85267000011"})
        assert f"/console/messages/{uid}" in found.text
        life = web.get(f"/console/messages/{uid}")
        assert "console test" in life.text and "accepted" in life.text
        assert web.get("/console/messages/NOPE").status_code == 404

        # A form action: top-up through the same operation as the API, audited as the token.
        done = web.post(
            "/console/do/customers.top_up",
            data={
                "csrf": csrf,
                "next": "/console/customers/acme",
                "path.name": "acme",
                "amount": "10",
                "note": "from the console",
            },
            follow_redirects=True,
        )
        assert done.status_code == 200 and "done:" in done.text and "1009.95" in done.text
        assert admin.store.ledger("acme")[0].actor == "token:alice"
        assert admin.store.list_audit()[0].action == "customers.top_up"

        # Bad input comes back as a readable flash message, nothing changed.
        bad = web.post(
            "/console/do/customers.top_up",
            data={
                "csrf": csrf,
                "next": "/console/customers/acme",
                "path.name": "acme",
                "amount": "ten",
            },
            follow_redirects=True,
        )
        assert "is not a decimal number" in bad.text
        # Without the session's CSRF token the action is refused.
        forged = web.post(
            "/console/do/customers.top_up",
            data={"csrf": "forged", "next": "/console/", "path.name": "acme", "amount": "5"},
            follow_redirects=True,
        )
        assert "CSRF" in forged.text
        assert admin.store.get_customer("acme").balance_micros == 1_009_950_000
        # An open redirect is not possible through next=.
        away = web.post(
            "/console/do/customers.top_up",
            data={
                "csrf": csrf,
                "next": "https://evil.example/",
                "path.name": "acme",
                "amount": "1",
            },
        )
        assert away.headers["location"] == "/console/"

        # The new customer's AUTH_KEY is shown once, on the page, never in a redirect URL.
        created = web.post(
            "/console/do/customers.create",
            data={"csrf": csrf, "next": "/console/customers", "name": "beta", "currency": "HKD"},
        )
        assert created.status_code == 200
        key = re.search(r'<pre class="secret" id="auth-key">(\w+)</pre>', created.text)
        assert key and admin.store.get_customer("beta").auth_key == key.group(1)

        data = web.get("/console/data/stats.summary").json()
        assert data["ok"] and data["data"]["accepted"] == 1
        assert web.get("/console/data/customers.top_up").status_code == 404  # changes: never GET

        logout = web.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
        assert logout.status_code == 303
        assert web.get("/console/", follow_redirects=False).status_code == 303


def test_console_read_only_and_revoked_sessions(admin: Admin) -> None:
    ok(admin.api.post("/api/v1/customers", json={"name": "acme", "currency": "HKD"}), 201)
    with admin.client() as web:
        home = login(web, "console", admin.readonly_token)
        assert "Read-only token" in home.text
        refused = web.post(
            "/console/do/customers.top_up",
            data={
                "csrf": csrf_of(home.text),
                "next": "/console/",
                "path.name": "acme",
                "amount": "5",
            },
            follow_redirects=True,
        )
        assert "read-only" in refused.text
        assert admin.store.get_customer("acme").balance_micros == 0
        admin.store.revoke_admin_token("rita")
        assert web.get("/console/customers", follow_redirects=False).status_code == 303


def test_console_smpp_and_inbound_pages_say_what_is_wrong(admin: Admin) -> None:
    ok(admin.api.post("/api/v1/customers", json={"name": "acme", "currency": "HKD"}), 201)
    with admin.client() as web:
        csrf = csrf_of(login(web, "console", admin.admin_token).text)
        # This admin listener runs beside no SMPP server: the page says so, nothing to close.
        sessions = web.get("/console/smpp/sessions")
        assert "No SMPP server runs in this process" in sessions.text
        gone = web.post(
            "/console/do/smpp_sessions.disconnect",
            data={"csrf": csrf, "next": "/console/smpp/sessions", "path.id": "7"},
            follow_redirects=True,
        )
        assert "no SMPP session 7 in this process" in gone.text
        # A bad filter is the operation's readable error, with its status.
        bad = web.get("/console/inbound", params={"limit": "5000"})
        assert bad.status_code == 400 and "limit" in bad.text and "1000" in bad.text
        mistyped = web.get("/console/inbound", params={"unrouted": "maybe"})
        assert mistyped.status_code == 400 and "unrouted must be true or false" in mistyped.text
        # An SMPP account for a customer that does not exist: refused, nothing created.
        nobody = web.post(
            "/console/do/smpp_accounts.create",
            data={
                "csrf": csrf,
                "next": "/console/smpp",
                "path.name": "ghost",
                "system_id": "g1",
                "password": "pw",
                "route": "OTP",
            },
            follow_redirects=True,
        )
        assert "ghost" in nobody.text and admin.store.list_smpp_accounts() == []
