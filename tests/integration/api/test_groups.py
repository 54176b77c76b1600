"""Static thing groups and membership through boto3."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import ACCOUNT, REGION

Unique = Callable[[str], str]


def test_group_hierarchy_and_membership(iot: Any, unique: Unique) -> None:
    root, child = unique("root"), unique("child")
    created = iot.create_thing_group(thingGroupName=root, thingGroupProperties={
        "thingGroupDescription": "all", "attributePayload": {"attributes": {"site": "a"}}})
    assert created["thingGroupArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{root}"
    iot.create_thing_group(thingGroupName=child, parentGroupName=root)
    described = iot.describe_thing_group(thingGroupName=child)
    assert described["thingGroupMetadata"]["parentGroupName"] == root
    assert described["thingGroupMetadata"]["rootToParentThingGroups"] == [
        {"groupName": root, "groupArn": created["thingGroupArn"]}]
    assert described["version"] == 1
    root_described = iot.describe_thing_group(thingGroupName=root)
    assert root_described["thingGroupProperties"] == {
        "thingGroupDescription": "all", "attributePayload": {"attributes": {"site": "a"}}}

    updated = iot.update_thing_group(thingGroupName=root, thingGroupProperties={
        "attributePayload": {"attributes": {"floor": "2"}, "merge": True}}, expectedVersion=1)
    assert updated["version"] == 2
    assert iot.describe_thing_group(thingGroupName=root)["thingGroupProperties"][
        "attributePayload"]["attributes"] == {"site": "a", "floor": "2"}
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.update_thing_group(thingGroupName=root, thingGroupProperties={},
                               expectedVersion=1)

    first, second = unique("member"), unique("member")
    for name in (first, second):
        iot.create_thing(thingName=name)
    iot.add_thing_to_thing_group(thingGroupName=child, thingName=first)
    thing_arn = iot.describe_thing(thingName=second)["thingArn"]
    iot.add_thing_to_thing_group(thingGroupArn=created["thingGroupArn"], thingArn=thing_arn)
    assert iot.list_things_in_thing_group(thingGroupName=child)["things"] == [first]
    recursive = iot.list_things_in_thing_group(thingGroupName=root, recursive=True)["things"]
    assert sorted(recursive) == sorted([first, second])
    assert iot.list_thing_groups_for_thing(thingName=first)["thingGroups"] == [
        {"groupName": child, "groupArn": created["thingGroupArn"].replace(root, child)}]
    # One group per hierarchy.
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.add_thing_to_thing_group(thingGroupName=root, thingName=first)
    listed = iot.list_thing_groups(parentGroup=root)["thingGroups"]
    assert [group["groupName"] for group in listed] == [child]
    prefixed = iot.list_thing_groups(namePrefixFilter=root)["thingGroups"]
    assert [group["groupName"] for group in prefixed] == [root]

    other = unique("other")
    iot.create_thing_group(thingGroupName=other)
    iot.update_thing_groups_for_thing(thingName=first, thingGroupsToAdd=[other],
                                      thingGroupsToRemove=[child])
    groups = iot.list_thing_groups_for_thing(thingName=first)["thingGroups"]
    assert [group["groupName"] for group in groups] == [other]
    iot.remove_thing_from_thing_group(thingGroupName=other, thingName=first)
    assert iot.list_thing_groups_for_thing(thingName=first)["thingGroups"] == []

    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.delete_thing_group(thingGroupName=root)  # has a child group
    iot.delete_thing_group(thingGroupName=child)
    iot.delete_thing_group(thingGroupName=root)
    iot.delete_thing_group(thingGroupName=root)  # deleting a missing group succeeds
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_group(thingGroupName=root)


def test_group_errors(iot: Any, unique: Unique) -> None:
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.create_thing_group(thingGroupName=unique("orphan"),
                               parentGroupName=unique("missing"))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.add_thing_to_thing_group(thingGroupName=unique("missing"),
                                     thingName=unique("missing"))
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.add_thing_to_thing_group(thingName=unique("t"))  # no group named
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing_group(thingGroupName="bad/name")
    name = unique("group")
    iot.create_thing_group(thingGroupName=name)
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as caught:
        iot.create_thing_group(thingGroupName=name, thingGroupProperties={
            "thingGroupDescription": "different"})
    body = caught.value.response["Error"]
    assert body["Code"] == "ResourceAlreadyExistsException"
    assert caught.value.response["resourceId"] == name
