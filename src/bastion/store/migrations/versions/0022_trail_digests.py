"""Signed digests of the trail, and how far each sink has received them.

Revision ID: 0022
Revises: 0021

* ``trail_digests``: one row per signed digest (number 1, 2, 3, ...): its file name, the
  trail sequences it covers, its end time and the signed document itself, kept so that
  a sink that failed is sent it again and the next digest chains to it.
* ``trail_digest_deliveries``: per sink (a local directory, an S3 bucket and prefix),
  the last digest number delivered there.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision: str | None = "0021"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "trail_digests",
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("first_sequence", sa.BigInteger(), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("number", name="pk_trail_digests"),
        sa.UniqueConstraint("name", name="uq_trail_digests_name"),
    )
    op.create_table(
        "trail_digest_deliveries",
        sa.Column("sink", sa.String(512), nullable=False),
        sa.Column("delivered_through", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("sink", name="pk_trail_digest_deliveries"),
    )


def downgrade() -> None:
    op.drop_table("trail_digest_deliveries")
    op.drop_table("trail_digests")
