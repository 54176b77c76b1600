"""``jobExecutionsRetryConfig``: a FAILED or TIMED_OUT execution is queued again as
``executionNumber + 1`` (``retryAttempt + 1``) until its criterion's retries are used up."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from bastion.jobs import (
    ExecutionStatus,
    InvalidRequestError,
    JobService,
    JobStatus,
    RetryableFailureType,
    retry_from_json,
)
from support.clock import ManualClock

Things = Callable[..., list[str]]


def retries(*criteria: tuple[str, int]) -> dict[str, Any]:
    return {"criteriaList": [{"failureType": f, "numberOfRetries": n} for f, n in criteria]}


def latest(jobs: JobService, job_id: str, thing: str) -> tuple[int, ExecutionStatus, int]:
    execution = jobs.describe_job_execution(job_id, thing)
    assert execution is not None
    return execution.execution_number, execution.status, execution.retry_attempt


def test_failed_execution_is_retried_up_to_the_count(jobs: JobService, things: Things) -> None:
    (thing,) = things("flaky")
    jobs.create_job("fw", targets=[thing], document="{}", retry_config=retries(("FAILED", 2)))
    assert latest(jobs, "fw", "flaky") == (1, ExecutionStatus.QUEUED, 0)
    jobs.update_job_execution("fw", "flaky", "FAILED")
    assert latest(jobs, "fw", "flaky") == (2, ExecutionStatus.QUEUED, 1)
    first = jobs.describe_job_execution("fw", "flaky", execution_number=1)
    assert first is not None and first.status is ExecutionStatus.FAILED
    assert jobs.describe_job("fw").status is JobStatus.IN_PROGRESS  # a retry is pending
    jobs.update_job_execution("fw", "flaky", "IN_PROGRESS")
    jobs.update_job_execution("fw", "flaky", "FAILED")
    assert latest(jobs, "fw", "flaky") == (3, ExecutionStatus.QUEUED, 2)
    jobs.update_job_execution("fw", "flaky", "FAILED")
    assert latest(jobs, "fw", "flaky") == (3, ExecutionStatus.FAILED, 2)  # used up
    assert jobs.describe_job("fw").status is JobStatus.COMPLETED


def test_success_after_a_retry_ends_the_chain(jobs: JobService, things: Things) -> None:
    (thing,) = things("lucky")
    jobs.create_job("fw2", targets=[thing], document="{}", retry_config=retries(("ALL", 3)))
    jobs.update_job_execution("fw2", "lucky", "FAILED")
    jobs.update_job_execution("fw2", "lucky", "SUCCEEDED")
    assert latest(jobs, "fw2", "lucky") == (2, ExecutionStatus.SUCCEEDED, 1)
    assert jobs.describe_job("fw2").status is JobStatus.COMPLETED


def test_rejected_and_other_types_are_not_retried(jobs: JobService, things: Things) -> None:
    a, b = things("rej", "fail")
    jobs.create_job("t", targets=[a, b], document="{}", retry_config=retries(("TIMED_OUT", 3)))
    jobs.update_job_execution("t", "rej", "REJECTED")
    jobs.update_job_execution("t", "fail", "FAILED")
    assert latest(jobs, "t", "rej") == (1, ExecutionStatus.REJECTED, 0)
    assert latest(jobs, "t", "fail") == (1, ExecutionStatus.FAILED, 0)


def test_timed_out_execution_is_retried_and_budgets_are_per_type(
        jobs: JobService, things: Things, clock: ManualClock) -> None:
    (thing,) = things("slowpoke")
    jobs.create_job("both", targets=[thing], document="{}",
                    retry_config=retries(("FAILED", 1), ("TIMED_OUT", 1)))
    jobs.start_next_pending_job_execution("slowpoke", step_timeout_in_minutes=1)
    clock.advance(timedelta(minutes=1))
    jobs.run_due()
    assert latest(jobs, "both", "slowpoke") == (2, ExecutionStatus.QUEUED, 1)
    jobs.update_job_execution("both", "slowpoke", "FAILED")  # FAILED has its own budget
    assert latest(jobs, "both", "slowpoke") == (3, ExecutionStatus.QUEUED, 2)
    jobs.start_next_pending_job_execution("slowpoke", step_timeout_in_minutes=1)
    clock.advance(timedelta(minutes=1))
    jobs.run_due()
    assert latest(jobs, "both", "slowpoke") == (3, ExecutionStatus.TIMED_OUT, 2)


def test_no_retry_once_the_job_is_canceled_and_zero_retries(
        jobs: JobService, things: Things) -> None:
    a, b = things("c1", "c2")
    jobs.create_job("zero", targets=[a], document="{}", retry_config=retries(("ALL", 0)))
    jobs.update_job_execution("zero", "c1", "FAILED")
    assert latest(jobs, "zero", "c1") == (1, ExecutionStatus.FAILED, 0)
    jobs.create_job("gone", targets=[b], document="{}", retry_config=retries(("FAILED", 5)))
    jobs.start_next_pending_job_execution("c2")
    jobs.cancel_job("gone")
    jobs.update_job_execution("gone", "c2", "FAILED")
    assert latest(jobs, "gone", "c2") == (1, ExecutionStatus.FAILED, 0)


def test_retry_config_is_described_updated_and_inherited(jobs: JobService,
                                                         things: Things) -> None:
    (thing,) = things("desc")
    jobs.create_job_template("tpl", description="d", document="{}",
                             retry_config=retries(("TIMED_OUT", 4)))
    template = jobs.describe_job_template("tpl")
    assert template.retry_config is not None
    job = jobs.create_job("from-tpl", targets=[thing],
                          job_template_arn=template.job_template_arn)
    assert job.retry_config == template.retry_config
    jobs.update_job("from-tpl", retry_config=retries(("FAILED", 1)))
    updated = jobs.describe_job("from-tpl").retry_config
    assert updated is not None
    assert updated.criteria[0].failure_type is RetryableFailureType.FAILED
    jobs.update_job_execution("from-tpl", "desc", "FAILED")
    assert latest(jobs, "from-tpl", "desc") == (2, ExecutionStatus.QUEUED, 1)


@pytest.mark.parametrize("config", [
    {},
    {"criteriaList": []},
    retries(("FAILED", 1), ("TIMED_OUT", 1), ("ALL", 1)),
    retries(("FAILED", 11)),
    retries(("FAILED", -1)),
    retries(("REJECTED", 1)),
    retries(("FAILED", 1), ("FAILED", 2)),
    retries(("ALL", 1), ("FAILED", 2)),
    {"criteriaList": [{"failureType": "FAILED", "numberOfRetries": True}]},
], ids=["empty", "no-criteria", "three", "over-10", "negative", "rejected", "twice",
        "all-and-failed", "bool"])
def test_bad_retry_configs_are_refused(config: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError):
        retry_from_json(config)
