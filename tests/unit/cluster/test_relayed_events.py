"""Events relayed between cluster nodes survive the wire: topic rule changes included."""

from __future__ import annotations

import pytest

from bastion.cluster._events import decode_event, encode_event
from bastion.rules import TopicRuleChanged, TopicRuleDestinationChanged


@pytest.mark.parametrize("event", [TopicRuleChanged("hot_ovens"),
                                   TopicRuleDestinationChanged("0b6c-uuid")],
                         ids=["rule", "destination"])
def test_rule_events_round_trip(event: object) -> None:
    assert decode_event(encode_event(event)) == event
