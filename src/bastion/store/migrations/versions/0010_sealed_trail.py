"""The keyed trail: the chain head gets a keyed boundary and a seal.

Revision ID: 0010
Revises: 0009

* ``trail_head.keyed_from``: the first sequence whose link is keyed (HMAC under a key
  derived from the master key). Records before it were written by an older Bastion with
  plain SHA-256 links; they stay as they are and are verified as before.
* ``trail_head.seal``: the head's own HMAC. A migration holds no key, so it leaves the
  seal ``NULL``; the first Bastion start (or CLI command writing to the trail) afterwards
  seals it, appending a keyed ``SealTrail`` record naming the head it found when there
  are older records.
* The head row now always exists: it is inserted here when missing (from the last record,
  or empty), so that a head deleted later is an error rather than a fresh start.

Downgrade drops both columns; records written keyed then no longer verify under 0009's
code (their links are HMACs), which is the point.

Frozen snapshot: see 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

_GENESIS = "0" * 64


def upgrade() -> None:
    op.add_column("trail_head", sa.Column("keyed_from", sa.BigInteger(), nullable=True))
    op.add_column("trail_head", sa.Column("seal", sa.String(64), nullable=True))
    conn = op.get_bind()
    head = conn.execute(sa.text("SELECT sequence FROM trail_head WHERE chain = 'main'")).first()
    if head is None:
        last = conn.execute(sa.text(
            "SELECT sequence, hash FROM trail_records ORDER BY sequence DESC LIMIT 1")).first()
        sequence, hash_ = (0, _GENESIS) if last is None else (int(last[0]), str(last[1]))
        conn.execute(sa.text(
            "INSERT INTO trail_head (chain, sequence, hash) VALUES ('main', :sequence, :hash)"),
            {"sequence": sequence, "hash": hash_})
    conn.execute(sa.text(
        "UPDATE trail_head SET keyed_from = sequence + 1 WHERE keyed_from IS NULL"))


def downgrade() -> None:
    with op.batch_alter_table("trail_head") as batch:
        batch.drop_column("seal")
        batch.drop_column("keyed_from")
