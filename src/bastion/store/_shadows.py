"""Repository of device shadows (table ``shadows``).

Theory of operation: a shadow is one row keyed by ``(thing_name, shadow_name)``, the
classic shadow under the name ``""`` (:data:`CLASSIC`). Its documents are stored as JSON
text the shadow service produces and reads; the store never looks inside. Writers use
optimistic concurrency: :meth:`ShadowRepository.replace` is a compare-and-set on the
version read earlier in the same transaction (and :meth:`get` with ``for_update`` locks
the row on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises writers), so two
concurrent updates can never both build on the same version. Creating a shadow races
on the primary key instead: the loser gets :class:`~bastion.store.ConflictError`.

A deleted shadow stays as a *tombstone* (``state`` NULL, ``deleted_at`` set) so that the
version sequence continues when it is re-created; listings skip tombstones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from ._pages import keyset_page
from ._schema import shadows
from ._sql import execute_write

CLASSIC: Final = ""
"""The stored shadow name of a thing's classic (unnamed) shadow."""


@dataclass(frozen=True, slots=True)
class ShadowRow:
    """One stored shadow. ``state`` and ``state_metadata`` are ``None`` for a tombstone."""

    thing_name: str
    shadow_name: str
    version: int
    state: str | None
    state_metadata: str | None
    deleted_at: datetime | None
    creation_date: datetime
    last_modified_date: datetime

    @property
    def deleted(self) -> bool:
        return self.state is None


class ShadowRepository:
    """Shadows (table ``shadows``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def get(self, thing_name: str, shadow_name: str, *,
            for_update: bool = False) -> ShadowRow | None:
        """The shadow's row (tombstones included), or ``None``."""
        stmt = sa.select(shadows).where(shadows.c.thing_name == thing_name,
                                        shadows.c.shadow_name == shadow_name)
        if for_update:
            stmt = stmt.with_for_update()
        found = self._conn.execute(stmt).first()
        return None if found is None else _row(found)

    def insert(self, row: ShadowRow) -> None:
        """Store a shadow that has no row yet.

        :raises ConflictError: a row exists (a concurrent writer created it first).
        """
        execute_write(self._conn, shadows.insert().values(**_values(row)))

    def replace(self, row: ShadowRow, *, expected_version: int) -> bool:
        """Overwrite the shadow's row if its version is still ``expected_version``;
        whether it was."""
        values = _values(row)
        del values["thing_name"], values["shadow_name"], values["creation_date"]
        result = self._conn.execute(
            shadows.update()
            .where(shadows.c.thing_name == row.thing_name,
                   shadows.c.shadow_name == row.shadow_name,
                   shadows.c.version == expected_version)
            .values(**values)
        )
        return result.rowcount == 1

    def delete_tombstones(self, *, deleted_before: datetime) -> int:
        """Forget the tombstones of shadows deleted before ``deleted_before``; how many."""
        result = self._conn.execute(
            shadows.delete().where(shadows.c.state.is_(None),
                                   shadows.c.deleted_at < deleted_before))
        return int(result.rowcount)

    def list_named(self, thing_name: str, *, limit: int,
                   token: str | None) -> tuple[list[str], str | None]:
        """The names of the thing's named shadows (not deleted), in byte order.

        :raises InvalidPageTokenError: ``token`` is not one of this listing's.
        :raises ValueError: ``limit`` < 1.
        """
        stmt = sa.select(shadows.c.shadow_name).where(
            shadows.c.thing_name == thing_name,
            shadows.c.shadow_name != CLASSIC,
            shadows.c.state.is_not(None),
        )
        rows, next_token = keyset_page(self._conn, stmt, [shadows.c.shadow_name],
                                       kind=f"shadows:{thing_name}", limit=limit, token=token)
        return [str(row[0]) for row in rows], next_token


def _values(row: ShadowRow) -> dict[str, Any]:
    return {
        "thing_name": row.thing_name,
        "shadow_name": row.shadow_name,
        "version": row.version,
        "state": row.state,
        "state_metadata": row.state_metadata,
        "deleted_at": row.deleted_at,
        "creation_date": row.creation_date,
        "last_modified_date": row.last_modified_date,
    }


def _row(found: sa.Row[Any]) -> ShadowRow:
    values = found._mapping
    return ShadowRow(
        thing_name=values["thing_name"],
        shadow_name=values["shadow_name"],
        version=int(values["version"]),
        state=values["state"],
        state_metadata=values["state_metadata"],
        deleted_at=values["deleted_at"],
        creation_date=values["creation_date"],
        last_modified_date=values["last_modified_date"],
    )
