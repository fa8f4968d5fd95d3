"""The admin API's one error shape, pinned on every error path (datasette's test_error_shape)."""

from __future__ import annotations

import httpx
import pytest
from conftest import Admin, ok

SHAPE = {"ok", "error", "status"}


def assert_error(response: httpx.Response, status: int, contains: str = "") -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == SHAPE, body
    assert body["ok"] is False and body["status"] == status
    assert isinstance(body["error"], str) and body["error"]
    assert contains in body["error"], body
    assert "Traceback" not in body["error"]


@pytest.fixture
def api(admin: Admin) -> httpx.Client:
    ok(admin.api.post("/api/v1/customers", json={"name": "acme", "currency": "HKD"}), 201)
    return admin.api


def test_400_bad_input_is_readable(api: httpx.Client) -> None:
    assert_error(api.post("/api/v1/customers", json={"name": "x", "currency": "XXX"}), 400,
                 "unknown currency")  # fmt: skip
    assert_error(api.post("/api/v1/customers/acme/top-up", json={"amount": "1.2.3"}), 400,
                 "not a decimal number")  # fmt: skip
    assert_error(api.post("/api/v1/customers/acme/top-up", json={"amount": 1.5}), 400, "floats")
    assert_error(api.post("/api/v1/customers/acme/top-up", json={}), 400, "amount is required")
    assert_error(api.post("/api/v1/customers/acme/top-up", json={"amount": "1", "x": 1}), 400,
                 "unknown parameter(s) x")  # fmt: skip
    assert_error(api.post("/api/v1/customers/acme/top-up", content=b"{nope"), 400, "not valid JSON")
    assert_error(api.post("/api/v1/customers/acme/top-up", content=b"[1]"), 400, "JSON object")
    assert_error(api.patch("/api/v1/customers/acme", json={"enabled": "maybe"}), 400,
                 "true or false")  # fmt: skip
    assert_error(api.get("/api/v1/messages", params={"since": "yesterday"}), 400, "since")
    assert_error(api.get("/api/v1/stats/series", params={"by": "colour"}), 400, "by")


def test_401_without_or_with_a_bad_token(admin: Admin) -> None:
    response = admin.client().get("/api/v1/customers")
    assert_error(response, 401, "Bearer")
    assert response.headers["www-authenticate"] == "Bearer"
    assert_error(admin.client("csa_wrong").get("/api/v1/customers"), 401, "unknown or revoked")
    admin.store.revoke_admin_token("alice")
    assert_error(admin.api.get("/api/v1/customers"), 401)


def test_403_read_only(admin: Admin) -> None:
    assert_error(admin.ro.post("/api/v1/customers", json={"name": "b", "currency": "HKD"}), 403,
                 "read-only")  # fmt: skip


def test_404_409_405(api: httpx.Client) -> None:
    assert_error(api.get("/api/v1/customers/nobody"), 404, "no customer 'nobody'")
    assert_error(api.get("/api/v1/no-such-thing"), 404)
    assert_error(api.post("/api/v1/customers", json={"name": "acme", "currency": "HKD"}), 409,
                 "already exists")  # fmt: skip
    assert_error(api.delete("/api/v1/customers"), 405, "not allowed")
