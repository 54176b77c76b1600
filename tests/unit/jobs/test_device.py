"""The device's side: pending list, start-next, describe, update, version conflicts, and
the notifications (the sequence of AWS's "Jobs notifications" walkthrough)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from bastion.jobs import (
    ExecutionStatus,
    InvalidRequestError,
    InvalidStateTransitionError,
    JobExecutionsChanged,
    JobService,
    JobStatus,
    NextJobExecutionChanged,
    ResourceNotFoundError,
    VersionMismatchError,
)
from support.clock import ManualClock

Things = Callable[..., list[str]]


def notifications(events: list[object], thing: str) -> list[tuple[str, tuple[str, ...]]]:
    """The notifications for ``thing``: ("notify", (job ids…)) / ("next", (job id,))."""
    seen: list[tuple[str, tuple[str, ...]]] = []
    for event in events:
        if isinstance(event, JobExecutionsChanged) and event.thing_name == thing:
            seen.append(("notify", tuple(e.job_id for e in event.in_progress + event.queued)))
        elif isinstance(event, NextJobExecutionChanged) and event.thing_name == thing:
            seen.append(("next", () if event.execution is None
                         else (event.execution.job_id,)))
    return seen


def test_aws_notification_walkthrough(jobs: JobService, things: Things, clock: ManualClock,
                                      events: list[object]) -> None:
    (thing,) = things("walker")
    name = "walker"

    def step() -> list[tuple[str, tuple[str, ...]]]:
        found = notifications(events, name)
        events.clear()
        clock.advance(timedelta(seconds=10))
        return found

    events.clear()
    jobs.create_job("job1", targets=[thing], document='{"operation": "test"}')
    assert step() == [("notify", ("job1",)), ("next", ("job1",))]
    jobs.create_job("job2", targets=[thing], document='{"operation": "test"}')
    assert step() == [("notify", ("job1", "job2"))]  # the head did not change
    jobs.update_job_execution("job1", name, "IN_PROGRESS")
    assert step() == []  # same list, same head
    jobs.create_job("job3", targets=[thing], document='{"operation": "test"}')
    assert step() == [("notify", ("job1", "job2", "job3"))]
    jobs.update_job_execution("job1", name, "SUCCEEDED")
    assert step() == [("notify", ("job2", "job3")), ("next", ("job2",))]
    jobs.update_job_execution("job3", name, "IN_PROGRESS")  # job3 jumps the queue
    assert step() == [("next", ("job3",))]
    jobs.update_job_execution("job2", name, "REJECTED")
    assert step() == [("notify", ("job3",))]
    jobs.cancel_job("job3")
    jobs.delete_job("job3", force=True)
    assert step() == [("notify", ()), ("next", ())]


def test_notification_payload_values(jobs: JobService, things: Things, clock: ManualClock,
                                     events: list[object]) -> None:
    (thing,) = things("payloads")
    events.clear()
    jobs.create_job("p1", targets=[thing], document='{"a": 1}')
    listed = next(e for e in events if isinstance(e, JobExecutionsChanged))
    head = next(e for e in events if isinstance(e, NextJobExecutionChanged))
    assert listed.in_progress == () and [e.job_id for e in listed.queued] == ["p1"]
    assert listed.timestamp == clock.now()
    assert head.execution is not None and head.execution.job_document == '{"a": 1}'
    assert head.execution.version_number == 1 and head.execution.execution_number == 1


def test_list_notifications_hold_at_most_ten(jobs: JobService, things: Things,
                                             events: list[object]) -> None:
    (thing,) = things("busy")
    for index in range(12):
        jobs.create_job(f"busy-{index:02}", targets=[thing], document="{}")
    last = [e for e in events if isinstance(e, JobExecutionsChanged)][-1]
    assert len(last.queued) == 10 and last.queued[0].job_id == "busy-00"
    assert len(jobs.get_pending_job_executions("busy").queued) == 12


def test_start_next_order_and_document(jobs: JobService, things: Things,
                                       clock: ManualClock) -> None:
    (thing,) = things("starter")
    jobs.create_job("first", targets=[thing], document='{"n": 1}')
    clock.advance(timedelta(seconds=1))
    jobs.create_job("second", targets=[thing], document='{"n": 2}')
    clock.advance(timedelta(seconds=1))
    jobs.update_job_execution("second", "starter", "IN_PROGRESS",
                              status_details={"s": "x"})
    # IN_PROGRESS executions come first: start-next returns it unchanged.
    again = jobs.start_next_pending_job_execution("starter", status_details={"s": "y"})
    assert again is not None
    assert (again.job_id, again.status_details, again.version_number) == ("second",
                                                                          {"s": "x"}, 2)
    assert again.job_document == '{"n": 2}'
    jobs.update_job_execution("second", "starter", "SUCCEEDED")
    started = jobs.start_next_pending_job_execution("starter", status_details={"s": "z"})
    assert started is not None and started.job_id == "first"
    assert started.status is ExecutionStatus.IN_PROGRESS and started.started_at == clock.now()
    jobs.update_job_execution("first", "starter", "FAILED")
    assert jobs.start_next_pending_job_execution("starter") is None
    assert jobs.describe_job_execution("$next", "starter") is None


def test_describe_for_device(jobs: JobService, things: Things) -> None:
    (thing,) = things("describer")
    jobs.create_job("d1", targets=[thing], document='{"d": 1}')
    plain = jobs.describe_job_execution("d1", "describer")
    assert plain is not None and plain.job_document is None
    full = jobs.describe_job_execution("d1", "describer", include_job_document=True,
                                       execution_number=1)
    assert full is not None and full.job_document == '{"d": 1}'
    nxt = jobs.describe_job_execution("$next", "describer", include_job_document=True)
    assert nxt is not None and nxt.job_id == "d1"
    with pytest.raises(ResourceNotFoundError):
        jobs.describe_job_execution("d1", "describer", execution_number=2)
    with pytest.raises(ResourceNotFoundError):
        jobs.describe_job_execution("nope", "describer")
    with pytest.raises(ResourceNotFoundError, match="Thing"):
        jobs.describe_job_execution("d1", "no-such-thing")
    with pytest.raises(ResourceNotFoundError, match="Thing"):
        jobs.get_pending_job_executions("no-such-thing")


def test_update_versions_and_final_states(jobs: JobService, things: Things) -> None:
    (thing,) = things("updater")
    jobs.create_job("u1", targets=[thing], document="{}")
    first = jobs.update_job_execution("u1", "updater", "IN_PROGRESS", expected_version=1,
                                      status_details={"p": "1"})
    assert (first.execution_state.status, first.execution_state.version_number) == (
        ExecutionStatus.IN_PROGRESS, 2)
    # Details are kept when not given, replaced when given.
    kept = jobs.update_job_execution("u1", "updater", "IN_PROGRESS")
    assert kept.execution_state.status_details == {"p": "1"}
    with pytest.raises(VersionMismatchError) as caught:
        jobs.update_job_execution("u1", "updater", "SUCCEEDED", expected_version=2)
    assert caught.value.execution_state is not None
    assert caught.value.execution_state.version_number == 3
    assert caught.value.mqtt_code == "VersionMismatch"
    done = jobs.update_job_execution("u1", "updater", "SUCCEEDED", expected_version=3,
                                     status_details={"p": "done"})
    assert done.execution_state.version_number == 4 and done.job_document == "{}"
    assert jobs.describe_job("u1").status is JobStatus.COMPLETED
    for status in ("IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED"):
        with pytest.raises(InvalidStateTransitionError) as refused:
            jobs.update_job_execution("u1", "updater", status)
        assert refused.value.execution_state is not None
        assert refused.value.execution_state.status is ExecutionStatus.SUCCEEDED
    with pytest.raises(InvalidRequestError):
        jobs.update_job_execution("u1", "updater", "CANCELED")
    with pytest.raises(ResourceNotFoundError):
        jobs.update_job_execution("u2", "updater", "IN_PROGRESS")


@pytest.mark.parametrize("details", [
    {"": "x"}, {"bad key": "x"}, {"k": ""}, {"k": "x" * 1025}, {"k": "line\nbreak"},
    {"k": 3}, ["k"],
], ids=["empty-key", "space-key", "empty-value", "long-value", "control-char",
        "not-string", "not-map"])
def test_bad_status_details(jobs: JobService, things: Things, details: object) -> None:
    (thing,) = things("detailed")
    jobs.create_job("det", targets=[thing], document="{}")
    with pytest.raises(InvalidRequestError, match="statusDetails"):
        jobs.update_job_execution("det", "detailed", "IN_PROGRESS",
                                  status_details=details)  # type: ignore[arg-type]


@pytest.mark.parametrize("step", [0, -2, 10081, True, "5"])
def test_bad_step_timeouts(jobs: JobService, things: Things, step: object) -> None:
    (thing,) = things("stepper")
    jobs.create_job("st", targets=[thing], document="{}")
    with pytest.raises(InvalidRequestError, match="stepTimeoutInMinutes"):
        jobs.start_next_pending_job_execution(
            "stepper", step_timeout_in_minutes=step)  # type: ignore[arg-type]


def test_a_device_may_finish_straight_from_queued(jobs: JobService, things: Things) -> None:
    (thing,) = things("quick")
    jobs.create_job("q1", targets=[thing], document="{}")
    result = jobs.update_job_execution("q1", "quick", "REJECTED",
                                       status_details={"why": "unsupported"})
    assert result.execution_state.status is ExecutionStatus.REJECTED
    execution = jobs.describe_job_execution("q1", "quick")
    assert execution is not None and execution.started_at is None
