"""Threat detection: findings and threat lists.

Revision ID: 0024
Revises: 0022

* ``threat_findings``: one row per finding (a type and the resource it is about),
  aggregated: first and last seen, count, archived, and a JSON document with the
  evidence, source address, access key and API call.
* ``threat_intel_sets``: the threat lists an operator imported (GuardDuty's
  CreateThreatIntelSet), with their parsed entries (addresses and networks).

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision: str | None = "0022"
branch_labels: str | None = None
depends_on: str | None = None


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "threat_findings",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("first_seen", _timestamp(), nullable=False),
        sa.Column("last_seen", _timestamp(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("updated_at", _timestamp(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_threat_findings"),
    )
    op.create_index("ix_threat_findings_last_seen", "threat_findings", ["last_seen"])
    op.create_table(
        "threat_intel_sets",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_threat_intel_sets"),
    )


def downgrade() -> None:
    op.drop_table("threat_intel_sets")
    op.drop_index("ix_threat_findings_last_seen", table_name="threat_findings")
    op.drop_table("threat_findings")
