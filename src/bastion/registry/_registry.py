"""RegistryService: things, thing types, static thing groups, membership, and the
principals attached to things — with AWS IoT's rules and errors.

Things, types and principals are handled by the base class in :mod:`._things`, billing
groups by the one in :mod:`._billing_groups`, creating dynamic groups and writing their
members by :mod:`._dynamic_groups`; this module adds thing groups (and updating and
deleting dynamic ones, which share the static groups' code).
Group rules (AWS IoT developer guide):

* names ``[a-zA-Z0-9:_-]{1,128}``; at most 50 attributes;
* a group has one parent, fixed at creation; hierarchies are at most 7 levels deep; a
  group with child groups cannot be deleted;
* a thing belongs to at most 10 groups, and to at most one group of any hierarchy
  (two groups with a common root);
* deleting a group removes its members and detaches its policies.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Final

from bastion.store import ConflictError, PolicyTarget, ThingGroupRow, UnitOfWork

from ._arns import THING_GROUP
from ._billing_groups import BillingGroupOperations
from ._connectivity import ConnectivityReads
from ._dynamic_groups import DynamicGroupOperations
from ._errors import InvalidRequestError, ResourceAlreadyExistsError, ResourceNotFoundError
from ._events import PolicyAttachmentChanged, ThingGroupDeleted, ThingGroupMembershipChanged
from ._model import GroupNameAndArn, Page, ThingGroup
from ._names import check_attributes, check_description, check_name, check_page_size
from ._things import (
    ThingOperations,
    check_expected_version,
    compare_version,
    present,
    require_thing,
)

MAX_GROUP_ATTRIBUTES: Final = 50
MAX_GROUP_DEPTH: Final = 7
MAX_GROUPS_PER_THING: Final = 10


class RegistryService(ConnectivityReads, DynamicGroupOperations, ThingOperations,
                      BillingGroupOperations):
    """Things, thing types, thing groups, billing groups and thing principals, and the
    connectivity of things (:mod:`._connectivity`).

    Construct with ``RegistryService(store, account=..., publish=..., clock=...)`` (see
    :class:`~bastion.registry._service.ServiceBase`). Every method raises
    :class:`TypeError` for arguments of the wrong type and a
    :class:`~bastion.registry.RegistryError` for requests AWS would refuse.
    """

    __slots__ = ()

    # -- thing groups ---------------------------------------------------------------

    def create_thing_group(
        self,
        thing_group_name: str,
        *,
        parent_group_name: str | None = None,
        description: str | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> ThingGroup:
        """CreateThingGroup. Creating an identical group again returns it.

        :raises ResourceNotFoundError: the parent group does not exist.
        :raises ResourceAlreadyExistsError: the group exists with another configuration.
        :raises InvalidRequestError: bad arguments, or the hierarchy would be deeper than
            seven levels.
        """
        name = check_name(thing_group_name, "thingGroupName")
        if parent_group_name is not None:
            check_name(parent_group_name, "parentGroupName")
        description = check_description(description) or None
        values = present(check_attributes(attributes or {}))
        if len(values) > MAX_GROUP_ATTRIBUTES:
            raise InvalidRequestError(
                f"A thing group can have at most {MAX_GROUP_ATTRIBUTES} attributes"
            )
        now = self._now()
        with self._change() as (uow, _events):
            existing = uow.thing_groups.get(name)
            if existing is not None:
                same = (existing.parent_name, existing.description, dict(existing.attributes))
                if same == (parent_group_name, description, values):
                    return self._thing_group(existing, uow.thing_groups.ancestors(name))
                raise ResourceAlreadyExistsError(
                    f"Thing Group {name} already exists with different configuration",
                    resource_id=name,
                    resource_arn=self._group_ref(name).group_arn,
                )
            ancestors: list[ThingGroupRow] = []
            if parent_group_name is not None:
                parent = _require_group(uow, parent_group_name, for_update=True)
                if parent.dynamic:
                    raise InvalidRequestError(
                        f"Dynamic thing group {parent.name} cannot have child groups")
                ancestors = [*uow.thing_groups.ancestors(parent.name), parent]
                if len(ancestors) + 1 > MAX_GROUP_DEPTH:
                    raise InvalidRequestError(
                        f"Thing group hierarchies can be at most {MAX_GROUP_DEPTH} levels deep"
                    )
            row = ThingGroupRow(
                name=name,
                thing_group_id=str(uuid.uuid4()),
                parent_name=parent_group_name,
                description=description,
                attributes=values,
                version=1,
                creation_date=now,
                last_modified_date=now,
            )
            self._insert(lambda: uow.thing_groups.insert(row), f"Thing Group {name}")
        return self._thing_group(row, ancestors)

    def describe_thing_group(self, thing_group_name: str) -> ThingGroup:
        """DescribeThingGroup.

        :raises ResourceNotFoundError: no such group.
        """
        name = check_name(thing_group_name, "thingGroupName")
        with self._read() as uow:
            row = _require_group(uow, name)
            return self._thing_group(row, uow.thing_groups.ancestors(name))

    def update_thing_group(
        self,
        thing_group_name: str,
        *,
        description: str | None = None,
        attributes: Mapping[str, str] | None = None,
        merge: bool = False,
        expected_version: int | None = None,
    ) -> int:
        """UpdateThingGroup; returns the new version.

        :param description: the new description (``""`` clears it; ``None`` keeps it).
        :param attributes: replace the attributes, or with ``merge`` merge into them; an
            empty value removes that attribute.
        :raises ResourceNotFoundError: no such group.
        :raises VersionConflictError: ``expected_version`` is not the current version.
        :raises InvalidRequestError: bad arguments or too many attributes, or a dynamic
            group (UpdateDynamicThingGroup changes those).
        """
        return self._update_group(thing_group_name, description=description,
                                  attributes=attributes, merge=merge,
                                  expected_version=expected_version, dynamic=False)

    def _update_group(
        self,
        thing_group_name: str,
        *,
        description: str | None,
        attributes: Mapping[str, str] | None,
        merge: bool,
        expected_version: int | None,
        dynamic: bool,
        query: tuple[str, str, str] | None = None,
    ) -> int:
        name = check_name(thing_group_name, "thingGroupName")
        new_description = check_description(description)
        changes = None if attributes is None else check_attributes(attributes)
        check_expected_version(expected_version)
        now = self._now()
        with self._change() as (uow, _events):
            current = _require_group(uow, name, for_update=True)
            _require_kind(current, dynamic)
            compare_version(expected_version, current.version, f"thing group {name}")
            values = dict(current.attributes)
            if changes is not None:
                if not merge:
                    values = {}
                values.update(changes)
            values = present(values)
            if len(values) > MAX_GROUP_ATTRIBUTES:
                raise InvalidRequestError(
                    f"A thing group can have at most {MAX_GROUP_ATTRIBUTES} attributes"
                )
            version = current.version + 1
            uow.thing_groups.update(
                name,
                description=(
                    current.description if new_description is None else new_description or None
                ),
                attributes=values,
                version=version,
                now=now,
            )
            if query is not None:
                uow.thing_groups.set_query(name, query_string=query[0], index_name=query[1],
                                           query_version=query[2])
        return version

    def update_dynamic_thing_group(
        self,
        thing_group_name: str,
        *,
        query_string: str,
        index_name: str,
        query_version: str,
        description: str | None = None,
        attributes: Mapping[str, str] | None = None,
        merge: bool = False,
        expected_version: int | None = None,
    ) -> int:
        """UpdateDynamicThingGroup's registry part; returns the new version.

        :raises ResourceNotFoundError: no such group.
        :raises VersionConflictError: ``expected_version`` is not the current version.
        :raises InvalidRequestError: bad arguments, or the group is static.
        """
        return self._update_group(
            thing_group_name, description=description, attributes=attributes, merge=merge,
            expected_version=expected_version, dynamic=True,
            query=(query_string, index_name, query_version))

    def delete_dynamic_thing_group(self, thing_group_name: str, *,
                                   expected_version: int | None = None) -> None:
        """DeleteDynamicThingGroup: its members leave it, its policies are detached.
        Deleting a group that does not exist succeeds.

        :raises VersionConflictError: ``expected_version`` is not the current version.
        :raises InvalidRequestError: the group is static.
        """
        self._delete_group(
            thing_group_name, expected_version=expected_version, dynamic=True)

    def delete_thing_group(
        self, thing_group_name: str, *, expected_version: int | None = None
    ) -> None:
        """DeleteThingGroup. Its members leave it and the policies attached to it are
        detached. Deleting a group that does not exist succeeds.

        :raises VersionConflictError: ``expected_version`` is not the current version.
        :raises InvalidRequestError: the group has child groups, or is dynamic
            (DeleteDynamicThingGroup deletes those).
        """
        self._delete_group(thing_group_name, expected_version=expected_version, dynamic=False)

    def _delete_group(self, thing_group_name: str, *, expected_version: int | None,
                      dynamic: bool) -> None:
        name = check_name(thing_group_name, "thingGroupName")
        check_expected_version(expected_version)
        with self._change() as (uow, events):
            current = uow.thing_groups.get(name, for_update=True)
            if current is None:
                return
            _require_kind(current, dynamic)
            compare_version(expected_version, current.version, f"thing group {name}")
            if uow.thing_groups.has_children(name):
                raise InvalidRequestError(
                    f"Cannot delete thing group {name} because it has child groups"
                )
            members = uow.thing_groups.members_of(name)
            target = PolicyTarget(THING_GROUP, name)
            detached = uow.policies.detach_all_from(target)
            try:
                uow.thing_groups.delete(name)
            except ConflictError:
                raise InvalidRequestError(
                    f"Cannot delete thing group {name} because it has child groups"
                ) from None
            arn = self._target_arn(target)
            events.extend(PolicyAttachmentChanged(policy, arn, False) for policy in detached)
            events.extend(ThingGroupMembershipChanged(thing, name, False) for thing in members)
            events.append(ThingGroupDeleted(name, tuple(members)))

    def list_thing_groups(
        self,
        *,
        parent_group: str | None = None,
        name_prefix_filter: str | None = None,
        recursive: bool = True,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> Page[GroupNameAndArn]:
        """ListThingGroups, ordered by name. Without ``parent_group``: all groups (only the
        root groups when not ``recursive``); with it: its descendants (direct children when
        not ``recursive``).

        :raises ResourceNotFoundError: ``parent_group`` does not exist.
        :raises InvalidRequestError: bad filters, ``max_results`` or ``next_token``.
        """
        if parent_group is not None:
            check_name(parent_group, "parentGroup")
        if name_prefix_filter is not None:
            check_name(name_prefix_filter, "namePrefixFilter")
        limit = check_page_size(max_results)
        with self._read() as uow, self._page_token():
            if parent_group is not None:
                _require_group(uow, parent_group)
            rows, token = uow.thing_groups.list_page(
                parent_name=parent_group,
                name_prefix=name_prefix_filter,
                recursive=recursive,
                limit=limit,
                token=next_token,
            )
        return [self._group_ref(row.name) for row in rows], token

    def add_thing_to_thing_group(self, *, thing_group_name: str, thing_name: str,
                                 override_dynamic_groups: bool = False) -> None:
        """AddThingToThingGroup. Adding a member again does nothing.

        :param override_dynamic_groups: when the thing is in 10 groups, some of them
            dynamic, take it out of the last dynamic one (by name) to make room.
        :raises ResourceNotFoundError: no such group or thing.
        :raises InvalidRequestError: the thing is already in another group of the same
            hierarchy, or in 10 groups (and none dynamic to give way); or the group is
            dynamic.
        """
        group = check_name(thing_group_name, "thingGroupName")
        thing = check_name(thing_name, "thingName")
        now = self._now()
        with self._change() as (uow, events):
            _require_static(_require_group(uow, group))
            require_thing(uow, thing, for_update=True)
            current = uow.thing_groups.groups_of(thing)
            if group in current:
                return
            if len(current) >= MAX_GROUPS_PER_THING and override_dynamic_groups:
                dynamic = [name for name in current
                           if (row := uow.thing_groups.get(name)) is not None and row.dynamic]
                if dynamic:
                    evicted = max(dynamic)
                    uow.thing_groups.remove_member(evicted, thing)
                    events.append(ThingGroupMembershipChanged(thing, evicted, False))
                    current.remove(evicted)
            if len(current) >= MAX_GROUPS_PER_THING:
                raise InvalidRequestError(
                    f"Thing {thing} is already in {MAX_GROUPS_PER_THING} thing groups"
                )
            root = _root_of(uow, group)
            for other in current:
                if _root_of(uow, other) == root:
                    raise InvalidRequestError(
                        f"Thing {thing} is already in thing group {other} of the same "
                        f"hierarchy as {group}; a thing can be in one group per hierarchy"
                    )
            uow.thing_groups.add_member(group, thing, now)
            events.append(ThingGroupMembershipChanged(thing, group, True))

    def remove_thing_from_thing_group(self, *, thing_group_name: str, thing_name: str) -> None:
        """RemoveThingFromThingGroup. Removing a thing that is not a member does nothing.

        :raises ResourceNotFoundError: no such group or thing.
        :raises InvalidRequestError: the group is dynamic.
        """
        group = check_name(thing_group_name, "thingGroupName")
        thing = check_name(thing_name, "thingName")
        with self._change() as (uow, events):
            _require_static(_require_group(uow, group))
            require_thing(uow, thing)
            if uow.thing_groups.remove_member(group, thing):
                events.append(ThingGroupMembershipChanged(thing, group, False))

    def list_things_in_thing_group(
        self,
        thing_group_name: str,
        *,
        recursive: bool = False,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> Page[str]:
        """ListThingsInThingGroup: thing names, ordered; with ``recursive`` also the things
        of all descendant groups.

        :raises ResourceNotFoundError: no such group.
        :raises InvalidRequestError: bad ``max_results`` or ``next_token``.
        """
        name = check_name(thing_group_name, "thingGroupName")
        limit = check_page_size(max_results)
        with self._read() as uow, self._page_token():
            _require_group(uow, name)
            return uow.thing_groups.members_page(
                name, recursive=recursive, limit=limit, token=next_token
            )

    def list_thing_groups_for_thing(
        self,
        thing_name: str,
        *,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> Page[GroupNameAndArn]:
        """ListThingGroupsForThing: the groups the thing is a direct member of.

        :raises ResourceNotFoundError: no such thing.
        :raises InvalidRequestError: bad ``max_results`` or ``next_token``.
        """
        name = check_name(thing_name, "thingName")
        limit = check_page_size(max_results)
        with self._read() as uow, self._page_token():
            require_thing(uow, name)
            names, token = uow.thing_groups.groups_page(name, limit=limit, token=next_token)
        return [self._group_ref(group) for group in names], token


def _require_group(uow: UnitOfWork, name: str, *, for_update: bool = False) -> ThingGroupRow:
    row = uow.thing_groups.get(name, for_update=for_update)
    if row is None:
        raise ResourceNotFoundError(f"Thing group {name} cannot be found")
    return row


def _require_static(row: ThingGroupRow) -> None:
    if row.dynamic:
        raise InvalidRequestError(
            f"Cannot add things to or remove things from dynamic thing group {row.name}: "
            "its query decides its members")


def _require_kind(row: ThingGroupRow, dynamic: bool) -> None:
    if row.dynamic and not dynamic:
        raise InvalidRequestError(
            f"Thing group {row.name} is a dynamic thing group; use the dynamic thing group "
            "operations")
    if dynamic and not row.dynamic:
        raise InvalidRequestError(f"Thing group {row.name} is not a dynamic thing group")


def _root_of(uow: UnitOfWork, group: str) -> str:
    ancestors = uow.thing_groups.ancestors(group)
    return ancestors[0].name if ancestors else group
