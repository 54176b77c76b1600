"""``make bench``: Bastion against Mosquitto, like for like, on this machine.

    .venv/bin/python bench/run.py [--quick] [--only SCENARIO[,SCENARIO...]]
                                  [--connections N] [--hold S] [--duration S]
                                  [--rate MSG_PER_S] [--paced-devices N]
                                  [--brokers bastion,mosquitto,system] [--repeat N]
                                  [--durable-sync normal|full] [--mosquitto-autosave N]
                                  [--subscribers N] [--mosquitto-nodelay true|false]
                                  [--quiet-wait S] [--nodes N] [--revocations N]
                                  [--detect-profile static|ml|both]
                                  [--devices N] [--concurrency N] [--stream-rate MSG_PER_S]
                                  [--rotation-grace HOURS] [--rotation-procs N]

``--only cluster`` (or ``cluster-qos0``, ``cluster-qos1``, ``cluster-latency``,
``cluster-revoke``, ``cluster-idle``) runs the cluster scenarios of ``cluster.py``, which
are never part of the default set: they need NATS and PostgreSQL. ``--only detect-sim``
runs the labelled Detect simulation of ``detect_sim.py`` (10 minutes, ``--quick`` 3).
``--only rotation`` (``rotation.py``, Bastion only) rotates the certificates of
``--devices`` devices while a steady stream is measured before and during.

Every scenario runs against three brokers, each started fresh for that scenario and
stopped after it: Bastion over mutual TLS, a private Mosquitto over mutual TLS (with an
ACL file, so it authorizes every publish as Bastion does), and, as a reference only, the
machine's own Mosquitto on 127.0.0.1:1883 over plain TCP. The durability scenario kills
its brokers with SIGKILL, so it runs only against the two the bench starts itself, set up
to keep what they acknowledge. Results go to stdout as a plain table and to
``bench/results/latest.json``; ``bench/README.md`` explains how to read them. Exit
status: 0 if every requested measurement was taken, 1 if some failed (the rest are still
reported), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import brokers
import cluster
import detect_sim
import durability
import indexing
import loadgen
import procstat
import report
import rotation
import rules

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUTPUT = BENCH_DIR / "results" / "latest.json"

SCENARIOS = {
    "ceiling": "the load generator's own ceiling (no broker)",
    "idle": "broker memory per idle connection; are they all still held after --hold s",
    "qos0": "QoS 0 fan-in: publishers -> 1 subscriber on bench/#",
    "qos1": "QoS 1 fan-in, 100 in flight per publisher",
    "connect": "connects per second (handshake + CONNECT/CONNACK + DISCONNECT)",
    "latency": "publish -> deliver latency at a fixed offered load",
    "paced": "broker CPU per message from many slow devices, one message per read",
    "durable": "QoS 1 fan-in to an offline persistent session, then kill -9: acked msg/s, "
    "acknowledged messages lost",
}
BROKERS = report.COLUMNS
HEADLINE = {
    "qos0": "delivered_per_s",
    "qos1": "delivered_per_s",
    "idle": "bytes_per_connection",
    "connect": "connects_per_s",
    "latency": "p99_ms",
    "paced": "broker_us_per_msg",
    "durable": "acked_per_s",
}
HEADLINE.update(cluster.HEADLINE)
HEADLINE.update(rules.HEADLINE)
HEADLINE.update(detect_sim.HEADLINE)
HEADLINE.update(rotation.HEADLINE)
HEADLINE.update(indexing.HEADLINE)
"""The figure by which repeated runs are ranked (the median run is kept)."""
ALL_SCENARIOS = {**SCENARIOS, **cluster.SCENARIOS, **rules.SCENARIOS, **detect_sim.SCENARIOS,
                 **rotation.SCENARIOS, **indexing.SCENARIOS}
"""What ``--only`` accepts. Without ``--only`` only ``SCENARIOS`` run: the cluster ones
need NATS and PostgreSQL, and ``cluster-idle`` takes many minutes. ``--only cluster``
stands for ``cluster.DEFAULT``."""
EVERY_RUN = {"durable": ("acked_lost",)}
"""Figures kept from every repeated run as well (``<figure>_runs``): one kill -9 is one
sample, and a loss in any run counts."""
OTHER_LOAD_LIMIT = 0.25
"""Cores used by unrelated processes above which a run is flagged as disturbed."""


@dataclass(frozen=True, slots=True)
class Settings:
    """What to run and how long; everything the command line can change."""

    quick: bool
    scenarios: tuple[str, ...]
    brokers: tuple[str, ...]
    warmup: float
    duration: float
    connections: int
    hold: float
    idle_procs: int | None
    rate: float
    latency_qos: int
    publishers: int
    publisher_procs: int
    subscribers: int
    mosquitto_nodelay: bool
    connect_concurrency: int
    connect_procs: int
    paced_devices: int
    paced_rate: float
    paced_procs: int
    durable_sync: str
    mosquitto_autosave: int
    ceiling_duration: float
    nodes: int | None
    """cluster-idle: nodes to spread the connections over (None: ~17,000 each)."""
    cluster_connections: int
    cluster_hold: float
    revocations: int
    devices: int
    """rotation: devices whose certificates are rotated."""
    concurrency: int
    """rotation: rotations in progress at once, all device processes together."""
    stream_rate: float
    """rotation: msg/s of the steady QoS 1 stream measured before and during."""
    rotation_grace: int
    """rotation: hours from confirmation to the old certificate's deactivation."""
    rotation_procs: int
    quiet_wait: float
    repeat: int
    output: Path
    detect_profile: str = "static"
    """detect-sim: the security profile scored (static, ml or both)."""


def parse_args(argv: list[str] | None) -> Settings:
    """:raises SystemExit: on a bad command line (argparse prints why)."""
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Benchmark Bastion against Mosquitto over mutual TLS.",
        epilog="Scenarios: "
        + "; ".join(f"{k} = {v}" for k, v in ALL_SCENARIOS.items())
        + ". Without --only: "
        + ", ".join(SCENARIOS)
        + "; --only cluster = "
        + ",".join(cluster.DEFAULT)
        + "; --only rules = "
        + ",".join(rules.DEFAULT),
    )
    parser.add_argument(
        "--quick", action="store_true", help="short windows and few connections (< 2 min)"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="SCENARIO",
        help="run only these scenarios (comma-separated or repeated): "
        f"{', '.join(ALL_SCENARIOS)}, cluster",
    )
    parser.add_argument(
        "--brokers",
        default=",".join(BROKERS),
        help=f"which brokers to measure, comma-separated (default: {','.join(BROKERS)})",
    )
    parser.add_argument(
        "--connections",
        type=int,
        help="idle connections to open (default 2000, quick 500; cluster-idle 100000, quick 2000)",
    )
    parser.add_argument(
        "--hold",
        type=float,
        help="seconds to hold the idle connections open before checking them (0; "
        "cluster-idle 60, quick 5)",
    )
    parser.add_argument(
        "--nodes",
        type=int,
        help=f"cluster-idle: nodes to spread the connections over (default: one per "
        f"{cluster.PER_NODE:,}, at least 2)",
    )
    parser.add_argument(
        "--revocations",
        type=int,
        help="cluster-revoke: certificates revoked one by one (default 200; quick 50)",
    )
    parser.add_argument(
        "--devices",
        type=int,
        default=10000,
        help="rotation: devices whose certificates are rotated (10000)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=100,
        help="rotation: rotations in progress at once, in all (100)",
    )
    parser.add_argument(
        "--stream-rate",
        type=float,
        default=1000,
        help="rotation: msg/s of the steady QoS 1 stream measured before and during (1000)",
    )
    parser.add_argument(
        "--rotation-grace",
        type=int,
        default=0,
        help="rotation: hours before the old certificate is deactivated (0)",
    )
    parser.add_argument(
        "--rotation-procs",
        type=int,
        default=2,
        help="rotation: processes the devices share (2)",
    )
    parser.add_argument(
        "--idle-procs",
        type=int,
        help="processes the idle connections share (default: one per 25,000)",
    )
    parser.add_argument(
        "--duration", type=float, help="measured seconds per run (default 5; quick 1.5)"
    )
    parser.add_argument(
        "--warmup", type=float, help="seconds before measuring (default 1; quick 0.5)"
    )
    parser.add_argument(
        "--rate", type=float, default=20000, help="offered msg/s in the latency run (20000)"
    )
    parser.add_argument(
        "--latency-qos", type=int, choices=(0, 1), default=1, help="QoS of the latency run (1)"
    )
    parser.add_argument("--publishers", type=int, default=10, help="publishing connections (10)")
    parser.add_argument(
        "--publisher-procs", type=int, default=1, help="processes the publishers share (1)"
    )
    parser.add_argument(
        "--subscribers",
        type=int,
        default=1,
        help="qos0/qos1: subscriber connections, one process each, on bench/<k>/# (1: one "
        "on bench/#)",
    )
    parser.add_argument(
        "--mosquitto-nodelay",
        choices=("true", "false"),
        default="true",
        help="the private Mosquitto's set_tcp_nodelay (true, like asyncio's sockets; false is "
        "Mosquitto's default)",
    )
    parser.add_argument(
        "--connect-concurrency", type=int, default=16, help="clients connecting at once (16)"
    )
    parser.add_argument(
        "--connect-procs", type=int, default=2, help="processes the connecting clients share (2)"
    )
    parser.add_argument(
        "--paced-devices", type=int, default=2000, help="devices in the paced run (2000)"
    )
    parser.add_argument(
        "--paced-rate",
        type=float,
        default=20000,
        help="msg/s all paced devices send together (20000, i.e. 10 each)",
    )
    parser.add_argument(
        "--paced-procs", type=int, default=4, help="processes the paced devices share (4)"
    )
    parser.add_argument(
        "--durable-sync",
        choices=("normal", "full"),
        default="normal",
        help="durable: Bastion's [sessions] synchronous setting (normal)",
    )
    parser.add_argument(
        "--mosquitto-autosave",
        type=int,
        default=1,
        help="durable: Mosquitto's autosave_interval, in changes (1: save after every change)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per scenario and broker; the median is kept (1)"
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="S",
        help="before each run, wait up to S s for other work on the machine to stop (0)",
    )
    parser.add_argument(
        "--detect-profile",
        choices=("static", "ml", "both"),
        default="static",
        help="detect-sim: the security profile to score (static)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results JSON file")
    args = parser.parse_args(argv)

    only = None
    if args.only:
        only = [
            {"cluster": ",".join(cluster.DEFAULT), "rules": ",".join(rules.DEFAULT)}.get(v.strip(), v)
            for value in args.only
            for v in value.split(",")
        ]
    scenarios = _choices(only, ALL_SCENARIOS, parser, "--only") if only else tuple(SCENARIOS)
    chosen_brokers = _choices([args.brokers], BROKERS, parser, "--brokers")
    quick = args.quick
    duration = args.duration if args.duration is not None else (1.5 if quick else 5.0)
    if duration <= 0 or (args.connections is not None and args.connections < 10):
        parser.error("--duration must be positive and --connections at least 10")
    if args.devices < 1 or args.stream_rate <= 0 or args.rotation_grace < 0:
        parser.error("--devices must be >= 1, --stream-rate positive, --rotation-grace >= 0")
    if (args.hold or 0) < 0 or args.paced_devices < 1 or args.paced_rate <= 0 or args.rate <= 0:
        parser.error("--hold must be >= 0, --paced-devices >= 1, the rates positive")
    if args.mosquitto_autosave < 1:
        parser.error("--mosquitto-autosave must be at least 1 (0 would never save)")
    return Settings(
        quick=quick,
        scenarios=scenarios,
        brokers=chosen_brokers,
        warmup=args.warmup if args.warmup is not None else (0.5 if quick else 1.0),
        duration=duration,
        connections=args.connections or (500 if quick else 2000),
        hold=args.hold or 0.0,
        idle_procs=max(1, args.idle_procs) if args.idle_procs else None,
        rate=args.rate,
        latency_qos=args.latency_qos,
        publishers=args.publishers,
        publisher_procs=max(1, min(args.publisher_procs, args.publishers)),
        subscribers=max(1, min(args.subscribers, args.publishers)),
        mosquitto_nodelay=args.mosquitto_nodelay == "true",
        connect_concurrency=args.connect_concurrency,
        connect_procs=max(1, args.connect_procs),
        paced_devices=args.paced_devices,
        paced_rate=args.paced_rate,
        paced_procs=max(1, args.paced_procs),
        durable_sync=args.durable_sync,
        mosquitto_autosave=args.mosquitto_autosave,
        ceiling_duration=min(duration, 1.0 if quick else 3.0),
        nodes=max(2, args.nodes) if args.nodes else None,
        cluster_connections=args.connections or (2000 if quick else 100_000),
        cluster_hold=args.hold if args.hold is not None else (5.0 if quick else 60.0),
        revocations=max(1, args.revocations or (50 if quick else 200)),
        devices=args.devices,
        concurrency=max(1, args.concurrency),
        stream_rate=args.stream_rate,
        rotation_grace=args.rotation_grace,
        rotation_procs=max(1, args.rotation_procs),
        quiet_wait=max(0.0, args.quiet_wait),
        repeat=max(1, args.repeat),
        output=args.output,
        detect_profile=args.detect_profile,
    )


def _choices(
    values: list[str], allowed: Any, parser: argparse.ArgumentParser, flag: str
) -> tuple[str, ...]:
    picked = [v.strip() for value in values for v in value.split(",") if v.strip()]
    unknown = [v for v in picked if v not in allowed]
    if unknown or not picked:
        parser.error(f"{flag}: unknown {unknown or 'empty'}; choose from {', '.join(allowed)}")
    return tuple(v for v in allowed if v in picked)  # canonical order


# ------------------------------------------------------------------ brokers


class Broker(Protocol):
    label: str

    @property
    def pid(self) -> int | None: ...

    def start(self) -> loadgen.Endpoint: ...

    def stop(self) -> None: ...

    def log_tail(self) -> str: ...


class DurableBroker(Broker, Protocol):
    """A broker the durability scenario may kill (SIGKILL) and start again on its data."""

    settings: str
    """Its durability settings, as printed and recorded."""

    def kill(self) -> None: ...

    def restart(self) -> loadgen.Endpoint: ...


@dataclass
class Bench:
    """Everything one bench run holds: settings, brokers, results, errors."""

    settings: Settings
    workdir: Path
    pki: brokers.BenchPki | None = None
    brokers: dict[str, Broker] = field(default_factory=dict)
    durable_brokers: dict[str, DurableBroker] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ceiling: dict[str, Any] | None = None
    versions: dict[str, Any] = field(default_factory=dict)
    load_at_start: tuple[float, float, float] = field(default_factory=procstat.load_average)

    def prepare(self) -> None:
        """Create the bench CA and the brokers; a broker that cannot be set up is reported
        and left out, the others still run."""
        self.pki = brokers.BenchPki.create(self.workdir / "pki")
        self.versions["bench_certificates"] = brokers.describe_certificate(
            self.pki.client.cert_file
        )
        if "bastion" in self.settings.brokers:
            try:
                install = brokers.BastionInstall.create(self.workdir)
            except (brokers.BrokerError, OSError, subprocess.TimeoutExpired) as exc:
                self._unavailable("bastion", f"setup failed: {exc}")
            else:
                self.brokers["bastion"] = brokers.BastionBroker(install, self.workdir)
                if "durable" in self.settings.scenarios:
                    # Copies the data directory now, before any broker has run on it.
                    self.durable_brokers["bastion"] = brokers.DurableBastion(
                        install, self.workdir, self.settings.durable_sync
                    )
                self.versions["bastion_certificates"] = install.server_key_type
                self.versions["bastion_provisioning"] = install.provisioning
                if not install.provisioning.startswith("bench/"):
                    self.warnings.append(f"bastion: registered by {install.provisioning}")
        if "mosquitto" in self.settings.brokers:
            mosquitto = brokers.MosquittoBroker(
                self.pki, self.workdir, nodelay=self.settings.mosquitto_nodelay
            )
            self.brokers["mosquitto"] = mosquitto
            self.versions["mosquitto"] = mosquitto.version
            self.versions["mosquitto_tcp_nodelay"] = self.settings.mosquitto_nodelay
            if "durable" in self.settings.scenarios:
                self.durable_brokers["mosquitto"] = brokers.DurableMosquitto(
                    self.pki,
                    self.workdir,
                    self.settings.mosquitto_autosave,
                    nodelay=self.settings.mosquitto_nodelay,
                )
        if "system" in self.settings.brokers:
            self.brokers["system"] = brokers.SystemMosquitto()

    def _unavailable(self, key: str, reason: str) -> None:
        self.unavailable[key] = reason
        # The system Mosquitto is only a reference: its absence is not a failure.
        (self.warnings if key == "system" else self.errors).append(f"{key}: {reason}")
        _banner(
            f"{self.brokers[key].label if key in self.brokers else key} IS NOT MEASURED", reason
        )

    def run(
        self,
        scenario: str,
        measure: Callable[[loadgen.Endpoint, Any], Any],
        brokers: dict[str, Any] | None = None,
        preamble: Callable[[], None] | None = None,
    ) -> None:
        """Run one scenario against every available broker, ``--repeat`` times each, with
        a fresh broker process every time; keep the run with the median headline figure.

        The brokers take turns (first run of each, then the second of each, ...), so that
        a slow spell of the machine (other people's work, or the host's) falls on both
        rather than on one broker's runs.

        ``measure(endpoint, broker)`` measures one started broker; ``brokers`` replaces
        the usual ones (the durability scenario's are set up differently); ``preamble``
        runs after the scenario's heading.
        """
        print(f"\n== {scenario}: {ALL_SCENARIOS[scenario]}", flush=True)
        if preamble is not None:
            preamble()
        results = self.details.setdefault(scenario, {})
        chosen = self.brokers if brokers is None else brokers
        runs: dict[str, list[dict[str, Any]]] = {key: [] for key in chosen}
        for _ in range(self.settings.repeat):
            for key, broker in chosen.items():
                if "error" in results.get(key, {}):
                    continue
                outcome = self._run_once(scenario, key, broker, measure)
                if "error" in outcome:
                    results[key] = outcome
                else:
                    runs[key].append(outcome)
        headline = HEADLINE[scenario]
        for key, done in runs.items():
            if key in results:
                continue  # failed
            done.sort(key=lambda r: (r[headline] is None, r[headline] or 0.0))
            results[key] = {**done[len(done) // 2], "runs": [r[headline] for r in done]}
            for name in EVERY_RUN.get(scenario, ()):
                results[key][f"{name}_runs"] = [r[name] for r in done]

    def _run_once(
        self,
        scenario: str,
        key: str,
        broker: Broker,
        measure: Callable[[loadgen.Endpoint, Any], Any],
    ) -> dict[str, Any]:
        if key in self.unavailable:
            return {"error": self.unavailable[key]}
        _wait_for_quiet_machine(self.settings.quiet_wait)
        try:
            endpoint = broker.start()
        except brokers.BrokerError as exc:
            self._unavailable(key, f"did not start: {exc}")
            return {"error": f"did not start: {exc}"}
        began = time.monotonic()
        try:
            measured = measure(endpoint, broker)
            result: dict[str, Any] = measured if isinstance(measured, dict) else asdict(measured)
        except loadgen.LoadError as exc:
            broker.stop()
            log = broker.log_tail()
            error = f"{exc}\nbroker log (last lines):\n{log}" if log.strip() else str(exc)
            self.errors.append(f"{scenario} on {broker.label}: {error}")
            print(f"   {broker.label:<18} FAILED: {_first_line(str(exc))}", flush=True)
            return {"error": error}
        finally:
            broker.stop()
        note = ""
        if result.get("other_cores", 0.0) > OTHER_LOAD_LIMIT:
            note = f"  DISTURBED: other processes used {result['other_cores']:.2f} cores"
            self.warnings.append(f"{scenario} on {broker.label}:{note.split(':', 1)[1]}")
        idle = scenario in ("idle", "cluster-idle")
        if idle and result["connections_held"] < result["connections"]:
            # The figures are kept (they show how far it got); the run still fails.
            self.errors.append(
                f"idle on {broker.label}: held {result['connections_held']} of "
                f"{result['connections']} connections ({result['failed']} failed, "
                f"{result['skipped']} not tried, {result['connections_lost']} closed by the "
                f"broker, {result['pings_sent'] - result['pings_answered']} pings unanswered)"
                f"; first failure: {result['first_failure'] or result['first_ping_failure']}"
                + (f"; stopped: {result['stopped']}" if result["stopped"] else "")
            )
        print(
            f"   {broker.label:<18} {_progress(scenario, result)}"
            f"  ({time.monotonic() - began:.1f} s){note}",
            flush=True,
        )
        return result


def _wait_for_quiet_machine(limit: float, step: float = 1.0) -> None:
    """Wait (at most ``limit`` s) until the machine's cores were busy for less than
    ``OTHER_LOAD_LIMIT`` over ``step`` s: nothing of the bench runs between two runs, so
    that is other people's work. A shared machine's tests come in bursts."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = procstat.machine_busy_seconds()
        time.sleep(step)
        if procstat.machine_busy_seconds() - before < OTHER_LOAD_LIMIT * step:
            return


def _banner(title: str, text: str) -> None:
    rule = "!" * 78
    print(f"\n{rule}\n!! {title}\n{rule}\n{text.rstrip()}\n{rule}", flush=True)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "?"


BROKER_BOUND = 0.9
"""Broker cores from which a single-threaded broker counts as the bottleneck."""
IDLE_ENOUGH = 0.25
"""Idle cores from which the machine counts as not full."""


def _limit(r: dict[str, Any]) -> str:
    """Who set a throughput figure, judged from the cores each side used."""
    broker = r.get("broker_cores")
    if broker is None:
        return "broker CPU unknown"
    if broker >= BROKER_BOUND:
        return "broker-bound"
    if r["idle_cores"] < IDLE_ENOUGH or r["other_cores"] > OTHER_LOAD_LIMIT:
        return "the broker did not get its core (machine full or shared): rerun"
    return "BROKER BELOW ONE CORE WITH CORES IDLE: held back by its peers"


def _progress(scenario: str, r: dict[str, Any]) -> str:
    if scenario in cluster.SCENARIOS:
        return cluster.progress(scenario, r)
    if scenario in rules.SCENARIOS:
        return rules.progress(scenario, r)
    if scenario in rotation.SCENARIOS:
        return rotation.progress(scenario, r)
    cores = f"broker {report.num(r.get('broker_cores'), 2)} cores, generator {report.num(r.get('generator_cores'), 2)}"
    if scenario in ("qos0", "qos1"):
        lost = f", {r['connections_lost']} CONNECTIONS LOST" if r["connections_lost"] else ""
        subs = r["subscribers"]
        return (
            f"{report.num(r['delivered_per_s'])} msg/s delivered, loss {r['loss']:.1%}, {cores} "
            f"(publishers {report.num(r['publisher_cores'], 2)}, "
            f"{subs} subscriber{'s' if subs > 1 else ''} {report.num(r['subscriber_cores'], 2)}), "
            f"idle {report.num(r['idle_cores'], 2)}: {_limit(r)}{lost}"
        )
    if scenario == "idle":
        held = (
            f"held {r['connections_held']:,} of {r['connections']:,}"
            f" after {r['hold_seconds']:g} s ({r['connections_lost']} lost,"
            f" {r['failed']} failed, pings {r['pings_answered']}/{r['pings_sent']})"
        )
        return (
            f"{report.num(r['bytes_per_connection'] / 1024, 1)} KiB/connection over "
            f"{r['measured_connections']:,} connections; {held}; opened in "
            f"{report.num(r['open_seconds'], 1)} s ({report.num(r['opens_per_s'])}/s); peak broker RSS "
            f"{report.num(r['broker_peak_rss'] / 2**20)} MiB; generator "
            f"{report.num(r['generator_bytes_per_connection'] / 1024, 1)} KiB/connection"
            + (f"; STOPPED: {r['stopped']}" if r["stopped"] else "")
        )
    if scenario == "paced":
        lost = f", {r['connections_lost']} CONNECTIONS LOST" if r["connections_lost"] else ""
        if abs(r["delivered_per_s"] - r["sent_per_s"]) > 0.05 * r["sent_per_s"]:
            lost += ", BROKER FELL BEHIND OR CAUGHT UP in the window: read the whole-run figure"
        return (
            f"{report.num(r['broker_us_per_msg'], 2)} us broker CPU/msg "
            f"(whole run {report.num(r['broker_us_per_msg_whole_run'], 2)}), "
            f"{report.num(r['delivered_per_s'])} of {report.num(r['sent_per_s'])} msg/s delivered "
            f"(offered {report.num(r['offered_per_s'])}), loss {r['loss']:.1%}, {cores} "
            f"({report.num(r['generator_us_per_msg'], 1)} us/msg), {r['devices']} devices connected in "
            f"{report.num(r['connect_seconds'], 1)} s, broker quiet {report.num(r['settle_seconds'], 1)} s "
            f"later{lost}"
        )
    if scenario == "connect":
        return f"{report.num(r['connects_per_s'])} connects/s ({r['failed']} failed), {cores}"
    if scenario == "latency":
        return (
            f"p50 {report.num(r['p50_ms'], 2)} ms, p99 {report.num(r['p99_ms'], 2)} ms over "
            f"{r['samples']} messages, {report.num(r['delivered_per_s'])} msg/s delivered, {cores}"
        )
    if scenario == "durable":
        lost = f"{r['acked_lost']:,} LOST" if r["acked_lost"] else "none lost"
        open_ = r["publishers_still_open"]
        return (
            f"{report.num(r['acked_per_s'])} msg/s acknowledged ({report.num(r['broker_us_per_msg'], 2)} us "
            f"broker CPU/msg), {cores}; kill -9 with {r['acked']:,} acknowledged: {lost}; "
            f"after the restart ({report.num(r['restart_seconds'], 1)} s, session "
            f"{'kept' if r['session_present'] else 'GONE'}) {r['delivered']:,} delivered in "
            f"{report.num(r['drain_seconds'], 1)} s ({r['delivered_unacked']:,} never acknowledged, "
            f"{r['duplicates']:,} duplicates)"
            + (f", {open_} PUBLISHER CONNECTIONS OUTLIVED THE KILL" if open_ else "")
            + (
                f", DRAIN CUT OFF after {durability.DRAIN_LIMIT:.0f} s while still delivering: "
                "LOST includes messages not delivered yet"
                if r["drain_cut_off"]
                else ""
            )
        )
    return ""


# ------------------------------------------------------------------ scenarios


def run_all(bench: Bench) -> None:
    s = bench.settings
    if "ceiling" in s.scenarios or "cluster-qos0" in s.scenarios or "cluster-qos1" in s.scenarios:
        print("\n== ceiling: " + SCENARIOS["ceiling"], flush=True)
        assert bench.pki is not None
        _wait_for_quiet_machine(s.quiet_wait)
        try:
            figures = loadgen.ceiling(
                bench.pki.server,
                bench.pki.client,
                publishers=s.publishers,
                processes=s.publisher_procs,
                warmup=min(s.warmup, 0.5),
                duration=s.ceiling_duration,
            )
        except loadgen.LoadError as exc:
            bench.errors.append(f"ceiling: {exc}")
            print(f"   FAILED: {exc}")
        else:
            bench.ceiling = {k: asdict(v) for k, v in figures.items()}
            for name, fig in figures.items():
                note = ""
                if fig.other_cores > OTHER_LOAD_LIMIT:
                    note = f"  DISTURBED: other processes used {fig.other_cores:.2f} cores"
                    bench.warnings.append(f"ceiling {name}:{note.split(':', 1)[1]}")
                print(
                    f"   {name:<15} {report.num(fig.msgs_per_s):>10} msg/s, generator "
                    f"{fig.generator_cores:.2f} cores: {fig.generator_us_per_msg:.2f} us/msg, "
                    f"~{report.num(1e6 / fig.generator_us_per_msg)} msg/s per core{note}",
                    flush=True,
                )
    # Idle memory goes first: the system Mosquitto is never restarted, and its heap, once
    # grown by the throughput runs, would absorb new connections without growing RSS.
    if "idle" in s.scenarios:
        bench.run("idle", lambda ep, b: _idle(ep, b.pid, s))
    if "qos0" in s.scenarios:
        bench.run(
            "qos0",
            lambda ep, b: loadgen.fan_in(
                ep,
                qos=0,
                publishers=s.publishers,
                processes=s.publisher_procs,
                subscribers=s.subscribers,
                broker_pid=b.pid,
                warmup=s.warmup,
                duration=s.duration,
            ),
        )
    if "qos1" in s.scenarios:
        bench.run(
            "qos1",
            lambda ep, b: loadgen.fan_in(
                ep,
                qos=1,
                publishers=s.publishers,
                processes=s.publisher_procs,
                subscribers=s.subscribers,
                broker_pid=b.pid,
                warmup=s.warmup,
                duration=s.duration,
            ),
        )
    if "connect" in s.scenarios:
        bench.run(
            "connect",
            lambda ep, b: loadgen.connect_rate(
                ep,
                concurrency=s.connect_concurrency,
                processes=s.connect_procs,
                broker_pid=b.pid,
                warmup=s.warmup,
                duration=s.duration,
            ),
        )
    if "latency" in s.scenarios:
        bench.run(
            "latency",
            lambda ep, b: loadgen.latency(
                ep,
                rate=s.rate,
                qos=s.latency_qos,
                publishers=s.publishers,
                processes=s.publisher_procs,
                broker_pid=b.pid,
                warmup=s.warmup,
                duration=s.duration,
            ),
        )
    if "paced" in s.scenarios:
        bench.run(
            "paced",
            lambda ep, b: loadgen.paced(
                ep,
                devices=s.paced_devices,
                rate=s.paced_rate,
                processes=s.paced_procs,
                broker_pid=b.pid,
                warmup=s.warmup,
                duration=s.duration,
            ),
        )
    if "durable" in s.scenarios and bench.durable_brokers:
        bench.run(
            "durable",
            lambda ep, b: _durable(ep, b, s),
            brokers=dict(bench.durable_brokers),
            preamble=lambda: _durable_preamble(bench),
        )
    cluster.run_all(bench)
    rules.run_all(bench)
    if "detect-sim" in s.scenarios:
        detect_sim.run_in_bench(bench)
    rotation.run_all(bench)
    indexing.run_all(bench)


def _durable_preamble(bench: Bench) -> None:
    """Say how each broker keeps what it acknowledges, and what the generator can do."""
    s = bench.settings
    print(
        f"   Mosquitto: persistence true, autosave_on_changes true, autosave_interval "
        f"{s.mosquitto_autosave}: it saves its whole database at the end of every main-loop "
        f"pass after which {s.mosquitto_autosave} change(s) are unsaved (1 is the only setting "
        "that saves every message; the PUBACK still goes out before the save at the end of "
        "the pass)",
        flush=True,
    )
    print(
        f"   Bastion: [sessions] durable = true, synchronous = \"{s.durable_sync}\" where this "
        "Bastion knows [sessions] (each run says what it set); "
        f"[limits] max_queued_messages = {brokers.DURABLE_MAX_QUEUED:,} (Mosquitto: the same)",
        flush=True,
    )
    print(
        f"   Their data: {procstat.filesystem(str(bench.workdir))} (the bench's temporary "
        "directory; TMPDIR moves it, e.g. off a tmpfs, where fsync costs nothing)",
        flush=True,
    )
    assert bench.pki is not None
    try:
        figure = durability.numbered_ceiling(
            bench.pki.server,
            bench.pki.client,
            publishers=s.publishers,
            processes=s.publisher_procs,
            warmup=min(s.warmup, 0.5),
            duration=s.ceiling_duration,
        )
    except loadgen.LoadError as exc:
        bench.errors.append(f"durable generator ceiling: {exc}")
        print(f"   generator ceiling FAILED: {exc}", flush=True)
        return
    bench.ceiling = {**(bench.ceiling or {}), "publish_qos1_numbered": asdict(figure)}
    note = ""
    if figure.other_cores > OTHER_LOAD_LIMIT:
        note = f"  DISTURBED: other processes used {figure.other_cores:.2f} cores"
        bench.warnings.append(f"durable generator ceiling:{note.split(':', 1)[1]}")
    print(
        f"   {'generator ceiling':<18} {report.num(figure.msgs_per_s)} msg/s acknowledged by a "
        f"do-nothing server, generator {figure.generator_cores:.2f} cores: "
        f"{figure.generator_us_per_msg:.2f} us/msg, ~{report.num(1e6 / figure.generator_us_per_msg)}"
        f" msg/s per core{note}",
        flush=True,
    )


def _durable(
    endpoint: loadgen.Endpoint, broker: DurableBroker, s: Settings
) -> durability.DurableResult:
    def restart() -> loadgen.Endpoint:
        try:
            return broker.restart()
        except brokers.BrokerError as exc:
            raise loadgen.LoadError(f"did not start again after kill -9: {exc}") from None

    return durability.durable(
        endpoint,
        kill=broker.kill,
        restart=restart,
        settings=broker.settings,
        publishers=s.publishers,
        processes=s.publisher_procs,
        warmup=s.warmup,
        duration=s.duration,
        broker_pid=broker.pid,
    )


def _idle(endpoint: loadgen.Endpoint, pid: int | None, s: Settings) -> loadgen.IdleResult:
    if pid is None:
        raise loadgen.LoadError("the broker's pid is unknown, so its memory cannot be read")
    return loadgen.idle_memory(
        endpoint,
        connections=s.connections,
        broker_pid=pid,
        hold=s.hold,
        processes=s.idle_procs,
    )


# ------------------------------------------------------------------ main


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    # Ctrl-C and SIGTERM both unwind through the finally blocks that stop brokers and
    # workers (SIGINT may arrive ignored when started in the background).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    most = max(
        settings.connections if "idle" in settings.scenarios else 0,
        settings.paced_devices if "paced" in settings.scenarios else 0,
        settings.devices + 100 if "rotation" in settings.scenarios else 0,
    )
    fd_limit = loadgen.raise_fd_limit(most + 4096)
    if most + loadgen.FD_MARGIN > fd_limit:
        print(
            f"warning: RLIMIT_NOFILE is {fd_limit} and could not be raised (raising the hard"
            f" limit takes CAP_SYS_RESOURCE): a broker cannot hold {most} connections here"
        )
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    bench = Bench(settings, workdir)
    interrupted = False
    try:
        bench.prepare()
        run_all(bench)
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: brokers and workers stopped; partial results follow", flush=True)
    finally:
        for broker in [*bench.brokers.values(), *bench.durable_brokers.values()]:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    figures = report.summary(bench)
    figures.update(cluster.summary(bench))
    figures.update(rules.summary(bench))
    figures.update(detect_sim.summary(bench))
    figures.update(rotation.summary(bench))
    figures.update(indexing.summary(bench))
    cluster.print_tables(bench)
    rules.print_tables(bench)
    rotation.print_tables(bench)
    report.print_table(bench)
    path = report.write_json(bench, figures, interrupted)
    print(f"\nwrote {path} ({time.monotonic() - started:.0f} s)")
    if interrupted:
        return 130
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
