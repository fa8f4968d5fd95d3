"""Roles: a read-only token reads everything and changes nothing, through every operation."""

from __future__ import annotations

import re

from conftest import Admin, ok

from cloudsms.admin.operations import OPERATIONS


def _url(path: str) -> str:
    return "/api/v1" + re.sub(r"\{[a-z_]+\}", "x", path).replace(
        "/registrations/x", "/registrations/templates"
    )


def test_read_only_token_cannot_change_anything(admin: Admin) -> None:
    ok(
        admin.api.post("/api/v1/customers", json={"name": "x", "currency": "HKD", "balance": "5"}),
        201,
    )
    before = admin.store.config_version()
    audit_before = len(admin.store.list_audit())
    changes = [op for op in OPERATIONS if op.changes]
    assert len(changes) > 25
    with admin.ro as ro:
        for op in changes:
            response = ro.request(
                op.method, _url(op.path), json={"amount": "1000"} if op.method != "DELETE" else None
            )
            assert response.status_code == 403, (op.id, response.text)
    assert admin.store.config_version() == before
    assert admin.store.get_customer("x").balance_micros == 5_000_000
    assert len(admin.store.list_audit()) == audit_before


def test_read_only_token_reads_everything(admin: Admin) -> None:
    ok(admin.api.post("/api/v1/customers", json={"name": "x", "currency": "HKD"}), 201)
    with admin.ro as ro:
        for path in ("/customers", "/customers/x", "/customers/x/ledger", "/price-lists", "/routes",
                     "/connectors", "/connector-status", "/blacklist", "/policies",
                     "/registrations/templates", "/messages", "/stats/summary", "/stats/series",
                     "/audit"):  # fmt: skip
            assert ro.get("/api/v1" + path).status_code == 200, path


def test_revoked_token_stops_at_once(admin: Admin) -> None:
    assert admin.api.get("/api/v1/customers").status_code == 200
    admin.store.revoke_admin_token("alice")
    assert admin.api.get("/api/v1/customers").status_code == 401
