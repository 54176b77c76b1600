"""The in-process event bus: typed delivery, delivery on the loop from any thread, order
per publisher, failure isolation, unsubscribe."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import pytest

from bastion.events import InProcessBus


@dataclass(frozen=True, slots=True)
class Base:
    n: int


@dataclass(frozen=True, slots=True)
class Child(Base):
    pass


@dataclass(frozen=True, slots=True)
class Other:
    n: int


def test_handlers_get_only_their_type_and_subclasses() -> None:
    bus = InProcessBus()
    bases: list[object] = []
    children: list[object] = []
    others: list[object] = []
    bus.subscribe(Base, bases.append)
    bus.subscribe(Child, children.append)
    bus.subscribe(Other, others.append)
    bus.publish(Base(1))
    bus.publish(Child(2))
    bus.publish(Other(3))
    bus.publish("not an event anyone wants")
    assert bases == [Base(1), Child(2)]
    assert children == [Child(2)]
    assert others == [Other(3)]


def test_subscribe_needs_a_class() -> None:
    with pytest.raises(TypeError):
        InProcessBus().subscribe("Base", print)  # type: ignore[arg-type]


def test_unsubscribe_stops_delivery_and_is_idempotent() -> None:
    bus = InProcessBus()
    seen: list[object] = []
    unsubscribe = bus.subscribe(Base, seen.append)
    bus.publish(Base(1))
    unsubscribe()
    unsubscribe()
    bus.publish(Base(2))
    assert seen == [Base(1)]


def test_a_failing_handler_is_logged_and_the_others_still_run(
        caplog: pytest.LogCaptureFixture) -> None:
    bus = InProcessBus()
    seen: list[object] = []

    def broken(event: Base) -> None:
        raise RuntimeError("consumer bug")

    bus.subscribe(Base, broken)
    bus.subscribe(Base, seen.append)
    bus.publish(Base(1))  # the publisher never sees the consumer's error
    assert seen == [Base(1)]
    assert "consumer bug" in caplog.text


def test_events_from_other_threads_are_delivered_on_the_loop_in_order() -> None:
    per_publisher = 500

    async def main() -> tuple[dict[int, list[int]], set[int], int]:
        loop = asyncio.get_running_loop()
        bus = InProcessBus(loop)
        received: dict[int, list[int]] = {}
        threads_seen: set[int] = set()
        done = asyncio.Event()
        total = 0

        def on_event(event: Other) -> None:
            nonlocal total
            threads_seen.add(threading.get_ident())
            publisher, n = divmod(event.n, per_publisher)
            received.setdefault(publisher, []).append(n)
            total += 1
            if total == 4 * per_publisher:
                done.set()

        bus.subscribe(Other, on_event)

        def publish_all(publisher: int) -> None:
            for n in range(per_publisher):
                bus.publish(Other(publisher * per_publisher + n))

        workers = [threading.Thread(target=publish_all, args=(p,)) for p in range(4)]
        for worker in workers:
            worker.start()
        await asyncio.wait_for(done.wait(), 10)
        for worker in workers:
            worker.join()
        return received, threads_seen, threading.get_ident()

    received, threads, loop_thread = asyncio.run(main())
    assert sorted(received) == [0, 1, 2, 3]
    for publisher, numbers in received.items():
        assert numbers == list(range(per_publisher)), f"publisher {publisher} out of order"
    assert threads == {loop_thread}  # every delivery ran on the loop's thread


def test_publish_on_the_loop_delivers_at_once() -> None:
    async def main() -> list[object]:
        bus = InProcessBus(asyncio.get_running_loop())
        seen: list[object] = []
        bus.subscribe(Base, seen.append)
        bus.publish(Base(1))
        return list(seen)  # before the loop ran anything else

    assert asyncio.run(main()) == [Base(1)]


def test_subscribing_while_publishing_from_threads_is_safe() -> None:
    bus = InProcessBus()
    seen: list[object] = []
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            bus.subscribe(Other, lambda event: None)()

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        bus.subscribe(Base, seen.append)
        for n in range(2000):
            bus.publish(Base(n))
    finally:
        stop.set()
        worker.join()
    assert [e.n for e in seen] == list(range(2000))  # type: ignore[attr-defined]


def test_a_closed_loop_does_not_lose_the_publisher() -> None:
    loop = asyncio.new_event_loop()
    bus = InProcessBus(loop)
    loop.close()
    seen: list[object] = []
    bus.subscribe(Base, seen.append)
    bus.publish(Base(1))  # delivered in the publisher's thread, never raises
    assert seen == [Base(1)]
