"""bastion.clock's SystemClock, and the ManualClock tests move by hand
(tests/support/clock.py), both held to the :class:`bastion.clock.Clock` protocol."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import TypeVar

import pytest

from bastion.clock import Clock, SystemClock
from support.clock import ManualClock

T = TypeVar("T")
START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
WAIT = 5.0  # seconds a test waits for something that should happen at once


def run(main: Callable[[], Awaitable[T]]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(main(), WAIT)
    return asyncio.run(bounded())


async def until(condition: Callable[[], bool]) -> None:
    """Poll the loop until ``condition`` holds (bounded by :func:`run`'s timeout)."""
    while not condition():
        await asyncio.sleep(0)


# -- SystemClock --------------------------------------------------------------------------

def test_system_clock_now_is_aware_utc() -> None:
    clock: Clock = SystemClock()
    now = clock.now()
    assert now.tzinfo is UTC and now.utcoffset() == timedelta(0)
    assert abs(now - datetime.now(UTC)) < timedelta(minutes=1)


def test_system_clock_time_is_the_same_instant_as_now() -> None:
    clock = SystemClock()
    before = clock.now().timestamp()
    epoch = clock.time()
    after = clock.now().timestamp()
    # now() is rounded to the microsecond, time() is not: allow that rounding.
    assert before - 1e-6 <= epoch <= after + 1e-6


def test_system_clock_monotonic_never_goes_back() -> None:
    clock = SystemClock()
    readings = [clock.monotonic() for _ in range(1000)]
    assert readings == sorted(readings)


def test_system_clock_past_deadlines_and_wake_return_at_once() -> None:
    clock = SystemClock()

    async def main() -> None:
        await clock.sleep_until(clock.now() - timedelta(hours=1))
        await clock.sleep(0)
        await clock.sleep(-1)
        wake = asyncio.Event()
        wake.set()
        await clock.sleep_until(clock.now() + timedelta(days=1), wake)
    run(main)


def test_system_clock_sleep_until_a_near_deadline() -> None:
    clock = SystemClock()

    async def main() -> None:
        deadline = clock.now() + timedelta(milliseconds=20)
        await clock.sleep_until(deadline)
        assert clock.now() >= deadline
    run(main)


# -- ManualClock --------------------------------------------------------------------------

def test_manual_clock_reads_what_the_test_set() -> None:
    clock: Clock = ManualClock(START)
    assert clock.now() == START and clock.time() == START.timestamp()
    assert clock.monotonic() == 0.0


def test_manual_clock_answers_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    clock = ManualClock(START.astimezone(plus_two))
    assert clock.now() == START and clock.now().tzinfo is UTC
    clock.set(START.astimezone(plus_two) + timedelta(hours=1))
    assert clock.now().tzinfo is UTC


def test_manual_clock_refuses_naive_times_and_going_back_by_advance() -> None:
    with pytest.raises(ValueError):
        ManualClock(datetime(2025, 1, 1))
    clock = ManualClock(START)
    with pytest.raises(ValueError):
        clock.set(datetime(2025, 1, 1))
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError):
        clock.advance(-0.5)
    with pytest.raises(ValueError):
        ManualClock(START, tick=timedelta(seconds=-1))


def test_wall_and_monotonic_advance_together() -> None:
    clock = ManualClock(START)
    clock.advance(timedelta(minutes=2))
    clock.advance(1.5)
    assert clock.now() == START + timedelta(minutes=2, seconds=1.5)
    assert clock.monotonic() == 121.5


def test_monotonic_never_goes_backward_when_the_wall_does() -> None:
    clock = ManualClock(START)
    clock.set(START + timedelta(hours=1))
    assert clock.monotonic() == 3600.0
    clock.set(START)  # the wall clock was stepped back (NTP)
    assert clock.now() == START
    assert clock.monotonic() == 3600.0
    clock.set(START + timedelta(seconds=30))
    assert clock.monotonic() == 3630.0


def test_a_ticking_clock_gives_distinct_readings() -> None:
    clock = ManualClock(START, tick=timedelta(seconds=1))
    assert [clock.now(), clock.now()] == [START + timedelta(seconds=1),
                                          START + timedelta(seconds=2)]
    assert clock.time() == (START + timedelta(seconds=3)).timestamp()
    assert clock.monotonic() == 3.0


def test_sleep_until_wakes_when_moved_past_the_deadline() -> None:
    clock = ManualClock(START)

    async def main() -> None:
        sleeper = asyncio.create_task(clock.sleep_until(START + timedelta(minutes=5)))
        await until(lambda: clock.sleepers() == 1)
        clock.advance(timedelta(minutes=4, seconds=59))
        await asyncio.sleep(0)
        assert not sleeper.done()
        clock.advance(timedelta(seconds=1))
        await sleeper
        assert clock.sleepers() == 0
    run(main)


def test_set_wakes_only_the_sleepers_that_are_due() -> None:
    clock = ManualClock(START)

    async def main() -> None:
        early = asyncio.create_task(clock.sleep_until(START + timedelta(hours=1)))
        late = asyncio.create_task(clock.sleep_until(START + timedelta(hours=3)))
        await until(lambda: clock.sleepers() == 2)
        clock.set(START + timedelta(hours=2))
        await early
        await asyncio.sleep(0)
        assert not late.done() and clock.sleepers() == 1
        late.cancel()
        with pytest.raises(asyncio.CancelledError):
            await late
        assert clock.sleepers() == 0  # a cancelled sleeper leaves no trace
    run(main)


def test_sleep_waits_on_monotonic_time() -> None:
    clock = ManualClock(START)

    async def main() -> None:
        sleeper = asyncio.create_task(clock.sleep(10))
        await until(lambda: clock.sleepers() == 1)
        clock.set(START - timedelta(hours=1))  # the wall going back moves no interval
        clock.set(START + timedelta(seconds=9))
        await asyncio.sleep(0)
        assert not sleeper.done()
        clock.advance(1)
        await sleeper
    run(main)


def test_past_deadlines_and_zero_sleeps_return_at_once() -> None:
    clock = ManualClock(START)

    async def main() -> None:
        await clock.sleep_until(START)
        await clock.sleep_until(START - timedelta(days=1))
        await clock.sleep(0)
        assert clock.sleepers() == 0
    run(main)


def test_wake_event_ends_the_sleep_early() -> None:
    clock = ManualClock(START)

    async def main() -> None:
        wake = asyncio.Event()
        sleeper = asyncio.create_task(clock.sleep_until(START + timedelta(days=1), wake))
        await until(lambda: clock.sleepers() == 1)
        wake.set()
        await sleeper
        assert clock.now() == START and clock.sleepers() == 0
    run(main)


def test_moving_from_another_thread_wakes_the_loop() -> None:
    clock = ManualClock(START)

    async def main() -> None:
        sleeper = asyncio.create_task(clock.sleep_until(START + timedelta(seconds=30)))
        await until(lambda: clock.sleepers() == 1)
        assert clock.sleeping.is_set()
        mover = threading.Thread(target=clock.advance, args=(timedelta(minutes=1),))
        mover.start()
        await sleeper
        mover.join()
    run(main)


def test_concurrent_moves_and_reads_stay_consistent() -> None:
    clock = ManualClock(START)
    seen: list[float] = []

    def read() -> None:
        last = clock.monotonic()
        for _ in range(2000):
            now = clock.monotonic()
            if now < last:
                seen.append(now)
            last = now

    def move() -> None:
        for _ in range(500):
            clock.advance(timedelta(milliseconds=1))

    threads = [threading.Thread(target=read) for _ in range(2)]
    threads += [threading.Thread(target=move) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert seen == []
    assert clock.now() == START + timedelta(seconds=2)
    assert clock.monotonic() == pytest.approx(2.0)
