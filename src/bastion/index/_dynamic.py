"""DynamicThingGroups: CreateDynamicThingGroup, UpdateDynamicThingGroup and
DeleteDynamicThingGroup — the registry keeps the group, the fleet index its members.

A query is checked first (thing indexing must be on: else ``ResourceNotFoundException``,
as for SearchIndex; a bad query: ``InvalidQueryException``); then the registry stores the
group, and the index computes its members at once and follows them from then on (see
:mod:`._service`). The registry given to each call is the caller's region's (its ARNs).
"""

from __future__ import annotations

from collections.abc import Mapping

from bastion.registry import RegistryService, ThingGroup

from ._errors import InvalidIndexRequestError
from ._fields import THINGS
from ._service import QUERY_VERSION, FleetIndex


class DynamicThingGroups:
    """Dynamic thing groups over ``index`` (see the module docstring)."""

    __slots__ = ("_index",)

    def __init__(self, index: FleetIndex) -> None:
        self._index = index

    def _check(self, query_string: str, index_name: str | None,
               query_version: str | None) -> tuple[str, str]:
        name = index_name or THINGS
        if name != THINGS:
            raise InvalidIndexRequestError(
                f"Dynamic thing groups support the index {THINGS} only, not {name}")
        self._index.parse(query_string, name, query_version)
        return name, query_version or QUERY_VERSION

    def create(self, registry: RegistryService, thing_group_name: str, *,
               query_string: str, index_name: str | None = None,
               query_version: str | None = None, description: str | None = None,
               attributes: Mapping[str, str] | None = None) -> ThingGroup:
        """CreateDynamicThingGroup; the members are in place when it returns.

        :raises IndexNotFoundError: thing indexing is off.
        :raises InvalidQueryError: the query is not valid.
        :raises InvalidIndexRequestError: another index or query version.
        :raises bastion.registry.RegistryError: as
            :meth:`~bastion.registry.RegistryService.create_dynamic_thing_group`.
        """
        name, version = self._check(query_string, index_name, query_version)
        group = registry.create_dynamic_thing_group(
            thing_group_name, query_string=query_string, index_name=name,
            query_version=version, description=description, attributes=attributes)
        self._index.set_dynamic_group(group.thing_group_name,
                                      self._index.parse(query_string, name, version))
        return group

    def update(self, registry: RegistryService, thing_group_name: str, *,
               query_string: str | None = None, index_name: str | None = None,
               query_version: str | None = None, description: str | None = None,
               attributes: Mapping[str, str] | None = None, merge: bool = False,
               expected_version: int | None = None) -> int:
        """UpdateDynamicThingGroup; a new query takes effect (members included) before it
        returns. Returns the new version.

        :raises (as :meth:`create`), and VersionConflictError.
        """
        current = registry.describe_thing_group(thing_group_name)
        if not current.dynamic:
            raise InvalidIndexRequestError(
                f"Thing group {current.thing_group_name} is not a dynamic thing group")
        text = query_string if query_string is not None else current.query_string or ""
        name, version = self._check(text, index_name or current.index_name,
                                    query_version or current.query_version)
        new_version = registry.update_dynamic_thing_group(
            thing_group_name, query_string=text, index_name=name, query_version=version,
            description=description, attributes=attributes, merge=merge,
            expected_version=expected_version)
        self._index.set_dynamic_group(current.thing_group_name,
                                      self._index.parse(text, name, version))
        return new_version

    def delete(self, registry: RegistryService, thing_group_name: str, *,
               expected_version: int | None = None) -> None:
        """DeleteDynamicThingGroup.

        :raises bastion.registry.RegistryError: as
            :meth:`~bastion.registry.RegistryService.delete_dynamic_thing_group`.
        """
        registry.delete_dynamic_thing_group(thing_group_name,
                                            expected_version=expected_version)
        self._index.drop_dynamic_group(thing_group_name)
