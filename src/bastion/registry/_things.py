"""Thing types, things, and the principals attached to things: the first half of
:class:`~bastion.registry.RegistryService` (see :mod:`._registry` for the rules).

Rules kept here (AWS IoT developer guide and API reference):

* names: ``[a-zA-Z0-9:_-]{1,128}`` for things and thing types;
* a thing without a type has at most 3 attributes, a thing with a type at most 50; a
  thing type has at most 3 searchable attributes, and ``list_things`` filters typed things
  on those only;
* no new things of a deprecated type; a type is deleted only after it has been
  deprecated for five minutes and no thing uses it;
* ``expected_version`` must equal the current version (``VersionConflictException``);
* a thing with principals attached cannot be deleted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Final

from bastion.store import ConflictError, ThingRow, ThingTypeRow, UnitOfWork

from ._arns import CERT, split_arn
from ._errors import (
    InvalidRequestError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    VersionConflictError,
)
from ._events import (
    ThingCreated,
    ThingDeleted,
    ThingGroupMembershipChanged,
    ThingPrincipalChanged,
    ThingUpdated,
)
from ._model import Page, Thing, ThingType
from ._names import (
    ATTRIBUTE_NAME,
    check_attribute_value,
    check_attributes,
    check_description,
    check_name,
    check_page_size,
    check_str,
)
from ._service import ServiceBase

MAX_ATTRIBUTES_WITHOUT_TYPE: Final = 3
MAX_ATTRIBUTES_WITH_TYPE: Final = 50
MAX_SEARCHABLE_ATTRIBUTES: Final = 3
DEPRECATION_GRACE: Final = timedelta(minutes=5)


class ThingOperations(ServiceBase):
    """Thing types, things and thing principals (a base of RegistryService)."""

    __slots__ = ()

    # -- thing types ----------------------------------------------------------------

    def create_thing_type(
        self,
        thing_type_name: str,
        *,
        description: str | None = None,
        searchable_attributes: Sequence[str] = (),
    ) -> ThingType:
        """CreateThingType. Creating an identical type again returns it.

        :raises InvalidRequestError: bad name, description or searchable attributes.
        :raises ResourceAlreadyExistsError: a type of that name exists with another
            configuration.
        """
        name = check_name(thing_type_name, "thingTypeName")
        description = check_description(description)
        searchable = _check_searchable(searchable_attributes)
        now = self._now()
        row = ThingTypeRow(
            name=name,
            thing_type_id=str(uuid.uuid4()),
            description=description,
            searchable_attributes=searchable,
            deprecated=False,
            deprecation_date=None,
            creation_date=now,
        )
        with self._change() as (uow, _events):
            existing = uow.thing_types.get(name)
            if existing is not None:
                if (existing.description, existing.searchable_attributes) == (
                    description,
                    searchable,
                ):
                    return self._thing_type(existing)
                raise ResourceAlreadyExistsError(
                    f"Thing Type {name} already exists with different configuration",
                    resource_id=name,
                    resource_arn=self._thing_type(existing).thing_type_arn,
                )
            self._insert(lambda: uow.thing_types.insert(row), f"Thing Type {name}")
        return self._thing_type(row)

    def describe_thing_type(self, thing_type_name: str) -> ThingType:
        """DescribeThingType.

        :raises ResourceNotFoundError: no such type.
        """
        name = check_name(thing_type_name, "thingTypeName")
        with self._read() as uow:
            return self._thing_type(require_type(uow, name))

    def list_thing_types(
        self,
        *,
        thing_type_name: str | None = None,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> Page[ThingType]:
        """ListThingTypes, ordered by name.

        :raises InvalidRequestError: bad ``max_results`` or ``next_token``.
        """
        if thing_type_name is not None:
            check_name(thing_type_name, "thingTypeName")
        limit = check_page_size(max_results)
        with self._read() as uow, self._page_token():
            rows, token = uow.thing_types.list_page(
                name=thing_type_name, limit=limit, token=next_token
            )
        return [self._thing_type(row) for row in rows], token

    def deprecate_thing_type(self, thing_type_name: str, *, undo_deprecate: bool = False) -> None:
        """DeprecateThingType (or, with ``undo_deprecate``, revert a deprecation).

        :raises ResourceNotFoundError: no such type.
        """
        name = check_name(thing_type_name, "thingTypeName")
        now = self._now()
        with self._change() as (uow, _events):
            require_type(uow, name, for_update=True)
            if undo_deprecate:
                uow.thing_types.set_deprecated(name, False, None)
            else:
                uow.thing_types.set_deprecated(name, True, now)

    def delete_thing_type(self, thing_type_name: str) -> None:
        """DeleteThingType.

        :raises ResourceNotFoundError: no such type.
        :raises InvalidRequestError: the type is not deprecated, was deprecated less than
            five minutes ago, or things still have it.
        """
        name = check_name(thing_type_name, "thingTypeName")
        now = self._now()
        with self._change() as (uow, _events):
            row = require_type(uow, name, for_update=True)
            if not row.deprecated or row.deprecation_date is None:
                raise InvalidRequestError(
                    f"Thing type {name} must be deprecated before it can be deleted"
                )
            if now - row.deprecation_date < DEPRECATION_GRACE:
                raise InvalidRequestError(
                    f"Thing type {name} was deprecated less than 5 minutes ago; "
                    "try again later"
                )
            if uow.things.count_of_type(name):
                raise InvalidRequestError(
                    f"Thing type {name} cannot be deleted while things are associated with it"
                )
            uow.thing_types.delete(name)

    # -- things ---------------------------------------------------------------------

    def create_thing(
        self,
        thing_name: str,
        *,
        thing_type_name: str | None = None,
        attributes: Mapping[str, str] | None = None,
        billing_group_name: str | None = None,
    ) -> Thing:
        """CreateThing. Creating an identical thing again returns the existing one.

        :param billing_group_name: put the new thing in this billing group.
        :raises InvalidRequestError: bad name or attributes, too many attributes, or a
            deprecated thing type.
        :raises ResourceNotFoundError: the thing type or billing group does not exist.
        :raises ResourceAlreadyExistsError: the thing exists with another configuration.
        """
        name = check_name(thing_name, "thingName")
        if thing_type_name is not None:
            check_name(thing_type_name, "thingTypeName")
        if billing_group_name is not None:
            check_name(billing_group_name, "billingGroupName")
        values = present(check_attributes(attributes or {}))
        now = self._now()
        with self._change() as (uow, events):
            existing = uow.things.get(name)
            if existing is not None:
                if (existing.thing_type_name, dict(existing.attributes)) == (
                    thing_type_name,
                    values,
                ):
                    return self._thing(existing)
                raise ResourceAlreadyExistsError(
                    f"Thing {name} already exists with different attributes",
                    resource_id=name,
                    resource_arn=self._thing(existing).thing_arn,
                )
            searchable = self._check_thing_type(uow, thing_type_name, values)
            row = ThingRow(
                name=name,
                thing_id=str(uuid.uuid4()),
                thing_type_name=thing_type_name,
                attributes=values,
                version=1,
                creation_date=now,
                last_modified_date=now,
            )
            self._insert(lambda: uow.things.insert(row, searchable=searchable), f"Thing {name}")
            events.append(ThingCreated(name))
            if billing_group_name is not None:
                if uow.billing_groups.get(billing_group_name) is None:
                    raise ResourceNotFoundError(
                        f"Billing group {billing_group_name} cannot be found")
                uow.billing_groups.put_member(billing_group_name, name, now)
        return self._thing(row)

    def describe_thing(self, thing_name: str) -> Thing:
        """DescribeThing.

        :raises ResourceNotFoundError: no such thing.
        """
        name = check_name(thing_name, "thingName")
        with self._read() as uow:
            thing = self._thing(require_thing(uow, name))
            return replace(thing, billing_group_name=uow.billing_groups.group_of(name))

    def update_thing(
        self,
        thing_name: str,
        *,
        thing_type_name: str | None = None,
        remove_thing_type: bool = False,
        attributes: Mapping[str, str] | None = None,
        merge: bool = False,
        expected_version: int | None = None,
    ) -> Thing:
        """UpdateThing. ``attributes`` replace the thing's attributes, or with ``merge`` are
        merged into them; an empty value removes that attribute. The version goes up by
        one. Returns the updated thing.

        :raises ResourceNotFoundError: no such thing, or no such thing type.
        :raises VersionConflictError: ``expected_version`` is not the current version.
        :raises InvalidRequestError: bad arguments, both a type and ``remove_thing_type``,
            a deprecated type, or too many attributes.
        """
        name = check_name(thing_name, "thingName")
        if thing_type_name is not None:
            check_name(thing_type_name, "thingTypeName")
            if remove_thing_type:
                raise InvalidRequestError(
                    "Cannot set a thing type and remove the thing type at the same time"
                )
        changes = None if attributes is None else check_attributes(attributes)
        check_expected_version(expected_version)
        now = self._now()
        with self._change() as (uow, events):
            current = require_thing(uow, name, for_update=True)
            compare_version(expected_version, current.version, f"thing {name}")
            new_type = current.thing_type_name
            if remove_thing_type:
                new_type = None
            elif thing_type_name is not None:
                new_type = thing_type_name
            values = dict(current.attributes)
            if changes is not None:
                if not merge:
                    values = {}
                values.update(changes)
            values = present(values)
            searchable = self._check_thing_type(
                uow, new_type, values, same_type=new_type == current.thing_type_name
            )
            version = current.version + 1
            uow.things.update(
                name,
                thing_type_name=new_type,
                attributes=values,
                searchable=searchable,
                version=version,
                now=now,
            )
            events.append(ThingUpdated(name, version))
            updated = uow.things.get(name)
            assert updated is not None
        return self._thing(updated)

    def delete_thing(self, thing_name: str, *, expected_version: int | None = None) -> None:
        """DeleteThing. Deleting a thing that does not exist succeeds.

        :raises VersionConflictError: ``expected_version`` is not the current version.
        :raises InvalidRequestError: principals are still attached to the thing.
        """
        name = check_name(thing_name, "thingName")
        check_expected_version(expected_version)
        with self._change() as (uow, events):
            current = uow.things.get(name, for_update=True)
            if current is None:
                return
            compare_version(expected_version, current.version, f"thing {name}")
            if uow.thing_principals.count_for_thing(name):
                raise InvalidRequestError(  # AWS's words
                    f"Cannot delete. Thing {name} is still attached to one or more principals"
                )
            groups = uow.thing_groups.groups_of(name)
            uow.things.delete(name)
            events.extend(ThingGroupMembershipChanged(name, group, False) for group in groups)
            events.append(ThingDeleted(name))

    def list_things(
        self,
        *,
        attribute_name: str | None = None,
        attribute_value: str | None = None,
        thing_type_name: str | None = None,
        use_prefix_attribute_value: bool = False,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> Page[Thing]:
        """ListThings, ordered by name. The attribute filter matches searchable
        attributes: every attribute of an untyped thing, and the type's searchable
        attributes of a typed one.

        :raises InvalidRequestError: bad filter values, ``max_results`` or ``next_token``.
        """
        if attribute_name is not None:
            check_name(attribute_name, "attributeName", ATTRIBUTE_NAME)
        if attribute_value is not None:
            check_attribute_value(attribute_value)
        elif use_prefix_attribute_value:
            raise InvalidRequestError("usePrefixAttributeValue needs an attributeValue")
        if thing_type_name is not None:
            check_name(thing_type_name, "thingTypeName")
        limit = check_page_size(max_results)
        with self._read() as uow, self._page_token():
            rows, token = uow.things.list_page(
                thing_type_name=thing_type_name,
                attribute_name=attribute_name,
                attribute_value=attribute_value,
                prefix_match=use_prefix_attribute_value,
                limit=limit,
                token=next_token,
            )
        return [self._thing(row) for row in rows], token

    # -- thing principals -----------------------------------------------------------

    def attach_thing_principal(self, thing_name: str, principal: str) -> None:
        """AttachThingPrincipal. Attaching again does nothing.

        :param principal: a certificate ARN of this account and region.
        :raises ResourceNotFoundError: no such thing or certificate.
        :raises InvalidRequestError: ``principal`` is not a certificate ARN.
        """
        name = check_name(thing_name, "thingName")
        certificate_id = self._certificate_principal(principal)
        now = self._now()
        with self._change() as (uow, events):
            require_thing(uow, name)
            if uow.certificates.get(certificate_id) is None:
                raise ResourceNotFoundError(f"Certificate {certificate_id} does not exist")
            if uow.thing_principals.attach(name, CERT, certificate_id, now):
                events.append(ThingPrincipalChanged(name, principal, True))

    def detach_thing_principal(self, thing_name: str, principal: str) -> None:
        """DetachThingPrincipal. Detaching a principal that is not attached does nothing.

        :raises ResourceNotFoundError: no such thing.
        :raises InvalidRequestError: ``principal`` is not a certificate ARN.
        """
        name = check_name(thing_name, "thingName")
        certificate_id = self._certificate_principal(principal)
        with self._change() as (uow, events):
            require_thing(uow, name)
            if uow.thing_principals.detach(name, CERT, certificate_id):
                events.append(ThingPrincipalChanged(name, principal, False))

    def list_thing_principals(
        self,
        thing_name: str,
        *,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> Page[str]:
        """ListThingPrincipals: principal ARNs.

        :raises ResourceNotFoundError: no such thing.
        :raises InvalidRequestError: bad ``max_results`` or ``next_token``.
        """
        name = check_name(thing_name, "thingName")
        limit = check_page_size(max_results)
        with self._read() as uow, self._page_token():
            if uow.things.get(name) is None:
                raise ResourceNotFoundError(  # AWS's words
                    f"Failed to list principals for thing {name} because the thing does not "
                    "exist in your account")
            pairs, token = uow.thing_principals.principals_page(
                name, limit=limit, token=next_token
            )
        return [self._account.arn(f"{kind}/{ident}") for kind, ident in pairs], token

    def list_principal_things(
        self,
        principal: str,
        *,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> Page[str]:
        """ListPrincipalThings: names of the things a certificate is attached to.

        :raises InvalidRequestError: ``principal`` is not a certificate ARN; bad
            ``max_results`` or ``next_token``.
        """
        certificate_id = self._certificate_principal(principal)
        limit = check_page_size(max_results)
        with self._read() as uow, self._page_token():
            return uow.thing_principals.things_page(
                CERT, certificate_id, limit=limit, token=next_token
            )

    # -- internals ------------------------------------------------------------------

    def _certificate_principal(self, principal: str) -> str:
        check_str(principal, "principal")
        _kind, certificate_id = split_arn(self._account, principal, frozenset({CERT}))
        return certificate_id

    def _check_thing_type(
        self,
        uow: UnitOfWork,
        thing_type_name: str | None,
        attributes: Mapping[str, str],
        *,
        same_type: bool = False,
    ) -> frozenset[str]:
        """Check the type (exists; not deprecated unless unchanged) and the attribute
        count; return the names of the searchable attributes."""
        if thing_type_name is None:
            if len(attributes) > MAX_ATTRIBUTES_WITHOUT_TYPE:
                raise InvalidRequestError(
                    f"A thing without a thing type can have at most "
                    f"{MAX_ATTRIBUTES_WITHOUT_TYPE} attributes"
                )
            return frozenset(attributes)
        thing_type = uow.thing_types.get(thing_type_name)
        if thing_type is None:
            raise ResourceNotFoundError(f"Thing type {thing_type_name} does not exist")
        if thing_type.deprecated and not same_type:
            raise InvalidRequestError(
                f"Thing type {thing_type_name} is deprecated; no new things can use it"
            )
        if len(attributes) > MAX_ATTRIBUTES_WITH_TYPE:
            raise InvalidRequestError(
                f"A thing can have at most {MAX_ATTRIBUTES_WITH_TYPE} attributes"
            )
        return frozenset(thing_type.searchable_attributes)

    @staticmethod
    def _insert(insert: Callable[[], None], what: str) -> None:
        try:
            insert()
        except ConflictError:
            raise ResourceAlreadyExistsError(f"{what} already exists") from None


def require_type(uow: UnitOfWork, name: str, *, for_update: bool = False) -> ThingTypeRow:
    row = uow.thing_types.get(name, for_update=for_update)
    if row is None:
        raise ResourceNotFoundError(f"Thing type {name} does not exist")
    return row


def require_thing(uow: UnitOfWork, name: str, *, for_update: bool = False) -> ThingRow:
    row = uow.things.get(name, for_update=for_update)
    if row is None:
        raise ResourceNotFoundError(f"Thing {name} cannot be found")
    return row


def present(attributes: Mapping[str, str]) -> dict[str, str]:
    """The attributes without the empty (removed) ones."""
    return {key: value for key, value in attributes.items() if value != ""}


def _check_searchable(names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(names, str):
        raise TypeError("searchable_attributes must be a sequence of names, not a str")
    result: list[str] = []
    for name in names:
        check_name(name, "searchableAttributes", ATTRIBUTE_NAME)
        if name in result:
            raise InvalidRequestError(f"Searchable attribute {name} is listed twice")
        result.append(name)
    if len(result) > MAX_SEARCHABLE_ATTRIBUTES:
        raise InvalidRequestError(
            f"A thing type can have at most {MAX_SEARCHABLE_ATTRIBUTES} searchable attributes"
        )
    return tuple(result)


def check_expected_version(expected_version: int | None) -> None:
    if expected_version is None:
        return
    if isinstance(expected_version, bool) or not isinstance(expected_version, int):
        raise TypeError(
            f"expected_version must be an int, not {type(expected_version).__name__}"
        )


def compare_version(expected: int | None, current: int, what: str) -> None:
    if expected is not None and expected != current:
        raise VersionConflictError(
            f"The version for {what} is {current}, not the expected version {expected}"
        )
