"""The detect stream's messages: datapoints to JSON and back, and what is refused."""

from __future__ import annotations

import json

import pytest

from bastion.cluster._detect import SAMPLE_PART, decode_points, encode_points, sample_messages
from bastion.defender.detect import Datapoint, MetricValue

POINTS = [
    Datapoint("sensor-1", "aws:num-messages-sent", MetricValue(count=3), 1.5),
    Datapoint("sensor-1", "aws:source-ip-address", MetricValue(cidrs=("10.0.0.1",)), 1.5),
    Datapoint("client-9", "aws:num-authorization-failures", MetricValue(count=1), 1.5,
              "dim|NOT_IN", False),
    Datapoint("sensor-1", "aws:listening-tcp-ports", MetricValue(ports=(22, 443)), 2.0),
    Datapoint("sensor-1", "temperature", MetricValue(number=21.5), 2.0),
]


@pytest.mark.parametrize("kind", ["report", "sample", "sample-part"])
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


def test_a_big_sample_goes_in_parts_under_the_payload_limit() -> None:
    # 17,000 devices on one node (the 100,000-connection bench) made one sample of
    # several MiB, which NATS refused ("maximum payload exceeded").
    points = [Datapoint(f"device-{n:05}", "aws:num-messages-sent", MetricValue(count=n), 1.5)
              for n in range(17_000)]
    messages = sample_messages("node-5", 3, 2.0, points)
    assert len(messages) == -(-17_000 // SAMPLE_PART)
    assert all(len(m) < 512 * 1024 for m in messages)
    decoded = [decode_points(m) for m in messages]
    assert [kind for kind, *_ in decoded] == ["sample-part"] * (len(messages) - 1) + ["sample"]
    assert [p for *_, part in decoded for p in part] == points
    assert [kind for kind, *_ in map(decode_points, sample_messages("n", 1, 1.0, []))] \
        == ["sample"]  # a node with nothing to say still answers
