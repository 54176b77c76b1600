"""One client id, two nodes: a CONNECT on the second takes the session over from the first
(never two live owners), and a persistent session resumes there with its queued
messages. Two real Bastion nodes sharing the machine's PostgreSQL and NATS (JetStream),
real mutual-TLS paho clients."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.cluster import ClusterNode
from bastion.cluster._status import read_status
from bastion.config import ClusterConfig, Config, MQTTConfig, StoreConfig
from bastion.datadir import DataDir
from support.clients import V5, Client, DeviceFiles, wait_for
from support.cluster import (
    LEASE,
    NumberedPublisher,
    ServedFleet,
    connect_when_lease_ends,
    drain_numbers,
    drop_nats_state,
    provision_fleet,
)
from support.databases import require_postgres
from support.health import probe
from support.running import RunningBastion

NATS_URL = "nats://127.0.0.1:4222"


@dataclasses.dataclass
class Fleet:
    datadir: DataDir
    config: Config
    devices: dict[str, DeviceFiles]
    nodes: list[RunningBastion]

    def start(self, node_id: str) -> RunningBastion:
        config = dataclasses.replace(
            self.config, cluster=dataclasses.replace(self.config.cluster, node_id=node_id))
        node = RunningBastion(config, self.datadir).start()
        self.nodes.append(node)
        return node


@pytest.fixture
def fleet(tmp_path: Path, fresh_database_url: Callable[[str], str]) -> Iterator[Fleet]:
    require_postgres()
    url = fresh_database_url("postgresql")
    config = Config(
        mqtt=MQTTConfig(host="127.0.0.1", port=0), store=StoreConfig(database_url=url),
        cluster=ClusterConfig(nats_url=NATS_URL, name=f"t{uuid.uuid4().hex[:12]}",
                              lease=LEASE))
    config = dataclasses.replace(config, api=dataclasses.replace(config.api, enabled=False))
    datadir, devices = provision_fleet(config, tmp_path)
    made = Fleet(datadir, config, devices, [])
    yield made
    for node in made.nodes:
        node.stop()
    _drop_nats_state(config.cluster.name)
    gc.collect()  # what a test left open is reported against that test


def _drop_nats_state(name: str) -> None:
    drop_nats_state(name)


def test_a_connect_on_another_node_takes_the_session_over(fleet: Fleet) -> None:
    one, two = fleet.start("node-1"), fleet.start("node-2")
    roamer = fleet.devices["roamer"]
    first = Client(roamer, one.port, version=V5, client_id="roamer").connect()
    second = Client(roamer, two.port, version=V5, client_id="roamer")
    started = time.monotonic()
    second.connect()
    assert first.disconnected.wait(1.0), "the first connection still lives after 1 s"
    assert time.monotonic() - started < 1.5
    assert first.disconnect_reason == 0x8E  # Session taken over
    assert second.paho.is_connected()
    # Each node agrees on who holds it now.
    wait_for(lambda: "roamer" not in one.app.broker.sessions, 2, "node-1 to let go")
    assert two.call(lambda: two.app.broker.sessions["roamer"].connection is not None)
    second.disconnect()


def test_a_busy_node_keeps_its_sessions(fleet: Fleet) -> None:
    # node-1's event loop is starved for longer than its lease (as when tens of thousands
    # of connections close at once on two cores): it still turns, but each turn takes
    # a second and a half, so a renewal made on the loop would come too late again and
    # again.
    # The lease is renewed from a thread of its own: the node must not fence itself and
    # drop its devices, and the other nodes must see its lease running all along.
    one = fleet.start("node-1")
    device = Client(fleet.devices["roamer"], one.port, version=V5, client_id="roamer",
                    clean=False, session_expiry=3600).connect()
    device.subscribe("fleet/roamer/cmd", qos=1)
    until = time.monotonic() + LEASE * 1.5
    done = threading.Event()

    def starve() -> None:
        if time.monotonic() >= until:
            done.set()
            return
        time.sleep(1.5)
        one.loop.call_soon(starve)

    one.loop.call_soon_threadsafe(starve)
    time.sleep(LEASE)  # node-1's lease would have run out without a renewal
    seen = asyncio.run(read_status(NATS_URL, fleet.config.cluster.name)).nodes
    assert [n.node for n in seen] == ["node-1"]  # its lease runs, renewed lately
    assert time.time() - seen[0].seen < LEASE / 3 + 1
    assert done.wait(LEASE)
    time.sleep(2.0)  # a turn of node-1's watch on its lease
    assert not one.call(lambda: one.app.component(ClusterNode).fenced)
    assert not device.disconnected.is_set(), "node-1 dropped its device"
    device.publish("fleet/roamer/cmd", b"still here", qos=1)
    assert [m.payload for m in device.expect(1)] == [b"still here"]
    device.disconnect()


def test_a_persistent_session_resumes_on_another_node_with_its_queue(fleet: Fleet) -> None:
    one, two = fleet.start("node-1"), fleet.start("node-2")
    roamer, sender = fleet.devices["roamer"], fleet.devices["sender"]
    sub = Client(roamer, one.port, version=V5, client_id="roamer", clean=False,
                 session_expiry=3600).connect()
    sub.subscribe("fleet/roamer/cmd", qos=1)
    sub.disconnect()  # parked on node-1, offline
    pub = Client(sender, one.port, version=V5, client_id="sender").connect()
    for n in range(100):
        pub.publish("fleet/roamer/cmd", str(n).encode(), qos=1)  # each PUBACKed
    pub.disconnect()
    # The device comes back through the other node.
    sub = Client(roamer, two.port, version=V5, client_id="roamer", clean=False,
                 session_expiry=3600).connect()
    assert sub.session_present is True
    got = [int(m.payload) for m in sub.expect(100, timeout=10)]
    assert got == list(range(100))
    wait_for(lambda: "roamer" not in one.app.broker.sessions, 2, "node-1 to let go")
    sub.disconnect()


class PrivateNats:
    """A nats-server with JetStream of this test's own, to be stopped and started."""

    def __init__(self, root: Path) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"nats://127.0.0.1:{self.port}"
        self._store = root / "jetstream"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port),
             "-sd", str(self._store)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import socket

        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("nats-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None


@pytest.fixture
def private(tmp_path: Path, fleet: Fleet) -> Iterator[PrivateNats]:
    """A NATS of this test's own, started; the fleet's nodes stop before it does."""
    server = PrivateNats(tmp_path)
    server.start()
    yield server
    for running in fleet.nodes:
        running.stop()
    fleet.nodes.clear()
    server.stop()


def test_without_nats_new_connects_are_refused_and_live_ones_go_on(
        fleet: Fleet, private: PrivateNats) -> None:
    fleet.config = dataclasses.replace(
        fleet.config, cluster=dataclasses.replace(fleet.config.cluster,
                                                  nats_url=private.url),
        api=dataclasses.replace(fleet.config.api, enabled=True, host="127.0.0.1", port=0))
    node = fleet.start("node-1")

    def ready() -> tuple[int, dict[str, Any]]:
        return probe(node.app.api_port, fleet.datadir.ca_cert_path)

    assert ready() == (200, {"status": "ready", "checks": {
        "database": "ok", "mqtt": "ok", "cluster": "ok"}})
    roamer, sender = fleet.devices["roamer"], fleet.devices["sender"]
    live = Client(roamer, node.port, version=V5, client_id="roamer").connect()
    live.subscribe("fleet/roamer/#", qos=1)
    private.stop()
    wait_for(lambda: not node.call(
        lambda: node.app.component(ClusterNode).connected), 5, "NATS to be gone")
    refused = Client(sender, node.port, version=V5, client_id="sender")
    started = time.monotonic()
    refused.connect(expect_success=False)
    assert refused.connack == 0x88  # Server unavailable
    assert time.monotonic() - started < 2
    refused.stop()
    status, body = ready()  # a load balancer's probe sends devices elsewhere
    assert status == 503 and body["checks"]["cluster"] == "NATS unreachable"
    live.publish("fleet/roamer/zero", b"still here", qos=0)  # local traffic goes on
    assert live.expect(1)[0].payload == b"still here"
    # QoS 1 is delivered here at once, but acknowledged only once the cluster's stream
    # has it (a persistent session on another node may need it): nothing acknowledged
    # is lost with this node.
    info = live.publish("fleet/roamer/one", b"kept", qos=1, wait=False)
    assert live.expect(1)[0].payload == b"kept"
    time.sleep(0.5)
    assert info.mid not in live.acks
    private.start()  # back: the node reconnects and accepts CONNECTs again
    wait_for(lambda: node.call(lambda: node.app.component(ClusterNode).connected), 10,
             "NATS to be back")
    wait_for(lambda: info.mid in live.acks, 10, "the held PUBACK")
    assert ready()[0] == 200
    again = Client(sender, node.port, version=V5, client_id="sender").connect()
    again.disconnect()
    live.disconnect()


def test_a_revocation_through_one_node_closes_the_session_on_another(fleet: Fleet) -> None:
    one, two = fleet.start("node-1"), fleet.start("node-2")
    roamer = fleet.devices["roamer"]
    client = Client(roamer, two.port, version=V5, client_id="roamer").connect()
    started = time.monotonic()
    one.app.plane.identity.update_certificate(roamer.certificate_id, "REVOKED")
    assert client.disconnected.wait(1.0), "node-2 kept the revoked device past 1 s"
    assert client.disconnect_reason == 0x87
    assert time.monotonic() - started < 1.5
    again = Client(roamer, two.port, version=V5, client_id="roamer")
    again.connect(expect_success=False)
    assert again.connack == 0x87
    again.stop()


def test_a_node_cut_off_during_a_revocation_applies_it_when_it_is_back(
        fleet: Fleet, private: PrivateNats) -> None:
    fleet.config = dataclasses.replace(
        fleet.config, cluster=dataclasses.replace(fleet.config.cluster,
                                                  nats_url=private.url))
    one, two = fleet.start("node-1"), fleet.start("node-2")
    roamer = fleet.devices["roamer"]
    client = Client(roamer, two.port, version=V5, client_id="roamer").connect()
    private.stop()  # the event of the revocation below reaches nobody
    one.app.plane.identity.update_certificate(roamer.certificate_id, "REVOKED")
    assert not client.disconnected.wait(0.5)
    private.start()  # node-2 reconnects and re-checks its live sessions
    assert client.disconnected.wait(10), "node-2 never applied the revocation"
    assert client.disconnect_reason == 0x87


def settled(node: RunningBastion) -> bool:
    relay = node.app.component(ClusterNode).relay
    return relay is not None and relay.settled


def test_messages_reach_subscribers_on_every_node(fleet: Fleet) -> None:
    one, two = fleet.start("node-1"), fleet.start("node-2")
    roamer, sender = fleet.devices["roamer"], fleet.devices["sender"]
    here = Client(sender, one.port, version=V5, client_id="sender").connect()
    there = Client(roamer, two.port, version=V5, client_id="roamer").connect()
    there.subscribe("fleet/+/telemetry", qos=1)
    here.subscribe("fleet/#", qos=1)
    wait_for(lambda: two.call(lambda: settled(two)) and one.call(lambda: settled(one)), 5,
             "both nodes' NATS interest")
    for n in range(50):
        here.publish(f"fleet/d{n % 5}/telemetry", str(n).encode(), qos=n % 2)
    # Across the nodes, and on the publisher's own node once (no echo back from NATS).
    assert sorted(int(m.payload) for m in there.expect(50, timeout=5)) == list(range(50))
    assert sorted(int(m.payload) for m in here.expect(50, timeout=5)) == list(range(50))
    here.expect_none(0.3)
    # Retained on one node is retained on the other, for a subscriber that comes later.
    here.publish("fleet/config", b"v2", qos=1, retain=True)
    wait_for(lambda: two.call(lambda: two.app.broker.retained.get("fleet/config")) is not None,
             5, "the retained message on node-2")
    late = Client(sender, two.port, version=V5, client_id="late").connect()
    late.subscribe("fleet/config", qos=1)
    assert late.expect(1)[0].payload == b"v2"
    for client in (here, there, late):
        client.disconnect()


def test_a_killed_node_loses_no_acknowledged_message_of_a_persistent_session(
        served_fleet: ServedFleet) -> None:
    # Real `bastion serve` processes: node-1 holds the parked session and its queue and is
    # killed with SIGKILL; the device comes back through node-2 and gets everything.
    first, second = served_fleet.node("node-1"), served_fleet.node("node-2")
    roamer, sender = first.devices("roamer", "sender")
    first.start()
    second.start()
    sub = Client(roamer, first.port, version=V5, client_id="roamer", clean=False,
                 session_expiry=3600).connect()
    sub.subscribe("fleet/roamer/cmd", qos=1)
    sub.disconnect()
    pub = Client(sender, first.port, version=V5, client_id="sender").connect()
    for n in range(200):
        pub.publish("fleet/roamer/cmd", str(n).encode(), qos=1)  # each PUBACKed
    first.kill()
    # Until node-1's lease runs out (LEASE s) node-2 cannot tell it from a node cut off by a
    # partition: the device is refused (0x88) and retries, as devices do.
    sub = connect_when_lease_ends(roamer, second.port, "roamer")
    assert sub.session_present is True
    assert [int(m.payload) for m in sub.expect(200, timeout=10)] == list(range(200))
    sub.disconnect()


def test_cluster_status_lists_the_nodes_and_their_health(fleet: Fleet) -> None:
    one, two = fleet.start("node-1"), fleet.start("node-2")
    client = Client(fleet.devices["roamer"], two.port, version=V5, client_id="roamer").connect()
    # The CLI reads the data directory's config: write the fleet's into it.
    from support.served import with_settings

    cluster = fleet.config.cluster
    fleet.datadir.config_path.write_text(with_settings(
        fleet.datadir.config_path.read_text(),
        {"store": {"database_url": fleet.config.store.database_url},
         "cluster": {"nats_url": cluster.nats_url, "name": cluster.name}}))
    wait_for(lambda: _status(fleet)["nodes"] and any(
        n["connections"] for n in _status(fleet)["nodes"]), 10, "a heartbeat with the client")
    report = _status(fleet)
    assert report["healthy"] and report["nats"]["jetstream"] and report["store"]["ok"]
    assert {n["node"]: n["connections"] for n in report["nodes"]} == {"node-1": 0, "node-2": 1}
    assert "password" not in json.dumps(report["store"])
    client.disconnect()
    one.stop()  # a node that stops cleanly leaves the list at once
    fleet.nodes.remove(one)
    assert [n["node"] for n in _status(fleet)["nodes"]] == ["node-2"]


def _status(fleet: Fleet) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "bastion", "cluster", "status", "--json",
                           "--data-dir", str(fleet.datadir.path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def test_a_shared_subscription_is_balanced_across_nodes(fleet: Fleet) -> None:
    one, two = fleet.start("node-1"), fleet.start("node-2")
    roamer, sender = fleet.devices["roamer"], fleet.devices["sender"]
    workers = [Client(roamer, one.port, version=V5, client_id="worker-1").connect(),
               Client(roamer, two.port, version=V5, client_id="worker-2").connect()]
    for worker in workers:
        worker.subscribe("$share/workers/jobs/#", qos=1)
    watcher = Client(roamer, two.port, version=V5, client_id="watcher").connect()
    watcher.subscribe("jobs/#", qos=1)
    pub = Client(sender, one.port, version=V5, client_id="sender").connect()
    wait_for(lambda: two.call(lambda: settled(two)) and one.call(lambda: settled(one)), 5,
             "both nodes' NATS interest")
    for n in range(40):
        pub.publish(f"jobs/{n}", str(n).encode(), qos=1)
    assert sorted(int(m.payload) for m in watcher.expect(40)) == list(range(40))
    got: list[list[int]] = [[], []]
    deadline = time.monotonic() + 5
    while len(got[0]) + len(got[1]) < 40 and time.monotonic() < deadline:
        for mine, worker in zip(got, workers, strict=True):
            with contextlib.suppress(queue.Empty):
                mine.append(int(worker.messages.get(timeout=0.05).payload))
    # Each message reached the group once; each node's member took a share.
    assert sorted(got[0] + got[1]) == list(range(40)), got
    assert got[0] and got[1], got
    for worker in workers:
        worker.expect_none(0.3)
    for client in (*workers, watcher, pub):
        client.disconnect()


# nats-py leaves the sockets of its reconnect attempts into the black hole unclosed (its
# connect attempts time out; the client never closes their writers); uvloop reports them
# when the node's loop closes. They are the NATS client's, not Bastion's.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_partition_never_leaves_two_live_owners(fleet: Fleet, private: PrivateNats) -> None:
    # node-1 reaches NATS through a forwarder the test cuts (bytes vanish, connections stay
    # open: NATS itself still believes node-1 is there). A device on node-1 then comes
    # back through node-2. History: when each of its two connections was live (they must
    # not overlap by more than a second), and every QoS 1 message a publisher on node-2
    # had acknowledged before, during and after the partition (none may be lost).
    from support.tcp_proxy import Partitionable

    cutter = Partitionable(("127.0.0.1", private.port))
    try:
        cluster = fleet.config.cluster
        fleet.config = dataclasses.replace(fleet.config, cluster=dataclasses.replace(
            cluster, nats_url=f"nats://127.0.0.1:{cutter.port}"))
        one = fleet.start("node-1")
        fleet.config = dataclasses.replace(fleet.config, cluster=dataclasses.replace(
            cluster, nats_url=private.url))
        two = fleet.start("node-2")
        roamer, sender = fleet.devices["roamer"], fleet.devices["sender"]
        first = Client(roamer, one.port, version=V5, client_id="roamer", clean=False,
                       session_expiry=3600).connect()
        first.subscribe("fleet/roamer/cmd", qos=1)
        first_up = time.monotonic()
        publisher = NumberedPublisher(sender, two.port, "fleet/roamer/cmd", pause=0.02)
        time.sleep(0.5)
        cutter.cut()
        refused, second, second_up = 0, None, 0.0
        deadline = time.monotonic() + 40
        while second is None and time.monotonic() < deadline:
            attempt = Client(roamer, two.port, version=V5, client_id="roamer", clean=False,
                             session_expiry=3600)
            attempt.connect(expect_success=False)
            if attempt.connack == 0:
                second, second_up = attempt, time.monotonic()
            else:
                assert attempt.connack == 0x88  # the owner may be alive: not yet
                refused += 1
                attempt.stop()
                time.sleep(1.0)
        assert second is not None, "node-2 never took the session over"
        assert refused >= 1  # it waited for node-1's lease to run out
        # History: node-1 gave the device up (DISCONNECT 0x9C, use another server) before
        # node-2 accepted it; at most a second of overlap is allowed, none happened.
        assert first.disconnected.is_set(), "node-1 still serves the device"
        assert first.closed_at < second_up, (
            f"two live owners for {first.closed_at - second_up:.1f} s")
        assert first.closed_at - first_up < LEASE + 1  # within node-1's lease
        assert second.session_present is True
        time.sleep(0.5)
        acked = publisher.stop()
        received: set[int] = set()

        def everything() -> bool:
            drain_numbers(received, first, second)
            return received >= set(acked)

        wait_for(everything, 15, "every acknowledged message")
        assert len(acked) > 100
        cutter.heal()  # node-1 comes back, renews its lease and accepts devices again
        wait_for(lambda: not one.call(lambda: one.app.component(ClusterNode).fenced), 20,
                 "node-1 to be back")
        assert "roamer" not in one.call(lambda: list(one.app.broker.sessions))
        second.disconnect()
    finally:
        cutter.close()