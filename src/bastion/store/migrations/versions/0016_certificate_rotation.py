"""Certificate rotation: per-thing-group rotation policies and the rotations themselves.

Revision ID: 0016
Revises: 0015

* ``rotation_policies``: one row per thing group that has a rotation policy; every
  setting is nullable (NULL: the fleet default of the configuration). Deleting the group
  deletes its policy.
* ``certificate_rotations``: one row per rotation of one thing's certificate: the job
  that carries it, the old and (once issued) the new certificate, its status, why it
  failed, and the times of each step (issued, new certificate seen, job succeeded, old
  certificate due to be deactivated and revoked). Deleting the thing deletes its rows.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision: str | None = "0015"
branch_labels: str | None = None
depends_on: str | None = None


def _name(length: int = 128) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "rotation_policies",
        sa.Column("group_name", _name(), nullable=False),
        sa.Column("max_age_days", sa.Integer(), nullable=True),
        sa.Column("rotate_before_expiry_days", sa.Integer(), nullable=True),
        sa.Column("deactivate_after_hours", sa.Integer(), nullable=True),
        sa.Column("revoke_after_hours", sa.Integer(), nullable=True),
        sa.Column("start_jobs", sa.Boolean(), nullable=True),
        sa.Column("alert_targets", sa.JSON(), nullable=True),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("group_name", name="pk_rotation_policies"),
        sa.ForeignKeyConstraint(["group_name"], ["thing_groups.name"],
                                name="fk_rotation_policies_group_name_thing_groups",
                                ondelete="CASCADE"),
    )
    op.create_table(
        "certificate_rotations",
        sa.Column("rotation_id", sa.String(36), nullable=False),
        sa.Column("thing_name", _name(), nullable=False),
        sa.Column("job_id", _name(64), nullable=False),
        sa.Column("old_certificate_id", sa.String(64), nullable=False),
        sa.Column("new_certificate_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("issued_at", _timestamp(), nullable=True),
        sa.Column("new_connected_at", _timestamp(), nullable=True),
        sa.Column("succeeded_at", _timestamp(), nullable=True),
        sa.Column("deactivate_at", _timestamp(), nullable=True),
        sa.Column("revoke_at", _timestamp(), nullable=True),
        sa.Column("finished_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("rotation_id", name="pk_certificate_rotations"),
        sa.UniqueConstraint("new_certificate_id",
                            name="uq_certificate_rotations_new_certificate_id"),
        sa.ForeignKeyConstraint(["thing_name"], ["things.name"],
                                name="fk_certificate_rotations_thing_name_things",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_certificate_rotations_thing_name", "certificate_rotations",
                    ["thing_name", "created_at"])
    op.create_index("ix_certificate_rotations_old_certificate_id", "certificate_rotations",
                    ["old_certificate_id"])
    op.create_index("ix_certificate_rotations_status", "certificate_rotations", ["status"])
    op.create_index("ix_certificate_rotations_job_id", "certificate_rotations", ["job_id"])


def downgrade() -> None:
    for index in ("job_id", "status", "old_certificate_id", "thing_name"):
        op.drop_index(f"ix_certificate_rotations_{index}", table_name="certificate_rotations")
    op.drop_table("certificate_rotations")
    op.drop_table("rotation_policies")
