"""Role aliases.

Revision ID: 0015
Revises: 0014

* ``role_aliases``: one row per role alias, keyed by name: the role ARN its temporary
  credentials carry, how long they last, and its dates. Its tags live in
  ``resource_tags`` (type ``rolealias``), deleted with it by the repository.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None


def _name(length: int = 128) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "role_aliases",
        sa.Column("name", _name(), nullable=False),
        sa.Column("role_arn", sa.String(2048), nullable=False),
        sa.Column("credential_duration_seconds", sa.Integer(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_role_aliases"),
    )


def downgrade() -> None:
    op.drop_table("role_aliases")
