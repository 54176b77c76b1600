"""Repository of thing groups: the hierarchy and its members.

The hierarchy is stored as parent pointers; ancestors and descendants are found with
recursive common table expressions, which SQLite and PostgreSQL both run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._pages import keyset_page
from ._rows import ThingGroupRow
from ._schema import thing_group_members, thing_groups
from ._sql import count, execute_write
from ._tags import delete_tags_of


class ThingGroupRepository:
    """Thing groups and membership (tables ``thing_groups``, ``thing_group_members``)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    # -- groups ---------------------------------------------------------------------

    def insert(self, row: ThingGroupRow) -> None:
        """:raises ConflictError: the name is taken or the parent does not exist."""
        execute_write(
            self._conn,
            thing_groups.insert().values(
                name=row.name,
                thing_group_id=row.thing_group_id,
                parent_name=row.parent_name,
                description=row.description,
                attributes=dict(row.attributes),
                version=row.version,
                creation_date=row.creation_date,
                last_modified_date=row.last_modified_date,
                query_string=row.query_string,
                index_name=row.index_name,
                query_version=row.query_version,
            ),
        )

    def get(self, name: str, *, for_update: bool = False) -> ThingGroupRow | None:
        stmt = sa.select(thing_groups).where(thing_groups.c.name == name)
        if for_update:
            stmt = stmt.with_for_update()
        found = self._conn.execute(stmt).first()
        return None if found is None else _group(found)

    def update(
        self,
        name: str,
        *,
        description: str | None,
        attributes: Mapping[str, str],
        version: int,
        now: datetime,
    ) -> None:
        self._conn.execute(
            thing_groups.update()
            .where(thing_groups.c.name == name)
            .values(
                description=description,
                attributes=dict(attributes),
                version=version,
                last_modified_date=now,
            )
        )

    def set_query(self, name: str, *, query_string: str, index_name: str,
                  query_version: str) -> None:
        """Make ``name`` a dynamic group with this query (or change its query)."""
        self._conn.execute(
            thing_groups.update()
            .where(thing_groups.c.name == name)
            .values(query_string=query_string, index_name=index_name,
                    query_version=query_version)
        )

    def dynamic_groups(self) -> list[ThingGroupRow]:
        """Every dynamic group, ordered by name."""
        found = self._conn.execute(
            sa.select(thing_groups)
            .where(thing_groups.c.query_string.is_not(None))
            .order_by(thing_groups.c.name)
        ).all()
        return [_group(row) for row in found]

    def all_groups(self) -> list[ThingGroupRow]:
        """Every thing group, ordered by name (the thing-group index reads them all)."""
        found = self._conn.execute(sa.select(thing_groups).order_by(thing_groups.c.name)).all()
        return [_group(row) for row in found]

    def delete(self, name: str) -> bool:
        """Delete a group and its memberships; whether it existed.

        :raises ConflictError: the group still has child groups.
        """
        result = execute_write(self._conn, thing_groups.delete().where(thing_groups.c.name == name))
        delete_tags_of(self._conn, "thinggroup", name)
        return result.rowcount == 1

    def has_children(self, name: str) -> bool:
        stmt = sa.select(thing_groups.c.name).where(thing_groups.c.parent_name == name).limit(1)
        return self._conn.execute(stmt).first() is not None

    def ancestors(self, name: str) -> list[ThingGroupRow]:
        """The ancestors of group ``name``, root first, without the group itself."""
        chain = self._ancestor_cte([name])
        stmt = (
            sa.select(thing_groups)
            .join(chain, chain.c.name == thing_groups.c.name)
            .where(chain.c.depth > 0)
            .order_by(chain.c.depth.desc())
        )
        return [_group(row) for row in self._conn.execute(stmt)]

    def with_ancestors(self, names: Iterable[str]) -> set[str]:
        """The groups of ``names`` that exist, and all their ancestors."""
        start = sorted(set(names))
        if not start:
            return set()
        chain = self._ancestor_cte(start)
        return set(self._conn.execute(sa.select(chain.c.name).distinct()).scalars())

    def descendants(self, name: str) -> sa.Select[Any]:
        """A one-column select of the names of group ``name`` and all its descendants."""
        tree = sa.select(thing_groups.c.name).where(thing_groups.c.name == name).cte(
            "descendants", recursive=True
        )
        child = thing_groups.alias("child")
        tree = tree.union_all(
            sa.select(child.c.name).where(child.c.parent_name == tree.c.name)
        )
        return sa.select(tree.c.name)

    def list_page(
        self,
        *,
        parent_name: str | None = None,
        name_prefix: str | None = None,
        recursive: bool = True,
        limit: int,
        token: str | None,
    ) -> tuple[list[ThingGroupRow], str | None]:
        """A page of groups ordered by name.

        Without ``parent_name``: every group when ``recursive``, else the root groups.
        With it: the parent's descendants when ``recursive``, else its direct children.
        """
        stmt = sa.select(thing_groups)
        if parent_name is None:
            if not recursive:
                stmt = stmt.where(thing_groups.c.parent_name.is_(None))
        elif recursive:
            stmt = stmt.where(
                thing_groups.c.name.in_(self.descendants(parent_name)),
                thing_groups.c.name != parent_name,
            )
        else:
            stmt = stmt.where(thing_groups.c.parent_name == parent_name)
        if name_prefix is not None:
            stmt = stmt.where(thing_groups.c.name.startswith(name_prefix, autoescape=True))
        rows, next_token = keyset_page(
            self._conn, stmt, [thing_groups.c.name], kind="thing-groups", limit=limit, token=token
        )
        return [_group(row) for row in rows], next_token

    # -- membership -----------------------------------------------------------------

    def add_member(self, group_name: str, thing_name: str, now: datetime) -> bool:
        """Add a thing to a group; ``False`` if it already was a member.

        :raises ConflictError: the group or the thing does not exist.
        """
        if self.is_member(group_name, thing_name):
            return False
        execute_write(
            self._conn,
            thing_group_members.insert().values(
                group_name=group_name, thing_name=thing_name, creation_date=now
            ),
        )
        return True

    def remove_member(self, group_name: str, thing_name: str) -> bool:
        """Remove a thing from a group; ``False`` if it was not a member."""
        result = self._conn.execute(
            thing_group_members.delete().where(
                thing_group_members.c.group_name == group_name,
                thing_group_members.c.thing_name == thing_name,
            )
        )
        return result.rowcount == 1

    def is_member(self, group_name: str, thing_name: str) -> bool:
        stmt = sa.select(thing_group_members.c.group_name).where(
            thing_group_members.c.group_name == group_name,
            thing_group_members.c.thing_name == thing_name,
        )
        return self._conn.execute(stmt).first() is not None

    def groups_of(self, thing_name: str) -> list[str]:
        """The groups the thing is a direct member of, by name."""
        stmt = (
            sa.select(thing_group_members.c.group_name)
            .where(thing_group_members.c.thing_name == thing_name)
            .order_by(thing_group_members.c.group_name)
        )
        return list(self._conn.execute(stmt).scalars())

    def members_of(self, group_name: str) -> list[str]:
        """The direct members of a group, by name."""
        stmt = (
            sa.select(thing_group_members.c.thing_name)
            .where(thing_group_members.c.group_name == group_name)
            .order_by(thing_group_members.c.thing_name)
        )
        return list(self._conn.execute(stmt).scalars())

    def count_groups_of(self, thing_name: str) -> int:
        return count(
            self._conn,
            sa.select(thing_group_members.c.group_name).where(
                thing_group_members.c.thing_name == thing_name
            ),
        )

    def members_page(
        self, group_name: str, *, recursive: bool, limit: int, token: str | None
    ) -> tuple[list[str], str | None]:
        """Names of the things in the group (and, when ``recursive``, in its descendants)."""
        groups: sa.Select[Any] | list[str] = (
            self.descendants(group_name) if recursive else [group_name]
        )
        stmt = (
            sa.select(thing_group_members.c.thing_name)
            .where(thing_group_members.c.group_name.in_(groups))
            .distinct()
        )
        rows, next_token = keyset_page(
            self._conn,
            stmt,
            [thing_group_members.c.thing_name],
            kind="thing-group-members",
            limit=limit,
            token=token,
        )
        return [row.thing_name for row in rows], next_token

    def groups_page(
        self, thing_name: str, *, limit: int, token: str | None
    ) -> tuple[list[str], str | None]:
        """Names of the groups the thing is a direct member of."""
        stmt = sa.select(thing_group_members.c.group_name).where(
            thing_group_members.c.thing_name == thing_name
        )
        rows, next_token = keyset_page(
            self._conn,
            stmt,
            [thing_group_members.c.group_name],
            kind="thing-groups-of-thing",
            limit=limit,
            token=token,
        )
        return [row.group_name for row in rows], next_token

    def _ancestor_cte(self, names: list[str]) -> sa.CTE:
        chain = (
            sa.select(
                thing_groups.c.name,
                thing_groups.c.parent_name,
                sa.literal(0, sa.Integer()).label("depth"),
            )
            .where(thing_groups.c.name.in_(names))
            .cte("ancestors", recursive=True)
        )
        parent = thing_groups.alias("parent")
        return chain.union_all(
            sa.select(parent.c.name, parent.c.parent_name, chain.c.depth + 1).where(
                parent.c.name == chain.c.parent_name
            )
        )


def _group(row: sa.Row[Any]) -> ThingGroupRow:
    return ThingGroupRow(
        name=row.name,
        thing_group_id=row.thing_group_id,
        parent_name=row.parent_name,
        description=row.description,
        attributes=dict(row.attributes or {}),
        version=row.version,
        creation_date=row.creation_date,
        last_modified_date=row.last_modified_date,
        query_string=row.query_string,
        index_name=row.index_name,
        query_version=row.query_version,
    )
