"""Country policies and what customers register under them: ``RegistrationOps``.

A signature, template or sender ID is registered ``pending`` and then approved or rejected by
an operator; a country policy says which of them a country requires. Operator changes follow
the contract in :mod:`cloudsms.storage.config_ops`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, Table, delete, insert, select, update

from cloudsms.domain.models import ApprovalStatus, CountryPolicy
from cloudsms.exceptions import Conflict, NotFound
from cloudsms.storage import tables as t
from cloudsms.storage.base import StoreBase
from cloudsms.storage.config_ops import CustomerRef, customer_id_of, eq_or_null

RegistrationKind = Literal["signature", "template", "sender"]

#: kind → (table, column holding the registered text)
_REGISTRATIONS: dict[str, tuple[Table, str]] = {
    "signature": (t.signatures, "text"),
    "template": (t.templates, "body"),
    "sender": (t.sender_ids, "sender"),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    """A signature, template or sender ID and where it is in its approval life cycle."""

    id: int
    kind: RegistrationKind
    customer_id: int
    customer: str
    text: str
    country_code: int | None
    status: ApprovalStatus
    note: str | None
    created_ms: int
    decided_ms: int | None


class RegistrationOps(StoreBase):
    """Named operations on country policies, signatures, templates and sender IDs."""

    # -- country policies -------------------------------------------------------------------

    def list_policies(self) -> list[CountryPolicy]:
        with self._config_read() as conn:
            return list(policies_by_code(conn).values())

    def get_policy(self, country_code: int) -> CountryPolicy | None:
        with self._config_read() as conn:
            return policies_by_code(conn, country_code).get(country_code)

    def upsert_policy(self, policy: CountryPolicy) -> None:
        values = {
            "region": policy.region,
            "requires_template": policy.requires_template,
            "requires_signature": policy.requires_signature,
            "requires_registered_sender": policy.requires_registered_sender,
            "sender_format": policy.sender_format,
            "note": policy.note,
            "opt_out_keywords": _keywords_text(policy.opt_out_keywords),
            "opt_in_keywords": _keywords_text(policy.opt_in_keywords),
        }
        with self._config_change() as conn:
            c = t.country_policies.c
            where = c.country_code == policy.country_code
            if not conn.execute(update(t.country_policies).where(where).values(values)).rowcount:
                conn.execute(
                    insert(t.country_policies).values(country_code=policy.country_code, **values)
                )

    def delete_policy(self, country_code: int) -> None:
        with self._config_change() as conn:
            c = t.country_policies.c
            gone = conn.execute(delete(t.country_policies).where(c.country_code == country_code))
            if gone.rowcount == 0:
                raise NotFound(f"no country policy for +{country_code}")

    # -- signatures, templates, sender IDs --------------------------------------------------

    def add_signature(self, ref: CustomerRef, text: str) -> Registration:
        return self._register("signature", ref, text, None)

    def add_template(
        self, ref: CustomerRef, body: str, country_code: int | None = None
    ) -> Registration:
        return self._register("template", ref, body, country_code)

    def add_sender(
        self, ref: CustomerRef, sender: str, country_code: int | None = None
    ) -> Registration:
        return self._register("sender", ref, sender, country_code)

    def approve_signature(self, id: int, note: str | None = None) -> Registration:
        return self._decide("signature", id, "approved", note)

    def reject_signature(self, id: int, note: str | None = None) -> Registration:
        return self._decide("signature", id, "rejected", note)

    def approve_template(self, id: int, note: str | None = None) -> Registration:
        return self._decide("template", id, "approved", note)

    def reject_template(self, id: int, note: str | None = None) -> Registration:
        return self._decide("template", id, "rejected", note)

    def approve_sender(self, id: int, note: str | None = None) -> Registration:
        return self._decide("sender", id, "approved", note)

    def reject_sender(self, id: int, note: str | None = None) -> Registration:
        return self._decide("sender", id, "rejected", note)

    def list_registrations(
        self,
        kind: RegistrationKind,
        customer: CustomerRef | None = None,
        status: ApprovalStatus | None = None,
    ) -> list[Registration]:
        """Signatures, templates or sender IDs, optionally of one customer and/or one status."""
        table, _ = _REGISTRATIONS[kind]
        with self._config_read() as conn:
            conditions = []
            if customer is not None:
                conditions.append(table.c.customer_id == customer_id_of(conn, customer))
            if status is not None:
                conditions.append(table.c.status == status)
            return _registrations(conn, kind, *conditions)

    def _register(
        self, kind: RegistrationKind, ref: CustomerRef, text: str, country_code: int | None
    ) -> Registration:
        table, column = _REGISTRATIONS[kind]
        duplicate = f"customer {ref!r} already has this {kind}"
        now = self.now_ms()
        with self._config_change(duplicate) as conn:
            customer_id = customer_id_of(conn, ref)
            match = [table.c.customer_id == customer_id, table.c[column] == text]
            if kind != "signature":
                match.append(eq_or_null(table.c.country_code, country_code))
            if conn.scalar(select(table.c.id).where(*match)):
                raise Conflict(duplicate)
            values: dict[str, Any] = {"customer_id": customer_id, column: text}
            if kind != "signature":
                values["country_code"] = country_code
            new_id = conn.execute(
                insert(table)
                .values(status="pending", created_ms=now, **values)
                .returning(table.c.id)
            ).scalar_one()
            return _registrations(conn, kind, table.c.id == new_id)[0]

    def _decide(
        self, kind: RegistrationKind, id: int, status: ApprovalStatus, note: str | None
    ) -> Registration:
        table, _ = _REGISTRATIONS[kind]
        with self._config_change() as conn:
            current = conn.scalar(select(table.c.status).where(table.c.id == id))
            if current is None:
                raise NotFound(f"no {kind} with id {id}")
            if current == status:
                raise Conflict(f"{kind} {id} is already {status}")
            conn.execute(
                update(table)
                .where(table.c.id == id)
                .values(status=status, note=note, decided_ms=self.now_ms())
            )
            return _registrations(conn, kind, table.c.id == id)[0]


def policies_by_code(conn: Connection, country_code: int | None = None) -> dict[int, CountryPolicy]:
    c = t.country_policies.c
    query = select(t.country_policies).order_by(c.country_code)
    if country_code is not None:
        query = query.where(c.country_code == country_code)
    return {
        row["country_code"]: CountryPolicy(
            **{
                **row,
                "opt_out_keywords": _keywords(row["opt_out_keywords"]),
                "opt_in_keywords": _keywords(row["opt_in_keywords"]),
            }
        )
        for row in conn.execute(query).mappings()
    }


def _keywords_text(keywords: tuple[str, ...] | None) -> str | None:
    """Keywords as stored: comma-separated; None (the defaults) stays NULL."""
    return None if keywords is None else ",".join(keywords)


def _keywords(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(k for k in text.split(",") if k)


def _registrations(conn: Connection, kind: RegistrationKind, *where: Any) -> list[Registration]:
    table, column = _REGISTRATIONS[kind]
    query = (
        select(table, t.customers.c.name.label("customer_name"))
        .join(t.customers, table.c.customer_id == t.customers.c.id)
        .where(*where)
        .order_by(table.c.id)
    )
    return [
        Registration(
            id=r["id"],
            kind=kind,
            customer_id=r["customer_id"],
            customer=r["customer_name"],
            text=r[column],
            country_code=r.get("country_code"),
            status=r["status"],
            note=r["note"],
            created_ms=r["created_ms"],
            decided_ms=r["decided_ms"],
        )
        for r in conn.execute(query).mappings()
    ]
