"""Dynamic thing groups: a thing group may carry a fleet-indexing query.

Revision ID: 0019
Revises: 0018

* ``thing_groups.query_string``: the query that decides the group's members (NULL: a
  static group); ``index_name`` and ``query_version`` as CreateDynamicThingGroup gave
  them. The members of a dynamic group are rows of ``thing_group_members`` like any
  other, written by the fleet index as things come to match or stop matching.

The fleet-indexing configuration itself is a row of ``settings`` (no table of its own).

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision: str | None = "0018"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("thing_groups", sa.Column("query_string", sa.Text(), nullable=True))
    op.add_column("thing_groups", sa.Column("index_name", sa.String(128), nullable=True))
    op.add_column("thing_groups", sa.Column("query_version", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("thing_groups") as batch:
        batch.drop_column("query_version")
        batch.drop_column("index_name")
        batch.drop_column("query_string")
