"""DEVICE_CERTIFICATE_AGE_CHECK and DEVICE_CERTIFICATE_EXPIRING_CHECK report against the
rotation policy that governs each certificate, and the sweep alerts about the same
certificates through the alert targets."""

from __future__ import annotations

import json
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric import ec

from bastion.defender.audit import AuditTaskStatus
from bastion.pki import cert_to_pem, issue_device_certificate
from bastion.registry import CertificateAuthority
from bastion.rotation import GroupPolicy
from support.clients import Client

from .conftest import Rig, wait_until

AGE = "DEVICE_CERTIFICATE_AGE_CHECK"
EXPIRING = "DEVICE_CERTIFICATE_EXPIRING_CHECK"


def _findings(rig: Rig, check: str) -> dict[str, dict[str, str]]:
    audit = rig.bastion.app.services.audit
    assert audit is not None
    task = audit.audit.start_on_demand_audit_task([check])
    wait_until(lambda: audit.audit.describe_audit_task(task).status
               is AuditTaskStatus.COMPLETED, "the audit task")
    found, _ = audit.audit.list_audit_findings(task_id=task)
    return {f.non_compliant_resource.identifier.as_json()["deviceCertificateId"]:
            dict(f.non_compliant_resource.additional_info) | {"reason": f.reason}
            for f in found}


def _certificate_expiring_in(rig: Rig, days: int, thing: str | None) -> str:
    """A certificate from Bastion's CA valid until ``days`` after the clock's now,
    registered ACTIVE (and attached to ``thing``)."""
    authority = CertificateAuthority.from_datadir(rig.bastion.datadir)
    key = ec.generate_private_key(ec.SECP256R1())
    cert, _ = issue_device_certificate(authority.certificate, authority.private_key,
                                       common_name="expiring", public_key=key.public_key(),
                                       not_after=rig.clock.now() + timedelta(days=days))
    record = rig.plane.identity.register_certificate(cert_to_pem(cert).decode(),
                                                     status="ACTIVE")
    if thing is not None:
        rig.plane.registry.attach_thing_principal(thing, record.certificate_arn)
    return record.certificate_id


def test_the_audit_reports_against_the_group_policy(rig: Rig) -> None:
    audit = rig.bastion.app.services.audit
    assert audit is not None
    # The account's thresholds (as AWS's tools set them): ten years of age, 30 days of
    # expiry.
    audit.audit.update_account_audit_configuration(check_configurations={
        AGE: {"enabled": True, "configuration": {"CERT_AGE_THRESHOLD_IN_DAYS": "3650"}},
        EXPIRING: {"enabled": True,
                   "configuration": {"CERT_EXPIRATION_THRESHOLD_IN_DAYS": "30"}}})
    governed = rig.device()
    other = rig.device(in_group=False)
    policies = rig.service.policies
    policies.put(GroupPolicy(rig.group, max_age_days=30, rotate_before_expiry_days=60,
                             start_jobs=False))
    rig.clock.advance(timedelta(days=40))

    aged = _findings(rig, AGE)
    assert aged[governed.certificate_id]["ROTATION_POLICY"] == f"thing group {rig.group}"
    assert "threshold of 30 days" in aged[governed.certificate_id]["reason"]
    assert other.certificate_id not in aged  # the account's ten years still hold for it

    # Both expire in 45 days: within the group's 60-day window, not the account's 30.
    governed_soon = _certificate_expiring_in(rig, 45, governed.name)
    other_soon = _certificate_expiring_in(rig, 45, other.name)
    expiring = _findings(rig, EXPIRING)
    assert expiring[governed_soon]["ROTATION_POLICY"] == f"thing group {rig.group}"
    assert "within 60 days" in expiring[governed_soon]["reason"]
    assert other_soon not in expiring

    # Without the group's policy the account's thresholds govern it again.
    policies.delete(rig.group)
    assert governed.certificate_id not in _findings(rig, AGE)
    assert governed_soon not in _findings(rig, EXPIRING)


def test_the_sweep_alerts_the_policys_targets(rig: Rig) -> None:
    app = rig.bastion.app
    name = f"rotation-feed-{rig.group[-6:]}"
    app.services.alert_targets.create_mqtt(name, f"ops/{name}", qos=1)
    watcher_files = rig.device(in_group=False, policy="bastion-test-open")
    watcher = Client(watcher_files, rig.bastion.port, client_id=watcher_files.name).connect()
    watcher.subscribe(f"ops/{name}", 1)
    device = rig.device()
    policies = rig.service.policies
    policies.put(GroupPolicy(rig.group, max_age_days=1, start_jobs=False,
                             alert_targets=(name,)))

    rig.clock.advance(timedelta(days=2))
    report = app.services.rotation.sweep.sweep()
    (due,) = [d for d in report.due if d.certificate_id == device.certificate_id]
    assert due.reason.value == "AGE" and due.rotation_id is None  # alert only
    assert report.alerted == (name,)
    assert rig.service.open_rotation(device.name) is None
    (message,) = watcher.expect(1)
    alert = json.loads(message.payload)
    assert alert["kind"] == "rotation"
    listed = {d["certificateId"]: d for d in alert["message"]["dueCertificates"]}
    assert listed[device.certificate_id]["policy"] == f"thinggroup/{rig.group}"
    assert listed[device.certificate_id]["thingNames"] == [device.name]
    watcher.disconnect()
