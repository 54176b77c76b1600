"""Repositories of certificate rotation (tables ``rotation_policies`` and
``certificate_rotations``), and the fleet reads of the rotation sweep.

A rotation moves through its statuses by conditional updates (``only_if_status``): two
nodes, or two requests of one device, racing for the same step find that one of them
changed the row and the other changed nothing. The service decides what the statuses
mean (:mod:`bastion.rotation`); here they are strings.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._schema import (
    certificate_rotations,
    certificates,
    rotation_policies,
    settings,
    thing_group_members,
    thing_groups,
    thing_principals,
)

CERT = "cert"


@dataclass(frozen=True, slots=True)
class RotationPolicyRow:
    """A thing group's rotation policy; ``None`` settings fall back to the fleet default."""

    group_name: str
    max_age_days: int | None
    rotate_before_expiry_days: int | None
    deactivate_after_hours: int | None
    revoke_after_hours: int | None
    start_jobs: bool | None
    alert_targets: tuple[str, ...] | None
    last_modified_date: datetime


@dataclass(frozen=True, slots=True)
class CertificateRotationRow:
    """One rotation of one thing's certificate."""

    rotation_id: str
    thing_name: str
    job_id: str
    old_certificate_id: str
    new_certificate_id: str | None
    status: str
    reason: str | None
    created_at: datetime
    issued_at: datetime | None = None
    new_connected_at: datetime | None = None
    succeeded_at: datetime | None = None
    deactivate_at: datetime | None = None
    revoke_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class LiveCertificateRow:
    """An ``ACTIVE`` certificate as the sweep reads it: dates and the things it is on."""

    certificate_id: str
    not_after: datetime
    creation_date: datetime
    thing_names: tuple[str, ...]


_ROTATION_FIELDS = tuple(f.name for f in fields(CertificateRotationRow))


class RotationPolicyRepository:
    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def put(self, row: RotationPolicyRow) -> None:
        """Insert or replace the policy of ``row.group_name``."""
        t = rotation_policies
        values = {
            "max_age_days": row.max_age_days,
            "rotate_before_expiry_days": row.rotate_before_expiry_days,
            "deactivate_after_hours": row.deactivate_after_hours,
            "revoke_after_hours": row.revoke_after_hours,
            "start_jobs": row.start_jobs,
            "alert_targets": None if row.alert_targets is None else list(row.alert_targets),
            "last_modified_date": row.last_modified_date,
        }
        updated = self._conn.execute(
            t.update().where(t.c.group_name == row.group_name).values(**values))
        if updated.rowcount == 0:
            self._conn.execute(t.insert().values(group_name=row.group_name, **values))

    def get(self, group_name: str) -> RotationPolicyRow | None:
        t = rotation_policies
        found = self._conn.execute(sa.select(t).where(t.c.group_name == group_name)).first()
        return None if found is None else _policy(found._mapping)

    def delete(self, group_name: str) -> bool:
        t = rotation_policies
        return self._conn.execute(t.delete().where(t.c.group_name == group_name)).rowcount == 1

    def all(self) -> list[RotationPolicyRow]:
        t = rotation_policies
        rows = self._conn.execute(sa.select(t).order_by(t.c.group_name))
        return [_policy(row._mapping) for row in rows]

    def for_groups(self, names: Collection[str]) -> list[RotationPolicyRow]:
        if not names:
            return []
        t = rotation_policies
        rows = self._conn.execute(sa.select(t).where(t.c.group_name.in_(sorted(names)))
                                  .order_by(t.c.group_name))
        return [_policy(row._mapping) for row in rows]

    def governed_things(self, group_name: str) -> list[str]:
        """The things in group ``group_name`` or one of its descendants, by name."""
        tree = sa.select(thing_groups.c.name).where(thing_groups.c.name == group_name).cte(
            "rotation_tree", recursive=True)
        child = thing_groups.alias("child")
        tree = tree.union_all(sa.select(child.c.name).where(child.c.parent_name == tree.c.name))
        m = thing_group_members
        stmt = (sa.select(m.c.thing_name).distinct()
                .where(m.c.group_name.in_(sa.select(tree.c.name)))
                .order_by(m.c.thing_name))
        return list(self._conn.execute(stmt).scalars())

    def group_depths(self, thing_name: str) -> dict[str, int]:
        """The groups of ``thing_name`` and their ancestors: name → distance (a direct
        group is 0, its parent 1, …; the shortest distance when a group is reached twice)."""
        direct = sa.select(thing_group_members.c.group_name.label("name"),
                           sa.literal(0).label("depth")).where(
            thing_group_members.c.thing_name == thing_name)
        chain = direct.cte("rotation_chain", recursive=True)
        parent = thing_groups.alias("parent")
        here = thing_groups.alias("here")
        chain = chain.union_all(
            sa.select(parent.c.name, (chain.c.depth + 1).label("depth"))
            .select_from(chain.join(here, here.c.name == chain.c.name)
                         .join(parent, parent.c.name == here.c.parent_name)))
        depths: dict[str, int] = {}
        for name, depth in self._conn.execute(sa.select(chain.c.name, chain.c.depth)):
            depths[name] = min(depth, depths.get(name, depth))
        return depths


class CertificateRotationRepository:
    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def insert(self, row: CertificateRotationRow) -> None:
        self._conn.execute(certificate_rotations.insert().values(
            **{name: getattr(row, name) for name in _ROTATION_FIELDS}))

    def get(self, rotation_id: str) -> CertificateRotationRow | None:
        t = certificate_rotations
        found = self._conn.execute(sa.select(t).where(t.c.rotation_id == rotation_id)).first()
        return None if found is None else _rotation(found._mapping)

    def update(self, rotation_id: str, *, only_if_status: Collection[str] | None = None,
               **values: Any) -> bool:
        """Set ``values`` on the rotation (when its status is one of ``only_if_status``).
        Returns whether a row changed."""
        unknown = set(values) - set(_ROTATION_FIELDS)
        if unknown:
            raise ValueError(f"unknown rotation fields: {sorted(unknown)}")
        t = certificate_rotations
        stmt = t.update().where(t.c.rotation_id == rotation_id)
        if only_if_status is not None:
            stmt = stmt.where(t.c.status.in_(sorted(only_if_status)))
        return self._conn.execute(stmt.values(**values)).rowcount == 1

    def of_thing(self, thing_name: str, *, statuses: Collection[str] | None = None,
                 limit: int = 100) -> list[CertificateRotationRow]:
        """The thing's rotations, newest first."""
        t = certificate_rotations
        stmt = sa.select(t).where(t.c.thing_name == thing_name)
        if statuses is not None:
            stmt = stmt.where(t.c.status.in_(sorted(statuses)))
        stmt = stmt.order_by(t.c.created_at.desc(), t.c.rotation_id).limit(limit)
        return [_rotation(row._mapping) for row in self._conn.execute(stmt)]

    def of_old_certificate(self, certificate_id: str, statuses: Collection[str]
                           ) -> list[CertificateRotationRow]:
        t = certificate_rotations
        stmt = (sa.select(t).where(t.c.old_certificate_id == certificate_id,
                                   t.c.status.in_(sorted(statuses)))
                .order_by(t.c.created_at.desc(), t.c.rotation_id))
        return [_rotation(row._mapping) for row in self._conn.execute(stmt)]

    def by_new_certificate(self, certificate_id: str) -> CertificateRotationRow | None:
        t = certificate_rotations
        found = self._conn.execute(
            sa.select(t).where(t.c.new_certificate_id == certificate_id)).first()
        return None if found is None else _rotation(found._mapping)

    def last_issued_for(self, thing_name: str) -> datetime | None:
        """When the thing was last issued a certificate by a rotation."""
        t = certificate_rotations
        stmt = (sa.select(t.c.issued_at)
                .where(t.c.thing_name == thing_name, t.c.issued_at.is_not(None))
                .order_by(t.c.issued_at.desc()).limit(1))
        value: datetime | None = self._conn.execute(stmt).scalar_one_or_none()
        return value

    def with_status(self, statuses: Collection[str], *, limit: int = 1000
                    ) -> list[CertificateRotationRow]:
        t = certificate_rotations
        stmt = (sa.select(t).where(t.c.status.in_(sorted(statuses)))
                .order_by(t.c.created_at, t.c.rotation_id).limit(limit))
        return [_rotation(row._mapping) for row in self._conn.execute(stmt)]

    def due(self, status: str, column: str, now: datetime, *, limit: int = 1000
            ) -> list[CertificateRotationRow]:
        """Rotations in ``status`` whose time ``column`` has come by ``now``."""
        t = certificate_rotations
        when = t.c[column]
        stmt = (sa.select(t).where(t.c.status == status, when.is_not(None), when <= now)
                .order_by(when, t.c.rotation_id).limit(limit))
        return [_rotation(row._mapping) for row in self._conn.execute(stmt)]

    def next_time(self, status: str, column: str) -> datetime | None:
        """The earliest ``column`` of the rotations in ``status``."""
        t = certificate_rotations
        stmt = (sa.select(t.c[column]).where(t.c.status == status, t.c[column].is_not(None))
                .order_by(t.c[column]).limit(1))
        value: datetime | None = self._conn.execute(stmt).scalar_one_or_none()
        return value

    def listing(self, *, thing_name: str | None = None, limit: int = 100
                ) -> list[CertificateRotationRow]:
        t = certificate_rotations
        stmt = sa.select(t)
        if thing_name is not None:
            stmt = stmt.where(t.c.thing_name == thing_name)
        stmt = stmt.order_by(t.c.created_at.desc(), t.c.rotation_id).limit(limit)
        return [_rotation(row._mapping) for row in self._conn.execute(stmt)]

    # -- the sweep ---------------------------------------------------------------------

    def claim_setting(self, key: str, expected: str | None, value: str, now: datetime) -> bool:
        """Compare-and-set of one ``settings`` row: set ``key`` to ``value`` only if it
        still holds ``expected`` (``None``: absent). Returns whether this caller won (the
        sweep's once-per-period claim, across the nodes of a cluster)."""
        s = settings
        if expected is None:
            exists = self._conn.execute(sa.select(s.c.key).where(s.c.key == key)).first()
            if exists is not None:
                return False
            try:
                with self._conn.begin_nested():
                    self._conn.execute(s.insert().values(key=key, value=value,
                                                         last_modified_date=now))
            except sa.exc.IntegrityError:
                return False
            return True
        updated = self._conn.execute(s.update().where(s.c.key == key, s.c.value == expected)
                                     .values(value=value, last_modified_date=now))
        return updated.rowcount == 1


    def live_certificates_after(self, after: str | None, limit: int
                                ) -> list[LiveCertificateRow]:
        """``ACTIVE`` certificates with ids after ``after``, by id, with their things."""
        c = certificates
        stmt = (sa.select(c.c.certificate_id, c.c.not_after, c.c.creation_date)
                .where(c.c.status == "ACTIVE"))
        if after is not None:
            stmt = stmt.where(c.c.certificate_id > after)
        rows = self._conn.execute(stmt.order_by(c.c.certificate_id).limit(limit)).all()
        things = self._things_of([row.certificate_id for row in rows])
        return [LiveCertificateRow(row.certificate_id, row.not_after, row.creation_date,
                                   tuple(things.get(row.certificate_id, ())))
                for row in rows]

    def _things_of(self, certificate_ids: Iterable[str]) -> dict[str, list[str]]:
        ids = sorted(set(certificate_ids))
        if not ids:
            return {}
        p = thing_principals
        stmt = (sa.select(p.c.principal_id, p.c.thing_name)
                .where(p.c.principal_type == CERT, p.c.principal_id.in_(ids))
                .order_by(p.c.principal_id, p.c.thing_name))
        found: dict[str, list[str]] = {}
        for principal_id, thing_name in self._conn.execute(stmt):
            found.setdefault(principal_id, []).append(thing_name)
        return found

    def certificates_of_things(self, thing_names: Collection[str]) -> dict[str, list[str]]:
        """Certificate id → the things (of ``thing_names``) it is attached to."""
        names = sorted(set(thing_names))
        found: dict[str, list[str]] = {}
        p = thing_principals
        for start in range(0, len(names), 500):
            chunk = names[start:start + 500]
            stmt = (sa.select(p.c.principal_id, p.c.thing_name)
                    .where(p.c.principal_type == CERT, p.c.thing_name.in_(chunk)))
            for principal_id, thing_name in self._conn.execute(stmt):
                found.setdefault(principal_id, []).append(thing_name)
        return found


def _policy(row: sa.RowMapping) -> RotationPolicyRow:
    targets = row["alert_targets"]
    return RotationPolicyRow(
        row["group_name"], row["max_age_days"], row["rotate_before_expiry_days"],
        row["deactivate_after_hours"], row["revoke_after_hours"], row["start_jobs"],
        None if targets is None else tuple(str(t) for t in targets),
        row["last_modified_date"])


def _rotation(row: sa.RowMapping) -> CertificateRotationRow:
    return CertificateRotationRow(**{name: row[name] for name in _ROTATION_FIELDS})
