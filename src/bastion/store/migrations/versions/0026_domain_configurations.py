"""Domain configurations and the server certificates they serve.

Revision ID: 0026
Revises: 0024

* ``server_certificates``: certificates imported through the ACM analog (ImportCertificate),
  with their chain and their private key sealed with the master key.
* ``domain_configurations``: server names served by the MQTT listeners, each with its
  certificate (a foreign key: a certificate in use cannot be deleted), TLS security
  policy and status; the row of the default domain (``iot:Data-ATS``) has neither name
  nor certificate.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision: str | None = "0024"
branch_labels: str | None = None
depends_on: str | None = None


def _timestamp() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _name(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "server_certificates",
        sa.Column("certificate_id", sa.String(36), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("chain_pem", sa.Text(), nullable=True),
        sa.Column("sealed_key", sa.LargeBinary(), nullable=False),
        sa.Column("domain_name", sa.String(253), nullable=True),
        sa.Column("imported_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("certificate_id", name="pk_server_certificates"),
    )
    op.create_table(
        "domain_configurations",
        sa.Column("name", _name(128), nullable=False),
        sa.Column("arn_suffix", sa.String(16), nullable=False),
        sa.Column("domain_name", sa.String(253), nullable=True),
        sa.Column("certificate_id", sa.String(36), nullable=True),
        sa.Column("service_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("security_policy", sa.String(128), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("last_status_change", _timestamp(), nullable=False),
        sa.Column("created_at", _timestamp(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_domain_configurations"),
        sa.ForeignKeyConstraint(["certificate_id"], ["server_certificates.certificate_id"],
                                name="fk_domain_configurations_certificate_id_server_certificates"),
        sa.UniqueConstraint("domain_name", name="uq_domain_configurations_domain_name"),
    )
    op.create_index("ix_domain_configurations_certificate_id", "domain_configurations",
                    ["certificate_id"])


def downgrade() -> None:
    op.drop_index("ix_domain_configurations_certificate_id",
                  table_name="domain_configurations")
    op.drop_table("domain_configurations")
    op.drop_table("server_certificates")
