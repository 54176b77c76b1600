"""What one message costs the rules engine, in one process: µs per message and per rule.

    .venv/bin/python bench/micro_rules.py [--rules N[,N...]] [--messages M] [--action log|none]

The engine of a node's rules process (:class:`bastion.rules.RulesEngine`) on a real
SQLite store holding ``N`` rules, each matching every message with the bench's statement
(``bench/bastion_setup.py``'s ``RULE_SQL``) and, with ``--action log`` (the default), a
log-file action of its own in a temporary directory. ``M`` messages like the fan-in
bench's (64 zero bytes) are offered as fast as the engine's queue takes them; the clock
stops when every action has been delivered. The queue is as large as ``M`` so that
nothing is dropped. The figures are the engine's whole cost (evaluation thread and
action threads, in one interpreter): how many messages a second a rules process can
take with ``N`` rules when it has a core to itself. ``--action none`` gives each rule a
``republish`` to a collector that keeps nothing, which isolates evaluation.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bastion.account import Account
from bastion.clock import SystemClock
from bastion.config import RulesConfig
from bastion.events import InProcessBus
from bastion.rules import IncomingMessage, Republication, RulesEngine, RuleService
from bastion.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bastion_setup import RULE_SQL  # the bench's own rule (bench/ is on the path above)


def _action(kind: str, k: int) -> dict[str, object]:
    role = "arn:aws:iam::123456789012:role/unused"
    if kind == "log":
        return {"cloudwatchLogs": {"roleArn": role, "logGroupName": f"bench-rule-{k}"}}
    return {"republish": {"roleArn": role, "topic": f"out/{k}", "qos": 0}}


async def measure(rules: int, messages: int, action: str, directory: Path) -> dict[str, float]:
    store = Store.for_sqlite_file(directory / f"rules-{rules}.db")
    service = RuleService(store, account=Account(), clock=SystemClock(),
                          publish=lambda event: None)
    for k in range(rules):
        service.create_topic_rule(f"bench_rule_{k}", {
            "sql": RULE_SQL, "awsIotSqlVersion": "2016-03-23", "actions": [_action(action, k)]})
    republished = 0

    def collect(item: Republication) -> None:
        nonlocal republished
        republished += 1

    engine = RulesEngine(service, InProcessBus(), RulesConfig(queue_size=messages * max(1, rules)),
                         republisher=collect, log_dir=directory / f"logs-{rules}")
    await engine.start()
    payload = bytes(64)
    expected = messages * rules
    try:
        began = time.perf_counter()
        cpu = time.process_time()
        for n in range(messages):
            engine.offer(IncomingMessage(f"bench/q1-p{n % 10}", payload, f"bench-q1-p{n % 10}",
                                         "0" * 64, 1_700_000_000_000 + n))
        while True:
            stats = engine.stats
            done = sum(c.actions_succeeded + c.actions_failed for c in stats.rules.values())
            if stats.evaluated >= messages and done >= expected:
                break
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - began
        cpu = time.process_time() - cpu
    finally:
        await engine.stop()
        store.close()
    failed = sum(c.actions_failed for c in engine.stats.rules.values())
    return {"rules": rules, "messages": messages, "seconds": elapsed, "cpu_seconds": cpu,
            "msgs_per_s": messages / elapsed, "us_per_msg": cpu / messages * 1e6,
            "us_per_rule": cpu / (messages * rules) * 1e6 if rules else 0.0,
            "dropped": engine.stats.dropped, "failed": failed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", default="1,10,100")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--action", choices=("log", "none"), default="log")
    args = parser.parse_args()
    counts = [int(c) for c in args.rules.split(",")]
    print(f"rules engine alone, one process, {args.messages} messages, action {args.action}")
    print(f"{'rules':>6} {'msg/s':>10} {'CPU us/msg':>12} {'CPU us/rule':>12} {'dropped':>8}")
    with tempfile.TemporaryDirectory(prefix="bench-rules-") as tmp:
        for count in counts:
            messages = max(200, args.messages // max(1, count // 10))
            r = asyncio.run(measure(count, messages, args.action, Path(tmp)))
            print(f"{count:>6} {r['msgs_per_s']:>10,.0f} {r['us_per_msg']:>12.1f} "
                  f"{r['us_per_rule']:>12.1f} {r['dropped']:>8}"
                  + (f"  ({r['failed']} ACTIONS FAILED)" if r["failed"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
