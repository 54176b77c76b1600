"""The detect stream's messages: datapoints to JSON and back, and what is refused."""

from __future__ import annotations

import json

import pytest

from bastion.cluster._detect import decode_points, encode_points
from bastion.defender.detect import Datapoint, MetricValue

POINTS = [
    Datapoint("sensor-1", "aws:num-messages-sent", MetricValue(count=3), 1.5),
    Datapoint("sensor-1", "aws:source-ip-address", MetricValue(cidrs=("10.0.0.1",)), 1.5),
    Datapoint("client-9", "aws:num-authorization-failures", MetricValue(count=1), 1.5,
              "dim|NOT_IN", False),
    Datapoint("sensor-1", "aws:listening-tcp-ports", MetricValue(ports=(22, 443)), 2.0),
    Datapoint("sensor-1", "temperature", MetricValue(number=21.5), 2.0),
]


@pytest.mark.parametrize("kind", ["report", "sample"])
def test_round_trip(kind: str) -> None:
    data = encode_points(kind, "node-2", 7, 2.0, POINTS)
    assert decode_points(data) == (kind, "node-2", 7, 2.0, POINTS)


@pytest.mark.parametrize("document", [
    b"not json",
    json.dumps({"kind": "other", "node": "n", "tick": 1, "at": 1.0, "points": []}).encode(),
    json.dumps({"kind": "sample", "node": "n", "tick": "1", "at": 1.0, "points": []}).encode(),
    json.dumps({"kind": "sample", "node": "n", "tick": 1, "at": 1.0,
                "points": [["t", "m", {"count": 1}, 1.0, None]]}).encode(),
    json.dumps({"kind": "sample", "node": "n", "tick": 1, "at": 1.0,
                "points": [["t", "m", {"bogus": 1}, 1.0, None, True]]}).encode(),
    json.dumps({"kind": "sample", "node": "n", "tick": 1, "at": 1.0,
                "points": [[1, "m", {"count": 1}, 1.0, None, True]]}).encode(),
], ids=["not-json", "kind", "tick-type", "short-point", "bad-value", "thing-type"])
def test_malformed_messages_are_refused(document: bytes) -> None:
    with pytest.raises(ValueError):
        decode_points(document)
