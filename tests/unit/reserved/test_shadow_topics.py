"""The shadow topics handler on a broker without listeners: what it publishes, and when."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from bastion.broker import Broker, Message
from bastion.events import InProcessBus
from bastion.reserved import ShadowTopics
from bastion.shadow import ShadowNotFoundError, ShadowService
from bastion.store import Store

PREFIX = "$aws/things/dev1/shadow"


class Recorder:
    """Stands in for ``Broker.publish``: records what the handler publishes."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def __call__(self, message: Message, *, sender: object = None) -> bool:
        self.messages.append(message)
        return True

    def topics(self) -> list[str]:
        return [message.topic for message in self.messages]

    def payload(self, topic: str) -> Any:
        found = [m for m in self.messages if m.topic == topic]
        assert found, f"nothing published on {topic}; got {self.topics()}"
        return json.loads(found[-1].payload)


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll ``condition`` on the loop until it holds or the deadline passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.005)


def run(scenario: Callable[[Broker, Recorder, ShadowTopics], Any], **options: Any) -> None:
    async def main() -> None:
        bus = InProcessBus(asyncio.get_running_loop())
        broker = Broker(bus=bus)
        recorder = Recorder()
        broker.publish = recorder  # type: ignore[method-assign]
        with Store.open("sqlite://") as store:
            service = ShadowService(store, publish=bus.publish)
            topics = ShadowTopics(broker, service, bus, **options)
            broker.reserved_handlers.append(topics)
            await scenario(broker, recorder, topics)

    asyncio.run(main())


SESSION: Any = SimpleNamespace(client_id="dev1", connection=object())


def request(operation: str, document: dict[str, Any] | None = None) -> Message:
    payload = b"" if document is None else json.dumps(document).encode()
    return Message(f"{PREFIX}/{operation}", payload, 1, True, origin="dev1")


def test_requests_are_answered_and_routed_like_any_message() -> None:
    async def scenario(broker: Broker, recorder: Recorder, topics: ShadowTopics) -> None:
        assert topics.handles(f"{PREFIX}/update")
        assert not topics.handles(f"{PREFIX}/update/accepted")
        update = request("update", {"state": {"desired": {"a": 1}}, "clientToken": "u"})
        assert topics.on_publish(broker, SESSION, update) is True
        # The request itself goes to subscribers at once, never retained, same origin.
        routed = recorder.messages[0]
        assert (routed.topic, routed.retain, routed.origin) == (update.topic, False, "dev1")
        await until(lambda: f"{PREFIX}/update/documents" in recorder.topics())
        assert recorder.topics()[1:] == [f"{PREFIX}/update/accepted",
                                         f"{PREFIX}/update/delta",
                                         f"{PREFIX}/update/documents"]
        assert recorder.payload(f"{PREFIX}/update/accepted")["clientToken"] == "u"
        assert {m.qos for m in recorder.messages[1:]} == {1}

        topics.on_publish(broker, SESSION, request("get", {"clientToken": "g"}))
        await until(lambda: f"{PREFIX}/get/accepted" in recorder.topics())
        got = recorder.payload(f"{PREFIX}/get/accepted")
        assert (got["version"], got["clientToken"]) == (1, "g")
        assert got["state"]["delta"] == {"a": 1}

        topics.on_publish(broker, SESSION, request("delete"))
        await until(lambda: f"{PREFIX}/delete/accepted" in recorder.topics())
        topics.on_publish(broker, SESSION, request("delete", {"clientToken": "d2"}))
        await until(lambda: f"{PREFIX}/delete/rejected" in recorder.topics())
        assert recorder.payload(f"{PREFIX}/delete/rejected")["code"] == 404

        named = Message(f"{PREFIX}/name/bad name/get", b"", 0, False, origin="dev1")
        topics.on_publish(broker, SESSION, named)
        await until(lambda: f"{named.topic}/rejected" in recorder.topics())
        assert recorder.payload(f"{named.topic}/rejected")["message"] == "Invalid shadow name"

    run(scenario)


def test_too_many_requests_in_flight_are_rejected_with_429() -> None:
    async def scenario(broker: Broker, recorder: Recorder, topics: ShadowTopics) -> None:
        topics.on_publish(broker, SESSION, request("update", {"state": {}, "clientToken": "1"}))
        # Still in flight (its worker has not run yet): the next one is refused at once.
        topics.on_publish(broker, SESSION, request("update", {"state": {}, "clientToken": "2"}))
        refused = recorder.payload(f"{PREFIX}/update/rejected")
        assert (refused["code"], refused["message"], refused["clientToken"]) == (
            429, "Too Many Requests", "2")
        await until(lambda: f"{PREFIX}/update/accepted" in recorder.topics())
        assert recorder.payload(f"{PREFIX}/update/accepted")["clientToken"] == "1"
        # Once answered, the slot is free again.
        topics.on_publish(broker, SESSION, request("get", {"clientToken": "3"}))
        await until(lambda: f"{PREFIX}/get/accepted" in recorder.topics())

    run(scenario, max_in_flight=1)


def test_an_internal_failure_is_answered_with_500() -> None:
    async def scenario(broker: Broker, recorder: Recorder, topics: ShadowTopics) -> None:
        class Broken:
            def get(self, *args: object) -> None:
                raise RuntimeError("database on fire")

        topics.service = Broken()  # type: ignore[assignment]
        topics.on_publish(broker, SESSION, request("get", {"clientToken": "x"}))
        await until(lambda: f"{PREFIX}/get/rejected" in recorder.topics())
        failure = recorder.payload(f"{PREFIX}/get/rejected")
        assert (failure["code"], failure["message"], failure["clientToken"]) == (
            500, "Internal service failure", "x")
        assert "database" not in json.dumps(failure)

    run(scenario)


def test_changes_made_from_other_threads_are_announced_on_the_loop() -> None:
    async def scenario(broker: Broker, recorder: Recorder, topics: ShadowTopics) -> None:
        # What the REST API does: call the service from a worker thread.
        await asyncio.to_thread(topics.service.update, "dev1", "lamp",
                                b'{"state": {"reported": {"on": true}}}')
        await until(lambda: len(recorder.messages) == 2)
        assert recorder.topics() == [f"{PREFIX}/name/lamp/update/accepted",
                                     f"{PREFIX}/name/lamp/update/documents"]

    run(scenario)


def test_will_messages_do_not_reach_the_service() -> None:
    async def scenario(broker: Broker, recorder: Recorder, topics: ShadowTopics) -> None:
        # A will is published for a session whose connection is gone.
        gone: Any = SimpleNamespace(client_id="dev1", connection=None)
        will = request("update", {"state": {"reported": {"online": False}}})
        assert topics.on_publish(broker, gone, will) is False  # routed as usual
        assert recorder.messages == []
        with pytest.raises(ShadowNotFoundError):
            await asyncio.to_thread(topics.service.get, "dev1")

    run(scenario)
