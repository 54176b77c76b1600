"""``bastion jobs …``, ``bastion shadow …`` and ``bastion audit run|findings``: AWS IoT
jobs, device shadows and Device Defender audits, through the API with boto3 (the same
endpoint, credentials and CA bundle as ``bastion things``; see :mod:`._operator`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.table import Table

from ._admin import DataDirOption, JsonOption, console, err
from ._operator import (
    CaBundleOption,
    EndpointOption,
    ProfileOption,
    RegionOption,
    api_errors,
    iot_client,
    iot_data_client,
)

_AUDIT_DONE: Final = frozenset({"COMPLETED", "FAILED", "CANCELED"})
AUDIT_POLL: Final = 0.5
"""Seconds between DescribeAuditTask calls while ``audit run --wait`` waits."""


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, default=str), flush=True)


def _without_metadata(answer: Any) -> dict[str, Any]:
    return {k: v for k, v in dict(answer).items() if k != "ResponseMetadata"}


# -- jobs -------------------------------------------------------------------------------

jobs_app = typer.Typer(no_args_is_help=True, help="AWS IoT jobs (through the API).")


@jobs_app.command("list")
def jobs_list(
    status: Annotated[str | None, typer.Option(
        help="IN_PROGRESS, CANCELED, COMPLETED, DELETION_IN_PROGRESS or SCHEDULED.")] = None,
    as_json: JsonOption = False,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List jobs, newest first."""
    jobs: list[dict[str, Any]] = []
    with api_errors():
        iot = iot_client(endpoint_url=endpoint_url, profile=profile, region=region,
                         ca_bundle=ca_bundle, data_dir=data_dir)
        kwargs: dict[str, Any] = {"status": status.upper()} if status else {}
        for page in iot.get_paginator("list_jobs").paginate(**kwargs):
            jobs.extend(dict(job) for job in page.get("jobs", []))
    if as_json:
        _print_json(jobs)
        return
    table = Table("Job id", "Status", "Target selection", "Created")
    for job in jobs:
        table.add_row(job.get("jobId", ""), job.get("status", ""),
                      job.get("targetSelection", ""), str(job.get("createdAt", "")))
    console.print(table)
    console.print(f"{len(jobs)} jobs")


@jobs_app.command("describe")
def jobs_describe(
    job_id: str, as_json: JsonOption = False,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """A job: its status, targets and progress (executions by status)."""
    with api_errors():
        iot = iot_client(endpoint_url=endpoint_url, profile=profile, region=region,
                         ca_bundle=ca_bundle, data_dir=data_dir)
        job: dict[str, Any] = dict(iot.describe_job(jobId=job_id)["job"])
    if as_json:
        _print_json(job)
        return
    table = Table(title=f"Job {job_id}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key in ("status", "targetSelection", "targets", "description", "createdAt",
                "completedAt", "reasonCode", "comment"):
        if job.get(key) not in (None, "", []):
            value = job[key]
            table.add_row(key, value if isinstance(value, str) else json.dumps(value,
                                                                                 default=str))
    console.print(table)
    process: dict[str, Any] = job.get("jobProcessDetails") or {}
    details = {k.removeprefix("numberOf").removesuffix("Things"): v
               for k, v in process.items()
               if k.startswith("numberOf")}
    if details:
        console.print("Executions: " + ", ".join(f"{k} {v}" for k, v in details.items()),
                      highlight=False)


@jobs_app.command("executions")
def jobs_executions(
    job_id: str, as_json: JsonOption = False,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """A job's executions, one per device, with their status."""
    executions: list[dict[str, Any]] = []
    with api_errors():
        iot = iot_client(endpoint_url=endpoint_url, profile=profile, region=region,
                         ca_bundle=ca_bundle, data_dir=data_dir)
        for page in iot.get_paginator("list_job_executions_for_job").paginate(jobId=job_id):
            executions.extend(dict(e) for e in page.get("executionSummaries", []))
    if as_json:
        _print_json(executions)
        return
    table = Table("Thing", "Status", "Queued", "Last updated")
    for item in executions:
        summary = dict(item.get("jobExecutionSummary", {}))
        table.add_row(str(item.get("thingArn", "")).rpartition("/")[2],
                      summary.get("status", ""), str(summary.get("queuedAt", "")),
                      str(summary.get("lastUpdatedAt", "")))
    console.print(table)
    console.print(f"{len(executions)} executions")


@jobs_app.command("cancel")
def jobs_cancel(
    job_id: str,
    force: Annotated[bool, typer.Option(
        "--force", help="Also cancel executions already IN_PROGRESS.")] = False,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Cancel a job."""
    with api_errors():
        iot = iot_client(endpoint_url=endpoint_url, profile=profile, region=region,
                         ca_bundle=ca_bundle, data_dir=data_dir)
        iot.cancel_job(jobId=job_id, force=force)
    console.print(f"Job [bold]{job_id}[/] canceled.")


# -- shadow -----------------------------------------------------------------------------

shadow_app = typer.Typer(no_args_is_help=True,
                         help="Device shadows, classic and named (through the API).")
ShadowName = Annotated[str | None, typer.Option(
    "--name", help="A named shadow; default: the classic shadow.")]


def _shadow_call(thing: str, name: str | None, endpoint_url: str | None,
                 profile: str | None, region: str | None, ca_bundle: Any,
                 data_dir: Any) -> tuple[Any, dict[str, Any]]:
    """The ``iot-data`` client and the arguments naming the shadow."""
    data = iot_data_client(endpoint_url=endpoint_url, profile=profile, region=region,
                           ca_bundle=ca_bundle, data_dir=data_dir)
    kwargs: dict[str, Any] = {"thingName": thing}
    if name:
        kwargs["shadowName"] = name
    return data, kwargs


@shadow_app.command("get")
def shadow_get(
    thing: str, name: ShadowName = None,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Print a thing's shadow document (JSON)."""
    with api_errors():
        data, kwargs = _shadow_call(thing, name, endpoint_url, profile, region, ca_bundle,
                                    data_dir)
        payload = data.get_thing_shadow(**kwargs)["payload"].read()
    _print_json(json.loads(payload))


@shadow_app.command("update")
def shadow_update(
    thing: str,
    desired: Annotated[str | None, typer.Option(
        help="The desired state, a JSON object.")] = None,
    reported: Annotated[str | None, typer.Option(
        help="The reported state, a JSON object.")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", help="A whole update document ({\"state\": …}).", exists=True,
        dir_okay=False)] = None,
    name: ShadowName = None,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Update a shadow: ``--desired '{"led": "on"}'``, ``--reported …`` or ``--file``;
    prints the accepted document."""
    if file is not None:
        document = file.read_text(encoding="utf-8")
    else:
        state: dict[str, Any] = {}
        for label, value in (("desired", desired), ("reported", reported)):
            if value is not None:
                try:
                    state[label] = json.loads(value)
                except ValueError as exc:
                    raise typer.BadParameter(f"not JSON: {exc}",
                                             param_hint=f"--{label}") from None
        if not state:
            raise typer.BadParameter("give --desired, --reported or --file")
        document = json.dumps({"state": state})
    with api_errors():
        data, kwargs = _shadow_call(thing, name, endpoint_url, profile, region, ca_bundle,
                                    data_dir)
        payload = data.update_thing_shadow(payload=document.encode(), **kwargs)[
            "payload"].read()
    _print_json(json.loads(payload))


@shadow_app.command("delete")
def shadow_delete(
    thing: str, name: ShadowName = None,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Delete a shadow."""
    with api_errors():
        data, kwargs = _shadow_call(thing, name, endpoint_url, profile, region, ca_bundle,
                                    data_dir)
        data.delete_thing_shadow(**kwargs)
    console.print(f"Shadow of [bold]{thing}[/]{f' ({name})' if name else ''} deleted.")


# -- audit run|findings -----------------------------------------------------------------


def audit_run(
    check: Annotated[list[str], typer.Option(
        "--check", help="A check to run (repeatable); default: every enabled check.")
    ] = [],  # noqa: B006
    wait: Annotated[bool, typer.Option(
        "--wait/--no-wait", help="Wait until the audit is done and show its result.")
    ] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 300.0,
    as_json: JsonOption = False,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run an on-demand audit (StartOnDemandAuditTask). Exit 1 when it fails or finds
    non-compliant resources."""
    with api_errors():
        iot = iot_client(endpoint_url=endpoint_url, profile=profile, region=region,
                         ca_bundle=ca_bundle, data_dir=data_dir)
        checks = list(check) or [
            name for name, entry in iot.describe_account_audit_configuration()
            .get("auditCheckConfigurations", {}).items() if entry.get("enabled")]
        if not checks:
            err.print("[red]no audit check is enabled:[/] enable some (aws iot "
                      "update-account-audit-configuration) or pass --check")
            raise typer.Exit(2)
        task_id = iot.start_on_demand_audit_task(targetCheckNames=checks)["taskId"]
        if not wait:
            print(task_id, flush=True)
            return
        deadline = time.monotonic() + timeout
        while True:
            task = _without_metadata(iot.describe_audit_task(taskId=task_id))
            if task.get("taskStatus") in _AUDIT_DONE:
                break
            if time.monotonic() > deadline:
                err.print(f"[red]audit {task_id} still {task.get('taskStatus')} after "
                          f"{timeout:.0f} s[/]")
                raise typer.Exit(1)
            time.sleep(AUDIT_POLL)
    stats = dict(task.get("taskStatistics", {}))
    if as_json:
        _print_json({"taskId": task_id, **task})
    else:
        console.print(f"Audit {task_id}: [bold]{task.get('taskStatus')}[/] — "
                      f"{stats.get('compliantChecks', 0)} compliant, "
                      f"{stats.get('nonCompliantChecks', 0)} non-compliant, "
                      f"{stats.get('failedChecks', 0)} failed checks", highlight=False)
        table = Table("Check", "Status", "Non-compliant", "Checked")
        for name, result in sorted(dict(task.get("auditDetails", {})).items()):
            table.add_row(name, result.get("checkRunStatus", ""),
                          str(result.get("nonCompliantResourcesCount", "")),
                          str(result.get("totalResourcesCount", "")))
        console.print(table)
        console.print(f"Findings: bastion audit findings --task-id {task_id}",
                      highlight=False)
    if task.get("taskStatus") != "COMPLETED" or stats.get("nonCompliantChecks"):
        raise typer.Exit(1)


def audit_findings(
    task_id: Annotated[str | None, typer.Option(help="Only this audit's findings.")] = None,
    check: Annotated[str | None, typer.Option("--check", help="Only this check's.")] = None,
    as_json: JsonOption = False,
    endpoint_url: EndpointOption = None, profile: ProfileOption = None,
    region: RegionOption = None, ca_bundle: CaBundleOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Audit findings (ListAuditFindings): the latest audit's by default."""
    findings: list[dict[str, Any]] = []
    with api_errors():
        iot = iot_client(endpoint_url=endpoint_url, profile=profile, region=region,
                         ca_bundle=ca_bundle, data_dir=data_dir)
        if task_id is None:
            task_id = _latest_audit(iot)
            if task_id is None:
                err.print("no completed audit in the last 90 days (run one: bastion audit "
                          "run)")
                raise typer.Exit(1)
        kwargs: dict[str, Any] = {"taskId": task_id}
        if check:
            kwargs["checkName"] = check
        for page in iot.get_paginator("list_audit_findings").paginate(**kwargs):
            findings.extend(dict(f) for f in page.get("findings", []))
    if as_json:
        _print_json(findings)
        return
    table = Table("Check", "Severity", "Resource", "Reason")
    for finding in findings:
        resource = dict(finding.get("nonCompliantResource", {}))
        identifier = dict(resource.get("resourceIdentifier", {}))
        shown = ", ".join(f"{k}={v}" for k, v in _flat(identifier))
        table.add_row(finding.get("checkName", ""), finding.get("severity", ""),
                      f"{resource.get('resourceType', '')} {shown}".strip(),
                      finding.get("reasonForNonCompliance", ""))
    console.print(table)
    console.print(f"{len(findings)} findings (audit {task_id})", highlight=False)



def _flat(identifier: dict[str, Any]) -> list[tuple[str, Any]]:
    """A resource identifier's members, nested ones (policyVersionIdentifier) inlined."""
    return [pair for key, value in identifier.items()
            for pair in (_flat(value) if isinstance(value, dict) else [(key, value)])]


def _latest_audit(iot: Any) -> str | None:
    """The id of the completed audit that started last (within AWS's 90 days)."""
    now = time.time()
    tasks: list[str] = []
    for page in iot.get_paginator("list_audit_tasks").paginate(
            startTime=now - 90 * 86400, endTime=now + 60, taskStatus="COMPLETED"):
        tasks.extend(str(task["taskId"]) for task in page.get("tasks", []))
    started = {task: iot.describe_audit_task(taskId=task)["taskStartTime"] for task in tasks}
    return max(started, key=lambda task: started[task]) if started else None
