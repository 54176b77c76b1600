"""Rotation scenario (issue 19): a fleet rotates its certificates while messages flow.

Theory of operation
-------------------
:class:`RotationBroker` is ``bastion serve`` on a data directory of its own, made once
per bench run (``bastion init``, the bench device, then ``bastion_setup.py --rotation
N``): ``N`` devices ``bench-rot-<k>`` whose certificates, from Bastion's CA, expire in 30
days, in a thing group whose rotation policy starts jobs for certificates that expire
within 60 days and deactivates the old certificate ``--rotation-grace`` hours (0) after
the rotation is confirmed. Every run starts from a fresh copy of that directory, never
swept, so the sweep that ``bastion serve`` runs when it starts finds every device's
certificate due and starts one rotation job for each (and none for the bench device).
The bench waits for the sweep's log line and reads from the log how long it took.

Then, in one :class:`workers.WorkerGroup`:

1. the devices (``rotation_devices.device_job``, ``--rotation-procs`` processes) connect
   with their old certificates, and a steady QoS 1 stream starts: one publisher offering
   ``--stream-rate`` msg/s on ``bench/<id>`` and one subscriber on ``bench/#`` recording
   every message's latency (``workers.publisher_job``/``subscriber_job`` of the latency
   scenario, with the bench device's certificate);
2. after ``--warmup`` the stream is measured for ``--duration`` s: *before*;
3. the devices are told to rotate, ``--concurrency`` at a time in all: *during* runs from
   then until the last device's SUCCEEDED is answered;
4. the stream stops; the bench reads the store (``bastion_setup.py --rotation-status``)
   until the server has confirmed every rotation and, with a grace of 0, deactivated
   every old certificate (at most :data:`SETTLE_LIMIT` s plus 20 ms per device).

The figures: rotations completed per second (end to end, device-side), one rotation's
duration p50/p99 and its steps, failures with reasons, the stream's throughput and
latency during the rotation as ratios to before (the peer measured in the same run),
CPU of the broker and of the generator in both windows, and the final state of every
rotation and certificate. The generator's own ceiling (:func:`ceiling`) runs first: what
one rotation costs the client side alone.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import sys
import time
from array import array
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import procstat
import report
from brokers import BastionBroker, BastionInstall, BrokerError, _run_setup_step
from loadgen import Endpoint, LoadError, TlsFiles, _split, _wait_for_drain, _wait_for_quiet
from rotation_devices import STEPS, DeviceSpec, ceiling_job, device_job
from workers import (
    READY_TIMEOUT,
    PublisherSpec,
    Window,
    WorkerGroup,
    new_event,
    publisher_job,
    sink_job,
    subscriber_job,
)

SCENARIOS = {
    "rotation": "certificate rotation of --devices devices (sweep -> job -> CSR -> reconnect "
    "-> SUCCEEDED) with a steady QoS 1 stream measured before and during",
}
DEFAULT = ("rotation",)
HEADLINE = {"rotation": "rotations_per_s"}
SETTLE_LIMIT = 60.0
"""Seconds (plus 50 ms per device) the server has, after the last device finished, to
confirm every rotation and retire the old certificates."""
CEILING_CYCLES = 200
"""Keys, contexts and handshakes per ceiling worker."""

_SETUP = str(Path(__file__).with_name("bastion_setup.py"))
_LOG_TIME = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
_SWEEP = re.compile(_LOG_TIME + r" .*rotation sweep: (\d+) certificates, (\d+) due, "
                    r"(\d+) rotations started")
_STARTED = re.compile(_LOG_TIME + r" .*rotation \S+ of thing \S+ .* started: job")


class RotationBroker(BastionBroker):
    """``bastion serve`` on a fresh copy of a data directory holding the rotating fleet."""

    label = "Bastion"

    def __init__(self, workdir: Path, devices: int, grace_hours: int) -> None:
        base = workdir / "rotation"
        install = BastionInstall.create(base)  # a data dir of its own, never served
        out = base / "devices"
        began = time.monotonic()
        done = _run_setup_step(
            [sys.executable, _SETUP, "--data-dir", str(install.data_dir), "--out", str(out),
             "--rotation", str(devices), "--grace", str(grace_hours)],
            timeout=120 + devices * 0.1)
        self.setup: dict[str, Any] = json.loads(done.strip().splitlines()[-1])
        self.setup["seconds"] = time.monotonic() - began
        super().__init__(install, workdir)
        self.devices = devices
        self.grace_hours = grace_hours
        self.start_timeout = 30 + devices * 0.05  # the sweep runs while it starts
        self.pristine = install.data_dir
        self.data_dir = base / "run-data"
        self.devices_file = out / "devices.json"
        self.key_dir = out
        self.ca_file = out / "root-ca.pem"
        self.stream_tls: TlsFiles = install.tls
        self.log_path = workdir / "bastion-rotation-0.log"

    def things(self) -> list[str]:
        return [name for name, _ in json.loads(self.devices_file.read_text(encoding="utf-8"))]

    def start(self) -> Endpoint:
        self.runs += 1
        shutil.rmtree(self.data_dir, ignore_errors=True)
        shutil.copytree(self.pristine, self.data_dir)
        name = f"bastion-rotation-{self.runs}.log"
        self.log_path = self._workdir / name
        return self._serve(self.data_dir, name, "--api-port", "0")

    def wait_for_sweep(self, timeout: float) -> dict[str, Any]:
        """Wait for the sweep's log line; how many rotations it started, and in how long
        (from its first rotation's log line to its own, by the log's clock).

        :raises LoadError: no sweep line in time.
        """
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
            if (sweep := _SWEEP.search(text)) is not None:
                break
            if time.monotonic() > deadline:
                raise LoadError(f"no rotation sweep in the broker's log after {timeout:.0f} s")
            time.sleep(0.2)
        first = _STARTED.search(text)
        end = _log_time(sweep.group(1))
        seconds = (end - _log_time(first.group(1))).total_seconds() if first else 0.0
        started = int(sweep.group(4))
        return {"certificates": int(sweep.group(2)), "due": int(sweep.group(3)),
                "started": started, "seconds": seconds,
                "jobs_per_s": started / seconds if seconds > 0 else None}

    def status(self) -> dict[str, Any]:
        """The store's tally of the rotations and certificates (the server may run)."""
        done = _run_setup_step([sys.executable, _SETUP, "--data-dir", str(self.data_dir),
                                "--rotation-status", str(self.devices_file)],
                               timeout=120 + self.devices * 0.05)
        tally: dict[str, Any] = json.loads(done.strip().splitlines()[-1])
        return tally

    def expected(self) -> tuple[str, str]:
        """The rotation status and old-certificate status the policy says a confirmed
        rotation reaches during the run."""
        if self.grace_hours == 0:
            return "OLD_DEACTIVATED", "INACTIVE"
        return "CONFIRMED", "ACTIVE"


def _log_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f")


# ------------------------------------------------------------------ the generator's ceiling


def ceiling(server: TlsFiles, client: TlsFiles, processes: int) -> dict[str, Any]:
    """What one rotation costs the client side alone, in ``processes`` workers at once:
    a key and CSR, a TLS context, a mutual-TLS handshake with CONNECT/CONNACK against the
    do-nothing server (Python too, on the same cores: the handshake rate is a lower
    bound).

    :raises LoadError: if a worker fails.
    """
    with WorkerGroup(hard_seconds=120) as sink_group:
        sink = sink_group.add(sink_job, server, 0, 64, 64)
        sink_group.start()
        endpoint = Endpoint("127.0.0.1", int(sink_group.ready[sink]["port"]), None)
        with WorkerGroup(hard_seconds=120) as group:
            slots = [group.add(ceiling_job, endpoint, client, CEILING_CYCLES)
                     for _ in range(processes)]
            group.start()
            group.go.set()
            results = group.wait_for("result", slots, 110)
    figures = {key: statistics.median(r[key] for r in results.values())
               for key in ("key_and_csr_s", "context_s", "handshake_s")}
    per_rotation = sum(figures.values())
    return {
        "key_and_csr_us": figures["key_and_csr_s"] * 1e6,
        "context_us": figures["context_s"] * 1e6,
        "handshake_us": figures["handshake_s"] * 1e6,
        "client_us_per_rotation": per_rotation * 1e6,
        "rotations_per_core": 1 / per_rotation if per_rotation else None,
        "handshakes_per_s": sum(r["handshakes_per_s"] for r in results.values()),
        "processes": processes,
    }


def preamble(bench: Any) -> None:
    """Print the generator's ceiling before the runs."""
    s = bench.settings
    assert bench.pki is not None
    try:
        figures = ceiling(bench.pki.server, bench.pki.client, s.rotation_procs)
    except LoadError as exc:
        bench.errors.append(f"rotation generator ceiling: {exc}")
        print(f"   generator ceiling FAILED: {exc}", flush=True)
        return
    bench.ceiling = {**(bench.ceiling or {}), "rotation_client": figures}
    print(
        f"   generator ceiling: client CPU per rotation {report.num(figures['client_us_per_rotation'])} us "
        f"(key + CSR {report.num(figures['key_and_csr_us'])}, TLS context "
        f"{report.num(figures['context_us'])}, handshake + CONNECT "
        f"{report.num(figures['handshake_us'])}): ~{report.num(figures['rotations_per_core'])} "
        f"rotations/s per core; {report.num(figures['handshakes_per_s'])} handshakes/s "
        f"against the do-nothing server in {figures['processes']} processes (a lower bound)",
        flush=True,
    )


# ------------------------------------------------------------------ the run


@dataclass(frozen=True, slots=True)
class StreamFigures:
    """The steady stream over one window."""

    seconds: float
    delivered_per_s: float
    """Messages generated in the window that arrived, per second of the window."""
    samples: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


def _stream(stamps: array[int], latencies: array[int], start_ns: int, end_ns: int
            ) -> StreamFigures:
    inside = sorted(latencies[k] for k in range(len(stamps)) if start_ns <= stamps[k] < end_ns)
    seconds = max(1e-9, (end_ns - start_ns) / 1e9)

    def pct(q: float) -> float | None:
        return inside[min(len(inside) - 1, int(q * len(inside)))] / 1e6 if inside else None

    return StreamFigures(seconds, len(inside) / seconds, len(inside), pct(0.5), pct(0.99),
                         inside[-1] / 1e6 if inside else None)


def _percentiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)

    def pct(q: float) -> float | None:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3 if ordered else None

    return {"p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "max_ms": ordered[-1] * 1e3 if ordered else None}


def _cores(window: Window, slots: list[int]) -> dict[str, float | None]:
    return {"broker_cores": window.broker_cores, "generator_cores": window.generator_cores,
            "device_cores": window.cores(slots), "idle_cores": window.idle_cores,
            "other_cores": window.other_cores}


def measure(endpoint: Endpoint, broker: RotationBroker, s: Any, bench: Any) -> dict[str, Any]:
    """One run (see the module docstring).

    :raises LoadError: if the sweep never ran, or a worker fails.
    """
    n = broker.devices
    sweep = broker.wait_for_sweep(60 + n * 0.05)
    things = broker.things()
    host, port = endpoint.host, endpoint.port
    stream = Endpoint(host, port, broker.stream_tls)
    prefix = f"bench-rotstream-{os.getpid()}"
    hard = 900 + n * 0.5
    spec_of = [DeviceSpec(chunk, str(broker.key_dir), str(broker.ca_file),
                          max(1, s.concurrency // s.rotation_procs))
               for chunk in _split(things, s.rotation_procs)]
    with WorkerGroup(hard_seconds=hard) as group:
        sub = group.add(subscriber_job, stream, f"{prefix}-sub", 1, True)
        pub = group.add(publisher_job, stream,
                        PublisherSpec((f"{prefix}-p0",), 1, 64, rate=s.stream_rate))
        rotate = new_event()
        devs = [group.add(device_job, Endpoint(host, port, None), spec, rotate)
                for spec in spec_of]
        group.start(ready_timeout=READY_TIMEOUT + n * 0.1)
        connected = sum(int(group.ready[d]["connected"]) for d in devs)
        connect_seconds = max(float(group.ready[d]["connect_seconds"]) for d in devs)
        settle = _wait_for_quiet(broker.pid)
        tree = procstat.trees(broker.pid)
        group.go.set()
        time.sleep(s.warmup)
        before_first = group.snapshot(tree)
        time.sleep(s.duration)
        before_last = group.snapshot(tree)
        print(f"   ... {connected:,} devices connected in {connect_seconds:.1f} s, stream "
              f"measured before; rotating, {s.concurrency} at a time", flush=True)
        rotate_ns = time.monotonic_ns()
        rotate.set()
        during_first = group.snapshot(tree)
        shown = [time.monotonic()]

        def progress() -> None:
            if time.monotonic() - shown[0] >= 10:
                shown[0] = time.monotonic()
                done = int(sum(group.counters[d] for d in devs))
                print(f"   ... {done:,} of {connected:,} rotations finished "
                      f"({(shown[0] - rotate_ns / 1e9):.0f} s)", flush=True)

        rotated = group.wait_for("rotated", devs, hard, poll=progress)
        during_last = group.snapshot(tree)
        group.stop([pub])
        _wait_for_drain(group, [sub], expected=2**62, quiet=0.5)
        received = group.stop([sub])[sub]
        ends = [r["last_end"] for r in rotated.values() if r["last_end"] is not None]
        end_ns = int(max(ends) * 1e9) if ends else during_last.at_ns
        settled_in, tally = _settle(broker, end_ns)
        settled = group.snapshot(tree)
        group.stop(devs)
    stamps, latencies = array("q"), array("q")
    stamps.frombytes(received["stamps"])
    latencies.frombytes(received["latencies"])
    before = _stream(stamps, latencies, before_first.at_ns, before_last.at_ns)
    during = _stream(stamps, latencies, rotate_ns, end_ns)
    durations: list[float] = []
    steps: dict[str, list[float]] = {step: [] for step in STEPS}
    failures: dict[str, int] = {}
    for r in rotated.values():
        durations.extend(array("d", r["durations"]))
        for step in STEPS:
            steps[step].extend(array("d", r["steps"][step]))
        for reason, count in r["failures"].items():
            failures[reason] = failures.get(reason, 0) + count
    succeeded = len(durations)
    seconds = (end_ns - rotate_ns) / 1e9
    want_rotation, want_old = broker.expected()
    old_ok = tally.get("old_certificates", {}).get(want_old, 0)
    rotations_ok = tally.get("rotations", {}).get(want_rotation, 0)
    during_window = Window(during_first, during_last, None)
    result: dict[str, Any] = {
        "devices": n, "concurrency": s.concurrency, "processes": s.rotation_procs,
        "grace_hours": broker.grace_hours, "setup": broker.setup, "sweep": sweep,
        "connected": connected, "connect_seconds": connect_seconds,
        "settle_seconds_before": settle,
        "succeeded": succeeded, "failed": n - succeeded, "failures": failures,
        "seconds": seconds, "rotations_per_s": succeeded / seconds if seconds > 0 else None,
        "rotation": _percentiles(durations),
        "steps_p50_ms": {k: _percentiles(v)["p50_ms"] for k, v in steps.items()},
        "steps_p99_ms": {k: _percentiles(v)["p99_ms"] for k, v in steps.items()},
        "stream_rate": s.stream_rate,
        "stream_before": _as_dict(before),
        "stream_during": _as_dict(during),
        "stream_delivered_ratio": _div(during.delivered_per_s, before.delivered_per_s),
        "stream_p50_ratio": _div(during.p50_ms, before.p50_ms),
        "stream_p99_ratio": _div(during.p99_ms, before.p99_ms),
        "cores_before": _cores(Window(before_first, before_last, None), devs),
        "cores_during": _cores(during_window, devs),
        "generator_ms_per_rotation": (during_window.cores(devs) * during_window.seconds
                                      / succeeded * 1e3 if succeeded else None),
        "broker_ms_per_rotation": _broker_ms(Window(before_first, before_last, None),
                                             Window(during_first, settled, None), succeeded),
        "server_state": tally, "server_settle_seconds": settled_in,
        "server_rotations_per_s": (rotations_ok / (seconds + settled_in)
                                   if seconds + settled_in > 0 else None),
        "expected_rotation_status": want_rotation, "expected_old_status": want_old,
        "old_certificates_as_policy_says": old_ok, "rotations_as_policy_says": rotations_ok,
        "server_state_as_policy_says": _as_policy_says(tally, want_rotation, want_old,
                                                       succeeded, n),
        "other_cores": max(during_window.other_cores,
                           Window(before_first, before_last, None).other_cores),
    }
    problems = []
    if succeeded < n:
        problems.append(f"{n - succeeded} of {n} rotations failed: {failures}")
    if sweep["started"] != n:
        problems.append(f"the sweep started {sweep['started']} rotations for {n} devices")
    if not result["server_state_as_policy_says"]:
        problems.append(f"server state after {settled_in:.0f} s: rotations "
                        f"{tally.get('rotations')}, old certificates "
                        f"{tally.get('old_certificates')} (want {succeeded} {want_rotation} / "
                        f"{want_old}, and the old certificate of a failed rotation ACTIVE)")
    for problem in problems:
        bench.errors.append(f"rotation: {problem}")
    return result


def _as_policy_says(tally: dict[str, Any], want_rotation: str, want_old: str,
                    succeeded: int, devices: int) -> bool:
    """Every successful rotation in the state the policy says, with its old certificate
    as the policy says; every failed one's old certificate still ACTIVE (a device that
    fails keeps its certificate)."""
    old = tally.get("old_certificates", {})
    if tally.get("rotations", {}).get(want_rotation, 0) != succeeded:
        return False
    if want_old == "ACTIVE":
        return bool(old.get("ACTIVE", 0) == devices)
    return bool(old.get(want_old, 0) == succeeded and old.get("ACTIVE", 0) == devices - succeeded)


def _broker_ms(before: Window, whole: Window, rotations: int) -> float | None:
    """Broker CPU per rotation from the start signal until the server settled, net of
    what the broker used before (the stream, the idle devices) over as long."""
    if not rotations or before.broker_cores is None or whole.broker_cores is None:
        return None
    return (whole.broker_cores - before.broker_cores) * whole.seconds / rotations * 1e3


def _settle(broker: RotationBroker, end_ns: int) -> tuple[float, dict[str, Any]]:
    """Read the store until every rotation is as the policy says (or the time is up);
    the seconds from the last device's end, and the last tally."""
    want_rotation, want_old = broker.expected()
    deadline = time.monotonic() + SETTLE_LIMIT + broker.devices * 0.05
    while True:
        try:
            tally = broker.status()
        except BrokerError as exc:
            raise LoadError(f"could not read the rotations from the store: {exc}") from None
        settled = (tally["rotations"].get(want_rotation, 0) == broker.devices
                   and tally["old_certificates"].get(want_old, 0) == broker.devices)
        # Rotations that may still move: open ones, and confirmed ones whose old
        # certificate the keeper has yet to deactivate (grace 0).
        moving = ("STARTED", "ISSUED") + (("CONFIRMED",) if want_rotation != "CONFIRMED" else ())
        pending = sum(tally["rotations"].get(k, 0) for k in moving)
        if settled or not pending or time.monotonic() > deadline:
            return time.monotonic() - end_ns / 1e9, tally
        time.sleep(0.5)


def _as_dict(figures: StreamFigures) -> dict[str, Any]:
    return {k: getattr(figures, k) for k in StreamFigures.__slots__}


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


# ------------------------------------------------------------------ reporting


def progress(scenario: str, r: dict[str, Any]) -> str:
    b, d = r["stream_before"], r["stream_during"]
    cb, cd = r["cores_before"], r["cores_during"]
    failed = (f", {r['failed']} FAILED: " + "; ".join(f"{v} {k}" for k, v in r["failures"].items())
              if r["failed"] else "")
    steps = ", ".join(f"{k.replace('_', '-')} {report.num(v, 0)}"
                      for k, v in r["steps_p50_ms"].items())
    state = r["server_state"]
    return (
        f"{r['succeeded']:,} of {r['devices']:,} rotated in {report.num(r['seconds'], 1)} s: "
        f"{report.num(r['rotations_per_s'], 1)} rotations/s{failed}; one rotation p50 "
        f"{report.num(r['rotation']['p50_ms'])} ms, p99 {report.num(r['rotation']['p99_ms'])} ms "
        f"(p50 ms: {steps})\n"
        f"      stream {report.num(r['stream_rate'])} msg/s QoS 1: before "
        f"{report.num(b['delivered_per_s'])} msg/s p50 {report.num(b['p50_ms'], 2)} p99 "
        f"{report.num(b['p99_ms'], 2)} ms; during {report.num(d['delivered_per_s'])} msg/s p50 "
        f"{report.num(d['p50_ms'], 2)} p99 {report.num(d['p99_ms'], 2)} ms; during/before: "
        f"throughput {report.num(r['stream_delivered_ratio'], 2)}, p50 "
        f"{report.num(r['stream_p50_ratio'], 2)}, p99 {report.num(r['stream_p99_ratio'], 2)}\n"
        f"      broker {report.num(cb['broker_cores'], 2)} -> {report.num(cd['broker_cores'], 2)} cores "
        f"({report.num(r['broker_ms_per_rotation'], 1)} ms CPU per rotation), devices "
        f"{report.num(cd['device_cores'], 2)} cores ({report.num(r['generator_ms_per_rotation'], 2)} ms "
        f"per rotation), idle {report.num(cd['idle_cores'], 2)}; sweep started "
        f"{r['sweep']['started']:,} jobs in {report.num(r['sweep']['seconds'], 1)} s; "
        f"{r['connected']:,} devices connected in {report.num(r['connect_seconds'], 1)} s\n"
        f"      server state {report.num(r['server_settle_seconds'], 1)} s after the last "
        f"device ({report.num(r['server_rotations_per_s'], 1)} rotations/s as the policy says,"
        f" from the start): rotations {state['rotations']}, old certificates {state['old_certificates']}"
        f" (policy: {r['expected_rotation_status']} / {r['expected_old_status']}), new "
        f"certificates {state['new_certificates']}"
    )


def print_tables(bench: Any) -> None:
    r = bench.details.get("rotation", {}).get("rotation")
    if not r or "error" in r:
        return
    width = 78
    rows = [
        ("devices rotated", f"{r['succeeded']:,} of {r['devices']:,}"),
        ("rotations/s (end to end)", report.num(r["rotations_per_s"], 1)),
        ("  server side, as the policy says", report.num(r["server_rotations_per_s"], 1)),
        ("one rotation p50 / p99, ms", (f"{report.num(r['rotation']['p50_ms'])} / "
                                        f"{report.num(r['rotation']['p99_ms'])}")),
        ("failures", "; ".join(f"{v} {k}" for k, v in r["failures"].items()) or "none"),
        ("stream during/before: msg/s", report.num(r["stream_delivered_ratio"], 2)),
        ("stream during/before: p50", report.num(r["stream_p50_ratio"], 2)),
        ("stream during/before: p99", report.num(r["stream_p99_ratio"], 2)),
        ("broker CPU per rotation, ms", report.num(r["broker_ms_per_rotation"], 1)),
        ("generator CPU per rotation, ms", report.num(r["generator_ms_per_rotation"], 2)),
        ("  its ceiling, rotations/s per core", report.num(
            ((bench.ceiling or {}).get("rotation_client") or {}).get("rotations_per_core"))),
        (f"old certificates {r['expected_old_status']}",
         f"{r['old_certificates_as_policy_says']:,} of {r['devices']:,}"),
    ]
    print("\n" + "=" * width)
    print(f"Rotation (issue 19): {r['devices']:,} devices, {r['concurrency']} at a time, "
          f"stream {report.num(r['stream_rate'])} msg/s QoS 1, grace {r['grace_hours']} h")
    print("-" * width)
    for label, value in rows:
        print(f"{label:<36}{value:>42}")
    print("=" * width)


def summary(bench: Any) -> dict[str, Any]:
    if "rotation" not in bench.settings.scenarios:
        return {}
    r = bench.details.get("rotation", {}).get("rotation", {})
    rotation = r.get("rotation", {})
    return {
        "rotation_devices": r.get("devices"),
        "rotation_per_s": r.get("rotations_per_s"),
        "rotation_server_per_s": r.get("server_rotations_per_s"),
        "rotation_p50_ms": rotation.get("p50_ms"),
        "rotation_p99_ms": rotation.get("p99_ms"),
        "rotation_failed": r.get("failed"),
        "rotation_stream_delivered_ratio": r.get("stream_delivered_ratio"),
        "rotation_stream_p50_ratio": r.get("stream_p50_ratio"),
        "rotation_stream_p99_ratio": r.get("stream_p99_ratio"),
        "rotation_broker_ms_per_rotation": r.get("broker_ms_per_rotation"),
        "rotation_generator_ms_per_rotation": r.get("generator_ms_per_rotation"),
        "rotation_old_certificates_as_policy_says": r.get("old_certificates_as_policy_says"),
    }


def run_all(bench: Any) -> None:
    """Set up the rotating fleet and run the scenario (``--repeat`` times)."""
    s = bench.settings
    if "rotation" not in s.scenarios:
        return
    if "bastion" not in bench.brokers:
        bench.errors.append("rotation: needs the Bastion broker (--brokers bastion)")
        return
    print(f"\n   rotation: registering {s.devices:,} devices ...", flush=True)
    try:
        broker = RotationBroker(bench.workdir, s.devices, s.rotation_grace)
    except (BrokerError, OSError) as exc:
        bench.errors.append(f"rotation: {exc}")
        print(f"   rotation: FAILED: {exc}", flush=True)
        return
    print(f"   rotation: {s.devices:,} devices registered in "
          f"{report.num(broker.setup['seconds'], 1)} s ({broker.setup})", flush=True)
    bench.run("rotation", lambda ep, b: measure(ep, b, s, bench),
              brokers={"rotation": broker}, preamble=lambda: preamble(bench))
