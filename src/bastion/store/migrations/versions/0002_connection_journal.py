"""Connection journal: who connected with which certificate and client id, and when.

Revision ID: 0002
Revises: 0001

Feeds the audit checks for shared certificates and conflicting client ids, and records a
certificate used by several client ids at once. Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _name(length: int = 128) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "connection_sessions",
        sa.Column("connection_id", sa.String(36), nullable=False),
        sa.Column("session_id", sa.String(36), nullable=False),
        sa.Column("client_id", _name(), nullable=False),
        sa.Column("certificate_id", sa.String(64), nullable=False),
        sa.Column("source_ip", sa.String(64), nullable=False),
        sa.Column("node", _name(), nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disconnected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disconnect_reason", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("connection_id", name="pk_connection_sessions"),
    )
    op.create_index("ix_connection_sessions_certificate", "connection_sessions",
                    ["certificate_id", "connected_at"])
    op.create_index("ix_connection_sessions_client", "connection_sessions",
                    ["client_id", "connected_at"])


def downgrade() -> None:
    op.drop_table("connection_sessions")
