"""Events relayed between cluster nodes survive the wire: topic rule changes and new things
(the fleet index of every node reads them in) included."""

from __future__ import annotations

import pytest

from bastion.cluster._events import decode_event, encode_event
from bastion.domains import ServedDomainsChanged
from bastion.index import ThingConnectivityChanged, ThingShadowChanged
from bastion.registry import ThingCreated
from bastion.rules import TopicRuleChanged, TopicRuleDestinationChanged


@pytest.mark.parametrize("event", [TopicRuleChanged("hot_ovens"),
                                   TopicRuleDestinationChanged("0b6c-uuid")],
                         ids=["rule", "destination"])
def test_rule_events_round_trip(event: object) -> None:
    assert decode_event(encode_event(event)) == event


@pytest.mark.parametrize("event", [
    ThingCreated("lamp-7"), ThingShadowChanged("node-a", "lamp-7", ""),
    ThingConnectivityChanged("node-a", "lamp-7", True, 1_700_000_000_000, ""),
    ThingConnectivityChanged("node-a", "lamp-7", False, 1_700_000_000_001, "CONNECTION_LOST"),
], ids=["created", "shadow", "connected", "disconnected"])
def test_what_the_fleet_index_follows_is_relayed(event: object) -> None:
    assert decode_event(encode_event(event)) == event


def test_served_domain_changes_are_relayed() -> None:
    """Every node's listeners serve the domains made through any node's API."""
    event = ServedDomainsChanged("created fleet-eu")
    assert decode_event(encode_event(event)) == event
