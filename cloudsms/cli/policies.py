"""``cloudsms policies …``: per-destination registration rules (templates, signatures, senders).

The options of ``set`` are declared with the admin API's (``cloudsms.services.options``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from cloudsms.cli._common import say, state, table, with_options
from cloudsms.services.options import POLICY_SET

app = typer.Typer(help="Country policies: what a destination requires before it accepts content.")

_COLUMNS = [
    "cc", "region", "template", "signature", "registered sender", "sender format",
    "opt-out words", "opt-in words", "note",
]  # fmt: skip

CountryCode = Annotated[str, typer.Argument(help="Calling code, e.g. 86.")]


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every destination with rules."""
    table(
        "Country policies",
        _COLUMNS,
        (
            [
                f"+{p.country_code}",
                p.region,
                p.requires_template,
                p.requires_signature,
                p.requires_registered_sender,
                p.sender_format,
                _words(p.opt_out_keywords),
                _words(p.opt_in_keywords),
                p.note,
            ]
            for p in state(ctx).operator.policies()
        ),
    )


def _words(keywords: tuple[str, ...] | None) -> str:
    return "default" if keywords is None else ",".join(keywords)


@app.command("set")
@with_options(*POLICY_SET)
def set_(ctx: typer.Context, country_code: CountryCode, **rules: Any) -> None:
    """Create or change a destination's rules; options not given keep their value."""
    policy = state(ctx).operator.set_policy(country_code, **rules)
    say(f"policy for +{policy.country_code} ({policy.region}) saved")


@app.command("delete")
def delete(ctx: typer.Context, country_code: CountryCode) -> None:
    """Remove a destination's rules (it then needs no registration)."""
    state(ctx).operator.delete_policy(country_code)
    say(f"policy for +{country_code.lstrip('+')} deleted")
