"""The customer portal: a customer sees its own balance, messages, reports and registrations,
and nothing of any other customer's."""

from __future__ import annotations

from conftest import Admin, ok, send_sms
from helpers import csrf_of, login
from seed import seed_customer


def _two_customers_with_traffic(admin: Admin) -> tuple[object, object, list[str], list[str]]:
    a = seed_customer(admin.store.engine, name="acme")
    b = seed_customer(admin.store.engine, name="beta", route=a.route)
    admin.platform.wait_config(
        lambda: len(admin.platform.platform.config.current.snapshot.customers_by_key) == 2
    )
    with admin.client() as client:
        first = send_sms(client, admin.uip_url, a.auth_key, a.route, 1,
                         ["852-67000011", "65-71234567"], "acme hello")  # fmt: skip
        second = send_sms(client, admin.uip_url, b.auth_key, b.route, 1,
                          ["852-67000099"], "beta secret")  # fmt: skip
    a_uids = [d["SMS_UID"] for d in first["DETAIL_LIST"]]
    b_uids = [d["SMS_UID"] for d in second["DETAIL_LIST"]]
    ok(admin.api.post("/api/v1/registrations/templates",
                      json={"customer": "beta", "text": "beta template {x}"}), 201)  # fmt: skip
    ok(admin.api.post("/api/v1/registrations/signatures",
                      json={"customer": "acme", "text": "ACME"}), 201)  # fmt: skip
    return a, b, a_uids, b_uids


def test_customer_sees_only_its_own_data(admin: Admin) -> None:
    a, _b, a_uids, b_uids = _two_customers_with_traffic(admin)
    with admin.client() as web:
        home = login(web, "portal", a.auth_key)  # type: ignore[attr-defined]
        assert home.status_code == 200 and "acme" in home.text
        assert "999.95" in home.text  # 1000 HKD less one 0.05 message (the SG one was refused)
        for uid in a_uids:
            assert uid in home.text
        assert b_uids[0] not in home.text and "beta" not in home.text

        messages = web.get("/portal/messages").text
        assert all(uid in messages for uid in a_uids) and b_uids[0] not in messages
        # Searching for the other customer's message, by id or number, finds nothing.
        for query in ({"sms_uid": b_uids[0]}, {"number": "85267000099"}):
            found = web.get("/portal/messages", params=query).text
            assert "No messages." in found and f"/portal/messages/{b_uids[0]}" not in found
        own = web.get(f"/portal/messages/{a_uids[0]}")
        assert own.status_code == 200 and "acme hello" in own.text
        other = web.get(f"/portal/messages/{b_uids[0]}")
        assert other.status_code == 404 and "beta secret" not in other.text

        reports = web.get("/portal/reports").text
        assert a_uids[1] in reports and b_uids[0] not in reports  # the LOCAL_REJECTED report

        registrations = web.get("/portal/registrations").text
        assert "ACME" in registrations and "beta template" not in registrations

        series = web.get("/portal/data/series", params={"by": "state"}).json()["data"]
        assert sum(sum(v) for v in series["points"].values()) == 2
        # The customer id comes from the session: a customer= parameter is simply ignored.
        series = web.get("/portal/data/series", params={"by": "state", "customer": "beta"})
        assert sum(sum(v) for v in series.json()["data"]["points"].values()) == 2


def test_portal_login_logout_and_key_rotation(admin: Admin) -> None:
    a = seed_customer(admin.store.engine, name="acme")
    with admin.client() as web:
        refused = login(web, "portal", "x" * 128)
        assert "unknown or disabled AUTH_KEY" in refused.text
        assert web.get("/portal/", follow_redirects=False).status_code == 303
        home = login(web, "portal", a.auth_key)
        assert web.get("/portal/messages").status_code == 200
        # Logging out needs the session's CSRF token.
        assert web.post("/portal/logout", data={"csrf": "forged"}).status_code == 403
        ok(admin.api.post("/api/v1/customers/acme/rotate-key"))
        # The old key's session ends with the rotation.
        assert web.get("/portal/messages", follow_redirects=False).status_code == 303
        home = login(web, "portal", a.auth_key)
        assert "unknown or disabled AUTH_KEY" in home.text
        new_key = admin.store.get_customer("acme").auth_key
        home = login(web, "portal", new_key)
        response = web.post("/portal/logout", data={"csrf": csrf_of(home.text)})
        assert response.status_code == 303
        assert web.get("/portal/", follow_redirects=False).status_code == 303
