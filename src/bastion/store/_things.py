"""Repositories of thing types, things and the principals attached to things."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._pages import keyset_page
from ._rows import ThingRow, ThingTypeRow
from ._schema import thing_attributes, thing_principals, thing_types, things
from ._sql import count, execute_write
from ._tags import delete_tags_of


class ThingTypeRepository:
    """Thing types (table ``thing_types``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def insert(self, row: ThingTypeRow) -> None:
        """:raises ConflictError: the name (or id) is taken."""
        execute_write(
            self._conn,
            thing_types.insert().values(
                name=row.name,
                thing_type_id=row.thing_type_id,
                description=row.description,
                searchable_attributes=list(row.searchable_attributes),
                deprecated=row.deprecated,
                deprecation_date=row.deprecation_date,
                creation_date=row.creation_date,
            ),
        )

    def get(self, name: str, *, for_update: bool = False) -> ThingTypeRow | None:
        stmt = sa.select(thing_types).where(thing_types.c.name == name)
        if for_update:
            stmt = stmt.with_for_update()
        found = self._conn.execute(stmt).first()
        return None if found is None else _thing_type(found)

    def set_deprecated(self, name: str, deprecated: bool, when: datetime | None) -> bool:
        """Mark the type deprecated (with the date) or not; whether it exists."""
        result = self._conn.execute(
            thing_types.update()
            .where(thing_types.c.name == name)
            .values(deprecated=deprecated, deprecation_date=when)
        )
        return result.rowcount == 1

    def delete(self, name: str) -> bool:
        """Delete the type; whether it existed.

        :raises ConflictError: things still have this type.
        """
        result = execute_write(self._conn, thing_types.delete().where(thing_types.c.name == name))
        delete_tags_of(self._conn, "thingtype", name)
        return result.rowcount == 1

    def list_page(
        self, *, name: str | None = None, limit: int, token: str | None
    ) -> tuple[list[ThingTypeRow], str | None]:
        stmt = sa.select(thing_types)
        if name is not None:
            stmt = stmt.where(thing_types.c.name == name)
        rows, next_token = keyset_page(
            self._conn, stmt, [thing_types.c.name], kind="thing-types", limit=limit, token=token
        )
        return [_thing_type(row) for row in rows], next_token


class ThingRepository:
    """Things and their attributes (tables ``things``, ``thing_attributes``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def insert(self, row: ThingRow, *, searchable: Collection[str]) -> None:
        """Insert a thing.

        :param searchable: the attribute names ``list_page`` may filter on.
        :raises ConflictError: the name is taken, or the thing type does not exist.
        """
        execute_write(
            self._conn,
            things.insert().values(
                name=row.name,
                thing_id=row.thing_id,
                thing_type_name=row.thing_type_name,
                version=row.version,
                creation_date=row.creation_date,
                last_modified_date=row.last_modified_date,
            ),
        )
        self._write_attributes(row.name, row.attributes, searchable)

    def get(self, name: str, *, for_update: bool = False) -> ThingRow | None:
        stmt = sa.select(things).where(things.c.name == name)
        if for_update:
            stmt = stmt.with_for_update()
        found = self._conn.execute(stmt).first()
        if found is None:
            return None
        return _thing(found, self._attributes_of([name]).get(name, {}))

    def get_many(self, names: Iterable[str]) -> list[ThingRow]:
        """The things of ``names`` that exist, ordered by name."""
        wanted = sorted(set(names))
        if not wanted:
            return []
        found = self._conn.execute(
            sa.select(things).where(things.c.name.in_(wanted)).order_by(things.c.name)
        ).all()
        attributes = self._attributes_of(wanted)
        return [_thing(row, attributes.get(row.name, {})) for row in found]

    def update(
        self,
        name: str,
        *,
        thing_type_name: str | None,
        attributes: Mapping[str, str],
        searchable: Collection[str],
        version: int,
        now: datetime,
    ) -> None:
        """Replace a thing's type and attributes and set its version.

        :raises ConflictError: the thing type does not exist.
        """
        execute_write(
            self._conn,
            things.update()
            .where(things.c.name == name)
            .values(thing_type_name=thing_type_name, version=version, last_modified_date=now),
        )
        self._conn.execute(thing_attributes.delete().where(thing_attributes.c.thing_name == name))
        self._write_attributes(name, attributes, searchable)

    def delete(self, name: str) -> bool:
        """Delete a thing with its attributes, group memberships and principal attachments;
        whether it existed."""
        result = execute_write(self._conn, things.delete().where(things.c.name == name))
        return result.rowcount == 1

    def count_of_type(self, thing_type_name: str) -> int:
        return count(
            self._conn, sa.select(things.c.name).where(things.c.thing_type_name == thing_type_name)
        )

    def list_page(
        self,
        *,
        thing_type_name: str | None = None,
        attribute_name: str | None = None,
        attribute_value: str | None = None,
        prefix_match: bool = False,
        limit: int,
        token: str | None,
    ) -> tuple[list[ThingRow], str | None]:
        """A page of things ordered by name.

        :param attribute_name: only things with this *searchable* attribute ...
        :param attribute_value: ... with this value (a prefix when ``prefix_match``).
        """
        stmt = sa.select(things)
        if thing_type_name is not None:
            stmt = stmt.where(things.c.thing_type_name == thing_type_name)
        if attribute_name is not None or attribute_value is not None:
            match = sa.select(thing_attributes.c.thing_name).where(
                thing_attributes.c.thing_name == things.c.name, thing_attributes.c.searchable
            )
            if attribute_name is not None:
                match = match.where(thing_attributes.c.name == attribute_name)
            if attribute_value is not None:
                match = match.where(
                    thing_attributes.c.value.startswith(attribute_value, autoescape=True)
                    if prefix_match
                    else thing_attributes.c.value == attribute_value
                )
            stmt = stmt.where(match.exists())
        rows, next_token = keyset_page(
            self._conn, stmt, [things.c.name], kind="things", limit=limit, token=token
        )
        attributes = self._attributes_of([row.name for row in rows])
        return [_thing(row, attributes.get(row.name, {})) for row in rows], next_token

    def _write_attributes(
        self, name: str, attributes: Mapping[str, str], searchable: Collection[str]
    ) -> None:
        if not attributes:
            return
        self._conn.execute(
            thing_attributes.insert(),
            [
                {"thing_name": name, "name": key, "value": value, "searchable": key in searchable}
                for key, value in attributes.items()
            ],
        )

    def _attributes_of(self, names: Sequence[str]) -> dict[str, dict[str, str]]:
        result: dict[str, dict[str, str]] = {}
        if not names:
            return result
        rows = self._conn.execute(
            sa.select(thing_attributes.c.thing_name, thing_attributes.c.name, thing_attributes.c.value)
            .where(thing_attributes.c.thing_name.in_(list(names)))
            .order_by(thing_attributes.c.thing_name, thing_attributes.c.name)
        )
        for thing_name, key, value in rows:
            result.setdefault(thing_name, {})[key] = value
        return result


class ThingPrincipalRepository:
    """Principals attached to things (table ``thing_principals``).

    A principal is a ``(type, id)`` pair, e.g. ``("cert", "<certificate id>")``.
    """

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def attach(self, thing_name: str, principal_type: str, principal_id: str, now: datetime) -> bool:
        """Attach; ``False`` if it already was.

        :raises ConflictError: the thing does not exist (or a concurrent attach won).
        """
        if self.is_attached(thing_name, principal_type, principal_id):
            return False
        execute_write(
            self._conn,
            thing_principals.insert().values(
                thing_name=thing_name,
                principal_type=principal_type,
                principal_id=principal_id,
                creation_date=now,
            ),
        )
        return True

    def detach(self, thing_name: str, principal_type: str, principal_id: str) -> bool:
        """Detach; ``False`` if it was not attached."""
        result = self._conn.execute(
            thing_principals.delete().where(*self._match(thing_name, principal_type, principal_id))
        )
        return result.rowcount == 1

    def is_attached(self, thing_name: str, principal_type: str, principal_id: str) -> bool:
        stmt = sa.select(thing_principals.c.thing_name).where(
            *self._match(thing_name, principal_type, principal_id)
        )
        return self._conn.execute(stmt).first() is not None

    def things_of(self, principal_type: str, principal_id: str) -> list[str]:
        """Every thing the principal is attached to, by name."""
        stmt = (
            sa.select(thing_principals.c.thing_name)
            .where(
                thing_principals.c.principal_type == principal_type,
                thing_principals.c.principal_id == principal_id,
            )
            .order_by(thing_principals.c.thing_name)
        )
        return list(self._conn.execute(stmt).scalars())

    def count_for_thing(self, thing_name: str) -> int:
        return count(
            self._conn,
            sa.select(thing_principals.c.principal_id).where(
                thing_principals.c.thing_name == thing_name
            ),
        )

    def principals_page(
        self, thing_name: str, *, limit: int, token: str | None
    ) -> tuple[list[tuple[str, str]], str | None]:
        stmt = sa.select(thing_principals).where(thing_principals.c.thing_name == thing_name)
        rows, next_token = keyset_page(
            self._conn,
            stmt,
            [thing_principals.c.principal_type, thing_principals.c.principal_id],
            kind="thing-principals",
            limit=limit,
            token=token,
        )
        return [(row.principal_type, row.principal_id) for row in rows], next_token

    def things_page(
        self, principal_type: str, principal_id: str, *, limit: int, token: str | None
    ) -> tuple[list[str], str | None]:
        stmt = sa.select(thing_principals).where(
            thing_principals.c.principal_type == principal_type,
            thing_principals.c.principal_id == principal_id,
        )
        rows, next_token = keyset_page(
            self._conn,
            stmt,
            [thing_principals.c.thing_name],
            kind="principal-things",
            limit=limit,
            token=token,
        )
        return [row.thing_name for row in rows], next_token

    @staticmethod
    def _match(
        thing_name: str, principal_type: str, principal_id: str
    ) -> tuple[sa.ColumnElement[bool], ...]:
        return (
            thing_principals.c.thing_name == thing_name,
            thing_principals.c.principal_type == principal_type,
            thing_principals.c.principal_id == principal_id,
        )


def _thing_type(row: sa.Row[Any]) -> ThingTypeRow:
    return ThingTypeRow(
        name=row.name,
        thing_type_id=row.thing_type_id,
        description=row.description,
        searchable_attributes=tuple(row.searchable_attributes),
        deprecated=bool(row.deprecated),
        deprecation_date=row.deprecation_date,
        creation_date=row.creation_date,
    )


def _thing(row: sa.Row[Any], attributes: Mapping[str, str]) -> ThingRow:
    return ThingRow(
        name=row.name,
        thing_id=row.thing_id,
        thing_type_name=row.thing_type_name,
        attributes=dict(attributes),
        version=row.version,
        creation_date=row.creation_date,
        last_modified_date=row.last_modified_date,
    )
