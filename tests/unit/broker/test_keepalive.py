"""KeepAliveWheel on a real asyncio loop.

The wheel files connections under whole seconds of loop time, so how long a test waits
depends on where in its second the loop clock is. Each test runs on a selector loop whose
clock is the monotonic clock shifted so that it starts at ``PHASE`` past a whole second:
a deadline 0.3 s ahead then falls in the very next second (0.4 s away) and a deadline
1.1 s ahead in the one after (1.4 s away). Nothing else about the loop is changed; the
wheel reads the same ``loop.time()`` the test does.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable

from bastion.broker._keepalive import KeepAliveWheel

PHASE = 0.6
MARGIN = 0.06


class PhasedLoop(asyncio.SelectorEventLoop):
    """A selector loop whose clock starts ``PHASE`` past a whole second."""

    def __init__(self) -> None:
        super().__init__()
        now = super().time()
        self._shift = math.floor(now) + 1 + PHASE - now

    def time(self) -> float:
        return super().time() + self._shift


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    with asyncio.Runner(loop_factory=PhasedLoop) as runner:
        runner.run(scenario())  # type: ignore[arg-type]


class Conn:
    """A watched connection: records when it was asked, optionally re-files itself."""

    def __init__(self, name: str, calls: list[tuple[str, float]],
                 on_due: Callable[[Conn], None] | None = None) -> None:
        self.name = name
        self.keep_alive_slot = 0
        self.calls = calls
        self.on_due = on_due
        self.times: list[float] = []

    def keep_alive_due(self) -> None:
        now = asyncio.get_running_loop().time()
        self.times.append(now)
        self.calls.append((self.name, now))
        if self.on_due is not None:
            self.on_due(self)

    def __repr__(self) -> str:
        return f"Conn({self.name})"


async def sleep_until(when: float) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, when - loop.time()))


def live_timers(loop: asyncio.AbstractEventLoop) -> list[asyncio.TimerHandle]:
    return [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]


def test_watched_connection_is_called_once_after_its_deadline() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        wheel = KeepAliveWheel()
        calls: list[tuple[str, float]] = []
        conn = Conn("a", calls)
        deadline = loop.time() + 0.3
        wheel.watch(conn, deadline)
        slot = math.ceil(deadline)
        assert conn.keep_alive_slot == slot
        assert len(wheel) == 1

        await sleep_until(deadline - 0.2)
        assert calls == []
        await sleep_until(slot + MARGIN)
        assert len(conn.times) == 1
        assert conn.times[0] >= deadline
        assert conn.times[0] >= slot  # checked late (up to a second), never early
        assert conn.keep_alive_slot == 0
        assert len(wheel) == 0
        assert live_timers(loop) == []  # nothing left to wait for: no timer

        await asyncio.sleep(0.1)
        assert len(conn.times) == 1
        wheel.close()

    run(scenario)


def test_unwatch_prevents_the_call_and_empties_the_wheel() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        wheel = KeepAliveWheel()
        calls: list[tuple[str, float]] = []
        conn, other = Conn("a", calls), Conn("b", calls)
        deadline = loop.time() + 0.1
        wheel.watch(conn, deadline)
        wheel.watch(other, deadline)
        assert len(wheel) == 2
        wheel.unwatch(conn)
        assert conn.keep_alive_slot == 0
        assert len(wheel) == 1
        wheel.unwatch(other)
        assert len(wheel) == 0
        wheel.unwatch(other)  # not filed: nothing happens
        assert len(wheel) == 0

        await sleep_until(math.ceil(deadline) + MARGIN)
        assert calls == []
        wheel.close()

    run(scenario)


def test_rewatching_moves_the_filing() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        wheel = KeepAliveWheel()
        calls: list[tuple[str, float]] = []
        conn = Conn("a", calls)
        early = loop.time() + 0.1
        wheel.watch(conn, early)
        late = early + 1.0
        wheel.watch(conn, late)  # heard from the client: a later deadline
        assert conn.keep_alive_slot == math.ceil(late) == math.ceil(early) + 1
        assert len(wheel) == 1

        await sleep_until(math.ceil(early) + MARGIN)
        assert calls == []  # the old filing is gone
        assert len(wheel) == 1
        await sleep_until(math.ceil(late) + MARGIN)
        assert len(conn.times) == 1
        assert conn.times[0] >= late
        assert len(wheel) == 0
        wheel.close()

    run(scenario)


def test_rewatching_earlier_reschedules_the_timer() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        wheel = KeepAliveWheel()
        calls: list[tuple[str, float]] = []
        conn = Conn("a", calls)
        late = loop.time() + 1.1
        early = loop.time() + 0.1
        wheel.watch(conn, late)
        wheel.watch(conn, early)
        assert conn.keep_alive_slot == math.ceil(early)
        timers = live_timers(loop)
        assert len(timers) == 1 and timers[0].when() == math.ceil(early)

        await sleep_until(math.ceil(early) + MARGIN)
        assert len(conn.times) == 1
        assert len(wheel) == 0
        wheel.close()

    run(scenario)


def test_connection_rewatching_itself_is_called_again() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        wheel = KeepAliveWheel()
        calls: list[tuple[str, float]] = []
        second_deadlines: list[float] = []

        def rewatch_once(conn: Conn) -> None:
            if len(conn.times) == 1:
                # Not silent after all: its client spoke; file it under the new deadline.
                deadline = loop.time() + 0.5
                second_deadlines.append(deadline)
                wheel.watch(conn, deadline)
                assert conn.keep_alive_slot == math.ceil(deadline)

        conn = Conn("a", calls, on_due=rewatch_once)
        first = loop.time() + 0.1
        wheel.watch(conn, first)

        await sleep_until(math.ceil(first) + MARGIN)
        assert len(conn.times) == 1
        assert len(wheel) == 1
        [second] = second_deadlines
        assert math.ceil(second) == math.ceil(first) + 1
        await sleep_until(math.ceil(second) + MARGIN)
        assert len(conn.times) == 2
        assert conn.times[1] >= second
        assert conn.keep_alive_slot == 0
        assert len(wheel) == 0
        wheel.close()

    run(scenario)


def test_connections_in_different_seconds_are_all_called_earliest_first() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        wheel = KeepAliveWheel()
        calls: list[tuple[str, float]] = []
        now = loop.time()
        deadlines = {"late": now + 1.1, "early": now + 0.1, "early-too": now + 0.2}
        conns = {name: Conn(name, calls) for name in deadlines}
        for name in ("late", "early-too", "early"):  # the latest is filed first
            wheel.watch(conns[name], deadlines[name])
        assert len(wheel) == 3
        early_slot, late_slot = math.ceil(now + 0.1), math.ceil(now + 1.1)
        assert late_slot == early_slot + 1
        assert {c.keep_alive_slot for c in conns.values()} == {early_slot, late_slot}
        # One loop timer, for the earliest second.
        timers = live_timers(loop)
        assert len(timers) == 1 and timers[0].when() == early_slot

        await sleep_until(early_slot + MARGIN)
        assert sorted(name for name, _ in calls) == ["early", "early-too"]
        assert len(wheel) == 1
        await sleep_until(late_slot + MARGIN)
        assert [name for name, _ in calls][2:] == ["late"]
        for name, conn in conns.items():
            assert len(conn.times) == 1
            assert conn.times[0] >= deadlines[name]
        assert len(wheel) == 0
        wheel.close()

    run(scenario)


def test_close_cancels_everything() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        wheel = KeepAliveWheel()
        calls: list[tuple[str, float]] = []
        a, b = Conn("a", calls), Conn("b", calls)
        deadline = loop.time() + 0.1
        wheel.watch(a, deadline)
        wheel.watch(b, deadline + 1.0)
        assert len(live_timers(loop)) == 1
        wheel.close()
        assert len(wheel) == 0
        assert live_timers(loop) == []

        await sleep_until(math.ceil(deadline) + MARGIN)
        assert calls == []

        # A closed wheel can be used again (the same connection objects, still marked
        # with their old slots, are re-filed cleanly).
        wheel.watch(a, loop.time() + 0.1)
        assert len(wheel) == 1
        wheel.unwatch(a)
        assert len(wheel) == 0
        wheel.close()

    run(scenario)


def test_unwatch_from_another_keep_alive_due_in_the_same_second() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        wheel = KeepAliveWheel()
        calls: list[tuple[str, float]] = []
        pair: list[Conn] = []

        def drop_the_other(conn: Conn) -> None:
            for other in pair:
                if other is not conn:
                    wheel.unwatch(other)

        pair += [Conn("a", calls, on_due=drop_the_other), Conn("b", calls,
                                                              on_due=drop_the_other)]
        deadline = loop.time() + 0.1
        for conn in pair:
            wheel.watch(conn, deadline)
        await sleep_until(math.ceil(deadline) + MARGIN)
        # Whichever came first unwatched the other, which must then not be called.
        assert len(calls) == 1, calls
        wheel.close()

    run(scenario)
