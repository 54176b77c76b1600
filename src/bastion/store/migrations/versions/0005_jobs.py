"""Jobs, job executions and job templates.

Revision ID: 0005
Revises: 0004

* ``jobs``: one row per job, its configurations as AWS spells them (JSON), and the state
  of its rollout window; ``job_targets``: the things and thing groups it targets, by name
  (no foreign key: a target may be deleted while the job lives on).
* ``job_executions``: one row per (job, thing, execution number); the step and
  in-progress deadlines are indexed for the timeout sweep. Deleting a thing deletes its
  executions.
* ``job_rollout_queue``: targets resolved but not yet released (rollout rate).
* ``job_templates``.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def _name(length: int = 128) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("job_id", _name(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("document", sa.Text(), nullable=True),
        sa.Column("document_source", sa.String(1350), nullable=True),
        sa.Column("target_selection", sa.String(16), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("force_canceled", sa.Boolean(), nullable=False),
        sa.Column("reason_code", sa.String(128), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("presigned_url_config", sa.JSON(), nullable=True),
        sa.Column("rollout_config", sa.JSON(), nullable=True),
        sa.Column("abort_config", sa.JSON(), nullable=True),
        sa.Column("in_progress_timeout_minutes", sa.BigInteger(), nullable=True),
        sa.Column("template_id", _name(64), nullable=True),
        sa.Column("rollout_window_start", _timestamp(), nullable=True),
        sa.Column("rollout_window_count", sa.Integer(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("last_updated_at", _timestamp(), nullable=False),
        sa.Column("completed_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name="pk_jobs"),
    )
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_table(
        "job_targets",
        sa.Column("job_id", _name(64), nullable=False),
        sa.Column("target_type", sa.String(16), nullable=False),
        sa.Column("target_name", _name(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "target_type", "target_name", name="pk_job_targets"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.job_id"], name="fk_job_targets_job_id_jobs",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_job_targets_target", "job_targets", ["target_type", "target_name"])
    op.create_table(
        "job_executions",
        sa.Column("job_id", _name(64), nullable=False),
        sa.Column("thing_name", _name(), nullable=False),
        sa.Column("execution_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("force_canceled", sa.Boolean(), nullable=False),
        sa.Column("status_details", sa.JSON(), nullable=False),
        sa.Column("queued_at", _timestamp(), nullable=False),
        sa.Column("started_at", _timestamp(), nullable=True),
        sa.Column("last_updated_at", _timestamp(), nullable=False),
        sa.Column("version_number", sa.BigInteger(), nullable=False),
        sa.Column("step_deadline", _timestamp(), nullable=True),
        sa.Column("in_progress_deadline", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", "thing_name", "execution_number",
                                name="pk_job_executions"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.job_id"],
                                name="fk_job_executions_job_id_jobs", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["thing_name"], ["things.name"],
                                name="fk_job_executions_thing_name_things", ondelete="CASCADE"),
    )
    op.create_index("ix_job_executions_step_deadline", "job_executions", ["step_deadline"])
    op.create_index("ix_job_executions_in_progress_deadline", "job_executions",
                    ["in_progress_deadline"])
    op.create_index("ix_job_executions_thing", "job_executions", ["thing_name", "status"])
    op.create_table(
        "job_rollout_queue",
        sa.Column("job_id", _name(64), nullable=False),
        sa.Column("thing_name", _name(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "thing_name", name="pk_job_rollout_queue"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.job_id"],
                                name="fk_job_rollout_queue_job_id_jobs", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["thing_name"], ["things.name"],
                                name="fk_job_rollout_queue_thing_name_things",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_job_rollout_queue_thing_name", "job_rollout_queue", ["thing_name"])
    op.create_index("ix_job_rollout_queue_order", "job_rollout_queue", ["job_id", "position"])
    op.create_table(
        "job_templates",
        sa.Column("template_id", _name(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("document", sa.Text(), nullable=True),
        sa.Column("document_source", sa.String(1350), nullable=True),
        sa.Column("presigned_url_config", sa.JSON(), nullable=True),
        sa.Column("rollout_config", sa.JSON(), nullable=True),
        sa.Column("abort_config", sa.JSON(), nullable=True),
        sa.Column("in_progress_timeout_minutes", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("template_id", name="pk_job_templates"),
    )


def downgrade() -> None:
    for table in ("job_templates", "job_rollout_queue", "job_executions", "job_targets",
                  "jobs"):
        op.drop_table(table)
