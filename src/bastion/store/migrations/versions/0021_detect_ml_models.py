"""ML Detect: model state per behavior, and what explains a violation.

Revision ID: 0021
Revises: 0019

* ``detect_models``: one row per ML behavior (security profile, behavior name): its
  metric, confidence level and the model's state (numpy arrays or JSON, compressed by
  the detect service; opaque here), written every few minutes and when Bastion stops.
* ``detect_violations.details`` and ``detect_violation_events.details``: the explanation
  of an ML violation (detector, observed value, the peer group's and the device's
  ranges, accumulated excess) as JSON; null for static and statistical behaviors.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision: str | None = "0019"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "detect_models",
        sa.Column("security_profile_name",
                  sa.String(128).with_variant(sa.String(128, collation="C"), "postgresql"),
                  nullable=False),
        sa.Column("behavior_name",
                  sa.String(128).with_variant(sa.String(128, collation="C"), "postgresql"),
                  nullable=False),
        sa.Column("metric", sa.String(128), nullable=False),
        sa.Column("confidence", sa.String(16), nullable=False),
        sa.Column("state", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("security_profile_name", "behavior_name",
                                name="pk_detect_models"),
    )
    with op.batch_alter_table("detect_violations") as batch:
        batch.add_column(sa.Column("details", sa.JSON(), nullable=True))
    with op.batch_alter_table("detect_violation_events") as batch:
        batch.add_column(sa.Column("details", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("detect_violation_events") as batch:
        batch.drop_column("details")
    with op.batch_alter_table("detect_violations") as batch:
        batch.drop_column("details")
    op.drop_table("detect_models")
