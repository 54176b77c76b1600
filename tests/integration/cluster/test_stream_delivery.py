"""QoS 1 across nodes is at least once: what a publisher had acknowledged reaches a
persistent session on another node even when that node dies, restarts, or the session
moves. Real ``bastion serve`` processes on the machine's NATS (JetStream) and
PostgreSQL, real mutual-TLS paho clients, real ``kill -9``."""

from __future__ import annotations

import time

from support.clients import V5, Client, DeviceFiles, wait_for
from support.cluster import (
    NumberedPublisher,
    ServedFleet,
    connect_when_lease_ends,
    drain_numbers,
)
from support.served import ServedBastion

TOPIC = "fleet/roamer/cmd"


def _numbers(client: Client, count: int, timeout: float = 15.0) -> list[int]:
    return [int(m.payload) for m in client.expect(count, timeout=timeout)]


def _parked(fleet: ServedFleet, qos: int = 1
            ) -> tuple[ServedBastion, ServedBastion, DeviceFiles, DeviceFiles]:
    """Two nodes started; the persistent session "roamer" subscribed to ``TOPIC`` on
    node-2 and parked there (disconnected); the devices roamer and sender."""
    one, two = fleet.node("node-1"), fleet.node("node-2")
    roamer, sender = one.devices("roamer", "sender")
    one.start()
    two.start()
    sub = _persistent(roamer, two).connect()
    sub.subscribe(TOPIC, qos=qos)
    sub.disconnect()
    return one, two, roamer, sender


def _persistent(device: DeviceFiles, node: ServedBastion) -> Client:
    return Client(device, node.port, version=V5, client_id=device.name, clean=False,
                  session_expiry=3600)


def _publish(device: DeviceFiles, node: ServedBastion, numbers: range, qos: int = 1
             ) -> None:
    """Publish each number to ``TOPIC``; each is acknowledged before the next."""
    pub = Client(device, node.port, version=V5, client_id=device.name).connect()
    for n in numbers:
        pub.publish(TOPIC, str(n).encode(), qos=qos)
    pub.disconnect()


def test_a_session_parked_on_a_dead_node_gets_what_was_published_meanwhile(
        served_fleet: ServedFleet) -> None:
    # The session's node is killed before anything is published: no node holds the
    # session while the messages are acknowledged. Only the stream has them; the node
    # that adopts the session reads it from the dead node's position.
    one, two, roamer, sender = _parked(served_fleet)
    two.kill()
    _publish(sender, one, range(100))
    sub = connect_when_lease_ends(roamer, one.port, "roamer")
    assert sub.session_present is True
    assert _numbers(sub, 100) == list(range(100))
    sub.expect_none(0.5)
    sub.disconnect()


def test_a_node_killed_and_restarted_delivers_what_it_missed(
        served_fleet: ServedFleet) -> None:
    one, two, roamer, sender = _parked(served_fleet)
    _publish(sender, one, range(50))
    two.kill()  # right after the PUBACKs: node-2 may not have written them yet
    _publish(sender, one, range(50, 100))
    two.start()  # the same node id: it reads the stream on from where it was
    sub = _persistent(roamer, two).connect()
    assert sub.session_present is True
    assert _numbers(sub, 100) == list(range(100))
    sub.expect_none(0.5)
    sub.disconnect()


def test_a_session_moving_between_nodes_under_load_loses_nothing_acknowledged(
        served_fleet: ServedFleet) -> None:
    # History check: a publisher on node-1 sends numbered QoS 1 messages as fast as its
    # PUBACKs come while the subscriber's session hops between the two nodes (each hop
    # a takeover). Every acknowledged number must arrive; none twice.
    one, two, roamer, sender = _parked(served_fleet)
    nodes = [one, two]
    received: list[int] = []
    sub = _persistent(roamer, two).connect()
    publisher = NumberedPublisher(sender, one.port, TOPIC)
    for hop in range(6):
        time.sleep(0.4)
        drain_numbers(received, sub)
        sub.paho.disconnect()  # the client goes; its session stays
        sub.paho.loop_stop()
        sub = _persistent(roamer, nodes[hop % 2]).connect()
        assert sub.session_present is True
    acked = publisher.stop()
    assert len(acked) > 50, "the publisher hardly ran"

    def everything() -> bool:
        drain_numbers(received, sub)
        return len(received) >= len(acked)

    wait_for(everything, 15, "every acknowledged message")
    sub.disconnect()
    missing = sorted(set(acked) - set(received))
    assert not missing, f"{len(missing)} acknowledged messages lost: {missing[:20]}"
    twice = len(received) - len(set(received))
    assert twice == 0, f"{twice} delivered twice"


def test_qos_2_across_nodes_arrives_exactly_once(served_fleet: ServedFleet) -> None:
    one, two, roamer, sender = _parked(served_fleet, qos=2)
    sub = _persistent(roamer, two).connect()
    _publish(sender, one, range(100), qos=2)  # each PUBCOMPed
    messages = sub.expect(100, timeout=15)
    sub.expect_none(1.0)
    assert [int(m.payload) for m in messages] == list(range(100))
    assert {m.qos for m in messages} == {2}
    sub.disconnect()
