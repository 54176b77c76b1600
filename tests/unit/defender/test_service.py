"""The audit service's rules: configuration, task life cycle and cancellation,
suppressions with expiry, finding filters, scheduled audits and the run of due ones."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from bastion.defender.audit import (
    AuditTaskStatus,
    CheckRunStatus,
    InvalidRequestError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
)
from bastion.store import Store
from support.audit_fleet import build_fleet
from support.clock import ManualClock

from .conftest import audit_service

POLICY_CHECK = "IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK"
IDENT = {"policyVersionIdentifier": {"policyName": "everything", "policyVersionId": "1"}}


def test_configuration_rules(store: Store, clock: ManualClock) -> None:
    service = audit_service(store, None, clock)
    config = service.describe_account_audit_configuration()
    assert config.checks["DEVICE_CERTIFICATE_AGE_CHECK"].enabled is False
    assert config.checks["DEVICE_CERTIFICATE_SHARED_CHECK"].enabled is True
    with pytest.raises(InvalidRequestError, match="not enabled"):
        service.start_on_demand_audit_task(["DEVICE_CERTIFICATE_AGE_CHECK"])
    with pytest.raises(InvalidRequestError, match="at least one"):
        service.start_on_demand_audit_task([])
    with pytest.raises(InvalidRequestError, match="At least one"):
        service.update_account_audit_configuration(check_configurations={
            name: {"enabled": False} for name in config.checks})
    with pytest.raises(InvalidRequestError, match="between 30 and 3652"):
        service.update_account_audit_configuration(check_configurations={
            "DEVICE_CERTIFICATE_EXPIRING_CHECK": {
                "configuration": {"CERT_EXPIRATION_THRESHOLD_IN_DAYS": "3653"}}})
    with pytest.raises(InvalidRequestError, match="alert target"):
        service.update_account_audit_configuration(notification_targets={
            "SNS": {"targetArn": "arn:aws:sns:us-east-1:123456789012:x", "enabled": True}})
    service.create_scheduled_audit("nightly", frequency="DAILY",
                                   target_check_names=["LOGGING_DISABLED_CHECK"])
    with pytest.raises(InvalidRequestError, match="deleteScheduledAudits"):
        service.delete_account_audit_configuration()
    service.delete_account_audit_configuration(delete_scheduled_audits=True)
    assert service.list_scheduled_audits() == ([], None)


def test_thresholds_change_what_is_found(store: Store, tmp_path: Path,
                                         clock: ManualClock) -> None:
    fleet = build_fleet(store, tmp_path, violations=True)
    service = audit_service(store, fleet, clock)
    check = "DEVICE_CERTIFICATE_EXPIRING_CHECK"

    def flagged() -> set[str]:
        task = service.start_on_demand_audit_task([check])
        return {f.non_compliant_resource.identifier.as_json()["deviceCertificateId"]
                for f in service.list_audit_findings(task_id=task)[0]}
    assert flagged() == {fleet.planted.expiring_certificate, fleet.planted.expired_certificate}
    service.update_account_audit_configuration(check_configurations={check: {
        "configuration": {"CERT_EXPIRATION_THRESHOLD_IN_DAYS": "3652"}}})
    # Every live certificate now expires "soon".
    assert flagged() >= set(fleet.device_certificates)


def test_cancel_a_task_before_it_runs(store: Store, tmp_path: Path, clock: ManualClock) -> None:
    fleet = build_fleet(store, tmp_path, violations=True)
    service = audit_service(store, fleet, clock)
    queued: list[Callable[[], None]] = []
    service._executor = queued.append  # hold the job: the task stays IN_PROGRESS
    task_id = service.start_on_demand_audit_task([POLICY_CHECK, "LOGGING_DISABLED_CHECK"])
    task = service.describe_audit_task(task_id)
    assert task.status is AuditTaskStatus.IN_PROGRESS
    assert task.statistics.in_progress_checks == 2
    service.cancel_audit_task(task_id)
    queued.pop()()  # the worker gets to it after the cancel: nothing happens
    task = service.describe_audit_task(task_id)
    assert task.status is AuditTaskStatus.CANCELED and task.end_time is not None
    assert {d.run_status for d in task.details.values()} == {CheckRunStatus.CANCELED}
    assert service.list_audit_findings(task_id=task_id) == ([], None)
    with pytest.raises(InvalidRequestError):
        service.cancel_audit_task(task_id)
    with pytest.raises(ResourceNotFoundError):
        service.cancel_audit_task("f" * 32)


def test_a_task_interrupted_by_shutdown_fails(store: Store, tmp_path: Path,
                                              clock: ManualClock) -> None:
    fleet = build_fleet(store, tmp_path, violations=False)
    service = audit_service(store, fleet, clock)
    queued: list[Callable[[], None]] = []
    service._executor = queued.append
    task_id = service.start_on_demand_audit_task([POLICY_CHECK])
    service.close()  # Bastion stops before the worker gets to the task
    queued.pop()()
    task = service.describe_audit_task(task_id)
    assert task.status is AuditTaskStatus.FAILED
    assert task.details[POLICY_CHECK].run_status is CheckRunStatus.CANCELED


def test_suppression_with_expiry(store: Store, tmp_path: Path, clock: ManualClock) -> None:
    fleet = build_fleet(store, tmp_path, violations=True)
    service = audit_service(store, fleet, clock)
    service.create_audit_suppression(POLICY_CHECK, IDENT,
                                     expiration_date=clock.now() + timedelta(days=2),
                                     description="until the lab closes")
    with pytest.raises(ResourceAlreadyExistsError):
        service.create_audit_suppression(POLICY_CHECK, IDENT, suppress_indefinitely=True)
    with pytest.raises(InvalidRequestError):
        service.create_audit_suppression(POLICY_CHECK, {"clientId": "x"})  # no expiry

    def run() -> tuple[bool, int | None, CheckRunStatus]:
        task_id = service.start_on_demand_audit_task([POLICY_CHECK])
        (finding,) = service.list_audit_findings(task_id=task_id)[0]
        details = service.describe_audit_task(task_id).details[POLICY_CHECK]
        return (finding.is_suppressed, details.suppressed_non_compliant_resources,
                details.run_status)
    assert run() == (True, 1, CheckRunStatus.COMPLETED_COMPLIANT)
    clock.advance(timedelta(days=3))  # expired: reported again
    assert run() == (False, 0, CheckRunStatus.COMPLETED_NON_COMPLIANT)
    service.update_audit_suppression(POLICY_CHECK, IDENT, suppress_indefinitely=True)
    assert run()[0] is True
    (listed,), _ = service.list_audit_suppressions(resource_identifier=IDENT)
    assert (listed.suppress_indefinitely, listed.description) == (True, "until the lab closes")
    service.delete_audit_suppression(POLICY_CHECK, IDENT)
    assert run()[0] is False


def test_finding_filters(store: Store, tmp_path: Path, clock: ManualClock) -> None:
    fleet = build_fleet(store, tmp_path, violations=True)
    service = audit_service(store, fleet, clock)
    first = service.start_on_demand_audit_task([POLICY_CHECK])
    clock.advance(timedelta(days=1))
    second = service.start_on_demand_audit_task([POLICY_CHECK, "LOGGING_DISABLED_CHECK"])
    by_time, _ = service.list_audit_findings(check_name=POLICY_CHECK,
                                             start_time=clock.now() - timedelta(hours=1),
                                             end_time=clock.now() + timedelta(hours=1))
    assert {f.task_id for f in by_time} == {second}
    by_resource, _ = service.list_audit_findings(
        check_name=POLICY_CHECK, resource_identifier=IDENT,
        start_time=clock.now() - timedelta(days=2), end_time=clock.now())
    assert {f.task_id for f in by_resource} == {first, second}
    with pytest.raises(InvalidRequestError):
        service.list_audit_findings(task_id=first, start_time=clock.now(), end_time=clock.now())
    with pytest.raises(InvalidRequestError):
        service.list_audit_findings(task_id=first, resource_identifier=IDENT)
    with pytest.raises(InvalidRequestError):
        service.list_audit_findings(task_id=first, next_token="garbage")
    tasks, _ = service.list_audit_tasks(start_time=clock.now() - timedelta(days=2),
                                        end_time=clock.now())
    assert [t.task_id for t in tasks] == [second, first]  # newest first


def test_due_scheduled_audits_run_once(store: Store, tmp_path: Path, clock: ManualClock) -> None:
    fleet = build_fleet(store, tmp_path, violations=True)
    service = audit_service(store, fleet, clock)
    created = service.create_scheduled_audit("weekly", frequency="WEEKLY", day_of_week="MON",
                                             target_check_names=[POLICY_CHECK])
    assert created.next_run_time.weekday() == 0
    assert service.run_due(created.next_run_time - timedelta(seconds=1)) == []
    clock.set(created.next_run_time + timedelta(minutes=3))
    (task_id,) = service.run_due()
    assert service.run_due() == []  # claimed: a second node (or round) starts nothing
    task = service.describe_audit_task(task_id)
    assert (task.task_type.value, task.scheduled_audit_name) == ("SCHEDULED_AUDIT_TASK",
                                                                 "weekly")
    after = service.describe_scheduled_audit("weekly")
    assert after.last_run_time == clock.now()
    assert after.next_run_time == created.next_run_time + timedelta(days=7)
