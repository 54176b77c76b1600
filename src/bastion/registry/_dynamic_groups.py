"""Dynamic thing groups in the registry: a thing group with a fleet-indexing query.

The registry stores the group and its query and keeps AWS's rules; it does not read
queries. The fleet index (:mod:`bastion.index`) checks a query before it reaches here
and decides the members, which it writes with :meth:`set_dynamic_members`. Rules (AWS
IoT developer guide, "Dynamic thing groups"):

* a dynamic group is never part of a hierarchy: it has no parent and no children;
* things are not added or removed by hand (``InvalidRequestException``);
* it is created, updated and deleted with its own operations; the static ones refuse it;
* a thing is in at most 10 groups: a dynamic group a thing would enter beyond that is
  skipped for that thing (AWS logs ``AddThingToDynamicThingGroupsFailed``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from typing import Final

from bastion.store import ConflictError, ThingGroupRow

from ._errors import InvalidRequestError, ResourceAlreadyExistsError
from ._events import ThingGroupMembershipChanged
from ._model import ThingGroup
from ._names import check_attributes, check_description, check_name
from ._service import ServiceBase
from ._things import present

_log = logging.getLogger("bastion.registry")

MAX_GROUP_ATTRIBUTES: Final = 50
MAX_GROUPS_PER_THING: Final = 10


class DynamicGroupOperations(ServiceBase):
    """Creating dynamic thing groups and writing their members (a base of
    :class:`~bastion.registry.RegistryService`, which updates and deletes them)."""

    __slots__ = ()

    def create_dynamic_thing_group(
        self,
        thing_group_name: str,
        *,
        query_string: str,
        index_name: str,
        query_version: str,
        description: str | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> ThingGroup:
        """CreateDynamicThingGroup's registry part: the group and its (checked) query,
        with no members yet.

        :raises ResourceAlreadyExistsError: a thing group of that name exists.
        :raises InvalidRequestError: bad arguments or too many attributes.
        """
        name = check_name(thing_group_name, "thingGroupName")
        description = check_description(description) or None
        values = present(check_attributes(attributes or {}))
        if len(values) > MAX_GROUP_ATTRIBUTES:
            raise InvalidRequestError(
                f"A thing group can have at most {MAX_GROUP_ATTRIBUTES} attributes")
        now = self._now()
        row = ThingGroupRow(
            name=name, thing_group_id=str(uuid.uuid4()), parent_name=None,
            description=description, attributes=values, version=1, creation_date=now,
            last_modified_date=now, query_string=query_string, index_name=index_name,
            query_version=query_version)
        with self._change() as (uow, _events):
            existing = uow.thing_groups.get(name)
            if existing is not None:
                raise ResourceAlreadyExistsError(
                    f"Thing Group {name} already exists", resource_id=name,
                    resource_arn=self._group_ref(name).group_arn)
            try:
                uow.thing_groups.insert(row)
            except ConflictError:
                raise ResourceAlreadyExistsError(f"Thing Group {name} already exists") from None
        return self._thing_group(row, ())

    def set_dynamic_members(self, thing_group_name: str, add: Iterable[str],
                            remove: Iterable[str]) -> list[str]:
        """Add and remove members of a dynamic group, as its query decides (the fleet
        index calls this). Things that no longer exist, a group that is gone or no longer
        dynamic, and things already in 10 groups are skipped; each change publishes
        :class:`~bastion.registry.ThingGroupMembershipChanged`. Returns the things whose
        membership changed."""
        now = self._now()
        changed: list[str] = []
        with self._change() as (uow, events):
            group = uow.thing_groups.get(thing_group_name, for_update=True)
            if group is None or not group.dynamic:
                return changed
            for thing in sorted(set(remove)):
                if uow.thing_groups.remove_member(group.name, thing):
                    events.append(ThingGroupMembershipChanged(thing, group.name, False))
                    changed.append(thing)
            wanted = sorted(set(add))
            existing = {row.name for row in uow.things.get_many(wanted)}
            for thing in wanted:
                if thing not in existing:
                    continue
                if uow.thing_groups.count_groups_of(thing) >= MAX_GROUPS_PER_THING:
                    _log.warning("AddThingToDynamicThingGroupsFailed: thing %s is already "
                                 "in %d groups; not added to %s", thing,
                                 MAX_GROUPS_PER_THING, group.name)
                    continue
                if uow.thing_groups.add_member(group.name, thing, now):
                    events.append(ThingGroupMembershipChanged(thing, group.name, True))
                    changed.append(thing)
        return changed
