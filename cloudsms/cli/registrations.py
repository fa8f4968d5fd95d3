"""``cloudsms signatures|templates|senders …``: registration, then approval or rejection.

The three groups share one life cycle (pending → approved | rejected, reversible), so one factory
builds all three; only the noun and whether a country applies differ. The inputs are declared
with the admin API's (``cloudsms.services.options``); the registration id, a path segment there,
uses Typer's default-value form here: with postponed annotations, an ``Annotated`` alias local to
the factory could not be resolved by Typer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import typer

from cloudsms.cli._common import say, state, table, with_options
from cloudsms.services.options import (
    DECISION,
    REGISTRATION_COUNTRY,
    REGISTRATION_CUSTOMER,
    REGISTRATION_LIST,
    REGISTRATION_TEXT,
)
from cloudsms.storage.registration_ops import RegistrationKind


def registration_app(kind: RegistrationKind, noun: str, with_country: bool) -> typer.Typer:
    """A Typer group with add / approve / reject / list for one kind of registration."""
    app = typer.Typer(help=f"Registered {noun}s: add (pending), approve, reject, list.")
    metavar = {"signature": "TEXT", "template": "BODY", "sender": "SENDER"}[kind]
    add_help = f"Register a {noun} for a customer (pending until approved); prints its id."

    def _add(ctx: typer.Context, customer: str, text: str, country: str | None) -> None:
        op = state(ctx).operator
        if kind == "signature":
            item = op.add_signature(customer, text)
        elif kind == "template":
            item = op.add_template(customer, text, country)
        else:
            item = op.add_sender(customer, text, country)
        say(f"{noun} {item.id} added for {customer!r}, pending approval")
        typer.echo(item.id)

    text = dataclasses.replace(REGISTRATION_TEXT, help=f"The {noun}.", metavar=metavar)
    # Signatures apply to every destination: no --country at all.
    country = (REGISTRATION_COUNTRY,) if with_country else ()

    @app.command("add", help=add_help)
    @with_options(REGISTRATION_CUSTOMER, text, *country)
    def add(ctx: typer.Context, **a: Any) -> None:
        _add(ctx, a["customer"], a["text"], a.get("country_code"))

    @app.command("approve", help=f"Approve a {noun}: the accept path honours it within a second.")
    @with_options(*DECISION)
    def approve(
        ctx: typer.Context,
        id: int = typer.Argument(..., help=f"The {noun}'s id."),
        *,
        note: str | None,
    ) -> None:
        state(ctx).operator.decide(kind, id, True, note)
        say(f"{noun} {id} approved")

    @app.command("reject", help=f"Reject a {noun} (also withdraws an approved one).")
    @with_options(*DECISION)
    def reject(
        ctx: typer.Context,
        id: int = typer.Argument(..., help=f"The {noun}'s id."),
        *,
        note: str | None,
    ) -> None:
        state(ctx).operator.decide(kind, id, False, note)
        say(f"{noun} {id} rejected")

    @app.command("list", help=f"Registered {noun}s, optionally of one customer or status.")
    @with_options(*REGISTRATION_LIST)
    def list_(ctx: typer.Context, *, customer: str | None, status: str | None) -> None:
        columns = ["id", "customer", noun, "status", "note"]
        if with_country:
            columns.insert(3, "country")
        rows = []
        for r in state(ctx).operator.registrations(kind, customer, status):
            row: list[object] = [r.id, r.customer, r.text, r.status, r.note]
            if with_country:
                row.insert(3, f"+{r.country_code}" if r.country_code else "all")
            rows.append(row)
        table(f"{noun.capitalize()}s", columns, rows)

    return app
