"""The jobs topics of the MQTT door: which API a topic addresses, and the wire format."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bastion.jobs import ExecutionStatus, JobExecution, JobExecutionState
from bastion.reserved.jobs import (
    JobsRequest,
    execution_json,
    parse_jobs_topic,
    state_json,
    summary_json,
)

T = "$aws/things/dev-1/jobs/"


@pytest.mark.parametrize(("topic", "kind", "job_id"), [
    (T + "get", JobsRequest.GET_PENDING, None),
    (T + "start-next", JobsRequest.START_NEXT, None),
    (T + "job-1/get", JobsRequest.DESCRIBE, "job-1"),
    (T + "$next/get", JobsRequest.DESCRIBE, "$next"),
    (T + "job-1/update", JobsRequest.UPDATE, "job-1"),
    (T + "get/get", JobsRequest.DESCRIBE, "get"),  # a job named "get"
    (T + "notify", JobsRequest.REPLY, None),
    (T + "notify-next", JobsRequest.REPLY, None),
    (T + "get/accepted", JobsRequest.REPLY, None),
    (T + "job-1/update/rejected", JobsRequest.REPLY, None),
    (T + "job-1/delete", JobsRequest.UNKNOWN, None),
    (T + "a/b/c", JobsRequest.UNKNOWN, None),
    (T + "", JobsRequest.UNKNOWN, None),
], ids=lambda v: v if isinstance(v, str) else None)
def test_jobs_topics(topic: str, kind: JobsRequest, job_id: str | None) -> None:
    parsed = parse_jobs_topic(topic)
    assert parsed is not None
    assert (parsed.kind, parsed.thing_name, parsed.job_id) == (kind, "dev-1", job_id)
    assert parsed.accepted == topic + "/accepted"


@pytest.mark.parametrize("topic", [
    "$aws/things/dev-1/shadow/get", "$aws/things/dev-1/jobs", "$aws/things//jobs/get",
    "things/dev-1/jobs/get", "$aws/events/job/j/completed", "dev-1/jobs/get",
])
def test_other_topics(topic: str) -> None:
    assert parse_jobs_topic(topic) is None


def test_wire_format() -> None:
    queued = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    started = datetime(2025, 1, 2, 3, 5, 0, 999_000, tzinfo=UTC)
    execution = JobExecution(
        job_id="j", thing_name="dev-1", thing_arn="arn", execution_number=1,
        status=ExecutionStatus.IN_PROGRESS, force_canceled=False,
        status_details={"step": "1"}, queued_at=queued, started_at=started,
        last_updated_at=started, version_number=2, approximate_seconds_before_timed_out=60,
        job_document='{"a": [1, 2]}')
    assert execution_json(execution, with_document=True) == {
        "jobId": "j", "thingName": "dev-1", "status": "IN_PROGRESS",
        "statusDetails": {"step": "1"}, "queuedAt": 1735787045, "startedAt": 1735787100,
        "lastUpdatedAt": 1735787100, "versionNumber": 2, "executionNumber": 1,
        "approximateSecondsBeforeTimedOut": 60, "jobDocument": {"a": [1, 2]}}
    assert "jobDocument" not in execution_json(execution, with_document=False)
    assert summary_json(execution) == {
        "jobId": "j", "queuedAt": 1735787045, "startedAt": 1735787100,
        "lastUpdatedAt": 1735787100, "versionNumber": 2, "executionNumber": 1}
    assert json.dumps(state_json(JobExecutionState(ExecutionStatus.QUEUED, {}, 1))) == \
        '{"status": "QUEUED", "versionNumber": 1}'
