"""The SessionDirectory contract, run against every implementation (today: in memory).

A new implementation (durable, clustered) is added to ``IMPLEMENTATIONS`` and must pass
these as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bastion.broker import (
    Action,
    BrokerLimits,
    MemorySessionDirectory,
    Message,
    Principal,
    Session,
    SessionDirectory,
    SubscriptionOptions,
)
from support.broker_pair import ManualClock

Denials = list[tuple[str, Action, str]]


def memory(denied: Callable[[Session, Action, str], None]) -> SessionDirectory:
    return MemorySessionDirectory(BrokerLimits(), ManualClock(), denied)


IMPLEMENTATIONS = [pytest.param(memory, id="memory")]

ALICE = Principal("a" * 64, b"", "192.0.2.1", 1)
MALLORY = Principal("m" * 64, b"", "192.0.2.2", 2)


class Allow:
    def __init__(self, *denied: Action) -> None:
        self.denied = denied

    def check(self, action: Action, resource: str) -> bool:
        return action not in self.denied


class Sink:
    """A Link that records QoS 0 deliveries."""

    client_id = ""
    protocol_version = 5
    client_receive_maximum = 65535
    paused = False
    unflushed = 0

    def __init__(self) -> None:
        self.topics: list[str] = []

    def write_qos0(self, message: Message, retain: bool, subscription_ids: Any) -> bool:
        self.topics.append(message.topic)
        return True


@pytest.fixture(params=IMPLEMENTATIONS)
def setup(request: pytest.FixtureRequest) -> tuple[SessionDirectory, Denials]:
    denials: Denials = []
    directory = request.param(lambda s, a, r: denials.append((s.client_id, a, r)))
    return directory, denials


def live(directory: SessionDirectory, client_id: str, principal: Principal = ALICE,
         *denied: Action) -> tuple[Session, Sink]:
    session, _ = directory.open(client_id, principal, clean_start=True)
    sink = Sink()
    session.attach(sink, principal, Allow(*denied), None, 0)  # type: ignore[arg-type]
    return session, sink


def test_session_present_only_for_the_same_certificate_without_clean_start(
        setup: tuple[SessionDirectory, Denials]) -> None:
    directory, _ = setup
    first, present = directory.open("dev", ALICE, clean_start=False)
    assert not present
    again, present = directory.open("dev", ALICE, clean_start=False)
    assert present and again is first
    clean, present = directory.open("dev", ALICE, clean_start=True)
    assert not present and clean is not first
    other, present = directory.open("dev", MALLORY, clean_start=False)
    assert not present and other is not clean
    assert directory.sessions == {"dev": other}


def test_opening_over_a_live_connection_is_refused(
        setup: tuple[SessionDirectory, Denials]) -> None:
    directory, _ = setup
    live(directory, "dev")
    with pytest.raises(RuntimeError):
        directory.open("dev", ALICE, clean_start=False)


def test_discard_forgets_the_session_and_its_subscriptions(
        setup: tuple[SessionDirectory, Denials]) -> None:
    directory, _ = setup
    session, _ = live(directory, "dev")
    directory.subscribe(session, "t/#", SubscriptionOptions(0))
    directory.discard(session)
    assert directory.get("dev") is None
    assert directory.subscription_count() == 0
    assert not directory.route(Message("t/1", b"", 0, False), None)


def test_discarding_a_replaced_session_leaves_its_successor_alone(
        setup: tuple[SessionDirectory, Denials]) -> None:
    directory, _ = setup
    old, _ = directory.open("dev", ALICE, clean_start=True)
    new, sink = live(directory, "dev")  # the clean start replaced ``old``
    directory.subscribe(new, "t/#", SubscriptionOptions(0))
    directory.discard(old)  # e.g. its expiry timer fired late
    assert directory.get("dev") is new
    assert directory.route(Message("t/1", b"", 0, False), None)
    assert sink.topics == ["t/1"]


def test_overlapping_subscriptions_deliver_once_and_receive_is_checked(
        setup: tuple[SessionDirectory, Denials]) -> None:
    directory, denials = setup
    session, sink = live(directory, "dev")
    blocked, blocked_sink = live(directory, "blocked", MALLORY, Action.RECEIVE)
    for topic_filter in ("t/#", "t/+", "t/1"):
        assert directory.subscribe(session, topic_filter, SubscriptionOptions(0))
    assert not directory.subscribe(session, "t/1", SubscriptionOptions(1))  # replaced
    directory.subscribe(blocked, "t/#", SubscriptionOptions(0))
    assert directory.route(Message("t/1", b"x", 0, False), None)
    assert sink.topics == ["t/1"]
    assert blocked_sink.topics == []
    assert denials == [("blocked", Action.RECEIVE, "t/1")]
    assert directory.unsubscribe(session, "t/+")
    assert not directory.unsubscribe(session, "t/+")
    assert directory.subscription_count() == 3


def test_no_local_skips_the_origin(setup: tuple[SessionDirectory, Denials]) -> None:
    directory, _ = setup
    session, sink = live(directory, "dev")
    directory.subscribe(session, "t/#", SubscriptionOptions(0, no_local=True))
    assert directory.route(Message("t/1", b"", 0, False, origin="dev"), None)
    assert directory.route(Message("t/2", b"", 0, False, origin="other"), None)
    assert sink.topics == ["t/2"]


def test_retained_matching_keeps_the_dollar_rule(
        setup: tuple[SessionDirectory, Denials]) -> None:
    directory, _ = setup
    retained = directory.retained
    retained.set("a/b", Message("a/b", b"1", 0, True))
    retained.set("$aws/x", Message("$aws/x", b"2", 0, True))
    assert [topic for topic, _ in retained.match("#")] == ["a/b"]
    assert [topic for topic, _ in retained.match("$aws/#")] == ["$aws/x"]
    assert retained.delete("a/b") and not retained.delete("a/b")
    assert retained.topics() == ["$aws/x"]
