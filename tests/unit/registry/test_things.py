"""Things and thing types: AWS name rules, attributes, versions, deprecation, listing."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from bastion.registry import (
    InvalidRequestError,
    RegistryError,
    RegistryService,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    ThingDeleted,
    ThingUpdated,
    VersionConflictError,
)
from support.clock import ManualClock

from .conftest import EventLog


@pytest.mark.parametrize(
    "name",
    ["a", "dev-1", "dev_1", "arn:like:name", "A" * 128, "0123456789"],
    ids=["one-char", "dash", "underscore", "colons", "128-chars", "digits"],
)
def test_valid_thing_names(registry: RegistryService, name: str) -> None:
    thing = registry.create_thing(name)
    assert thing.thing_name == name
    assert thing.thing_arn == f"arn:aws:iot:eu-west-1:111122223333:thing/{name}"
    assert thing.version == 1
    assert registry.describe_thing(name) == thing


@pytest.mark.parametrize(
    "name",
    ["", "A" * 129, "has space", "slash/no", "dot.no", "ünïcode", "star*"],
    ids=["empty", "129-chars", "space", "slash", "dot", "unicode", "star"],
)
def test_invalid_thing_names_are_invalid_requests(registry: RegistryService, name: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        registry.create_thing(name)
    assert caught.value.aws_error_type == "InvalidRequestException"
    assert caught.value.http_status == 400


def test_name_of_wrong_type_is_a_type_error(registry: RegistryService) -> None:
    with pytest.raises(TypeError):
        registry.create_thing(b"dev")  # type: ignore[arg-type]


def test_describe_unknown_thing(registry: RegistryService) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        registry.describe_thing("ghost")
    assert caught.value.aws_error_type == "ResourceNotFoundException"
    assert caught.value.http_status == 404


def test_create_thing_is_idempotent_for_the_same_configuration(registry: RegistryService) -> None:
    first = registry.create_thing("dev", attributes={"a": "1"})
    assert registry.create_thing("dev", attributes={"a": "1"}) == first
    with pytest.raises(ResourceAlreadyExistsError) as caught:
        registry.create_thing("dev", attributes={"a": "2"})
    assert caught.value.http_status == 409
    assert caught.value.resource_id == "dev"
    assert caught.value.resource_arn == first.thing_arn


def test_attribute_limit_without_type_is_three(registry: RegistryService) -> None:
    registry.create_thing("three", attributes={"a": "1", "b": "2", "c": "3"})
    with pytest.raises(InvalidRequestError, match="at most 3"):
        registry.create_thing("four", attributes={"a": "1", "b": "2", "c": "3", "d": "4"})
    with pytest.raises(InvalidRequestError):
        registry.update_thing("three", attributes={"d": "4"}, merge=True)


def test_attribute_limit_with_type_is_fifty(registry: RegistryService) -> None:
    registry.create_thing_type("sensor")
    fifty = {f"attr{i}": str(i) for i in range(50)}
    thing = registry.create_thing("typed", thing_type_name="sensor", attributes=fifty)
    assert len(thing.attributes) == 50
    with pytest.raises(InvalidRequestError, match="at most 50"):
        registry.update_thing("typed", attributes={"one-more": "x"}, merge=True)
    # Removing the type would leave 50 attributes on an untyped thing.
    with pytest.raises(InvalidRequestError, match="at most 3"):
        registry.update_thing("typed", remove_thing_type=True)


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"bad name": "v"}, InvalidRequestError),
        ({"k": "bad value!"}, InvalidRequestError),
        ({"k": "x" * 801}, InvalidRequestError),
        ({"k" * 129: "v"}, InvalidRequestError),
    ],
    ids=["space-in-name", "bang-in-value", "value-too-long", "name-too-long"],
)
def test_attribute_patterns(registry: RegistryService, attributes: dict[str, str],
                            expected: type[RegistryError]) -> None:
    with pytest.raises(expected):
        registry.create_thing("dev", attributes=attributes)


def test_update_thing_versions_and_expected_version(registry: RegistryService,
                                                     events: EventLog) -> None:
    registry.create_thing("dev", attributes={"a": "1", "b": "2"})
    updated = registry.update_thing("dev", attributes={"c": "3"}, merge=True, expected_version=1)
    assert updated.version == 2
    assert updated.attributes == {"a": "1", "b": "2", "c": "3"}
    assert events.of_type(ThingUpdated) == [ThingUpdated("dev", 2)]

    with pytest.raises(VersionConflictError) as caught:
        registry.update_thing("dev", attributes={}, expected_version=1)
    assert caught.value.aws_error_type == "VersionConflictException"
    assert caught.value.http_status == 409
    assert registry.describe_thing("dev").version == 2

    # Without merge the attributes are replaced; an empty value removes (merge mode).
    replaced = registry.update_thing("dev", attributes={"z": "9"})
    assert replaced.attributes == {"z": "9"}
    removed = registry.update_thing("dev", attributes={"z": ""}, merge=True)
    assert removed.attributes == {}
    assert removed.version == 4


def test_update_unknown_thing(registry: RegistryService) -> None:
    with pytest.raises(ResourceNotFoundError):
        registry.update_thing("ghost", attributes={"a": "1"})


def test_delete_thing_with_expected_version(registry: RegistryService, events: EventLog) -> None:
    registry.create_thing("dev")
    with pytest.raises(VersionConflictError):
        registry.delete_thing("dev", expected_version=7)
    registry.delete_thing("dev", expected_version=1)
    assert events.of_type(ThingDeleted) == [ThingDeleted("dev")]
    with pytest.raises(ResourceNotFoundError):
        registry.describe_thing("dev")
    registry.delete_thing("dev")  # deleting what is not there succeeds, like AWS


# -- thing types ------------------------------------------------------------------------


def test_thing_type_lifecycle(registry: RegistryService, clock: ManualClock) -> None:
    created = registry.create_thing_type("lamp", description="A lamp",
                                         searchable_attributes=["room", "floor"])
    assert created.thing_type_arn == "arn:aws:iot:eu-west-1:111122223333:thingtype/lamp"
    assert created.searchable_attributes == ("room", "floor")
    assert not created.deprecated
    assert registry.describe_thing_type("lamp") == created
    with pytest.raises(ResourceAlreadyExistsError):
        registry.create_thing_type("lamp", description="Another lamp")

    registry.deprecate_thing_type("lamp")
    deprecated = registry.describe_thing_type("lamp")
    assert deprecated.deprecated
    assert deprecated.deprecation_date == clock.now().astimezone(UTC)

    registry.deprecate_thing_type("lamp", undo_deprecate=True)
    assert not registry.describe_thing_type("lamp").deprecated


def test_no_new_things_of_a_deprecated_type(registry: RegistryService) -> None:
    registry.create_thing_type("old")
    registry.create_thing("existing", thing_type_name="old")
    registry.deprecate_thing_type("old")
    with pytest.raises(InvalidRequestError, match="deprecated"):
        registry.create_thing("new", thing_type_name="old")
    registry.create_thing("untyped")
    with pytest.raises(InvalidRequestError, match="deprecated"):
        registry.update_thing("untyped", thing_type_name="old")
    # Things that already have the type can still be updated.
    assert registry.update_thing("existing", attributes={"k": "v"}).version == 2


def test_create_thing_of_unknown_type(registry: RegistryService) -> None:
    with pytest.raises(ResourceNotFoundError):
        registry.create_thing("dev", thing_type_name="nope")


def test_delete_thing_type_rules(registry: RegistryService, clock: ManualClock) -> None:
    registry.create_thing_type("gone")
    with pytest.raises(InvalidRequestError, match="must be deprecated"):
        registry.delete_thing_type("gone")
    registry.create_thing("user", thing_type_name="gone")
    registry.deprecate_thing_type("gone")
    clock.advance(timedelta(minutes=4, seconds=59))
    with pytest.raises(InvalidRequestError, match="5 minutes"):
        registry.delete_thing_type("gone")
    clock.advance(timedelta(seconds=1))
    with pytest.raises(InvalidRequestError, match="things are associated"):
        registry.delete_thing_type("gone")
    registry.update_thing("user", remove_thing_type=True)
    registry.delete_thing_type("gone")
    with pytest.raises(ResourceNotFoundError):
        registry.describe_thing_type("gone")
    with pytest.raises(ResourceNotFoundError):
        registry.delete_thing_type("gone")


@pytest.mark.parametrize(
    "searchable",
    [["a", "b", "c", "d"], ["a", "a"], ["bad name"]],
    ids=["four", "duplicate", "bad-name"],
)
def test_searchable_attribute_rules(registry: RegistryService, searchable: list[str]) -> None:
    with pytest.raises(InvalidRequestError):
        registry.create_thing_type("t", searchable_attributes=searchable)


def test_list_things_filters_on_searchable_attributes(registry: RegistryService) -> None:
    registry.create_thing_type("lamp", searchable_attributes=["room"])
    registry.create_thing("lamp-1", thing_type_name="lamp",
                          attributes={"room": "kitchen", "serial": "s1"})
    registry.create_thing("plain", attributes={"room": "kitchen", "serial": "s1"})
    registry.create_thing("other", attributes={"room": "hall"})

    def names(**filters: object) -> list[str]:
        things, _ = registry.list_things(**filters)  # type: ignore[arg-type]
        return [thing.thing_name for thing in things]

    assert names() == ["lamp-1", "other", "plain"]
    assert names(attribute_name="room", attribute_value="kitchen") == ["lamp-1", "plain"]
    # "serial" is not searchable for the typed thing: only the untyped one matches.
    assert names(attribute_name="serial", attribute_value="s1") == ["plain"]
    assert names(thing_type_name="lamp") == ["lamp-1"]
    assert names(attribute_name="room", attribute_value="kit",
                 use_prefix_attribute_value=True) == ["lamp-1", "plain"]
    assert names(attribute_name="room", attribute_value="kit") == []


def test_prefix_filter_escapes_like_wildcards(registry: RegistryService) -> None:
    registry.create_thing("a", attributes={"v": "x_1"})
    registry.create_thing("b", attributes={"v": "xy1"})
    things, _ = registry.list_things(attribute_name="v", attribute_value="x_",
                                     use_prefix_attribute_value=True)
    assert [thing.thing_name for thing in things] == ["a"]


def test_list_things_paginates_with_stable_tokens(registry: RegistryService) -> None:
    for index in range(7):
        registry.create_thing(f"dev-{index:02d}")
    first, token = registry.list_things(max_results=3)
    assert [t.thing_name for t in first] == ["dev-00", "dev-01", "dev-02"]
    assert token is not None
    # A thing inserted before the cursor and one deleted after it do not disturb paging.
    registry.create_thing("dev-00a")
    registry.delete_thing("dev-04")
    second, token2 = registry.list_things(max_results=3, next_token=token)
    assert [t.thing_name for t in second] == ["dev-03", "dev-05", "dev-06"]
    assert token2 is None
    # The same token gives the same page again.
    again, _ = registry.list_things(max_results=3, next_token=token)
    assert again == second


def test_foreign_or_garbage_tokens_are_invalid_requests(registry: RegistryService) -> None:
    for index in range(3):
        registry.create_thing_type(f"type-{index}")
    _, types_token = registry.list_thing_types(max_results=1)
    assert types_token is not None
    with pytest.raises(InvalidRequestError, match="nextToken"):
        registry.list_things(next_token=types_token)
    with pytest.raises(InvalidRequestError, match="nextToken"):
        registry.list_things(next_token="not-a-token")
    with pytest.raises(InvalidRequestError):
        registry.list_things(max_results=0)
