"""Audit mitigation tasks through the registry services: each action type's effect and
the domain event it publishes (what the broker uses to drop or re-authorize sessions);
suppressed findings skipped; AWS's rules on which action fits which check."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from bastion.defender.audit import (
    AuditMitigationService,
    AuditService,
    ExecutionStatus,
    InvalidRequestError,
    MitigationTaskStatus,
    ResourceNotFoundError,
    TaskAlreadyExistsError,
)
from bastion.defender.mitigation import MitigationActionService, RegistryEffects
from bastion.logging_options import LoggingOptions
from bastion.registry import (
    CaCertificateStatusChanged,
    CertificateStatus,
    CertificateStatusChanged,
    IdentityService,
    PolicyDefaultVersionChanged,
    PolicyService,
    RegistryService,
    ThingGroupMembershipChanged,
)
from bastion.store import Store
from support.audit_fleet import ACCOUNT, build_fleet
from support.clock import ManualClock

from .conftest import audit_service, inline

ROLE = "arn:aws:iam::123456789012:role/mitigation"


class Notes:
    """A notifier with one known target."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Mapping[str, Any]]] = []

    def target_exists(self, target_arn: str) -> bool:
        return target_arn.endswith(":ops")

    def notify(self, target_arn: str, subject: str, message: Mapping[str, Any]) -> None:
        self.sent.append((target_arn, subject, message))


class World:
    def __init__(self, store: Store, tmp: Path, clock: ManualClock) -> None:
        self.events: list[object] = []
        self.notes = Notes()
        self.fleet = build_fleet(store, tmp, violations=True)
        self.audit: AuditService = audit_service(store, self.fleet, clock, notifier=self.notes)
        identity = IdentityService(store, account=ACCOUNT, publish=self.events.append,
                                   clock=clock)
        self.registry = RegistryService(store, account=ACCOUNT, publish=self.events.append,
                                        clock=clock)
        self.policies = PolicyService(store, account=ACCOUNT, publish=self.events.append,
                                      clock=clock)
        self.identity = identity
        self.actions = MitigationActionService(store, account=ACCOUNT, clock=clock)
        self.logging = LoggingOptions(store, logging.getLogger("bastion-test.audit"))
        self.mitigation = AuditMitigationService(
            store, account=ACCOUNT, actions=self.actions,
            effects=RegistryEffects(store, identity=identity, registry=self.registry,
                                    policies=self.policies, logging=self.logging,
                                    notifier=self.notes),
            executor=inline, clock=clock)

    def action(self, name: str, params: dict[str, Any]) -> str:
        self.actions.create_action(name, ROLE, params)
        return name

    def findings(self, task_id: str, check: str) -> dict[str, Any]:
        return {f.non_compliant_resource.identifier.key: f
                for f in self.audit.list_audit_findings(task_id=task_id)[0]
                if f.check_name == check}


@pytest.fixture
def world(store: Store, tmp_path: Path, clock: ManualClock) -> World:
    return World(store, tmp_path, clock)


def test_device_certificate_actions_publish_registry_events(world: World) -> None:
    check = "DEVICE_CERTIFICATE_ATTACHED_TO_MULTIPLE_THINGS_CHECK"
    task = world.audit.start_on_demand_audit_task([check])
    world.registry.create_thing_group("quarantine")
    deactivate = world.action("deactivate", {"updateDeviceCertificateParams": {
        "action": "DEACTIVATE"}})
    isolate = world.action("isolate", {"addThingsToThingGroupParams": {
        "thingGroupNames": ["quarantine"]}})
    world.events.clear()
    world.mitigation.start_audit_mitigation_actions_task(
        "contain", target={"auditTaskId": task},
        audit_check_to_actions_mapping={check: [isolate, deactivate]})
    described = world.mitigation.describe_audit_mitigation_actions_task("contain")
    assert described.status is MitigationTaskStatus.COMPLETED
    stats = described.statistics[check]
    assert (stats.total, stats.succeeded, stats.failed, stats.skipped) == (2, 2, 0, 0)
    cert = world.fleet.planted.multi_thing_certificate
    assert CertificateStatusChanged(cert, CertificateStatus.ACTIVE,
                                    CertificateStatus.INACTIVE) in world.events
    assert {e.thing_name for e in world.events if isinstance(e, ThingGroupMembershipChanged)
            } == {"hub-a", "hub-b"}
    assert world.identity.describe_certificate(cert).status is CertificateStatus.INACTIVE


def test_ca_policy_logging_and_publish_actions(world: World) -> None:
    checks = ["REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK", "IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK",
              "LOGGING_DISABLED_CHECK"]
    task = world.audit.start_on_demand_audit_task(checks)
    ca = world.action("ca-off", {"updateCACertificateParams": {"action": "DEACTIVATE"}})
    blank = world.action("blank", {"replaceDefaultPolicyVersionParams": {
        "templateName": "BLANK_POLICY"}})
    logs = world.action("logs-on", {"enableIoTLoggingParams": {
        "roleArnForLogging": ROLE, "logLevel": "ERROR"}})
    publish = world.action("tell-ops", {"publishFindingToSnsParams": {
        "topicArn": "arn:aws:sns:us-east-1:123456789012:ops"}})
    lost = world.action("tell-nobody", {"publishFindingToSnsParams": {
        "topicArn": "arn:aws:sns:us-east-1:123456789012:nobody"}})
    world.mitigation.start_audit_mitigation_actions_task("fix", target={"auditTaskId": task},
        audit_check_to_actions_mapping={checks[0]: [ca, publish], checks[1]: [blank],
                                        checks[2]: [logs, lost]})
    described = world.mitigation.describe_audit_mitigation_actions_task("fix")
    assert described.status is MitigationTaskStatus.FAILED  # one publish had no target
    planted = world.fleet.planted
    assert any(isinstance(e, CaCertificateStatusChanged) and
               e.ca_certificate_id == planted.revoked_ca for e in world.events)
    assert PolicyDefaultVersionChanged("everything", "2") in world.events
    assert not world.logging.state().disabled
    assert [n[2]["checkName"] for n in world.notes.sent] == [checks[0]]
    (logging_finding,) = world.findings(task, checks[2]).values()
    executions = {e.action_name: e for e in world.mitigation.list_audit_mitigation_actions_executions(
        "fix", logging_finding.finding_id)[0]}
    assert executions[logs].status is ExecutionStatus.COMPLETED
    assert (executions[lost].status, executions[lost].error_code) == (
        ExecutionStatus.FAILED, "ResourceNotFound")
    # Re-audited, the logging check is now compliant.
    again = world.audit.start_on_demand_audit_task([checks[2]])
    assert world.audit.list_audit_findings(task_id=again)[0] == []


def test_suppressed_findings_are_skipped(world: World) -> None:
    check = "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK"
    roca = world.fleet.planted.weak_keys["CERTIFICATE_KEY_VULNERABILITY_CVE-2017-15361"]
    world.audit.create_audit_suppression(check, {"deviceCertificateId": roca},
                                         suppress_indefinitely=True)
    task = world.audit.start_on_demand_audit_task([check])
    deactivate = world.action("deactivate", {"updateDeviceCertificateParams": {
        "action": "DEACTIVATE"}})
    world.mitigation.start_audit_mitigation_actions_task(
        "keys", target={"auditTaskId": task}, audit_check_to_actions_mapping={
            check: [deactivate]})
    stats = world.mitigation.describe_audit_mitigation_actions_task("keys").statistics[check]
    assert (stats.total, stats.succeeded, stats.skipped) == (6, 5, 1)
    assert world.identity.describe_certificate(roca).status is CertificateStatus.ACTIVE
    for code, cert in world.fleet.planted.weak_keys.items():
        expected = CertificateStatus.ACTIVE if cert == roca else CertificateStatus.INACTIVE
        assert world.identity.describe_certificate(cert).status is expected, code


def test_task_rules(world: World) -> None:
    check = "IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK"
    task = world.audit.start_on_demand_audit_task([check])
    (finding,) = world.findings(task, check).values()
    deactivate = world.action("deactivate", {"updateDeviceCertificateParams": {
        "action": "DEACTIVATE"}})
    publish = world.action("tell-ops", {"publishFindingToSnsParams": {
        "topicArn": "arn:aws:sns:us-east-1:123456789012:ops"}})
    with pytest.raises(InvalidRequestError, match="cannot be applied"):
        world.mitigation.start_audit_mitigation_actions_task(
            "t1", target={"auditTaskId": task},
            audit_check_to_actions_mapping={check: [deactivate]})
    with pytest.raises(InvalidRequestError, match="does not exist"):
        world.mitigation.start_audit_mitigation_actions_task(
            "t1", target={"auditTaskId": task}, audit_check_to_actions_mapping={check: ["x"]})
    with pytest.raises(InvalidRequestError):
        world.mitigation.start_audit_mitigation_actions_task(
            "t1", target={"findingIds": ["a"] * 26},
            audit_check_to_actions_mapping={check: [publish]})
    with pytest.raises(ResourceNotFoundError):
        world.mitigation.start_audit_mitigation_actions_task(
            "t1", target={"auditTaskId": "0" * 32},
            audit_check_to_actions_mapping={check: [publish]})
    target = {"findingIds": [finding.finding_id]}
    world.mitigation.start_audit_mitigation_actions_task(
        "t1", target=target, audit_check_to_actions_mapping={check: [publish]},
        client_request_token="token-1")
    # A retry with the same token is the same request; another one is refused.
    assert world.mitigation.start_audit_mitigation_actions_task(
        "t1", target=target, audit_check_to_actions_mapping={check: [publish]},
        client_request_token="token-1") == "t1"
    with pytest.raises(TaskAlreadyExistsError):
        world.mitigation.start_audit_mitigation_actions_task(
            "t1", target=target, audit_check_to_actions_mapping={check: [publish]},
            client_request_token="token-2")
    assert len(world.notes.sent) == 1
