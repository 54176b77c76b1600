"""Billing groups: the half of :class:`~bastion.registry.RegistryService` that groups
things for cost allocation.

Rules kept here (AWS IoT API reference and developer guide, "Billing groups"):

* names ``[a-zA-Z0-9:_-]{1,128}``; a description of at most 2028 characters;
* a billing group is flat (no parent) and carries tags, given at creation
  (CreateBillingGroup ``tags``, written in the same transaction) or with TagResource;
* a thing is in at most one billing group: adding it to another moves it there;
* ``expected_version`` must equal the current version (VersionConflictException);
  UpdateBillingGroup adds one to the version;
* deleting a group takes its things out of it (they stay in the registry) and deletes
  its tags; deleting a group that does not exist succeeds, as DeleteBillingGroup's model
  has no ResourceNotFoundException;
* removing a thing that is not in the group does nothing.

Billing group membership is not a security state: it changes no policy and publishes no
event.
"""

from __future__ import annotations

import uuid

from bastion.store import BillingGroupRow, ConflictError, UnitOfWork

from ._errors import ResourceAlreadyExistsError, ResourceNotFoundError
from ._model import BillingGroup, GroupNameAndArn, Page
from ._names import check_description, check_name, check_page_size
from ._service import ServiceBase
from ._tagging import check_tags
from ._things import check_expected_version, compare_version, require_thing

BILLING_GROUP = "billinggroup"


class BillingGroupOperations(ServiceBase):
    """Billing groups and their things (a base of RegistryService)."""

    __slots__ = ()

    def create_billing_group(self, billing_group_name: str, *, description: str | None = None,
                             tags: object = None) -> BillingGroup:
        """CreateBillingGroup. Creating an identical group again returns it (its tags
        are then left as they are).

        :param tags: AWS's tag list (``[{"Key": …, "Value": …}]``) or ``None``.
        :raises InvalidRequestError: a bad name, description or tag.
        :raises ResourceAlreadyExistsError: a group of that name exists with another
            description.
        """
        name = check_name(billing_group_name, "billingGroupName")
        description = check_description(description) or None
        wanted = check_tags(tags)
        now = self._now()
        row = BillingGroupRow(name=name, billing_group_id=str(uuid.uuid4()),
                              description=description, version=1, creation_date=now,
                              last_modified_date=now)
        with self._change() as (uow, _events):
            existing = uow.billing_groups.get(name)
            if existing is not None:
                if existing.description == description:
                    return self._billing_group(existing)
                raise ResourceAlreadyExistsError(
                    f"Billing Group {name} already exists with different properties",
                    resource_id=existing.billing_group_id,
                    resource_arn=self._billing_group_arn(name))
            try:
                uow.billing_groups.insert(row)
            except ConflictError:
                raise ResourceAlreadyExistsError(
                    f"Billing Group {name} already exists") from None
            uow.tags.put(BILLING_GROUP, name, wanted)
        return self._billing_group(row)

    def describe_billing_group(self, billing_group_name: str) -> BillingGroup:
        """DescribeBillingGroup.

        :raises ResourceNotFoundError: no such group.
        """
        name = check_name(billing_group_name, "billingGroupName")
        with self._read() as uow:
            return self._billing_group(require_billing_group(uow, name))

    def update_billing_group(self, billing_group_name: str, *, description: str | None,
                             expected_version: int | None = None) -> int:
        """UpdateBillingGroup; returns the new version.

        :param description: the new description (``""`` or ``None`` clears it: the
            properties are replaced as a whole, as AWS does).
        :raises ResourceNotFoundError: no such group.
        :raises VersionConflictError: ``expected_version`` is not the current version.
        :raises InvalidRequestError: a bad name or description.
        """
        name = check_name(billing_group_name, "billingGroupName")
        new_description = check_description(description) or None
        check_expected_version(expected_version)
        now = self._now()
        with self._change() as (uow, _events):
            current = require_billing_group(uow, name, for_update=True)
            compare_version(expected_version, current.version, f"billing group {name}")
            version = current.version + 1
            uow.billing_groups.update(name, description=new_description, version=version,
                                      now=now)
        return version

    def delete_billing_group(self, billing_group_name: str, *,
                             expected_version: int | None = None) -> None:
        """DeleteBillingGroup: its things leave it, its tags go with it. Deleting a group
        that does not exist succeeds.

        :raises VersionConflictError: ``expected_version`` is not the current version.
        :raises InvalidRequestError: a bad name.
        """
        name = check_name(billing_group_name, "billingGroupName")
        check_expected_version(expected_version)
        with self._change() as (uow, _events):
            current = uow.billing_groups.get(name, for_update=True)
            if current is None:
                return
            compare_version(expected_version, current.version, f"billing group {name}")
            uow.billing_groups.delete(name)

    def list_billing_groups(self, *, name_prefix_filter: str | None = None,
                            max_results: int | None = None, next_token: str | None = None
                            ) -> Page[GroupNameAndArn]:
        """ListBillingGroups, ordered by name.

        :raises InvalidRequestError: a bad filter, ``max_results`` or ``next_token``.
        """
        if name_prefix_filter is not None:
            check_name(name_prefix_filter, "namePrefixFilter")
        limit = check_page_size(max_results)
        with self._read() as uow, self._page_token():
            rows, token = uow.billing_groups.list_page(name_prefix=name_prefix_filter,
                                                       limit=limit, token=next_token)
        return [GroupNameAndArn(row.name, self._billing_group_arn(row.name))
                for row in rows], token

    def add_thing_to_billing_group(self, *, billing_group_name: str, thing_name: str) -> None:
        """AddThingToBillingGroup. A thing in another billing group moves to this one;
        adding it again does nothing.

        :raises ResourceNotFoundError: no such group or thing.
        :raises InvalidRequestError: a bad name.
        """
        group = check_name(billing_group_name, "billingGroupName")
        thing = check_name(thing_name, "thingName")
        now = self._now()
        with self._change() as (uow, _events):
            require_billing_group(uow, group)
            require_thing(uow, thing)
            uow.billing_groups.put_member(group, thing, now)

    def remove_thing_from_billing_group(self, *, billing_group_name: str,
                                        thing_name: str) -> None:
        """RemoveThingFromBillingGroup. A thing that is not in the group stays where it is.

        :raises ResourceNotFoundError: no such group or thing.
        :raises InvalidRequestError: a bad name.
        """
        group = check_name(billing_group_name, "billingGroupName")
        thing = check_name(thing_name, "thingName")
        with self._change() as (uow, _events):
            require_billing_group(uow, group)
            require_thing(uow, thing)
            uow.billing_groups.remove_member(group, thing)

    def list_things_in_billing_group(self, billing_group_name: str, *,
                                     max_results: int | None = None,
                                     next_token: str | None = None) -> Page[str]:
        """ListThingsInBillingGroup: thing names, ordered.

        :raises ResourceNotFoundError: no such group.
        :raises InvalidRequestError: a bad name, ``max_results`` or ``next_token``.
        """
        name = check_name(billing_group_name, "billingGroupName")
        limit = check_page_size(max_results)
        with self._read() as uow, self._page_token():
            require_billing_group(uow, name)
            return uow.billing_groups.members_page(name, limit=limit, token=next_token)

    # -- internals ------------------------------------------------------------------

    def _billing_group_arn(self, name: str) -> str:
        return self._account.arn(f"{BILLING_GROUP}/{name}")

    def _billing_group(self, row: BillingGroupRow) -> BillingGroup:
        return BillingGroup(
            billing_group_name=row.name, billing_group_arn=self._billing_group_arn(row.name),
            billing_group_id=row.billing_group_id, description=row.description,
            version=row.version, creation_date=row.creation_date,
            last_modified_date=row.last_modified_date)


def require_billing_group(uow: UnitOfWork, name: str, *, for_update: bool = False
                          ) -> BillingGroupRow:
    """The group's row.

    :raises ResourceNotFoundError: no such group.
    """
    row = uow.billing_groups.get(name, for_update=for_update)
    if row is None:
        raise ResourceNotFoundError(f"Billing group {name} cannot be found")
    return row
