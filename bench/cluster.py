"""Cluster scenarios (issue 14): several ``bastion serve`` nodes serving one fleet.

Theory of operation
-------------------
A :class:`Fleet` is one cluster made for one bench run: a fresh PostgreSQL database
(``bench<hex>``) and a unique cluster name on the machine's NATS, so runs never see each
other's state, and data directories for up to ``nodes`` nodes. The first one is made by
``bastion init``; ``bench/bastion_setup.py`` registers the bench device (and, for the
revocation scenario, devices with certificates of their own) in the shared database, and
``bastion admin create-access-key`` an API key there. The other nodes' directories are
copies of the first (the same CA, TLS key, master key and ``config.toml``) with only
``[cluster] node_id`` changed. :meth:`Fleet.drop` stops the nodes, drops the database and
deletes the cluster's JetStream state: every stream named ``<name>_...`` and every
key-value bucket ``<name>_...`` (``<name>_sessions``, ``<name>_nodes``, ...).

A :class:`FleetSetup` is one way of running that fleet as a broker under test (the
``run.Broker`` protocol: ``start``, ``stop``, ``pid``, ``label``, ``log_tail``), so that
``run.Bench.run`` takes turns, repeats and flags disturbed runs as for the other
scenarios. Its :meth:`~FleetSetup.start` starts ``nodes`` fresh node processes; the
publishers (and every load connection) go to node 1, the subscribers to node 1
(``same-node``) or node 2 (``cross-node``). The broker's CPU is the nodes' plus the NATS
server's (the cluster's message path runs through it), measured part by part; the
PostgreSQL server is not on the message path of these clean sessions and is not counted.

Scenarios (:data:`SCENARIOS`; ``run.py --only cluster`` runs the first four):

* ``cluster-qos0`` / ``cluster-qos1``: the fan-in of ``loadgen.fan_in`` on Mosquitto, one
  Bastion node (SQLite, no cluster), and a 2-node cluster, same node and across nodes.
* ``cluster-latency``: QoS 1 publish-to-delivery latency at a fixed rate, one node against
  the same node of a 2-node cluster (and across nodes, for scale).
* ``cluster-revoke``: devices on node 2, each with its own certificate, revoked one at a
  time through node 1's REST API (boto3, SigV4); the time from the API's 200 to the
  device's connection being closed.
* ``cluster-idle``: ``loadgen.idle_memory`` spread over several nodes (each under its
  open-files limit); RSS of the nodes per connection.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import os
import re
import secrets
import shutil
import sys
import time
import tomllib
from array import array
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import loadgen
import procstat
import report
import wire
from brokers import BrokerError, _Process, _run_setup_step
from clients import Endpoint, IdleClient, LoadError, TlsFiles, client_ssl_context, open_client
from workers import Control, WorkerGroup

NATS_URL = os.environ.get("BENCH_NATS_URL", "nats://127.0.0.1:4222")
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
"""Where the fleet's database is created (``CREATE DATABASE``); its own URL replaces the
database name. SQLAlchemy's form for Bastion is derived from it."""

SCENARIOS = {
    "cluster-qos0": "QoS 0 fan-in: Mosquitto, 1 Bastion node, 2 nodes (same node, across)",
    "cluster-qos1": "QoS 1 fan-in: Mosquitto, 1 Bastion node, 2 nodes (same node, across)",
    "cluster-latency": "QoS 1 latency at a fixed rate: 1 node vs the same node of 2",
    "cluster-revoke": "revocation through node 1's API until node 2 closes the device",
    "cluster-idle": "idle mutual-TLS connections held across several nodes",
}
DEFAULT = ("cluster-qos0", "cluster-qos1", "cluster-latency", "cluster-revoke")
"""What ``--only cluster`` runs: everything but the long idle hold."""
HEADLINE = {
    "cluster-qos0": "delivered_per_s",
    "cluster-qos1": "delivered_per_s",
    "cluster-latency": "p99_ms",
    "cluster-revoke": "p99_ms",
    "cluster-idle": "bytes_per_connection",
}
PER_NODE = 17_000
"""Idle connections per node by default: under the 20,000 open files a process may have
here, with room for the node's own files."""
CLOSE_TIMEOUT = 5.0
"""Seconds a revoked device's connection may stay open before it counts as missed."""

_START_TIMEOUT = 60.0
_READY = re.compile(r"Stop with Ctrl-C")
_MQTTS = re.compile(r"mqtts://(\S+?):(\d+)")
_API = re.compile(r"^\s+api\s+(https?://\S+)$", re.MULTILINE)
_LOGGED = re.compile(r" (?:WARNING|ERROR|CRITICAL) (.*)$")
_EXPECTED = ("is in use by several client ids at once",)
"""Warnings every bench run causes on one node too (all load connections share one
device certificate): not counted."""


class FleetError(BrokerError):
    """The fleet could not be prepared (database, NATS, a setup step); says why."""


# ------------------------------------------------------------------------ the fleet


@dataclass
class Node:
    """One node's data directory and, while it runs, its process and addresses."""

    node_id: str
    data_dir: Path
    process: _Process | None = None
    mqtt: Endpoint | None = None
    api_url: str = ""


class Fleet:
    """One cluster's database, NATS name and node data directories (see the module)."""

    def __init__(self, workdir: Path, name: str, database: str, tls: TlsFiles) -> None:
        self.workdir = workdir
        self.name = name
        self.database = database
        self.tls = tls
        self.executable = str(Path(sys.executable).with_name("bastion"))
        self.nodes: list[Node] = []
        self.access_key: tuple[str, str] | None = None
        self.devices: list[tuple[str, str]] = []
        """(thing name, certificate id) of the revocation devices, in order."""
        self.devices_used = 0
        self.starts = 0

    @classmethod
    def create(cls, workdir: Path, nodes: int, *, devices: int = 0) -> Fleet:
        """Make the database, register the bench device (and ``devices`` more), and the
        data directories of ``nodes`` nodes.

        :raises FleetError: if PostgreSQL, NATS or a setup step fails; nothing is left
            behind then.
        """
        name = f"bench{secrets.token_hex(5)}"
        root = workdir / f"cluster-{name}"
        root.mkdir(parents=True)
        _check_nats()
        _create_database(name)
        device_dir = root / "device"
        fleet = cls(
            root,
            name,
            name,
            TlsFiles(
                str(device_dir / "root-ca.pem"),
                str(device_dir / "bench-device.cert.pem"),
                str(device_dir / "bench-device.key.pem"),
            ),
        )
        try:
            fleet._prepare(nodes, devices)
        except BaseException:
            fleet.drop()
            raise
        return fleet

    def _prepare(self, nodes: int, devices: int) -> None:
        first = self.workdir / "node-1"
        _run_setup_step([self.executable, "init", "--data-dir", str(first)])
        _edit_config(
            first / "config.toml",
            {
                "store": {"database_url": _sqlalchemy_url(self.database)},
                "cluster": {"nats_url": NATS_URL, "name": self.name, "node_id": "node-1"},
            },
        )
        setup = [sys.executable, str(Path(__file__).with_name("bastion_setup.py"))]
        out = Path(self.tls.cert_file).parent
        _run_setup_step([*setup, "--data-dir", str(first), "--out", str(out)])
        _run_setup_step([*setup, "--data-dir", str(first), "--no-drop"])
        if devices:
            listed = _run_setup_step(
                [*setup, "--data-dir", str(first), "--out", str(out), "--devices", str(devices)]
            )
            self.devices = [tuple(d) for d in json.loads(listed.strip().splitlines()[-1])]
        key = _run_setup_step(
            [
                self.executable,
                "admin",
                "create-access-key",
                "--role",
                "admin",
                "--description",
                "bench",
                "--data-dir",
                str(first),
                "--json",
            ]
        )
        made = json.loads(key.strip().splitlines()[-1])
        self.access_key = (made["AccessKeyId"], made["SecretAccessKey"])
        self.nodes = [Node("node-1", first)]
        for k in range(2, nodes + 1):
            data = self.workdir / f"node-{k}"
            shutil.copytree(first, data, ignore=shutil.ignore_patterns("logs"))
            _edit_config(data / "config.toml", {"cluster": {"node_id": f"node-{k}"}})
            self.nodes.append(Node(f"node-{k}", data))

    def device_tls(self, name: str) -> TlsFiles:
        folder = Path(self.tls.cert_file).parent
        return TlsFiles(
            self.tls.ca_file, str(folder / f"{name}.cert.pem"), str(folder / f"{name}.key.pem")
        )

    @property
    def api_ca(self) -> str:
        return str(self.nodes[0].data_dir / "ca" / "root-ca.cert.pem")

    def start(self, count: int) -> list[Node]:
        """Start nodes 1..``count`` (all at once) and wait until each is ready.

        :raises BrokerError: if a node exits or is not ready in time (all are stopped).
        """
        if count > len(self.nodes):
            raise FleetError(f"the fleet has {len(self.nodes)} nodes, not {count}")
        self.starts += 1
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        chosen = self.nodes[:count]
        for node in chosen:
            node.process = _Process(
                [
                    self.executable,
                    "serve",
                    "--data-dir",
                    str(node.data_dir),
                    "--host",
                    "127.0.0.1",
                    "--mqtt-port",
                    "0",
                    "--api-port",
                    "0",
                ],
                self.workdir / f"{node.node_id}-run-{self.starts}.log",
                env=env,
            )
        try:
            for node in chosen:
                assert node.process is not None
                node.process.wait_for_line(_READY, _START_TIMEOUT)
                text = node.process.log_file.read_text(errors="replace")
                mqtt, api = _MQTTS.search(text), _API.search(text)
                if mqtt is None or api is None:
                    raise FleetError(f"{node.node_id} printed no addresses:\n{text[-1000:]}")
                node.mqtt = Endpoint("127.0.0.1", int(mqtt.group(2)), self.tls)
                node.api_url = api.group(1)
        except BrokerError as exc:
            self.stop()
            raise BrokerError(f"{node.node_id}: {exc}") from None
        return chosen

    def stop(self) -> None:
        """Stop every running node (SIGTERM, SIGKILL after a grace period)."""
        for node in self.nodes:
            if node.process is not None:
                node.process.stop()
                node.last = node.process  # type: ignore[attr-defined]
                node.process = None

    def warnings(self, limit: int = 4) -> dict[str, Any]:
        """What the running nodes logged at WARNING or above since they started: the
        count, and the first ``limit`` distinct messages (numbers replaced by N)."""
        count, seen = 0, []
        for node in self.nodes:
            if node.process is None:
                continue
            for line in node.process.log_file.read_text(errors="replace").splitlines():
                found = _LOGGED.search(line)
                if found is None or any(e in line for e in _EXPECTED):
                    continue
                count += 1
                message = f"{node.node_id}: {re.sub(r'[0-9]+', 'N', found.group(1))[:160]}"
                if message not in seen and len(seen) < limit:
                    seen.append(message)
        return {"node_warnings": count, "node_warning_examples": seen}

    def log_tail(self) -> str:
        tails = []
        for node in self.nodes:
            process = node.process or getattr(node, "last", None)
            if process is not None:
                tails.append(f"  {node.node_id}:\n{process.log_tail()}")
        return "\n".join(tails)

    def drop(self) -> None:
        """Stop the nodes, drop the database, delete the cluster's NATS state. With
        ``BENCH_CLUSTER_LOGS=DIR`` in the environment the nodes' logs are kept there."""
        self.stop()
        if keep := os.environ.get("BENCH_CLUSTER_LOGS"):
            target = Path(keep) / self.name
            target.mkdir(parents=True, exist_ok=True)
            for log in self.workdir.glob("node-*-run-*.log"):
                shutil.copy2(log, target / log.name)
        try:
            _drop_database(self.database)
        except Exception as exc:  # noqa: BLE001 - reported, the rest still goes
            print(f"   could not drop database {self.database}: {exc}", flush=True)
        try:
            _drop_nats_state(self.name)
        except Exception as exc:  # noqa: BLE001
            print(f"   could not delete the NATS buckets of {self.name}: {exc}", flush=True)


def _edit_config(path: Path, settings: dict[str, dict[str, object]]) -> None:
    import tomli_w

    document = tomllib.loads(path.read_text(encoding="utf-8"))
    for section, values in settings.items():
        document.setdefault(section, {}).update(values)
    path.write_text(tomli_w.dumps(document), encoding="utf-8")


def _admin_url() -> str:
    return POSTGRES_URL


def _sqlalchemy_url(database: str) -> str:
    base = POSTGRES_URL.rsplit("/", 1)[0]
    return base.replace("postgresql://", "postgresql+psycopg://", 1) + f"/{database}"


def _create_database(database: str) -> None:
    import psycopg

    try:
        with psycopg.connect(_admin_url(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
    except psycopg.Error as exc:
        raise FleetError(f"PostgreSQL at {POSTGRES_URL}: {exc}") from None


def _drop_database(database: str) -> None:
    import psycopg

    with psycopg.connect(_admin_url(), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _check_nats() -> None:
    async def check() -> None:
        import nats

        nc = await nats.connect(NATS_URL, connect_timeout=3, max_reconnect_attempts=0)
        try:
            await nc.jetstream().account_info()
        finally:
            await nc.close()

    try:
        asyncio.run(check())
    except Exception as exc:  # noqa: BLE001 - any failure means no cluster here
        raise FleetError(f"NATS with JetStream at {NATS_URL}: {exc!r}") from None


def _drop_nats_state(name: str) -> None:
    async def drop() -> None:
        import nats

        nc = await nats.connect(NATS_URL, connect_timeout=3, max_reconnect_attempts=0)
        try:
            js = nc.jetstream()
            # Key-value buckets are streams KV_<bucket> (<name>_sessions, <name>_nodes, and
            # whatever a newer Bastion adds); newer ones also have streams <name>_...
            prefixes = (f"KV_{name}_", f"OBJ_{name}_", f"{name}_")
            for info in await js.streams_info():
                if info.config.name and info.config.name.startswith(prefixes):
                    try:
                        await js.delete_stream(info.config.name)
                    except Exception:  # noqa: BLE001, S112 - gone already
                        continue
        finally:
            await nc.close()

    asyncio.run(drop())


def nats_version() -> str:
    async def ask() -> str:
        import nats

        nc = await nats.connect(NATS_URL, connect_timeout=3, max_reconnect_attempts=0)
        try:
            return str(nc._server_info.get("version", "?"))
        finally:
            await nc.close()

    try:
        return asyncio.run(ask())
    except Exception:  # noqa: BLE001
        return "unreachable"


# -------------------------------------------------------------- fleets as brokers


class FleetSetup:
    """``nodes`` nodes of a :class:`Fleet` as one broker under test (``run.Broker``).

    Load connections go to node 1; ``subscriber_node`` (1 or 2) is where fan-in and
    latency subscribers connect. ``pids`` (the nodes and the NATS server) is what the
    broker's CPU and RSS are read from, ``parts`` the same one by one. NATS is the
    machine's service: work of others on it counts too, so read its own column. The
    PostgreSQL server is not counted: others' tests use it all the time, and its backends
    come and go (the CPU of one that exits between two readings would go missing).
    """

    def __init__(self, fleet: Fleet, label: str, nodes: int, subscriber_node: int = 1) -> None:
        self.fleet = fleet
        self.label = label
        self.nodes = nodes
        self.subscriber_node = subscriber_node
        self.running: list[Node] = []
        self.nats_pid = _service_pid(NATS_URL, 4222, "nats-server")

    @property
    def pid(self) -> int | None:
        return self.running[0].process.proc.pid if self.running and self.running[0].process else None

    @property
    def node_pids(self) -> list[int]:
        return [n.process.proc.pid for n in self.running if n.process is not None]

    @property
    def pids(self) -> list[int]:
        return list(self.parts.values())

    @property
    def parts(self) -> dict[str, int]:
        """Each node's pid by node id, and the NATS server's as ``NATS``."""
        named = {n.node_id: n.process.proc.pid for n in self.running if n.process is not None}
        if self.nats_pid:
            named["NATS"] = self.nats_pid
        return named

    @property
    def endpoints(self) -> list[Endpoint]:
        return [n.mqtt for n in self.running if n.mqtt is not None]

    @property
    def subscriber_endpoint(self) -> Endpoint:
        return self.endpoints[self.subscriber_node - 1]

    def start(self) -> Endpoint:
        self.running = self.fleet.start(self.nodes)
        return self.endpoints[0]

    def stop(self) -> None:
        self.fleet.stop()

    def log_tail(self) -> str:
        return self.fleet.log_tail()


def _service_pid(url: str, default_port: int, command: str) -> int | None:
    """The pid of the local server behind ``url`` (the process listening on its port),
    else of the one process named ``command``; ``None`` if neither is found."""
    from urllib.parse import urlsplit

    port = urlsplit(url).port or default_port
    return procstat.listener_pid(port) or procstat.pid_of(command)


def targets(broker: Any) -> tuple[int | list[int] | None, dict[str, int], Endpoint | None]:
    """(broker pids, parts by name, subscriber endpoint) of any broker under test: a
    :class:`FleetSetup`, or one of ``brokers.py``'s single processes."""
    if isinstance(broker, FleetSetup):
        return broker.pids, broker.parts, broker.subscriber_endpoint
    return broker.pid, {}, None


# ------------------------------------------------------------------------ revocation


@dataclass(frozen=True, slots=True)
class RevocationResult:
    revocations: int
    closed: int
    missed: int
    """Devices still connected ``CLOSE_TIMEOUT`` s after their revocation's 200."""
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    """From the API's 200 (read by the caller) to the device seeing its connection end."""
    p50_from_request_ms: float | None
    p99_from_request_ms: float | None
    """From sending UpdateCertificate to the connection's end (the API call included)."""
    api_p50_ms: float | None
    api_p99_ms: float | None
    """UpdateCertificate's own round trip."""
    closed_before_200: int
    """Connections that ended before the caller had read the 200 (their time is <= 0)."""
    by_status: dict[str, float | None]
    """p50 ms after the 200 per new status (INACTIVE, REVOKED)."""
    connections_lost_before: int
    """Devices whose connection ended before their turn (should be 0)."""
    first_failure: str | None
    broker_cores: float | None
    """Nodes and NATS, over the whole sequence of revocations (PostgreSQL not counted)."""
    generator_cores: float
    """The devices' worker and the bench process making the API calls."""
    other_cores: float


class _WatchedClient(IdleClient):
    """An idle device that writes when its connection ended into a shared array."""

    def __init__(self, connect: bytes, closed: Any, index: int) -> None:
        super().__init__(connect)
        self._closed = closed
        self._index = index

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed[self._index]:
            self._closed[self._index] = time.monotonic_ns()
        super().connection_lost(exc)


async def revocation_job(
    control: Control, endpoint: Endpoint, devices: list[tuple[str, TlsFiles]], closed: Any
) -> None:
    """Connect every device (its own certificate; client id ``bench-<thing>``) and hold
    it; ``closed[k]`` gets the monotonic ns at which device ``k``'s connection ended."""
    limit = asyncio.Semaphore(16)

    async def one(k: int, name: str, tls: TlsFiles) -> IdleClient:
        async with limit:
            ctx = client_ssl_context(tls)
            at = Endpoint(endpoint.host, endpoint.port, tls)
            made = await open_client(
                at, ctx, lambda: _WatchedClient(wire.encode_connect(f"bench-{name}"), closed, k)
            )
            return made  # type: ignore[return-value]

    conns = await asyncio.gather(*(one(k, n, t) for k, (n, t) in enumerate(devices)))
    control.report("ready", {"pid": os.getpid(), "tls": conns[0].tls_version()})
    await control.wait_go()
    await control.wait_stop()
    for c in conns:
        c.close()
    control.report("result", {})


def revocation(setup: FleetSetup, count: int) -> RevocationResult:
    """Revoke ``count`` devices on node 2 one at a time through node 1's API.

    Even devices are set INACTIVE, odd ones REVOKED (both must close a live connection).
    Each revocation waits for its device's connection to end (at most ``CLOSE_TIMEOUT``)
    before the next, so they do not queue behind each other.

    :raises LoadError: if the fleet has too few unused devices, a device cannot connect,
        or the API refuses.
    """
    import boto3
    from botocore.config import Config

    fleet = setup.fleet
    if fleet.devices_used + count > len(fleet.devices):
        raise LoadError(f"only {len(fleet.devices) - fleet.devices_used} unused devices left")
    chosen = fleet.devices[fleet.devices_used : fleet.devices_used + count]
    fleet.devices_used += count
    assert fleet.access_key is not None
    api = boto3.client(
        "iot",
        endpoint_url=setup.running[0].api_url,
        region_name="us-east-1",
        verify=fleet.api_ca,
        aws_access_key_id=fleet.access_key[0],
        aws_secret_access_key=fleet.access_key[1],
        config=Config(retries={"max_attempts": 1}),
    )
    closed = multiprocessing.get_context("spawn").RawArray("q", count)
    there = setup.endpoints[1]
    devices = [(name, fleet.device_tls(name)) for name, _ in chosen]
    api.list_things(maxResults=1)  # TLS, signing and the models warmed up
    sent, answered = array("q"), array("q")
    statuses: list[str] = []
    first_failure: str | None = None
    with WorkerGroup(hard_seconds=count * (CLOSE_TIMEOUT + 5) + 120) as group:
        slot = group.add(revocation_job, there, devices, closed)
        group.start(ready_timeout=max(60.0, count / 5))
        tree = procstat.trees(setup.pids) or []
        cpu0, busy0, t0 = procstat.cpu_seconds(tree), procstat.machine_busy_seconds(), time.monotonic()
        callers = [*group.pids, os.getpid()]  # the worker and this process (boto3)
        gen0 = procstat.cpu_seconds(callers)
        group.go.set()
        lost_before = sum(1 for k in range(count) if closed[k])
        for k, (_, certificate_id) in enumerate(chosen):
            if closed[k]:
                sent.append(0)
                answered.append(0)
                statuses.append("")
                continue
            status = "INACTIVE" if k % 2 == 0 else "REVOKED"
            statuses.append(status)
            sent.append(time.monotonic_ns())
            try:
                api.update_certificate(certificateId=certificate_id, newStatus=status)
            except Exception as exc:  # noqa: BLE001 - counted; the next one still runs
                answered.append(0)
                first_failure = first_failure or repr(exc)
                continue
            answered.append(time.monotonic_ns())
            deadline = time.monotonic() + CLOSE_TIMEOUT
            while not closed[k] and time.monotonic() < deadline:
                time.sleep(0.0005)
        seconds = time.monotonic() - t0
        broker = (procstat.cpu_seconds(tree) - cpu0) / seconds
        generator = (procstat.cpu_seconds(callers) - gen0) / seconds
        busy = (procstat.machine_busy_seconds() - busy0) / seconds
        group.stop([slot])
    after = [closed[k] - answered[k] for k in range(count) if answered[k] and closed[k]]
    from_request = [closed[k] - sent[k] for k in range(count) if answered[k] and closed[k]]
    api_times = [answered[k] - sent[k] for k in range(count) if answered[k]]
    by_status = {
        s: _pct(sorted(closed[k] - answered[k] for k in range(count)
                       if statuses[k] == s and answered[k] and closed[k]), 0.5)
        for s in ("INACTIVE", "REVOKED")
    }
    missed = sum(1 for k in range(count) if answered[k] and not closed[k])
    after.sort()
    from_request.sort()
    api_times.sort()
    return RevocationResult(
        revocations=sum(1 for a in answered if a),
        closed=len(after),
        missed=missed,
        p50_ms=_pct(after, 0.5),
        p90_ms=_pct(after, 0.9),
        p99_ms=_pct(after, 0.99),
        max_ms=after[-1] / 1e6 if after else None,
        p50_from_request_ms=_pct(from_request, 0.5),
        p99_from_request_ms=_pct(from_request, 0.99),
        api_p50_ms=_pct(api_times, 0.5),
        api_p99_ms=_pct(api_times, 0.99),
        closed_before_200=sum(1 for d in after if d < 0),
        by_status=by_status,
        connections_lost_before=lost_before,
        first_failure=first_failure,
        broker_cores=broker,
        generator_cores=generator,
        other_cores=max(0.0, busy - broker - generator),
    )


def _pct(ordered: list[int] | list[float], q: float) -> float | None:
    """The ``q`` quantile of ``ordered`` (nanoseconds) in ms."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


# ------------------------------------------------------------------------ progress


def progress(scenario: str, r: dict[str, Any]) -> str:
    """One broker's progress line for a cluster scenario (and the nodes' warnings)."""
    line = _progress(scenario, r)
    if r.get("node_warnings"):
        examples = "; ".join(r["node_warning_examples"])
        line += f"\n{'':<22}NODES LOGGED {r['node_warnings']} WARNINGS, e.g. {examples}"
    return line


def _progress(scenario: str, r: dict[str, Any]) -> str:
    split = ""
    if r.get("part_cores"):
        split = " (" + ", ".join(f"{n} {report.num(c, 2)}" for n, c in r["part_cores"].items()) + ")"
    cores = f"broker {report.num(r.get('broker_cores'), 2)} cores{split}"
    if scenario in ("cluster-qos0", "cluster-qos1"):
        lost = f", {r['connections_lost']} CONNECTIONS LOST" if r["connections_lost"] else ""
        return (
            f"{report.num(r['delivered_per_s'])} msg/s delivered (publishers wrote "
            f"{report.num(r['accepted_per_s'])}/s), loss {r['loss']:.1%}, "
            f"{report.num(r['broker_us_per_msg'], 2)} us broker CPU/msg, {cores}, generator "
            f"{report.num(r['generator_cores'], 2)} (publishers {report.num(r['publisher_cores'], 2)},"
            f" subscriber {report.num(r['subscriber_cores'], 2)}), idle "
            f"{report.num(r['idle_cores'], 2)}: {limit(r)}{lost}"
        )
    if scenario == "cluster-latency":
        return (
            f"p50 {report.num(r['p50_ms'], 2)} ms, p99 {report.num(r['p99_ms'], 2)} ms over "
            f"{r['samples']} messages, {report.num(r['delivered_per_s'])} of "
            f"{report.num(r['offered_per_s'])} msg/s delivered, {cores}, generator "
            f"{report.num(r['generator_cores'], 2)}"
        )
    if scenario == "cluster-revoke":
        missed = f", {r['missed']} NEVER CLOSED" if r["missed"] else ""
        failed = f", first API failure: {r['first_failure']}" if r["first_failure"] else ""
        return (
            f"{r['closed']} of {r['revocations']} closed after the API's 200: p50 "
            f"{report.num(r['p50_ms'], 1)} ms, p99 {report.num(r['p99_ms'], 1)} ms, max "
            f"{report.num(r['max_ms'], 1)} ms (from the request: p50 "
            f"{report.num(r['p50_from_request_ms'], 1)}, p99 "
            f"{report.num(r['p99_from_request_ms'], 1)}; the API call itself p50 "
            f"{report.num(r['api_p50_ms'], 1)} ms); {r['closed_before_200']} closed before the "
            f"200 was read; {r['connections_lost_before']} lost before their turn{missed}{failed}"
        )
    if scenario == "cluster-idle":
        held = (
            f"held {r['connections_held']:,} of {r['connections']:,} on {r['nodes']} nodes"
            f" after {r['hold_seconds']:g} s ({r['connections_lost']} lost, {r['failed']} failed,"
            f" pings {r['pings_answered']}/{r['pings_sent']})"
        )
        before, after = r["part_rss_before"], r["part_rss_after_hold"]
        grown = ", ".join(
            f"{n} {report.num((after[n] - before[n]) / 2**20)} MiB" for n in before if n in after
        )
        return (
            f"{report.num(r['bytes_per_connection'] / 1024, 1)} KiB/connection (nodes' RSS) over "
            f"{r['measured_connections']:,}; {held}; opened in {report.num(r['open_seconds'], 1)} s"
            f" ({report.num(r['opens_per_s'])}/s); RSS growth {grown}; peak nodes' RSS "
            f"{report.num(r['broker_peak_rss'] / 2**20)} MiB; generator "
            f"{report.num(r['generator_bytes_per_connection'] / 1024, 1)} KiB/connection in "
            f"{r['generator_processes']} processes; least memory available "
            f"{report.num(r['mem_available_min'] / 2**30, 1)} GiB; "
            + (
                f"closed in {report.num(r['close_seconds'], 1)} s"
                if r["close_seconds"] is not None
                else "NOT ALL CLOSED within the limit (workers terminated)"
            )
            + (f"; STOPPED: {r['stopped']}" if r["stopped"] else "")
        )
    return ""


BROKER_BOUND = 0.9
IDLE_ENOUGH = 0.25


def limit(r: dict[str, Any]) -> str:
    """Who set a fan-in figure: a node (or the single broker) at its one core, the
    machine as a whole, or neither."""
    nodes = [(n, c) for n, c in (r.get("part_cores") or {}).items() if n.startswith("node")]
    if not nodes:
        nodes = [("broker", r.get("broker_cores") or 0.0)]
    bound = [n for n, c in nodes if c >= BROKER_BOUND]
    if bound:
        return f"{', '.join(bound)} at one core: node-bound"
    if r["idle_cores"] < IDLE_ENOUGH:
        return "machine full (nodes, NATS and generator share 2 cores): CPU-bound as a whole"
    if r.get("other_cores", 0.0) > 0.25:
        return "disturbed by other work: rerun"
    return "BELOW ONE CORE WITH CORES IDLE: held back by something else"


# ------------------------------------------------------------------------ tables


def _entry(bench: Any, scenario: str, key: str) -> dict[str, Any]:
    return bench.details.get(scenario, {}).get(key, {})


def columns(bench: Any, scenario: str) -> list[str]:
    return list(bench.details.get(scenario, {}))


def print_tables(bench: Any) -> None:
    """The cluster scenarios' tables: every setup against Mosquitto (fan-in) or one node
    (latency), and the revocation and idle figures."""
    chosen = [s for s in bench.settings.scenarios if s in SCENARIOS]
    if not chosen:
        return
    width = 100
    print("\n" + "=" * width)
    print(
        f"Cluster (issue 14): Bastion nodes on one PostgreSQL and NATS {nats_version()}, "
        f"loopback, {os.cpu_count()} cores; every figure from this run"
    )
    for scenario in ("cluster-qos0", "cluster-qos1"):
        if scenario not in chosen:
            continue
        keys = columns(bench, scenario)
        labels = {k: _label(bench, k) for k in keys}
        print("-" * width)
        print(f"{SCENARIOS[scenario]}, {bench.settings.publishers}->1")
        print(f"{'':<30}" + "".join(f"{labels[k]:>17}" for k in keys))
        mosq = _entry(bench, scenario, "mosquitto").get("delivered_per_s")
        rows = (
            ("msg/s delivered", "delivered_per_s", 0),
            ("  ratio to Mosquitto", None, 2),
            ("  loss", "loss", None),
            ("  broker CPU per message, us", "broker_us_per_msg", 2),
            ("  broker cores (all processes)", "broker_cores", 2),
            ("  busiest node, cores", "busiest", 2),
            ("  NATS server, cores", "nats", 2),
            ("  generator cores", "generator_cores", 2),
            ("  idle cores", "idle_cores", 2),
        )
        for label, key, digits in rows:
            cells = []
            for k in keys:
                e = _entry(bench, scenario, k)
                if "error" in e:
                    cells.append("!")
                    continue
                value: Any
                if key is None:
                    d = e.get("delivered_per_s")
                    value = report.num(d / mosq if d and mosq else None, 2)
                elif key == "loss":
                    value = f"{e['loss']:.1%}" if "loss" in e else "-"
                elif key in ("busiest", "nats"):
                    value = report.num(_part(e, key), 2)
                else:
                    value = report.num(e.get(key), digits or 0)
                cells.append(value)
            print(f"{label:<30}" + "".join(f"{c:>17}" for c in cells))
        print(
            "  limit: "
            + "; ".join(
                f"{labels[k].strip()}: {limit(_entry(bench, scenario, k))}"
                for k in keys
                if "error" not in _entry(bench, scenario, k)
            )
        )
    if bench.ceiling:
        c = {k: report.num(v["msgs_per_s"]) for k, v in bench.ceiling.items()}
        per_core = {k: report.num(1e6 / v["generator_us_per_msg"]) for k, v in bench.ceiling.items()}
        print(
            "Generator's own ceiling (do-nothing server), msg/s (per core): "
            + "; ".join(f"{k} {c[k]} ({per_core[k]})" for k in c)
        )
    if "cluster-latency" in chosen:
        keys = columns(bench, "cluster-latency")
        print("-" * width)
        s = bench.settings
        print(f"Latency, {s.rate:,.0f} msg/s offered at QoS {s.latency_qos}, {s.publishers} publishers")
        print(f"{'':<30}" + "".join(f"{_label(bench, k):>17}" for k in keys))
        single = _entry(bench, "cluster-latency", "bastion")
        for label, key in (("p50 ms", "p50_ms"), ("p99 ms", "p99_ms")):
            print(f"{label:<30}" + "".join(
                f"{report.num(_entry(bench, 'cluster-latency', k).get(key), 2):>17}" for k in keys))
            print(f"{'  ratio to 1 node':<30}" + "".join(
                f"{report.num(_div(_entry(bench, 'cluster-latency', k).get(key), single.get(key)), 2):>17}"
                for k in keys))
        print(f"{'msg/s delivered':<30}" + "".join(
            f"{report.num(_entry(bench, 'cluster-latency', k).get('delivered_per_s')):>17}"
            for k in keys))
        print("  target: the same node of a cluster within 10 % of one node (ratio <= 1.10)")
    if "cluster-revoke" in chosen:
        e = _entry(bench, "cluster-revoke", "revoke")
        print("-" * width)
        if "error" in e or not e:
            print("Revocation across nodes: FAILED (see the errors)")
        else:
            print(
                f"Revocation across nodes: {e['revocations']} certificates of devices on node 2"
                f" set INACTIVE/REVOKED one at a time through node 1's API (boto3, SigV4)"
            )
            print(
                f"  from the API's 200 to the connection closed: p50 {report.num(e['p50_ms'], 1)}"
                f" ms, p90 {report.num(e['p90_ms'], 1)} ms, p99 {report.num(e['p99_ms'], 1)} ms, "
                f"max {report.num(e['max_ms'], 1)} ms ({e['closed_before_200']} of {e['closed']} "
                "closed before the 200 was read: negative times)"
            )
            print(
                f"  from sending the request: p50 {report.num(e['p50_from_request_ms'], 1)} ms, "
                f"p99 {report.num(e['p99_from_request_ms'], 1)} ms; the API call alone: p50 "
                f"{report.num(e['api_p50_ms'], 1)} ms, p99 {report.num(e['api_p99_ms'], 1)} ms; "
                f"never closed within {CLOSE_TIMEOUT:g} s: {e['missed']}"
            )
    if "cluster-idle" in chosen:
        e = _entry(bench, "cluster-idle", "idle")
        print("-" * width)
        if "error" in e or not e:
            print("Idle connections across nodes: FAILED (see the errors)")
        else:
            print(
                f"Idle mutual-TLS connections: held {e['connections_held']:,} of "
                f"{e['connections']:,} on {e['nodes']} nodes for {e['hold_seconds']:g} s; "
                f"{report.num(e['bytes_per_connection'] / 1024, 1)} KiB per connection (nodes' "
                f"RSS); opened in {report.num(e['open_seconds'])} s; peak nodes' RSS "
                f"{report.num(e['broker_peak_rss'] / 2**20)} MiB"
                + (f"; STOPPED: {e['stopped']}" if e["stopped"] else "")
            )
    print("=" * width)


def _label(bench: Any, key: str) -> str:
    return {
        "mosquitto": "Mosquitto mTLS",
        "bastion": "Bastion 1 node",
        "same-node": "2 nodes, same",
        "cross-node": "2 nodes, across",
    }.get(key, key)


def _part(e: dict[str, Any], which: str) -> float | None:
    """The NATS server's cores, or the busiest node's (the broker's if it is one)."""
    cores: dict[str, float] = e.get("part_cores") or {}
    if which == "nats":
        return cores.get("NATS")
    nodes = [c for n, c in cores.items() if n.startswith("node")]
    return max(nodes) if nodes else e.get("broker_cores")


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def summary(bench: Any) -> dict[str, Any]:
    """The cluster's flat figures for ``latest.json`` (``None`` where not measured)."""
    out: dict[str, Any] = {}
    for scenario, short in (("cluster-qos0", "qos0"), ("cluster-qos1", "qos1")):
        if scenario not in bench.settings.scenarios:
            continue
        mosq = _entry(bench, scenario, "mosquitto").get("delivered_per_s")
        for key in ("mosquitto", "bastion", "same-node", "cross-node"):
            name = key.replace("-", "_")
            value = _entry(bench, scenario, key).get("delivered_per_s")
            out[f"cluster_{short}_{name}_msgs"] = value
            out[f"cluster_{short}_{name}_ratio"] = _div(value, mosq)
    if "cluster-latency" in bench.settings.scenarios:
        single = _entry(bench, "cluster-latency", "bastion")
        for key in ("bastion", "same-node", "cross-node"):
            e = _entry(bench, "cluster-latency", key)
            for q in ("p50_ms", "p99_ms"):
                out[f"cluster_latency_{key.replace('-', '_')}_{q}"] = e.get(q)
        same = _entry(bench, "cluster-latency", "same-node")
        out["cluster_latency_same_node_p50_ratio"] = _div(same.get("p50_ms"), single.get("p50_ms"))
        out["cluster_latency_same_node_p99_ratio"] = _div(same.get("p99_ms"), single.get("p99_ms"))
    if "cluster-revoke" in bench.settings.scenarios:
        e = _entry(bench, "cluster-revoke", "revoke")
        for key in ("revocations", "missed", "p50_ms", "p99_ms", "max_ms"):
            out[f"cluster_revoke_{key}"] = e.get(key)
    if "cluster-idle" in bench.settings.scenarios:
        e = _entry(bench, "cluster-idle", "idle")
        for key in ("connections", "connections_held", "nodes", "bytes_per_connection",
                    "open_seconds", "broker_peak_rss", "stopped"):
            out[f"cluster_idle_{key}"] = e.get(key)
    return out


# ------------------------------------------------------------------------ scenarios


def run_all(bench: Any) -> None:
    """Run the chosen cluster scenarios through ``bench.run`` (turns, repeats, disturbed
    runs as everywhere else) on one fleet made for this run and dropped after it."""
    s = bench.settings
    chosen = [x for x in s.scenarios if x in SCENARIOS]
    if not chosen:
        return
    idle_count = idle_nodes(s.cluster_connections, s.nodes) if "cluster-idle" in chosen else 0
    devices = s.revocations * s.repeat if "cluster-revoke" in chosen else 0
    print(f"\n== cluster: a fleet on NATS {NATS_URL} and a fresh PostgreSQL database", flush=True)
    began = time.monotonic()
    try:
        fleet = Fleet.create(bench.workdir, max(2, idle_count), devices=devices)
    except (BrokerError, OSError) as exc:
        bench.errors.append(f"cluster: {exc}")
        print(f"   FAILED: {exc}", flush=True)
        return
    print(
        f"   cluster {fleet.name}: database {fleet.database}, {len(fleet.nodes)} node data "
        f"directories, {len(fleet.devices)} revocation devices "
        f"({time.monotonic() - began:.1f} s)",
        flush=True,
    )
    bench.versions["nats"] = nats_version()
    try:
        same = FleetSetup(fleet, "2 nodes, same", 2, subscriber_node=1)
        cross = FleetSetup(fleet, "2 nodes, across", 2, subscriber_node=2)
        single = {k: bench.brokers[k] for k in ("mosquitto", "bastion") if k in bench.brokers}
        for qos in (0, 1):
            if f"cluster-qos{qos}" in chosen:
                bench.run(
                    f"cluster-qos{qos}",
                    lambda ep, b, qos=qos: _fan_in(ep, b, qos, s),
                    brokers={**single, "same-node": same, "cross-node": cross},
                )
        if "cluster-latency" in chosen:
            one = {"bastion": bench.brokers["bastion"]} if "bastion" in bench.brokers else {}
            bench.run(
                "cluster-latency",
                lambda ep, b: _latency(ep, b, s),
                brokers={**one, "same-node": same, "cross-node": cross},
            )
        if "cluster-revoke" in chosen:
            bench.run(
                "cluster-revoke",
                lambda ep, b: _noted(revocation(b, s.revocations), b),
                brokers={"revoke": FleetSetup(fleet, "2 nodes", 2, subscriber_node=2)},
            )
        if "cluster-idle" in chosen:
            bench.run(
                "cluster-idle",
                lambda ep, b: _noted(
                    loadgen.idle_memory(
                        b.endpoints,
                        connections=s.cluster_connections,
                        broker_pid=b.node_pids,
                        hold=s.cluster_hold,
                        processes=s.idle_procs,
                        parts=b.parts,
                    ),
                    b,
                ),
                brokers={"idle": FleetSetup(fleet, f"{idle_count} nodes", idle_count)},
            )
    finally:
        fleet.drop()


def _noted(result: Any, broker: Any) -> dict[str, Any]:
    """``result`` as a dict, with what a fleet's nodes logged at WARNING or above."""
    out: dict[str, Any] = asdict(result)
    if isinstance(broker, FleetSetup):
        out.update(broker.fleet.warnings())
    return out


def _fan_in(endpoint: Endpoint, broker: Any, qos: int, s: Any) -> dict[str, Any]:
    pids, parts, subscriber = targets(broker)
    return _noted(loadgen.fan_in(
        endpoint,
        qos=qos,
        publishers=s.publishers,
        processes=s.publisher_procs,
        subscribers=1,
        broker_pid=pids,
        warmup=s.warmup,
        duration=s.duration,
        subscriber_endpoint=subscriber,
        parts=parts,
    ), broker)


def _latency(endpoint: Endpoint, broker: Any, s: Any) -> dict[str, Any]:
    pids, parts, subscriber = targets(broker)
    return _noted(loadgen.latency(
        endpoint,
        rate=s.rate,
        qos=s.latency_qos,
        publishers=s.publishers,
        processes=s.publisher_procs,
        broker_pid=pids,
        warmup=s.warmup,
        duration=s.duration,
        subscriber_endpoint=subscriber,
        parts=parts,
    ), broker)


def idle_nodes(connections: int, nodes: int | None) -> int:
    """Nodes for ``connections`` idle connections: ``nodes`` if given, else enough for
    ``PER_NODE`` each (at least 2)."""
    return nodes or max(2, math.ceil(connections / PER_NODE))
