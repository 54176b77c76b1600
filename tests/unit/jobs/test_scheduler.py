"""The background task: woken by pokes and events (its interval here is far longer than
the test), judging timers by the service's fake clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from bastion.events import InProcessBus
from bastion.jobs import ExecutionStatus, JobScheduler, JobsError, JobService
from bastion.lifecycle import Lifecycle
from bastion.registry import RegistryService, ThingGroupMembershipChanged
from bastion.store import Store
from support.clock import ManualClock

Things = Callable[..., list[str]]


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def status_of(jobs: JobService, job_id: str, thing: str) -> ExecutionStatus | None:
    try:
        execution = jobs.describe_job_execution(job_id, thing)
    except JobsError:
        return None
    return None if execution is None else execution.status


def test_poke_runs_a_round_at_the_fake_clocks_time(jobs: JobService, things: Things,
                                                   clock: ManualClock) -> None:
    (thing,) = things("sched")
    jobs.create_job("sched-job", targets=[thing], document="{}")
    jobs.start_next_pending_job_execution("sched", step_timeout_in_minutes=5)

    async def scenario() -> None:
        scheduler = JobScheduler(jobs, InProcessBus(), interval=3600)
        lifecycle = Lifecycle([scheduler])
        await lifecycle.start()
        try:
            await eventually(lambda: scheduler.rounds >= 1, "the first round")
            assert status_of(jobs, "sched-job", "sched") is ExecutionStatus.IN_PROGRESS
            clock.advance(timedelta(minutes=5))
            scheduler.poke()
            await eventually(lambda: status_of(jobs, "sched-job", "sched")
                             is ExecutionStatus.TIMED_OUT, "the step timeout")
        finally:
            await lifecycle.stop()

    asyncio.run(scenario())


def test_registry_events_reach_continuous_jobs(jobs: JobService, things: Things,
                                               registry: RegistryService) -> None:
    registry.create_thing_group("sched-fleet")
    jobs.create_job("sched-cont", targets=[registry.account.arn("thinggroup/sched-fleet")],
                    document="{}", target_selection="CONTINUOUS")
    things("newcomer", group="sched-fleet")

    async def scenario() -> None:
        bus = InProcessBus(asyncio.get_running_loop())
        lifecycle = Lifecycle([JobScheduler(jobs, bus, interval=3600)])
        await lifecycle.start()
        try:
            bus.publish(object())  # not a registry event: nobody listens
            await asyncio.to_thread(bus.publish,  # from another thread
                                    ThingGroupMembershipChanged("newcomer", "sched-fleet",
                                                                True))
            await eventually(lambda: status_of(jobs, "sched-cont", "newcomer")
                             is ExecutionStatus.QUEUED, "the continuous execution")
        finally:
            await lifecycle.stop()

    asyncio.run(scenario())


def test_a_failing_round_is_retried(store: Store, registry: RegistryService,
                                    clock: ManualClock,
                                    caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    class Flaky(JobService):
        __slots__ = ()

        def run_due(self) -> datetime | None:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("database went away")
            return super().run_due()

    async def scenario() -> None:
        lifecycle = Lifecycle([JobScheduler(Flaky(store, registry, clock), InProcessBus(),
                                            interval=0.01)])
        await lifecycle.start()
        try:
            await eventually(lambda: len(calls) >= 2, "a second round")
        finally:
            await lifecycle.stop()

    asyncio.run(scenario())
    assert "jobs upkeep round failed" in caplog.text


def test_interval_must_be_positive(jobs: JobService) -> None:
    with pytest.raises(ValueError):
        JobScheduler(jobs, InProcessBus(), interval=0)
