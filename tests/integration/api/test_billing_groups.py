"""Billing groups and the things in them, through boto3 over HTTPS with SigV4."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from .conftest import ACCOUNT, REGION

Unique = Callable[[str], str]


def _things(iot: Any, group: str, **kwargs: Any) -> list[str]:
    return list(iot.list_things_in_billing_group(billingGroupName=group, **kwargs)["things"])


def test_create_describe_update_with_versions(iot: Any, unique: Unique) -> None:
    name = unique("billing")
    created = iot.create_billing_group(
        billingGroupName=name,
        billingGroupProperties={"billingGroupDescription": "floor 2 sensors"},
        tags=[{"Key": "cost-center", "Value": "42"}, {"Key": "team", "Value": "ops"}])
    arn = f"arn:aws:iot:{REGION}:{ACCOUNT}:billinggroup/{name}"
    assert created["billingGroupArn"] == arn
    assert created["billingGroupName"] == name
    described = iot.describe_billing_group(billingGroupName=name)
    assert described["billingGroupId"] == created["billingGroupId"]
    assert described["billingGroupArn"] == arn
    assert described["version"] == 1
    assert described["billingGroupProperties"] == {
        "billingGroupDescription": "floor 2 sensors"}
    assert isinstance(described["billingGroupMetadata"]["creationDate"], datetime)
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == [
        {"Key": "cost-center", "Value": "42"}, {"Key": "team", "Value": "ops"}]

    # Creating the same group again answers the same group; another description is a
    # conflict.
    again = iot.create_billing_group(
        billingGroupName=name,
        billingGroupProperties={"billingGroupDescription": "floor 2 sensors"})
    assert again["billingGroupId"] == created["billingGroupId"]
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException):
        iot.create_billing_group(billingGroupName=name,
                                 billingGroupProperties={"billingGroupDescription": "other"})

    assert iot.update_billing_group(
        billingGroupName=name, billingGroupProperties={"billingGroupDescription": "floor 3"},
        expectedVersion=1)["version"] == 2
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.update_billing_group(billingGroupName=name, billingGroupProperties={},
                                 expectedVersion=1)
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.delete_billing_group(billingGroupName=name, expectedVersion=7)
    described = iot.describe_billing_group(billingGroupName=name)
    assert (described["version"], described["billingGroupProperties"]) == (
        2, {"billingGroupDescription": "floor 3"})
    assert iot.update_billing_group(billingGroupName=name, billingGroupProperties={}
                                    )["version"] == 3
    assert iot.describe_billing_group(billingGroupName=name)["billingGroupProperties"] == {}

    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_billing_group(billingGroupName=unique("missing"))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.update_billing_group(billingGroupName=unique("missing"),
                                 billingGroupProperties={})


def test_things_are_in_at_most_one_group_and_move(iot: Any, unique: Unique) -> None:
    first, second = unique("billing"), unique("billing")
    iot.create_billing_group(billingGroupName=first)
    second_arn = iot.create_billing_group(billingGroupName=second)["billingGroupArn"]
    pump, valve = unique("pump"), unique("valve")
    pump_arn = iot.create_thing(thingName=pump)["thingArn"]
    iot.create_thing(thingName=valve, billingGroupName=first)
    assert iot.describe_thing(thingName=valve)["billingGroupName"] == first
    assert "billingGroupName" not in iot.describe_thing(thingName=pump)

    iot.add_thing_to_billing_group(billingGroupName=first, thingName=pump)
    iot.add_thing_to_billing_group(billingGroupName=first, thingName=pump)  # again: no-op
    assert _things(iot, first) == sorted([pump, valve])
    # By ARN, into the second group: the thing moves.
    iot.add_thing_to_billing_group(billingGroupArn=second_arn, thingArn=pump_arn)
    assert _things(iot, first) == [valve]
    assert _things(iot, second) == [pump]
    assert iot.describe_thing(thingName=pump)["billingGroupName"] == second

    # Removing from a group the thing is not in changes nothing.
    iot.remove_thing_from_billing_group(billingGroupName=first, thingName=pump)
    assert _things(iot, second) == [pump]
    iot.remove_thing_from_billing_group(billingGroupArn=second_arn, thingName=pump)
    assert _things(iot, second) == []
    assert "billingGroupName" not in iot.describe_thing(thingName=pump)

    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.add_thing_to_billing_group(billingGroupName=first, thingName=unique("ghost"))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.add_thing_to_billing_group(billingGroupName=unique("ghost"), thingName=pump)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.create_thing(thingName=unique("orphan"), billingGroupName=unique("ghost"))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        _things(iot, unique("ghost"))
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.add_thing_to_billing_group(thingName=pump)  # no group named
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.add_thing_to_billing_group(billingGroupArn=pump_arn, thingName=pump)

    # Deleting a thing takes it out of its group.
    iot.delete_thing(thingName=valve)
    assert _things(iot, first) == []


def test_paging_with_small_pages(iot: Any, unique: Unique) -> None:
    prefix = unique("page")
    groups = [f"{prefix}-{i}" for i in range(5)]
    for name in groups:
        iot.create_billing_group(billingGroupName=name)
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"namePrefixFilter": prefix, "maxResults": 2}
        if token:
            kwargs["nextToken"] = token
        answer = iot.list_billing_groups(**kwargs)
        assert len(answer["billingGroups"]) <= 2
        seen.extend(item["groupName"] for item in answer["billingGroups"])
        assert all(item["groupArn"].endswith(f":billinggroup/{item['groupName']}")
                   for item in answer["billingGroups"])
        pages += 1
        token = answer.get("nextToken")
        if not token:
            break
    assert seen == groups
    assert pages == 3
    paginated = [item["groupName"] for p in iot.get_paginator("list_billing_groups").paginate(
        namePrefixFilter=prefix, PaginationConfig={"PageSize": 2}) for item in p["billingGroups"]]
    assert paginated == groups

    members = sorted(unique("member") for _ in range(5))
    for thing in members:
        iot.create_thing(thingName=thing, billingGroupName=groups[0])
    first = iot.list_things_in_billing_group(billingGroupName=groups[0], maxResults=3)
    assert first["things"] == members[:3]
    rest = iot.list_things_in_billing_group(billingGroupName=groups[0], maxResults=3,
                                            nextToken=first["nextToken"])
    assert rest["things"] == members[3:] and "nextToken" not in rest
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.list_things_in_billing_group(billingGroupName=groups[0], nextToken="bogus")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        # A token of another listing is refused too.
        iot.list_things_in_billing_group(billingGroupName=groups[0],
                                         nextToken=iot.list_billing_groups(
                                             namePrefixFilter=prefix,
                                             maxResults=1)["nextToken"])


def test_delete_releases_things_and_tags(iot: Any, unique: Unique) -> None:
    name, thing = unique("billing"), unique("thing")
    arn = iot.create_billing_group(billingGroupName=name,
                                   tags=[{"Key": "k", "Value": "v"}])["billingGroupArn"]
    iot.create_thing(thingName=thing, billingGroupName=name)
    iot.delete_billing_group(billingGroupName=name, expectedVersion=1)
    # The thing stays, in no billing group; the group and its tags are gone.
    assert "billingGroupName" not in iot.describe_thing(thingName=thing)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_billing_group(billingGroupName=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.list_tags_for_resource(resourceArn=arn)
    # A group of the same name starts without the old one's tags and things.
    iot.create_billing_group(billingGroupName=name)
    assert iot.list_tags_for_resource(resourceArn=arn)["tags"] == []
    assert _things(iot, name) == []
    iot.delete_billing_group(billingGroupName=name)
    # Deleting a group that does not exist succeeds (the model has no not-found error).
    iot.delete_billing_group(billingGroupName=name)


@pytest.mark.parametrize("name", ["../etc/passwd", "bad name", "grüße", "a;DROP TABLE x", "",
                                  "x" * 129])
def test_names_outside_awss_pattern_are_refused(iot: Any, name: str) -> None:
    try:
        iot.create_billing_group(billingGroupName=name)
    except ParamValidationError:
        # boto3 itself refuses what breaks the model's length rules before sending.
        assert len(name) < 1 or len(name) > 128
        return
    except ClientError as error:
        assert error.response["Error"]["Code"] == "InvalidRequestException"
        assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    else:
        raise AssertionError(f"{name!r} was accepted")
    # Nothing was created, and nothing that looks like the name lists.
    listed = iot.list_billing_groups()["billingGroups"]
    assert name not in [item["groupName"] for item in listed]


def test_the_auditor_may_read_but_not_change(api_bastion: Any, iot: Any,
                                             unique: Unique) -> None:
    name = unique("billing")
    iot.create_billing_group(billingGroupName=name)
    auditor = api_bastion.client(role="auditor")
    assert auditor.describe_billing_group(billingGroupName=name)["billingGroupName"] == name
    with pytest.raises(ClientError) as refused:
        auditor.delete_billing_group(billingGroupName=name)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert iot.describe_billing_group(billingGroupName=name)["version"] == 1
