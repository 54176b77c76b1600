"""A subscriber that cannot keep up holds its publishers back: nothing acknowledged is
lost, and memory stays bounded."""

from __future__ import annotations

import ssl
import threading
import time

from bastion.broker import _session as session_module
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


def test_slow_subscriber_throttles_the_publisher_without_losing_messages(bastion, make_device):
    limits = bastion.config.limits
    sub = SlowSubscriber(make_device(), bastion.port)
    pub = Client(make_device(), bastion.port, version=V5)
    pub.paho.max_inflight_messages_set(20)
    pub.connect()
    total = 600
    infos = [pub.publish(f"flow/{i}", str(i).encode(), qos=1, wait=False) for i in range(total)]
    # The subscriber reads but never acknowledges: after its window and its queue are
    # full, the publisher's messages are held unacknowledged.
    sub.read_for(1.5, ack=False)
    acked_while_stalled = len(pub.acks)
    assert len(sub.received) == limits.max_inflight_messages
    ceiling = limits.max_inflight_messages * 2 + 20 + 5  # window + queue + publisher window
    assert acked_while_stalled <= ceiling, acked_while_stalled
    assert acked_while_stalled < total
    # Now the subscriber acknowledges what it has and what comes: everything arrives.
    for packet in sub.received:
        sub.sock.sendall(encode(Puback(packet.packet_id), MQTT_5))
    deadline = time.monotonic() + 15
    while len({p.payload for p in sub.received}) < total and time.monotonic() < deadline:
        sub.read_for(0.2, ack=True)
    payloads = [int(p.payload) for p in sub.received]
    assert payloads == list(range(total))  # each once, in publish order
    wait_for(lambda: len(pub.acks) == total, 5, "every publish acknowledged")
    assert all(info.mid in pub.acks for info in infos)
    sub.sock.close()
    pub.disconnect()


# -- QoS 0: a subscriber whose socket is full slows its publishers down -------------------

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


def send_until_blocked(sock, packets, *, stall=1.0, limit=30.0):
    """Send packets until the socket has taken nothing for ``stall`` seconds. Returns the
    index of the packet the socket is stuck on (its write must be retried with the same
    bytes, as OpenSSL requires); raises when it never blocks within ``limit`` seconds."""
    sock.setblocking(False)
    index, last_progress, started = 0, time.monotonic(), time.monotonic()
    while index < len(packets):
        try:
            sock.send(packets[index])
            index += 1
            last_progress = time.monotonic()
        except (BlockingIOError, ssl.SSLWantWriteError):
            if time.monotonic() - last_progress > stall:
                return index
            time.sleep(0.01)
        if time.monotonic() - started > limit:
            raise AssertionError("the publisher was never held back")
    raise AssertionError("every packet was taken: the publisher was never held back")


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


def test_a_subscriber_that_stops_reading_holds_qos0_publishers_back_without_loss(
        bastion, make_device):
    sub, sub_decoder = raw_client(make_device(), bastion.port, "q0-sub", "q0/#")
    pub, _ = raw_client(make_device(), bastion.port, "q0-pub")
    packets = numbered("q0/data", 0, 60_000)  # 60 MB: more than every buffer on the way
    stuck_at = send_until_blocked(pub, packets)
    assert stuck_at < len(packets) // 2  # held back long before the end
    # The subscriber catches up: every message that was sent arrives, in order, and the
    # publisher is let go.
    pub.setblocking(True)
    finish = threading.Thread(target=pub.sendall, args=(packets[stuck_at],))  # OpenSSL's
    finish.start()                                              # pending write completes
    received = read_publishes(sub, sub_decoder, stuck_at + 1)
    finish.join(10)
    assert [int.from_bytes(p.payload[:4], "big") for p in received] == list(
        range(stuck_at + 1))
    sub.close()
    pub.close()


def test_a_subscriber_that_never_reads_only_holds_publishers_for_a_grace_period(
        bastion, make_device, monkeypatch):
    monkeypatch.setattr(session_module, "SLOW_READER_GRACE", 0.5)
    stuck, _ = raw_client(make_device(), bastion.port, "q0-stuck", "q0/#")
    bystander, bystander_decoder = raw_client(make_device(), bastion.port, "q0-by", "other/#")
    pub, _ = raw_client(make_device(), bastion.port, "q0-pub2")
    data = b"".join(numbered("q0/data", 0, 60_000))
    # Held back at first, then let go once the grace period is over: the stuck reader
    # loses QoS 0 messages (at most once) and nobody else waits for it.
    pub.settimeout(30)
    pub.sendall(data)
    pub.sendall(numbered("other/ok", 0, 1)[0])
    assert [int.from_bytes(p.payload[:4], "big")
            for p in read_publishes(bystander, bystander_decoder, 1)] == [0]
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
    # Small messages (one read holds thousands), publishers that outrun the subscriber,
    # then DISCONNECT: what waits while a publisher is held is neither dropped nor
    # overtaken by its DISCONNECT.
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
    assert {topic: len(seq) for topic, seq in by_topic.items()} == {
        f"flood/{i}": per_publisher for i in range(publishers)}
    assert all(seq == list(range(per_publisher)) for seq in by_topic.values())
    sub.close()
