"""A full audit of the fixture fleet: each planted violation is found by its check, with
AWS's reason code and resource identifier; the clean twin gives no finding at all."""

from __future__ import annotations

from pathlib import Path

from bastion.defender.audit import CHECKS, AuditTaskStatus, CheckRunStatus, Finding
from bastion.store import Store
from support.audit_fleet import build_fleet
from support.clock import ManualClock

from .conftest import audit_service

ALL = sorted(CHECKS)


def _findings(service, task_id: str) -> list[Finding]:  # type: ignore[no-untyped-def]
    found: list[Finding] = []
    token = None
    while True:
        page, token = service.list_audit_findings(task_id=task_id, max_results=7,
                                                  next_token=token)
        found.extend(page)
        if not token:
            return found


def _run_all(store: Store, tmp: Path, clock: ManualClock, *, violations: bool):  # type: ignore[no-untyped-def]
    fleet = build_fleet(store, tmp, violations=violations)
    service = audit_service(store, fleet, clock)
    service.update_account_audit_configuration(check_configurations={
        "DEVICE_CERTIFICATE_AGE_CHECK": {"enabled": True}})
    task_id = service.start_on_demand_audit_task(ALL)
    return fleet, service, task_id


def test_clean_fleet_has_no_finding(store: Store, tmp_path: Path, clock: ManualClock) -> None:
    fleet, service, task_id = _run_all(store, tmp_path, clock, violations=False)
    task = service.describe_audit_task(task_id)
    assert task.status is AuditTaskStatus.COMPLETED
    assert _findings(service, task_id) == []
    assert {name: d.run_status for name, d in task.details.items()} == {
        name: CheckRunStatus.COMPLETED_COMPLIANT for name in ALL}
    assert task.details["DEVICE_CERTIFICATE_EXPIRING_CHECK"].total_resources == len(
        fleet.device_certificates)
    assert task.statistics.compliant_checks == len(ALL)


def test_each_planted_violation_is_found(store: Store, tmp_path: Path,
                                         clock: ManualClock) -> None:
    fleet, service, task_id = _run_all(store, tmp_path, clock, violations=True)
    planted = fleet.planted
    findings = _findings(service, task_id)
    by_check: dict[str, list[Finding]] = {}
    for finding in findings:
        by_check.setdefault(finding.check_name, []).append(finding)
        assert finding.severity.value == CHECKS[finding.check_name].severity.value
        assert finding.reason_code in CHECKS[finding.check_name].reason_codes

    def resources(check: str) -> dict[tuple[str, str], Finding]:
        result = {}
        for finding in by_check.get(check, []):
            ident = finding.non_compliant_resource.identifier.as_json()
            key = next(iter(ident.values()))
            result[(str(key) if not isinstance(key, dict) else
                    f"{key['policyName']}@{key['policyVersionId']}", finding.reason_code)] = finding
        return result

    shared = resources("DEVICE_CERTIFICATE_SHARED_CHECK")
    assert set(shared) == {(planted.shared_certificate, "CERTIFICATE_SHARED_BY_MULTIPLE_DEVICES")}
    related = next(iter(shared.values())).related_resources
    assert sorted(r.identifier.as_json()["clientId"] for r in related) == ["shared-a", "shared-b"]
    assert all(r.resource_type.value == "CLIENT_ID" and "CONNECTION_TIME" in r.additional_info
               for r in related)

    assert set(resources("CONFLICTING_CLIENT_IDS_CHECK")) == {
        ("twin", "DUPLICATE_CLIENT_ID_ACROSS_CONNECTIONS")}
    assert set(resources("DEVICE_CERTIFICATE_EXPIRING_CHECK")) == {
        (planted.expiring_certificate, "CERTIFICATE_APPROACHING_EXPIRATION"),
        (planted.expired_certificate, "CERTIFICATE_PAST_EXPIRATION")}
    assert set(resources("DEVICE_CERTIFICATE_AGE_CHECK")) == {
        (planted.old_certificate, "CERTIFICATE_PAST_AGE_THRESHOLD")}
    assert set(resources("CA_CERTIFICATE_EXPIRING_CHECK")) == {
        (planted.expiring_ca, "CERTIFICATE_APPROACHING_EXPIRATION")}
    assert set(resources("DEVICE_CERTIFICATE_KEY_QUALITY_CHECK")) == {
        (cert, code) for code, cert in planted.weak_keys.items()}
    assert set(resources("CA_CERTIFICATE_KEY_QUALITY_CHECK")) == {
        (planted.weak_ca, "CERTIFICATE_KEY_FERMAT_FACTORABLE")}
    assert set(resources("REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK")) == {
        (planted.revoked_certificate, "CERTIFICATE_REVOKED_BY_ISSUER")}
    assert set(resources("REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK")) == {
        (planted.revoked_ca, "CERTIFICATE_REVOKED_BY_ISSUER")}
    intermediate = resources("INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK")
    assert set(intermediate) == {
        (planted.under_revoked_intermediate, "INTERMEDIATE_CA_REVOKED_BY_ISSUER")}
    issuer = next(iter(intermediate.values())).related_resources[0]
    assert issuer.resource_type.value == "ISSUER_CERTIFICATE"
    assert issuer.identifier.as_json()["issuerCertificateIdentifier"]["issuerId"] == \
        planted.revoked_ca
    overly = resources("IOT_POLICY_OVERLY_PERMISSIVE_CHECK")
    assert set(overly) == {(f"{planted.broad_policy}@1",
                            "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS"),
                           (f"{planted.all_actions_policy}@1",
                            "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS")}
    assert "iot:Connect" in overly[(f"{planted.broad_policy}@1",
                                    "ALLOWS_BROAD_ACCESS_TO_IOT_DATA_PLANE_ACTIONS")].reason
    assert set(resources("IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK")) == {
        (f"{planted.wildcard_deny_policy}@1", "POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT"),
        (f"{planted.bypassable_deny_policy}@1",
         "TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS")}
    assert set(resources("LOGGING_DISABLED_CHECK")) == {("123456789012", "LOGGING_DISABLED")}
    assert set(resources("DEVICE_CERTIFICATE_ATTACHED_TO_MULTIPLE_THINGS_CHECK")) == {
        (planted.multi_thing_certificate, "CERTIFICATE_ATTACHED_TO_MULTIPLE_THINGS")}
    assert set(resources("IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK")) == {
        (f"{planted.all_actions_policy}@1", "ALLOWS_ALL_IOT_ACTIONS")}
    assert set(resources("CLAIM_PROVISIONING_TEMPLATE_WITHOUT_HOOK_CHECK")) == {
        (planted.claim_template, "CLAIM_TEMPLATE_WITHOUT_PRE_PROVISIONING_HOOK")}
    # Checks without a subject in Bastion: compliant, nothing looked at.
    task = service.describe_audit_task(task_id)
    cognito = task.details["AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK"]
    assert (cognito.run_status, cognito.total_resources) == (
        CheckRunStatus.COMPLETED_COMPLIANT, 0)
    assert task.details["DEVICE_CERTIFICATE_KEY_QUALITY_CHECK"].non_compliant_resources == 6
