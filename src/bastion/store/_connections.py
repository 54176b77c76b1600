"""The connection journal (table ``connection_sessions``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from ._schema import connection_sessions as t


@dataclass(frozen=True, slots=True)
class ConnectionSessionRow:
    connection_id: str
    session_id: str
    client_id: str
    certificate_id: str
    source_ip: str
    node: str
    connected_at: datetime
    disconnected_at: datetime | None
    disconnect_reason: str | None


_CLOSE = (t.update()
          .where(t.c.connection_id == sa.bindparam("b_id"), t.c.disconnected_at.is_(None))
          .values(disconnected_at=sa.bindparam("b_when"),
                  disconnect_reason=sa.bindparam("b_reason")))


def _values(row: ConnectionSessionRow) -> dict[str, object]:
    return {"connection_id": row.connection_id, "session_id": row.session_id,
            "client_id": row.client_id, "certificate_id": row.certificate_id,
            "source_ip": row.source_ip, "node": row.node, "connected_at": row.connected_at,
            "disconnected_at": row.disconnected_at, "disconnect_reason": row.disconnect_reason}


class ConnectionJournalRepository:
    """Connections as they open and close; read back by the audit."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def opened(self, *rows: ConnectionSessionRow) -> None:
        """Insert the rows (one ``executemany`` for a batch)."""
        if rows:
            self._conn.execute(t.insert(), [_values(row) for row in rows])

    def closed(self, *closes: tuple[str, datetime, str]) -> None:
        """Mark each ``(connection id, when, reason)`` closed, unless it already is."""
        if closes:
            self._conn.execute(_CLOSE, [{"b_id": ident, "b_when": when, "b_reason": reason}
                                        for ident, when, reason in closes])

    def close_all_open(self, node: str, when: datetime, reason: str) -> int:
        """Mark this node's sessions closed (on start-up after a crash, or shutdown)."""
        result = self._conn.execute(
            t.update().where(t.c.node == node, t.c.disconnected_at.is_(None))
            .values(disconnected_at=when, disconnect_reason=reason))
        return int(result.rowcount)

    def of_certificate(self, certificate_id: str, *, since: datetime | None = None
                       ) -> list[ConnectionSessionRow]:
        stmt = sa.select(t).where(t.c.certificate_id == certificate_id)
        if since is not None:
            stmt = stmt.where(sa.or_(t.c.disconnected_at.is_(None),
                                     t.c.disconnected_at >= since))
        return [ConnectionSessionRow(**row._mapping)
                for row in self._conn.execute(stmt.order_by(t.c.connected_at))]

    def latest_of_client(self, client_id: str) -> ConnectionSessionRow | None:
        """The most recent connection of ``client_id`` on any node (an open one first when
        two started at the same instant), or ``None`` when it never connected."""
        stmt = (sa.select(t).where(t.c.client_id == client_id)
                .order_by(t.c.connected_at.desc(),
                          sa.case((t.c.disconnected_at.is_(None), 0), else_=1))
                .limit(1))
        row = self._conn.execute(stmt).first()
        return None if row is None else ConnectionSessionRow(**row._mapping)

    def recent_of_client(self, client_id: str, limit: int) -> list[ConnectionSessionRow]:
        """The ``limit`` most recent connections of ``client_id`` on any node, newest
        first.

        :raises ValueError: ``limit`` < 1.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        stmt = (sa.select(t).where(t.c.client_id == client_id)
                .order_by(t.c.connected_at.desc(), t.c.connection_id).limit(limit))
        return [ConnectionSessionRow(**row._mapping) for row in self._conn.execute(stmt)]

    def open_now(self) -> list[ConnectionSessionRow]:
        """The connections the journal holds open, on any node, oldest first."""
        stmt = (sa.select(t).where(t.c.disconnected_at.is_(None))
                .order_by(t.c.connected_at, t.c.client_id))
        return [ConnectionSessionRow(**row._mapping) for row in self._conn.execute(stmt)]

    def between(self, since: datetime, until: datetime) -> list[ConnectionSessionRow]:
        """Sessions that overlap ``[since, until]``, by connection time."""
        stmt = (sa.select(t)
                .where(t.c.connected_at <= until,
                       sa.or_(t.c.disconnected_at.is_(None), t.c.disconnected_at >= since))
                .order_by(t.c.connected_at))
        return [ConnectionSessionRow(**row._mapping) for row in self._conn.execute(stmt)]
