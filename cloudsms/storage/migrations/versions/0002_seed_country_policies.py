"""Seed data: the config version row and the document's country registration table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

The rows restate the appendix 短信内容注册 of the CloudSMS Web API v2.4 document. They are data,
not code: operators edit them with ``cloudsms policies set``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TEMPLATE_AND_SENDER = "templates and sender IDs (OA) must be registered"
_ROWS = [
    # country_code, region, template, signature, registered sender, sender format, note
    (86, "CN", True, True, True, "any", _TEMPLATE_AND_SENDER),
    (251, "ET", True, False, True, "any", _TEMPLATE_AND_SENDER),
    (
        852,
        "HK",
        False,
        False,
        False,
        "any",
        "PCCWG needs an alphanumeric OA, CMHK an assigned numeric OA: enforced per carrier",
    ),
    (91, "IN", True, False, True, "any", _TEMPLATE_AND_SENDER),
    (62, "ID", True, False, True, "any", _TEMPLATE_AND_SENDER),
    (856, "LA", True, False, True, "any", _TEMPLATE_AND_SENDER),
    (60, "MY", True, False, True, "any", _TEMPLATE_AND_SENDER),
    (63, "PH", True, False, True, "any", _TEMPLATE_AND_SENDER),
    (7, "RU", True, False, True, "any", _TEMPLATE_AND_SENDER),
    (966, "SA", True, False, True, "any", _TEMPLATE_AND_SENDER),
    (82, "KR", False, False, False, "numeric", "numeric sender IDs only"),
    (66, "TH", True, False, True, "any", _TEMPLATE_AND_SENDER),
    (971, "AE", True, False, True, "any", _TEMPLATE_AND_SENDER),
]


def upgrade() -> None:
    config_version = sa.table("config_version", sa.column("id"), sa.column("version"))
    op.bulk_insert(config_version, [{"id": 1, "version": 1}])
    policies = sa.table(
        "country_policies",
        sa.column("country_code"),
        sa.column("region"),
        sa.column("requires_template"),
        sa.column("requires_signature"),
        sa.column("requires_registered_sender"),
        sa.column("sender_format"),
        sa.column("note"),
    )
    op.bulk_insert(
        policies,
        [
            {
                "country_code": cc,
                "region": region,
                "requires_template": template,
                "requires_signature": signature,
                "requires_registered_sender": sender,
                "sender_format": fmt,
                "note": note,
            }
            for cc, region, template, signature, sender, fmt, note in _ROWS
        ],
    )


def downgrade() -> None:
    op.execute("DELETE FROM country_policies")
    op.execute("DELETE FROM config_version")
