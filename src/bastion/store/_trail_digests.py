"""Repository of the trail's signed digests: append, read, and a cursor per sink.

Theory of operation: a digest is created in one transaction that reads the newest
digest (:meth:`TrailDigestRepository.latest`) and inserts the next number
(:meth:`TrailDigestRepository.add`); the primary key on ``number`` and the unique file
name refuse a second digest N, so two nodes digesting at once never fork the digest
chain (the loser's insert fails with :class:`ConflictError`). Digests are never updated
or deleted here. Each sink's cursor (:meth:`TrailDigestRepository.delivered_through`)
says how far it has received the chain; a sink that failed is sent the rest later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._schema import trail_digest_deliveries, trail_digests
from ._sql import execute_write


@dataclass(frozen=True, slots=True)
class TrailDigestRow:
    """One signed digest: ``document`` is the file, byte for byte (UTF-8 text)."""

    number: int
    name: str
    first_sequence: int
    last_sequence: int
    end_time: datetime
    document: str


class TrailDigestRepository:
    """The digests (tables ``trail_digests`` and ``trail_digest_deliveries``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def latest(self) -> TrailDigestRow | None:
        """The newest digest, or ``None`` before the first."""
        found = self._conn.execute(
            sa.select(trail_digests).order_by(trail_digests.c.number.desc()).limit(1)).first()
        return None if found is None else _row(found)

    def add(self, row: TrailDigestRow) -> None:
        """Insert the next digest.

        :raises ConflictError: its number or name is taken (another writer was first).
        """
        execute_write(self._conn, trail_digests.insert().values(
            number=row.number, name=row.name, first_sequence=row.first_sequence,
            last_sequence=row.last_sequence, end_time=row.end_time, document=row.document))

    def after(self, number: int, *, limit: int = 100) -> list[TrailDigestRow]:
        """Up to ``limit`` digests numbered above ``number``, oldest first.

        :raises ValueError: ``limit`` < 1.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        stmt = (sa.select(trail_digests).where(trail_digests.c.number > number)
                .order_by(trail_digests.c.number).limit(limit))
        return [_row(found) for found in self._conn.execute(stmt)]

    def delivered_through(self, sink: str) -> int:
        """The last digest number ``sink`` has received (0 for none)."""
        value = self._conn.execute(
            sa.select(trail_digest_deliveries.c.delivered_through)
            .where(trail_digest_deliveries.c.sink == sink)).scalar_one_or_none()
        return 0 if value is None else int(value)

    def set_delivered_through(self, sink: str, number: int) -> None:
        """Move ``sink``'s cursor forward to ``number`` (never back)."""
        moved = self._conn.execute(
            trail_digest_deliveries.update()
            .where(trail_digest_deliveries.c.sink == sink,
                   trail_digest_deliveries.c.delivered_through < number)
            .values(delivered_through=number))
        if moved.rowcount == 0 and self.delivered_through(sink) == 0:
            execute_write(self._conn, trail_digest_deliveries.insert().values(
                sink=sink, delivered_through=number))


def _row(found: sa.Row[Any]) -> TrailDigestRow:
    values = found._mapping
    return TrailDigestRow(
        number=int(values["number"]), name=values["name"],
        first_sequence=int(values["first_sequence"]),
        last_sequence=int(values["last_sequence"]), end_time=values["end_time"],
        document=values["document"])
