"""What happens without anybody asking, driven by a fake clock: step and in-progress
timeouts, rollout rate, abort criteria, continuous targets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from bastion.jobs import (
    ExecutionStatus,
    JobExecutionsChanged,
    JobService,
    JobStatus,
    NextJobExecutionChanged,
    ResourceNotFoundError,
)
from bastion.registry import (
    RegistryService,
    ThingDeleted,
    ThingGroupDeleted,
    ThingGroupMembershipChanged,
)
from support.clock import ManualClock

Things = Callable[..., list[str]]
MINUTE = timedelta(minutes=1)


def status(jobs: JobService, job_id: str, thing: str) -> ExecutionStatus:
    execution = jobs.describe_job_execution(job_id, thing)
    assert execution is not None
    return execution.status


# -- timeouts ------------------------------------------------------------------------------------


def test_step_timeout(jobs: JobService, things: Things, clock: ManualClock,
                      events: list[object]) -> None:
    (thing,) = things("slow")
    jobs.create_job("step", targets=[thing], document="{}")
    started = jobs.start_next_pending_job_execution("slow", step_timeout_in_minutes=2)
    assert started is not None and started.approximate_seconds_before_timed_out == 120
    assert jobs.run_due() == clock.now() + 2 * MINUTE  # the next deadline
    clock.advance(MINUTE)
    jobs.run_due()
    assert status(jobs, "step", "slow") is ExecutionStatus.IN_PROGRESS
    # Progress with a new step timer resets it.
    jobs.update_job_execution("step", "slow", "IN_PROGRESS", step_timeout_in_minutes=2)
    clock.advance(MINUTE + timedelta(seconds=59))
    jobs.run_due()
    assert status(jobs, "step", "slow") is ExecutionStatus.IN_PROGRESS
    events.clear()
    clock.advance(timedelta(seconds=1))
    assert jobs.run_due() is None
    timed_out = jobs.describe_job_execution("step", "slow")
    assert timed_out is not None and timed_out.status is ExecutionStatus.TIMED_OUT
    assert timed_out.approximate_seconds_before_timed_out is None
    assert timed_out.last_updated_at == clock.now()
    assert jobs.describe_job("step").status is JobStatus.COMPLETED
    assert {type(e) for e in events} == {JobExecutionsChanged, NextJobExecutionChanged}


def test_progress_without_a_new_step_timer_keeps_the_old_one(
        jobs: JobService, things: Things, clock: ManualClock) -> None:
    (thing,) = things("keeper")
    jobs.create_job("keep", targets=[thing], document="{}")
    jobs.start_next_pending_job_execution("keeper", step_timeout_in_minutes=1)
    clock.advance(timedelta(seconds=30))
    jobs.update_job_execution("keep", "keeper", "IN_PROGRESS", status_details={"p": "1"})
    clock.advance(timedelta(seconds=30))
    jobs.run_due()
    assert status(jobs, "keep", "keeper") is ExecutionStatus.TIMED_OUT


def test_minus_one_cancels_the_step_timer(jobs: JobService, things: Things,
                                          clock: ManualClock) -> None:
    (thing,) = things("patient")
    jobs.create_job("cancel-step", targets=[thing], document="{}")
    jobs.start_next_pending_job_execution("patient", step_timeout_in_minutes=1)
    jobs.update_job_execution("cancel-step", "patient", "IN_PROGRESS",
                              step_timeout_in_minutes=-1)
    clock.advance(timedelta(days=30))
    assert jobs.run_due() is None
    assert status(jobs, "cancel-step", "patient") is ExecutionStatus.IN_PROGRESS


def test_in_progress_timeout(jobs: JobService, things: Things, clock: ManualClock) -> None:
    a, b = things("total-a", "total-b")
    jobs.create_job("total", targets=[a, b], document="{}",
                    timeout_config={"inProgressTimeoutInMinutes": 10})
    clock.advance(timedelta(hours=5))
    jobs.run_due()  # the timer starts at IN_PROGRESS, not at queueing
    assert status(jobs, "total", "total-a") is ExecutionStatus.QUEUED
    jobs.start_next_pending_job_execution("total-a")
    # Step timers do not extend the in-progress timer.
    clock.advance(9 * MINUTE)
    jobs.update_job_execution("total", "total-a", "IN_PROGRESS", step_timeout_in_minutes=60)
    clock.advance(MINUTE)
    jobs.run_due()
    assert status(jobs, "total", "total-a") is ExecutionStatus.TIMED_OUT
    assert status(jobs, "total", "total-b") is ExecutionStatus.QUEUED
    # A device finishing in time is not timed out.
    jobs.start_next_pending_job_execution("total-b")
    clock.advance(5 * MINUTE)
    jobs.update_job_execution("total", "total-b", "SUCCEEDED")
    clock.advance(timedelta(hours=1))
    jobs.run_due()
    assert status(jobs, "total", "total-b") is ExecutionStatus.SUCCEEDED
    assert jobs.describe_job("total").status is JobStatus.COMPLETED


# -- rollout ---------------------------------------------------------------------------------------


def test_constant_rollout_rate(jobs: JobService, things: Things, clock: ManualClock) -> None:
    targets = things(*(f"roll-{i}" for i in range(7)))
    job = jobs.create_job("roll", targets=targets, document="{}",
                          rollout_config={"maximumPerMinute": 3})
    assert job.process_details.count(ExecutionStatus.QUEUED) == 3 and job.is_concurrent
    assert jobs.run_due() == clock.now() + MINUTE
    clock.advance(timedelta(seconds=59))
    jobs.run_due()
    assert jobs.describe_job("roll").process_details.count(ExecutionStatus.QUEUED) == 3
    clock.advance(timedelta(seconds=1))
    jobs.run_due()
    assert jobs.describe_job("roll").process_details.count(ExecutionStatus.QUEUED) == 6
    clock.advance(MINUTE)
    assert jobs.run_due() is None
    final = jobs.describe_job("roll")
    assert final.process_details.count(ExecutionStatus.QUEUED) == 7
    assert not final.is_concurrent
    # Released in target order; a device sees only released executions.
    released = [e.thing_name for e in jobs.list_job_executions_for_job("roll")[0]]
    assert sorted(released) == [f"roll-{i}" for i in range(7)]


def test_exponential_rollout(jobs: JobService, things: Things, clock: ManualClock) -> None:
    targets = things(*(f"exp-{i:02}" for i in range(20)))
    jobs.create_job("exp", targets=targets, document="{}", rollout_config={
        "exponentialRate": {"baseRatePerMinute": 2, "incrementFactor": 2,
                            "rateIncreaseCriteria": {"numberOfSucceededThings": 2}}})
    def queued() -> int:
        return jobs.describe_job("exp").process_details.count(ExecutionStatus.QUEUED)

    assert queued() == 2
    jobs.update_job_execution("exp", "exp-00", "SUCCEEDED")
    jobs.update_job_execution("exp", "exp-01", "SUCCEEDED")
    clock.advance(MINUTE)
    jobs.run_due()  # 2 succeeded → 4 per minute
    assert queued() == 4
    clock.advance(MINUTE)
    jobs.run_due()  # still 2 succeeded
    assert queued() == 8


def test_cancel_stops_the_rollout(jobs: JobService, things: Things, clock: ManualClock) -> None:
    targets = things(*(f"stop-{i}" for i in range(4)))
    jobs.create_job("stop", targets=targets, document="{}",
                    rollout_config={"maximumPerMinute": 1})
    jobs.cancel_job("stop")
    clock.advance(timedelta(hours=1))
    jobs.run_due()
    job = jobs.describe_job("stop")
    assert job.process_details.counts == {ExecutionStatus.CANCELED: 1}
    assert not job.is_concurrent


# -- abort --------------------------------------------------------------------------------------------


def test_abort_criteria_cancel_the_job(jobs: JobService, things: Things) -> None:
    targets = things(*(f"ab-{i}" for i in range(6)))
    jobs.create_job("abort", targets=targets, document="{}", abort_config={"criteriaList": [
        {"failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 50,
         "minNumberOfExecutedThings": 3}]})
    jobs.start_next_pending_job_execution("ab-5")
    jobs.update_job_execution("abort", "ab-0", "FAILED")
    jobs.update_job_execution("abort", "ab-1", "SUCCEEDED")
    assert jobs.describe_job("abort").status is JobStatus.IN_PROGRESS  # 2 executed only
    jobs.update_job_execution("abort", "ab-2", "FAILED")  # 2 of 3 failed ≥ 50 %
    job = jobs.describe_job("abort")
    assert job.status is JobStatus.CANCELED and not job.force_canceled
    assert job.comment is not None and "abort" in job.comment
    counts = job.process_details.counts
    assert counts[ExecutionStatus.CANCELED] == 2  # ab-3, ab-4 were queued
    assert counts[ExecutionStatus.IN_PROGRESS] == 1  # ab-5 runs on (no force)


def test_timeouts_count_for_abort(jobs: JobService, things: Things, clock: ManualClock) -> None:
    targets = things("to-0", "to-1", "to-2")
    jobs.create_job("to", targets=targets, document="{}",
                    timeout_config={"inProgressTimeoutInMinutes": 1},
                    abort_config={"criteriaList": [
                        {"failureType": "TIMED_OUT", "action": "CANCEL",
                         "thresholdPercentage": 100, "minNumberOfExecutedThings": 1}]})
    jobs.start_next_pending_job_execution("to-0")
    clock.advance(MINUTE)
    jobs.run_due()
    assert jobs.describe_job("to").status is JobStatus.CANCELED
    assert status(jobs, "to", "to-1") is ExecutionStatus.CANCELED


# -- continuous targets ---------------------------------------------------------------------------


def test_continuous_job_follows_group_membership(
        jobs: JobService, things: Things, registry: RegistryService,
        events: list[object]) -> None:
    things("early", group="fleet")
    things("late")
    group = registry.account.arn("thinggroup/fleet")
    jobs.create_job("cont", targets=[group], document="{}", target_selection="CONTINUOUS")
    jobs.create_job("snap", targets=[group], document="{}")
    registry.add_thing_to_thing_group(thing_group_name="fleet", thing_name="late")
    joined = [e for e in events if isinstance(e, ThingGroupMembershipChanged)][-1]
    events.clear()
    jobs.on_registry_event(joined)
    assert status(jobs, "cont", "late") is ExecutionStatus.QUEUED
    assert [type(e) for e in events] == [JobExecutionsChanged, NextJobExecutionChanged]
    with pytest.raises(ResourceNotFoundError):  # a snapshot job does not follow the group
        jobs.describe_job_execution("snap", "late")
    jobs.on_registry_event(joined)  # once only
    assert len(jobs.list_job_executions_for_job("cont")[0]) == 2
    # Leaving the group removes the queued execution; joining again queues a new one.
    registry.remove_thing_from_thing_group(thing_group_name="fleet", thing_name="late")
    jobs.on_registry_event(ThingGroupMembershipChanged("late", "fleet", False))
    assert status(jobs, "cont", "late") is ExecutionStatus.REMOVED
    registry.add_thing_to_thing_group(thing_group_name="fleet", thing_name="late")
    jobs.on_registry_event(joined)
    again = jobs.describe_job_execution("cont", "late")
    assert again is not None
    assert (again.status, again.execution_number) == (ExecutionStatus.QUEUED, 2)
    # An execution in progress is not removed.
    jobs.start_next_pending_job_execution("late")
    registry.remove_thing_from_thing_group(thing_group_name="fleet", thing_name="late")
    jobs.on_registry_event(ThingGroupMembershipChanged("late", "fleet", False))
    assert status(jobs, "cont", "late") is ExecutionStatus.IN_PROGRESS
    assert jobs.describe_job("cont").status is JobStatus.IN_PROGRESS  # never completes


def test_continuous_targets_through_child_groups_and_other_targets(
        jobs: JobService, things: Things, registry: RegistryService) -> None:
    registry.create_thing_group("root")
    registry.create_thing_group("leaf", parent_group_name="root")
    (direct,) = things("direct")
    jobs.create_job("deep", targets=[registry.account.arn("thinggroup/root"), direct],
                    document="{}", target_selection="CONTINUOUS")
    registry.add_thing_to_thing_group(thing_group_name="leaf", thing_name="direct")
    things("joiner", group="leaf")
    jobs.on_registry_event(ThingGroupMembershipChanged("joiner", "leaf", True))
    assert status(jobs, "deep", "joiner") is ExecutionStatus.QUEUED
    # "direct" is also a target by name: leaving the group does not remove it.
    registry.remove_thing_from_thing_group(thing_group_name="leaf", thing_name="direct")
    jobs.on_registry_event(ThingGroupMembershipChanged("direct", "leaf", False))
    assert status(jobs, "deep", "direct") is ExecutionStatus.QUEUED
    registry.delete_thing_group("leaf")
    jobs.on_registry_event(ThingGroupDeleted("leaf", ("joiner",)))
    # The group is gone, so "joiner" is no longer in root's tree either.
    assert status(jobs, "deep", "joiner") is ExecutionStatus.REMOVED


def test_continuous_join_respects_the_rollout_rate(
        jobs: JobService, things: Things, registry: RegistryService,
        clock: ManualClock) -> None:
    registry.create_thing_group("slow-fleet")
    jobs.create_job("slow", targets=[registry.account.arn("thinggroup/slow-fleet")],
                    document="{}", target_selection="CONTINUOUS",
                    rollout_config={"maximumPerMinute": 1})
    things("j-1", "j-2", group="slow-fleet")
    for name in ("j-1", "j-2"):
        jobs.on_registry_event(ThingGroupMembershipChanged(name, "slow-fleet", True))
    assert len(jobs.list_job_executions_for_job("slow")[0]) == 1
    clock.advance(MINUTE)
    jobs.run_due()
    assert len(jobs.list_job_executions_for_job("slow")[0]) == 2


def test_deleting_a_thing_deletes_its_executions(
        jobs: JobService, things: Things, registry: RegistryService) -> None:
    a, b = things("doomed", "survivor")
    jobs.create_job("gone", targets=[a, b], document="{}")
    jobs.update_job_execution("gone", "survivor", "SUCCEEDED")
    registry.delete_thing("doomed")
    jobs.on_registry_event(ThingDeleted("doomed"))
    job = jobs.describe_job("gone")
    assert job.process_details.counts == {ExecutionStatus.SUCCEEDED: 1}
    assert job.status is JobStatus.COMPLETED
