"""Bulk reads the fleet index is built from: things with their attributes and groups,
live shadow documents, and each client id's latest connection.

The index (:mod:`bastion.index`) reads the whole fleet once at start and then, as
events come in, the few things that changed; both go through these queries. Lists of
names are read in chunks, so that no statement carries more bound parameters than
SQLite allows.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from ._schema import connection_sessions, shadows, thing_attributes, thing_group_members, things

_CHUNK: Final = 500


@dataclass(frozen=True, slots=True)
class IndexedThingRow:
    """A thing as the index needs it: its registry fields and direct groups."""

    name: str
    thing_id: str
    thing_type_name: str | None
    version: int
    attributes: dict[str, str]
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ShadowStateRow:
    """A live (not deleted) shadow: ``shadow_name`` is ``""`` for the classic shadow;
    ``state`` the JSON text of ``{"desired": …, "reported": …}``."""

    thing_name: str
    shadow_name: str
    version: int
    state: str


@dataclass(frozen=True, slots=True)
class LatestConnectionRow:
    """A client id's most recent connection: open (``connected``) since ``timestamp``, or
    closed at ``timestamp`` for ``reason``."""

    client_id: str
    connected: bool
    timestamp: datetime
    reason: str | None


class IndexSourceRepository:
    """Read-only bulk queries over things, shadows and the connection journal."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def things(self, names: Collection[str] | None = None) -> list[IndexedThingRow]:
        """The things of ``names`` that exist (every thing when ``None``), by name."""
        base: list[Any] = []
        attributes: dict[str, dict[str, str]] = {}
        groups: dict[str, list[str]] = {}
        for where in _chunks(names):
            t, a, m = things.c, thing_attributes.c, thing_group_members.c
            base.extend(self._conn.execute(
                sa.select(t.name, t.thing_id, t.thing_type_name, t.version)
                .where(where(t.name))).all())
            for thing, key, value in self._conn.execute(
                    sa.select(a.thing_name, a.name, a.value).where(where(a.thing_name))):
                attributes.setdefault(thing, {})[key] = value
            for thing, group in self._conn.execute(
                    sa.select(m.thing_name, m.group_name).where(where(m.thing_name))
                    .order_by(m.thing_name, m.group_name)):
                groups.setdefault(thing, []).append(group)
        base.sort(key=lambda row: row.name)
        return [IndexedThingRow(row.name, row.thing_id, row.thing_type_name, row.version,
                                attributes.get(row.name, {}),
                                tuple(groups.get(row.name, ())))
                for row in base]

    def shadows(self, names: Collection[str] | None = None) -> list[ShadowStateRow]:
        """The live shadows of the things of ``names`` (of every thing when ``None``)."""
        found: list[ShadowStateRow] = []
        s = shadows.c
        for where in _chunks(names):
            rows = self._conn.execute(
                sa.select(s.thing_name, s.shadow_name, s.version, s.state)
                .where(where(s.thing_name), s.state.is_not(None))).all()
            found.extend(ShadowStateRow(r.thing_name, r.shadow_name, r.version, r.state)
                         for r in rows)
        return found

    def latest_connections(self, names: Collection[str] | None = None
                           ) -> dict[str, LatestConnectionRow]:
        """The latest connection of each client id of ``names`` (of every client id that
        names a thing when ``None``); an open one wins a tie."""
        c = connection_sessions.c
        latest: dict[str, LatestConnectionRow] = {}
        for where in _chunks(names):
            stmt = sa.select(c.client_id, c.connected_at, c.disconnected_at,
                             c.disconnect_reason).order_by(
                c.client_id, c.connected_at,
                sa.case((c.disconnected_at.is_(None), 1), else_=0))
            if names is None:
                stmt = stmt.where(c.client_id.in_(sa.select(things.c.name)))
            else:
                stmt = stmt.where(where(c.client_id))
            for client_id, connected_at, disconnected_at, reason in self._conn.execute(stmt):
                if disconnected_at is None:
                    latest[client_id] = LatestConnectionRow(client_id, True, connected_at, None)
                else:
                    latest[client_id] = LatestConnectionRow(
                        client_id, False, disconnected_at, reason or "UNKNOWN")
        return latest


def _chunks(names: Collection[str] | None
            ) -> Iterator[Any]:
    """``where(column)`` filters: one accepting everything when ``names`` is ``None``,
    else one per chunk of names."""
    if names is None:
        yield lambda column: sa.true()
        return
    wanted = sorted(set(names))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start:start + _CHUNK]
        yield lambda column, chunk=chunk: column.in_(chunk)
