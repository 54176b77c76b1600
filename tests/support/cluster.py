"""A cluster of real ``bastion serve`` processes for tests, and what goes with it."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
import time
import uuid
from pathlib import Path

from bastion.config import Config
from bastion.controlplane import open_control_plane, provision_device
from bastion.datadir import DataDir, init_data_dir
from support.clients import V5, Client, DeviceFiles
from support.served import ServedBastion, Settings

NATS_URL = "nats://127.0.0.1:4222"
LEASE = 9.0
"""The test clusters' lease (15 s by default): shorter waits for a dead node, long enough
that a node starved of CPU by the rest of the suite is not fenced."""


def drop_nats_state(name: str, nats_url: str = NATS_URL) -> None:
    """Delete what a test's cluster made on the shared NATS: its buckets and stream."""
    import nats

    async def drop() -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        for bucket in (f"{name}_sessions", f"{name}_nodes", f"{name}_leader",
                       f"{name}_shared"):
            with contextlib.suppress(Exception):  # nothing to drop
                await js.delete_key_value(bucket)
        for stream in (f"{name}_msgs", f"{name}_detect"):
            with contextlib.suppress(Exception):
                await js.delete_stream(stream)
        await nc.close()

    asyncio.run(drop())


class ServedFleet:
    """``bastion serve`` subprocesses forming one cluster: one PostgreSQL database and
    one cluster name of their own; every node has the first node's secrets."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.root = root
        self.database_url = database_url
        self.name = f"t{uuid.uuid4().hex[:12]}"
        self.nodes: dict[str, ServedBastion] = {}

    def node(self, node_id: str, settings: Settings | None = None) -> ServedBastion:
        """The node ``node_id`` (made on first use, not started).

        :param settings: more of its ``config.toml`` (``{"mqtt": {...}}``), used when it is
            made; the fleet's ``[cluster]`` settings are added to them.
        """
        found = self.nodes.get(node_id)
        if found is not None:
            return found
        wanted = {section: dict(values) for section, values in (settings or {}).items()}
        wanted.setdefault("cluster", {}).update(
            {"nats_url": NATS_URL, "name": self.name, "node_id": node_id, "lease": LEASE})
        made = ServedBastion(self.root / node_id, self.database_url, wanted)
        if self.nodes:
            first = next(iter(self.nodes.values()))
            for part in ("ca", "tls", "master.key"):
                source, target = first.data / part, made.data / part
                if target.is_dir():
                    shutil.rmtree(target)
                elif target.exists():
                    target.unlink()
                (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
        self.nodes[node_id] = made
        return made

    def close(self) -> None:
        for node in self.nodes.values():
            node.kill()
        drop_nats_state(self.name)


def connect_when_lease_ends(device: DeviceFiles, port: int, client_id: str,
                            timeout: float = 30.0, **options: object) -> Client:
    """Connect ``client_id`` (MQTT 5, persistent) to the node on ``port``, retrying while
    it answers 0x88: until a dead node's lease runs out, the session cannot be taken
    (a device retries, as devices do)."""
    deadline = time.monotonic() + timeout
    while True:
        client = Client(device, port, version=V5, client_id=client_id, clean=False,
                        session_expiry=3600, **options)  # type: ignore[arg-type]
        client.connect(expect_success=False)
        if client.connack == 0 or time.monotonic() > deadline:
            assert client.connack == 0, f"CONNACK {client.connack}"
            return client
        assert client.connack == 0x88, f"CONNACK {client.connack}"
        client.stop()
        time.sleep(1.0)


class NumberedPublisher:
    """Publishes 0, 1, 2, ... to ``topic`` at QoS 1 from a thread, each acknowledged
    before the next, until :meth:`stop`; ``acked`` is what the broker acknowledged (the
    history a test checks deliveries against)."""

    def __init__(self, device: DeviceFiles, port: int, topic: str, pause: float = 0.0
                 ) -> None:
        self.acked: list[int] = []
        self._stop = threading.Event()
        self._client = Client(device, port, version=V5, client_id=device.name).connect()
        self._topic = topic
        self._pause = pause
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            self._client.publish(self._topic, str(n).encode(), qos=1)
            self.acked.append(n)
            n += 1
            if self._pause:
                time.sleep(self._pause)

    def stop(self) -> list[int]:
        """Stop after the publish under way; what was acknowledged."""
        self._stop.set()
        self._thread.join(10)
        self._client.disconnect()
        return self.acked


def drain_numbers(received: set[int] | list[int], *clients: Client) -> None:
    """Move what ``clients`` received so far into ``received`` (as numbers)."""
    for client in clients:
        while not client.messages.empty():
            number = int(client.messages.get().payload)
            if isinstance(received, set):
                received.add(number)
            else:
                received.append(number)


OPEN_POLICY = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*",'
               '"Resource":"*"}]}')


def provision_fleet(config: Config, root: Path, names: tuple[str, ...] = ("roamer", "sender")
                    ) -> tuple[DataDir, dict[str, DeviceFiles]]:
    """A data directory for in-process nodes of ``config``'s cluster (``root/data``), and
    devices ``names`` registered in its database, allowed everything."""
    datadir = init_data_dir(root / "data")
    plane = open_control_plane(config, datadir)
    try:
        plane.policies.create_policy("cluster-open", OPEN_POLICY)
        devices = {}
        for name in names:
            files = provision_device(plane, datadir, name, root / "devices",
                                     policy_name="cluster-open")
            devices[name] = DeviceFiles(name, files.cert_path, files.key_path,
                                        files.root_ca_path, files.certificate_id,
                                        files.certificate_arn)
    finally:
        plane.close()
    return datadir, devices
