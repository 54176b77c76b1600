"""Detect mitigation actions tasks through boto3: a real device's violation, a task that
quarantines it (its live session closes), and every task operation's shapes and errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.clients import Client, wait_for

from .conftest import ACCOUNT, REGION, ApiBastion, device_through_api

PORTS = {"name": "ports", "metric": "aws:listening-tcp-ports",
         "criteria": {"comparisonOperator": "in-port-set", "value": {"ports": [443]}}}
DENY_ALL = ('{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:*",'
            '"Resource":"*"}]}')
ROLE = f"arn:aws:iam::{ACCOUNT}:role/detect"


def _code(caught: pytest.ExceptionInfo[ClientError]) -> str:
    return str(caught.value.response["Error"]["Code"])


def _quarantine_action(iot: Any, unique: Callable[[str], str]) -> tuple[str, str]:
    group, policy, action = unique("quarantine"), unique("deny"), unique("qa")
    iot.create_thing_group(thingGroupName=group)
    iot.create_policy(policyName=policy, policyDocument=DENY_ALL)
    iot.attach_policy(policyName=policy,
                      target=f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/{group}")
    iot.create_mitigation_action(
        actionName=action, roleArn=ROLE,
        actionParams={"addThingsToThingGroupParams": {"thingGroupNames": [group]}})
    return group, action


def _violating_device(api_bastion: ApiBastion, iot: Any, unique: Callable[[str], str],
                      tmp_path: Path) -> tuple[str, str, Client, str]:
    """A connected device whose metrics report opens a violation: (thing, profile,
    client, violation id)."""
    thing = unique("dmt")
    device = device_through_api(api_bastion, iot, thing, tmp_path)
    profile = unique("sp")
    iot.create_security_profile(securityProfileName=profile, behaviors=[PORTS])
    iot.attach_security_profile(
        securityProfileName=profile,
        securityProfileTargetArn=f"arn:aws:iot:{REGION}:{ACCOUNT}:all/registered-things")
    client = Client(device, api_bastion.mqtt_port, client_id=thing).connect()
    topic = f"$aws/things/{thing}/defender/metrics/json"
    client.subscribe(topic + "/accepted", qos=1)
    client.publish(topic, json.dumps({
        "header": {"report_id": 1, "version": "1.0"},
        "metrics": {"listening_tcp_ports": {"ports": [{"port": 23}]}}}), qos=1)
    assert json.loads(client.expect()[0].payload)["reportId"] == 1

    def active() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = iot.list_active_violations(
            securityProfileName=profile)["activeViolations"]
        return found
    wait_for(active, what="an active violation")
    return thing, profile, client, active()[0]["violationId"]


def _finished(iot: Any, task_id: str) -> dict[str, Any]:
    def done() -> bool:
        status = iot.describe_detect_mitigation_actions_task(taskId=task_id)[
            "taskSummary"]["taskStatus"]
        return bool(status != "IN_PROGRESS")
    wait_for(done, what=f"task {task_id} finished")
    summary: dict[str, Any] = iot.describe_detect_mitigation_actions_task(
        taskId=task_id)["taskSummary"]
    return summary


def test_task_quarantines_a_violating_device_live(
        api_bastion: ApiBastion, iot: Any, unique: Callable[[str], str],
        tmp_path: Path) -> None:
    group, action = _quarantine_action(iot, unique)
    thing, profile, client, violation_id = _violating_device(api_bastion, iot, unique,
                                                             tmp_path)
    try:
        task_id = unique("task")
        now = datetime.now(UTC)
        started = iot.start_detect_mitigation_actions_task(
            taskId=task_id, target={"securityProfileName": profile, "behaviorName": "ports"},
            actions=[action], includeOnlyActiveViolations=True,
            violationEventOccurrenceRange={"startTime": now - timedelta(hours=1),
                                           "endTime": now + timedelta(hours=1)},
            clientRequestToken="token-1")
        assert started["taskId"] == task_id
        summary = _finished(iot, task_id)
        assert summary["taskStatus"] == "SUCCESSFUL"
        assert summary["target"] == {"securityProfileName": profile, "behaviorName": "ports"}
        assert summary["onlyActiveViolationsIncluded"] is True
        assert summary["suppressedAlertsIncluded"] is False
        assert summary["taskStatistics"] == {"actionsExecuted": 1, "actionsSkipped": 0,
                                             "actionsFailed": 0}
        assert [d["name"] for d in summary["actionsDefinition"]] == [action]
        assert summary["actionsDefinition"][0]["actionParams"] == {
            "addThingsToThingGroupParams": {"thingGroupNames": [group]}}
        assert isinstance(summary["taskStartTime"], datetime)
        assert summary["taskEndTime"] >= summary["taskStartTime"]
        assert set(summary["violationEventOccurrenceRange"]) == {"startTime", "endTime"}

        # The live session lost its rights: the group's deny-all denies iot:Connect.
        wait_for(client.disconnected.is_set, what="the quarantined session closed")
        groups = iot.list_thing_groups_for_thing(thingName=thing)["thingGroups"]
        assert group in [g["groupName"] for g in groups]

        [execution] = iot.list_detect_mitigation_actions_executions(
            taskId=task_id)["actionsExecutions"]
        assert execution["violationId"] == violation_id
        assert execution["thingName"] == thing and execution["actionName"] == action
        assert execution["status"] == "SUCCESSFUL"
        assert isinstance(execution["executionStartDate"], datetime)
        by_violation = iot.list_detect_mitigation_actions_executions(
            violationId=violation_id)["actionsExecutions"]
        assert [e["taskId"] for e in by_violation] == [task_id]
        assert iot.list_detect_mitigation_actions_executions(
            taskId=task_id, thingName="someone-else")["actionsExecutions"] == []

        trail = [json.dumps(r) for r in api_bastion.running.app.services.trail.export()]
        assert any("AddThingToThingGroup" in r and violation_id in r and task_id in r
                   and "system:detect" in r for r in trail)
    finally:
        client.disconnect()


def test_list_tasks_by_start_time_and_pages(iot: Any, unique: Callable[[str], str]) -> None:
    _, action = _quarantine_action(iot, unique)
    profile = unique("sp")
    iot.create_security_profile(securityProfileName=profile, behaviors=[PORTS])
    ids = [unique("task") for _ in range(3)]
    for task_id in ids:
        iot.start_detect_mitigation_actions_task(
            taskId=task_id, target={"securityProfileName": profile}, actions=[action],
            clientRequestToken=task_id)
        _finished(iot, task_id)
    now = datetime.now(UTC)
    window = {"startTime": now - timedelta(minutes=5), "endTime": now + timedelta(minutes=5)}
    listed = iot.list_detect_mitigation_actions_tasks(**window)["tasks"]
    mine = [t for t in listed if t["taskId"] in ids]
    assert [t["taskId"] for t in mine] == ids
    assert all(t["taskStatus"] == "SUCCESSFUL" for t in mine)
    assert mine[0]["taskStatistics"] == {"actionsExecuted": 0, "actionsSkipped": 0,
                                         "actionsFailed": 0}
    first = iot.list_detect_mitigation_actions_tasks(maxResults=1, **window)
    assert len(first["tasks"]) == 1 and first["nextToken"]
    assert iot.list_detect_mitigation_actions_tasks(
        startTime=now - timedelta(days=2), endTime=now - timedelta(days=1))["tasks"] == []


def test_start_errors_and_idempotence(iot: Any, unique: Callable[[str], str]) -> None:
    _, action = _quarantine_action(iot, unique)
    profile = unique("sp")
    iot.create_security_profile(securityProfileName=profile, behaviors=[PORTS])
    task_id = unique("task")
    target = {"securityProfileName": profile}
    iot.start_detect_mitigation_actions_task(taskId=task_id, target=target,
                                             actions=[action], clientRequestToken="a")
    assert iot.start_detect_mitigation_actions_task(
        taskId=task_id, target=target, actions=[action],
        clientRequestToken="a")["taskId"] == task_id
    for kwargs, code in [
            ({"taskId": task_id, "target": target, "actions": [action],
              "clientRequestToken": "b"}, "ResourceAlreadyExistsException"),
            ({"taskId": unique("t"), "target": {}, "actions": [action],
              "clientRequestToken": "c"}, "InvalidRequestException"),
            ({"taskId": unique("t"), "target": target, "actions": ["no-such-action"],
              "clientRequestToken": "d"}, "InvalidRequestException"),
            ({"taskId": unique("t"), "target": {"securityProfileName": unique("none")},
              "actions": [action], "clientRequestToken": "e"}, "ResourceNotFoundException")]:
        with pytest.raises(ClientError) as caught:
            iot.start_detect_mitigation_actions_task(**kwargs)
        assert _code(caught) == code


def test_describe_and_cancel(iot: Any, unique: Callable[[str], str]) -> None:
    _, action = _quarantine_action(iot, unique)
    profile = unique("sp")
    iot.create_security_profile(securityProfileName=profile, behaviors=[PORTS])
    task_id = unique("task")
    iot.start_detect_mitigation_actions_task(
        taskId=task_id, target={"securityProfileName": profile}, actions=[action],
        clientRequestToken="a")
    assert _finished(iot, task_id)["taskStatus"] == "SUCCESSFUL"
    with pytest.raises(ClientError) as caught:  # no longer in progress
        iot.cancel_detect_mitigation_actions_task(taskId=task_id)
    assert _code(caught) == "InvalidRequestException"
    for call in (iot.cancel_detect_mitigation_actions_task,
                 iot.describe_detect_mitigation_actions_task):
        with pytest.raises(ClientError) as caught:
            call(taskId=unique("missing"))
        assert _code(caught) == "ResourceNotFoundException"
