"""The rules engine's own process: started with the first rule, started again when it
dies, gone with its node (even after ``kill -9``), and stopped cleanly with a SIGTERM sent
to the whole process group."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from bastion.account import Account
from bastion.clock import SystemClock
from bastion.config import RulesConfig
from bastion.events import InProcessBus
from bastion.rules import EngineCounters, RuleService, RulesProcess
from bastion.store import Store
from support.clients import Client, wait_for
from support.served import ServedBastion, served

from .conftest import RulesBastion

__all__ = ["served"]

ROLE = "arn:aws:iam::123456789012:role/rules"


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_rules_process_is_started_again_and_runs_the_rules(
        rules_bastion: RulesBastion, unique: Callable[[str], str]) -> None:
    iot = rules_bastion.client()
    name = unique("again")
    area = unique("area")
    iot.create_topic_rule(ruleName=name, topicRulePayload={
        "sql": f"SELECT n FROM 'in/{area}'", "awsIotSqlVersion": "2016-03-23",
        "actions": [{"republish": {"roleArn": ROLE, "topic": f"out/{area}"}}]})
    rules_bastion.wait_enabled(name)
    engine = rules_bastion.engine
    child = engine._child
    assert child is not None and _alive(child.pid)
    assert child.pid in _children(os.getpid())
    os.kill(child.pid, signal.SIGKILL)
    wait_for(lambda: engine._child is not None and engine._child.pid != child.pid
             and name in engine.enabled_rules(), timeout=10, what="a new rules process")
    device = rules_bastion.make_device()
    client = Client(device, rules_bastion.port).connect()
    try:
        client.subscribe(f"out/{area}", qos=1)
        client.publish(f"in/{area}", json.dumps({"n": 7}), qos=1)
        [message] = client.expect(1)
        assert json.loads(message.payload) == {"n": 7}
    finally:
        client.stop()
        iot.delete_topic_rule(ruleName=name)


def _with_a_rule(server: ServedBastion) -> None:
    store = Store.for_sqlite_file(server.datadir.db_path)
    try:
        RuleService(store, account=Account(), clock=SystemClock(),
                    publish=lambda event: None).create_topic_rule("logged", {
                        "sql": "SELECT * FROM 'in/#'",
                        "actions": [{"cloudwatchLogs": {"roleArn": ROLE,
                                                        "logGroupName": "in"}}]})
    finally:
        store.close()


def _rules_process(server: ServedBastion) -> int:
    found: list[int] = []

    def one() -> bool:
        found[:] = [pid for pid in _children(server.pid)
                    if "bastion.rules._process" in Path(f"/proc/{pid}/cmdline").read_text()]
        return bool(found)

    wait_for(one, timeout=10, what="the node's rules process")
    return found[0]


def test_a_node_without_rules_runs_no_rules_process(
        served: Callable[..., ServedBastion]) -> None:
    server = served().start()
    time.sleep(0.5)
    assert [pid for pid in _children(server.pid) if _alive(pid)] == []
    assert server.stop() == 0


def test_the_rules_process_dies_with_a_killed_node(
        served: Callable[..., ServedBastion]) -> None:
    server = served()
    _with_a_rule(server)
    server.start()
    child = _rules_process(server)
    server.kill()  # SIGKILL: the node cannot tell its child anything
    wait_for(lambda: not _alive(child), timeout=5, what="the orphaned rules process to exit")


def test_a_sigterm_to_the_whole_group_stops_node_and_rules_process_cleanly(
        served: Callable[..., ServedBastion]) -> None:
    server = served()
    _with_a_rule(server)
    server.start()
    child = _rules_process(server)
    [device] = server.devices("logger")
    client = Client(device, server.port).connect()
    try:
        client.publish("in/a", json.dumps({"n": 1}), qos=1)
    finally:
        client.stop()
    log = server.data / "rules" / "logs" / "in.jsonl"
    wait_for(lambda: log.exists() and log.read_text().count("\n") == 1, what="the logged line")
    os.kill(child, signal.SIGTERM)  # as a service manager signals every process of a unit
    assert server.stop() == 0
    assert not _alive(child)
    err = "".join(p.read_text() for p in server.root.glob("serve-*.err"))
    assert "rules: stopped: offered 1, evaluated 1" in err
    assert "exited" not in err


def test_the_node_sends_no_more_than_the_rules_process_can_take(tmp_path: Path) -> None:
    """Credit: with 40 rules per message the child falls behind at once. The node keeps
    at most ``queue_size`` messages in flight and drops the rest itself; the child, never
    handed more than its queue holds, drops nothing (it would spend its core reading
    messages only to drop them)."""
    store = Store.for_sqlite_file(tmp_path / "rules.db")
    service = RuleService(store, account=Account(), clock=SystemClock(),
                          publish=lambda event: None)
    for k in range(40):
        service.create_topic_rule(f"slow_{k}", {
            "sql": "SELECT * FROM 'in/#'",
            "actions": [{"cloudwatchLogs": {"roleArn": ROLE, "logGroupName": f"g{k}"}}]})

    async def main() -> tuple[EngineCounters, int]:
        engine = RulesProcess(service, InProcessBus(), RulesConfig(queue_size=200),
                              republisher=lambda item: None, log_dir=tmp_path / "logs")
        await engine.start()
        try:
            deadline = time.monotonic() + 20
            while len(engine.enabled_rules()) < 40:
                assert time.monotonic() < deadline, "the rules process never ran the rules"
                await asyncio.sleep(0.05)
            for n in range(20_000):
                if engine.wants("in/a"):
                    engine.take("in/a", b"%d" % n, "c", None, None, None)
                if n % 500 == 0:
                    await asyncio.sleep(0)  # a loop turn: the batch goes out
            await asyncio.sleep(1.0)
        finally:
            await engine.stop()
        return engine.stats, engine._child_stats.dropped

    stats, dropped_in_child = asyncio.run(main())
    store.close()
    assert stats.offered == 20_000
    assert stats.dropped > 10_000          # the node dropped, early
    assert dropped_in_child == 0           # the child was never sent more than it holds
    assert stats.evaluated >= 200          # and it worked on what it was sent
