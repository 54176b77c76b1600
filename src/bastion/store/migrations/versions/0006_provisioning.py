"""Provisioning templates, claims and ownership tokens.

Revision ID: 0006
Revises: 0005

* ``provisioning_templates`` / ``provisioning_template_versions``: fleet provisioning and
  JITP templates and their versions (ids never reused: ``last_version_id``).
* ``provisioning_ownership_tokens``: the tokens handed out with certificates made over
  MQTT; only their SHA-256 is stored, with the claim certificate they belong to, their
  expiry and when they were used (single use).
* ``provisioning_claims``: the temporary claim certificates of CreateProvisioningClaim.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def _name(length: int = 128) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "provisioning_templates",
        sa.Column("name", _name(36), nullable=False),
        sa.Column("template_id", sa.String(36), nullable=False),
        sa.Column("template_type", sa.String(32), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("provisioning_role_arn", sa.String(2048), nullable=False),
        sa.Column("pre_provisioning_hook", sa.JSON(), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("default_version_id", sa.Integer(), nullable=False),
        sa.Column("last_version_id", sa.Integer(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_provisioning_templates"),
        sa.UniqueConstraint("template_id", name="uq_provisioning_templates_template_id"),
    )
    op.create_table(
        "provisioning_template_versions",
        sa.Column("template_name", _name(36), nullable=False),
        sa.Column("version_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("template_body", sa.Text(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("template_name", "version_id",
                                name="pk_provisioning_template_versions"),
        sa.ForeignKeyConstraint(
            ["template_name"],
            ["provisioning_templates.name"],
            name="fk_provisioning_template_versions_template",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "provisioning_ownership_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("certificate_id", sa.String(64), nullable=False),
        sa.Column("claim_certificate_id", sa.String(64), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.Column("expires_at", _timestamp(), nullable=False),
        sa.Column("used_at", _timestamp(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_provisioning_ownership_tokens"),
    )
    op.create_index("ix_provisioning_ownership_tokens_certificate_id",
                    "provisioning_ownership_tokens", ["certificate_id"])
    op.create_index("ix_provisioning_ownership_tokens_expires_at",
                    "provisioning_ownership_tokens", ["expires_at"])
    op.create_table(
        "provisioning_claims",
        sa.Column("certificate_id", sa.String(64), nullable=False),
        sa.Column("template_name", _name(36), nullable=False),
        sa.Column("expiration", _timestamp(), nullable=False),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("certificate_id", name="pk_provisioning_claims"),
    )
    op.create_index("ix_provisioning_claims_template_name", "provisioning_claims",
                    ["template_name"])


def downgrade() -> None:
    op.drop_index("ix_provisioning_claims_template_name", "provisioning_claims")
    op.drop_index("ix_provisioning_ownership_tokens_expires_at",
                  "provisioning_ownership_tokens")
    op.drop_index("ix_provisioning_ownership_tokens_certificate_id",
                  "provisioning_ownership_tokens")
    for table in ("provisioning_claims", "provisioning_ownership_tokens",
                  "provisioning_template_versions", "provisioning_templates"):
        op.drop_table(table)
