"""Billing groups in the registry service, on both backends."""

from __future__ import annotations

import pytest

from bastion.account import Account
from bastion.registry import (
    InvalidRequestError,
    RegistryService,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    TaggingService,
    VersionConflictError,
)
from bastion.store import Store

from .conftest import EventLog


@pytest.fixture
def tags(store: Store, account: Account) -> TaggingService:
    return TaggingService(store, account=account, page_size=2)


def test_create_with_tags_in_one_transaction(registry: RegistryService,
                                             tags: TaggingService) -> None:
    group = registry.create_billing_group("plant-7", description="line 3",
                                          tags=[{"Key": "cost", "Value": "42"}])
    assert group.billing_group_arn == "arn:aws:iot:eu-west-1:111122223333:billinggroup/plant-7"
    assert (group.version, group.description) == (1, "line 3")
    assert tags.tags_of("billinggroup", "plant-7") == {"cost": "42"}
    # A bad tag refuses the whole creation.
    with pytest.raises(InvalidRequestError):
        registry.create_billing_group("plant-8", tags=[{"Key": "aws:cost", "Value": "1"}])
    with pytest.raises(ResourceNotFoundError):
        registry.describe_billing_group("plant-8")
    assert registry.create_billing_group("plant-7", description="line 3") == group
    with pytest.raises(ResourceAlreadyExistsError) as exists:
        registry.create_billing_group("plant-7")
    assert exists.value.resource_arn == group.billing_group_arn


def test_update_and_delete_check_the_version(registry: RegistryService) -> None:
    registry.create_billing_group("g", description="d")
    assert registry.update_billing_group("g", description="e", expected_version=1) == 2
    assert registry.describe_billing_group("g").description == "e"
    with pytest.raises(VersionConflictError):
        registry.update_billing_group("g", description="f", expected_version=1)
    with pytest.raises(VersionConflictError):
        registry.delete_billing_group("g", expected_version=1)
    assert registry.update_billing_group("g", description="") == 3
    assert registry.describe_billing_group("g").description is None
    registry.delete_billing_group("g", expected_version=3)
    registry.delete_billing_group("g")  # gone already: fine
    with pytest.raises(ResourceNotFoundError):
        registry.update_billing_group("g", description=None)


def test_things_move_between_groups_and_publish_nothing(registry: RegistryService,
                                                        events: EventLog) -> None:
    registry.create_billing_group("a")
    registry.create_billing_group("b")
    registry.create_thing("t1", billing_group_name="a")
    registry.create_thing("t2")
    events.clear()
    registry.add_thing_to_billing_group(billing_group_name="a", thing_name="t2")
    assert registry.list_things_in_billing_group("a") == (["t1", "t2"], None)
    registry.add_thing_to_billing_group(billing_group_name="b", thing_name="t1")
    assert registry.describe_thing("t1").billing_group_name == "b"
    assert registry.list_things_in_billing_group("a", max_results=1) == (
        ["t2"], None)
    registry.remove_thing_from_billing_group(billing_group_name="a", thing_name="t1")
    assert registry.describe_thing("t1").billing_group_name == "b"
    assert events.events == []
    registry.delete_billing_group("b")
    assert registry.describe_thing("t1").billing_group_name is None
    with pytest.raises(ResourceNotFoundError):
        registry.create_thing("t3", billing_group_name="b")
    with pytest.raises(ResourceNotFoundError):
        registry.describe_thing("t3")  # the refused CreateThing created nothing


def test_names_and_pages(registry: RegistryService) -> None:
    for name in ("x-1", "x-2", "x-3", "y"):
        registry.create_billing_group(name)
    page, token = registry.list_billing_groups(name_prefix_filter="x", max_results=2)
    assert [g.group_name for g in page] == ["x-1", "x-2"]
    rest, end = registry.list_billing_groups(name_prefix_filter="x", max_results=2,
                                             next_token=token)
    assert [g.group_name for g in rest] == ["x-3"] and end is None
    for bad in ("../x", "a b", "é", "", "x" * 129):
        with pytest.raises(InvalidRequestError):
            registry.create_billing_group(bad)
    with pytest.raises(InvalidRequestError):
        registry.list_billing_groups(next_token="garbage")
    with pytest.raises(InvalidRequestError):
        registry.list_billing_groups(max_results=251)
