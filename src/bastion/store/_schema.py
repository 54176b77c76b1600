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
