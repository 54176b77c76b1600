"""Device Defender audit: configuration, tasks, findings, suppressions, mitigation.

Revision ID: 0007
Revises: 0006

* ``audit_account_configuration``: one row, the account's audit settings;
* ``audit_tasks``, ``audit_findings``: every audit run and what it found;
* ``audit_scheduled_audits``, ``audit_suppressions``;
* ``audit_mitigation_tasks``, ``audit_mitigation_executions``;
* ``audit_crls``: the CRL sources operators register per issuing CA, with the last CRL;
* ``mitigation_actions``: CreateMitigationAction's actions (shared with Detect);
* ``alert_targets``, ``alert_dead_letters``: notification targets (webhook, e-mail,
  MQTT) and the alerts that could not be delivered.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def _name(length: int = 128) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_account_configuration",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("role_arn", sa.String(2048), nullable=True),
        sa.Column("notification_targets", sa.JSON(), nullable=False),
        sa.Column("check_configurations", sa.JSON(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_account_configuration"),
    )
    op.create_table(
        "audit_tasks",
        sa.Column("task_id", sa.String(40), nullable=False),
        sa.Column("task_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", _timestamp(), nullable=False),
        sa.Column("end_time", _timestamp(), nullable=True),
        sa.Column("scheduled_audit_name", _name(), nullable=True),
        sa.Column("check_names", sa.JSON(), nullable=False),
        sa.Column("check_details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("task_id", name="pk_audit_tasks"),
    )
    op.create_index("ix_audit_tasks_start_time_task_id", "audit_tasks",
                    ["start_time", "task_id"])
    op.create_table(
        "audit_findings",
        sa.Column("finding_id", sa.String(128), nullable=False),
        sa.Column("task_id", sa.String(40), nullable=False),
        sa.Column("check_name", sa.String(128), nullable=False),
        sa.Column("task_start_time", _timestamp(), nullable=False),
        sa.Column("finding_time", _timestamp(), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("resource_key", sa.String(64), nullable=False),
        sa.Column("non_compliant_resource", sa.JSON(), nullable=False),
        sa.Column("related_resources", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reason_code", sa.String(128), nullable=False),
        sa.Column("is_suppressed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("finding_id", name="pk_audit_findings"),
    )
    op.create_index("ix_audit_findings_task_id_finding_id", "audit_findings",
                    ["task_id", "finding_id"])
    op.create_index("ix_audit_findings_check_name_finding_time", "audit_findings",
                    ["check_name", "finding_time"])
    op.create_index("ix_audit_findings_resource_key", "audit_findings", ["resource_key"])
    op.create_table(
        "audit_scheduled_audits",
        sa.Column("name", _name(), nullable=False),
        sa.Column("frequency", sa.String(16), nullable=False),
        sa.Column("day_of_week", sa.String(3), nullable=True),
        sa.Column("day_of_month", sa.String(4), nullable=True),
        sa.Column("check_names", sa.JSON(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.Column("last_run_time", _timestamp(), nullable=True),
        sa.Column("next_run_time", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_audit_scheduled_audits"),
    )
    op.create_index("ix_audit_scheduled_audits_next_run_time", "audit_scheduled_audits",
                    ["next_run_time"])
    op.create_table(
        "audit_suppressions",
        sa.Column("check_name", sa.String(128), nullable=False),
        sa.Column("resource_key", sa.String(64), nullable=False),
        sa.Column("resource_identifier", sa.JSON(), nullable=False),
        sa.Column("expiration_date", _timestamp(), nullable=True),
        sa.Column("suppress_indefinitely", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("check_name", "resource_key", name="pk_audit_suppressions"),
    )
    op.create_table(
        "audit_mitigation_tasks",
        sa.Column("task_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", _timestamp(), nullable=False),
        sa.Column("end_time", _timestamp(), nullable=True),
        sa.Column("target", sa.JSON(), nullable=False),
        sa.Column("actions_mapping", sa.JSON(), nullable=False),
        sa.Column("client_request_token", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("task_id", name="pk_audit_mitigation_tasks"),
    )
    op.create_index("ix_audit_mitigation_tasks_start_time_task_id", "audit_mitigation_tasks",
                    ["start_time", "task_id"])
    op.create_table(
        "audit_mitigation_executions",
        sa.Column("task_id", sa.String(128), nullable=False),
        sa.Column("finding_id", sa.String(128), nullable=False),
        sa.Column("action_name", _name(), nullable=False),
        sa.Column("action_id", sa.String(36), nullable=False),
        sa.Column("check_name", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", _timestamp(), nullable=False),
        sa.Column("end_time", _timestamp(), nullable=True),
        sa.Column("error_code", sa.String(128), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("task_id", "finding_id", "action_name",
                                name="pk_audit_mitigation_executions"),
    )
    op.create_index("ix_audit_mitigation_executions_finding_id",
                    "audit_mitigation_executions", ["finding_id"])
    op.create_table(
        "audit_crls",
        sa.Column("issuer_certificate_id", sa.String(64), nullable=False),
        sa.Column("issuer_certificate_pem", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("crl_der", sa.LargeBinary(), nullable=True),
        sa.Column("this_update", _timestamp(), nullable=True),
        sa.Column("next_update", _timestamp(), nullable=True),
        sa.Column("fetched_at", _timestamp(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("issuer_certificate_id", name="pk_audit_crls"),
    )
    op.create_table(
        "mitigation_actions",
        sa.Column("name", _name(), nullable=False),
        sa.Column("action_id", sa.String(36), nullable=False),
        sa.Column("action_type", sa.String(64), nullable=False),
        sa.Column("role_arn", sa.String(2048), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_mitigation_actions"),
        sa.UniqueConstraint("action_id", name="uq_mitigation_actions_action_id"),
    )
    op.create_table(
        "alert_targets",
        sa.Column("name", _name(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("sealed_secret", sa.LargeBinary(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_alert_targets"),
    )
    op.create_table(
        "alert_dead_letters",
        sa.Column("letter_id", sa.String(36), nullable=False),
        sa.Column("target_name", _name(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("first_attempt_at", _timestamp(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("letter_id", name="pk_alert_dead_letters"),
    )
    op.create_index("ix_alert_dead_letters_target_name", "alert_dead_letters",
                    ["target_name"])
    op.create_index("ix_alert_dead_letters_created_at", "alert_dead_letters", ["created_at"])


def downgrade() -> None:
    for table in (
        "alert_dead_letters",
        "alert_targets",
        "mitigation_actions",
        "audit_crls",
        "audit_mitigation_executions",
        "audit_mitigation_tasks",
        "audit_suppressions",
        "audit_scheduled_audits",
        "audit_findings",
        "audit_tasks",
        "audit_account_configuration",
    ):
        op.drop_table(table)
