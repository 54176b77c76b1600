"""Job execution retries (``jobExecutionsRetryConfig``).

Revision ID: 0027
Revises: 0026

* ``jobs.retry_config`` and ``job_templates.retry_config``: the configuration as AWS
  spells it (``{"criteriaList": [...]}``), or NULL.
* ``job_executions.retry_attempt``: how many retries came before this execution (0 for
  the first), AWS's ``retryAttempt``.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision: str | None = "0026"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("retry_config", sa.JSON(), nullable=True))
    op.add_column("job_templates", sa.Column("retry_config", sa.JSON(), nullable=True))
    op.add_column("job_executions", sa.Column(
        "retry_attempt", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("job_executions") as batch:
        batch.drop_column("retry_attempt")
    with op.batch_alter_table("job_templates") as batch:
        batch.drop_column("retry_config")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("retry_config")
