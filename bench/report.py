"""The bench's report: the plain table on stdout and ``bench/results/latest.json``.

``summary`` flattens every scenario's details into the headline figures and ratios of the
results file; ``print_table`` shows one row per figure, Bastion | Mosquitto mTLS | ratio |
system Mosquitto. ``bench/README.md`` explains how to read both.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import math
import platform
import ssl
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import procstat

if TYPE_CHECKING:
    from run import Bench

COLUMNS = ("bastion", "mosquitto", "system")
"""The brokers of the table's columns, in order."""
_BENCH_DIR = Path(__file__).resolve().parent


def _get(bench: Bench, scenario: str, broker: str, key: str) -> float | None:
    value = bench.details.get(scenario, {}).get(broker, {}).get(key)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def summary(bench: Bench) -> dict[str, Any]:
    """The flat figures of ``latest.json``; ``None`` where a figure was not measured."""

    def g(scenario: str, broker: str, key: str) -> float | None:
        return _get(bench, scenario, broker, key)

    out: dict[str, Any] = {}
    for scenario in ("qos0", "qos1"):
        b, m = (
            g(scenario, "bastion", "delivered_per_s"),
            g(scenario, "mosquitto", "delivered_per_s"),
        )
        out[f"{scenario}_mtls_ratio"] = _ratio(b, m)
        out[f"{scenario}_mtls_bastion_msgs"] = b
        out[f"{scenario}_mtls_mosquitto_msgs"] = m
        out[f"{scenario}_tcp_system_mosquitto_msgs"] = g(scenario, "system", "delivered_per_s")
        out[f"{scenario}_mtls_bastion_broker_us_per_msg"] = g(
            scenario, "bastion", "broker_us_per_msg"
        )
        out[f"{scenario}_mtls_mosquitto_broker_us_per_msg"] = g(
            scenario, "mosquitto", "broker_us_per_msg"
        )
        for broker in ("bastion", "mosquitto"):
            for key in ("broker_cores", "generator_cores", "idle_cores"):
                out[f"{scenario}_mtls_{broker}_{key}"] = g(scenario, broker, key)
    out["fan_in_subscribers"] = bench.settings.subscribers
    out["mosquitto_tcp_nodelay"] = bench.settings.mosquitto_nodelay
    b, m = (
        g("idle", "bastion", "bytes_per_connection"),
        g("idle", "mosquitto", "bytes_per_connection"),
    )
    out["idle_mtls_mem_ratio"] = _ratio(b, m)
    out["idle_mtls_bastion_bytes"] = b
    out["idle_mtls_mosquitto_bytes"] = m
    out["idle_tcp_system_mosquitto_bytes"] = g("idle", "system", "bytes_per_connection")
    out["idle_hold_connections"] = bench.settings.connections
    out["idle_hold_seconds"] = bench.settings.hold
    for broker, name in (
        ("bastion", "bastion"),
        ("mosquitto", "mosquitto"),
        ("system", "system_mosquitto"),
    ):
        for key, field_name in (
            ("held", "connections_held"),
            ("lost", "connections_lost"),
            ("failed", "failed"),
            ("pings_answered", "pings_answered"),
            ("pings_sent", "pings_sent"),
            ("bytes_per_connection", "bytes_per_connection"),
            ("open_seconds", "open_seconds"),
            ("peak_rss", "broker_peak_rss"),
        ):
            value = g("idle", broker, field_name)
            count = key in ("held", "lost", "failed", "pings_answered", "pings_sent", "peak_rss")
            out[f"idle_hold_{name}_{key}"] = int(value) if count and value is not None else value
    b, m = g("connect", "bastion", "connects_per_s"), g("connect", "mosquitto", "connects_per_s")
    out["mtls_connect_ratio"] = _ratio(b, m)
    out["mtls_connect_bastion_per_s"] = b
    out["mtls_connect_mosquitto_per_s"] = m
    out["tcp_connect_system_mosquitto_per_s"] = g("connect", "system", "connects_per_s")
    out["mtls_connect_bastion_broker_ms"] = g("connect", "bastion", "broker_ms_per_connect")
    out["mtls_connect_mosquitto_broker_ms"] = g("connect", "mosquitto", "broker_ms_per_connect")
    for q in ("p50", "p99"):
        b, m = g("latency", "bastion", f"{q}_ms"), g("latency", "mosquitto", f"{q}_ms")
        out[f"{q}_latency_ms"] = b
        out[f"{q}_latency_ms_mosquitto"] = m
        out[f"{q}_latency_ms_system_mosquitto"] = g("latency", "system", f"{q}_ms")
        out[f"{q}_latency_ratio"] = _ratio(b, m)
    out["latency_offered_msgs"] = bench.settings.rate
    out["latency_qos"] = bench.settings.latency_qos
    b, m = g("paced", "bastion", "broker_us_per_msg"), g("paced", "mosquitto", "broker_us_per_msg")
    out["paced_mtls_cpu_ratio"] = _ratio(b, m)
    out["paced_mtls_bastion_us_per_msg"] = b
    out["paced_mtls_mosquitto_us_per_msg"] = m
    out["paced_tcp_system_mosquitto_us_per_msg"] = g("paced", "system", "broker_us_per_msg")
    for broker, name in (("bastion", "mtls_bastion"), ("mosquitto", "mtls_mosquitto")):
        out[f"paced_{name}_us_per_msg_whole_run"] = g(
            "paced", broker, "broker_us_per_msg_whole_run"
        )
        out[f"paced_{name}_generator_cores"] = g("paced", broker, "generator_cores")
    out["paced_mtls_bastion_delivered_msgs"] = g("paced", "bastion", "delivered_per_s")
    out["paced_mtls_mosquitto_delivered_msgs"] = g("paced", "mosquitto", "delivered_per_s")
    out["paced_tcp_system_mosquitto_delivered_msgs"] = g("paced", "system", "delivered_per_s")
    out["paced_devices"] = bench.settings.paced_devices
    out["paced_offered_msgs"] = bench.settings.paced_rate
    b, m = g("durable", "bastion", "acked_per_s"), g("durable", "mosquitto", "acked_per_s")
    out["durable_mtls_ratio"] = _ratio(b, m)
    out["durable_mtls_bastion_msgs"] = b
    out["durable_mtls_mosquitto_msgs"] = m
    for broker in ("bastion", "mosquitto"):
        entry = bench.details.get("durable", {}).get(broker, {})
        for key in ("acked", "acked_lost", "delivered", "delivered_unacked", "duplicates"):
            value = entry.get(key)
            out[f"durable_{broker}_{key}"] = value if isinstance(value, int) else None
        every = entry.get("acked_lost_runs")
        out[f"durable_{broker}_acked_lost_worst"] = max(every) if every else None
        out[f"durable_{broker}_session_present"] = entry.get("session_present")
        out[f"durable_{broker}_broker_us_per_msg"] = g("durable", broker, "broker_us_per_msg")
        out[f"durable_{broker}_settings"] = entry.get("settings")
    out["durable_sync"] = bench.settings.durable_sync
    out["durable_mosquitto_autosave_interval"] = bench.settings.mosquitto_autosave
    return out


def machine(bench: Bench) -> dict[str, Any]:
    info = procstat.machine_info()
    info["python"] = platform.python_version()
    info["openssl"] = ssl.OPENSSL_VERSION
    for package in ("uvloop", "bastion-iot"):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = None
    try:
        info["git_commit"] = subprocess.run(
            ["git", "-C", str(_BENCH_DIR), "rev-parse", "--short", "HEAD"],
            check=True,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    info["bench_filesystem"] = procstat.filesystem(str(bench.workdir))
    info["load_average_at_start"] = bench.load_at_start
    info["load_average_at_end"] = procstat.load_average()
    info.update(bench.versions)
    return info


def write_json(bench: Bench, figures: dict[str, Any], interrupted: bool) -> Path:
    s = bench.settings
    document = {
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "complete": not bench.errors and not bench.warnings and not interrupted,
        **figures,
        "generator_ceiling": bench.ceiling,
        "machine": machine(bench),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(s).items()},
        "details": bench.details,
        "errors": bench.errors,
        "warnings": bench.warnings,
    }
    s.output.parent.mkdir(parents=True, exist_ok=True)
    s.output.write_text(json.dumps(document, indent=2, default=_json_default) + "\n")
    return s.output


def _json_default(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def num(value: float | None, digits: int = 0) -> str:
    """``value`` with thousands separators and ``digits`` decimals; ``"-"`` if unmeasured."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}"


_TABLE = (
    # label, scenario, result key, digits, scale
    ("QoS 0 fan-in {publishers}->{subscribers}, msg/s", "qos0", "delivered_per_s", 0, 1.0),
    ("  broker CPU per message, us", "qos0", "broker_us_per_msg", 2, 1.0),
    ("  broker cores", "qos0", "broker_cores", 2, 1.0),
    ("  generator cores", "qos0", "generator_cores", 2, 1.0),
    ("QoS 1 fan-in {publishers}->{subscribers}, msg/s", "qos1", "delivered_per_s", 0, 1.0),
    ("  broker CPU per message, us", "qos1", "broker_us_per_msg", 2, 1.0),
    ("  broker cores", "qos1", "broker_cores", 2, 1.0),
    ("  generator cores", "qos1", "generator_cores", 2, 1.0),
    ("Idle connection, KiB RSS (lower=better)", "idle", "bytes_per_connection", 1, 1 / 1024),
    ("  held of {connections:,} after {hold:g} s", "idle", "connections_held", 0, 1.0),
    ("  seconds to open them", "idle", "open_seconds", 1, 1.0),
    ("Connects/s, {connect_concurrency} at once", "connect", "connects_per_s", 0, 1.0),
    ("  broker CPU per connect, ms", "connect", "broker_ms_per_connect", 2, 1.0),
    ("Latency p50 ms, {rate:,.0f}/s QoS {latency_qos}", "latency", "p50_ms", 2, 1.0),
    ("Latency p99 ms (lower=better)", "latency", "p99_ms", 2, 1.0),
    ("Paced {paced_devices} devices, us CPU/msg", "paced", "broker_us_per_msg", 2, 1.0),
    ("  delivered msg/s of {paced_rate:,.0f}", "paced", "delivered_per_s", 0, 1.0),
    ("  generator cores", "paced", "generator_cores", 2, 1.0),
    ("Durable QoS 1 {publishers}->offline, acked/s", "durable", "acked_per_s", 0, 1.0),
    ("  broker CPU per message, us", "durable", "broker_us_per_msg", 2, 1.0),
    ("  acknowledged before kill -9", "durable", "acked", 0, 1.0),
    ("  ...of which LOST after restart", "durable", "acked_lost", 0, 1.0),
)
_NO_RATIO = {
    ("durable", "acked"),
    ("durable", "acked_lost"),
    ("qos0", "broker_cores"),
    ("qos0", "generator_cores"),
    ("qos1", "broker_cores"),
    ("qos1", "generator_cores"),
}
"""Rows whose Bastion ÷ Mosquitto ratio means nothing: counts that depend on how long it
ran, and the cores that show who was the bottleneck."""


def print_table(bench: Bench) -> None:
    """The plain-text summary: one row per figure, Bastion | Mosquitto mTLS | ratio (only
    the warnings and errors when none of its scenarios ran: ``cluster.print_tables``,
    ``rules.print_tables`` and ``rotation.print_tables`` show theirs)."""
    s = bench.settings
    if not {scenario for _, scenario, *_ in _TABLE} & set(s.scenarios):
        print_problems(bench)
        return
    header = f"{'':<40} {'Bastion':>12} {'Mosquitto mTLS':>15} {'ratio':>7} {'sys Mosq. TCP':>14}"
    rule = "-" * len(header)
    print("\n" + "=" * len(header))
    print(
        f"Bastion vs Mosquitto {bench.versions.get('mosquitto', '?')} over mutual TLS, loopback, "
        f"{procstat.machine_info()['cpus']} cores, {'quick' if s.quick else 'full'} run"
    )
    print(header)
    print(rule)
    for label, scenario, key, digits, scale in _TABLE:
        if scenario not in s.scenarios:
            continue
        values = {
            broker: None if (v := _get(bench, scenario, broker, key)) is None else v * scale
            for broker in COLUMNS
        }
        cells = {
            broker: _cell(bench, scenario, broker, values[broker], digits) for broker in COLUMNS
        }
        ratio = _ratio(values["bastion"], values["mosquitto"])
        if (scenario, key) in _NO_RATIO:
            ratio = None
        print(
            f"{label.format(**asdict(s)):<40} {cells['bastion']:>12} {cells['mosquitto']:>15} "
            f"{num(ratio, 2):>7} {cells['system']:>14}"
        )
    if bench.ceiling:
        c = {k: num(1e6 / v["generator_us_per_msg"]) for k, v in bench.ceiling.items()}
        names = {
            "publish_qos0": "publish QoS 0",
            "publish_qos1": "publish QoS 1",
            "subscribe_qos0": "subscribe QoS 0",
            "subscribe_qos1": "subscribe QoS 1",
            "publish_qos1_numbered": "durable publish",
        }
        order = [k for k in names if k in c] + [k for k in c if k not in names]
        print(rule)
        print("Generator, msg/s per core: " + "; ".join(f"{names.get(k, k)} {c[k]}" for k in order))
    if "qos0" in s.scenarios or "qos1" in s.scenarios:
        print(rule)
        print(
            f"Fan-in: {s.subscribers} subscriber process(es), reading in batches; Mosquitto "
            f"set_tcp_nodelay {'true' if s.mosquitto_nodelay else 'false'}. A broker at its "
            "limit uses ~1.00 core (one thread) with cores to spare."
        )
    if "durable" in s.scenarios:
        print(rule)
        for broker, label in (("bastion", "Bastion"), ("mosquitto", "Mosquitto")):
            entry = bench.details.get("durable", {}).get(broker)
            if entry and "settings" in entry:
                print(f"Durable {label}: {entry['settings']}")
    print("=" * len(header))
    print("ratio = Bastion / Mosquitto mTLS. sys Mosq. TCP = the machine's Mosquitto on :1883,")
    print("plain TCP, default limits: a reference, not like for like. '!' = failed, see below.")
    print_problems(bench)


def print_problems(bench: Bench) -> None:
    """The run's warnings (disturbed runs) and errors."""
    if bench.warnings:
        print("\nWarnings (figures disturbed by other work on the machine; rerun when it is idle):")
        for warning in bench.warnings:
            print("  - " + warning)
    if bench.errors:
        print("\nErrors:")
        for error in bench.errors:
            print("  - " + error.strip().replace("\n", "\n    "))


def _cell(bench: Bench, scenario: str, broker: str, value: float | None, digits: int) -> str:
    entry = bench.details.get(scenario, {}).get(broker)
    if entry is None:
        return "-"
    if "error" in entry:
        return "!"
    return num(value, digits)
