"""Metrics export: a profile's ``metricsExportConfig`` and its behaviors with
``exportMetric`` publish every datapoint, in AWS's export schema, on Bastion's own broker;
a real MQTT subscriber receives them, and nothing is published for metrics not exported."""

from __future__ import annotations

import json
import uuid

import pytest

from bastion.defender.detect import InvalidRequestError
from support.clients import Client

from .conftest import Detect

ROLE = "arn:aws:iam::123456789012:role/export"


def _behavior(name: str, metric: str, export: bool) -> dict[str, object]:
    return {"name": name, "metric": metric, "exportMetric": export,
            "criteria": {"comparisonOperator": "less-than", "value": {"count": 1000}}}


def test_exported_datapoints_reach_a_subscriber(detect: Detect) -> None:
    topic = f"export/{uuid.uuid4().hex[:8]}"
    device, listener = detect.make_device(), detect.make_device()
    group = detect.group(device)
    name = detect.profile(group, _behavior("sent", "aws:num-messages-sent", True),
                   _behavior("received", "aws:num-messages-received", False),
                   metrics_export={"mqttTopic": topic, "roleArn": ROLE})
    sub = Client(listener, detect.running.port, client_id=listener.name).connect()
    dev = Client(device, detect.running.port, client_id=device.name).connect()
    try:
        sub.subscribe(topic, qos=1)
        for _ in range(3):
            dev.publish("telemetry/x", b"hello", qos=1)
        detect.tick()
        [message] = sub.expect()
        document = json.loads(message.payload)
        assert document["version"] == "1.0"
        mine = [m for m in document["metrics"] if m["thing"] == device.name]
        assert mine == [{"name": "aws:num-messages-sent", "thing": device.name,
                         "value": {"count": 3}, "version": 1,
                         "timestamp": int(detect.clock.time() * 1000)}]
        assert all(m["name"] == "aws:num-messages-sent" for m in document["metrics"])
        assert all(m["thing"] == device.name for m in document["metrics"])

        # Device-side reports are exported too once the behavior asks for it.
        detect.service.update_security_profile(
            name, behaviors=[
                _behavior("sent", "aws:num-messages-sent", False),
                {"name": "ports", "metric": "aws:listening-tcp-ports", "exportMetric": True,
                 "criteria": {"comparisonOperator": "in-port-set",
                              "value": {"ports": [443]}}}], now=detect.clock.time())
        report = f"$aws/things/{device.name}/defender/metrics/json"
        dev.subscribe(report + "/accepted", qos=1)
        dev.publish(report, json.dumps({
            "header": {"report_id": 7, "version": "1.0"},
            "metrics": {"listening_tcp_ports": {"ports": [{"port": 443}]}}}), qos=1)
        assert json.loads(dev.expect()[0].payload)["reportId"] == 7
        [message] = sub.expect()
        [entry] = json.loads(message.payload)["metrics"]
        assert entry["name"] == "aws:listening-tcp-ports"
        assert entry["value"] == {"ports": [443]} and entry["thing"] == device.name

        # Without exportMetric nothing is published.
        detect.service.update_security_profile(
            name, behaviors=[_behavior("sent", "aws:num-messages-sent", False)],
            now=detect.clock.time())
        dev.publish("telemetry/x", b"hello", qos=1)
        detect.tick()
        sub.expect_none()
    finally:
        dev.disconnect()
        sub.disconnect()


def test_export_needs_a_config(detect: Detect) -> None:
    with pytest.raises(InvalidRequestError):
        detect.service.create_security_profile(
            f"sp-{uuid.uuid4().hex[:8]}",
            behaviors=[_behavior("sent", "aws:num-messages-sent", True)], now=detect.clock.time())
    with pytest.raises(InvalidRequestError):
        detect.service.create_security_profile(
            f"sp-{uuid.uuid4().hex[:8]}", now=detect.clock.time(),
            metrics_export={"mqttTopic": "a/#", "roleArn": ROLE})
