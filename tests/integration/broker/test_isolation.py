"""One stuck device never stalls anyone, and the broker's memory stays bounded: a real
``bastion serve``, a QoS 1 subscriber that stops reading next to a healthy one, one
publisher for both."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bastion.mqtt import Connect, PacketDecoder, Suback, Subscribe, Subscription, encode
from support.clients import V311, Client, tls_socket, wait_for
from support.served import ServedBastion


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_a_stuck_subscriber_stalls_nobody_and_memory_stays_bounded(
        served: Callable[..., ServedBastion]) -> None:
    server = served()
    stuck_device, healthy_device, pub_device = server.devices("stuck", "healthy", "pub")
    port = server.start().port
    assert server.pid
    stuck = tls_socket(stuck_device, port, ca=stuck_device.ca)
    stuck.sendall(encode(Connect("stuck", keep_alive=600), 4))
    stuck.sendall(encode(Subscribe(1, (Subscription("fleet/#", 1),)), 4))
    decoder, answers = PacketDecoder(version=4), []
    while len(answers) < 2:  # CONNACK and SUBACK; from now on it reads nothing
        decoder.feed(stuck.recv(4096))
        answers.extend(iter(decoder.next_packet, None))
    assert isinstance(answers[1], Suback)
    healthy = Client(healthy_device, port, version=V311, client_id="healthy").connect()
    healthy.subscribe("fleet/#", qos=1)
    pub = Client(pub_device, port, version=V311, client_id="pub")
    pub.paho.max_inflight_messages_set(100)
    pub.connect()
    before = rss_bytes(server.pid)
    total, filler = 20_000, b"." * 2_000  # 40 MB for each subscriber
    started = time.monotonic()
    infos = []
    for n in range(total):
        infos.append(pub.publish("fleet/data", b"%06d" % n + filler, qos=1, wait=False))
        if n % 200 == 199:  # paced to what one paho client here reads
            wait_for(lambda sent=n: len(healthy.messages.queue) + 300 > sent, 20,
                     "the healthy one")
    got = [int(m.payload[:6]) for m in healthy.expect(total, timeout=60)]
    elapsed = time.monotonic() - started
    assert got == list(range(total))
    wait_for(lambda: all(info.mid in pub.acks for info in infos), 10, "every PUBACK")
    grown = rss_bytes(server.pid) - before
    # The stuck one holds its window and its queue (1,100 x 2 KB) and the socket buffers;
    # nothing else piles up.
    assert grown < 32 * 1024 * 1024, f"the broker grew by {grown / 2**20:.0f} MiB"
    assert elapsed < 30, f"{total} messages took {elapsed:.1f} s"
    stuck.close()
    healthy.disconnect()
    pub.disconnect()
