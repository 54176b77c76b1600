"""Initial schema: registry, identity, policies, settings.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

This file is a frozen snapshot: it spells out every column and constraint instead of
importing the current ``_schema`` module, so later schema changes cannot alter what it
does. ``_schema`` must stay equal to the sum of the migrations (a test checks it).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _name(length: int = 128) -> sa.types.TypeEngine[str]:
    # Byte-wise comparison on PostgreSQL too (SQLite's default collation is BINARY).
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "thing_types",
        sa.Column("name", _name(), nullable=False),
        sa.Column("thing_type_id", sa.String(36), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("searchable_attributes", sa.JSON(), nullable=False),
        sa.Column("deprecated", sa.Boolean(), nullable=False),
        sa.Column("deprecation_date", _timestamp(), nullable=True),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_thing_types"),
        sa.UniqueConstraint("thing_type_id", name="uq_thing_types_thing_type_id"),
    )
    op.create_table(
        "things",
        sa.Column("name", _name(), nullable=False),
        sa.Column("thing_id", sa.String(36), nullable=False),
        sa.Column("thing_type_name", _name(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_things"),
        sa.UniqueConstraint("thing_id", name="uq_things_thing_id"),
        sa.ForeignKeyConstraint(
            ["thing_type_name"],
            ["thing_types.name"],
            name="fk_things_thing_type_name_thing_types",
            ondelete="RESTRICT",
        ),
    )
    op.create_index("ix_things_thing_type_name", "things", ["thing_type_name"])
    op.create_table(
        "thing_attributes",
        sa.Column("thing_name", _name(), nullable=False),
        sa.Column("name", _name(), nullable=False),
        sa.Column("value", sa.String(800), nullable=False),
        sa.Column("searchable", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("thing_name", "name", name="pk_thing_attributes"),
        sa.ForeignKeyConstraint(
            ["thing_name"],
            ["things.name"],
            name="fk_thing_attributes_thing_name_things",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_thing_attributes_name_value", "thing_attributes", ["name", "value"])
    op.create_table(
        "thing_groups",
        sa.Column("name", _name(), nullable=False),
        sa.Column("thing_group_id", sa.String(36), nullable=False),
        sa.Column("parent_name", _name(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_thing_groups"),
        sa.UniqueConstraint("thing_group_id", name="uq_thing_groups_thing_group_id"),
        sa.ForeignKeyConstraint(
            ["parent_name"],
            ["thing_groups.name"],
            name="fk_thing_groups_parent_name_thing_groups",
            ondelete="RESTRICT",
        ),
    )
    op.create_index("ix_thing_groups_parent_name", "thing_groups", ["parent_name"])
    op.create_table(
        "thing_group_members",
        sa.Column("group_name", _name(), nullable=False),
        sa.Column("thing_name", _name(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("group_name", "thing_name", name="pk_thing_group_members"),
        sa.ForeignKeyConstraint(
            ["group_name"],
            ["thing_groups.name"],
            name="fk_thing_group_members_group_name_thing_groups",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["thing_name"],
            ["things.name"],
            name="fk_thing_group_members_thing_name_things",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_thing_group_members_thing_name", "thing_group_members", ["thing_name"])
    op.create_table(
        "thing_principals",
        sa.Column("thing_name", _name(), nullable=False),
        sa.Column("principal_type", sa.String(16), nullable=False),
        sa.Column("principal_id", _name(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint(
            "thing_name", "principal_type", "principal_id", name="pk_thing_principals"
        ),
        sa.ForeignKeyConstraint(
            ["thing_name"],
            ["things.name"],
            name="fk_thing_principals_thing_name_things",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_thing_principals_principal", "thing_principals", ["principal_type", "principal_id"]
    )
    op.create_table(
        "ca_certificates",
        sa.Column("ca_certificate_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("auto_registration_status", sa.String(16), nullable=False),
        sa.Column("certificate_mode", sa.String(16), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("subject_hash", sa.String(64), nullable=False),
        sa.Column("owned_by", sa.String(32), nullable=False),
        sa.Column("customer_version", sa.Integer(), nullable=False),
        sa.Column("generation_id", sa.String(36), nullable=False),
        sa.Column("not_before", _timestamp(), nullable=False),
        sa.Column("not_after", _timestamp(), nullable=False),
        sa.Column("registration_config", sa.JSON(), nullable=True),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("ca_certificate_id", name="pk_ca_certificates"),
    )
    op.create_index("ix_ca_certificates_subject_hash", "ca_certificates", ["subject_hash"])
    op.create_table(
        "certificates",
        sa.Column("certificate_id", sa.String(64), nullable=False),
        sa.Column("ca_certificate_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("certificate_mode", sa.String(16), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("owned_by", sa.String(32), nullable=False),
        sa.Column("previous_owned_by", sa.String(32), nullable=True),
        sa.Column("customer_version", sa.Integer(), nullable=False),
        sa.Column("generation_id", sa.String(36), nullable=False),
        sa.Column("not_before", _timestamp(), nullable=False),
        sa.Column("not_after", _timestamp(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("certificate_id", name="pk_certificates"),
    )
    op.create_index("ix_certificates_ca_certificate_id", "certificates", ["ca_certificate_id"])
    op.create_index(
        "ix_certificates_creation_date_certificate_id",
        "certificates",
        ["creation_date", "certificate_id"],
    )
    op.create_table(
        "policies",
        sa.Column("name", _name(), nullable=False),
        sa.Column("default_version_id", sa.Integer(), nullable=False),
        sa.Column("last_version_id", sa.Integer(), nullable=False),
        sa.Column("generation_id", sa.String(36), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_policies"),
    )
    op.create_table(
        "policy_versions",
        sa.Column("policy_name", _name(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("policy_name", "version_id", name="pk_policy_versions"),
        sa.ForeignKeyConstraint(
            ["policy_name"],
            ["policies.name"],
            name="fk_policy_versions_policy_name_policies",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "policy_targets",
        sa.Column("policy_name", _name(), nullable=False),
        sa.Column("target_type", sa.String(16), nullable=False),
        sa.Column("target_id", _name(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint(
            "policy_name", "target_type", "target_id", name="pk_policy_targets"
        ),
        sa.ForeignKeyConstraint(
            ["policy_name"],
            ["policies.name"],
            name="fk_policy_targets_policy_name_policies",
            ondelete="RESTRICT",
        ),
    )
    op.create_index("ix_policy_targets_target", "policy_targets", ["target_type", "target_id"])
    op.create_table(
        "settings",
        sa.Column("key", _name(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_settings"),
    )
    op.create_table(
        "sealed_secrets",
        sa.Column("name", _name(), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_sealed_secrets"),
    )


def downgrade() -> None:
    for table in (
        "sealed_secrets",
        "settings",
        "policy_targets",
        "policy_versions",
        "policies",
        "certificates",
        "ca_certificates",
        "thing_principals",
        "thing_group_members",
        "thing_groups",
        "thing_attributes",
        "things",
        "thing_types",
    ):
        op.drop_table(table)
