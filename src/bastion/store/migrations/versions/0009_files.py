"""Uploaded files (job documents, firmware) served by Bastion.

Revision ID: 0009
Revises: 0008

* ``files``: one row per uploaded file, keyed by its name; the bytes are kept in the data
  directory (``files/<name>``), the row holds their size and SHA-256.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def _name(length: int = 128) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("name", _name(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_files"),
    )


def downgrade() -> None:
    op.drop_table("files")
