"""The operator's side: jobs, executions, templates — rules and AWS errors."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bastion.jobs import (
    ConflictError,
    ExecutionStatus,
    InvalidRequestError,
    InvalidStateTransitionError,
    JobService,
    JobStatus,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    TargetSelection,
    VersionMismatchError,
)
from bastion.registry import RegistryService

Things = Callable[..., list[str]]
DOC = '{"op": "reboot"}'


def test_create_and_describe(jobs: JobService, things: Things,
                             registry: RegistryService) -> None:
    a, b = things("ctl-a", "ctl-b", group="ctl-group")
    (c,) = things("ctl-c")
    group = registry.account.arn("thinggroup/ctl-group")
    job = jobs.create_job("job-1", targets=[c, group, c], document=DOC,
                          description="reboot them", timeout_config={
                              "inProgressTimeoutInMinutes": 30})
    assert job.job_arn == "arn:aws:iot:us-east-1:123456789012:job/job-1"
    assert job.targets == (c, group)  # each target once, in order
    assert job.status is JobStatus.IN_PROGRESS
    assert job.target_selection is TargetSelection.SNAPSHOT
    assert job.process_details.count(ExecutionStatus.QUEUED) == 3
    assert job.in_progress_timeout_minutes == 30
    described = jobs.describe_job("job-1")
    assert described == job
    assert json.loads(jobs.get_job_document("job-1")) == {"op": "reboot"}
    executions, token = jobs.list_job_executions_for_job("job-1")
    assert token is None
    assert [(e.thing_name, e.execution_number, e.status) for e in executions] == [
        ("ctl-a", 1, ExecutionStatus.QUEUED), ("ctl-b", 1, ExecutionStatus.QUEUED),
        ("ctl-c", 1, ExecutionStatus.QUEUED)]
    assert executions[0].thing_arn == a and executions[1].thing_arn == b


def test_group_targets_include_child_groups(jobs: JobService, things: Things,
                                            registry: RegistryService) -> None:
    registry.create_thing_group("parent")
    registry.create_thing_group("child", parent_group_name="parent")
    things("in-child", group="child")
    jobs.create_job("tree", targets=[registry.account.arn("thinggroup/parent")],
                    document=DOC)
    assert [e.thing_name for e in jobs.list_job_executions_for_job("tree")[0]] == ["in-child"]


def test_a_snapshot_job_on_an_empty_group_completes_at_once(
        jobs: JobService, registry: RegistryService) -> None:
    registry.create_thing_group("empty")
    job = jobs.create_job("nobody", targets=[registry.account.arn("thinggroup/empty")],
                          document=DOC)
    assert job.status is JobStatus.COMPLETED and job.completed_at is not None
    continuous = jobs.create_job("later", targets=[registry.account.arn("thinggroup/empty")],
                                 document=DOC, target_selection="CONTINUOUS")
    assert continuous.status is JobStatus.IN_PROGRESS


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"document": "not json"}, InvalidRequestError, "not valid JSON"),
    ({"document": "[1, 2]"}, InvalidRequestError, "JSON object"),
    ({"document": json.dumps({"x": "y" * 33_000})}, InvalidRequestError, "32768"),
    ({}, InvalidRequestError, "needs a document"),
    ({"document": DOC, "document_source": "https://s3.amazonaws.com/b/k"},
     InvalidRequestError, "documentSource"),
    ({"document": DOC, "target_selection": "SOMETIMES"}, InvalidRequestError,
     "targetSelection"),
    ({"document": DOC, "targets": []}, InvalidRequestError, "at least one"),
    ({"document": DOC, "targets": ["arn:aws:iot:us-east-1:123456789012:policy/p"]},
     InvalidRequestError, "not a valid ARN"),
    ({"document": DOC, "targets": ["arn:aws:iot:eu-west-1:123456789012:thing/x"]},
     ResourceNotFoundError, "does not exist"),
    ({"document": DOC, "targets": ["arn:aws:iot:us-east-1:123456789012:thing/ghost"]},
     ResourceNotFoundError, "ghost"),
    ({"document": DOC, "targets": ["arn:aws:iot:us-east-1:123456789012:thinggroup/none"]},
     ResourceNotFoundError, "none"),
    ({"document": DOC, "timeout_config": {"inProgressTimeoutInMinutes": 10081}},
     InvalidRequestError, "inProgressTimeoutInMinutes"),
], ids=["not-json", "not-object", "too-large", "no-document", "document-source",
        "bad-selection", "no-targets", "policy-arn", "other-region", "no-thing", "no-group",
        "timeout-too-long"])
def test_create_refusals(jobs: JobService, things: Things, kwargs: dict[str, object],
                         error: type[Exception], message: str) -> None:
    (thing,) = things("refused")
    arguments: dict[str, object] = {"targets": [thing], **kwargs}
    with pytest.raises(error, match=message):
        jobs.create_job("refused-job", **arguments)  # type: ignore[arg-type]
    with pytest.raises(ResourceNotFoundError):
        jobs.describe_job("refused-job")


@pytest.mark.parametrize("job_id", ["", "a" * 65, "has space", "slash/es", "dollar$"])
def test_bad_job_ids(jobs: JobService, things: Things, job_id: str) -> None:
    (thing,) = things(f"t-{abs(hash(job_id)) % 10_000}")
    with pytest.raises(InvalidRequestError, match="jobId"):
        jobs.create_job(job_id, targets=[thing], document=DOC)


def test_duplicate_job(jobs: JobService, things: Things) -> None:
    (thing,) = things("dup")
    jobs.create_job("dup-job", targets=[thing], document=DOC)
    with pytest.raises(ResourceAlreadyExistsError) as caught:
        jobs.create_job("dup-job", targets=[thing], document=DOC)
    assert caught.value.http_status == 409


def test_list_jobs_filters_and_pages(jobs: JobService, things: Things,
                                     registry: RegistryService) -> None:
    (thing,) = things("lister", group="list-group")
    group = registry.account.arn("thinggroup/list-group")
    for index in range(5):
        jobs.create_job(f"list-{index}", targets=[thing], document=DOC)
    jobs.create_job("list-group-job", targets=[group], document=DOC,
                    target_selection="CONTINUOUS")
    jobs.cancel_job("list-0")
    seen: list[str] = []
    token: str | None = None
    while True:
        page, token = jobs.list_jobs(max_results=2, next_token=token)
        assert len(page) <= 2
        seen.extend(job.job_id for job in page)
        if token is None:
            break
    assert seen == sorted(seen) and len(seen) == 6
    assert [j.job_id for j in jobs.list_jobs(status="CANCELED")[0]] == ["list-0"]
    assert [j.job_id for j in jobs.list_jobs(target_selection="CONTINUOUS")[0]] == [
        "list-group-job"]
    assert [j.job_id for j in jobs.list_jobs(thing_group_name="list-group")[0]] == [
        "list-group-job"]
    with pytest.raises(InvalidRequestError, match="nextToken"):
        jobs.list_jobs(next_token="garbage")
    with pytest.raises(InvalidRequestError, match="maxResults"):
        jobs.list_jobs(max_results=0)


def test_cancel_job_without_and_with_force(jobs: JobService, things: Things) -> None:
    a, b = things("cancel-a", "cancel-b")
    jobs.create_job("cancel-me", targets=[a, b], document=DOC)
    started = jobs.start_next_pending_job_execution("cancel-a")
    assert started is not None and started.status is ExecutionStatus.IN_PROGRESS
    job = jobs.cancel_job("cancel-me", reason_code="BAD_BUILD", comment="wrong image")
    assert (job.status, job.force_canceled, job.reason_code, job.comment) == (
        JobStatus.CANCELED, False, "BAD_BUILD", "wrong image")
    status = {e.thing_name: e.status for e in jobs.list_job_executions_for_job("cancel-me")[0]}
    assert status == {"cancel-a": ExecutionStatus.IN_PROGRESS,
                      "cancel-b": ExecutionStatus.CANCELED}
    # Canceling again without force changes nothing; with force the rest goes.
    assert jobs.cancel_job("cancel-me").force_canceled is False
    forced = jobs.cancel_job("cancel-me", force=True)
    assert forced.force_canceled and forced.reason_code == "BAD_BUILD"
    execution = jobs.describe_job_execution("cancel-me", "cancel-a")
    assert execution is not None
    assert execution.status is ExecutionStatus.CANCELED and execution.force_canceled
    with pytest.raises(InvalidRequestError, match="reasonCode"):
        jobs.cancel_job("cancel-me", reason_code="lower case")


def test_a_completed_job_cannot_be_canceled(jobs: JobService, things: Things) -> None:
    (thing,) = things("completer")
    jobs.create_job("complete-me", targets=[thing], document=DOC)
    jobs.update_job_execution("complete-me", "completer", "SUCCEEDED")
    assert jobs.describe_job("complete-me").status is JobStatus.COMPLETED
    with pytest.raises(InvalidRequestError, match="COMPLETED"):
        jobs.cancel_job("complete-me")


def test_delete_job_needs_force_while_in_progress(jobs: JobService, things: Things,
                                                  events: list[object]) -> None:
    (thing,) = things("deleter")
    jobs.create_job("delete-me", targets=[thing], document=DOC)
    with pytest.raises(InvalidStateTransitionError):
        jobs.delete_job("delete-me")
    jobs.cancel_job("delete-me")
    jobs.delete_job("delete-me")  # canceled, nothing in progress: no force needed
    with pytest.raises(ResourceNotFoundError):
        jobs.describe_job("delete-me")
    jobs.create_job("delete-me", targets=[thing], document=DOC)  # the id is free again
    jobs.start_next_pending_job_execution("deleter")
    jobs.cancel_job("delete-me")
    with pytest.raises(InvalidStateTransitionError):  # an execution is in progress
        jobs.delete_job("delete-me")
    events.clear()
    jobs.delete_job("delete-me", force=True)
    assert jobs.get_pending_job_executions("deleter").in_progress == ()
    assert [type(e).__name__ for e in events] == ["JobExecutionsChanged",
                                                  "NextJobExecutionChanged"]


def test_update_job(jobs: JobService, things: Things) -> None:
    (thing,) = things("updated")
    jobs.create_job("update-me", targets=[thing], document=DOC, description="before")
    jobs.update_job("update-me", description="after",
                    rollout_config={"maximumPerMinute": 10},
                    timeout_config={"inProgressTimeoutInMinutes": 5})
    job = jobs.describe_job("update-me")
    assert job.description == "after" and job.in_progress_timeout_minutes == 5
    assert job.rollout_config is not None and job.rollout_config.maximum_per_minute == 10
    jobs.update_job("update-me", rollout_config=None)
    assert jobs.describe_job("update-me").rollout_config is None
    with pytest.raises(ResourceNotFoundError):
        jobs.update_job("no-such-job", description="x")


def test_cancel_job_execution(jobs: JobService, things: Things) -> None:
    a, b = things("ce-a", "ce-b")
    jobs.create_job("ce", targets=[a, b], document=DOC)
    with pytest.raises(VersionMismatchError) as caught:
        jobs.cancel_job_execution("ce", "ce-a", expected_version=5)
    assert caught.value.aws_error_type_for("iot") == "VersionConflictException"
    assert caught.value.aws_error_type_for("iot-jobs-data") == "ConflictException"
    jobs.cancel_job_execution("ce", "ce-a", expected_version=1,
                              status_details={"why": "operator"})
    canceled = jobs.describe_job_execution("ce", "ce-a")
    assert canceled is not None and canceled.status is ExecutionStatus.CANCELED
    assert canceled.status_details == {"why": "operator"} and canceled.version_number == 2
    with pytest.raises(InvalidStateTransitionError):  # final already
        jobs.cancel_job_execution("ce", "ce-a")
    jobs.start_next_pending_job_execution("ce-b")
    with pytest.raises(InvalidStateTransitionError):  # in progress needs force
        jobs.cancel_job_execution("ce", "ce-b")
    jobs.cancel_job_execution("ce", "ce-b", force=True)
    assert jobs.describe_job("ce").status is JobStatus.COMPLETED  # all final
    with pytest.raises(ResourceNotFoundError):
        jobs.cancel_job_execution("ce", "ghost")


def test_delete_job_execution(jobs: JobService, things: Things) -> None:
    a, b = things("de-a", "de-b")
    jobs.create_job("de", targets=[a, b], document=DOC)
    with pytest.raises(InvalidStateTransitionError):
        jobs.delete_job_execution("de", "de-a", 1)
    jobs.update_job_execution("de", "de-a", "FAILED")
    jobs.delete_job_execution("de", "de-a", 1)
    with pytest.raises(ResourceNotFoundError):
        jobs.describe_job_execution("de", "de-a")
    with pytest.raises(ResourceNotFoundError):
        jobs.delete_job_execution("de", "de-a", 1)
    jobs.delete_job_execution("de", "de-b", 1, force=True)
    assert jobs.describe_job("de").status is JobStatus.COMPLETED


def test_list_executions_for_thing(jobs: JobService, things: Things) -> None:
    (thing,) = things("many-jobs")
    for name in ("m-1", "m-2", "m-3"):
        jobs.create_job(name, targets=[thing], document=DOC)
    jobs.update_job_execution("m-2", "many-jobs", "SUCCEEDED")
    page, token = jobs.list_job_executions_for_thing("many-jobs", max_results=2)
    assert [e.job_id for e in page] == ["m-1", "m-2"] and token is not None
    rest, end = jobs.list_job_executions_for_thing("many-jobs", next_token=token)
    assert [e.job_id for e in rest] == ["m-3"] and end is None
    assert [e.job_id for e in jobs.list_job_executions_for_thing(
        "many-jobs", status="SUCCEEDED")[0]] == ["m-2"]
    assert [e.job_id for e in jobs.list_job_executions_for_thing(
        "many-jobs", job_id="m-3")[0]] == ["m-3"]
    with pytest.raises(ResourceNotFoundError):
        jobs.list_job_executions_for_thing("nobody-here")
    with pytest.raises(InvalidRequestError):
        jobs.list_job_executions_for_thing("many-jobs", status="DONE")


def test_job_templates(jobs: JobService, things: Things) -> None:
    (thing,) = things("templated")
    template = jobs.create_job_template(
        "tpl-1", description="reboot template", document=DOC,
        abort_config={"criteriaList": [{"failureType": "ALL", "action": "CANCEL",
                                        "thresholdPercentage": 50,
                                        "minNumberOfExecutedThings": 2}]},
        timeout_config={"inProgressTimeoutInMinutes": 15})
    assert template.job_template_arn.endswith(":jobtemplate/tpl-1")
    with pytest.raises(ConflictError):
        jobs.create_job_template("tpl-1", description="again", document=DOC)
    job = jobs.create_job("from-tpl", targets=[thing], job_template_arn=template.job_template_arn)
    assert job.job_template_arn == template.job_template_arn
    assert job.in_progress_timeout_minutes == 15 and job.abort_config is not None
    assert jobs.get_job_document("from-tpl") == DOC
    # A template from a job.
    copied = jobs.create_job_template("tpl-2", description="copy", job_arn=job.job_arn)
    assert copied.document == DOC and copied.in_progress_timeout_minutes == 15
    listed, token = jobs.list_job_templates(max_results=1)
    assert [t.job_template_id for t in listed] == ["tpl-1"] and token is not None
    assert jobs.describe_job_template("tpl-2").description == "copy"
    jobs.delete_job_template("tpl-2")
    with pytest.raises(ResourceNotFoundError):
        jobs.describe_job_template("tpl-2")
    with pytest.raises(ResourceNotFoundError):
        jobs.delete_job_template("tpl-2")
    with pytest.raises(ResourceNotFoundError):
        jobs.create_job("no-tpl", targets=[thing], job_template_arn=jobs.template_arn("none"))
    with pytest.raises(InvalidRequestError, match="not both"):
        jobs.create_job_template("tpl-3", description="x", document=DOC, job_arn=job.job_arn)
