"""Where each cluster node is in the cluster's message stream.

Revision ID: 0012
Revises: 0011

* ``mqtt_stream_cursors``: per node, the sequence number of the last message of the
  cluster's JetStream stream it applied, written in the same transaction as the deliveries
  that message made (``bastion.cluster``). A node that restarts, or adopts another node's
  session, replays the stream from there.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "mqtt_stream_cursors",
        sa.Column("node", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("node", name="pk_mqtt_stream_cursors"),
    )


def downgrade() -> None:
    op.drop_table("mqtt_stream_cursors")
