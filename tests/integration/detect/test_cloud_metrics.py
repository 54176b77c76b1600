"""Cloud-side detect with real devices on real TLS: each misbehaving device raises
exactly the expected violation within one interval and clears after the configured
number of good datapoints; its quiet twin raises nothing.

As in AWS IoT, a connection's metrics belong to a thing when its client id is the name
of the thing attached to its certificate; otherwise to the client id (unregistered)."""

from __future__ import annotations

import uuid
from typing import Any

import paho.mqtt.client as paho

from bastion.defender.detect import ViolationEventType
from bastion.mqtt import Connect, PacketDecoder, Suback, Subscribe, Subscription, encode
from support.clients import HOST, V5, Client, tls_socket, wait_for

from .conftest import Detect


def _events(events: list[Any], kind: ViolationEventType) -> list[tuple[str, str]]:
    return sorted((e.thing_name, e.behavior.name) for e in events if e.event_type is kind)


def _number(metric: str, op: str, count: int, **criteria: Any) -> dict[str, Any]:
    return {"name": metric.split(":")[1], "metric": metric,
            "criteria": {"comparisonOperator": op, "value": {"count": count}, **criteria}}


def test_flooding_device_alarms_and_clears(detect: Detect) -> None:
    flood, quiet = detect.make_device(), detect.make_device()
    group = detect.group(flood, quiet)
    detect.profile(group, _number("aws:num-messages-sent", "less-than", 20,
                                  consecutiveDatapointsToClear=2))
    a = Client(flood, detect.running.port, client_id=flood.name).connect()
    b = Client(quiet, detect.running.port, client_id=quiet.name).connect()
    try:
        for i in range(50):
            a.publish("telemetry/flood", b"x" * 10, qos=1)
        for i in range(3):
            b.publish("telemetry/quiet", b"x", qos=1)
        events = detect.tick()
        assert _events(events, ViolationEventType.IN_ALARM) == [
            (flood.name, "num-messages-sent")]
        assert len(events) == 1
        active = detect.service.list_active_violations()
        assert [(v.thing_name, v.last_violation_value.count) for v in active] == [
            (flood.name, 50)]
        assert detect.tick() == []  # one good datapoint: still in alarm
        events = detect.tick()
        assert _events(events, ViolationEventType.ALARM_CLEARED) == [
            (flood.name, "num-messages-sent")]
        assert detect.service.list_active_violations() == []
        values = detect.service.list_metric_values(flood.name, "aws:num-messages-sent",
                                                   0, detect.clock.time() + 1)
        assert [v.count for _, v in values] == [50, 0, 0]
    finally:
        a.disconnect()
        b.disconnect()


def test_topic_prober_raises_authorization_failures(detect: Detect) -> None:
    policy = f"detect-narrow-{uuid.uuid4().hex[:6]}"
    detect.app.plane.policies.create_policy(policy, (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":'
        '["iot:Connect","iot:Publish","iot:Subscribe","iot:Receive"],'
        '"Resource":["arn:aws:iot:*:*:client/*","arn:aws:iot:*:*:topic/ok/*",'
        '"arn:aws:iot:*:*:topicfilter/ok/*"]}]}'))
    prober = detect.make_device(policy=policy)
    quiet = detect.make_device(policy=policy)
    group = detect.group(prober, quiet)
    detect.profile(group, _number("aws:num-authorization-failures", "less-than", 3))
    a = Client(prober, detect.running.port, version=V5, client_id=prober.name).connect()
    b = Client(quiet, detect.running.port, version=V5, client_id=quiet.name).connect()
    try:
        for topic in ("admin/a", "admin/b", "other/c", "secret/d"):
            a.publish(topic, b"probe", qos=1)
        b.publish("ok/1", b"fine", qos=1)
        events = detect.tick()
        assert _events(events, ViolationEventType.IN_ALARM) == [
            (prober.name, "num-authorization-failures")]
        assert len(events) == 1
        events = detect.tick()
        assert _events(events, ViolationEventType.ALARM_CLEARED) == [
            (prober.name, "num-authorization-failures")]
    finally:
        a.disconnect()
        b.disconnect()


def test_reconnect_loop_raises_connection_attempts_and_disconnects(detect: Detect) -> None:
    looper, quiet = detect.make_device(), detect.make_device()
    group = detect.group(looper, quiet)
    detect.profile(group, _number("aws:num-connection-attempts", "less-than-equals", 2),
                   _number("aws:num-disconnects", "less-than-equals", 2))
    b = Client(quiet, detect.running.port, client_id=quiet.name).connect()
    try:
        for _ in range(5):
            client = Client(looper, detect.running.port, client_id=looper.name).connect()
            client.disconnect()
        wait_for(lambda: looper.name not in detect.app.broker.sessions, what="last close")
        events = detect.tick()
        assert _events(events, ViolationEventType.IN_ALARM) == [
            (looper.name, "num-connection-attempts"), (looper.name, "num-disconnects")]
        assert len(events) == 2
    finally:
        b.disconnect()


def test_unexpected_source_address(detect: Detect) -> None:
    moved, quiet = detect.make_device(), detect.make_device()
    group = detect.group(moved, quiet)
    detect.profile(group, {"name": "source-ip", "metric": "aws:source-ip-address",
                           "criteria": {"comparisonOperator": "in-cidr-set",
                                        "value": {"cidrs": ["127.0.0.1/32"]}}})
    a = Client(moved, detect.running.port, client_id=moved.name)
    a.paho.connect(HOST, detect.running.port, keepalive=30, bind_address="127.0.0.2")
    a.paho.loop_start()
    assert a.connected.wait(5) and not a.connack.is_failure
    b = Client(quiet, detect.running.port, client_id=quiet.name).connect()
    try:
        events = detect.tick()
        assert _events(events, ViolationEventType.IN_ALARM) == [(moved.name, "source-ip")]
        assert len(events) == 1
        assert events[0].metric_value.cidrs == ("127.0.0.2",)
    finally:
        a.disconnect()
        b.disconnect()


def test_quiet_device_raises_nothing_and_unregistered_is_not_targeted(detect: Detect) -> None:
    quiet = detect.make_device()
    group = detect.group(quiet)
    detect.profile(group, _number("aws:num-messages-sent", "less-than", 20))
    b = Client(quiet, detect.running.port, client_id=quiet.name).connect()
    try:
        b.publish("telemetry/quiet", b"x", qos=1)
        assert detect.tick() == []
        assert detect.tick() == []
    finally:
        b.disconnect()


def test_paho_is_the_real_client() -> None:
    assert paho.MQTTv5 == V5


def test_authorization_failures_by_topic_filter_dimension(detect: Detect) -> None:
    policy = f"detect-dim-{uuid.uuid4().hex[:6]}"
    detect.app.plane.policies.create_policy(policy, (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":'
        '["iot:Connect","iot:Publish"],'
        '"Resource":["arn:aws:iot:*:*:client/*","arn:aws:iot:*:*:topic/ok/*"]}]}'))
    admin_prober, other_prober = detect.make_device(policy=policy), detect.make_device(
        policy=policy)
    group = detect.group(admin_prober, other_prober)
    dimension = f"admin-{uuid.uuid4().hex[:6]}"
    detect.service.create_dimension(dimension, "TOPIC_FILTER", ["admin/#"])
    detect.profile(group, {**_number("aws:num-authorization-failures", "less-than", 2),
                           "name": "admin-probes",
                           "metricDimension": {"dimensionName": dimension}})
    a = Client(admin_prober, detect.running.port, version=V5,
               client_id=admin_prober.name).connect()
    b = Client(other_prober, detect.running.port, version=V5,
               client_id=other_prober.name).connect()
    try:
        for topic in ("admin/a", "admin/b/c", "admin/d"):
            a.publish(topic, b"probe", qos=1)
        for topic in ("other/a", "other/b", "other/c"):
            b.publish(topic, b"probe", qos=1)
        events = detect.tick()
        assert _events(events, ViolationEventType.IN_ALARM) == [
            (admin_prober.name, "admin-probes")]
        assert len(events) == 1
        values = detect.service.list_metric_values(
            other_prober.name, "aws:num-authorization-failures", 0, detect.clock.time() + 1,
            f"{dimension}|NOT_IN")
        assert [v.count for _, v in values] == [3]
    finally:
        a.disconnect()
        b.disconnect()


def test_a_device_whose_queue_overflows_raises_messages_dropped(detect: Detect) -> None:
    # Bastion's own cloud-side metric: a device subscribed at QoS 1 that stops reading
    # fills its queue (100 in flight + 1,000 queued); what its cap drops is counted
    # against it, and the device publishing to it is not blamed.
    stuck, publisher = detect.make_device(), detect.make_device()
    group = detect.group(stuck, publisher)
    detect.profile(group, _number("bastion:num-messages-dropped", "less-than", 1))
    sock = tls_socket(stuck, detect.running.port, ca=stuck.ca)
    sock.sendall(encode(Connect(stuck.name, keep_alive=60), 4))
    sock.sendall(encode(Subscribe(1, (Subscription("alerts/#", 1),)), 4))
    decoder, answers = PacketDecoder(version=4), []
    while len(answers) < 2:  # CONNACK, SUBACK: then it reads no more
        decoder.feed(sock.recv(4096))
        answers.extend(iter(decoder.next_packet, None))
    assert isinstance(answers[1], Suback)
    b = Client(publisher, detect.running.port, client_id=publisher.name)
    b.paho.max_inflight_messages_set(100)
    b.connect()
    try:
        infos = [b.publish("alerts/x", b"%d" % i, qos=1, wait=False) for i in range(1_150)]
        wait_for(lambda: all(info.mid in b.acks for info in infos), 20, "every PUBACK")
        events = detect.tick()
        assert _events(events, ViolationEventType.IN_ALARM) == [
            (stuck.name, "num-messages-dropped")]
        assert len(events) == 1
        values = detect.service.list_metric_values(stuck.name, "bastion:num-messages-dropped",
                                                   0, detect.clock.time() + 1)
        assert [v.count for _, v in values] == [50]
    finally:
        sock.close()
        b.disconnect()
