"""Two nodes behind a real HAProxy, configured as ``docs/cluster.md`` says ("Three nodes
behind HAProxy"): the configuration is read from that file, with loopback addresses,
free ports, the test's CA and short check timings put in. The third server has no node.

Devices connect through HAProxy from 127.0.0.2 and 127.0.0.3, HAProxy itself reaches the
nodes from 127.0.0.1, and a policy allows ``iot:Connect`` only from 127.0.0.2/32: only
the PROXY v2 header can tell the nodes which device is which. HAProxy's state (which
server is up, after which check, with how many connections) comes from its stats socket.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import socket
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.controlplane import provision_device
from bastion.store import Store
from support.clients import V5, Client, DeviceFiles, wait_for
from support.cluster import ServedFleet
from support.served import ServedBastion

HAPROXY = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
pytestmark = pytest.mark.skipif(HAPROXY is None, reason="no haproxy (make test installs it)")

CLUSTER_DOC = Path(__file__).parents[3] / "docs" / "cluster.md"
DEVICE, STRANGER = "127.0.0.2", "127.0.0.3"
PROXIED = {"mqtt": {"proxy_protocol": True, "proxy_trusted": ["127.0.0.1"]}}
FROM_DEVICE_ONLY = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": "iot:Connect", "Resource": "*",
    "Condition": {"IpAddress": {"aws:SourceIp": f"{DEVICE}/32"}}}]})
NOT_AUTHORIZED = 0x87


def documented_config() -> str:
    """The one ``haproxy`` block of docs/cluster.md."""
    blocks = re.findall(r"^```haproxy\n(.*?)^```", CLUSTER_DOC.read_text(),
                        re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "docs/cluster.md must hold one haproxy block"
    return str(blocks[0])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def api_port(node: ServedBastion) -> int:
    return int(node.url.rsplit(":", 1)[1])


def localized(config: str, ports: dict[str, tuple[int, int]], mqtt: int, api: int,
              ca: Path) -> str:
    """``config`` with ``ports`` (node name → MQTT and API port on 127.0.0.1) for the
    nodes' addresses, the frontends on ``mqtt`` and ``api``, the CA at ``ca`` and checks
    every 500 ms."""
    def server(match: re.Match[str]) -> str:
        name, port = match.group(1), int(match.group(2))
        mqtt_port, api_port = ports[name]
        line = match.group(0).replace(f"10.0.1.2{name[-1]}:{port}",
                                      f"127.0.0.1:{mqtt_port if port == 8883 else api_port}")
        return line.replace("check port 8443", f"check port {api_port}")

    replaced = re.sub(r"server (node\d) 10\.0\.1\.2\d:(8883|8443).*", server, config)
    for old, new in (("bind :8883", f"bind 127.0.0.1:{mqtt}"),
                     ("bind :8443", f"bind 127.0.0.1:{api}"),
                     ("ca-file /etc/haproxy/bastion-ca.pem", f"ca-file {ca}"),
                     ("inter 2s fall 3 rise 2", "inter 500ms fall 2 rise 1")):
        assert old in replaced, old
        replaced = replaced.replace(old, new)
    assert "10.0.1." not in replaced and "/etc/" not in replaced, replaced
    return replaced


class HAProxy:
    """``haproxy -db`` on a configuration file, and its stats socket."""

    def __init__(self, directory: Path, config: str) -> None:
        self.socket = directory / "haproxy.sock"
        self.path = directory / "haproxy.cfg"
        # In place of Debian's global and defaults sections: logs to stdout (the log
        # file below), and the stats socket.
        self.path.write_text(f"global\n    log stdout format raw local0\n"
                             f"    stats socket {self.socket} mode 600 level admin\n\n"
                             f"defaults\n    log global\n\n{config}")
        assert HAPROXY is not None
        checked = subprocess.run([HAPROXY, "-c", "-f", str(self.path)], capture_output=True,
                                 text=True, timeout=30, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "WARNING" not in checked.stdout + checked.stderr, checked.stdout + checked.stderr
        self.log = (directory / "haproxy.log").open("wb")
        self.process = subprocess.Popen([HAPROXY, "-db", "-f", str(self.path)],
                                        stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)

    def servers(self, backend: str = "bastion_mqtt") -> dict[str, dict[str, str]]:
        """``show stat`` for ``backend``'s servers, by name (``status``, ``check_status``,
        ``scur``: open connections, ``stot``: connections so far)."""
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect(str(self.socket))
            except (FileNotFoundError, ConnectionRefusedError):
                return {}  # not listening yet
            sock.sendall(b"show stat\n")
            text = b"".join(iter(lambda: sock.recv(65536), b"")).decode()
        rows = csv.DictReader(text.removeprefix("# ").splitlines())
        return {row["svname"]: row for row in rows
                if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_for_status(self, wanted: dict[str, str], timeout: float = 10.0) -> None:
        """Wait until each named server of the MQTT backend has the ``status`` wanted."""
        def reached() -> bool:
            servers = self.servers()
            return bool(servers) and all(servers[name]["status"] == status
                                         for name, status in wanted.items())
        wait_for(reached, timeout, f"HAProxy to see {wanted}")

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture
def fleet_behind_haproxy(served_fleet: ServedFleet, tmp_path: Path
                         ) -> Iterator[tuple[ServedFleet, HAProxy, int, int]]:
    """node1 and node2 started behind HAProxy; yields the fleet, HAProxy and its MQTT and
    API ports."""
    nodes = [served_fleet.node(name, PROXIED) for name in ("node1", "node2")]
    for node in nodes:
        node.start()
    ports = {name: (node.port, api_port(node)) for name, node in zip(("node1", "node2"), nodes,
                                                                    strict=True)}
    ports["node3"] = (free_port(), free_port())  # nothing listens there
    mqtt, api = free_port(), free_port()
    config = localized(documented_config(), ports, mqtt, api,
                       nodes[0].data / "ca" / "root-ca.cert.pem")
    haproxy = HAProxy(tmp_path, config)
    try:
        yield served_fleet, haproxy, mqtt, api
    finally:
        haproxy.close()


def register_device(node: ServedBastion) -> DeviceFiles:
    """A device whose certificate's policy allows it to connect from 127.0.0.2 only."""
    plane = node.plane()
    try:
        plane.policies.create_policy("from-device-only", FROM_DEVICE_ONLY)
        files = provision_device(plane, node.datadir, "roamer", node.root / "devices",
                                 policy_name="from-device-only")
    finally:
        plane.close()
    return DeviceFiles("roamer", files.cert_path, files.key_path, files.root_ca_path,
                       files.certificate_id, files.certificate_arn)


def through(port: int, device: DeviceFiles, client_id: str, source: str) -> Client:
    client = Client(device, port, version=V5, client_id=client_id)
    return client.connect(expect_success=False, bind_address=source)


def test_nodes_behind_haproxy_see_the_device_and_leave_rotation_when_stopped(
        fleet_behind_haproxy: tuple[ServedFleet, HAProxy, int, int]) -> None:
    fleet, haproxy, mqtt, api = fleet_behind_haproxy
    one = fleet.nodes["node1"]
    device = register_device(one)
    # The readiness check passes (L7OK: an HTTP answer of 200) on both nodes; the server
    # without a node is out.
    haproxy.wait_for_status({"node1": "UP", "node2": "UP", "node3": "DOWN"})
    servers = haproxy.servers()
    assert [servers[n]["check_status"] for n in ("node1", "node2")] == ["L7OK", "L7OK"]
    assert haproxy.servers("bastion_api")["node3"]["status"] == "DOWN"  # tracks it

    # From 127.0.0.2 the device may connect, on whichever node HAProxy picks: leastconn
    # puts the second connection on the other node.
    first = through(mqtt, device, "roamer-1", DEVICE)
    assert first.connack == 0
    first_on = [n for n, row in haproxy.servers().items() if row["scur"] == "1"]
    second = through(mqtt, device, "roamer-2", DEVICE)
    assert second.connack == 0
    assert [haproxy.servers()[n]["scur"] for n in ("node1", "node2")] == ["1", "1"]
    # From 127.0.0.3 it may not; HAProxy's own 127.0.0.1 is not allowed either.
    stranger = through(mqtt, device, "roamer-3", STRANGER)
    assert stranger.connack == NOT_AUTHORIZED
    stranger.stop()

    with Store.open(fleet.database_url) as store:
        def journaled() -> dict[str, str]:
            with store.transaction() as uow:
                return {row.client_id: row.source_ip
                        for row in uow.connections.of_certificate(device.certificate_id)}
        wait_for(lambda: {"roamer-1", "roamer-2"} <= journaled().keys(), 10,
                 "both connections journaled")
        assert journaled()["roamer-1"] == journaled()["roamer-2"] == DEVICE

    # The API port passes through to a node, TLS end to end.
    context = ssl.create_default_context(cafile=str(device.ca))
    with urllib.request.urlopen(f"https://127.0.0.1:{api}/_bastion/health/ready",
                                context=context, timeout=5) as answer:
        assert answer.status == 200

    # A node that stops leaves the rotation; its device reconnects to the other node.
    on_two = first if first_on == ["node2"] else second
    on_two.connected.clear()
    fleet.nodes["node2"].stop()
    haproxy.wait_for_status({"node1": "UP", "node2": "DOWN"})
    wait_for(lambda: on_two.connected.is_set() and on_two.connack == 0, 20,
             "the device back through HAProxy")
    before = haproxy.servers()["node2"]["stot"]
    late = [through(mqtt, device, f"late-{n}", DEVICE) for n in range(3)]
    assert [client.connack for client in late] == [0, 0, 0]
    assert haproxy.servers()["node2"]["stot"] == before
    # node1 has them all: the one it had, the one that moved, the three new ones.
    wait_for(lambda: haproxy.servers()["node1"]["scur"] == "5", 5, "five devices on node1")
    for client in (first, second, *late):
        client.disconnect()
