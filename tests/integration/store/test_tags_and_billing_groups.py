"""Tags and billing groups in the store, on both backends: membership is one group per
thing, tags leave with their resource, hostile text stays data, and migration 0014
carries the provisioning templates' old tags over."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from bastion.store import (
    TAGGABLE,
    BillingGroupRow,
    ConflictError,
    InvalidPageTokenError,
    Store,
    ThingGroupRow,
    ThingRow,
    metadata,
)

NOW = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
BACKENDS = ["sqlite", "postgresql"]


def _billing(name: str) -> BillingGroupRow:
    return BillingGroupRow(name=name, billing_group_id=str(uuid.uuid4()), description=None,
                           version=1, creation_date=NOW, last_modified_date=NOW)


def _thing(name: str) -> ThingRow:
    return ThingRow(name=name, thing_id=str(uuid.uuid4()), thing_type_name=None,
                    attributes={}, version=1, creation_date=NOW, last_modified_date=NOW)


def test_every_taggable_key_is_its_tables_primary_key() -> None:
    for kind, column in TAGGABLE.items():
        assert [c.name for c in column.table.primary_key.columns] == [column.name], kind
        assert column.table is metadata.tables[column.table.name]


def test_a_thing_is_in_one_billing_group_at_most(store: Store) -> None:
    with store.transaction() as uow:
        uow.billing_groups.insert(_billing("east"))
        uow.billing_groups.insert(_billing("west"))
        uow.things.insert(_thing("pump"), searchable=frozenset())
        assert uow.billing_groups.put_member("east", "pump", NOW) is None
        assert uow.billing_groups.put_member("east", "pump", NOW) == "east"
        assert uow.billing_groups.put_member("west", "pump", NOW) == "east"
        assert uow.billing_groups.group_of("pump") == "west"
        assert uow.billing_groups.members_page("east", limit=10, token=None) == ([], None)
        assert not uow.billing_groups.remove_member("east", "pump")
        assert uow.billing_groups.remove_member("west", "pump")
        assert uow.billing_groups.group_of("pump") is None
        with pytest.raises(ConflictError):
            uow.billing_groups.insert(_billing("east"))


def test_membership_needs_both_ends_and_goes_with_either(store: Store) -> None:
    with store.transaction() as uow:
        uow.billing_groups.insert(_billing("g"))
        uow.things.insert(_thing("a"), searchable=frozenset())
        uow.things.insert(_thing("b"), searchable=frozenset())
        uow.billing_groups.put_member("g", "a", NOW)
        uow.billing_groups.put_member("g", "b", NOW)
    with pytest.raises(ConflictError), store.transaction() as uow:
        uow.billing_groups.put_member("g", "ghost", NOW)
    with pytest.raises(ConflictError), store.transaction() as uow:
        uow.billing_groups.put_member("ghost", "a", NOW)
    with store.transaction() as uow:
        uow.things.delete("a")
        assert uow.billing_groups.members_page("g", limit=10, token=None) == (["b"], None)
        uow.tags.put("billinggroup", "g", {"k": "v"})
        assert uow.billing_groups.delete("g")
        assert uow.billing_groups.group_of("b") is None
        assert uow.tags.tags_of("billinggroup", "g") == {}
        assert not uow.billing_groups.delete("g")


def test_billing_groups_page_by_name_with_a_prefix(store: Store) -> None:
    names = ["p_a", "p-b", "p%c", "pq", "x"]
    with store.transaction() as uow:
        for name in names:
            uow.billing_groups.insert(_billing(name))
        first, token = uow.billing_groups.list_page(name_prefix="p", limit=2, token=None)
        rest, end = uow.billing_groups.list_page(name_prefix="p", limit=2, token=token)
        assert [r.name for r in first + rest] == ["p%c", "p-b", "p_a", "pq"]
        assert end is None
        # LIKE wildcards in the prefix are plain characters.
        assert [r.name for r in uow.billing_groups.list_page(
            name_prefix="p_", limit=10, token=None)[0]] == ["p_a"]
        with pytest.raises(InvalidPageTokenError):
            uow.billing_groups.members_page("p_a", limit=1, token=token)


def test_tags_put_replace_remove_and_page(store: Store) -> None:
    with store.transaction() as uow:
        uow.billing_groups.insert(_billing("g"))
        uow.tags.put("billinggroup", "g", {"b": "1", "a": "2", "c": ""})
        uow.tags.put("billinggroup", "g", {"a": "changed"})
        assert uow.tags.tags_of("billinggroup", "g") == {"a": "changed", "b": "1", "c": ""}
        page, token = uow.tags.page("billinggroup", "g", limit=2, token=None)
        assert page == [("a", "changed"), ("b", "1")]
        assert uow.tags.page("billinggroup", "g", limit=2, token=token) == ([("c", "")], None)
        assert uow.tags.remove("billinggroup", "g", ["a", "zzz"]) == 1
        assert uow.tags.resource_exists("billinggroup", "g")
        assert not uow.tags.resource_exists("billinggroup", "h")
        # Same id, other kind: separate tags.
        assert uow.tags.tags_of("thinggroup", "g") == {}


@pytest.mark.parametrize("hostile", ["'; DROP TABLE resource_tags; --", "../../etc/passwd",
                                     "ключ 東京 %_\\", "a'b\"c"])
def test_hostile_text_is_only_data(store: Store, hostile: str) -> None:
    with store.transaction() as uow:
        uow.thing_groups.insert(ThingGroupRow(
            name="g", thing_group_id=str(uuid.uuid4()), parent_name=None, description=None,
            attributes={}, version=1, creation_date=NOW, last_modified_date=NOW))
        uow.tags.put("thinggroup", "g", {hostile: hostile})
        assert uow.tags.tags_of("thinggroup", "g") == {hostile: hostile}
        assert not uow.tags.resource_exists("thinggroup", hostile)
        assert uow.billing_groups.list_page(name_prefix=hostile, limit=5, token=None) == (
            [], None)
    with store.transaction(readonly=True) as uow:
        assert uow.tags.tags_of("thinggroup", "g") == {hostile: hostile}


def test_deleting_a_taggable_resource_deletes_its_tags(store: Store) -> None:
    with store.transaction() as uow:
        uow.thing_groups.insert(ThingGroupRow(
            name="g", thing_group_id=str(uuid.uuid4()), parent_name=None, description=None,
            attributes={}, version=1, creation_date=NOW, last_modified_date=NOW))
        uow.tags.put("thinggroup", "g", {"k": "v"})
        uow.tags.put("thinggroup", "other", {"k": "v"})
        uow.thing_groups.delete("g")
        assert uow.tags.tags_of("thinggroup", "g") == {}
        assert uow.tags.tags_of("thinggroup", "other") == {"k": "v"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_0014_copies_the_templates_tags(fresh_database_url: Callable[[str], str],
                                                   backend: str) -> None:
    url = fresh_database_url(backend)
    with Store.open(url, migrate=False) as store:
        store.migrate("0013")
        with store.engine.begin() as conn:
            templates = sa.table(
                "provisioning_templates", sa.column("tags", sa.JSON()),
                sa.column("creation_date", sa.DateTime(timezone=True)),
                sa.column("last_modified_date", sa.DateTime(timezone=True)),
                *(sa.column(name) for name in (
                    "name", "template_id", "template_type", "description", "enabled",
                    "provisioning_role_arn", "pre_provisioning_hook", "default_version_id",
                    "last_version_id")))
            for name, tags in (("tagged", [{"Key": "site", "Value": "7"},
                                           {"Key": "empty"}]), ("bare", [])):
                conn.execute(templates.insert().values(
                    name=name, template_id=str(uuid.uuid4()),
                    template_type="FLEET_PROVISIONING", description=None, enabled=True,
                    provisioning_role_arn="arn:aws:iam::123456789012:role/r",
                    pre_provisioning_hook=None,
                    tags=tags,
                    default_version_id=1, last_version_id=1, creation_date=NOW,
                    last_modified_date=NOW))
        store.migrate()
        with store.transaction() as uow:
            assert uow.tags.tags_of("provisioningtemplate", "tagged") == {
                "empty": "", "site": "7"}
            assert uow.tags.tags_of("provisioningtemplate", "bare") == {}
            assert uow.tags.resource_exists("provisioningtemplate", "tagged")
