"""FleetIndex fed by a real bus, registry, shadow service and store (SQLite and
PostgreSQL), without a server: the feed's ordering rules, a rebuild that keeps what
happened while it read, and dynamic-group membership written through the registry."""

from __future__ import annotations

import json

import pytest

from bastion.events import InProcessBus
from bastion.index import (
    FleetIndex,
    IndexNotFoundError,
    IndexNotReadyError,
    InvalidIndexRequestError,
    parse_query,
)
from bastion.registry import RegistryService
from bastion.shadow import ShadowService, ShadowUpdated
from bastion.store import Store

ON = {"thingIndexingMode": "REGISTRY_AND_SHADOW", "thingConnectivityIndexingMode": "STATUS"}


class Fleet:
    def __init__(self, store: Store) -> None:
        self.bus = InProcessBus()  # no loop: delivered in the publishing thread
        self.registry = RegistryService(store, publish=self.bus.publish)
        self.shadows = ShadowService(store, publish=self.bus.publish)
        self.index = FleetIndex(store, membership_writer=self.registry.set_dynamic_members)
        self.index.subscribe(self.bus, lambda: None)

    def names(self, query: str) -> list[str]:
        return [t["thingName"] for t in self.index.search(query).things]


@pytest.fixture
def fleet(store: Store) -> Fleet:
    made = Fleet(store)
    made.index.update_configuration(things=ON)
    assert not made.index.ready  # BUILDING until the keeper (here: the test) builds it
    made.index.rebuild()
    return made


def test_off_by_default_and_not_ready_while_building(store: Store) -> None:
    index = FleetIndex(store)
    with pytest.raises(IndexNotFoundError):
        index.search("thingName:*")
    index.update_configuration(things=ON)
    with pytest.raises(IndexNotReadyError):
        index.search("thingName:*")
    assert index.describe_index("AWS_Things").index_status == "BUILDING"
    index.rebuild()
    assert index.search("thingName:*").things == []
    assert FleetIndex(store).configuration == index.configuration  # persisted


def test_an_older_shadow_event_does_not_undo_a_newer_one(fleet: Fleet) -> None:
    fleet.registry.create_thing("t")
    first = fleet.shadows.update("t", None, b'{"state":{"reported":{"v":1}}}')
    fleet.shadows.update("t", None, b'{"state":{"reported":{"v":2}}}')
    assert fleet.names("shadow.reported.v:2") == ["t"]
    fleet.bus.publish(first)  # a late copy of the first change
    assert fleet.names("shadow.reported.v:2") == ["t"]
    assert fleet.names("shadow.reported.v:1") == []


def test_an_older_connection_event_does_not_undo_a_newer_one(fleet: Fleet) -> None:
    fleet.registry.create_thing("d")
    fleet.index.connection_changed("d", False, 200.0, "CONNECTION_LOST")
    fleet.index.connection_changed("d", True, 100.0)
    assert fleet.names("connectivity.connected:false") == ["d"]
    assert fleet.names("connectivity.disconnectReason:CONNECTION_LOST") == ["d"]
    fleet.index.connection_changed("ghost", True, 300.0)  # no such thing: ignored
    assert fleet.names("connectivity.connected:true") == []


def test_a_thing_created_again_brings_its_shadow_back(fleet: Fleet) -> None:
    fleet.registry.create_thing("again")
    fleet.shadows.update("again", None, b'{"state":{"reported":{"x":7}}}')
    fleet.registry.delete_thing("again")  # shadows outlive their thing, as in AWS
    assert fleet.names("shadow.reported.x:7") == []
    fleet.registry.create_thing("again")
    assert fleet.names("shadow.reported.x:7") == ["again"]


def test_changes_made_while_building_are_kept(store: Store) -> None:
    fleet = Fleet(store)
    fleet.registry.create_thing("before")
    fleet.index.update_configuration(things=ON)
    fleet.registry.create_thing("during")  # noted while the index is not ready
    payload = b'{"state":{"reported":{"n":1}}}'
    fleet.shadows.update("before", None, payload)
    fleet.index.rebuild()
    assert fleet.names("thingName:*") == ["before", "during"]
    assert fleet.names("shadow.reported.n:1") == ["before"]


def test_dynamic_membership_is_written_and_follows(fleet: Fleet) -> None:
    for name, tier in (("a", "gold"), ("b", "silver")):
        fleet.registry.create_thing(name, attributes={"tier": tier})
    fleet.registry.create_dynamic_thing_group("gold", query_string="attributes.tier:gold",
                                              index_name="AWS_Things",
                                              query_version="2017-09-30")
    fleet.index.set_dynamic_group("gold", parse_query("attributes.tier:gold"))
    assert fleet.registry.list_things_in_thing_group("gold") == (["a"], None)
    fleet.registry.update_thing("b", attributes={"tier": "gold"})
    fleet.index.flush()
    assert fleet.registry.list_things_in_thing_group("gold") == (["a", "b"], None)
    assert fleet.names("thingGroupNames:gold") == ["a", "b"]
    fleet.registry.update_thing("a", attributes={"tier": "none"})
    fleet.index.flush()
    assert fleet.registry.list_things_in_thing_group("gold") == (["b"], None)
    with pytest.raises(InvalidIndexRequestError):
        fleet.index.update_configuration(things={"thingIndexingMode": "OFF"})


def test_a_query_cannot_chase_its_own_membership(fleet: Fleet) -> None:
    fleet.registry.create_thing("loop")
    query = "NOT thingGroupNames:self"
    fleet.registry.create_dynamic_thing_group("self", query_string=query,
                                              index_name="AWS_Things",
                                              query_version="2017-09-30")
    fleet.index.set_dynamic_group("self", parse_query(query))
    for _ in range(3):  # stable: matched against static groups only
        fleet.index.flush()
        assert fleet.registry.list_things_in_thing_group("self") == (["loop"], None)


def test_unreadable_shadow_documents_fall_back_to_the_store(store: Store,
                                                           fleet: Fleet) -> None:
    fleet.registry.create_thing("odd")
    fleet.shadows.update("odd", None, b'{"state":{"reported":{"k":"v"}}}')
    assert fleet.names("shadow.reported.k:v") == ["odd"]
    ShadowService(store).update("odd", None, b'{"state":{"reported":{"k":"w"}}}')  # untold
    assert fleet.names("shadow.reported.k:w") == []
    fleet.bus.publish(ShadowUpdated("odd", None, 99, b"{}", None, b"not json"))
    assert fleet.names("shadow.reported.k:w") == ["odd"]  # read back from the store
    assert json.loads(fleet.index.search("thingName:odd").things[0]["shadow"])["version"] == 2
