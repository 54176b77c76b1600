"""Device Defender detect: security profiles, metrics, violations.

Revision ID: 0008
Revises: 0007

* ``detect_security_profiles``: profiles (behaviors, alert targets, targets as a JSON
  document) with their version;
* ``detect_custom_metrics``, ``detect_dimensions``;
* ``detect_metric_values``: every datapoint per thing, metric and dimension (retention
  is applied by the detect service);
* ``detect_violations``, ``detect_violation_events``: alarms (active or ended) with
  their verification state, and their in-alarm / alarm-cleared / alarm-invalidated
  events.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def _name(length: int = 128) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "detect_security_profiles",
        sa.Column("name", _name(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_detect_security_profiles"),
    )
    op.create_table(
        "detect_custom_metrics",
        sa.Column("name", _name(), nullable=False),
        sa.Column("metric_type", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(128), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_detect_custom_metrics"),
    )
    op.create_table(
        "detect_dimensions",
        sa.Column("name", _name(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("string_values", sa.JSON(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_detect_dimensions"),
    )
    op.create_table(
        "detect_metric_values",
        sa.Column("thing_name", _name(), nullable=False),
        sa.Column("metric", _name(), nullable=False),
        sa.Column("dimension", _name(), nullable=False),
        sa.Column("timestamp", _timestamp(), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("thing_name", "metric", "dimension", "timestamp",
                                name="pk_detect_metric_values"),
    )
    op.create_index("ix_detect_metric_values_timestamp", "detect_metric_values",
                    ["timestamp"])
    op.create_table(
        "detect_violations",
        sa.Column("violation_id", sa.String(128), nullable=False),
        sa.Column("thing_name", _name(), nullable=False),
        sa.Column("security_profile_name", _name(), nullable=False),
        sa.Column("behavior_name", _name(), nullable=False),
        sa.Column("behavior", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("start_time", _timestamp(), nullable=False),
        sa.Column("last_time", _timestamp(), nullable=False),
        sa.Column("last_value", sa.JSON(), nullable=True),
        sa.Column("verification_state", sa.String(32), nullable=True),
        sa.Column("verification_description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("violation_id", name="pk_detect_violations"),
    )
    op.create_index("ix_detect_violations_thing_name", "detect_violations", ["thing_name"])
    op.create_index("ix_detect_violations_active", "detect_violations", ["active"])
    op.create_table(
        "detect_violation_events",
        sa.Column("violation_id", sa.String(128), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("timestamp", _timestamp(), nullable=False),
        sa.Column("thing_name", _name(), nullable=False),
        sa.Column("security_profile_name", _name(), nullable=False),
        sa.Column("behavior", sa.JSON(), nullable=False),
        sa.Column("metric_value", sa.JSON(), nullable=True),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("violation_id", "event_type",
                                name="pk_detect_violation_events"),
    )
    op.create_index("ix_detect_violation_events_timestamp", "detect_violation_events",
                    ["timestamp"])


def downgrade() -> None:
    op.drop_table("detect_violation_events")
    op.drop_table("detect_violations")
    op.drop_table("detect_metric_values")
    op.drop_table("detect_dimensions")
    op.drop_table("detect_custom_metrics")
    op.drop_table("detect_security_profiles")
