"""Events relayed between cluster nodes survive the wire: topic rule changes and new things
(the fleet index of every node reads them in) included."""

from __future__ import annotations

import pytest

from bastion.cluster._events import decode_event, encode_event
from bastion.registry import ThingCreated
from bastion.rules import TopicRuleChanged, TopicRuleDestinationChanged


@pytest.mark.parametrize("event", [TopicRuleChanged("hot_ovens"),
                                   TopicRuleDestinationChanged("0b6c-uuid")],
                         ids=["rule", "destination"])
def test_rule_events_round_trip(event: object) -> None:
    assert decode_event(encode_event(event)) == event


def test_a_new_thing_is_relayed() -> None:
    assert decode_event(encode_event(ThingCreated("lamp-7"))) == ThingCreated("lamp-7")
