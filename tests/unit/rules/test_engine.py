"""The engine off the message path: a bounded queue that drops instead of blocking,
retries with backoff then the error action, and rotated log files."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bastion.account import Account
from bastion.config import RulesConfig
from bastion.events import InProcessBus
from bastion.rules import (
    IncomingMessage,
    MessageContext,
    Republication,
    RuleOutput,
    RulesEngine,
    RuleService,
)
from bastion.rules._actions import LogFileSpec
from bastion.rules._sinks import LogFiles
from bastion.rules._templates import parse_template
from bastion.store import Store
from support.clients import wait_for

RULE = "SELECT v FROM 'in/#'"


class FlakyRepublisher:
    """Fails the first ``failures`` calls for topics under ``failing/``."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.published: list[Republication] = []
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, item: Republication) -> None:
        with self.lock:
            self.calls += 1
            if item.topic.startswith("failing/") and self.failures > 0:
                self.failures -= 1
                raise RuntimeError("the broker is busy")
            self.published.append(item)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[RuleService]:
    store = Store.for_sqlite_file(tmp_path / "rules.db")
    from bastion.clock import SystemClock
    yield RuleService(store, account=Account(), clock=SystemClock(), publish=lambda e: None)
    store.close()


def _engine(service: RuleService, tmp_path: Path, republisher: Callable[[Republication], None],
            **config: Any) -> RulesEngine:
    settings = RulesConfig(**{"backoff_seconds": 0.01, "attempts": 3, **config})
    return RulesEngine(service, InProcessBus(), settings, republisher=republisher,
                       log_dir=tmp_path / "logs")


def _republish(topic: str) -> dict[str, Any]:
    return {"republish": {"roleArn": "arn:aws:iam::123456789012:role/r", "topic": topic}}


def _message(topic: str = "in/a", payload: bytes = b'{"v": 1}') -> IncomingMessage:
    return IncomingMessage(topic, payload, "dev-1", None, 1)


def test_a_full_queue_drops_and_counts_without_blocking(service: RuleService,
                                                        tmp_path: Path) -> None:
    service.create_topic_rule("r", {"sql": RULE, "actions": [_republish("out")]})
    engine = _engine(service, tmp_path, FlakyRepublisher(), queue_size=2)
    engine.reload()  # not started: nothing takes from the queue
    assert engine.wants("in/a") and not engine.wants("other")
    started = time.monotonic()
    results = [engine.offer(_message()) for _ in range(5)]
    assert time.monotonic() - started < 1.0
    assert results == [True, True, False, False, False]
    assert (engine.stats.offered, engine.stats.dropped) == (5, 3)


def _run(engine: RulesEngine, body: Callable[[], None]) -> None:
    async def main() -> None:
        await engine.start()
        try:
            await asyncio.to_thread(body)
        finally:
            await engine.stop()
    asyncio.run(main())


def test_transient_failures_are_retried(service: RuleService, tmp_path: Path) -> None:
    service.create_topic_rule("r", {"sql": RULE, "actions": [_republish("failing/x")]})
    republisher = FlakyRepublisher(failures=2)
    engine = _engine(service, tmp_path, republisher)

    def body() -> None:
        engine.offer(_message())
        wait_for(lambda: engine.counters("r").actions_succeeded == 1, what="a delivery")

    _run(engine, body)
    assert republisher.calls == 3 and len(republisher.published) == 1
    assert json.loads(republisher.published[0].payload) == {"v": 1}
    assert engine.counters("r").actions_failed == 0


def test_exhausted_retries_go_to_the_error_action(service: RuleService,
                                                  tmp_path: Path) -> None:
    service.create_topic_rule("r", {"sql": RULE, "actions": [_republish("failing/x")],
                                    "errorAction": _republish("errors")})
    republisher = FlakyRepublisher(failures=10)
    engine = _engine(service, tmp_path, republisher, attempts=2)

    def body() -> None:
        engine.offer(_message())
        wait_for(lambda: engine.counters("r").error_actions_succeeded == 1,
                 what="the error action")

    _run(engine, body)
    assert republisher.calls == 3  # two tries, then the error action
    [report] = [json.loads(item.payload) for item in republisher.published]
    assert report["failures"][0]["failedAction"] == "RepublishAction"
    assert report["failures"][0]["failedResource"] == "failing/x"
    assert "busy" in report["failures"][0]["errorMessage"]


def test_a_reserved_topic_from_a_template_is_not_retried(service: RuleService,
                                                         tmp_path: Path) -> None:
    service.create_topic_rule("r", {"sql": "SELECT * FROM 'in/#'",
                                    "actions": [_republish("${target}")],
                                    "errorAction": _republish("errors")})
    republisher = FlakyRepublisher()
    engine = _engine(service, tmp_path, republisher)

    def body() -> None:
        engine.offer(_message(payload=b'{"target": "$aws/things/t/shadow/update"}'))
        wait_for(lambda: engine.counters("r").error_actions_succeeded == 1,
                 what="the error action")

    _run(engine, body)
    assert [item.topic for item in republisher.published] == ["errors"]
    assert republisher.calls == 1


def test_a_rule_does_not_fire_on_its_own_republication(service: RuleService,
                                                       tmp_path: Path) -> None:
    service.create_topic_rule("loop", {"sql": "SELECT * FROM 'in/#'",
                                       "actions": [_republish("in/again")]})
    service.create_topic_rule("after", {"sql": "SELECT * FROM 'in/again'",
                                        "actions": [_republish("out")]})
    republisher = FlakyRepublisher()
    engine = _engine(service, tmp_path, republisher)

    def body() -> None:
        engine.offer(IncomingMessage("in/again", b"{}", None, None, 1, republished_by="loop"))
        wait_for(lambda: engine.counters("after").actions_succeeded == 1, what="a delivery")

    _run(engine, body)
    assert [item.topic for item in republisher.published] == ["out"]


def test_log_files_rotate(tmp_path: Path) -> None:
    files = LogFiles(tmp_path, max_bytes=400, kept=2)
    spec = LogFileSpec(parse_template("plant/line-1"))
    ctx = MessageContext("t", b"{}", timestamp_ms=0)
    for index in range(20):
        files.deliver(spec, RuleOutput({"n": index, "pad": "x" * 40}), ctx, "r")
    files.close()
    path = files.path_of("plant/line-1")
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == [path.name, path.name + ".1", path.name + ".2"]
    numbers = [json.loads(line)["message"]["n"]
               for name in (path.name + ".2", path.name + ".1", path.name)
               for line in (tmp_path / name).read_text().splitlines()]
    assert numbers == list(range(20 - len(numbers), 20))  # the newest, in order
    assert all((tmp_path / name).stat().st_size <= 400 for name in kept)


def test_binary_results_are_logged_as_base64(tmp_path: Path) -> None:
    files = LogFiles(tmp_path, max_bytes=10_000, kept=1)
    files.deliver(LogFileSpec(parse_template("raw")), RuleOutput(None, raw=b"\x00\xff"),
                  MessageContext("t", b"\x00\xff"), "r")
    files.close()
    [line] = files.path_of("raw").read_text().splitlines()
    assert json.loads(line)["message"] == {"base64": "AP8="}
