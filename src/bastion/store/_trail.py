"""Repository of the hash-chained trail: append and read, nothing else.

Theory of operation: an append runs in one transaction that first locks the chain head
(:meth:`TrailRepository.lock_head`: ``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` already holds the database's write lock), then inserts the record and
moves the head, with its new seal, by a compare-and-set (:meth:`TrailRepository.append`).
Two writers on two nodes therefore take turns; and should one ever skip the lock, the
primary key on ``sequence``, the unique ``previous_hash`` and the compare-and-set on the
head make its insert fail rather than fork the chain.

The head row (``trail_head``, chain ``"main"``) is created by the schema migration, never
here: a missing head means it was deleted, and the trail service refuses to guess it.
It holds the last sequence and link, ``keyed_from`` (the first sequence whose link is
keyed; earlier records predate the keyed trail) and ``seal`` (``NULL`` until a Bastion
holding the master key first wrote to the trail after the migration).

There is deliberately no update and no delete: the trail is append-only through this
code. Links, seals and verification are the trail service's job (:mod:`bastion.trail`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

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
    """The chain head: the last record (sequence 0 and the genesis hash when empty).

    :ivar keyed_from: the first sequence whose link is keyed; ``None`` when the head was
        never sealed (a migrated database before its first keyed append).
    :ivar seal: the head's seal (hex HMAC), ``None`` when never sealed.
    """

    sequence: int
    hash: str
    keyed_from: int | None = None
    seal: str | None = None


class TrailRepository:
    """The trail (tables ``trail_records`` and ``trail_head``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    # -- writing ----------------------------------------------------------------------

    def lock_head(self) -> TrailHead | None:
        """Lock the chain head for this transaction and return it; ``None`` when the head
        row is missing (it is created by the schema migration, so it was deleted)."""
        return self._select_head(for_update=True)

    def append(self, row: TrailRecordRow, *, keyed_from: int, seal: str) -> None:
        """Insert ``row`` and make it the chain head, sealed with ``seal``. Call
        :meth:`lock_head` first in the same transaction.

        :param keyed_from: the head's (possibly unchanged) keyed boundary.
        :param seal: the new head's seal, computed by the trail service.

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
            .values(sequence=row.sequence, hash=row.hash, keyed_from=keyed_from, seal=seal)
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

    def seal_head(self, *, hash: str, keyed_from: int, seal: str) -> None:
        """Seal the chain head while it is empty (sequence 0) and was never sealed, naming
        ``hash`` (the genesis hash). Call :meth:`lock_head` first in the same transaction.

        :raises ConflictError: the head is no longer empty and unsealed.
        """
        moved = self._conn.execute(
            trail_head.update()
            .where(trail_head.c.chain == MAIN_CHAIN, trail_head.c.sequence == 0,
                   trail_head.c.seal.is_(None))
            .values(hash=hash, keyed_from=keyed_from, seal=seal)
        )
        if moved.rowcount != 1:
            raise ConflictError("trail head is no longer empty and unsealed")

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
        stmt = sa.select(trail_head.c.sequence, trail_head.c.hash, trail_head.c.keyed_from,
                         trail_head.c.seal).where(trail_head.c.chain == MAIN_CHAIN)
        if for_update:
            stmt = stmt.with_for_update()
        found = self._conn.execute(stmt).first()
        if found is None:
            return None
        keyed_from = None if found[2] is None else int(found[2])
        seal = None if found[3] is None else str(found[3])
        return TrailHead(int(found[0]), str(found[1]), keyed_from, seal)


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
