"""Repositories of alert targets and of dead letters (alerts that could not be delivered).

A target's secret (a webhook's HMAC key, an SMTP password) is stored only as the opaque
blob :meth:`bastion.pki.Keystore.seal` returns; sealing is the alerts service's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._pages import keyset_page
from ._schema import alert_dead_letters, alert_targets
from ._sql import execute_write


@dataclass(frozen=True, slots=True)
class AlertTargetRow:
    name: str
    kind: str
    config: Mapping[str, Any]
    sealed_secret: bytes | None
    enabled: bool
    creation_date: datetime
    last_modified_date: datetime


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    letter_id: str
    target_name: str
    kind: str
    subject: str
    payload: str
    attempts: int
    last_error: str
    first_attempt_at: datetime
    created_at: datetime


class AlertTargetRepository:
    """Notification targets (table ``alert_targets``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def insert(self, row: AlertTargetRow) -> None:
        """:raises ConflictError: the name is taken."""
        execute_write(self._conn, alert_targets.insert().values(
            name=row.name, kind=row.kind, config=dict(row.config),
            sealed_secret=row.sealed_secret, enabled=row.enabled,
            creation_date=row.creation_date, last_modified_date=row.last_modified_date))

    def get(self, name: str) -> AlertTargetRow | None:
        found = self._conn.execute(
            sa.select(alert_targets).where(alert_targets.c.name == name)).first()
        return None if found is None else _target(found)

    def update(self, row: AlertTargetRow) -> bool:
        result = self._conn.execute(
            alert_targets.update().where(alert_targets.c.name == row.name).values(
                config=dict(row.config), sealed_secret=row.sealed_secret,
                enabled=row.enabled, last_modified_date=row.last_modified_date))
        return result.rowcount == 1

    def delete(self, name: str) -> bool:
        result = self._conn.execute(alert_targets.delete().where(alert_targets.c.name == name))
        return result.rowcount == 1

    def all(self) -> list[AlertTargetRow]:
        stmt = sa.select(alert_targets).order_by(alert_targets.c.name)
        return [_target(row) for row in self._conn.execute(stmt)]


class DeadLetterRepository:
    """Alerts given up after the last delivery attempt (table ``alert_dead_letters``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def insert(self, row: DeadLetterRow) -> None:
        execute_write(self._conn, alert_dead_letters.insert().values(
            letter_id=row.letter_id, target_name=row.target_name, kind=row.kind,
            subject=row.subject, payload=row.payload, attempts=row.attempts,
            last_error=row.last_error, first_attempt_at=row.first_attempt_at,
            created_at=row.created_at))

    def get(self, letter_id: str) -> DeadLetterRow | None:
        found = self._conn.execute(sa.select(alert_dead_letters).where(
            alert_dead_letters.c.letter_id == letter_id)).first()
        return None if found is None else _letter(found)

    def delete(self, letter_id: str) -> bool:
        result = self._conn.execute(
            alert_dead_letters.delete().where(alert_dead_letters.c.letter_id == letter_id))
        return result.rowcount == 1

    def list_page(self, *, target_name: str | None, limit: int, token: str | None
                  ) -> tuple[list[DeadLetterRow], str | None]:
        t = alert_dead_letters
        stmt = sa.select(t)
        if target_name is not None:
            stmt = stmt.where(t.c.target_name == target_name)
        rows, next_token = keyset_page(self._conn, stmt, [t.c.created_at, t.c.letter_id],
                                       kind="alert-dead-letters", limit=limit, token=token)
        return [_letter(row) for row in rows], next_token


def _target(found: sa.Row[Any]) -> AlertTargetRow:
    m = found._mapping
    secret = m["sealed_secret"]
    return AlertTargetRow(m["name"], m["kind"], dict(m["config"]),
                          None if secret is None else bytes(secret), bool(m["enabled"]),
                          m["creation_date"], m["last_modified_date"])


def _letter(found: sa.Row[Any]) -> DeadLetterRow:
    m = found._mapping
    return DeadLetterRow(m["letter_id"], m["target_name"], m["kind"], m["subject"],
                         m["payload"], int(m["attempts"]), m["last_error"],
                         m["first_attempt_at"], m["created_at"])
