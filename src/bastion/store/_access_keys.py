"""Repository of the control-plane API's access keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._schema import access_keys
from ._sql import execute_write


@dataclass(frozen=True, slots=True)
class AccessKeyRow:
    """A stored access key. ``sealed_secret`` is the blob of
    :meth:`bastion.pki.Keystore.seal`; the store never sees the secret itself."""

    access_key_id: str
    role: str
    status: str
    description: str
    sealed_secret: bytes
    creation_date: datetime
    last_modified_date: datetime


class AccessKeyRepository:
    """Access keys (table ``access_keys``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def insert(self, row: AccessKeyRow) -> None:
        """:raises ConflictError: an access key with this id exists."""
        if not isinstance(row.sealed_secret, bytes):
            raise TypeError(
                f"sealed_secret must be bytes, not {type(row.sealed_secret).__name__}"
            )
        execute_write(
            self._conn,
            access_keys.insert().values(
                access_key_id=row.access_key_id,
                role=row.role,
                status=row.status,
                description=row.description,
                sealed_secret=row.sealed_secret,
                creation_date=row.creation_date,
                last_modified_date=row.last_modified_date,
            ),
        )

    def get(self, access_key_id: str) -> AccessKeyRow | None:
        stmt = sa.select(access_keys).where(access_keys.c.access_key_id == access_key_id)
        found = self._conn.execute(stmt).first()
        return None if found is None else _row(found)

    def list_all(self) -> list[AccessKeyRow]:
        """Every access key, oldest first."""
        stmt = sa.select(access_keys).order_by(
            access_keys.c.creation_date, access_keys.c.access_key_id
        )
        return [_row(found) for found in self._conn.execute(stmt)]

    def ids_with(self, *, role: str, status: str, for_update: bool = False) -> list[str]:
        """The ids of the keys with ``role`` and ``status``; ``for_update`` locks those rows
        (PostgreSQL) so that a concurrent change of the same keys waits."""
        stmt = (
            sa.select(access_keys.c.access_key_id)
            .where(access_keys.c.role == role, access_keys.c.status == status)
            .order_by(access_keys.c.access_key_id)
        )
        if for_update:
            stmt = stmt.with_for_update()
        return [str(value) for value in self._conn.execute(stmt).scalars()]

    def set_status(self, access_key_id: str, status: str, now: datetime) -> bool:
        """Change the status; whether the key exists."""
        result = self._conn.execute(
            access_keys.update()
            .where(access_keys.c.access_key_id == access_key_id)
            .values(status=status, last_modified_date=now)
        )
        return result.rowcount == 1

    def delete(self, access_key_id: str) -> bool:
        result = self._conn.execute(
            access_keys.delete().where(access_keys.c.access_key_id == access_key_id)
        )
        return result.rowcount == 1


def _row(found: sa.Row[Any]) -> AccessKeyRow:
    values = found._mapping
    return AccessKeyRow(
        access_key_id=values["access_key_id"],
        role=values["role"],
        status=values["status"],
        description=values["description"],
        sealed_secret=bytes(values["sealed_secret"]),
        creation_date=values["creation_date"],
        last_modified_date=values["last_modified_date"],
    )
