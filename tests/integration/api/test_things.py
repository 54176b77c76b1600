"""Things, thing types and thing principals through boto3."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import ACCOUNT, REGION

Unique = Callable[[str], str]


def test_thing_lifecycle(iot: Any, unique: Unique) -> None:
    name = unique("thing")
    created = iot.create_thing(thingName=name, attributePayload={"attributes": {"a": "1"}})
    assert created["thingArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{name}"
    assert created["thingName"] == name and created["thingId"]
    # Creating the identical thing again answers the same thing.
    assert iot.create_thing(thingName=name, attributePayload={
        "attributes": {"a": "1"}})["thingId"] == created["thingId"]
    described = iot.describe_thing(thingName=name)
    assert described["attributes"] == {"a": "1"}
    assert described["version"] == 1 and described["defaultClientId"] == name
    iot.update_thing(thingName=name, attributePayload={"attributes": {"b": "2"}, "merge": True},
                     expectedVersion=1)
    assert iot.describe_thing(thingName=name)["attributes"] == {"a": "1", "b": "2"}
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.update_thing(thingName=name, attributePayload={"attributes": {}},
                         expectedVersion=1)
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.delete_thing(thingName=name, expectedVersion=7)
    iot.delete_thing(thingName=name)
    with pytest.raises(iot.exceptions.ResourceNotFoundException) as caught:
        iot.describe_thing(thingName=name)
    assert caught.value.response["Error"]["Message"] == f"Thing {name} cannot be found"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_thing_errors(iot: Any, unique: Unique) -> None:
    name = unique("thing")
    iot.create_thing(thingName=name)
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as caught:
        iot.create_thing(thingName=name, attributePayload={"attributes": {"x": "y"}})
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    with pytest.raises(iot.exceptions.InvalidRequestException) as caught:
        iot.create_thing(thingName="has space")
    assert "at 'thingName' failed to satisfy constraint" in str(caught.value)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.create_thing(thingName=unique("typed"), thingTypeName=unique("no-such-type"))
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.create_thing(thingName=unique("billed"), billingGroupName="none")
    with pytest.raises(iot.exceptions.InvalidRequestException):  # untyped: 3 attributes max
        iot.create_thing(thingName=unique("many"), attributePayload={
            "attributes": {f"k{i}": "v" for i in range(4)}})


def test_list_things_pages_with_stable_opaque_tokens(iot: Any, unique: Unique) -> None:
    thing_type = unique("pagetype")
    iot.create_thing_type(thingTypeName=thing_type)
    names = sorted(unique("paged") for _ in range(30))
    for name in names:
        iot.create_thing(thingName=name, thingTypeName=thing_type)
    seen: list[str] = []
    tokens: list[str] = []
    kwargs: dict[str, Any] = {"thingTypeName": thing_type, "maxResults": 7}
    while True:
        page = iot.list_things(**kwargs)
        assert len(page["things"]) <= 7
        seen.extend(thing["thingName"] for thing in page["things"])
        if "nextToken" not in page:
            break
        token = page["nextToken"]
        assert not any(name in token for name in names)  # opaque
        tokens.append(token)
        kwargs["nextToken"] = token
    assert seen == names
    assert len(tokens) == 4
    # A token answers the same page when asked again.
    again = iot.list_things(thingTypeName=thing_type, maxResults=7, nextToken=tokens[1])
    assert [t["thingName"] for t in again["things"]] == names[14:21]
    # botocore's paginator drives the same tokens.
    paginator = iot.get_paginator("list_things")
    pages = list(paginator.paginate(thingTypeName=thing_type,
                                    PaginationConfig={"PageSize": 7}))
    assert [t["thingName"] for p in pages for t in p["things"]] == names
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.list_things(nextToken="not-a-token")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.list_things(maxResults=251)


def test_list_things_by_attribute(iot: Any, unique: Unique) -> None:
    value = unique("v")
    first, second = unique("attr"), unique("attr")
    iot.create_thing(thingName=first, attributePayload={"attributes": {"site": value}})
    iot.create_thing(thingName=second, attributePayload={"attributes": {"site": value + "x"}})
    exact = iot.list_things(attributeName="site", attributeValue=value)["things"]
    assert [t["thingName"] for t in exact] == [first]
    prefix = iot.list_things(attributeName="site", attributeValue=value,
                             usePrefixAttributeValue=True)["things"]
    assert sorted(t["thingName"] for t in prefix) == sorted([first, second])


def test_thing_types(iot: Any, unique: Unique) -> None:
    name = unique("type")
    created = iot.create_thing_type(thingTypeName=name, thingTypeProperties={
        "thingTypeDescription": "sensors", "searchableAttributes": ["site"]})
    assert created["thingTypeArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:thingtype/{name}"
    described = iot.describe_thing_type(thingTypeName=name)
    assert described["thingTypeProperties"] == {"thingTypeDescription": "sensors",
                                                 "searchableAttributes": ["site"]}
    assert described["thingTypeMetadata"]["deprecated"] is False
    assert described["thingTypeMetadata"]["creationDate"].tzinfo is not None
    listed = iot.list_thing_types(thingTypeName=name)["thingTypes"]
    assert [t["thingTypeName"] for t in listed] == [name]
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.delete_thing_type(thingTypeName=name)  # not deprecated
    iot.deprecate_thing_type(thingTypeName=name)
    assert iot.describe_thing_type(thingTypeName=name)["thingTypeMetadata"]["deprecated"]
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_thing(thingName=unique("t"), thingTypeName=name)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.delete_thing_type(thingTypeName=name)  # deprecated less than 5 minutes ago
    iot.deprecate_thing_type(thingTypeName=name, undoDeprecate=True)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing_type(thingTypeName=unique("missing"))
    tagged = iot.create_thing_type(thingTypeName=unique("tagged"),
                                   tags=[{"Key": "k", "Value": "v"}])
    assert iot.list_tags_for_resource(resourceArn=tagged["thingTypeArn"])["tags"] == [
        {"Key": "k", "Value": "v"}]


def test_thing_principals(iot: Any, unique: Unique) -> None:
    thing = unique("owner")
    iot.create_thing(thingName=thing)
    cert = iot.create_keys_and_certificate(setAsActive=False)
    arn = cert["certificateArn"]
    iot.attach_thing_principal(thingName=thing, principal=arn)
    iot.attach_thing_principal(thingName=thing, principal=arn)  # again: nothing happens
    assert iot.list_thing_principals(thingName=thing)["principals"] == [arn]
    assert iot.list_thing_principals_v2(thingName=thing)["thingPrincipalObjects"] == [
        {"principal": arn, "thingPrincipalType": "NON_EXCLUSIVE_THING"}]
    assert iot.list_principal_things(principal=arn)["things"] == [thing]
    assert iot.list_principal_things_v2(principal=arn)["principalThingObjects"] == [
        {"thingName": thing, "thingPrincipalType": "NON_EXCLUSIVE_THING"}]
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.delete_thing(thingName=thing)  # a principal is attached
    with pytest.raises(iot.exceptions.DeleteConflictException):
        iot.delete_certificate(certificateId=cert["certificateId"])  # attached to a thing
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.attach_thing_principal(thingName=thing, principal=arn,
                                   thingPrincipalType="EXCLUSIVE_THING")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_thing_principal(thingName=unique("ghost"), principal=arn)
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.attach_thing_principal(thingName=thing, principal="not-an-arn")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.attach_thing_principal(
            thingName=thing, principal=arn.replace(ACCOUNT, "210987654321"))
    iot.detach_thing_principal(thingName=thing, principal=arn)
    assert iot.list_thing_principals(thingName=thing)["principals"] == []
    iot.delete_thing(thingName=thing)
    iot.delete_certificate(certificateId=cert["certificateId"])
