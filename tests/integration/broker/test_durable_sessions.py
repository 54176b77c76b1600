"""Nothing acknowledged is lost: persistent sessions and retained messages survive
``kill -9`` and a clean restart of a real ``bastion serve``, on SQLite and PostgreSQL.

Real clients (paho, MQTT 3.1.1 and 5) over mutual TLS; the broker process is killed with
SIGKILL while a publisher is still sending, so some PUBLISH packets are in the broker's
hands, unacknowledged, when it dies. Every message the publisher got a PUBACK for must
reach the persistent subscriber after the restart, in order.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from support.clients import V5, V311, Client, DeviceFiles, wait_for
from support.databases import require_postgres
from support.served import ServedBastion

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture
def database(request: pytest.FixtureRequest, fresh_database_url: Callable[[str], str]
             ) -> str:
    backend = request.param
    if backend == "sqlite":
        return ""
    require_postgres()
    return fresh_database_url("postgresql")


def subscriber(device: DeviceFiles, port: int, version: int) -> Client:
    """The persistent session: 3.1.1 clean session 0, or MQTT 5 session expiry 3600."""
    if version == V5:
        return Client(device, port, version=V5, client_id="durable-sub", clean=False,
                      session_expiry=3600)
    return Client(device, port, version=V311, client_id="durable-sub", clean=False)


def sequence_numbers(client: Client, expected: set[int], timeout: float) -> list[int]:
    """Drain ``client`` until every number in ``expected`` arrived; returns all received,
    in arrival order."""
    got: list[int] = []
    deadline = time.monotonic() + timeout
    while not expected <= set(got):
        if time.monotonic() > deadline:
            missing = sorted(expected - set(got))
            raise AssertionError(f"{len(missing)} acknowledged messages never arrived, "
                                 f"e.g. {missing[:10]} (got {len(got)})")
        try:
            message = client.messages.get(timeout=0.5)
        except queue.Empty:
            continue
        got.append(int(message.payload))
    return got


@pytest.mark.parametrize("database", BACKENDS, indirect=True)
@pytest.mark.parametrize("version", [V311, V5], ids=["mqtt311", "mqtt5"])
def test_acknowledged_messages_survive_kill_9(served: Callable[..., ServedBastion],
                                              database: str, version: int) -> None:
    server = served(database)
    sub_device, pub_device, late_device = server.devices("sub-dev", "pub-dev", "late-dev")
    port = server.start().port

    sub = subscriber(sub_device, port, version).connect()
    assert sub.subscribe("fleet/durable", qos=1)[0] == 1
    sub.disconnect()  # offline: everything from now on is queued for it

    pub = Client(pub_device, port, version=version, client_id="durable-pub")
    pub.paho.max_inflight_messages_set(100)
    pub.connect()
    pub.publish("fleet/config", b"retained-1", qos=1, retain=True)
    acked: set[int] = set()
    sent: dict[int, int] = {}  # mid -> sequence number
    stop = threading.Event()

    def on_publish(client: object, userdata: object, mid: int, rc: object,
                   props: object) -> None:
        number = sent.get(mid)
        if number is not None:
            acked.add(number)

    def publish_until_stopped() -> None:
        number = 0
        while not stop.is_set() and number < 20_000:
            info = pub.paho.publish("fleet/durable", str(number).encode(), 1)
            sent[info.mid] = number
            number += 1
            if number % 50 == 0:
                time.sleep(0.001)

    pub.paho.on_publish = on_publish
    thread = threading.Thread(target=publish_until_stopped, daemon=True)
    thread.start()
    wait_for(lambda: len(acked) >= 1_500, 30, "1,500 acknowledged messages")
    server.kill()  # SIGKILL while the publisher is mid-stream
    stop.set()
    thread.join(5)
    pub.paho.loop_stop()
    acknowledged = set(acked)
    assert len(acknowledged) >= 1_500

    port = server.start().port
    sub = subscriber(sub_device, port, version).connect()
    assert sub.session_present is True
    got = sequence_numbers(sub, acknowledged, timeout=60)
    # In order: the first arrival of each number is ascending.
    first_seen = list(dict.fromkeys(got))
    assert first_seen == sorted(first_seen)
    # The retained message survived too, for a new subscriber.
    late = Client(late_device, port, version=version).connect()
    late.subscribe("fleet/config", qos=1)
    assert late.expect(1, timeout=5)[0].payload == b"retained-1"
    late.disconnect()
    sub.disconnect()
    assert server.stop() == 0


@pytest.mark.parametrize("database", BACKENDS, indirect=True)
def test_queued_messages_and_retained_survive_a_clean_restart(
        served: Callable[..., ServedBastion], database: str) -> None:
    server = served(database)
    sub_device, pub_device, late_device = server.devices("sub-dev", "pub-dev", "late-dev")
    port = server.start().port
    sub = subscriber(sub_device, port, V5).connect()
    sub.subscribe("fleet/queued", qos=1)
    sub.disconnect()
    pub = Client(pub_device, port, version=V5, client_id="queued-pub")
    pub.paho.max_inflight_messages_set(100)
    pub.connect()
    infos = [pub.publish("fleet/queued", str(n).encode(), qos=1, wait=False)
             for n in range(5_000)]
    wait_for(lambda: all(info.mid in pub.acks for info in infos), 60, "5,000 PUBACKs")
    pub.publish("fleet/state", b"on", qos=1, retain=True)
    pub.disconnect()
    assert server.stop() == 0

    port = server.start().port
    sub = subscriber(sub_device, port, V5).connect()
    assert sub.session_present is True
    got = sequence_numbers(sub, set(range(5_000)), timeout=60)
    assert list(dict.fromkeys(got)) == list(range(5_000))
    late = Client(late_device, port, version=V5).connect()
    late.subscribe("fleet/state", qos=1)
    assert late.expect(1, timeout=5)[0].payload == b"on"
    late.disconnect()
    sub.disconnect()
    assert server.stop() == 0



def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("database", BACKENDS, indirect=True)
def test_an_offline_session_spills_to_the_store_and_memory_stays_bounded(
        served: Callable[..., ServedBastion], database: str) -> None:
    # 30,000 deliveries of 2 KB (60 MB, under the 64 MiB max_queued_bytes) for a session
    # that is away: memory holds max_queued_messages (1,000) of them, the store the rest;
    # all come back, in order.
    server = served(database)
    sub_device, pub_device = server.devices("sub-dev", "pub-dev")
    port = server.start().port
    assert server.pid
    sub = subscriber(sub_device, port, V311).connect()
    sub.subscribe("fleet/bulk", qos=1)
    sub.disconnect()
    pub = Client(pub_device, port, version=V311, client_id="bulk-pub")
    pub.paho.max_inflight_messages_set(100)
    pub.connect()
    before = rss_bytes(server.pid)
    total, filler = 30_000, b"." * 1_994
    infos = [pub.publish("fleet/bulk", b"%06d" % n + filler, qos=1, wait=False)
             for n in range(total)]
    wait_for(lambda: all(i.mid in pub.acks for i in infos), 60, "every PUBACK")
    grown = rss_bytes(server.pid) - before
    assert grown < 32 * 1024 * 1024, f"the broker grew by {grown / 2**20:.0f} MiB"
    pub.disconnect()

    sub = subscriber(sub_device, port, V311).connect()
    assert sub.session_present is True
    got = [int(m.payload[:6]) for m in sub.expect(total, timeout=40)]
    assert got == list(range(total))
    sub.disconnect()
