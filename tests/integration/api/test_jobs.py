"""Jobs through boto3: ``iot`` (jobs, executions, templates) and ``iot-jobs-data`` (the
device's side over HTTPS), and a job created with boto3 run by AWS's device SDK."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from awsiot import iotjobs

from support.jobs_sdk import QOS1, SdkDevice, take

from .conftest import ACCOUNT, REGION, ApiBastion, device_through_api

Unique = Callable[[str], str]
DOC = json.dumps({"operation": "reboot", "delaySeconds": 5})


def thing_arn(name: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{name}"


@pytest.fixture(scope="module")
def jobs_data(api_bastion: ApiBastion) -> Any:
    return api_bastion.client("iot-jobs-data")


def test_job_lifecycle(iot: Any, jobs_data: Any, unique: Unique) -> None:
    thing, group = unique("job-thing"), unique("job-group")
    iot.create_thing(thingName=thing)
    iot.create_thing_group(thingGroupName=group)
    member = unique("member")
    iot.create_thing(thingName=member)
    iot.add_thing_to_thing_group(thingGroupName=group, thingName=member)
    group_arn = iot.describe_thing_group(thingGroupName=group)["thingGroupArn"]
    job_id = unique("job")
    created = iot.create_job(jobId=job_id, targets=[thing_arn(thing), group_arn],
                             document=DOC, description="reboot",
                             timeoutConfig={"inProgressTimeoutInMinutes": 30},
                             jobExecutionsRolloutConfig={"maximumPerMinute": 100},
                             abortConfig={"criteriaList": [{
                                 "failureType": "FAILED", "action": "CANCEL",
                                 "thresholdPercentage": 50,
                                 "minNumberOfExecutedThings": 10}]})
    assert created == {**created, "jobId": job_id, "description": "reboot",
                       "jobArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:job/{job_id}"}
    job = iot.describe_job(jobId=job_id)["job"]
    assert (job["status"], job["targetSelection"], job["targets"]) == (
        "IN_PROGRESS", "SNAPSHOT", [thing_arn(thing), group_arn])
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 2
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 30}
    assert job["jobExecutionsRolloutConfig"] == {"maximumPerMinute": 100}
    assert job["abortConfig"]["criteriaList"][0]["minNumberOfExecutedThings"] == 10
    assert job["createdAt"].tzinfo is not None
    assert json.loads(iot.get_job_document(jobId=job_id)["document"]) == json.loads(DOC)
    listed = iot.list_jobs(thingGroupName=group)["jobs"]
    assert [j["jobId"] for j in listed] == [job_id]

    # The device's side over HTTPS.
    pending = jobs_data.get_pending_job_executions(thingName=thing)
    assert [j["jobId"] for j in pending["queuedJobs"]] == [job_id]
    started = jobs_data.start_next_pending_job_execution(
        thingName=thing, statusDetails={"step": "1"}, stepTimeoutInMinutes=5)["execution"]
    assert (started["status"], started["versionNumber"]) == ("IN_PROGRESS", 2)
    assert json.loads(started["jobDocument"]) == json.loads(DOC)
    assert 0 < started["approximateSecondsBeforeTimedOut"] <= 300
    described = jobs_data.describe_job_execution(thingName=thing, jobId=job_id,
                                                 includeJobDocument=True)["execution"]
    assert described["statusDetails"] == {"step": "1"} and "jobDocument" in described
    updated = jobs_data.update_job_execution(
        thingName=thing, jobId=job_id, status="SUCCEEDED", expectedVersion=2,
        statusDetails={"step": "done"}, includeJobExecutionState=True)
    assert updated["executionState"] == {"status": "SUCCEEDED", "versionNumber": 3,
                                         "statusDetails": {"step": "done"}}
    with pytest.raises(jobs_data.exceptions.InvalidStateTransitionException):
        jobs_data.update_job_execution(thingName=thing, jobId=job_id, status="FAILED")

    # The operator's view of the executions.
    execution = iot.describe_job_execution(jobId=job_id, thingName=thing)["execution"]
    assert (execution["status"], execution["versionNumber"]) == ("SUCCEEDED", 3)
    assert execution["statusDetails"] == {"detailsMap": {"step": "done"}}
    assert execution["thingArn"] == thing_arn(thing)
    summaries = iot.list_job_executions_for_job(jobId=job_id)["executionSummaries"]
    assert {s["thingArn"]: s["jobExecutionSummary"]["status"] for s in summaries} == {
        thing_arn(member): "QUEUED", thing_arn(thing): "SUCCEEDED"}
    for_thing = iot.list_job_executions_for_thing(thingName=thing, status="SUCCEEDED")
    assert [s["jobId"] for s in for_thing["executionSummaries"]] == [job_id]

    # Cancel the rest; then delete the job.
    with pytest.raises(iot.exceptions.InvalidStateTransitionException):
        iot.delete_job(jobId=job_id)
    canceled = iot.cancel_job(jobId=job_id, reasonCode="NO_LONGER_NEEDED", comment="done")
    assert canceled["jobId"] == job_id
    job = iot.describe_job(jobId=job_id)["job"]
    assert (job["status"], job["reasonCode"], job["comment"]) == (
        "CANCELED", "NO_LONGER_NEEDED", "done")
    assert job["jobProcessDetails"]["numberOfCanceledThings"] == 1
    iot.delete_job(jobId=job_id)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_job(jobId=job_id)


def test_job_errors(iot: Any, jobs_data: Any, unique: Unique) -> None:
    thing = unique("err-thing")
    iot.create_thing(thingName=thing)
    job_id = unique("err-job")
    with pytest.raises(iot.exceptions.InvalidRequestException, match="not valid JSON"):
        iot.create_job(jobId=job_id, targets=[thing_arn(thing)], document="{nope")
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.create_job(jobId="bad id!", targets=[thing_arn(thing)], document=DOC)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.create_job(jobId=job_id, targets=[thing_arn(unique("ghost"))], document=DOC)
    with pytest.raises(iot.exceptions.InvalidRequestException, match="documentSource"):
        iot.create_job(jobId=job_id, targets=[thing_arn(thing)],
                       documentSource="https://example.com/doc.json")
    iot.create_job(jobId=job_id, targets=[thing_arn(thing)], document=DOC)
    with pytest.raises(iot.exceptions.ResourceAlreadyExistsException) as caught:
        iot.create_job(jobId=job_id, targets=[thing_arn(thing)], document=DOC)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    with pytest.raises(iot.exceptions.VersionConflictException):
        iot.cancel_job_execution(jobId=job_id, thingName=thing, expectedVersion=9)
    with pytest.raises(jobs_data.exceptions.ResourceNotFoundException):
        jobs_data.describe_job_execution(thingName=thing, jobId=unique("none"))
    with pytest.raises(jobs_data.exceptions.ResourceNotFoundException):
        jobs_data.get_pending_job_executions(thingName=unique("no-thing"))
    jobs_data.start_next_pending_job_execution(thingName=thing)
    with pytest.raises(jobs_data.exceptions.ConflictException):
        jobs_data.update_job_execution(thingName=thing, jobId=job_id, status="SUCCEEDED",
                                       expectedVersion=1)
    with pytest.raises(jobs_data.exceptions.InvalidRequestException):
        jobs_data.update_job_execution(thingName=thing, jobId=job_id, status="CANCELED")
    with pytest.raises(iot.exceptions.InvalidStateTransitionException):
        iot.cancel_job_execution(jobId=job_id, thingName=thing)
    iot.cancel_job_execution(jobId=job_id, thingName=thing, force=True,
                             statusDetails={"by": "operator"})
    with pytest.raises(iot.exceptions.InvalidRequestException):
        iot.describe_job_execution(jobId="$next", thingName=thing)
    iot.delete_job_execution(jobId=job_id, thingName=thing, executionNumber=1)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_job_execution(jobId=job_id, thingName=thing)
    # Nothing pending: the device API answers without an execution.
    assert "execution" not in jobs_data.start_next_pending_job_execution(thingName=thing)
    assert "execution" not in jobs_data.describe_job_execution(thingName=thing,
                                                               jobId="$next")


def test_list_jobs_pages(iot: Any, unique: Unique) -> None:
    thing = unique("pager")
    iot.create_thing(thingName=thing)
    prefix = unique("page")
    made = [f"{prefix}-{i}" for i in range(5)]
    for job_id in made:
        iot.create_job(jobId=job_id, targets=[thing_arn(thing)], document=DOC)
    seen: list[str] = []
    kwargs: dict[str, Any] = {"maxResults": 2}
    while True:
        response = iot.list_jobs(**kwargs)
        seen.extend(j["jobId"] for j in response["jobs"])
        if "nextToken" not in response:
            break
        kwargs["nextToken"] = response["nextToken"]
    assert set(made) <= set(seen) and len(seen) == len(set(seen))
    paginator = iot.get_paginator("list_job_executions_for_thing")
    ids = [s["jobId"] for p in paginator.paginate(thingName=thing,
                                                  PaginationConfig={"PageSize": 2})
           for s in p["executionSummaries"]]
    assert ids == made


def test_update_job_and_templates(iot: Any, unique: Unique) -> None:
    thing = unique("tpl-thing")
    iot.create_thing(thingName=thing)
    template_id = unique("tpl")
    created = iot.create_job_template(
        jobTemplateId=template_id, description="a template", document=DOC,
        timeoutConfig={"inProgressTimeoutInMinutes": 7})
    assert created["jobTemplateArn"].endswith(f":jobtemplate/{template_id}")
    with pytest.raises(iot.exceptions.ConflictException):
        iot.create_job_template(jobTemplateId=template_id, description="again", document=DOC)
    described = iot.describe_job_template(jobTemplateId=template_id)
    assert (described["description"], described["document"]) == ("a template", DOC)
    assert described["timeoutConfig"] == {"inProgressTimeoutInMinutes": 7}
    assert template_id in [t["jobTemplateId"] for t in iot.list_job_templates()["jobTemplates"]]
    job_id = unique("from-template")
    iot.create_job(jobId=job_id, targets=[thing_arn(thing)],
                   jobTemplateArn=created["jobTemplateArn"])
    job = iot.describe_job(jobId=job_id)["job"]
    assert job["jobTemplateArn"] == created["jobTemplateArn"]
    assert job["timeoutConfig"] == {"inProgressTimeoutInMinutes": 7}
    iot.update_job(jobId=job_id, description="updated",
                   timeoutConfig={"inProgressTimeoutInMinutes": 9})
    job = iot.describe_job(jobId=job_id)["job"]
    assert (job["description"], job["timeoutConfig"]) == (
        "updated", {"inProgressTimeoutInMinutes": 9})
    iot.delete_job_template(jobTemplateId=template_id)
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_job_template(jobTemplateId=template_id)


def test_a_job_created_with_boto3_runs_on_the_device_sdk(
        api_bastion: ApiBastion, iot: Any, jobs_data: Any, unique: Unique,
        tmp_path: Path) -> None:
    name = unique("sdk-device")
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect",
         "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:client/{name}"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Receive"],
         "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topic/$aws/things/{name}/jobs/*"},
        {"Effect": "Allow", "Action": "iot:Subscribe",
         "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:topicfilter/$aws/things/{name}/jobs/*"},
    ]})
    device = device_through_api(api_bastion, iot, name, tmp_path, policy)
    sdk = SdkDevice(device, api_bastion.mqtt_port)
    try:
        job_id = unique("boto-job")
        sdk.subscribe_all(job_id)
        iot.create_job(jobId=job_id, targets=[thing_arn(name)], document=DOC)
        event = take(sdk.next_events, "notify-next")
        assert event.execution.job_id == job_id
        assert event.execution.job_document == json.loads(DOC)
        sdk.publish(sdk.client.publish_start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(thing_name=name), QOS1))
        assert take(sdk.accepted, "start-next/accepted").execution.status == "IN_PROGRESS"
        # The device finishes over HTTPS instead (both doors, one service).
        jobs_data.update_job_execution(thingName=name, jobId=job_id, status="SUCCEEDED")
        emptied = take(sdk.next_events, "notify-next after success")
        assert emptied.execution is None
        assert iot.describe_job(jobId=job_id)["job"]["status"] == "COMPLETED"
    finally:
        sdk.close()
