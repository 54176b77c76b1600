"""MQTT-based file delivery (streams), and files devices upload for a job.

Revision ID: 0018
Revises: 0017

* ``streams``: one row per stream: its version (1 at creation, one more at each update),
  description, role ARN, and its files as JSON — for each file id, the Bastion file it
  delivers with that file's size and SHA-256 when the stream was made or updated.
* ``file_uploads``: one row per job execution whose device uploaded a file through its
  presigned upload URL (the key makes the URL single-use), naming the file.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision: str | None = "0017"
branch_labels: str | None = None
depends_on: str | None = None


def _name(length: int = 128) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "streams",
        sa.Column("stream_id", _name(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("role_arn", sa.String(2048), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("last_updated_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("stream_id", name="pk_streams"),
    )
    op.create_table(
        "file_uploads",
        sa.Column("job_id", _name(64), nullable=False),
        sa.Column("thing_name", _name(128), nullable=False),
        sa.Column("execution_number", sa.BigInteger(), nullable=False),
        sa.Column("file_name", _name(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("uploaded_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "thing_name", "execution_number",
                                name="pk_file_uploads"),
    )
    op.create_index("ix_file_uploads_thing_name", "file_uploads", ["thing_name"])


def downgrade() -> None:
    op.drop_index("ix_file_uploads_thing_name", table_name="file_uploads")
    op.drop_table("file_uploads")
    op.drop_table("streams")
