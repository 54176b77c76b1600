"""Access keys of the control-plane API, and the hash-chained trail of its calls.

Revision ID: 0003
Revises: 0002

* ``access_keys``: one row per API access key; the secret is only ever stored sealed
  (:meth:`bastion.pki.Keystore.seal`).
* ``trail_records``: the append-only trail. ``sequence`` is the primary key and
  ``previous_hash`` is unique, so two writers can never fork the chain: a second record
  claiming the same place breaks a constraint.
* ``trail_head``: one row per chain (``"main"``) holding the last sequence and hash;
  writers lock it (``SELECT … FOR UPDATE``) to serialise appends across nodes, and
  ``verify`` uses it to notice a truncated tail. It starts empty: the first append
  creates it.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "access_keys",
        sa.Column("access_key_id", sa.String(20), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("description", sa.String(256), nullable=False),
        sa.Column("sealed_secret", sa.LargeBinary(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("access_key_id", name="pk_access_keys"),
    )
    op.create_table(
        "trail_records",
        sa.Column("sequence", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("time", _timestamp(), nullable=False),
        sa.Column("access_key_id", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=True),
        sa.Column("source_ip", sa.String(64), nullable=False),
        sa.Column("service", sa.String(64), nullable=False),
        sa.Column("operation", sa.String(128), nullable=False),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("error_code", sa.String(128), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=False),
        sa.Column("previous_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("sequence", name="pk_trail_records"),
        sa.UniqueConstraint("previous_hash", name="uq_trail_records_previous_hash"),
    )
    op.create_index("ix_trail_records_time", "trail_records", ["time"])
    op.create_table(
        "trail_head",
        sa.Column("chain", sa.String(16), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("chain", name="pk_trail_head"),
    )


def downgrade() -> None:
    for table in ("trail_head", "trail_records", "access_keys"):
        op.drop_table(table)
