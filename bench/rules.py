"""Rules scenarios (issue 18): the broker's throughput with 0, 10 and 100 enabled rules.

Theory of operation
-------------------
Each setup is a copy of the bench's Bastion data directory (the same CA, device and
bench policy) in which ``bench/bastion_setup.py --rules N`` created ``N`` topic rules,
every one matching every bench message (``SELECT encode(*, 'base64') AS data, topic(2)
AS device, timestamp() AS at FROM 'bench/#'``) and appending its result to a log file of
its own (the ``cloudwatchLogs`` action). The fan-in of ``loadgen.fan_in`` runs on each,
taking turns like every other scenario (``run.Bench.run``); the ratio to the setup with
no rules is the throughput the rules cost.

The rules engine never holds the broker back: the broker only offers each message to a
bounded queue, and what the engine cannot evaluate in time is dropped for the rules
(counted, as AWS IoT throttles rules). A throughput ratio alone would therefore hide an
engine that drops most messages, so each run also reports, from the line the engine logs
when the node stops, how many messages were offered to the rules, how many were
evaluated, how many dropped, and how many action deliveries succeeded; and from the
node's CPU, its cost per evaluated rule.

Scenarios (:data:`SCENARIOS`; ``run.py --only rules`` runs both): ``rules-qos0`` and
``rules-qos1``.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import loadgen
import procstat
import report
from brokers import BastionBroker, BastionInstall, BrokerError, _run_setup_step

SCENARIOS = {
    "rules-qos0": "QoS 0 fan-in with 0, 10 and 100 rules matching every message",
    "rules-qos1": "QoS 1 fan-in with 0, 10 and 100 rules matching every message",
}
DEFAULT = ("rules-qos0", "rules-qos1")
HEADLINE = {"rules-qos0": "delivered_per_s", "rules-qos1": "delivered_per_s"}
RULE_COUNTS = (0, 10, 100)
TARGET_LOSS = 0.15
"""Issue 18: at most 15 % less throughput with 10 rules matching every message."""

_SUMMARY = re.compile(
    r"rules: stopped: offered (\d+), evaluated (\d+), dropped (\d+), evaluation errors (\d+);"
    r" matched (\d+), actions succeeded (\d+), failed (\d+)")


class RulesBroker(BastionBroker):
    """``bastion serve`` on a copy of the bench's data directory holding ``count`` rules."""

    def __init__(self, install: BastionInstall, workdir: Path, count: int) -> None:
        data_dir = workdir / f"bastion-rules-{count}"
        shutil.rmtree(data_dir, ignore_errors=True)
        shutil.copytree(install.data_dir, data_dir)
        done = _run_setup_step([sys.executable, str(Path(__file__).with_name("bastion_setup.py")),
                                "--data-dir", str(data_dir), "--rules", str(count)])
        self.setup = json.loads(done.strip().splitlines()[-1])
        super().__init__(install, workdir)
        self.count = count
        self.data_dir = data_dir
        self.label = f"{count} rules"

    def start(self) -> loadgen.Endpoint:
        self.runs += 1
        shutil.rmtree(self.data_dir / "rules" / "logs", ignore_errors=True)
        return self._serve(self.data_dir, f"bastion-rules-{self.count}-{self.runs}.log")

    def engine_summary(self) -> dict[str, int] | None:
        """Stop the node and read what its rules engine logged when it stopped."""
        self.stop()
        path = self._workdir / f"bastion-rules-{self.count}-{self.runs}.log"
        found = _SUMMARY.findall(path.read_text(encoding="utf-8", errors="replace"))
        if not found:
            return None
        names = ("offered", "evaluated", "dropped", "evaluation_errors", "matched",
                 "actions_succeeded", "actions_failed")
        return dict(zip(names, map(int, found[-1]), strict=True))


def _fan_in(endpoint: loadgen.Endpoint, broker: RulesBroker, qos: int, s: Any) -> dict[str, Any]:
    pid = broker.pid
    assert pid is not None
    children = procstat.descendants(pid)[1:]
    result = asdict(loadgen.fan_in(
        endpoint, qos=qos, publishers=s.publishers, processes=s.publisher_procs,
        subscribers=1, broker_pid=pid, warmup=s.warmup, duration=s.duration,
        parts={"node": pid, "rules process": children} if children else {"node": pid}))
    engine = broker.engine_summary()
    result["rules"] = broker.count
    result["engine"] = engine
    if broker.count and engine is not None:
        # Whole-run figures: everything the publishers sent, against everything offered.
        result["evaluated_share"] = engine["evaluated"] / engine["offered"] if engine["offered"] else None
        result["actions_per_message"] = engine["actions_succeeded"] / engine["evaluated"] if engine["evaluated"] else None
    return result


def progress(scenario: str, r: dict[str, Any]) -> str:
    line = (f"{report.num(r['delivered_per_s'])} msg/s delivered, loss {r['loss']:.1%}, broker "
            f"{report.num(r['broker_cores'], 2)} cores, {report.num(r['broker_us_per_msg'], 2)} us/msg,"
            f" generator {report.num(r['generator_cores'], 2)}, idle {report.num(r['idle_cores'], 2)}")
    engine = r.get("engine")
    if r["rules"] and engine is None:
        return line + "; THE ENGINE LOGGED NO SUMMARY"
    if r["rules"]:
        line += (f"; rules: {engine['evaluated']:,} of {engine['offered']:,} messages evaluated "
                 f"({engine['dropped']:,} dropped), {engine['actions_succeeded']:,} actions "
                 f"delivered, {engine['actions_failed']} failed")
    return line


def _entry(bench: Any, scenario: str, key: str) -> dict[str, Any]:
    return bench.details.get(scenario, {}).get(key, {})


def _node_only(e: dict[str, Any]) -> float | None:
    """The node's cores without its rules process (``node`` is measured as a tree)."""
    parts = e.get("part_cores") or {}
    if "node" not in parts:
        return None
    return float(parts["node"] - parts.get("rules process", 0.0))


def _ratio(e: dict[str, Any], base: dict[str, Any]) -> float | None:
    a, b = e.get("delivered_per_s"), base.get("delivered_per_s")
    return a / b if a and b else None


def print_tables(bench: Any) -> None:
    chosen = [s for s in bench.settings.scenarios if s in SCENARIOS]
    if not chosen:
        return
    width = 100
    print("\n" + "=" * width)
    print(f"Rules (issue 18): one Bastion node, {bench.settings.publishers} publishers -> 1 "
          "subscriber; N rules matching every message, each with a log-file action")
    for scenario in chosen:
        keys = list(bench.details.get(scenario, {}))
        base = _entry(bench, scenario, "rules-0")
        print("-" * width)
        print(SCENARIOS[scenario])
        print(f"{'':<34}" + "".join(f"{k.replace('rules-', '') + ' rules':>16}" for k in keys))
        rows: list[tuple[str, Any]] = [
            ("msg/s delivered", lambda e: report.num(e.get("delivered_per_s"))),
            ("  ratio to no rules", lambda e, base=base: report.num(_ratio(e, base), 2)),
            ("  broker cores", lambda e: report.num(e.get("broker_cores"), 2)),
            ("    the node's own process", lambda e: report.num(_node_only(e), 2)),
            ("    the rules process", lambda e: report.num((e.get("part_cores") or {}).get("rules process"), 2)),
            ("  broker CPU per message, us", lambda e: report.num(e.get("broker_us_per_msg"), 2)),
            ("  idle cores", lambda e: report.num(e.get("idle_cores"), 2)),
            ("rules: share of messages evaluated",
             lambda e: f"{e['evaluated_share']:.1%}" if e.get("evaluated_share") is not None else "-"),
            ("rules: messages dropped",
             lambda e: f"{e['engine']['dropped']:,}" if e.get("engine") and e["rules"] else "-"),
            ("rules: actions delivered",
             lambda e: f"{e['engine']['actions_succeeded']:,}" if e.get("engine") and e["rules"] else "-"),
        ]
        for label, cell in rows:
            cells = ["!" if "error" in _entry(bench, scenario, k) else cell(_entry(bench, scenario, k))
                     for k in keys]
            print(f"{label:<34}" + "".join(f"{c:>16}" for c in cells))
        ten = _ratio(_entry(bench, scenario, "rules-10"), base)
        if ten is not None:
            verdict = "met" if ten >= 1 - TARGET_LOSS else "MISSED"
            print(f"  target: 10 rules cost at most {TARGET_LOSS:.0%} of the throughput "
                  f"(ratio >= {1 - TARGET_LOSS:.2f}): {verdict} ({ten:.2f})")
    print("=" * width)


def summary(bench: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for scenario in SCENARIOS:
        if scenario not in bench.settings.scenarios:
            continue
        short = scenario.replace("rules-", "")
        base = _entry(bench, scenario, "rules-0")
        for count in RULE_COUNTS:
            e = _entry(bench, scenario, f"rules-{count}")
            out[f"rules_{short}_{count}_msgs"] = e.get("delivered_per_s")
            out[f"rules_{short}_{count}_ratio"] = _ratio(e, base)
            out[f"rules_{short}_{count}_evaluated_share"] = e.get("evaluated_share")
    return out


def run_all(bench: Any) -> None:
    """Run the chosen rules scenarios on setups made from the bench's Bastion install."""
    s = bench.settings
    chosen = [x for x in s.scenarios if x in SCENARIOS]
    if not chosen:
        return
    base = bench.brokers.get("bastion")
    if base is None:
        bench.errors.append("rules: needs the Bastion broker (--brokers bastion)")
        return
    try:
        setups = {f"rules-{n}": RulesBroker(base._install, bench.workdir, n) for n in RULE_COUNTS}
    except (BrokerError, OSError) as exc:
        bench.errors.append(f"rules: {exc}")
        print(f"   rules: FAILED: {exc}", flush=True)
        return
    for qos in (0, 1):
        if f"rules-qos{qos}" in chosen:
            bench.run(f"rules-qos{qos}", lambda ep, b, qos=qos: _fan_in(ep, b, qos, s),
                      brokers=dict(setups))
