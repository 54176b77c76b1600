"""Device Defender detect: security profiles, metrics, violations.

Revision ID: 0008
Revises: 0007

Reserved in sequence so that features built in parallel keep one linear history; the
work that owns these tables fills in upgrade() and downgrade(). Frozen snapshot: see 0001.
"""

from __future__ import annotations

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
