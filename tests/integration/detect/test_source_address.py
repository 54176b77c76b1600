"""``aws:source-ip-address`` alarms clear once the unexpected address is gone: every
interval carries the addresses of the device's live connections (and of the connections
made in it), and the empty set once the device has left, so the last datapoint never
keeps a clone's address after the clone went away.

Devices connect from 127.0.0.1 (where the profile expects them) and, as a clone with the
same certificate, from 127.0.0.2 (a second loopback address: the socket's source address
is bound). Connections are raw TLS sockets with hand-built CONNECT packets, so nothing
reconnects behind the test's back."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bastion.config import ApiConfig, Config, DetectConfig, MQTTConfig
from bastion.datadir import DataDir
from bastion.defender.detect import ViolationEventType
from bastion.mqtt import Connack, Connect, PacketDecoder, encode
from bastion.reserved.defender import AWAY_POINTS
from support.clients import HOST, DeviceFiles, wait_for
from support.running import RunningBastion

from .conftest import TEST_LIMITS, Detect

EXPECTED = {"name": "source-ip", "metric": "aws:source-ip-address",
            "criteria": {"comparisonOperator": "in-cidr-set",
                         "value": {"cidrs": ["127.0.0.1/32"]}}}


class RawConnection:
    """A TLS connection from ``source`` that sends CONNECT and reads the CONNACK."""

    def __init__(self, device: DeviceFiles, port: int, client_id: str, source: str) -> None:
        context = ssl.create_default_context(cafile=str(device.ca))
        context.load_cert_chain(str(device.cert), str(device.key))
        raw = socket.create_connection((HOST, port), timeout=5, source_address=(source, 0))
        self.sock = context.wrap_socket(raw, server_hostname=HOST)
        self.sock.sendall(encode(Connect(client_id, keep_alive=600), 4))
        decoder = PacketDecoder(version=4)
        packet = None
        while packet is None:
            data = self.sock.recv(4096)
            if not data:
                raise AssertionError("closed before CONNACK")
            decoder.feed(data)
            packet = decoder.next_packet()
        assert isinstance(packet, Connack)
        self.connack = packet

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096) == b""
        except (ConnectionResetError, ssl.SSLError):
            return True

    def close(self) -> None:
        self.sock.close()


def _kinds(events: list[Any], thing: str) -> list[tuple[str, tuple[str, ...] | None]]:
    return [(e.event_type.value, e.metric_value.cidrs if e.metric_value else None)
            for e in events if e.thing_name == thing]


def _addresses(detect: Detect, thing: str) -> list[tuple[str, ...]]:
    values = detect.service.list_metric_values(thing, "aws:source-ip-address", 0,
                                               detect.clock.time() + 1)
    return [v.cidrs for _, v in values]


def test_a_clone_that_went_away_clears_at_the_next_interval(detect: Detect) -> None:
    device = detect.make_device()
    detect.profile(detect.group(device), EXPECTED)
    port = detect.running.port
    legit = RawConnection(device, port, device.name, "127.0.0.1")
    try:
        assert _kinds(detect.tick(), device.name) == []
        # The clone takes the session over from 127.0.0.2, the device takes it back at
        # once: both in one interval.
        clone = RawConnection(device, port, device.name, "127.0.0.2")
        assert legit.closed_by_server()
        legit.close()
        legit = RawConnection(device, port, device.name, "127.0.0.1")
        assert clone.closed_by_server()
        clone.close()
        assert _kinds(detect.tick(), device.name) == [
            ("in-alarm", ("127.0.0.1", "127.0.0.2"))]
        # No connect in this interval: the live connection's address is the datapoint.
        assert _kinds(detect.tick(), device.name) == [("alarm-cleared", ("127.0.0.1",))]
        assert _kinds(detect.tick(), device.name) == []
        assert _addresses(detect, device.name) == [
            ("127.0.0.1",), ("127.0.0.1", "127.0.0.2"), ("127.0.0.1",), ("127.0.0.1",)]
    finally:
        legit.close()


def test_a_device_that_left_gets_empty_sets_for_a_while(detect: Detect) -> None:
    device = detect.make_device()
    detect.profile(detect.group(device), EXPECTED)
    moved = RawConnection(device, detect.running.port, device.name, "127.0.0.2")
    assert _kinds(detect.tick(), device.name) == [("in-alarm", ("127.0.0.2",))]
    moved.close()
    wait_for(lambda: device.name not in detect.app.broker.sessions, what="the disconnect")
    assert _kinds(detect.tick(), device.name) == [("alarm-cleared", ())]
    for _ in range(AWAY_POINTS + 2):
        assert detect.tick() == []
    assert _addresses(detect, device.name) == [("127.0.0.2",)] + [()] * AWAY_POINTS


# -- end to end, on the real clock ---------------------------------------------------------

REAL_INTERVAL = 1.0


@pytest.fixture
def ticking(datadir: DataDir) -> Iterator[RunningBastion]:
    """A Bastion whose detect loop evaluates every second on the system clock."""
    config = Config(mqtt=MQTTConfig(host="127.0.0.1", port=0), limits=TEST_LIMITS,
                    api=ApiConfig(enabled=False),
                    detect=DetectConfig(interval=REAL_INTERVAL))
    running = RunningBastion(config, datadir).start()
    try:
        yield running
    finally:
        running.stop()


def test_a_refused_clone_raises_the_alarm_and_it_clears_within_two_intervals(
        ticking: RunningBastion, make_device: Callable[..., DeviceFiles]) -> None:
    # The device policy of `bastion device create`: connect only as the thing's name.
    device = make_device(policy=None)
    service = ticking.app.detect.service
    registry = ticking.app.plane.registry
    registry.create_thing_group("source-checked")
    registry.add_thing_to_thing_group(thing_group_name="source-checked",
                                      thing_name=device.name)
    service.create_security_profile("source", behaviors=[EXPECTED], now=time.time())
    service.attach("source", service.target_arn("thinggroup/source-checked"))

    def events() -> list[tuple[str, tuple[str, ...] | None]]:
        return _kinds(service.list_violation_events(0, time.time() + 60), device.name)

    def addresses() -> list[tuple[str, ...]]:
        return [v.cidrs for _, v in service.list_metric_values(
            device.name, "aws:source-ip-address", 0, time.time() + 60)]

    legit = RawConnection(device, ticking.port, device.name, "127.0.0.1")
    try:
        wait_for(lambda: ("127.0.0.1",) in addresses(), 5, "an interval with the device")
        # The same certificate from 127.0.0.2 under another client id: refused by the
        # policy, but an attempt from an address the profile does not expect.
        clone = RawConnection(device, ticking.port, f"{device.name}-clone", "127.0.0.2")
        assert clone.connack.reason_code != 0
        clone.close()
        wait_for(lambda: [kind for kind, _ in events()] == ["in-alarm"], 5, "the alarm")
        assert "127.0.0.2" in (events()[0][1] or ())
        raised = service.list_violation_events(0, time.time() + 60,
                                               thing_name=device.name)[0].timestamp
        wait_for(lambda: [kind for kind, _ in events()] == ["in-alarm", "alarm-cleared"],
                 4 * REAL_INTERVAL + 2, "the alarm to clear")
        cleared = next(e for e in service.list_violation_events(0, time.time() + 60,
                                                                thing_name=device.name)
                       if e.event_type is ViolationEventType.ALARM_CLEARED).timestamp
        # Evaluations are one interval apart (give or take the loop's own delay).
        assert cleared - raised <= 2 * REAL_INTERVAL + 0.5
    finally:
        legit.close()
