"""Repository of the hash-chained trail: append and read, nothing else.

Theory of operation: an append runs in one transaction that first locks the chain head
(:meth:`TrailRepository.lock_head`: ``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already holds the database's write lock), then inserts the record and
moves the head with a compare-and-set (:meth:`TrailRepository.append`). Two writers on
two nodes therefore take turns; and should one ever skip the lock, the primary key on
``sequence``, the unique ``previous_hash`` and the compare-and-set on the head make its
insert fail rather than fork the chain.

There is deliberately no update and no delete: the trail is append-only through this
code. Hashing and verification are the trail service's job (:mod:`bastion.trail`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ._errors import ConflictError
from ._schema import trail_head, trail_records
from ._sql import execute_write

MAIN_CHAIN: Final = "main"


@dataclass(frozen=True, slots=True)
class TrailRecordRow:
    """One stored trail record; ``parameters`` is the canonical JSON text that was hashed."""

    sequence: int
    time: datetime
    access_key_id: str
    role: str | None
    source_ip: str
    service: str
    operation: str
    parameters: str
    outcome: str
    error_code: str | None
    http_status: int
    previous_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class TrailHead:
    """The last record of the chain (sequence 0 and the genesis hash when empty)."""

    sequence: int
    hash: str


class TrailRepository:
    """The trail (tables ``trail_records`` and ``trail_head``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    # -- writing ----------------------------------------------------------------------

    def lock_head(self, genesis_hash: str) -> TrailHead:
        """Lock the chain head for this transaction and return it, creating it when
        missing: from the last stored record if there is one, else ``(0, genesis_hash)``.
        """
        head = self._select_head(for_update=True)
        if head is not None:
            return head
        last = self._conn.execute(
            sa.select(trail_records.c.sequence, trail_records.c.hash)
            .order_by(trail_records.c.sequence.desc())
            .limit(1)
        ).first()
        sequence, hash_ = (0, genesis_hash) if last is None else (int(last[0]), str(last[1]))
        values = {"chain": MAIN_CHAIN, "sequence": sequence, "hash": hash_}
        if self._conn.dialect.name == "postgresql":
            self._conn.execute(
                postgresql.insert(trail_head).values(**values).on_conflict_do_nothing()
            )
        else:
            self._conn.execute(sqlite.insert(trail_head).values(**values).on_conflict_do_nothing())
        head = self._select_head(for_update=True)
        assert head is not None  # inserted above, or by a concurrent writer
        return head

    def append(self, row: TrailRecordRow) -> None:
        """Insert ``row`` and make it the chain head. Call :meth:`lock_head` first in the
        same transaction.

        :raises ConflictError: the head is not ``row.sequence - 1`` / ``row.previous_hash``
            (another writer appended first), or the sequence or predecessor is taken.
        """
        moved = self._conn.execute(
            trail_head.update()
            .where(
                trail_head.c.chain == MAIN_CHAIN,
                trail_head.c.sequence == row.sequence - 1,
                trail_head.c.hash == row.previous_hash,
            )
            .values(sequence=row.sequence, hash=row.hash)
        )
        if moved.rowcount != 1:
            raise ConflictError(
                f"trail head is not at sequence {row.sequence - 1} with the expected hash"
            )
        execute_write(
            self._conn,
            trail_records.insert().values(
                sequence=row.sequence,
                time=row.time,
                access_key_id=row.access_key_id,
                role=row.role,
                source_ip=row.source_ip,
                service=row.service,
                operation=row.operation,
                parameters=row.parameters,
                outcome=row.outcome,
                error_code=row.error_code,
                http_status=row.http_status,
                previous_hash=row.previous_hash,
                hash=row.hash,
            ),
        )

    # -- reading ----------------------------------------------------------------------

    def head(self) -> TrailHead | None:
        """The chain head, or ``None`` before the first append."""
        return self._select_head(for_update=False)

    def records(
        self,
        *,
        after_sequence: int = 0,
        up_to_sequence: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1000,
    ) -> list[TrailRecordRow]:
        """Up to ``limit`` records with ``sequence > after_sequence``, in sequence order.

        :param up_to_sequence: only records with ``sequence <= up_to_sequence``.
        :param since: only records with ``time >= since``.
        :param until: only records with ``time < until``.
        :raises ValueError: ``limit`` < 1.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        stmt = sa.select(trail_records).where(trail_records.c.sequence > after_sequence)
        if up_to_sequence is not None:
            stmt = stmt.where(trail_records.c.sequence <= up_to_sequence)
        if since is not None:
            stmt = stmt.where(trail_records.c.time >= since)
        if until is not None:
            stmt = stmt.where(trail_records.c.time < until)
        stmt = stmt.order_by(trail_records.c.sequence).limit(limit)
        return [_record(found) for found in self._conn.execute(stmt)]

    def _select_head(self, *, for_update: bool) -> TrailHead | None:
        stmt = sa.select(trail_head.c.sequence, trail_head.c.hash).where(
            trail_head.c.chain == MAIN_CHAIN
        )
        if for_update:
            stmt = stmt.with_for_update()
        found = self._conn.execute(stmt).first()
        return None if found is None else TrailHead(int(found[0]), str(found[1]))


def _record(found: sa.Row[Any]) -> TrailRecordRow:
    values = found._mapping
    return TrailRecordRow(
        sequence=int(values["sequence"]),
        time=values["time"],
        access_key_id=values["access_key_id"],
        role=values["role"],
        source_ip=values["source_ip"],
        service=values["service"],
        operation=values["operation"],
        parameters=values["parameters"],
        outcome=values["outcome"],
        error_code=values["error_code"],
        http_status=int(values["http_status"]),
        previous_hash=values["previous_hash"],
        hash=values["hash"],
    )
