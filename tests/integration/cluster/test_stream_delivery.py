"""QoS 1 across nodes is at least once: what a publisher had acknowledged reaches a
persistent session on another node even when that node dies, restarts, or the session
moves. Real ``bastion serve`` processes on the machine's NATS (JetStream) and
PostgreSQL, real mutual-TLS paho clients, real ``kill -9``."""

from __future__ import annotations

import threading
import time

from support.clients import V5, Client, wait_for
from support.cluster import ServedFleet, connect_when_lease_ends


def _numbers(client: Client, count: int, timeout: float = 15.0) -> list[int]:
    return [int(m.payload) for m in client.expect(count, timeout=timeout)]


def test_a_session_parked_on_a_dead_node_gets_what_was_published_meanwhile(
        served_fleet: ServedFleet) -> None:
    # The session's node is killed before anything is published: no node holds the
    # session while the messages are acknowledged. Only the stream has them; the node
    # that adopts the session reads it from the dead node's position.
    one, two = served_fleet.node("node-1"), served_fleet.node("node-2")
    roamer, sender = one.devices("roamer", "sender")
    one.start()
    two.start()
    sub = Client(roamer, two.port, version=V5, client_id="roamer", clean=False,
                 session_expiry=3600).connect()
    sub.subscribe("fleet/roamer/cmd", qos=1)
    sub.disconnect()
    two.kill()
    pub = Client(sender, one.port, version=V5, client_id="sender").connect()
    for n in range(100):
        pub.publish("fleet/roamer/cmd", str(n).encode(), qos=1)  # each PUBACKed
    pub.disconnect()
    sub = connect_when_lease_ends(roamer, one.port, "roamer")
    assert sub.session_present is True
    assert _numbers(sub, 100) == list(range(100))
    sub.expect_none(0.5)
    sub.disconnect()


def test_a_node_killed_and_restarted_delivers_what_it_missed(
        served_fleet: ServedFleet) -> None:
    one, two = served_fleet.node("node-1"), served_fleet.node("node-2")
    roamer, sender = one.devices("roamer", "sender")
    one.start()
    two.start()
    sub = Client(roamer, two.port, version=V5, client_id="roamer", clean=False,
                 session_expiry=3600).connect()
    sub.subscribe("fleet/roamer/cmd", qos=1)
    sub.disconnect()
    pub = Client(sender, one.port, version=V5, client_id="sender").connect()
    for n in range(50):
        pub.publish("fleet/roamer/cmd", str(n).encode(), qos=1)
    two.kill()  # right after the PUBACKs: node-2 may not have written them yet
    for n in range(50, 100):
        pub.publish("fleet/roamer/cmd", str(n).encode(), qos=1)
    pub.disconnect()
    two.start()  # the same node id: it reads the stream on from where it was
    sub = Client(roamer, two.port, version=V5, client_id="roamer", clean=False,
                 session_expiry=3600).connect()
    assert sub.session_present is True
    assert _numbers(sub, 100) == list(range(100))
    sub.expect_none(0.5)
    sub.disconnect()


def test_a_session_moving_between_nodes_under_load_loses_nothing_acknowledged(
        served_fleet: ServedFleet) -> None:
    # History check: a publisher on node-1 sends numbered QoS 1 messages as fast as its
    # PUBACKs come while the subscriber's session hops between the two nodes (each hop
    # a takeover). Every acknowledged number must arrive; none twice.
    one, two = served_fleet.node("node-1"), served_fleet.node("node-2")
    roamer, sender = one.devices("roamer", "sender")
    one.start()
    two.start()
    ports = [one.port, two.port]
    received: list[int] = []
    sub = Client(roamer, ports[1], version=V5, client_id="roamer", clean=False,
                 session_expiry=3600).connect()
    sub.subscribe("fleet/roamer/cmd", qos=1)
    acked: list[int] = []
    stop = threading.Event()

    def publish() -> None:
        pub = Client(sender, one.port, version=V5, client_id="sender").connect()
        n = 0
        while not stop.is_set():
            pub.publish("fleet/roamer/cmd", str(n).encode(), qos=1)
            acked.append(n)
            n += 1
        pub.disconnect()

    publisher = threading.Thread(target=publish, daemon=True)
    publisher.start()
    for hop in range(6):
        time.sleep(0.4)
        while not sub.messages.empty():
            received.append(int(sub.messages.get().payload))
        sub.paho.disconnect()  # the client goes; its session stays
        sub.paho.loop_stop()
        sub = Client(roamer, ports[hop % 2], version=V5, client_id="roamer", clean=False,
                     session_expiry=3600).connect()
        assert sub.session_present is True
    stop.set()
    publisher.join(10)
    assert len(acked) > 50, "the publisher hardly ran"
    wait_for(lambda: sub.messages.qsize() + len(received) >= len(acked), 15,
             "every acknowledged message")
    while not sub.messages.empty():
        received.append(int(sub.messages.get().payload))
    sub.disconnect()
    missing = sorted(set(acked) - set(received))
    assert not missing, f"{len(missing)} acknowledged messages lost: {missing[:20]}"
    twice = len(received) - len(set(received))
    assert twice == 0, f"{twice} delivered twice"


def test_qos_2_across_nodes_arrives_exactly_once(served_fleet: ServedFleet) -> None:
    one, two = served_fleet.node("node-1"), served_fleet.node("node-2")
    roamer, sender = one.devices("roamer", "sender")
    one.start()
    two.start()
    sub = Client(roamer, two.port, version=V5, client_id="roamer", clean=False,
                 session_expiry=3600).connect()
    sub.subscribe("fleet/roamer/cmd", qos=2)
    pub = Client(sender, one.port, version=V5, client_id="sender").connect()
    for n in range(100):
        pub.publish("fleet/roamer/cmd", str(n).encode(), qos=2)  # each PUBCOMPed
    messages = sub.expect(100, timeout=15)
    sub.expect_none(1.0)
    assert [int(m.payload) for m in messages] == list(range(100))
    assert {m.qos for m in messages} == {2}
    pub.disconnect()
    sub.disconnect()
