"""A subscriber that cannot keep up holds its publishers back: nothing acknowledged is
lost, and memory stays bounded."""

from __future__ import annotations

import time

from bastion.mqtt import (
    MQTT_5,
    Connect,
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
