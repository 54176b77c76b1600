"""Code signing (signing certificates, profiles, jobs) and OTA updates.

Revision ID: 0017
Revises: 0016

* ``signing_certificates``: a code-signing key, sealed by the master key, and the
  certificate Bastion's code-signing CA issued for it (``origin``: generated in Bastion
  or imported).
* ``signing_profiles``: one row per profile name: its version, platform, certificate,
  status (Active, Canceled, Revoked) and revocation, and a JSON document with the rest
  (signature validity period, signing parameters, overrides, tags).
* ``signing_jobs``: one row per signing job: the file signed (its name, size, SHA-256),
  the signature, the signed object written, status, expiry and revocation.
  ``client_request_token`` is unique: a repeated StartSigningJob answers the same job.
* ``ota_updates``: one row per OTA update: the job it created, its status and the
  request (JSON).

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision: str | None = "0016"
branch_labels: str | None = None
depends_on: str | None = None


def _name(length: int = 128) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "signing_certificates",
        sa.Column("certificate_id", sa.String(36), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("sealed_key", sa.LargeBinary(), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("certificate_id", name="pk_signing_certificates"),
    )
    op.create_table(
        "signing_profiles",
        sa.Column("name", _name(64), nullable=False),
        sa.Column("profile_version", sa.String(10), nullable=False),
        sa.Column("platform_id", sa.String(64), nullable=False),
        sa.Column("certificate_id", sa.String(36), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("revoked_at", _timestamp(), nullable=True),
        sa.Column("revocation_effective_from", _timestamp(), nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_signing_profiles"),
        sa.ForeignKeyConstraint(["certificate_id"], ["signing_certificates.certificate_id"],
                                name="fk_signing_profiles_certificate_id_signing_certificates",
                                ondelete="RESTRICT"),
    )
    op.create_index("ix_signing_profiles_certificate_id", "signing_profiles",
                    ["certificate_id"])
    op.create_table(
        "signing_jobs",
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("client_request_token", sa.String(64), nullable=False),
        sa.Column("profile_name", _name(64), nullable=False),
        sa.Column("profile_version", sa.String(10), nullable=False),
        sa.Column("platform_id", sa.String(64), nullable=False),
        sa.Column("certificate_id", sa.String(36), nullable=False),
        sa.Column("source_bucket", sa.String(255), nullable=False),
        sa.Column("source_key", _name(255), nullable=False),
        sa.Column("source_version", sa.String(64), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("file_sha256", sa.String(64), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("signed_bucket", sa.String(255), nullable=True),
        sa.Column("signed_key", _name(255), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(128), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.Column("completed_at", _timestamp(), nullable=True),
        sa.Column("signature_expires_at", _timestamp(), nullable=True),
        sa.Column("revoked_at", _timestamp(), nullable=True),
        sa.Column("revoked_by", sa.String(128), nullable=True),
        sa.Column("revocation_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("job_id", name="pk_signing_jobs"),
        sa.UniqueConstraint("client_request_token",
                            name="uq_signing_jobs_client_request_token"),
    )
    op.create_index("ix_signing_jobs_profile_name", "signing_jobs", ["profile_name"])
    op.create_table(
        "ota_updates",
        sa.Column("ota_update_id", _name(128), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("creation_date", _timestamp(), nullable=False),
        sa.Column("last_modified_date", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("ota_update_id", name="pk_ota_updates"),
    )


def downgrade() -> None:
    op.drop_table("ota_updates")
    op.drop_index("ix_signing_jobs_profile_name", table_name="signing_jobs")
    op.drop_table("signing_jobs")
    op.drop_index("ix_signing_profiles_certificate_id", table_name="signing_profiles")
    op.drop_table("signing_profiles")
    op.drop_table("signing_certificates")
