"""Repository of billing groups and their members (tables ``billing_groups``,
``billing_group_members``).

A thing is in at most one billing group: the member table is keyed by thing name, so
putting a thing in a group replaces whatever group it was in. Deleting a group deletes
its memberships (foreign key, ``ON DELETE CASCADE``) and its tags.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ._pages import keyset_page
from ._rows import BillingGroupRow
from ._schema import billing_group_members, billing_groups
from ._sql import execute_write
from ._tags import delete_tags_of

BILLING_GROUP = "billinggroup"


class BillingGroupRepository:
    """Billing groups and the one billing group of each thing."""

    __slots__ = ("_conn",)

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    # -- groups ---------------------------------------------------------------------

    def insert(self, row: BillingGroupRow) -> None:
        """:raises ConflictError: the name (or id) is taken."""
        execute_write(self._conn, billing_groups.insert().values(
            name=row.name, billing_group_id=row.billing_group_id,
            description=row.description, version=row.version,
            creation_date=row.creation_date, last_modified_date=row.last_modified_date))

    def get(self, name: str, *, for_update: bool = False) -> BillingGroupRow | None:
        stmt = sa.select(billing_groups).where(billing_groups.c.name == name)
        if for_update:
            stmt = stmt.with_for_update()
        found = self._conn.execute(stmt).first()
        return None if found is None else _group(found)

    def update(self, name: str, *, description: str | None, version: int,
               now: datetime) -> None:
        self._conn.execute(billing_groups.update().where(billing_groups.c.name == name)
                           .values(description=description, version=version,
                                   last_modified_date=now))

    def delete(self, name: str) -> bool:
        """Delete a group, its memberships and its tags; whether it existed."""
        result = self._conn.execute(billing_groups.delete().where(billing_groups.c.name == name))
        delete_tags_of(self._conn, BILLING_GROUP, name)
        return result.rowcount == 1

    def list_page(self, *, name_prefix: str | None, limit: int, token: str | None
                  ) -> tuple[list[BillingGroupRow], str | None]:
        """A page of groups ordered by name.

        :raises InvalidPageTokenError: ``token`` is not one of this listing's.
        """
        stmt = sa.select(billing_groups)
        if name_prefix is not None:
            stmt = stmt.where(billing_groups.c.name.startswith(name_prefix, autoescape=True))
        rows, next_token = keyset_page(self._conn, stmt, [billing_groups.c.name],
                                       kind="billing-groups", limit=limit, token=token)
        return [_group(row) for row in rows], next_token

    # -- membership -----------------------------------------------------------------

    def group_of(self, thing_name: str) -> str | None:
        """The billing group the thing is in, if any."""
        m = billing_group_members
        stmt = sa.select(m.c.group_name).where(m.c.thing_name == thing_name)
        return self._conn.execute(stmt).scalar_one_or_none()

    def put_member(self, group_name: str, thing_name: str, now: datetime) -> str | None:
        """Put the thing in the group, taking it out of any other; returns the group it
        was in before (``None``: none).

        :raises ConflictError: the group or the thing does not exist.
        """
        m = billing_group_members
        before = self.group_of(thing_name)
        if before == group_name:
            return before
        if before is not None:
            self._conn.execute(m.delete().where(m.c.thing_name == thing_name))
        execute_write(self._conn, m.insert().values(thing_name=thing_name,
                                                    group_name=group_name,
                                                    creation_date=now))
        return before

    def remove_member(self, group_name: str, thing_name: str) -> bool:
        """Take the thing out of the group; ``False`` if it was not in it."""
        m = billing_group_members
        result = self._conn.execute(m.delete().where(m.c.thing_name == thing_name,
                                                     m.c.group_name == group_name))
        return result.rowcount == 1

    def members_page(self, group_name: str, *, limit: int, token: str | None
                     ) -> tuple[list[str], str | None]:
        """Names of the things in the group, ordered.

        :raises InvalidPageTokenError: ``token`` is not one of this listing's.
        """
        m = billing_group_members
        stmt = sa.select(m.c.thing_name).where(m.c.group_name == group_name)
        rows, next_token = keyset_page(self._conn, stmt, [m.c.thing_name],
                                       kind="billing-group-members", limit=limit, token=token)
        return [row.thing_name for row in rows], next_token


def _group(row: sa.Row[Any]) -> BillingGroupRow:
    return BillingGroupRow(
        name=row.name, billing_group_id=row.billing_group_id, description=row.description,
        version=row.version, creation_date=row.creation_date,
        last_modified_date=row.last_modified_date)
