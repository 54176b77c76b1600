"""A subscriber that cannot keep up stalls nobody: its own queue fills and what its cap
drops is counted; publishers and other subscribers go on at full rate."""

from __future__ import annotations

import threading
import time

from bastion.mqtt import (
    MQTT_5,
    Connack,
    Connect,
    Disconnect,
    PacketDecoder,
    Puback,
    Publish,
    Suback,
    Subscribe,
    Subscription,
    encode,
)
from support.clients import V5, Client, tls_socket, wait_for


class SlowSubscriber:
    """A raw MQTT 5 subscriber that acknowledges only when told to."""

    def __init__(self, device, port):
        self.sock = tls_socket(device, port, ca=device.ca)
        self.sock.settimeout(0.2)
        self.decoder = PacketDecoder(version=MQTT_5)
        self.received: list[Publish] = []
        self.sock.sendall(encode(Connect("slow-sub", protocol_version=MQTT_5), MQTT_5))
        self._next(5)  # CONNACK
        self.sock.sendall(encode(Subscribe(1, (Subscription("flow/#", qos=1),)), MQTT_5))
        while not isinstance(self._next(5), Suback):
            pass

    def _next(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            packet = self.decoder.next_packet()
            if packet is not None:
                return packet
            if time.monotonic() > deadline:
                return None
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            self.decoder.feed(data)

    def read_for(self, seconds, ack):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            packet = self._next(0.05)
            if isinstance(packet, Publish):
                self.received.append(packet)
                if ack:
                    self.sock.sendall(encode(Puback(packet.packet_id), MQTT_5))


def test_a_subscriber_that_never_acknowledges_stalls_nobody(bastion, make_device):
    limits = bastion.config.limits
    stuck = SlowSubscriber(make_device(), bastion.port)  # reads, never acknowledges
    healthy = Client(make_device(), bastion.port, version=V5).connect()
    healthy.subscribe("flow/#", qos=1)
    pub = Client(make_device(), bastion.port, version=V5)
    pub.paho.max_inflight_messages_set(20)
    pub.connect()
    total = 3_000
    infos = []
    for i in range(total):  # about 2,000 a second: what one paho client here keeps up with
        infos.append(pub.publish(f"flow/{i}", str(i).encode(), qos=1, wait=False))
        if i % 100 == 99:
            time.sleep(0.05)
    # The healthy subscriber gets every message and the publisher every PUBACK, while the
    # stuck one sits on its window.
    got = [int(m.payload) for m in healthy.expect(total, timeout=30)]
    assert got == list(range(total))
    wait_for(lambda: all(info.mid in pub.acks for info in infos), 10, "every PUBACK")
    stuck.read_for(0.5, ack=False)
    assert len(stuck.received) == limits.max_inflight_messages
    # Its own queue is full and the rest was dropped: counted, not silently.
    session = bastion.call(lambda: bastion.app.broker.sessions["slow-sub"])
    assert len(session.queue) == limits.max_queued_messages
    dropped = total - limits.max_inflight_messages - limits.max_queued_messages
    assert session.dropped == dropped
    assert bastion.call(lambda: bastion.app.broker.stats.queue_full_drops) == dropped
    # Once it acknowledges, what it has queued arrives, in order.
    for packet in stuck.received:
        stuck.sock.sendall(encode(Puback(packet.packet_id), MQTT_5))
    deadline = time.monotonic() + 15
    wanted = limits.max_inflight_messages + limits.max_queued_messages
    while len(stuck.received) < wanted and time.monotonic() < deadline:
        stuck.read_for(0.2, ack=True)
    assert [int(p.payload) for p in stuck.received] == list(range(wanted))
    stuck.sock.close()
    healthy.disconnect()
    pub.disconnect()


# -- QoS 0: a subscriber whose socket is full loses QoS 0, nobody waits for it ----------

def raw_client(device, port, client_id, topic_filter=None):
    """A raw MQTT 3.1.1 client over TLS: CONNECT (and SUBSCRIBE at QoS 0) done."""
    sock = tls_socket(device, port, ca=device.ca)
    decoder = PacketDecoder(version=4)
    sock.sendall(encode(Connect(client_id, keep_alive=60), 4))
    wanted = [Connack] + ([Suback] if topic_filter else [])
    if topic_filter:
        sock.sendall(encode(Subscribe(1, (Subscription(topic_filter, 0),)), 4))
    while wanted:
        decoder.feed(sock.recv(65536))
        while (packet := decoder.next_packet()) is not None:
            assert isinstance(packet, wanted.pop(0))
    return sock, decoder


def numbered(topic, first, count, size=1000):
    return [encode(Publish(topic, i.to_bytes(4, "big") + bytes(size - 4)), 4)
            for i in range(first, first + count)]


def read_publishes(sock, decoder, count, timeout=20.0):
    sock.settimeout(0.2)
    received = []
    deadline = time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        try:
            decoder.feed(sock.recv(1 << 20))
        except TimeoutError:
            continue
        received.extend(p for p in iter(decoder.next_packet, None) if isinstance(p, Publish))
    return received


def test_a_subscriber_that_stops_reading_loses_qos0_and_holds_nobody(bastion, make_device):
    stuck, _ = raw_client(make_device(), bastion.port, "q0-stuck", "q0/#")
    bystander, bystander_decoder = raw_client(make_device(), bastion.port, "q0-by", "other/#")
    pub, _ = raw_client(make_device(), bastion.port, "q0-pub2")
    data = b"".join(numbered("q0/data", 0, 60_000))  # 60 MB: more than every buffer
    # Never held back: the whole flood is taken while the stuck reader reads nothing; it
    # loses QoS 0 messages (at most once, counted) and nobody else waits for it.
    pub.settimeout(30)
    pub.sendall(data)
    pub.sendall(numbered("other/ok", 0, 1)[0])
    assert [int.from_bytes(p.payload[:4], "big")
            for p in read_publishes(bystander, bystander_decoder, 1)] == [0]
    session = bastion.call(lambda: bastion.app.broker.sessions["q0-stuck"])
    assert session.dropped > 0
    for sock in (stuck, bystander, pub):
        sock.close()


def test_a_client_flooding_its_own_subscription_is_never_deadlocked(bastion, make_device):
    # One thread, blocking writes, no reading until done: the broker must keep reading it
    # (its own session is the congested one), so the writes complete.
    loop, decoder = raw_client(make_device(), bastion.port, "q0-loop", "self/#")
    loop.settimeout(30)
    loop.sendall(b"".join(numbered("self/echo", 0, 30_000)))  # 30 MB
    # The connection is alive: once the client drains what it was sent (its QoS 0 beyond
    # the broker's buffer was dropped), a new message comes back to it.
    loop.settimeout(1.0)
    try:
        while True:
            decoder.feed(loop.recv(1 << 20))
            for _ in iter(decoder.next_packet, None):
                pass
    except TimeoutError:
        pass
    loop.settimeout(10)
    loop.sendall(encode(Publish("self/last", b"last"), 4))
    deadline = time.monotonic() + 10
    last = None
    while last is None and time.monotonic() < deadline:
        decoder.feed(loop.recv(1 << 20))
        last = next((p for p in iter(decoder.next_packet, None)
                     if isinstance(p, Publish) and p.topic == "self/last"), None)
    assert last is not None and last.payload == b"last"
    loop.close()


def test_qos0_flood_from_several_publishers_arrives_whole_and_in_order(bastion, make_device):
    # Small messages (one read holds thousands), publishers that may outrun the
    # subscriber, then DISCONNECT: what arrives arrives in order, once, and what a slow
    # socket cost is counted exactly (QoS 0 is at most once).
    sub, sub_decoder = raw_client(make_device(), bastion.port, "flood-sub", "flood/#")
    publishers, per_publisher = 4, 40_000
    device = make_device()
    failures = []

    def publish(index):
        try:
            sock, _ = raw_client(device, bastion.port, f"flood-pub{index}")
            sock.settimeout(60)
            batch = [encode(Publish(f"flood/{index}", i.to_bytes(4, "big") + bytes(60)), 4)
                     for i in range(per_publisher)]
            sock.sendall(b"".join(batch) + encode(Disconnect(), 4))
            sock.close()
        except OSError as exc:  # reported below (ssl errors are OSErrors)
            failures.append(exc)

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(publishers)]
    for thread in threads:
        thread.start()
    received = read_publishes(sub, sub_decoder, publishers * per_publisher, timeout=30)
    for thread in threads:
        thread.join(10)
    assert not failures
    by_topic: dict[str, list[int]] = {}
    for packet in received:
        by_topic.setdefault(packet.topic, []).append(int.from_bytes(packet.payload[:4], "big"))
    assert all(seq == sorted(set(seq)) for seq in by_topic.values())  # in order, once
    session = bastion.call(lambda: bastion.app.broker.sessions["flood-sub"])
    assert len(received) + session.dropped == publishers * per_publisher
    sub.close()
