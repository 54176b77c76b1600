"""The http action's batches: when a batch leaves, and what it carries."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace
from typing import Any

from bastion.rules import MessageContext, RuleOutput
from bastion.rules._actions import BatchSettings, HttpSpec
from bastion.rules._batching import Batch, HttpBatcher
from bastion.rules._templates import parse_template

RULE = SimpleNamespace(name="r")


def _spec(**settings: Any) -> HttpSpec:
    return HttpSpec(parse_template("https://h.example/in/${topic(1)}"), "https://h.example/",
                    (("x-site", parse_template("${site}")),), BatchSettings(**settings))


def _ctx(topic: str = "a/b", site: str = "oslo") -> MessageContext:
    return MessageContext(topic, json.dumps({"site": site}).encode())


class Sent:
    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.event = threading.Event()

    def __call__(self, batch: Batch) -> None:
        self.batches.append(batch)
        self.event.set()


def test_a_full_batch_leaves_at_once() -> None:
    sent = Sent()
    batcher = HttpBatcher(sent)
    spec = _spec(max_open_ms=200, max_size=3)
    for n in range(7):
        assert batcher.add(RULE, 0, spec, RuleOutput({"n": n}), _ctx(), None)
    assert [json.loads(batch.body()) for batch in sent.batches] == [
        [{"n": 0}, {"n": 1}, {"n": 2}], [{"n": 3}, {"n": 4}, {"n": 5}]]
    assert sent.batches[0].url == "https://h.example/in/a"
    assert sent.batches[0].headers == (("x-site", "oslo"),)
    assert [json.loads(batch.body()) for batch in batcher.close()] == [[{"n": 6}]]


def test_the_byte_limit_closes_a_batch_before_it_is_passed() -> None:
    sent = Sent()
    batcher = HttpBatcher(sent)
    spec = _spec(max_open_ms=200, max_bytes=100)
    for n in range(6):  # 36 bytes each: two fit in 100 with "[", "," and "]", three not
        batcher.add(RULE, 0, spec, RuleOutput({"pad": "x" * 20, "n": n}), _ctx(), None)
    left = batcher.close()
    assert all(len(batch.body()) <= 100 for batch in sent.batches + left)
    assert [[item["n"] for item in json.loads(batch.body())]
            for batch in sent.batches + left] == [[0, 1], [2, 3], [4, 5]]


def test_an_open_batch_leaves_when_its_time_is_up() -> None:
    sent = Sent()
    batcher = HttpBatcher(sent)
    batcher.add(RULE, 0, _spec(max_open_ms=5), RuleOutput({"n": 1}), _ctx(), None)
    assert sent.event.wait(5)
    assert [json.loads(batch.body()) for batch in sent.batches] == [[{"n": 1}]]
    assert batcher.close() == []


def test_batches_are_per_topic_and_per_rendered_headers_unless_across_topics() -> None:
    sent = Sent()
    batcher = HttpBatcher(sent)
    spec = _spec(max_open_ms=200)
    batcher.add(RULE, 0, spec, RuleOutput({"n": 1}), _ctx("a/b"), None)
    batcher.add(RULE, 0, spec, RuleOutput({"n": 2}), _ctx("a/c"), None)
    batcher.add(RULE, 0, spec, RuleOutput({"n": 3}), _ctx("a/b", site="rome"), None)
    assert len(batcher.close()) == 3
    across = _spec(max_open_ms=200, across_topics=True)
    batcher = HttpBatcher(sent)
    batcher.add(RULE, 0, across, RuleOutput({"n": 1}), _ctx("a/b"), None)
    batcher.add(RULE, 0, across, RuleOutput({"n": 2}), _ctx("a/c"), None)
    assert [len(batch.entries) for batch in batcher.close()] == [2]


def test_binary_results_are_not_batched() -> None:
    batcher = HttpBatcher(Sent())
    assert not batcher.add(RULE, 0, _spec(), RuleOutput(None, raw=b"\x00"), _ctx(), None)
