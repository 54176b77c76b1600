"""Topic rules (the rules engine) and their HTTP destinations.

Revision ID: 0013
Revises: 0012

* ``topic_rules``: one row per rule, keyed by name: its SQL and the FROM clause's topic
  filter, SQL version, description, enabled flag, and its actions and error action as the
  API received them (AWS's Action shapes, JSON).
* ``topic_rule_destinations``: one row per HTTP destination, keyed by the id at the end of
  its ARN: the confirmation URL (unique), its status, and the token the confirmation
  handshake sent to it.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None


def _name(length: int = 128) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "topic_rules",
        sa.Column("name", _name(), nullable=False),
        sa.Column("sql", sa.Text(), nullable=False),
        sa.Column("topic_pattern", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("sql_version", sa.String(16), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("error_action", sa.JSON(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("last_modified", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_topic_rules"),
    )
    op.create_table(
        "topic_rule_destinations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("confirmation_url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=False),
        sa.Column("confirmation_token", sa.String(64), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("last_updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_topic_rule_destinations"),
        sa.UniqueConstraint("confirmation_url",
                            name="uq_topic_rule_destinations_confirmation_url"),
        sa.UniqueConstraint("confirmation_token",
                            name="uq_topic_rule_destinations_confirmation_token"),
    )


def downgrade() -> None:
    op.drop_table("topic_rule_destinations")
    op.drop_table("topic_rules")
