"""The schema: one :class:`~sqlalchemy.MetaData` holding every table.

This module describes the schema as the code expects it *now*; the migrations in
``migrations/versions`` create it step by step and are the only thing that touches a real
database's DDL. A test compares the two (alembic's autogenerate finds no difference).

Conventions: names and keys use :func:`name_type` (byte-wise ordering on both backends);
timestamps are :class:`UtcDateTime`; principals and policy targets are stored as
``(type, id)`` pairs (``("cert", "<64 hex>")``, ``("thinggroup", "<name>")``), never as
ARNs, so that changing the configured region or account does not orphan rows.
"""

from __future__ import annotations

import sqlalchemy as sa

from ._types import UtcDateTime, name_type

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

ID_LENGTH = 64  # certificate ids: lowercase hex SHA-256
UUID_LENGTH = 36

thing_types = sa.Table(
    "thing_types",
    metadata,
    sa.Column("name", name_type(), primary_key=True),
    sa.Column("thing_type_id", sa.String(UUID_LENGTH), nullable=False, unique=True),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("searchable_attributes", sa.JSON(), nullable=False),
    sa.Column("deprecated", sa.Boolean(), nullable=False),
    sa.Column("deprecation_date", UtcDateTime(), nullable=True),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
)

things = sa.Table(
    "things",
    metadata,
    sa.Column("name", name_type(), primary_key=True),
    sa.Column("thing_id", sa.String(UUID_LENGTH), nullable=False, unique=True),
    sa.Column(
        "thing_type_name",
        name_type(),
        sa.ForeignKey("thing_types.name", ondelete="RESTRICT"),
        nullable=True,
        index=True,
    ),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
)

thing_attributes = sa.Table(
    "thing_attributes",
    metadata,
    sa.Column(
        "thing_name",
        name_type(),
        sa.ForeignKey("things.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("name", name_type(), primary_key=True),
    sa.Column("value", sa.String(800), nullable=False),
    sa.Column("searchable", sa.Boolean(), nullable=False),
    sa.Index("ix_thing_attributes_name_value", "name", "value"),
)

thing_groups = sa.Table(
    "thing_groups",
    metadata,
    sa.Column("name", name_type(), primary_key=True),
    sa.Column("thing_group_id", sa.String(UUID_LENGTH), nullable=False, unique=True),
    sa.Column(
        "parent_name",
        name_type(),
        sa.ForeignKey("thing_groups.name", ondelete="RESTRICT"),
        nullable=True,
        index=True,
    ),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("attributes", sa.JSON(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
    # A dynamic thing group's query (migration 0019); NULL for a static group.
    sa.Column("query_string", sa.Text(), nullable=True),
    sa.Column("index_name", sa.String(128), nullable=True),
    sa.Column("query_version", sa.String(32), nullable=True),
)

thing_group_members = sa.Table(
    "thing_group_members",
    metadata,
    sa.Column(
        "group_name",
        name_type(),
        sa.ForeignKey("thing_groups.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "thing_name",
        name_type(),
        sa.ForeignKey("things.name", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
)

thing_principals = sa.Table(
    "thing_principals",
    metadata,
    sa.Column(
        "thing_name",
        name_type(),
        sa.ForeignKey("things.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("principal_type", sa.String(16), primary_key=True),
    sa.Column("principal_id", name_type(), primary_key=True),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Index("ix_thing_principals_principal", "principal_type", "principal_id"),
)

ca_certificates = sa.Table(
    "ca_certificates",
    metadata,
    sa.Column("ca_certificate_id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("auto_registration_status", sa.String(16), nullable=False),
    sa.Column("certificate_mode", sa.String(16), nullable=False),
    sa.Column("certificate_pem", sa.Text(), nullable=False),
    sa.Column("subject_hash", sa.String(ID_LENGTH), nullable=False, index=True),
    sa.Column("owned_by", sa.String(32), nullable=False),
    sa.Column("customer_version", sa.Integer(), nullable=False),
    sa.Column("generation_id", sa.String(UUID_LENGTH), nullable=False),
    sa.Column("not_before", UtcDateTime(), nullable=False),
    sa.Column("not_after", UtcDateTime(), nullable=False),
    sa.Column("registration_config", sa.JSON(), nullable=True),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
)

certificates = sa.Table(
    "certificates",
    metadata,
    sa.Column("certificate_id", sa.String(ID_LENGTH), primary_key=True),
    # No foreign key: a CA can be deleted while certificates it signed remain (they then
    # cannot connect, because their CA is no longer registered).
    sa.Column("ca_certificate_id", sa.String(ID_LENGTH), nullable=True, index=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("certificate_mode", sa.String(16), nullable=False),
    sa.Column("certificate_pem", sa.Text(), nullable=False),
    sa.Column("owned_by", sa.String(32), nullable=False),
    sa.Column("previous_owned_by", sa.String(32), nullable=True),
    sa.Column("customer_version", sa.Integer(), nullable=False),
    sa.Column("generation_id", sa.String(UUID_LENGTH), nullable=False),
    sa.Column("not_before", UtcDateTime(), nullable=False),
    sa.Column("not_after", UtcDateTime(), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
    sa.Index("ix_certificates_creation_date_certificate_id", "creation_date", "certificate_id"),
)

policies = sa.Table(
    "policies",
    metadata,
    sa.Column("name", name_type(), primary_key=True),
    sa.Column("default_version_id", sa.Integer(), nullable=False),
    sa.Column("last_version_id", sa.Integer(), nullable=False),
    sa.Column("generation_id", sa.String(UUID_LENGTH), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
)

policy_versions = sa.Table(
    "policy_versions",
    metadata,
    sa.Column(
        "policy_name",
        name_type(),
        sa.ForeignKey("policies.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("version_id", sa.Integer(), primary_key=True),
    sa.Column("document", sa.Text(), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
)

policy_targets = sa.Table(
    "policy_targets",
    metadata,
    sa.Column(
        "policy_name",
        name_type(),
        sa.ForeignKey("policies.name", ondelete="RESTRICT"),
        primary_key=True,
    ),
    sa.Column("target_type", sa.String(16), primary_key=True),
    sa.Column("target_id", name_type(), primary_key=True),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Index("ix_policy_targets_target", "target_type", "target_id"),
)

settings = sa.Table(
    "settings",
    metadata,
    sa.Column("key", name_type(), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
)

sealed_secrets = sa.Table(
    "sealed_secrets",
    metadata,
    sa.Column("name", name_type(), primary_key=True),
    # Opaque bytes from Keystore.seal; the store never sees plaintext.
    sa.Column("sealed", sa.LargeBinary(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
)

connection_sessions = sa.Table(
    "connection_sessions",
    metadata,
    # One row per network connection: written at CONNECT, closed at disconnect. A
    # persistent session keeps its session_id across connections.
    sa.Column("connection_id", sa.String(UUID_LENGTH), primary_key=True),
    sa.Column("session_id", sa.String(UUID_LENGTH), nullable=False),
    sa.Column("client_id", name_type(), nullable=False),
    sa.Column("certificate_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("source_ip", sa.String(64), nullable=False),
    sa.Column("node", name_type(), nullable=False),
    sa.Column("connected_at", UtcDateTime(), nullable=False),
    sa.Column("disconnected_at", UtcDateTime(), nullable=True),
    sa.Column("disconnect_reason", sa.String(64), nullable=True),
    sa.Index("ix_connection_sessions_certificate", "certificate_id", "connected_at"),
    sa.Index("ix_connection_sessions_client", "client_id", "connected_at"),
)

# -- access keys and the trail (migration 0003) ---------------------------------------

access_keys = sa.Table(
    "access_keys",
    metadata,
    sa.Column("access_key_id", sa.String(20), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("description", sa.String(256), nullable=False),
    # Opaque bytes from Keystore.seal; the secret access key is never stored in clear.
    sa.Column("sealed_secret", sa.LargeBinary(), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
)

trail_records = sa.Table(
    "trail_records",
    metadata,
    sa.Column("sequence", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("time", UtcDateTime(), nullable=False, index=True),
    sa.Column("access_key_id", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=True),
    sa.Column("source_ip", sa.String(64), nullable=False),
    sa.Column("service", sa.String(64), nullable=False),
    sa.Column("operation", sa.String(128), nullable=False),
    sa.Column("parameters", sa.Text(), nullable=False),  # canonical JSON, redacted
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("error_code", sa.String(128), nullable=True),
    sa.Column("http_status", sa.Integer(), nullable=False),
    # Unique: two records can never claim the same predecessor (no fork of the chain).
    sa.Column("previous_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("hash", sa.String(64), nullable=False),
)

trail_head = sa.Table(
    "trail_head",
    metadata,
    sa.Column("chain", sa.String(16), primary_key=True),
    sa.Column("sequence", sa.BigInteger(), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    # Migration 0010: the first keyed sequence, and the head's HMAC (NULL: never sealed).
    sa.Column("keyed_from", sa.BigInteger(), nullable=True),
    sa.Column("seal", sa.String(64), nullable=True),
)

# -- signed digests of the trail (migration 0022) --------------------------------------

trail_digests = sa.Table(
    "trail_digests",
    metadata,
    # 1, 2, 3, ...: the digest chain; the primary key refuses a second digest N (no fork)
    sa.Column("number", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(128), nullable=False, unique=True),  # its file name
    sa.Column("first_sequence", sa.BigInteger(), nullable=False),
    sa.Column("last_sequence", sa.BigInteger(), nullable=False),
    sa.Column("end_time", UtcDateTime(), nullable=False),
    sa.Column("document", sa.Text(), nullable=False),  # the signed file, byte for byte
)

trail_digest_deliveries = sa.Table(
    "trail_digest_deliveries",
    metadata,
    sa.Column("sink", sa.String(512), primary_key=True),  # "dir:/path", "s3:bucket/prefix"
    sa.Column("delivered_through", sa.BigInteger(), nullable=False),  # a digest number
)

# -- jobs, job executions, job templates (migration 0005) -----------------------------

JOB_ID_LENGTH = 64

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("job_id", name_type(JOB_ID_LENGTH), primary_key=True),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("document", sa.Text(), nullable=True),
    sa.Column("document_source", sa.String(1350), nullable=True),
    sa.Column("target_selection", sa.String(16), nullable=False),
    sa.Column("status", sa.String(32), nullable=False, index=True),
    sa.Column("force_canceled", sa.Boolean(), nullable=False),
    sa.Column("reason_code", sa.String(128), nullable=True),
    sa.Column("comment", sa.Text(), nullable=True),
    # The configurations as AWS spells them (camelCase JSON objects), or NULL.
    sa.Column("presigned_url_config", sa.JSON(), nullable=True),
    sa.Column("rollout_config", sa.JSON(), nullable=True),
    sa.Column("abort_config", sa.JSON(), nullable=True),
    sa.Column("in_progress_timeout_minutes", sa.BigInteger(), nullable=True),
    sa.Column("template_id", name_type(JOB_ID_LENGTH), nullable=True),
    sa.Column("retry_config", sa.JSON(), nullable=True),  # migration 0027
    # Rollout: the current one-minute window and how many executions it released.
    sa.Column("rollout_window_start", UtcDateTime(), nullable=True),
    sa.Column("rollout_window_count", sa.Integer(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_updated_at", UtcDateTime(), nullable=False),
    sa.Column("completed_at", UtcDateTime(), nullable=True),
)

job_targets = sa.Table(
    "job_targets",
    metadata,
    sa.Column(
        "job_id",
        name_type(JOB_ID_LENGTH),
        sa.ForeignKey("jobs.job_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # ("thing", name) or ("thinggroup", name); no foreign key: a target may be deleted
    # while the job that names it lives on.
    sa.Column("target_type", sa.String(16), primary_key=True),
    sa.Column("target_name", name_type(), primary_key=True),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Index("ix_job_targets_target", "target_type", "target_name"),
)

job_executions = sa.Table(
    "job_executions",
    metadata,
    sa.Column(
        "job_id",
        name_type(JOB_ID_LENGTH),
        sa.ForeignKey("jobs.job_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "thing_name",
        name_type(),
        sa.ForeignKey("things.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("execution_number", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("force_canceled", sa.Boolean(), nullable=False),
    sa.Column("status_details", sa.JSON(), nullable=False),
    sa.Column("queued_at", UtcDateTime(), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=True),
    sa.Column("last_updated_at", UtcDateTime(), nullable=False),
    sa.Column("version_number", sa.BigInteger(), nullable=False),
    sa.Column("step_deadline", UtcDateTime(), nullable=True, index=True),
    sa.Column("in_progress_deadline", UtcDateTime(), nullable=True, index=True),
    # retries before this execution (migration 0027)
    sa.Column("retry_attempt", sa.Integer(), nullable=False, server_default="0"),
    sa.Index("ix_job_executions_thing", "thing_name", "status"),
)

job_rollout_queue = sa.Table(
    "job_rollout_queue",
    metadata,
    # Targets resolved but not yet released to their devices (rollout rate).
    sa.Column(
        "job_id",
        name_type(JOB_ID_LENGTH),
        sa.ForeignKey("jobs.job_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "thing_name",
        name_type(),
        sa.ForeignKey("things.name", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
    sa.Column("position", sa.BigInteger(), nullable=False),
    sa.Index("ix_job_rollout_queue_order", "job_id", "position"),
)

job_templates = sa.Table(
    "job_templates",
    metadata,
    sa.Column("template_id", name_type(JOB_ID_LENGTH), primary_key=True),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("document", sa.Text(), nullable=True),
    sa.Column("document_source", sa.String(1350), nullable=True),
    sa.Column("presigned_url_config", sa.JSON(), nullable=True),
    sa.Column("rollout_config", sa.JSON(), nullable=True),
    sa.Column("abort_config", sa.JSON(), nullable=True),
    sa.Column("in_progress_timeout_minutes", sa.BigInteger(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("retry_config", sa.JSON(), nullable=True),  # migration 0027
)

# -- provisioning templates, ownership tokens, claims (migration 0006) ----------------

TEMPLATE_NAME_LENGTH = 36

provisioning_templates = sa.Table(
    "provisioning_templates",
    metadata,
    sa.Column("name", name_type(TEMPLATE_NAME_LENGTH), primary_key=True),
    sa.Column("template_id", sa.String(UUID_LENGTH), nullable=False, unique=True),
    sa.Column("template_type", sa.String(32), nullable=False),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("provisioning_role_arn", sa.String(2048), nullable=False),
    # {"targetArn": ..., "payloadVersion": ...} as AWS spells it, or NULL.
    sa.Column("pre_provisioning_hook", sa.JSON(), nullable=True),
    sa.Column("tags", sa.JSON(), nullable=False),
    sa.Column("default_version_id", sa.Integer(), nullable=False),
    # Version ids are never reused, even after a version is deleted.
    sa.Column("last_version_id", sa.Integer(), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
)

provisioning_template_versions = sa.Table(
    "provisioning_template_versions",
    metadata,
    sa.Column(
        "template_name",
        name_type(TEMPLATE_NAME_LENGTH),
        sa.ForeignKey("provisioning_templates.name", ondelete="CASCADE",
                      name="fk_provisioning_template_versions_template"),
        primary_key=True,
    ),
    sa.Column("version_id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("template_body", sa.Text(), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
)

provisioning_ownership_tokens = sa.Table(
    "provisioning_ownership_tokens",
    metadata,
    # SHA-256 of the token; the token itself is never stored.
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("certificate_id", sa.String(ID_LENGTH), nullable=False, index=True),
    sa.Column("claim_certificate_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False, index=True),
    sa.Column("used_at", UtcDateTime(), nullable=True),
)

provisioning_claims = sa.Table(
    "provisioning_claims",
    metadata,
    # Temporary claim certificates made by CreateProvisioningClaim.
    sa.Column("certificate_id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("template_name", name_type(TEMPLATE_NAME_LENGTH), nullable=False, index=True),
    sa.Column("expiration", UtcDateTime(), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
)

# -- defender audit, mitigation actions and alert targets (migration 0007) -------------

audit_account_configuration = sa.Table(
    "audit_account_configuration",
    metadata,
    # One row ("account"): the role, the notification targets and every check's settings.
    sa.Column("id", sa.String(16), primary_key=True),
    sa.Column("role_arn", sa.String(2048), nullable=True),
    sa.Column("notification_targets", sa.JSON(), nullable=False),
    sa.Column("check_configurations", sa.JSON(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
)

audit_tasks = sa.Table(
    "audit_tasks",
    metadata,
    sa.Column("task_id", sa.String(40), primary_key=True),
    sa.Column("task_type", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_time", UtcDateTime(), nullable=False),
    sa.Column("end_time", UtcDateTime(), nullable=True),
    sa.Column("scheduled_audit_name", name_type(), nullable=True),
    sa.Column("check_names", sa.JSON(), nullable=False),
    # checkName -> AuditCheckDetails, updated as each check finishes.
    sa.Column("check_details", sa.JSON(), nullable=False),
    sa.Index("ix_audit_tasks_start_time_task_id", "start_time", "task_id"),
)

audit_findings = sa.Table(
    "audit_findings",
    metadata,
    sa.Column("finding_id", sa.String(128), primary_key=True),
    sa.Column("task_id", sa.String(40), nullable=False),
    sa.Column("check_name", sa.String(128), nullable=False),
    sa.Column("task_start_time", UtcDateTime(), nullable=False),
    sa.Column("finding_time", UtcDateTime(), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("resource_type", sa.String(32), nullable=False),
    # SHA-256 (hex) of the canonical JSON of the resource identifier: filters, suppressions.
    sa.Column("resource_key", sa.String(64), nullable=False),
    sa.Column("non_compliant_resource", sa.JSON(), nullable=False),
    sa.Column("related_resources", sa.JSON(), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("reason_code", sa.String(128), nullable=False),
    sa.Column("is_suppressed", sa.Boolean(), nullable=False),
    sa.Index("ix_audit_findings_task_id_finding_id", "task_id", "finding_id"),
    sa.Index("ix_audit_findings_check_name_finding_time", "check_name", "finding_time"),
    sa.Index("ix_audit_findings_resource_key", "resource_key"),
)

audit_scheduled_audits = sa.Table(
    "audit_scheduled_audits",
    metadata,
    sa.Column("name", name_type(), primary_key=True),
    sa.Column("frequency", sa.String(16), nullable=False),
    sa.Column("day_of_week", sa.String(3), nullable=True),
    sa.Column("day_of_month", sa.String(4), nullable=True),
    sa.Column("check_names", sa.JSON(), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
    sa.Column("last_run_time", UtcDateTime(), nullable=True),
    sa.Column("next_run_time", UtcDateTime(), nullable=False, index=True),
)

audit_suppressions = sa.Table(
    "audit_suppressions",
    metadata,
    sa.Column("check_name", sa.String(128), primary_key=True),
    sa.Column("resource_key", sa.String(64), primary_key=True),
    sa.Column("resource_identifier", sa.JSON(), nullable=False),
    sa.Column("expiration_date", UtcDateTime(), nullable=True),
    sa.Column("suppress_indefinitely", sa.Boolean(), nullable=False),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
)

audit_mitigation_tasks = sa.Table(
    "audit_mitigation_tasks",
    metadata,
    sa.Column("task_id", sa.String(128), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_time", UtcDateTime(), nullable=False),
    sa.Column("end_time", UtcDateTime(), nullable=True),
    sa.Column("target", sa.JSON(), nullable=False),
    sa.Column("actions_mapping", sa.JSON(), nullable=False),
    sa.Column("client_request_token", sa.String(64), nullable=True),
    sa.Index("ix_audit_mitigation_tasks_start_time_task_id", "start_time", "task_id"),
)

audit_mitigation_executions = sa.Table(
    "audit_mitigation_executions",
    metadata,
    sa.Column("task_id", sa.String(128), primary_key=True),
    sa.Column("finding_id", sa.String(128), primary_key=True),
    sa.Column("action_name", name_type(), primary_key=True),
    sa.Column("action_id", sa.String(36), nullable=False),
    sa.Column("check_name", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("start_time", UtcDateTime(), nullable=False),
    sa.Column("end_time", UtcDateTime(), nullable=True),
    sa.Column("error_code", sa.String(128), nullable=True),
    sa.Column("message", sa.Text(), nullable=True),
    sa.Index("ix_audit_mitigation_executions_finding_id", "finding_id"),
)

audit_crls = sa.Table(
    "audit_crls",
    metadata,
    # One CRL source per issuing CA (id: SHA-256 of the issuer certificate's DER).
    sa.Column("issuer_certificate_id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("issuer_certificate_pem", sa.Text(), nullable=False),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("crl_der", sa.LargeBinary(), nullable=True),
    sa.Column("this_update", UtcDateTime(), nullable=True),
    sa.Column("next_update", UtcDateTime(), nullable=True),
    sa.Column("fetched_at", UtcDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
)

mitigation_actions = sa.Table(
    "mitigation_actions",
    metadata,
    sa.Column("name", name_type(), primary_key=True),
    sa.Column("action_id", sa.String(UUID_LENGTH), nullable=False, unique=True),
    sa.Column("action_type", sa.String(64), nullable=False),
    sa.Column("role_arn", sa.String(2048), nullable=False),
    sa.Column("params", sa.JSON(), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
)

alert_targets = sa.Table(
    "alert_targets",
    metadata,
    sa.Column("name", name_type(), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("config", sa.JSON(), nullable=False),
    # Opaque bytes from Keystore.seal (webhook HMAC key, SMTP password); never in clear.
    sa.Column("sealed_secret", sa.LargeBinary(), nullable=True),
    sa.Column("enabled", sa.Boolean(), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
)

alert_dead_letters = sa.Table(
    "alert_dead_letters",
    metadata,
    sa.Column("letter_id", sa.String(UUID_LENGTH), primary_key=True),
    sa.Column("target_name", name_type(), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("subject", sa.Text(), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("last_error", sa.Text(), nullable=False),
    sa.Column("first_attempt_at", UtcDateTime(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False, index=True),
)

# -- device shadows (migration 0004) --------------------------------------------------

shadows = sa.Table(
    "shadows",
    metadata,
    # No foreign key to things: as in AWS IoT, a shadow is keyed by a thing *name* and
    # outlives the thing (deleting a thing does not delete its shadows).
    sa.Column("thing_name", name_type(), primary_key=True),
    sa.Column("shadow_name", name_type(64), primary_key=True),  # "" = the classic shadow
    sa.Column("version", sa.BigInteger(), nullable=False),
    # JSON text of {"desired": …, "reported": …} and of its metadata tree; both NULL for
    # a deleted shadow, whose row is kept (a tombstone) so the version sequence continues.
    sa.Column("state", sa.Text(), nullable=True),
    sa.Column("state_metadata", sa.Text(), nullable=True),
    sa.Column("deleted_at", UtcDateTime(), nullable=True),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
)

# -- MQTT sessions and retained messages (migration 0011) -----------------------------------
#
# Written by the broker's session journal (bastion.broker._durable, through
# bastion.sessions) in group commits, read back at start. Client ids, topics and filters are
# opaque text here (their limits are the broker's, configurable); messages are stored as
# MQTT 5 PUBLISH packets, so every property survives.

mqtt_sessions = sa.Table(
    "mqtt_sessions",
    metadata,
    sa.Column("client_id", sa.Text(), primary_key=True),
    sa.Column("session_id", sa.String(UUID_LENGTH), nullable=False),
    sa.Column("certificate_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("source_ip", sa.String(64), nullable=False),
    sa.Column("source_port", sa.Integer(), nullable=False),
    sa.Column("expiry_interval", sa.BigInteger(), nullable=False),
    sa.Column("detached_at", sa.Float(precision=53), nullable=True),  # NULL: live
    sa.Column("will", sa.LargeBinary(), nullable=True),
    sa.Column("will_delay", sa.BigInteger(), nullable=False),
)

mqtt_subscriptions = sa.Table(
    "mqtt_subscriptions",
    metadata,
    sa.Column("client_id", sa.Text(), primary_key=True),
    sa.Column("topic_filter", sa.Text(), primary_key=True),
    sa.Column("qos", sa.SmallInteger(), nullable=False),
    sa.Column("no_local", sa.Boolean(), nullable=False),
    sa.Column("retain_as_published", sa.Boolean(), nullable=False),
    sa.Column("retain_handling", sa.SmallInteger(), nullable=False),
    sa.Column("subscription_id", sa.Integer(), nullable=True),
)

mqtt_deliveries = sa.Table(
    "mqtt_deliveries",
    metadata,
    # One QoS 1/2 delivery to a persistent session, from routing to acknowledgement.
    sa.Column("client_id", sa.Text(), primary_key=True),
    sa.Column("seq", sa.BigInteger(), primary_key=True),
    sa.Column("message", sa.LargeBinary(), nullable=False),
    sa.Column("qos", sa.SmallInteger(), nullable=False),
    sa.Column("retain", sa.Boolean(), nullable=False),
    sa.Column("subscription_ids", sa.Text(), nullable=False),  # "1,7" or ""
    sa.Column("packet_id", sa.Integer(), nullable=True),       # NULL: not sent yet
    sa.Column("released", sa.Boolean(), nullable=False),       # PUBREC received (QoS 2)
    sa.Column("size", sa.Integer(), nullable=False),           # payload bytes
)

mqtt_inbound_qos2 = sa.Table(
    "mqtt_inbound_qos2",
    metadata,
    sa.Column("client_id", sa.Text(), primary_key=True),
    sa.Column("packet_id", sa.Integer(), primary_key=True),
)

mqtt_retained = sa.Table(
    "mqtt_retained",
    metadata,
    sa.Column("topic", sa.Text(), primary_key=True),
    sa.Column("message", sa.LargeBinary(), nullable=False),
    sa.Column("received_at", sa.Float(precision=53), nullable=False),  # epoch seconds
)

# -- cluster stream positions (migration 0012) ----------------------------------------------

mqtt_stream_cursors = sa.Table(
    "mqtt_stream_cursors",
    metadata,
    sa.Column("node", sa.Text(), primary_key=True),
    sa.Column("seq", sa.BigInteger(), nullable=False),
)

# -- uploaded files (migration 0009) ----------------------------------------------------

files = sa.Table(
    "files",
    metadata,
    # The bytes live in the data directory (``files/<name>``); the row is what Bastion
    # serves and signs URLs for: a file without a row is never served.
    sa.Column("name", name_type(255), primary_key=True),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
)

# -- Device Defender detect (migration 0008) -------------------------------------------

detect_security_profiles = sa.Table(
    "detect_security_profiles",
    metadata,
    sa.Column("name", name_type(), primary_key=True),
    sa.Column("version", sa.Integer(), nullable=False),
    # behaviors, description, alert targets, additional metrics, targets (as
    # "thinggroup/<name>" / "all/things" keys, never ARNs), mitigation actions
    sa.Column("document", sa.JSON(), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
)

detect_custom_metrics = sa.Table(
    "detect_custom_metrics",
    metadata,
    sa.Column("name", name_type(), primary_key=True),
    sa.Column("metric_type", sa.String(32), nullable=False),
    sa.Column("display_name", sa.String(128), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
)

detect_dimensions = sa.Table(
    "detect_dimensions",
    metadata,
    sa.Column("name", name_type(), primary_key=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("string_values", sa.JSON(), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
)

detect_metric_values = sa.Table(
    "detect_metric_values",
    metadata,
    # Thing name, or client id of an unregistered client.
    sa.Column("thing_name", name_type(), primary_key=True),
    sa.Column("metric", name_type(), primary_key=True),
    sa.Column("dimension", name_type(), primary_key=True),  # "" without a dimension
    sa.Column("timestamp", UtcDateTime(), primary_key=True),
    sa.Column("value", sa.JSON(), nullable=False),  # AWS MetricValue
    sa.Index("ix_detect_metric_values_timestamp", "timestamp"),
)

detect_violations = sa.Table(
    "detect_violations",
    metadata,
    sa.Column("violation_id", sa.String(128), primary_key=True),
    sa.Column("thing_name", name_type(), nullable=False, index=True),
    sa.Column("security_profile_name", name_type(), nullable=False),
    sa.Column("behavior_name", name_type(), nullable=False),
    sa.Column("behavior", sa.JSON(), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False, index=True),
    sa.Column("suppressed", sa.Boolean(), nullable=False),
    sa.Column("start_time", UtcDateTime(), nullable=False),
    sa.Column("last_time", UtcDateTime(), nullable=False),
    sa.Column("last_value", sa.JSON(), nullable=True),
    sa.Column("verification_state", sa.String(32), nullable=True),
    sa.Column("verification_description", sa.Text(), nullable=True),
    # migration 0021: what explains an ML violation (Bastion's, not AWS's)
    sa.Column("details", sa.JSON(), nullable=True),
)

detect_violation_events = sa.Table(
    "detect_violation_events",
    metadata,
    sa.Column("violation_id", sa.String(128), primary_key=True),
    sa.Column("event_type", sa.String(32), primary_key=True),
    sa.Column("timestamp", UtcDateTime(), nullable=False, index=True),
    sa.Column("thing_name", name_type(), nullable=False),
    sa.Column("security_profile_name", name_type(), nullable=False),
    sa.Column("behavior", sa.JSON(), nullable=False),
    sa.Column("metric_value", sa.JSON(), nullable=True),
    sa.Column("suppressed", sa.Boolean(), nullable=False),
    sa.Column("details", sa.JSON(), nullable=True),  # migration 0021
)

# -- ML Detect's models (migration 0021) ------------------------------------------------

detect_models = sa.Table(
    "detect_models",
    metadata,
    sa.Column("security_profile_name", name_type(), primary_key=True),
    sa.Column("behavior_name", name_type(), primary_key=True),
    sa.Column("metric", sa.String(128), nullable=False),
    sa.Column("confidence", sa.String(16), nullable=False),
    sa.Column("state", sa.LargeBinary(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

# -- topic rules and their destinations (migration 0013) ------------------------------

topic_rules = sa.Table(
    "topic_rules",
    metadata,
    sa.Column("name", name_type(), primary_key=True),
    sa.Column("sql", sa.Text(), nullable=False),
    # the FROM clause's topic filter ("" for a Basic Ingest-only rule): ListTopicRules'
    # topic filter and the engine's subscription
    sa.Column("topic_pattern", sa.Text(), nullable=False),
    sa.Column("description", sa.Text(), nullable=False),
    sa.Column("sql_version", sa.String(16), nullable=False),
    sa.Column("disabled", sa.Boolean(), nullable=False),
    # the actions and the error action as the API received them (AWS's Action shapes)
    sa.Column("actions", sa.JSON(), nullable=False),
    sa.Column("error_action", sa.JSON(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_modified", UtcDateTime(), nullable=False),
)

topic_rule_destinations = sa.Table(
    "topic_rule_destinations",
    metadata,
    # the id is the last part of the destination's ARN
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("confirmation_url", sa.Text(), nullable=False, unique=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("status_reason", sa.Text(), nullable=False),
    sa.Column("confirmation_token", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_updated_at", UtcDateTime(), nullable=False),
)

# -- tags and billing groups (migration 0014) ------------------------------------------

TAG_KEY_LENGTH = 128
TAG_VALUE_LENGTH = 256

resource_tags = sa.Table(
    "resource_tags",
    metadata,
    # The resource as (ARN resource type, name or id); no foreign key: one table serves
    # every taggable kind, and the repository deleting a resource deletes its tags.
    sa.Column("resource_type", sa.String(32), primary_key=True),
    sa.Column("resource_id", name_type(), primary_key=True),
    sa.Column("key", name_type(TAG_KEY_LENGTH), primary_key=True),
    sa.Column("value", sa.String(TAG_VALUE_LENGTH), nullable=False),
)

billing_groups = sa.Table(
    "billing_groups",
    metadata,
    sa.Column("name", name_type(), primary_key=True),
    sa.Column("billing_group_id", sa.String(UUID_LENGTH), nullable=False, unique=True),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
)

billing_group_members = sa.Table(
    "billing_group_members",
    metadata,
    # Keyed by the thing: a thing is in at most one billing group.
    sa.Column(
        "thing_name",
        name_type(),
        sa.ForeignKey("things.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "group_name",
        name_type(),
        sa.ForeignKey("billing_groups.name", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Index("ix_billing_group_members_group_name", "group_name", "thing_name"),
)

# -- role aliases (migration 0015) ------------------------------------------------------

role_aliases = sa.Table(
    "role_aliases",
    metadata,
    sa.Column("name", name_type(), primary_key=True),
    sa.Column("role_arn", sa.String(2048), nullable=False),
    sa.Column("credential_duration_seconds", sa.Integer(), nullable=False),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
)

# -- certificate rotation (bastion.rotation) ---------------------------------------------

rotation_policies = sa.Table(
    "rotation_policies",
    metadata,
    # One policy per thing group; a column left NULL falls back to the fleet default.
    sa.Column(
        "group_name",
        name_type(),
        sa.ForeignKey("thing_groups.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("max_age_days", sa.Integer(), nullable=True),
    sa.Column("rotate_before_expiry_days", sa.Integer(), nullable=True),
    sa.Column("deactivate_after_hours", sa.Integer(), nullable=True),
    sa.Column("revoke_after_hours", sa.Integer(), nullable=True),
    sa.Column("start_jobs", sa.Boolean(), nullable=True),
    sa.Column("alert_targets", sa.JSON(), nullable=True),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
)

certificate_rotations = sa.Table(
    "certificate_rotations",
    metadata,
    sa.Column("rotation_id", sa.String(UUID_LENGTH), primary_key=True),
    sa.Column(
        "thing_name",
        name_type(),
        sa.ForeignKey("things.name", ondelete="CASCADE"),
        nullable=False,
    ),
    # No foreign key to jobs: a rotation's record outlives a deleted job.
    sa.Column("job_id", name_type(JOB_ID_LENGTH), nullable=False),
    sa.Column("old_certificate_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("new_certificate_id", sa.String(ID_LENGTH), nullable=True, unique=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("issued_at", UtcDateTime(), nullable=True),
    sa.Column("new_connected_at", UtcDateTime(), nullable=True),
    sa.Column("succeeded_at", UtcDateTime(), nullable=True),
    sa.Column("deactivate_at", UtcDateTime(), nullable=True),
    sa.Column("revoke_at", UtcDateTime(), nullable=True),
    sa.Column("finished_at", UtcDateTime(), nullable=True),
    sa.Index("ix_certificate_rotations_thing_name", "thing_name", "created_at"),
    sa.Index("ix_certificate_rotations_old_certificate_id", "old_certificate_id"),
    sa.Index("ix_certificate_rotations_status", "status"),
    sa.Index("ix_certificate_rotations_job_id", "job_id"),
)

# -- code signing and OTA updates (migration 0017) -------------------------------------

signing_certificates = sa.Table(
    "signing_certificates",
    metadata,
    # A code-signing key and the certificate Bastion's code-signing CA issued for it. The
    # private key is sealed by the master key (associated data: the certificate id); it
    # is read back only to sign, never answered.
    sa.Column("certificate_id", sa.String(UUID_LENGTH), primary_key=True),
    sa.Column("certificate_pem", sa.Text(), nullable=False),
    sa.Column("sealed_key", sa.LargeBinary(), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),  # GENERATED | IMPORTED
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

signing_profiles = sa.Table(
    "signing_profiles",
    metadata,
    sa.Column("name", name_type(64), primary_key=True),
    sa.Column("profile_version", sa.String(10), nullable=False),
    sa.Column("platform_id", sa.String(64), nullable=False),
    sa.Column(
        "certificate_id",
        sa.String(UUID_LENGTH),
        sa.ForeignKey("signing_certificates.certificate_id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    # signature validity period, signing parameters, overrides, tags
    sa.Column("document", sa.JSON(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # Active | Canceled | Revoked
    sa.Column("status_reason", sa.Text(), nullable=True),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
    sa.Column("revocation_effective_from", UtcDateTime(), nullable=True),
    sa.Column("revoked_by", sa.String(128), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

signing_jobs = sa.Table(
    "signing_jobs",
    metadata,
    sa.Column("job_id", sa.String(UUID_LENGTH), primary_key=True),
    sa.Column("client_request_token", sa.String(64), nullable=False, unique=True),
    sa.Column("profile_name", name_type(64), nullable=False, index=True),
    sa.Column("profile_version", sa.String(10), nullable=False),
    sa.Column("platform_id", sa.String(64), nullable=False),
    sa.Column("certificate_id", sa.String(UUID_LENGTH), nullable=False),
    sa.Column("source_bucket", sa.String(255), nullable=False),
    sa.Column("source_key", name_type(255), nullable=False),
    sa.Column("source_version", sa.String(64), nullable=False),
    sa.Column("file_size", sa.BigInteger(), nullable=False),
    sa.Column("file_sha256", sa.String(64), nullable=False),
    sa.Column("signature", sa.LargeBinary(), nullable=False),
    sa.Column("signed_bucket", sa.String(255), nullable=True),
    sa.Column("signed_key", name_type(255), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # InProgress | Failed | Succeeded
    sa.Column("status_reason", sa.Text(), nullable=True),
    sa.Column("requested_by", sa.String(128), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("completed_at", UtcDateTime(), nullable=True),
    sa.Column("signature_expires_at", UtcDateTime(), nullable=True),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
    sa.Column("revoked_by", sa.String(128), nullable=True),
    sa.Column("revocation_reason", sa.Text(), nullable=True),
)

ota_updates = sa.Table(
    "ota_updates",
    metadata,
    sa.Column("ota_update_id", name_type(128), primary_key=True),
    sa.Column("job_id", sa.String(64), nullable=True),
    sa.Column("status", sa.String(24), nullable=False),
    # description, targets, protocols, target selection, job configurations, files (with
    # the signature and certificate each was given), role ARN, additional parameters
    sa.Column("document", sa.JSON(), nullable=False),
    sa.Column("error", sa.JSON(), nullable=True),
    sa.Column("creation_date", UtcDateTime(), nullable=False),
    sa.Column("last_modified_date", UtcDateTime(), nullable=False),
)


# -- threat detection (migration 0024) ---------------------------------------------------

threat_findings = sa.Table(
    "threat_findings",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("type", sa.String(128), nullable=False),
    sa.Column("resource_id", sa.Text(), nullable=False),
    sa.Column("first_seen", UtcDateTime(), nullable=False),
    sa.Column("last_seen", UtcDateTime(), nullable=False, index=True),
    sa.Column("count", sa.Integer(), nullable=False),
    sa.Column("archived", sa.Boolean(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("document", sa.JSON(), nullable=False),
)

threat_intel_sets = sa.Table(
    "threat_intel_sets",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("location", sa.Text(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("entries", sa.JSON(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

# -- MQTT-based file delivery; files devices upload (migration 0018) ----------------------

streams = sa.Table(
    "streams",
    metadata,
    sa.Column("stream_id", name_type(128), primary_key=True),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("role_arn", sa.String(2048), nullable=False),
    # [{fileId, bucket, key, size, sha256}]: the Bastion file each id delivers, and its
    # size and SHA-256 when the stream was made or updated (a file changed since is refused)
    sa.Column("files", sa.JSON(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_updated_at", UtcDateTime(), nullable=False),
)

file_uploads = sa.Table(
    "file_uploads",
    metadata,
    # One row per job execution whose device uploaded through its presigned URL: the key
    # is what makes that URL single-use.
    sa.Column("job_id", name_type(64), primary_key=True),
    sa.Column("thing_name", name_type(128), primary_key=True, index=True),
    sa.Column("execution_number", sa.BigInteger(), primary_key=True),
    sa.Column("file_name", name_type(255), nullable=False),
    sa.Column("size", sa.BigInteger(), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("uploaded_at", UtcDateTime(), nullable=False),
)

# -- server certificates (the ACM analog) and domain configurations (migration 0026) --------

server_certificates = sa.Table(
    "server_certificates",
    metadata,
    sa.Column("certificate_id", sa.String(UUID_LENGTH), primary_key=True),
    sa.Column("certificate_pem", sa.Text(), nullable=False),
    sa.Column("chain_pem", sa.Text(), nullable=True),
    # the private key, PKCS#8 DER sealed with the master key (associated data: the id)
    sa.Column("sealed_key", sa.LargeBinary(), nullable=False),
    sa.Column("domain_name", sa.String(253), nullable=True),
    sa.Column("imported_at", UtcDateTime(), nullable=False),
)

domain_configurations = sa.Table(
    "domain_configurations",
    metadata,
    sa.Column("name", name_type(128), primary_key=True),
    sa.Column("arn_suffix", sa.String(16), nullable=False),
    # NULL for the default domain (iot:Data-ATS), whose name is the API's public host
    sa.Column("domain_name", sa.String(253), nullable=True, unique=True),
    sa.Column("certificate_id", sa.String(UUID_LENGTH),
              sa.ForeignKey("server_certificates.certificate_id"), nullable=True,
              index=True),
    sa.Column("service_type", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("security_policy", sa.String(128), nullable=True),
    # {authorizerConfig, authenticationType, applicationProtocol}: kept and answered
    sa.Column("settings", sa.JSON(), nullable=False),
    sa.Column("last_status_change", UtcDateTime(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)
