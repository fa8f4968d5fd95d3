"""``cloudsms policies …``: per-destination registration rules (templates, signatures, senders)."""

from __future__ import annotations

from typing import Annotated

import typer

from cloudsms.cli._common import say, state, table

app = typer.Typer(help="Country policies: what a destination requires before it accepts content.")

CountryCode = Annotated[str, typer.Argument(help="Calling code, e.g. 86.")]


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every destination with rules."""
    table(
        "Country policies",
        ["cc", "region", "template", "signature", "registered sender", "sender format", "note"],
        (
            [
                f"+{p.country_code}",
                p.region,
                p.requires_template,
                p.requires_signature,
                p.requires_registered_sender,
                p.sender_format,
                p.note,
            ]
            for p in state(ctx).operator.policies()
        ),
    )


@app.command("set")
def set_(
    ctx: typer.Context,
    country_code: CountryCode,
    template: Annotated[
        bool | None, typer.Option("--template/--no-template", help="Require an approved template.")
    ] = None,
    signature: Annotated[
        bool | None,
        typer.Option("--signature/--no-signature", help="Require an approved signature."),
    ] = None,
    registered_sender: Annotated[
        bool | None,
        typer.Option(
            "--registered-sender/--no-registered-sender", help="Require an approved sender ID."
        ),
    ] = None,
    sender_format: Annotated[
        str | None, typer.Option(help="Sender IDs accepted: any, numeric or alpha.")
    ] = None,
    note: Annotated[str | None, typer.Option(help='Free text ("none" clears).')] = None,
) -> None:
    """Create or change a destination's rules; options not given keep their value."""
    policy = state(ctx).operator.set_policy(
        country_code,
        requires_template=template,
        requires_signature=signature,
        requires_registered_sender=registered_sender,
        sender_format=sender_format,
        note=note,
    )
    say(f"policy for +{policy.country_code} ({policy.region}) saved")


@app.command("delete")
def delete(ctx: typer.Context, country_code: CountryCode) -> None:
    """Remove a destination's rules (it then needs no registration)."""
    state(ctx).operator.delete_policy(country_code)
    say(f"policy for +{country_code.lstrip('+')} deleted")
