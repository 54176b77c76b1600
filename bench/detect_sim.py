"""Detect, scored: a labelled fleet simulator against a real ``bastion serve`` (issue 15).

    .venv/bin/python bench/detect_sim.py [--profile static|ml|both] [--duration 600]
                                         [--interval 10] [--devices 40] [--seed 15]
                                         [--warmup S] [--output PATH]

Theory of operation
-------------------
One run (per ``--profile``) starts a fresh ``bastion serve`` on its own data directory
and free ports, with ``--detect-interval`` (10 s by default: a 10-minute run has about 60
evaluations). Everything else goes through the doors a user has: boto3 against the
SigV4 REST API provisions the fleet (a thing type per device class, things with a
``firmware`` attribute, a thing group per class and one for the fleet, a least-privilege
policy, keys and certificates from ``CreateKeysAndCertificate``) and creates the security
profile; the devices are paho clients (MQTT 5) over mutual TLS.

The fleet has three classes (:data:`CLASSES`): sensors (few small messages), cameras
(large messages) and gateways (many messages, more ports and connections). Each device
publishes telemetry at its class rate times a daily rhythm compressed to the run (one
sine period over ``--duration``), with jitter, and sends a Device Defender metrics report
(AWS's JSON format: ``header``, ``metrics`` with ``listening_tcp_ports``,
``listening_udp_ports``, ``tcp_connections``, ``network_stats``) every interval with
±2 % jitter. Its ``network_stats`` are deltas since its previous report: the MQTT bytes it
sent and received plus background traffic of its class. Benign events on a seeded
schedule: network blips (a share of one class drops its TCP connections together and
paho reconnects), reboots (a device disconnects, is away a few seconds, reconnects), and a
firmware rollout (half of the cameras and gateways move to firmware 2.1 with
``UpdateThing``, and their message size and rate shift together).

Attacks (:data:`ATTACKS`) start after ``--warmup`` on devices of their own, on a labelled
schedule: message flood, exfiltration, new listening ports, address scanning, topic
probing (publishes to topics the policy denies), reconnect storm, credential cloning (the
device's certificate connecting from 127.0.0.2 under another client id, which the policy
refuses: the thing sees the attempt, the address and the authorization failure), and two
slow ones built to stay under any fixed threshold: slow exfiltration (bytes out up 5 %
per interval, compounding) and a slow scan (one new destination inside the usual
10.0.0.0/8 every three intervals).

One thread schedules everything (a heap of due actions); paho's network threads do the
I/O. The scheduler's own lag (how late actions ran) is printed every interval, so a
generator that falls behind is visible.

The scorer (``detect_score.py``) reads the violation events back with boto3
(``ListViolationEvents`` over the run) and computes, per attack type, recall (an attack
counts as detected when an ``in-alarm`` event for its device starts inside the attack or
within two intervals after it), time to detect in intervals (p50/p90), and the
false-positive rate over benign device-intervals (an interval of a device outside its
attacks and their two-interval grace in which an ``in-alarm`` event for it starts). It
prints a table and writes JSON (``bench/results/detect_sim.json`` by default).

Profiles: ``static`` is what a user would write by hand: one profile per class with fixed
thresholds a margin above the class's normal peak (:func:`static_behaviors`). ``ml``
asks for ML Detect (``mlDetectionConfig`` on the 13 ML metrics, and on the three set
metrics Bastion models by novelty: listening TCP/UDP ports, destination addresses); a
server that does not accept it refuses the profile and the run stops with the server's
error. ``both`` runs
them one after the other, each on a fresh server with the same seed.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import itertools
import json
import math
import os
import random
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import boto3
import paho.mqtt.client as paho
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError
from detect_score import GRACE_INTERVALS, print_score, score, violation_events
from paho.mqtt.enums import CallbackAPIVersion

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUTPUT = BENCH_DIR / "results" / "detect_sim.json"
HOST = "127.0.0.1"
CLONE_ADDRESS = "127.0.0.2"
REGION = "us-east-1"
POLICY = "detect-sim-device"
FLEET_GROUP = "detect-sim-fleet"
SCENARIOS = {"detect-sim": "labelled fleet simulation, Detect scored (recall, FP rate, "
                           "time to detect)"}
HEADLINE = {"detect-sim": "recall"}

ML_METRICS = (
    "aws:num-authorization-failures", "aws:num-connection-attempts", "aws:num-disconnects",
    "aws:num-messages-sent", "aws:num-messages-received", "aws:message-byte-size",
    "aws:all-bytes-out", "aws:all-bytes-in", "aws:all-packets-out", "aws:all-packets-in",
    "aws:num-listening-tcp-ports", "aws:num-listening-udp-ports",
    "aws:num-established-tcp-connections",
)
ML_SET_METRICS = (
    # Bastion's own: novelty on sets (AWS's ML Detect has none; ml_training = "aws"
    # refuses them)
    "aws:listening-tcp-ports", "aws:listening-udp-ports", "aws:destination-ip-addresses",
)


class SimError(Exception):
    """The simulation could not run (server, provisioning, or a refused profile)."""


# -- the fleet -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeviceClass:
    name: str
    rate: float
    """Telemetry messages per second at the daily mean."""
    size: tuple[int, int]
    """Telemetry payload bytes (min, max)."""
    tcp_ports: tuple[int, ...]
    udp_ports: tuple[int, ...]
    connections: tuple[int, int]
    """Established TCP connections besides the broker's (min, max)."""
    background_out: int
    """Bytes per second the device sends besides MQTT (at the daily mean)."""
    background_in: int
    share: float
    """Share of the fleet."""


CLASSES = {
    "sensor": DeviceClass("sensor", 0.2, (40, 90), (22,), (), (0, 1), 40, 30, 0.45),
    "camera": DeviceClass("camera", 0.5, (4000, 12000), (22, 443, 554), (5353,), (1, 3),
                          2500, 300, 0.3),
    "gateway": DeviceClass("gateway", 3.0, (150, 400), (22, 443, 1883, 8883), (53, 123),
                           (3, 8), 800, 1500, 0.25),
}
RHYTHM = 0.5
"""Amplitude of the daily sine: rates run between 0.5 and 1.5 of the mean."""
ROLLOUT = {"rate": 1.25, "size": 1.3}
"""What firmware 2.1 changes."""
PACKET = 600
"""Mean bytes per packet, for the packet counts of the reports."""

ATTACKS = ("flood", "exfiltration", "port-scan", "address-scan", "topic-probe",
           "reconnect-storm", "clone", "slow-exfiltration", "slow-scan")
SLOW = ("slow-exfiltration", "slow-scan")
FLOOD = 40
"""How many times its rate a flooding device publishes."""
FAST_LENGTH = 4
"""Intervals a fast attack lasts."""


@dataclass(slots=True)
class Attack:
    kind: str
    thing: str
    start: float
    """Seconds from the run's start."""
    end: float


@dataclass(slots=True)
class Device:
    name: str
    cls: DeviceClass
    cert: Path
    key: Path
    firmware: str = "1.0"
    client: paho.Client | None = None
    connected: bool = False
    up: bool = True
    """False while rebooting."""
    sent_bytes: int = 0
    sent_messages: int = 0
    received_bytes: int = 0
    last_report: float = 0.0
    destinations: list[str] = field(default_factory=list)
    attack: Attack | None = None
    published: dict[int, int] = field(default_factory=dict)
    chain: int = 0
    """The current telemetry chain: a rate change starts a new one (see ``telemetry``)."""
    """Interval index → telemetry messages published (for the results)."""


@dataclass(slots=True)
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    messages: int = 0
    reports: int = 0
    accepted: int = 0
    rejected: int = 0
    rejections: list[str] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    all_lags: list[float] = field(default_factory=list)


# -- the server ------------------------------------------------------------------------------


class Server:
    """``bastion serve`` on a fresh data directory; its MQTT port, API URL and access key."""

    def __init__(self, workdir: Path, interval: float) -> None:
        self.data = workdir / "bastion-data"
        executable = str(Path(sys.executable).with_name("bastion"))
        init = subprocess.run([executable, "init", "--data-dir", str(self.data)],
                              capture_output=True, text=True, timeout=120, check=False)
        key = re.search(r"AWS_ACCESS_KEY_ID=(\S+)", init.stdout)
        secret = re.search(r"AWS_SECRET_ACCESS_KEY=(\S+)", init.stdout)
        if init.returncode != 0 or not key or not secret:
            raise SimError(f"bastion init failed:\n{init.stdout}{init.stderr}")
        self.access_key, self.secret_key = key.group(1), secret.group(1)
        self.ca = self.data / "ca" / "root-ca.cert.pem"
        self.log = workdir / "bastion.log"
        self._log = self.log.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [executable, "serve", "--data-dir", str(self.data), "--host", HOST,
             "--mqtt-port", "0", "--api-port", "0", "--detect-interval", f"{interval:g}",
             "--log-level", "WARN"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.port = 0
        self.api = ""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._log.write(line)
            if found := re.search(r"mqtts://[^:\s]+:(\d+)", line):
                self.port = int(found.group(1))
            if found := re.search(r"api\s+(https://\S+)", line):
                self.api = found.group(1)
            if line.startswith("Stop with"):
                break
        if not self.port or not self.api:
            self.stop()
            raise SimError(f"bastion serve printed no MQTT port or API address; see {self.log}")
        self._copier = threading.Thread(target=self._copy, daemon=True)
        self._copier.start()

    def _copy(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._log.write(line)
            self._log.flush()

    def iot(self) -> Any:
        return boto3.client("iot", endpoint_url=self.api, region_name=REGION,
                            verify=str(self.ca), aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key,
                            config=BotoConfig(retries={"max_attempts": 2}))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(Exception):
            self._log.close()


def device_policy(account: str) -> str:
    """Connect only as the thing's name (so a clone with another client id is refused);
    publish telemetry under ``sim/<thing>/`` and to the thing's own reserved topics."""
    thing = "${iot:Connection.Thing.ThingName}"
    arn = f"arn:aws:iot:{REGION}:{account}:"
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": f"{arn}client/{thing}"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": [f"{arn}topic/sim/{thing}/*", f"{arn}topic/$aws/things/{thing}/*"]},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": [f"{arn}topicfilter/sim/{thing}/*",
                      f"{arn}topicfilter/$aws/things/{thing}/*"]},
    ]})


def provision(iot: Any, devices: int, rng: random.Random, out: Path) -> list[Device]:
    """Thing types, groups, the policy, and ``devices`` things with certificates."""
    out.mkdir(parents=True, exist_ok=True)
    account = iot.create_thing_group(thingGroupName=FLEET_GROUP)["thingGroupArn"].split(":")[4]
    iot.create_policy(policyName=POLICY, policyDocument=device_policy(account))
    for cls in CLASSES.values():
        iot.create_thing_type(thingTypeName=f"sim-{cls.name}",
                              thingTypeProperties={"searchableAttributes": ["firmware"]})
        iot.create_thing_group(thingGroupName=f"detect-sim-{cls.name}")
    counts = {name: max(1, round(devices * cls.share)) for name, cls in CLASSES.items()}
    counts["sensor"] = max(1, devices - counts["camera"] - counts["gateway"])
    fleet: list[Device] = []
    for name, count in counts.items():
        for k in range(count):
            thing = f"sim-{name}-{k}"
            iot.create_thing(thingName=thing, thingTypeName=f"sim-{name}",
                             attributePayload={"attributes": {"firmware": "1.0"}})
            made = iot.create_keys_and_certificate(setAsActive=True)
            cert, key = out / f"{thing}.cert.pem", out / f"{thing}.key.pem"
            cert.write_text(made["certificatePem"])
            key.write_text(made["keyPair"]["PrivateKey"])
            key.chmod(0o600)
            iot.attach_policy(policyName=POLICY, target=made["certificateArn"])
            iot.attach_thing_principal(thingName=thing, principal=made["certificateArn"])
            for group in (FLEET_GROUP, f"detect-sim-{name}"):
                iot.add_thing_to_thing_group(thingGroupName=group, thingName=thing)
            device = Device(thing, CLASSES[name], cert, key)
            device.destinations = [f"10.{rng.randrange(256)}.{rng.randrange(256)}."
                                   f"{rng.randrange(1, 255)}"
                                   for _ in range(CLASSES[name].connections[1])]
            fleet.append(device)
    return fleet


# -- the security profiles -------------------------------------------------------------------


def _peak_messages(cls: DeviceClass, interval: float) -> float:
    return cls.rate * (1 + RHYTHM) * ROLLOUT["rate"] * interval


def static_behaviors(cls: DeviceClass, interval: float) -> list[dict[str, Any]]:
    """Fixed thresholds a user would write for ``cls``: a margin above its normal peak
    (the daily peak, firmware 2.1, jitter) for every metric Bastion measures."""
    messages = _peak_messages(cls, interval)
    size = cls.size[1] * ROLLOUT["size"]
    # The mean message size counts the interval's metrics report too (a few hundred
    # bytes per port and connection): for small-message classes it dominates.
    report = 400 + 100 * (cls.connections[1] + 1) + 50 * (len(cls.tcp_ports)
                                                         + len(cls.udp_ports))
    bytes_out = (messages * size * 1.1 + cls.background_out * (1 + RHYTHM) * 1.2 * interval)
    bytes_in = (messages * 60 + cls.background_in * (1 + RHYTHM) * 1.2 * interval)

    def upto(name: str, metric: str, count: float) -> dict[str, Any]:
        return {"name": name, "metric": metric,
                "criteria": {"comparisonOperator": "less-than-equals",
                             "value": {"count": math.ceil(count)},
                             "consecutiveDatapointsToAlarm": 1,
                             "consecutiveDatapointsToClear": 1}}

    def within(name: str, metric: str, operator: str, value: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "metric": metric,
                "criteria": {"comparisonOperator": operator, "value": value,
                             "consecutiveDatapointsToAlarm": 1,
                             "consecutiveDatapointsToClear": 1}}

    return [
        upto("messages-sent", "aws:num-messages-sent", messages * 2.5 + 5),
        upto("message-size", "aws:message-byte-size", max(size, report) * 1.5),
        upto("authorization-failures", "aws:num-authorization-failures", 1),
        upto("connection-attempts", "aws:num-connection-attempts", 3),
        upto("disconnects", "aws:num-disconnects", 3),
        within("source-ip", "aws:source-ip-address", "in-cidr-set",
               {"cidrs": ["127.0.0.1/32"]}),
        upto("bytes-out", "aws:all-bytes-out", bytes_out * 3),
        upto("bytes-in", "aws:all-bytes-in", bytes_in * 3),
        upto("packets-out", "aws:all-packets-out", bytes_out * 3 / PACKET + messages * 3),
        upto("packets-in", "aws:all-packets-in", bytes_in * 3 / PACKET + messages * 3),
        upto("listening-tcp", "aws:num-listening-tcp-ports", len(cls.tcp_ports)),
        upto("listening-udp", "aws:num-listening-udp-ports", len(cls.udp_ports)),
        within("tcp-ports", "aws:listening-tcp-ports", "in-port-set",
               {"ports": list(cls.tcp_ports)}),
        upto("established", "aws:num-established-tcp-connections",
             (cls.connections[1] + 1) * 2),
        within("destinations", "aws:destination-ip-addresses", "in-cidr-set",
               {"cidrs": ["10.0.0.0/8", "127.0.0.1/32"]}),
    ]


def ml_behaviors() -> list[dict[str, Any]]:
    return [{"name": metric.split(":")[1], "metric": metric,
             "criteria": {"mlDetectionConfig": {"confidenceLevel": "MEDIUM"},
                          "consecutiveDatapointsToAlarm": 1,
                          "consecutiveDatapointsToClear": 1}}
            for metric in (*ML_METRICS, *ML_SET_METRICS)]


def create_profiles(iot: Any, profile: str, interval: float) -> list[str]:
    """Create and attach the profile(s); their names.

    :raises SimError: the server refused a profile (its error, as boto3 saw it).
    """
    arn = f"arn:aws:iot:{REGION}:"
    account = iot.describe_thing_group(thingGroupName=FLEET_GROUP)["thingGroupArn"].split(":")[4]
    plans: list[tuple[str, str, list[dict[str, Any]]]] = []
    if profile == "static":
        plans = [(f"detect-sim-static-{cls.name}", f"detect-sim-{cls.name}",
                  static_behaviors(cls, interval)) for cls in CLASSES.values()]
    else:
        plans = [("detect-sim-ml", FLEET_GROUP, ml_behaviors())]
    names = []
    for name, group, behaviors in plans:
        try:
            iot.create_security_profile(securityProfileName=name, behaviors=behaviors)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise SimError(f"the server refused the {profile} profile {name}: "
                           f"{error.get('Code')}: {error.get('Message')}") from None
        iot.attach_security_profile(
            securityProfileName=name,
            securityProfileTargetArn=f"{arn}{account}:thinggroup/{group}")
        names.append(name)
    return names


# -- the schedule ----------------------------------------------------------------------------


def attack_schedule(fleet: list[Device], rng: random.Random, *, duration: float,
                    interval: float, warmup: float) -> list[Attack]:
    """Each attack on devices of its own (more than one per type in a large fleet)."""
    per_type = max(1, len(fleet) // (len(ATTACKS) * 4))
    victims = rng.sample(fleet, min(len(fleet), per_type * len(ATTACKS)))
    fast_length = FAST_LENGTH * interval
    last_fast_start = max(warmup, duration - fast_length - GRACE_INTERVALS * interval)
    attacks = []
    for i, device in enumerate(victims):
        kind = ATTACKS[i % len(ATTACKS)]
        if kind in SLOW:
            start, end = warmup, duration - interval
        else:
            start = warmup + rng.random() * (last_fast_start - warmup)
            start = round(start / interval) * interval  # on an interval boundary
            end = min(duration - interval, start + fast_length)
        attacks.append(Attack(kind, device.name, start, end))
    return attacks


def rhythm(t: float, duration: float) -> float:
    """The daily rhythm compressed to the run: one sine period over ``duration``."""
    return 1 + RHYTHM * math.sin(2 * math.pi * t / duration)


class Simulation:
    """Drives the fleet for ``duration`` seconds (see the module docstring)."""

    def __init__(self, server: Server, iot: Any, fleet: list[Device], attacks: list[Attack],
                 *, duration: float, interval: float, rng: random.Random) -> None:
        self.server = server
        self.iot = iot
        self.fleet = fleet
        self.by_name = {d.name: d for d in fleet}
        self.attacks = attacks
        self.duration = duration
        self.interval = interval
        self.rng = rng
        self.stats = Stats()
        self.events: list[tuple[float, str]] = []
        """(seconds from the start, benign event) for the results."""
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.t0 = 0.0
        self.t0_epoch = 0.0
        """The run's start, epoch seconds (attack times are relative to it)."""

    # scheduling

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run ``action`` at ``when`` seconds from the start."""
        heapq.heappush(self._heap, (when, next(self._seq), action))

    def now(self) -> float:
        return time.monotonic() - self.t0

    def run(self) -> None:
        for device in self.fleet:  # TLS contexts first: not counted as the generator's lag
            self.connect(device)
        self.t0 = time.monotonic()
        self.t0_epoch = time.time()
        # Reports every interval, each device at its own offset; telemetry at class rate.
        for device in self.fleet:
            self.at(self.rng.uniform(0.5, self.interval), lambda d=device: self.report(d))
            self.at(self.rng.uniform(0, 2), lambda d=device: self.telemetry(d, 0))
        self._benign_schedule()
        for attack in self.attacks:
            self.at(attack.start, lambda a=attack: self._begin(a))
            self.at(attack.end, lambda a=attack: self._end(a))
        next_progress = self.interval
        while True:
            now = self.now()
            if now >= self.duration:
                break
            if now >= next_progress:
                self._progress(next_progress)
                next_progress += self.interval
            if not self._heap:
                time.sleep(0.05)
                continue
            when, _, action = self._heap[0]
            if when > now:
                time.sleep(min(when - now, 0.05))
                continue
            heapq.heappop(self._heap)
            lag = now - when
            self.stats.lags.append(lag)
            self.stats.all_lags.append(lag)
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - one failed action must not end the run
                print(f"   action failed at {now:.1f} s: {exc!r}", flush=True)
        self._progress(self.duration)

    def stop(self) -> None:
        for device in self.fleet:
            client, device.client = device.client, None
            if client is not None:
                with contextlib.suppress(Exception):
                    client.disconnect()
                    client.loop_stop()

    def _progress(self, t: float) -> None:
        s = self.stats
        lags = sorted(s.lags) or [0.0]
        connected = sum(d.connected for d in self.fleet)
        active = [f"{a.kind}({a.thing})" for a in self.attacks if a.start <= t - 1e-6 < a.end]
        print(f"   t={t:5.0f} s  connected {connected:>3}/{len(self.fleet)}  "
              f"msgs {s.messages:>7,}  reports {s.reports:>5,} (accepted {s.accepted:,}, "
              f"rejected {s.rejected})  generator lag p50 {lags[len(lags) // 2] * 1000:.1f} ms "
              f"max {lags[-1] * 1000:.0f} ms"
              + (f"  attacks: {', '.join(active)}" if active else ""), flush=True)
        s.lags = []

    # devices

    def _context(self, device: Device) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.server.ca))
        context.check_hostname = False  # the chain is verified; the name is loopback's
        context.load_cert_chain(str(device.cert), str(device.key))
        return context

    def connect(self, device: Device, *, client_id: str | None = None,
                source: str = "", reconnect: bool = True) -> paho.Client:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or device.name,
                             protocol=paho.MQTTv5, reconnect_on_failure=reconnect)
        client.tls_set_context(self._context(device))
        client.reconnect_delay_set(1, 3)
        if client_id is None:
            device.client = client
            replies = f"$aws/things/{device.name}/defender/metrics/json/+"

            def on_connect(c: Any, u: Any, flags: Any, rc: Any, props: Any) -> None:
                if not rc.is_failure and device.client is c:
                    device.connected = True
                    c.subscribe(replies, qos=1)

            def on_disconnect(c: Any, u: Any, flags: Any, rc: Any, props: Any) -> None:
                if device.client is c:
                    device.connected = False

            client.on_connect = on_connect
            client.on_disconnect = on_disconnect
            client.on_message = lambda c, u, m: self._reply(device, m)
        client.connect_async(HOST, self.server.port, keepalive=60, bind_address=source)
        client.loop_start()
        return client

    def _reply(self, device: Device, message: Any) -> None:
        device.received_bytes += len(message.payload) + len(message.topic) + 4
        with self.stats.lock:
            if message.topic.endswith("/accepted"):
                self.stats.accepted += 1
            elif message.topic.endswith("/rejected"):
                self.stats.rejected += 1
                if len(self.stats.rejections) < 10:
                    self.stats.rejections.append(message.payload.decode(errors="replace"))

    def _drop(self, device: Device, *, graceful: bool) -> None:
        client = device.client
        if client is None:
            return
        if graceful:
            device.client = None
            device.connected = False
            client.disconnect()
        else:  # the network goes: the socket dies under paho, which reconnects
            sock = client.socket()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(2)

    def telemetry(self, device: Device, chain: int) -> None:
        """Publish one message and schedule the next (Poisson arrivals at the current
        rate). A chain that is no longer the device's current one stops."""
        if chain != device.chain:
            return
        t = self.now()
        cls = device.cls
        rate = cls.rate * rhythm(t, self.duration)
        size_factor = 1.0
        if device.firmware != "1.0":
            rate *= ROLLOUT["rate"]
            size_factor = ROLLOUT["size"]
        attack = device.attack
        if attack is not None and attack.kind == "flood":
            rate *= FLOOD
        if device.up and device.connected and device.client is not None:
            size = int(self.rng.uniform(*cls.size) * size_factor)
            payload = json.dumps({"t": round(time.time(), 3), "fw": device.firmware,
                                  "v": "x" * max(0, size - 40)}).encode()
            device.client.publish(f"sim/{device.name}/telemetry", payload, qos=0)
            device.sent_bytes += len(payload) + len(device.name) + 20
            device.sent_messages += 1
            k = int(t // self.interval)
            device.published[k] = device.published.get(k, 0) + 1
            self.stats.messages += 1
        self.at(t + self.rng.expovariate(rate), lambda: self.telemetry(device, chain))

    def report(self, device: Device) -> None:
        t = self.now()
        self.at(t + self.interval * (1 + self.rng.uniform(-0.02, 0.02)),
                lambda: self.report(device))
        if not (device.up and device.connected and device.client is not None):
            return
        cls = device.cls
        since = max(1.0, t - device.last_report) if device.last_report else self.interval
        device.last_report = t
        day = rhythm(t, self.duration)
        bytes_out = int(device.sent_bytes * 1.08
                        + cls.background_out * day * since * self.rng.uniform(0.8, 1.2))
        bytes_in = int(device.received_bytes * 1.08 + device.sent_messages * 60
                       + cls.background_in * day * since * self.rng.uniform(0.8, 1.2))
        connections = self.rng.randint(*cls.connections)
        destinations = self.rng.sample(device.destinations, connections)
        tcp_ports, udp_ports = list(cls.tcp_ports), list(cls.udp_ports)
        attack = device.attack
        if attack is not None:
            k = int((t - attack.start) // self.interval) + 1
            if attack.kind == "exfiltration":
                bytes_out = bytes_out * 15 + 2_000_000
            elif attack.kind == "slow-exfiltration":
                bytes_out = int(bytes_out * 1.05 ** k)
            elif attack.kind == "port-scan":
                tcp_ports += [4444, 5555, 6667, 31337]
                udp_ports += [1900, 69]
            elif attack.kind == "address-scan":
                destinations = [f"{self.rng.randrange(11, 223)}.{self.rng.randrange(256)}."
                                f"{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"
                                for _ in range(self.rng.randint(60, 120))]
            elif attack.kind == "slow-scan":
                extra = 1 + k // 3
                destinations = destinations + [f"10.66.{k}.{j + 1}" for j in range(extra)]
        packets_out = bytes_out // PACKET + device.sent_messages
        packets_in = bytes_in // PACKET + device.sent_messages
        device.sent_bytes = device.sent_messages = device.received_bytes = 0
        report = {
            "header": {"report_id": int(time.time() * 1000), "version": "1.0"},
            "metrics": {
                "listening_tcp_ports": {"ports": [{"interface": "eth0", "port": p}
                                                  for p in tcp_ports],
                                        "total": len(tcp_ports)},
                "listening_udp_ports": {"ports": [{"interface": "eth0", "port": p}
                                                  for p in udp_ports],
                                        "total": len(udp_ports)},
                "network_stats": {"bytes_in": bytes_in, "bytes_out": bytes_out,
                                  "packets_in": packets_in, "packets_out": packets_out},
                "tcp_connections": {"established_connections": {
                    "connections": [{"local_interface": "eth0", "local_port": 40000 + j,
                                     "remote_addr": f"{addr}:443"}
                                    for j, addr in enumerate(destinations)]
                    + [{"local_interface": "eth0", "local_port": 39999,
                        "remote_addr": f"{HOST}:{self.server.port}"}],
                    "total": len(destinations) + 1}},
            },
        }
        device.client.publish(f"$aws/things/{device.name}/defender/metrics/json",
                              json.dumps(report), qos=1)
        with self.stats.lock:
            self.stats.reports += 1

    # benign events

    def _benign_schedule(self) -> None:
        rng, interval, duration = self.rng, self.interval, self.duration
        # Network blips: a third of one class drops at once, a few times per run.
        for _ in range(max(1, int(duration / interval / 6))):
            when = rng.uniform(interval, duration - interval)
            cls = rng.choice(list(CLASSES))
            members = [d for d in self.fleet if d.cls.name == cls and d.attack is None]
            group = rng.sample(members, max(1, len(members) // 3)) if members else []
            self.at(when, lambda g=group, c=cls: self._blip(c, g))
        # Reboots: about one device in fifty per interval.
        for device in self.fleet:
            for k in range(1, int(duration / interval)):
                if rng.random() < 0.02:
                    self.at(k * interval + rng.uniform(0, interval),
                            lambda d=device: self._reboot(d))
        # Firmware rollout: half of the cameras and gateways, at 55 % of the run.
        wave = [d for d in self.fleet if d.cls.name in ("camera", "gateway")]
        wave = rng.sample(wave, len(wave) // 2)
        self.at(duration * 0.55, lambda: self._rollout(wave))

    def _blip(self, cls: str, group: list[Device]) -> None:
        self.events.append((self.now(), f"blip: {len(group)} {cls}s"))
        for device in group:
            self._drop(device, graceful=False)

    def _reboot(self, device: Device) -> None:
        if not device.up or (device.attack is not None and device.attack.kind == "clone"):
            return
        self.events.append((self.now(), f"reboot: {device.name}"))
        device.up = False
        self._drop(device, graceful=True)
        self.at(self.now() + self.rng.uniform(3, 8), lambda: self._boot(device))

    def _boot(self, device: Device) -> None:
        device.up = True
        device.sent_bytes = device.sent_messages = device.received_bytes = 0
        device.last_report = 0.0
        self.connect(device)

    def _rollout(self, wave: list[Device]) -> None:
        self.events.append((self.now(), f"firmware 2.1 rollout: {len(wave)} devices"))
        for device in wave:
            device.firmware = "2.1"
            try:
                self.iot.update_thing(thingName=device.name,
                                      attributePayload={"attributes": {"firmware": "2.1"}})
            except (ClientError, BotoCoreError) as exc:
                print(f"   UpdateThing {device.name} failed: {exc}", flush=True)

    # attacks

    def _begin(self, attack: Attack) -> None:
        device = self.by_name[attack.thing]
        device.attack = attack
        if attack.kind == "flood":  # at once, not after the gap drawn at the old rate
            device.chain += 1
            self.at(self.now(), lambda: self.telemetry(device, device.chain))
        elif attack.kind == "topic-probe":
            self._probe(device, attack)
        elif attack.kind == "reconnect-storm":
            self._storm(device, attack)
        elif attack.kind == "clone":
            self._clone(device, attack)

    def _end(self, attack: Attack) -> None:
        device = self.by_name[attack.thing]
        if device.attack is attack:
            device.attack = None
        if not device.up or device.client is None:
            self._boot(device)

    def _active(self, attack: Attack) -> bool:
        return self.by_name[attack.thing].attack is attack

    def _probe(self, device: Device, attack: Attack) -> None:
        if not self._active(attack):
            return
        if device.connected and device.client is not None:
            other = self.rng.choice(self.fleet).name
            for topic in (f"sim/{other}/telemetry", f"$aws/things/{other}/shadow/update",
                          "admin/firmware", f"cmd/{other}/exec"):
                device.client.publish(topic, b'{"probe":1}', qos=1)
        self.at(self.now() + self.interval / 3, lambda: self._probe(device, attack))

    def _storm(self, device: Device, attack: Attack) -> None:
        if not self._active(attack):
            return
        self._drop(device, graceful=True)
        device.up = True
        self.connect(device)
        self.at(self.now() + self.interval / 8, lambda: self._storm(device, attack))

    def _clone(self, device: Device, attack: Attack) -> None:
        if not self._active(attack):
            return
        clone = self.connect(device, client_id=f"{device.name}-backup", source=CLONE_ADDRESS,
                             reconnect=False)
        # Refused at CONNECT: paho's thread ends with the connection; stop it anyway.
        self.at(self.now() + 2.0, lambda: self._forget(clone))
        self.at(self.now() + self.interval / 3, lambda: self._clone(device, attack))

    @staticmethod
    def _forget(client: paho.Client) -> None:
        with contextlib.suppress(Exception):
            client.disconnect()
        threading.Thread(target=client.loop_stop, daemon=True).start()


# -- one run ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    profile: str
    duration: float
    interval: float
    devices: int
    warmup: float
    seed: int


def run_profile(options: Options, profile: str) -> dict[str, Any]:
    """One simulation and its score with ``profile`` (``static`` or ``ml``).

    :raises SimError: the server did not start, or refused the profile.
    """
    rng = random.Random(options.seed)
    workdir = Path(tempfile.mkdtemp(prefix="bastion-detect-sim-"))
    print(f"\n== detect-sim, profile {profile}: starting bastion serve "
          f"(detect interval {options.interval:g} s) in {workdir}", flush=True)
    server = Server(workdir, options.interval)
    simulation: Simulation | None = None
    try:
        iot = server.iot()
        began = time.monotonic()
        fleet = provision(iot, options.devices, rng, workdir / "devices")
        print(f"   provisioned {len(fleet)} devices through the API in "
              f"{time.monotonic() - began:.1f} s", flush=True)
        profiles = create_profiles(iot, profile, options.interval)
        attacks = attack_schedule(fleet, rng, duration=options.duration,
                                  interval=options.interval, warmup=options.warmup)
        for attack in attacks:
            print(f"   attack {attack.kind:<18} on {attack.thing:<14} "
                  f"{attack.start:6.0f} s .. {attack.end:6.0f} s", flush=True)
        simulation = Simulation(server, iot, fleet, attacks, duration=options.duration,
                                interval=options.interval, rng=rng)
        simulation.run()
        simulation.stop()
        t0_epoch = simulation.t0_epoch
        # The last evaluation covers the run's last interval.
        time.sleep(options.interval * 1.5)
        events = violation_events(iot, t0_epoch - options.interval,
                                  time.time() + options.interval, profiles)
        result = score(events, attacks, [d.name for d in fleet], kinds=ATTACKS,
                       t0_epoch=t0_epoch, duration=options.duration,
                       interval=options.interval)
        for entry in result["attacks"]:
            entry["trace"] = _trace(iot, simulation.by_name[entry["thing"]], t0_epoch,
                                    options.interval)
        lags = simulation.stats.all_lags or [0.0]
        stats = simulation.stats
        result.update({
            "profile": profile, "devices": len(fleet), "duration": options.duration,
            "interval": options.interval, "intervals": round(options.duration / options.interval),
            "warmup": options.warmup, "seed": options.seed, "violation_events": len(events),
            "benign_events": [{"at": round(at, 1), "what": what}
                              for at, what in simulation.events],
            "generator": {
                "messages": stats.messages, "reports": stats.reports,
                "accepted": stats.accepted, "rejected": stats.rejected,
                "rejections": stats.rejections,
                "lag_p50_ms": statistics.median(lags) * 1000,
                "lag_p99_ms": sorted(lags)[int(0.99 * (len(lags) - 1))] * 1000,
                "lag_max_ms": max(lags) * 1000,
                "lag_mean_ms": statistics.fmean(lags) * 1000},
        })
        print_score(profile, result)
        return result
    finally:
        if simulation is not None:
            simulation.stop()
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _trace(iot: Any, device: Device, t0_epoch: float, interval: float) -> dict[str, Any]:
    """What an attacked device did and what Bastion measured, per interval (to read a
    miss): telemetry published by the generator, and a few of its datapoints."""
    trace: dict[str, Any] = {"published": {str(k): n for k, n in sorted(device.published.items())}}
    for metric in ("aws:num-messages-sent", "aws:num-connection-attempts",
                   "aws:all-bytes-out", "aws:all-packets-out",
                   "aws:num-established-tcp-connections"):
        try:
            page = iot.list_metric_values(thingName=device.name, metricName=metric,
                                          startTime=t0_epoch - interval,
                                          endTime=time.time() + interval, maxResults=250)
        except (ClientError, BotoCoreError) as exc:
            trace[metric] = str(exc)
            continue
        trace[metric] = [(round(d["timestamp"].timestamp() - t0_epoch, 1),
                          d.get("value", {}).get("count"))
                         for d in page.get("metricDatumList", [])]
    return trace


def run(options: Options) -> tuple[dict[str, Any], list[str]]:
    """Every chosen profile: ``(results by profile, errors)``."""
    profiles = ("static", "ml") if options.profile == "both" else (options.profile,)
    results: dict[str, Any] = {}
    errors: list[str] = []
    for profile in profiles:
        try:
            results[profile] = run_profile(options, profile)
        except SimError as exc:
            print(f"   detect-sim {profile}: FAILED: {exc}", flush=True)
            results[profile] = {"error": str(exc)}
            errors.append(f"detect-sim {profile}: {exc}")
    return results, errors


def run_in_bench(bench: Any) -> None:
    """``bench/run.py --only detect-sim``: 10 minutes of 40 devices (``--quick``: 3)."""
    s = bench.settings
    duration = 180.0 if s.quick else 600.0
    options = Options(profile=s.detect_profile, duration=duration, interval=10.0,
                      devices=40, warmup=default_warmup(duration, 10.0), seed=15)
    print("\n== detect-sim: " + SCENARIOS["detect-sim"], flush=True)
    results, errors = run(options)
    bench.details["detect-sim"] = results
    bench.errors.extend(errors)


def summary(bench: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for profile, result in bench.details.get("detect-sim", {}).items():
        out[f"detect_sim_{profile}_recall"] = result.get("recall")
        out[f"detect_sim_{profile}_fp_rate"] = result.get("false_positive_rate")
        out[f"detect_sim_{profile}_ttd_p50"] = result.get("ttd_p50")
    return out


def default_warmup(duration: float, interval: float) -> float:
    return max(3 * interval, round(0.2 * duration / interval) * interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/detect_sim.py",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=("static", "ml", "both"), default="static")
    parser.add_argument("--duration", type=float, default=600.0,
                        help="simulated seconds (600)")
    parser.add_argument("--interval", type=float, default=10.0,
                        help="Bastion's [detect] interval in seconds (10)")
    parser.add_argument("--devices", type=int, default=40, help="devices (40)")
    parser.add_argument("--warmup", type=float,
                        help="seconds before the first attack (default: a fifth of the run, "
                             "at least 3 intervals)")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    if args.interval < 1 or args.duration < 8 * args.interval or args.devices < len(ATTACKS):
        parser.error(f"--interval >= 1, --duration >= 8 intervals, --devices >= "
                     f"{len(ATTACKS)} (one per attack type)")
    options = Options(args.profile, args.duration, args.interval, args.devices,
                      args.warmup if args.warmup is not None
                      else default_warmup(args.duration, args.interval), args.seed)
    results, errors = run(options)
    document = {"generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "settings": asdict(options), "results": results, "errors": errors}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"\nwrote {args.output}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
