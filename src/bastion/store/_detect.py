"""Repository of Device Defender detect: security profiles, custom metrics, dimensions,
metric values (with retention), violations and their events.

Profiles keep their AWS-shaped parts (behaviors, alert targets, targets, …) as one JSON
document; metric values and violation events are append-mostly and keyed by their
natural keys, so a batch insert needs no id allocation on either backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._schema import (
    detect_custom_metrics,
    detect_dimensions,
    detect_metric_values,
    detect_models,
    detect_security_profiles,
    detect_violation_events,
    detect_violations,
)
from ._tags import delete_tags_of


@dataclass(frozen=True, slots=True)
class DetectProfileRow:
    name: str
    version: int
    document: Mapping[str, Any]
    creation_date: datetime
    last_modified_date: datetime


@dataclass(frozen=True, slots=True)
class MetricValueRow:
    thing_name: str
    metric: str
    dimension: str  # "" without a dimension
    timestamp: datetime
    value: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ViolationRow:
    violation_id: str
    thing_name: str
    security_profile_name: str
    behavior_name: str
    behavior: Mapping[str, Any]
    active: bool
    suppressed: bool
    start_time: datetime
    last_time: datetime
    last_value: Mapping[str, Any] | None
    verification_state: str | None
    verification_description: str | None
    details: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ViolationEventRow:
    violation_id: str
    event_type: str
    timestamp: datetime
    thing_name: str
    security_profile_name: str
    behavior: Mapping[str, Any]
    metric_value: Mapping[str, Any] | None
    suppressed: bool
    details: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class DetectModelRow:
    security_profile_name: str
    behavior_name: str
    metric: str
    confidence: str
    state: bytes
    updated_at: datetime


class DetectRepository:
    """The detect tables (``detect_*``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    # -- profiles, custom metrics, dimensions ---------------------------------------------

    def save_profile(self, row: DetectProfileRow) -> None:
        t = detect_security_profiles
        values = {"version": row.version, "document": dict(row.document),
                  "creation_date": row.creation_date,
                  "last_modified_date": row.last_modified_date}
        updated = self._conn.execute(t.update().where(t.c.name == row.name).values(**values))
        if updated.rowcount == 0:
            self._conn.execute(t.insert().values(name=row.name, **values))

    def delete_profile(self, name: str) -> None:
        t = detect_security_profiles
        self._conn.execute(t.delete().where(t.c.name == name))
        delete_tags_of(self._conn, "securityprofile", name)

    def profiles(self) -> list[DetectProfileRow]:
        t = detect_security_profiles
        return [DetectProfileRow(r.name, r.version, r.document, r.creation_date,
                                 r.last_modified_date)
                for r in self._conn.execute(sa.select(t).order_by(t.c.name))]

    def save_custom_metric(self, name: str, metric_type: str, display_name: str,
                           now: datetime) -> None:
        t = detect_custom_metrics
        updated = self._conn.execute(t.update().where(t.c.name == name).values(
            display_name=display_name))
        if updated.rowcount == 0:
            self._conn.execute(t.insert().values(name=name, metric_type=metric_type,
                                                 display_name=display_name,
                                                 creation_date=now))

    def delete_custom_metric(self, name: str) -> None:
        t = detect_custom_metrics
        self._conn.execute(t.delete().where(t.c.name == name))
        delete_tags_of(self._conn, "custommetric", name)

    def custom_metrics(self) -> list[tuple[str, str, str]]:
        t = detect_custom_metrics
        return [(r.name, r.metric_type, r.display_name)
                for r in self._conn.execute(sa.select(t).order_by(t.c.name))]

    def save_dimension(self, name: str, type_: str, values: list[str], now: datetime) -> None:
        t = detect_dimensions
        updated = self._conn.execute(t.update().where(t.c.name == name).values(
            string_values=values))
        if updated.rowcount == 0:
            self._conn.execute(t.insert().values(name=name, type=type_,
                                                 string_values=values, creation_date=now))

    def delete_dimension(self, name: str) -> None:
        t = detect_dimensions
        self._conn.execute(t.delete().where(t.c.name == name))
        delete_tags_of(self._conn, "dimension", name)

    def dimensions(self) -> list[tuple[str, str, list[str]]]:
        t = detect_dimensions
        return [(r.name, r.type, list(r.string_values))
                for r in self._conn.execute(sa.select(t).order_by(t.c.name))]

    # -- metric values --------------------------------------------------------------------

    def add_metric_values(self, rows: Iterable[MetricValueRow]) -> None:
        """Insert datapoints (a repeated key keeps the last value of the batch)."""
        unique: dict[tuple[str, str, str, datetime], Mapping[str, Any]] = {}
        for row in rows:
            unique[(row.thing_name, row.metric, row.dimension, row.timestamp)] = row.value
        if not unique:
            return
        self._conn.execute(detect_metric_values.insert(), [
            {"thing_name": k[0], "metric": k[1], "dimension": k[2], "timestamp": k[3],
             "value": dict(v)} for k, v in unique.items()])

    def metric_values(self, thing_name: str, metric: str, dimension: str, start: datetime,
                      end: datetime, *, limit: int = 10_000) -> list[MetricValueRow]:
        t = detect_metric_values
        stmt = (sa.select(t).where(t.c.thing_name == thing_name, t.c.metric == metric,
                                   t.c.dimension == dimension, t.c.timestamp >= start,
                                   t.c.timestamp < end)
                .order_by(t.c.timestamp).limit(limit))
        return [MetricValueRow(r.thing_name, r.metric, r.dimension, r.timestamp, r.value)
                for r in self._conn.execute(stmt)]

    def purge_metric_values(self, before: datetime) -> int:
        t = detect_metric_values
        return int(self._conn.execute(t.delete().where(t.c.timestamp < before)).rowcount)

    # -- violations -----------------------------------------------------------------------

    def save_violation(self, row: ViolationRow) -> None:
        self.save_violations([row])

    def save_violations(self, rows: Iterable[ViolationRow]) -> None:
        """Insert or update violations by id (a repeated id keeps the last row): one
        select of the ids already stored, then one batched update and one batched
        insert. An update leaves the verification state alone: only
        :meth:`set_verification` changes it, so an evaluator holding an older copy (another
        node's API set it meanwhile) cannot undo it."""
        t = detect_violations
        unique = {row.violation_id: row for row in rows}
        if not unique:
            return
        ids = list(unique)
        existing: set[str] = set()
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start:start + _IN_CHUNK]
            existing.update(self._conn.execute(
                sa.select(t.c.violation_id).where(t.c.violation_id.in_(chunk))).scalars())
        updates = [{"b_violation_id": i, **_violation_values(r, verification=False)}
                   for i, r in unique.items() if i in existing]
        inserts = [{"violation_id": i, **_violation_values(r)}
                   for i, r in unique.items() if i not in existing]
        if updates:
            self._conn.execute(
                t.update().where(t.c.violation_id == sa.bindparam("b_violation_id")),
                updates)
        if inserts:
            self._conn.execute(t.insert(), inserts)

    def active_violations(self) -> list[ViolationRow]:
        t = detect_violations
        stmt = sa.select(t).where(t.c.active.is_(True)).order_by(t.c.start_time)
        return [_violation(r) for r in self._conn.execute(stmt)]

    def get_violation(self, violation_id: str) -> ViolationRow | None:
        t = detect_violations
        found = self._conn.execute(sa.select(t).where(t.c.violation_id == violation_id)).first()
        return None if found is None else _violation(found)

    def set_verification(self, violation_id: str, state: str, description: str | None
                         ) -> bool:
        t = detect_violations
        result = self._conn.execute(t.update().where(t.c.violation_id == violation_id).values(
            verification_state=state, verification_description=description))
        return result.rowcount == 1

    def add_events(self, rows: Iterable[ViolationEventRow]) -> None:
        batch = [{"violation_id": r.violation_id, "event_type": r.event_type,
                  "timestamp": r.timestamp, "thing_name": r.thing_name,
                  "security_profile_name": r.security_profile_name,
                  "behavior": dict(r.behavior),
                  "metric_value": None if r.metric_value is None else dict(r.metric_value),
                  "suppressed": r.suppressed,
                  "details": None if r.details is None else dict(r.details)} for r in rows]
        if batch:
            self._conn.execute(detect_violation_events.insert(), batch)

    def events(self, start: datetime, end: datetime, *, thing_name: str | None = None,
               security_profile_name: str | None = None, limit: int = 10_000
               ) -> list[tuple[ViolationEventRow, str | None, str | None]]:
        """Events in [start, end] with their violation's verification state and
        description."""
        e, v = detect_violation_events, detect_violations
        stmt = (sa.select(e, v.c.verification_state, v.c.verification_description)
                .select_from(e.outerjoin(v, v.c.violation_id == e.c.violation_id))
                .where(e.c.timestamp >= start, e.c.timestamp <= end))
        if thing_name is not None:
            stmt = stmt.where(e.c.thing_name == thing_name)
        if security_profile_name is not None:
            stmt = stmt.where(e.c.security_profile_name == security_profile_name)
        stmt = stmt.order_by(e.c.timestamp, e.c.violation_id).limit(limit)
        return [(ViolationEventRow(r.violation_id, r.event_type, r.timestamp, r.thing_name,
                                   r.security_profile_name, r.behavior, r.metric_value,
                                   r.suppressed, r.details), r.verification_state,
                 r.verification_description) for r in self._conn.execute(stmt)]

    def purge_violations(self, before: datetime) -> None:
        e, v = detect_violation_events, detect_violations
        self._conn.execute(e.delete().where(e.c.timestamp < before))
        self._conn.execute(v.delete().where(v.c.active.is_(False), v.c.last_time < before))


    # -- ML models -------------------------------------------------------------------------

    def save_model(self, row: DetectModelRow) -> None:
        t = detect_models
        key = (t.c.security_profile_name == row.security_profile_name) & (
            t.c.behavior_name == row.behavior_name)
        values = {"metric": row.metric, "confidence": row.confidence, "state": row.state,
                  "updated_at": row.updated_at}
        if self._conn.execute(t.update().where(key).values(**values)).rowcount == 0:
            self._conn.execute(t.insert().values(
                security_profile_name=row.security_profile_name,
                behavior_name=row.behavior_name, **values))

    def models(self) -> list[DetectModelRow]:
        t = detect_models
        return [DetectModelRow(r.security_profile_name, r.behavior_name, r.metric,
                               r.confidence, r.state, r.updated_at)
                for r in self._conn.execute(sa.select(t))]

    def delete_models(self, security_profile_name: str,
                      keep: Iterable[str] = ()) -> None:
        """Forget the models of a profile's behaviors, except those named in ``keep``."""
        t = detect_models
        stmt = t.delete().where(t.c.security_profile_name == security_profile_name)
        kept = list(keep)
        if kept:
            stmt = stmt.where(t.c.behavior_name.not_in(kept))
        self._conn.execute(stmt)


_IN_CHUNK = 500  # ids per IN (...) list, well under SQLite's bound-parameter limit


def _violation_values(row: ViolationRow, *, verification: bool = True) -> dict[str, Any]:
    values: dict[str, Any] = {
        "thing_name": row.thing_name, "security_profile_name": row.security_profile_name,
        "behavior_name": row.behavior_name, "behavior": dict(row.behavior),
        "active": row.active, "suppressed": row.suppressed,
        "start_time": row.start_time, "last_time": row.last_time,
        "last_value": None if row.last_value is None else dict(row.last_value),
        "verification_state": row.verification_state,
        "verification_description": row.verification_description,
        "details": None if row.details is None else dict(row.details)}
    if not verification:
        del values["verification_state"], values["verification_description"]
    return values


def _violation(r: Any) -> ViolationRow:
    return ViolationRow(r.violation_id, r.thing_name, r.security_profile_name,
                        r.behavior_name, r.behavior, r.active, r.suppressed, r.start_time,
                        r.last_time, r.last_value, r.verification_state,
                        r.verification_description, r.details)
