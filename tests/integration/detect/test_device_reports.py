"""Device-side metrics over ``$aws/things/<thing>/defender/metrics/json|cbor`` from a real
device: accepted/rejected replies echo the report id; a new listening port raises its
violation at once (event-driven) and the next clean report clears it."""

from __future__ import annotations

import json
from typing import Any

import cbor2

from bastion.defender.detect import ViolationEventType
from bastion.reserved.defender import DefenderMetricsTopics
from support.clients import Client, wait_for

from .conftest import INTERVAL, Detect


def _report(rid: int, ports: list[int], *, short: bool = False) -> dict[str, Any]:
    if short:
        return {"hed": {"rid": rid, "v": "1.0"},
                "met": {"tp": {"pts": [{"pt": p} for p in ports], "t": len(ports)},
                        "ns": {"bi": 10, "bo": 20, "pi": 1, "po": 2}}}
    return {"header": {"report_id": rid, "version": "1.0"},
            "metrics": {"listening_tcp_ports": {"ports": [{"port": p, "interface": "eth0"}
                                                          for p in ports],
                                                "total": len(ports)},
                        "tcp_connections": {"established_connections": {
                            "connections": [{"remote_addr": "10.0.0.9:443",
                                             "local_port": 5000}], "total": 1}}}}


PORT_BEHAVIOR = {"name": "tcp-ports", "metric": "aws:listening-tcp-ports",
                 "criteria": {"comparisonOperator": "in-port-set",
                              "value": {"ports": [22, 443]}}}


def _events_of(detect: Detect, thing: str) -> list[tuple[str, str]]:
    return [(e.event_type.value, e.behavior.name)
            for e in detect.service.list_violation_events(0, detect.clock.time() + 1,
                                                          thing_name=thing)]


def test_new_listening_port_alarms_and_clean_report_clears(detect: Detect) -> None:
    device, twin = detect.make_device(), detect.make_device()
    group = detect.group(device, twin)
    detect.profile(group, PORT_BEHAVIOR)
    a = Client(device, detect.running.port, client_id=device.name).connect()
    b = Client(twin, detect.running.port, client_id=twin.name).connect()
    try:
        base = f"$aws/things/{device.name}/defender/metrics/json"
        a.subscribe(base + "/+", qos=1)
        b.subscribe(f"$aws/things/{twin.name}/defender/metrics/json/+", qos=1)
        a.publish(base, json.dumps(_report(1001, [22, 443, 8080])), qos=1)
        reply = a.expect()[0]
        assert reply.topic == base + "/accepted"
        body = json.loads(reply.payload)
        assert body["reportId"] == 1001 and body["status"] == "ACCEPTED"
        assert body["thingName"] == device.name
        wait_for(lambda: _events_of(detect, device.name) == [("in-alarm", "tcp-ports")],
                 what="in-alarm")
        b.publish(f"$aws/things/{twin.name}/defender/metrics/json",
                  json.dumps(_report(7, [22], short=True)), qos=1)
        assert json.loads(b.expect()[0].payload)["status"] == "ACCEPTED"

        # Too soon: refused, the report id echoed.
        a.publish(base, json.dumps(_report(1002, [22])), qos=1)
        reply = a.expect()[0]
        assert reply.topic == base + "/rejected"
        body = json.loads(reply.payload)
        assert body["reportId"] == 1002
        assert body["statusDetails"]["ErrorCode"] == "Throttled"

        detect.clock.advance(INTERVAL)
        a.publish(base, json.dumps(_report(1003, [22, 443])), qos=1)
        assert a.expect()[0].topic == base + "/accepted"
        wait_for(lambda: _events_of(detect, device.name) == [
            ("in-alarm", "tcp-ports"), ("alarm-cleared", "tcp-ports")], what="cleared")
        assert _events_of(detect, twin.name) == []
        values = detect.service.list_metric_values(
            device.name, "aws:destination-ip-addresses", 0, detect.clock.time() + 1)
        assert [v.cidrs for _, v in values] == [("10.0.0.9",), ("10.0.0.9",)]
    finally:
        a.disconnect()
        b.disconnect()


def test_malformed_and_cbor_reports(detect: Detect) -> None:
    device = detect.make_device()
    a = Client(device, detect.running.port, client_id=device.name).connect()
    try:
        base = f"$aws/things/{device.name}/defender/metrics/cbor"
        a.subscribe(base + "/+", qos=1)
        a.publish(base, cbor2.dumps({"hed": {"rid": 5, "v": "1.0"}}), qos=1)
        reply = a.expect()[0]
        assert reply.topic == base + "/rejected"
        body = cbor2.loads(reply.payload)
        assert body["reportId"] == 5
        assert body["statusDetails"] == {"ErrorCode": "InvalidPayload",
                                         "ErrorMessage": "Malformed metrics report"}
        a.publish(base, cbor2.dumps(_report(6, [80], short=True)), qos=1)
        reply = a.expect()[0]
        assert reply.topic == base + "/accepted"
        assert cbor2.loads(reply.payload)["reportId"] == 6
    finally:
        a.disconnect()


def test_custom_metric_report(detect: Detect) -> None:
    device = detect.make_device()
    group = detect.group(device)
    detect.service.create_custom_metric("temperature", "number")
    detect.profile(group, {"name": "hot", "metric": "temperature",
                           "criteria": {"comparisonOperator": "less-than",
                                        "value": {"number": 80.5}}})
    a = Client(device, detect.running.port, client_id=device.name).connect()
    try:
        base = f"$aws/things/{device.name}/defender/metrics/json"
        a.subscribe(base + "/+", qos=1)
        a.publish(base, json.dumps({"header": {"report_id": 1, "version": "1.0"},
                                    "custom_metrics": {"temperature": [{"number": 95}]}}),
                  qos=1)
        assert a.expect()[0].topic == base + "/accepted"
        wait_for(lambda: _events_of(detect, device.name) == [("in-alarm", "hot")],
                 what="custom metric alarm")
        assert detect.service.list_active_violations(
            thing_name=device.name)[0].last_violation_value.number == 95.0
    finally:
        a.disconnect()


def test_detect_interval_lowers_the_report_period(detect: Detect) -> None:
    (topics,) = [h for h in detect.app.broker.reserved_handlers
                 if isinstance(h, DefenderMetricsTopics)]
    assert topics.min_period == INTERVAL
    assert ViolationEventType.IN_ALARM.value == "in-alarm"
