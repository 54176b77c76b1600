"""Repository of threat detection (tables ``threat_findings`` and
``threat_intel_sets``): findings with their aggregated counts, and the threat lists an
operator imported. The documents hold GuardDuty-shaped details the service builds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._schema import threat_findings, threat_intel_sets


@dataclass(frozen=True, slots=True)
class ThreatFindingRow:
    id: str
    type: str
    resource_id: str
    first_seen: datetime
    last_seen: datetime
    count: int
    archived: bool
    updated_at: datetime
    document: Mapping[str, Any]  # evidence, source address, key, api


@dataclass(frozen=True, slots=True)
class ThreatIntelSetRow:
    id: str
    name: str
    format: str
    location: str
    status: str
    entries: list[str]
    created_at: datetime


class ThreatRepository:
    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def save_finding(self, row: ThreatFindingRow) -> None:
        t = threat_findings
        values = {"type": row.type, "resource_id": row.resource_id,
                  "first_seen": row.first_seen, "last_seen": row.last_seen,
                  "count": row.count, "archived": row.archived,
                  "updated_at": row.updated_at, "document": dict(row.document)}
        if self._conn.execute(t.update().where(t.c.id == row.id).values(**values)
                              ).rowcount == 0:
            self._conn.execute(t.insert().values(id=row.id, **values))

    def findings(self) -> list[ThreatFindingRow]:
        t = threat_findings
        return [ThreatFindingRow(r.id, r.type, r.resource_id, r.first_seen, r.last_seen,
                                 r._mapping["count"], r.archived, r.updated_at, r.document)
                for r in self._conn.execute(sa.select(t).order_by(t.c.first_seen, t.c.id))]

    def set_archived(self, ids: list[str], archived: bool, now: datetime) -> None:
        t = threat_findings
        if ids:
            self._conn.execute(t.update().where(t.c.id.in_(ids)).values(
                archived=archived, updated_at=now))

    def save_intel_set(self, row: ThreatIntelSetRow) -> None:
        t = threat_intel_sets
        values = {"name": row.name, "format": row.format, "location": row.location,
                  "status": row.status, "entries": list(row.entries),
                  "created_at": row.created_at}
        if self._conn.execute(t.update().where(t.c.id == row.id).values(**values)
                              ).rowcount == 0:
            self._conn.execute(t.insert().values(id=row.id, **values))

    def intel_sets(self) -> list[ThreatIntelSetRow]:
        t = threat_intel_sets
        return [ThreatIntelSetRow(r.id, r.name, r.format, r.location, r.status,
                                  list(r.entries), r.created_at)
                for r in self._conn.execute(sa.select(t).order_by(t.c.created_at, t.c.id))]

    def delete_intel_set(self, intel_id: str) -> bool:
        t = threat_intel_sets
        return bool(self._conn.execute(t.delete().where(t.c.id == intel_id)).rowcount)
