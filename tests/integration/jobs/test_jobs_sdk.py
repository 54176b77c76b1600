"""Jobs end to end with AWS's own device SDK: a job delivered, started, progressed and
completed over MQTT 3.1.1 and MQTT 5, by devices holding the least-privilege policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from awsiot import V2ServiceException, iotjobs

from bastion.jobs import ExecutionStatus, JobService, JobStatus
from support.clients import DeviceFiles
from support.running import RunningBastion

from .conftest import QOS1, TIMEOUT, SdkDevice, SdkDeviceV2, take, take_matching, token

MakeDevice = Callable[..., DeviceFiles]
DOCUMENT = '{"operation": "install", "firmware": {"version": "2.1.0", "size": 1048576}}'


def _thing_arn(jobs: JobService, name: str) -> str:
    return jobs.thing_arn(name)


@pytest.mark.parametrize("mqtt5", [False, True], ids=["mqtt311", "mqtt5"])
def test_sdk_jobs_client_runs_a_job_to_success(
        bastion: RunningBastion, make_device: MakeDevice, jobs: JobService,
        sdk_devices: list[Any], mqtt5: bool) -> None:
    device = make_device(policy=None)  # least privilege: only its own topics
    sdk = SdkDevice(device, bastion.port, mqtt5_client=mqtt5)
    sdk_devices.append(sdk)
    job_id = f"firmware-{token()}"
    sdk.subscribe_all(job_id)

    created = jobs.create_job(job_id, targets=[_thing_arn(jobs, device.name)],
                              document=DOCUMENT, description="firmware 2.1.0")
    assert created.status is JobStatus.IN_PROGRESS

    # Delivered: notify-next carries the execution with its document.
    event = take(sdk.next_events, "notify-next")
    assert event.execution.job_id == job_id
    assert event.execution.status == "QUEUED"
    assert event.execution.job_document == {"operation": "install",
                                            "firmware": {"version": "2.1.0", "size": 1048576}}
    listed = take(sdk.list_events, "notify")
    assert [s.job_id for s in listed.jobs["QUEUED"]] == [job_id]

    # StartNextPendingJobExecution.
    sdk.publish(sdk.client.publish_start_next_pending_job_execution(
        iotjobs.StartNextPendingJobExecutionRequest(
            thing_name=device.name, client_token="start-1",
            status_details={"step": "downloading"}, step_timeout_in_minutes=10), QOS1))
    started = take(sdk.accepted, "start-next/accepted")
    assert isinstance(started, iotjobs.StartNextJobExecutionResponse)
    assert started.client_token == "start-1"
    execution = started.execution
    assert (execution.job_id, execution.status, execution.version_number) == (
        job_id, "IN_PROGRESS", 2)
    assert execution.status_details == {"step": "downloading"}
    assert execution.job_document["firmware"]["version"] == "2.1.0"
    assert execution.started_at is not None and execution.thing_name == device.name

    # Progress, with the state echoed back.
    sdk.publish(sdk.client.publish_update_job_execution(iotjobs.UpdateJobExecutionRequest(
        thing_name=device.name, job_id=job_id, status="IN_PROGRESS",
        status_details={"step": "installing", "progress": "50%"}, expected_version=2,
        include_job_execution_state=True, client_token="progress-1"), QOS1))
    progressed = take(sdk.accepted, "update/accepted")
    assert isinstance(progressed, iotjobs.UpdateJobExecutionResponse)
    assert progressed.client_token == "progress-1"
    assert progressed.execution_state.status == "IN_PROGRESS"
    assert progressed.execution_state.version_number == 3
    assert progressed.execution_state.status_details == {"step": "installing",
                                                         "progress": "50%"}

    # A stale version is refused with the current state.
    sdk.publish(sdk.client.publish_update_job_execution(iotjobs.UpdateJobExecutionRequest(
        thing_name=device.name, job_id=job_id, status="SUCCEEDED", expected_version=2,
        client_token="stale"), QOS1))
    refused = take(sdk.rejected, "update/rejected")
    assert (refused.code, refused.client_token) == ("VersionMismatch", "stale")
    assert refused.execution_state.version_number == 3

    # Done.
    sdk.publish(sdk.client.publish_update_job_execution(iotjobs.UpdateJobExecutionRequest(
        thing_name=device.name, job_id=job_id, status="SUCCEEDED", expected_version=3,
        status_details={"step": "done"}, include_job_document=True,
        client_token="done"), QOS1))
    done = take(sdk.accepted, "update/accepted")
    assert done.client_token == "done" and done.job_document["operation"] == "install"
    emptied = take_matching(sdk.next_events, lambda e: e.execution is None,
                            "notify-next without an execution")
    assert emptied.timestamp is not None

    described = jobs.describe_job_execution(job_id, device.name)
    assert described is not None
    assert described.status is ExecutionStatus.SUCCEEDED
    assert described.status_details == {"step": "done"}
    assert described.version_number == 4
    job = jobs.describe_job(job_id)
    assert job.status is JobStatus.COMPLETED
    assert job.process_details.count(ExecutionStatus.SUCCEEDED) == 1

    # Nothing pending any more; a terminal execution cannot be moved again.
    sdk.publish(sdk.client.publish_get_pending_job_executions(
        iotjobs.GetPendingJobExecutionsRequest(thing_name=device.name, client_token="list"),
        QOS1))
    pending = take(sdk.accepted, "get/accepted")
    assert isinstance(pending, iotjobs.GetPendingJobExecutionsResponse)
    assert (pending.in_progress_jobs, pending.queued_jobs) == ([], [])
    sdk.publish(sdk.client.publish_update_job_execution(iotjobs.UpdateJobExecutionRequest(
        thing_name=device.name, job_id=job_id, status="IN_PROGRESS", client_token="late"),
        QOS1))
    late = take(sdk.rejected, "update/rejected")
    assert late.code == "InvalidStateTransition"
    assert late.execution_state.status == "SUCCEEDED"


def test_sdk_v2_client_over_mqtt5(bastion: RunningBastion, make_device: MakeDevice,
                                  jobs: JobService, sdk_devices: list[Any]) -> None:
    device = make_device(policy=None)
    sdk = SdkDeviceV2(device, bastion.port)
    sdk_devices.append(sdk)
    first, second = f"v2-a-{token()}", f"v2-b-{token()}"
    jobs.create_job(first, targets=[_thing_arn(jobs, device.name)], document='{"n": 1}')
    event = take(sdk.next_events, "notify-next")
    assert event.execution.job_id == first
    jobs.create_job(second, targets=[_thing_arn(jobs, device.name)], document='{"n": 2}')

    pending = sdk.client.get_pending_job_executions(
        iotjobs.GetPendingJobExecutionsRequest(thing_name=device.name)).result(TIMEOUT)
    assert [s.job_id for s in pending.queued_jobs] == [first, second]

    started = sdk.client.start_next_pending_job_execution(
        iotjobs.StartNextPendingJobExecutionRequest(
            thing_name=device.name, status_details={"step": "1"})).result(TIMEOUT)
    assert started.execution.job_id == first
    assert started.execution.status == "IN_PROGRESS"
    assert started.execution.job_document == {"n": 1}

    described = sdk.client.describe_job_execution(iotjobs.DescribeJobExecutionRequest(
        thing_name=device.name, job_id="$next")).result(TIMEOUT)
    assert described.execution.job_id == first

    updated = sdk.client.update_job_execution(iotjobs.UpdateJobExecutionRequest(
        thing_name=device.name, job_id=first, status="IN_PROGRESS",
        status_details={"step": "2"}, include_job_execution_state=True)).result(TIMEOUT)
    assert updated.execution_state.status_details == {"step": "2"}

    with pytest.raises(V2ServiceException) as caught:
        sdk.client.update_job_execution(iotjobs.UpdateJobExecutionRequest(
            thing_name=device.name, job_id=first, status="QUEUED")).result(TIMEOUT)
    assert caught.value.modeled_error.code == "InvalidRequest"

    sdk.client.update_job_execution(iotjobs.UpdateJobExecutionRequest(
        thing_name=device.name, job_id=first, status="SUCCEEDED")).result(TIMEOUT)
    # The head changed: the second job is next.
    following = take_matching(
        sdk.next_events, lambda e: e.execution is not None and e.execution.job_id == second,
        "notify-next for the second job")
    assert following.execution.status == "QUEUED"
    rejected = sdk.client.update_job_execution(iotjobs.UpdateJobExecutionRequest(
        thing_name=device.name, job_id=second, status="REJECTED",
        status_details={"reason": "incompatible"})).result(TIMEOUT)
    assert rejected.timestamp is not None
    assert jobs.describe_job(second).status is JobStatus.COMPLETED
    assert jobs.describe_job_execution(second, device.name).status is ExecutionStatus.REJECTED
