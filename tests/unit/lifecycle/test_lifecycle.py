"""The lifecycle: start order, reverse stop, background work, a failing component."""

from __future__ import annotations

import asyncio

import pytest

from bastion.lifecycle import Component, ComponentFailed, Lifecycle


class Recorder(Component):
    def __init__(self, name: str, log: list[str], *, fail_start: bool = False,
                 fail_run: asyncio.Event | None = None) -> None:
        self.name = name
        self._log = log
        self._fail_start = fail_start
        self._fail_run = fail_run
        self.running = asyncio.Event()

    async def start(self) -> None:
        if self._fail_start:
            raise OSError(f"{self.name}: address in use")
        self._log.append(f"start {self.name}")

    async def run(self) -> None:
        self.running.set()
        if self._fail_run is not None:
            await self._fail_run.wait()
            raise RuntimeError(f"{self.name} crashed")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self._log.append(f"cancelled {self.name}")
            raise

    async def stop(self) -> None:
        self._log.append(f"stop {self.name}")


def test_starts_in_order_and_stops_in_reverse() -> None:
    async def main() -> list[str]:
        log: list[str] = []
        parts = [Recorder(name, log) for name in ("store", "journal", "listeners", "api")]
        lifecycle = Lifecycle(parts)
        await lifecycle.start()
        assert lifecycle.started == tuple(parts)
        await asyncio.wait_for(asyncio.gather(*(p.running.wait() for p in parts)), 5)
        await lifecycle.stop()
        await lifecycle.stop()  # idempotent
        assert await lifecycle.wait() is None
        return log

    log = asyncio.run(main())
    assert log == ["start store", "start journal", "start listeners", "start api",
                   "stop api", "cancelled api", "stop listeners", "cancelled listeners",
                   "stop journal", "cancelled journal", "stop store", "cancelled store"]


def test_a_failing_start_stops_what_had_started_and_raises() -> None:
    async def main() -> list[str]:
        log: list[str] = []
        lifecycle = Lifecycle([Recorder("store", log), Recorder("listeners", log,
                                                                 fail_start=True),
                               Recorder("api", log)])
        with pytest.raises(OSError, match="address in use"):
            await lifecycle.start()
        return log

    log = asyncio.run(main())
    # "api" never started; "store" was stopped (its run, not yet begun, cancelled).
    assert log[:2] == ["start store", "stop store"]
    assert "start api" not in log


def test_a_crashing_component_stops_everything_cleanly(
        caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> tuple[ComponentFailed | None, list[str]]:
        log: list[str] = []
        crash = asyncio.Event()
        lifecycle = Lifecycle([Recorder("store", log), Recorder("detect", log, fail_run=crash),
                               Recorder("api", log)])
        await lifecycle.start()
        crash.set()
        failure = await asyncio.wait_for(lifecycle.wait(), 5)
        return failure, log

    failure, log = asyncio.run(main())
    assert isinstance(failure, ComponentFailed)
    assert failure.name == "detect"
    assert "detect crashed" in str(failure.error)
    assert log[:3] == ["start store", "start detect", "start api"]
    assert log[3:] == ["stop api", "cancelled api", "stop detect", "stop store",
                       "cancelled store"]
    assert "detect failed; stopping Bastion" in caplog.text


def test_start_twice_is_refused() -> None:
    async def main() -> None:
        lifecycle = Lifecycle([])
        await lifecycle.start()
        with pytest.raises(RuntimeError):
            await lifecycle.start()
        await lifecycle.stop()

    asyncio.run(main())


def test_nothing_runs_before_start() -> None:
    async def main() -> None:
        log: list[str] = []
        part = Recorder("journal", log)
        Lifecycle([part])  # constructing starts nothing
        await asyncio.sleep(0)
        assert log == [] and not part.running.is_set()

    asyncio.run(main())
