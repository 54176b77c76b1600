"""Static thing groups: hierarchy, membership rules, deletion, listing."""

from __future__ import annotations

import pytest

from bastion.registry import (
    GroupNameAndArn,
    InvalidRequestError,
    RegistryService,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    ThingDeleted,
    ThingGroupDeleted,
    ThingGroupMembershipChanged,
    VersionConflictError,
)

from .conftest import EventLog


def _build_tree(registry: RegistryService) -> None:
    """root ─┬─ eu ─── eu-west
             └─ us
    other (a second root)"""
    registry.create_thing_group("root")
    registry.create_thing_group("eu", parent_group_name="root")
    registry.create_thing_group("eu-west", parent_group_name="eu")
    registry.create_thing_group("us", parent_group_name="root")
    registry.create_thing_group("other")


def test_describe_group_shows_the_path_from_the_root(registry: RegistryService) -> None:
    _build_tree(registry)
    group = registry.describe_thing_group("eu-west")
    assert group.parent_group_name == "eu"
    assert group.thing_group_arn == "arn:aws:iot:eu-west-1:111122223333:thinggroup/eu-west"
    assert [g.group_name for g in group.root_to_parent_thing_groups] == ["root", "eu"]
    assert group.root_to_parent_thing_groups[0] == GroupNameAndArn(
        "root", "arn:aws:iot:eu-west-1:111122223333:thinggroup/root"
    )
    assert registry.describe_thing_group("root").root_to_parent_thing_groups == ()


def test_create_group_errors(registry: RegistryService) -> None:
    registry.create_thing_group("g", description="d", attributes={"a": "1"})
    assert registry.create_thing_group("g", description="d", attributes={"a": "1"}).version == 1
    with pytest.raises(ResourceAlreadyExistsError):
        registry.create_thing_group("g", description="changed")
    with pytest.raises(ResourceNotFoundError):
        registry.create_thing_group("child", parent_group_name="missing")
    with pytest.raises(InvalidRequestError):
        registry.create_thing_group("bad name")
    with pytest.raises(ResourceNotFoundError):
        registry.describe_thing_group("missing")


def test_hierarchy_depth_is_limited_to_seven(registry: RegistryService) -> None:
    registry.create_thing_group("level-1")
    for level in range(2, 8):
        registry.create_thing_group(f"level-{level}", parent_group_name=f"level-{level - 1}")
    with pytest.raises(InvalidRequestError, match="7 levels"):
        registry.create_thing_group("level-8", parent_group_name="level-7")


def test_update_group_versions(registry: RegistryService) -> None:
    registry.create_thing_group("g", description="first", attributes={"a": "1"})
    assert registry.update_thing_group("g", attributes={"b": "2"}, merge=True) == 2
    group = registry.describe_thing_group("g")
    assert group.attributes == {"a": "1", "b": "2"}
    assert group.description == "first"
    with pytest.raises(VersionConflictError):
        registry.update_thing_group("g", description="x", expected_version=1)
    assert registry.update_thing_group("g", description="", expected_version=2) == 3
    assert registry.describe_thing_group("g").description is None


def test_membership_and_listing(registry: RegistryService, events: EventLog) -> None:
    _build_tree(registry)
    for name in ("t1", "t2", "t3"):
        registry.create_thing(name)
    registry.add_thing_to_thing_group(thing_group_name="eu-west", thing_name="t1")
    registry.add_thing_to_thing_group(thing_group_name="us", thing_name="t2")
    registry.add_thing_to_thing_group(thing_group_name="root", thing_name="t3")
    registry.add_thing_to_thing_group(thing_group_name="other", thing_name="t1")
    registry.add_thing_to_thing_group(thing_group_name="other", thing_name="t1")  # no-op
    assert events.of_type(ThingGroupMembershipChanged) == [
        ThingGroupMembershipChanged("t1", "eu-west", True),
        ThingGroupMembershipChanged("t2", "us", True),
        ThingGroupMembershipChanged("t3", "root", True),
        ThingGroupMembershipChanged("t1", "other", True),
    ]

    assert registry.list_things_in_thing_group("root") == (["t3"], None)
    assert registry.list_things_in_thing_group("root", recursive=True) == (["t1", "t2", "t3"], None)
    assert registry.list_things_in_thing_group("eu", recursive=True) == (["t1"], None)
    groups, _ = registry.list_thing_groups_for_thing("t1")
    assert [g.group_name for g in groups] == ["eu-west", "other"]

    def group_names(**filters: object) -> list[str]:
        page, _ = registry.list_thing_groups(**filters)  # type: ignore[arg-type]
        return [g.group_name for g in page]

    assert group_names() == ["eu", "eu-west", "other", "root", "us"]
    assert group_names(recursive=False) == ["other", "root"]
    assert group_names(parent_group="root", recursive=False) == ["eu", "us"]
    assert group_names(parent_group="root") == ["eu", "eu-west", "us"]
    assert group_names(name_prefix_filter="eu") == ["eu", "eu-west"]
    with pytest.raises(ResourceNotFoundError):
        registry.list_thing_groups(parent_group="missing")

    registry.remove_thing_from_thing_group(thing_group_name="other", thing_name="t1")
    assert events.events[-1] == ThingGroupMembershipChanged("t1", "other", False)
    events.clear()
    registry.remove_thing_from_thing_group(thing_group_name="other", thing_name="t1")
    assert events.events == []


def test_a_thing_is_in_one_group_per_hierarchy(registry: RegistryService) -> None:
    _build_tree(registry)
    registry.create_thing("t")
    registry.add_thing_to_thing_group(thing_group_name="eu-west", thing_name="t")
    with pytest.raises(InvalidRequestError, match="same hierarchy"):
        registry.add_thing_to_thing_group(thing_group_name="us", thing_name="t")
    with pytest.raises(InvalidRequestError, match="same hierarchy"):
        registry.add_thing_to_thing_group(thing_group_name="root", thing_name="t")
    registry.add_thing_to_thing_group(thing_group_name="other", thing_name="t")


def test_a_thing_is_in_at_most_ten_groups(registry: RegistryService) -> None:
    registry.create_thing("t")
    for index in range(11):
        registry.create_thing_group(f"g{index:02d}")
    for index in range(10):
        registry.add_thing_to_thing_group(thing_group_name=f"g{index:02d}", thing_name="t")
    with pytest.raises(InvalidRequestError, match="10 thing groups"):
        registry.add_thing_to_thing_group(thing_group_name="g10", thing_name="t")


def test_membership_of_unknown_things_and_groups(registry: RegistryService) -> None:
    registry.create_thing("t")
    registry.create_thing_group("g")
    with pytest.raises(ResourceNotFoundError):
        registry.add_thing_to_thing_group(thing_group_name="nope", thing_name="t")
    with pytest.raises(ResourceNotFoundError):
        registry.add_thing_to_thing_group(thing_group_name="g", thing_name="nope")
    with pytest.raises(ResourceNotFoundError):
        registry.list_things_in_thing_group("nope")
    with pytest.raises(ResourceNotFoundError):
        registry.list_thing_groups_for_thing("nope")


def test_delete_group_rules(registry: RegistryService, events: EventLog) -> None:
    _build_tree(registry)
    registry.create_thing("t")
    registry.add_thing_to_thing_group(thing_group_name="eu-west", thing_name="t")
    with pytest.raises(InvalidRequestError, match="child groups"):
        registry.delete_thing_group("eu")
    with pytest.raises(VersionConflictError):
        registry.delete_thing_group("eu-west", expected_version=5)
    events.clear()
    registry.delete_thing_group("eu-west")
    assert events.events == [
        ThingGroupMembershipChanged("t", "eu-west", False),
        ThingGroupDeleted("eu-west", ("t",)),
    ]
    registry.delete_thing_group("eu")  # now childless
    registry.delete_thing_group("eu")  # gone: succeeds like AWS
    assert registry.list_thing_groups_for_thing("t") == ([], None)
    assert registry.describe_thing("t").thing_name == "t"


def test_deleting_a_thing_removes_its_memberships(registry: RegistryService,
                                                  events: EventLog) -> None:
    registry.create_thing_group("g")
    registry.create_thing("t")
    registry.add_thing_to_thing_group(thing_group_name="g", thing_name="t")
    events.clear()
    registry.delete_thing("t")
    assert events.events == [ThingGroupMembershipChanged("t", "g", False), ThingDeleted("t")]
    assert registry.list_things_in_thing_group("g") == ([], None)


def test_things_in_group_paginate(registry: RegistryService) -> None:
    registry.create_thing_group("g")
    registry.create_thing_group("g-child", parent_group_name="g")
    for index in range(5):
        registry.create_thing(f"t{index}")
        group = "g" if index % 2 else "g-child"
        registry.add_thing_to_thing_group(thing_group_name=group, thing_name=f"t{index}")
    seen: list[str] = []
    token: str | None = None
    pages = 0
    while True:
        page, token = registry.list_things_in_thing_group(
            "g", recursive=True, max_results=2, next_token=token
        )
        seen.extend(page)
        pages += 1
        if token is None:
            break
    assert seen == ["t0", "t1", "t2", "t3", "t4"]
    assert pages == 3
