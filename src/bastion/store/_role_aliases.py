"""Repository of role aliases (table ``role_aliases``).

A role alias names the role a device's temporary credentials carry and how long they
last. Deleting an alias deletes its tags.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._pages import keyset_page
from ._rows import RoleAliasRow
from ._schema import role_aliases
from ._sql import execute_write
from ._tags import delete_tags_of

ROLE_ALIAS = "rolealias"


class RoleAliasRepository:
    """Role aliases, keyed by name."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def insert(self, row: RoleAliasRow) -> None:
        """:raises ConflictError: the name is taken."""
        execute_write(self._conn, role_aliases.insert().values(
            name=row.name, role_arn=row.role_arn,
            credential_duration_seconds=row.credential_duration_seconds,
            creation_date=row.creation_date, last_modified_date=row.last_modified_date))

    def get(self, name: str, *, for_update: bool = False) -> RoleAliasRow | None:
        stmt = sa.select(role_aliases).where(role_aliases.c.name == name)
        if for_update:
            stmt = stmt.with_for_update()
        found = self._conn.execute(stmt).first()
        return None if found is None else _alias(found)

    def update(self, name: str, *, role_arn: str, credential_duration_seconds: int,
               now: datetime) -> None:
        self._conn.execute(role_aliases.update().where(role_aliases.c.name == name).values(
            role_arn=role_arn, credential_duration_seconds=credential_duration_seconds,
            last_modified_date=now))

    def delete(self, name: str) -> bool:
        """Delete an alias and its tags; whether it existed."""
        result = self._conn.execute(role_aliases.delete().where(role_aliases.c.name == name))
        delete_tags_of(self._conn, ROLE_ALIAS, name)
        return result.rowcount == 1

    def names_page(self, *, ascending: bool, limit: int, token: str | None
                   ) -> tuple[list[str], str | None]:
        """A page of alias names, in ascending or descending order.

        :raises InvalidPageTokenError: ``token`` is not one of this listing's.
        """
        stmt = sa.select(role_aliases.c.name)
        rows, next_token = keyset_page(
            self._conn, stmt, [role_aliases.c.name],
            kind="role-aliases" + ("-asc" if ascending else "-desc"), limit=limit,
            token=token, descending=not ascending)
        return [row.name for row in rows], next_token


def _alias(row: sa.Row[Any]) -> RoleAliasRow:
    return RoleAliasRow(
        name=row.name, role_arn=row.role_arn,
        credential_duration_seconds=row.credential_duration_seconds,
        creation_date=row.creation_date, last_modified_date=row.last_modified_date)
