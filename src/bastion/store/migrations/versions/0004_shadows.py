"""Device shadows (classic and named).

Revision ID: 0004
Revises: 0003

* ``shadows``: one row per (thing name, shadow name); the classic shadow's name is
  ``""``. ``state`` and ``state_metadata`` hold JSON text; a deleted shadow keeps its row
  with both NULL and ``deleted_at`` set, so that a shadow re-created soon after continues
  the old version sequence (as in AWS IoT). No foreign key to ``things``: shadows are
  keyed by name and outlive the thing.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def _name(length: int = 128) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "shadows",
        sa.Column("thing_name", _name(), nullable=False),
        sa.Column("shadow_name", _name(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.Text(), nullable=True),
        sa.Column("state_metadata", sa.Text(), nullable=True),
        sa.Column("deleted_at", _timestamp(), nullable=True),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("thing_name", "shadow_name", name="pk_shadows"),
    )


def downgrade() -> None:
    op.drop_table("shadows")
