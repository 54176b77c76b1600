"""TOPIC_FILTER dimensions of ``aws:num-messages-sent``, ``aws:num-messages-received`` and
``aws:message-byte-size``, measured per topic filter for a real device — and only for
sessions a profile with such a dimension targets (the others carry no counters)."""

from __future__ import annotations

import uuid

from bastion.defender.detect import dimension_key
from support.clients import Client, wait_for

from .conftest import Detect


def _behavior(name: str, metric: str, dimension: str, operator: str,
              limit: int) -> dict[str, object]:
    return {"name": name, "metric": metric,
            "metricDimension": {"dimensionName": dimension, "operator": operator},
            "criteria": {"comparisonOperator": "less-than", "value": {"count": limit}}}


def test_messages_counted_per_topic_filter(detect: Detect) -> None:
    service = detect.service
    dimension = f"telemetry-{uuid.uuid4().hex[:6]}"
    service.create_dimension(dimension, "TOPIC_FILTER", ["telemetry/${iot:ClientId}/#"])
    device, bystander = detect.make_device(), detect.make_device()
    group = detect.group(device)
    detect.profile(
        group,
        _behavior("sent-in", "aws:num-messages-sent", dimension, "IN", 5),
        _behavior("sent-out", "aws:num-messages-sent", dimension, "NOT_IN", 100),
        _behavior("received-in", "aws:num-messages-received", dimension, "IN", 100),
        _behavior("size-in", "aws:message-byte-size", dimension, "IN", 1000))
    dev = Client(device, detect.running.port, client_id=device.name).connect()
    other = Client(bystander, detect.running.port, client_id=bystander.name).connect()
    try:
        broker = detect.app.broker
        assert broker.sessions[device.name].topic_tally is not None
        assert broker.sessions[bystander.name].topic_tally is None  # zero cost
        dev.subscribe(f"telemetry/{device.name}/echo", qos=1)
        for _ in range(7):
            dev.publish(f"telemetry/{device.name}/t", b"x" * 10, qos=1)
        for _ in range(3):
            dev.publish("status/other", b"y" * 40, qos=1)
        for _ in range(2):
            other.publish(f"telemetry/{device.name}/echo", b"z", qos=1)
        dev.expect(2)
        events = detect.tick()
        assert [(e.thing_name, e.behavior.name, e.event_type.value) for e in events] == [
            (device.name, "sent-in", "in-alarm")]
        now = detect.clock.time()

        def value(metric: str, operator: str) -> list[int | None]:
            return [v.count for _, v in service.list_metric_values(
                device.name, metric, now - 1, now + 1, dimension_key(dimension, operator))]
        assert value("aws:num-messages-sent", "IN") == [7]
        assert value("aws:num-messages-sent", "NOT_IN") == [3]
        assert value("aws:num-messages-received", "IN") == [2]
        assert value("aws:message-byte-size", "IN") == [10]
        assert service.list_metric_values(bystander.name, "aws:num-messages-sent",
                                          now - 1, now + 1,
                                          dimension_key(dimension)) == []

        # A session that disconnects mid-interval keeps what it counted.
        dev.publish(f"telemetry/{device.name}/t", b"x", qos=1)
        dev.disconnect()
        wait_for(lambda: device.name not in broker.sessions
                 or broker.sessions[device.name].connection is None,
                 what="the session closed")
        detect.tick()
        now = detect.clock.time()
        assert value("aws:num-messages-sent", "IN") == [1]
    finally:
        dev.disconnect()
        other.disconnect()
