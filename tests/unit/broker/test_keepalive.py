"""KeepAliveWheel on a clock the test moves.

The wheel files connections under whole seconds of monotonic time and runs one timer, for
the earliest second. Each test starts its clock ``PHASE`` past a whole second: a deadline
0.3 s ahead then falls in the very next second (0.4 s away) and a deadline 1.1 s ahead in
the one after (1.4 s away). Moving the clock runs the timers that fall due, in order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

from bastion.broker._keepalive import KeepAliveWheel
from support.clock import ManualClock

PHASE = 0.6
MARGIN = 0.06


def phased_clock() -> ManualClock:
    clock = ManualClock(datetime.fromtimestamp(1_700_000_000, UTC), monotonic=1000.0)
    clock.advance(math.floor(clock.monotonic()) + 1 + PHASE - clock.monotonic())
    return clock


def run(scenario: Callable[[ManualClock], None]) -> None:
    scenario(phased_clock())


class Conn:
    """A watched connection: records when it was asked, optionally re-files itself."""

    def __init__(self, clock: ManualClock, name: str, calls: list[tuple[str, float]],
                 on_due: Callable[[Conn], None] | None = None) -> None:
        self.clock = clock
        self.name = name
        self.keep_alive_slot = 0
        self.calls = calls
        self.on_due = on_due
        self.times: list[float] = []

    def keep_alive_due(self) -> None:
        now = self.clock.monotonic()
        self.times.append(now)
        self.calls.append((self.name, now))
        if self.on_due is not None:
            self.on_due(self)

    def __repr__(self) -> str:
        return f"Conn({self.name})"


def sleep_until(clock: ManualClock, when: float) -> None:
    clock.advance(max(0.0, when - clock.monotonic()))


def test_watched_connection_is_called_once_after_its_deadline() -> None:
    def scenario(clock: ManualClock) -> None:
        wheel = KeepAliveWheel(clock)
        calls: list[tuple[str, float]] = []
        conn = Conn(clock, "a", calls)
        deadline = clock.monotonic() + 0.3
        wheel.watch(conn, deadline)
        slot = math.ceil(deadline)
        assert conn.keep_alive_slot == slot
        assert len(wheel) == 1

        sleep_until(clock, deadline - 0.2)
        assert calls == []
        sleep_until(clock, slot + MARGIN)
        assert len(conn.times) == 1
        assert conn.times[0] >= deadline
        assert conn.times[0] >= slot  # checked late (up to a second), never early
        assert conn.keep_alive_slot == 0
        assert len(wheel) == 0
        assert clock.pending() == []  # nothing left to wait for: no timer

        clock.advance(0.1)
        assert len(conn.times) == 1
        wheel.close()

    run(scenario)


def test_unwatch_prevents_the_call_and_empties_the_wheel() -> None:
    def scenario(clock: ManualClock) -> None:
        wheel = KeepAliveWheel(clock)
        calls: list[tuple[str, float]] = []
        conn, other = Conn(clock, "a", calls), Conn(clock, "b", calls)
        deadline = clock.monotonic() + 0.1
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

        sleep_until(clock, math.ceil(deadline) + MARGIN)
        assert calls == []
        wheel.close()

    run(scenario)


def test_rewatching_moves_the_filing() -> None:
    def scenario(clock: ManualClock) -> None:
        wheel = KeepAliveWheel(clock)
        calls: list[tuple[str, float]] = []
        conn = Conn(clock, "a", calls)
        early = clock.monotonic() + 0.1
        wheel.watch(conn, early)
        late = early + 1.0
        wheel.watch(conn, late)  # heard from the client: a later deadline
        assert conn.keep_alive_slot == math.ceil(late) == math.ceil(early) + 1
        assert len(wheel) == 1

        sleep_until(clock, math.ceil(early) + MARGIN)
        assert calls == []  # the old filing is gone
        assert len(wheel) == 1
        sleep_until(clock, math.ceil(late) + MARGIN)
        assert len(conn.times) == 1
        assert conn.times[0] >= late
        assert len(wheel) == 0
        wheel.close()

    run(scenario)


def test_rewatching_earlier_reschedules_the_timer() -> None:
    def scenario(clock: ManualClock) -> None:
        wheel = KeepAliveWheel(clock)
        calls: list[tuple[str, float]] = []
        conn = Conn(clock, "a", calls)
        late = clock.monotonic() + 1.1
        early = clock.monotonic() + 0.1
        wheel.watch(conn, late)
        wheel.watch(conn, early)
        assert conn.keep_alive_slot == math.ceil(early)
        assert clock.pending() == [math.ceil(early)]

        sleep_until(clock, math.ceil(early) + MARGIN)
        assert len(conn.times) == 1
        assert len(wheel) == 0
        wheel.close()

    run(scenario)


def test_connection_rewatching_itself_is_called_again() -> None:
    def scenario(clock: ManualClock) -> None:
        wheel = KeepAliveWheel(clock)
        calls: list[tuple[str, float]] = []
        second_deadlines: list[float] = []

        def rewatch_once(conn: Conn) -> None:
            if len(conn.times) == 1:
                # Not silent after all: its client spoke; file it under the new deadline.
                deadline = clock.monotonic() + 0.5
                second_deadlines.append(deadline)
                wheel.watch(conn, deadline)
                assert conn.keep_alive_slot == math.ceil(deadline)

        conn = Conn(clock, "a", calls, on_due=rewatch_once)
        first = clock.monotonic() + 0.1
        wheel.watch(conn, first)

        sleep_until(clock, math.ceil(first) + MARGIN)
        assert len(conn.times) == 1
        assert len(wheel) == 1
        [second] = second_deadlines
        assert math.ceil(second) == math.ceil(first) + 1
        sleep_until(clock, math.ceil(second) + MARGIN)
        assert len(conn.times) == 2
        assert conn.times[1] >= second
        assert conn.keep_alive_slot == 0
        assert len(wheel) == 0
        wheel.close()

    run(scenario)


def test_connections_in_different_seconds_are_all_called_earliest_first() -> None:
    def scenario(clock: ManualClock) -> None:
        wheel = KeepAliveWheel(clock)
        calls: list[tuple[str, float]] = []
        now = clock.monotonic()
        deadlines = {"late": now + 1.1, "early": now + 0.1, "early-too": now + 0.2}
        conns = {name: Conn(clock, name, calls) for name in deadlines}
        for name in ("late", "early-too", "early"):  # the latest is filed first
            wheel.watch(conns[name], deadlines[name])
        assert len(wheel) == 3
        early_slot, late_slot = math.ceil(now + 0.1), math.ceil(now + 1.1)
        assert late_slot == early_slot + 1
        assert {c.keep_alive_slot for c in conns.values()} == {early_slot, late_slot}
        # One timer, for the earliest second.
        assert clock.pending() == [early_slot]

        sleep_until(clock, early_slot + MARGIN)
        assert sorted(name for name, _ in calls) == ["early", "early-too"]
        assert len(wheel) == 1
        sleep_until(clock, late_slot + MARGIN)
        assert [name for name, _ in calls][2:] == ["late"]
        for name, conn in conns.items():
            assert len(conn.times) == 1
            assert conn.times[0] >= deadlines[name]
        assert len(wheel) == 0
        wheel.close()

    run(scenario)


def test_close_cancels_everything() -> None:
    def scenario(clock: ManualClock) -> None:
        wheel = KeepAliveWheel(clock)
        calls: list[tuple[str, float]] = []
        a, b = Conn(clock, "a", calls), Conn(clock, "b", calls)
        deadline = clock.monotonic() + 0.1
        wheel.watch(a, deadline)
        wheel.watch(b, deadline + 1.0)
        assert len(clock.pending()) == 1
        wheel.close()
        assert len(wheel) == 0
        assert clock.pending() == []

        sleep_until(clock, math.ceil(deadline) + MARGIN)
        assert calls == []

        # A closed wheel can be used again (the same connection objects, still marked
        # with their old slots, are re-filed cleanly).
        wheel.watch(a, clock.monotonic() + 0.1)
        assert len(wheel) == 1
        wheel.unwatch(a)
        assert len(wheel) == 0
        wheel.close()

    run(scenario)


def test_unwatch_from_another_keep_alive_due_in_the_same_second() -> None:
    def scenario(clock: ManualClock) -> None:
        wheel = KeepAliveWheel(clock)
        calls: list[tuple[str, float]] = []
        pair: list[Conn] = []

        def drop_the_other(conn: Conn) -> None:
            for other in pair:
                if other is not conn:
                    wheel.unwatch(other)

        pair += [Conn(clock, "a", calls, on_due=drop_the_other), Conn(clock, "b", calls, on_due=drop_the_other)]
        deadline = clock.monotonic() + 0.1
        for conn in pair:
            wheel.watch(conn, deadline)
        sleep_until(clock, math.ceil(deadline) + MARGIN)
        # Whichever came first unwatched the other, which must then not be called.
        assert len(calls) == 1, calls
        wheel.close()

    run(scenario)
