"""Certificate rotation end to end: the sweep (on a moved clock) starts a rotation job, a
device running AWS's SDK makes a key, sends a CSR, gets a certificate attached to its
thing with its policies, reconnects with it and reports SUCCEEDED; the old certificate
is deactivated, then revoked, after the graces — and every way it must not happen."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from bastion.jobs import ExecutionStatus
from bastion.registry import CertificateStatus
from bastion.rotation import OPERATION, RotationStatus
from support.clients import V5, Client, DeviceFiles

from .conftest import Rig, example

DAY = timedelta(days=1)


def _new_files(tmp_path: Path, files: DeviceFiles, cert_pem: str, key_pem: str) -> tuple[Path,
                                                                                         Path]:
    cert, key = tmp_path / f"{files.name}.new.cert.pem", tmp_path / f"{files.name}.new.key.pem"
    cert.write_text(cert_pem)
    key.write_text(key_pem)
    return cert, key


def _status(rig: Rig, certificate_id: str) -> CertificateStatus:
    return rig.plane.identity.describe_certificate(certificate_id).status


def _attached_policies(rig: Rig, certificate_id: str) -> list[str]:
    page, _ = rig.plane.policies.list_attached_policies(
        rig.service.certificate_arn(certificate_id))
    return sorted(p.policy_name for p in page)


def _trail_operations(rig: Rig, rotation_id: str) -> list[str]:
    return [record["operation"] for record in rig.bastion.app.services.trail.export()
            if record["service"] == "bastion"
            and (record["parameters"] or {}).get("rotationId") == rotation_id]


def _refused_connection(rig: Rig, files: DeviceFiles) -> bool:
    client = Client(files, rig.bastion.port, version=V5, client_id=files.name)
    client.connect(expect_success=False)
    refused = client.connack.value == 0x87
    client.stop()
    return bool(refused)


def test_the_sweep_rotates_an_old_certificate_end_to_end(
        rig: Rig, opened: list[Any], tmp_path: Path) -> None:
    files = rig.device()
    old_id = files.certificate_id
    policies_before = _attached_policies(rig, old_id)
    device = rig.sdk(files)
    opened.append(device)

    # 100 days later the certificate is past its group's 90 days: the daily sweep starts
    # a rotation job for its thing.
    rig.set_max_age(90)
    rig.advance(100 * DAY)
    job = device.wait_for_rotation_job()
    assert job.document["operation"] == OPERATION == "rotate-certificate"
    assert job.certificate_id == old_id
    rotation = rig.service.open_rotation(files.name)
    assert rotation is not None and rotation.job_id == job.job_id
    assert rotation.status is RotationStatus.STARTED
    report = rig.bastion.app.services.rotation.sweep.last_report
    assert report is not None and rotation.rotation_id in report.started
    (due,) = [d for d in report.due if d.certificate_id == old_id]
    assert due.reason.value == "AGE" and due.policy_source == rig.group

    # The device starts the job, makes a key and asks for a certificate.
    started = device.start_job()
    assert started is not None and started.job_id == job.job_id
    key_pem, csr_pem = example.new_key_and_csr(files.name)
    new_id, cert_pem = device.request_certificate(csr_pem)
    assert new_id != old_id
    assert _status(rig, new_id) is CertificateStatus.ACTIVE
    assert rig.plane.registry.list_principal_things(
        rig.service.certificate_arn(new_id))[0] == [files.name]
    assert _attached_policies(rig, new_id) == policies_before
    issued = x509.load_pem_x509_certificate(cert_pem.encode())
    csr_key = serialization.load_pem_private_key(key_pem.encode(), None).public_key()
    assert issued.public_key() == csr_key  # the device's own key, certified

    # One rotation, one certificate: a second CSR in the same job is refused.
    with pytest.raises(example.Refused) as second:
        device.request_certificate(example.new_key_and_csr(files.name)[1])
    assert (second.value.status_code, second.value.error_code) == (409, "Conflict")
    device.close()

    # It reconnects with the new certificate and reports success from there.
    cert, key = _new_files(tmp_path, files, cert_pem, key_pem)
    rotated = rig.sdk(files, cert=cert, key=key)
    opened.append(rotated)
    rotated.report(job.job_id, "SUCCEEDED", {"certificateId": new_id})
    rig.wait_status(rotation.rotation_id, RotationStatus.CONFIRMED)
    execution = rig.bastion.app.services.jobs.describe_job_execution(job.job_id, files.name)
    assert execution is not None and execution.status is ExecutionStatus.SUCCEEDED
    confirmed = rig.service.describe_rotation(rotation.rotation_id)
    assert confirmed.new_certificate_id == new_id and confirmed.new_connected_at is not None

    # The old certificate keeps working until the grace is over…
    assert _status(rig, old_id) is CertificateStatus.ACTIVE
    rig.advance(timedelta(hours=23))
    rig.round()
    assert _status(rig, old_id) is CertificateStatus.ACTIVE
    # …then it is deactivated, and a connection with it is refused.
    rig.advance(timedelta(hours=2))
    rig.wait_status(rotation.rotation_id, RotationStatus.OLD_DEACTIVATED)
    assert _status(rig, old_id) is CertificateStatus.INACTIVE
    assert _refused_connection(rig, files)
    # A week after the confirmation it is revoked.
    rig.advance(6 * DAY)
    rig.wait_status(rotation.rotation_id, RotationStatus.COMPLETED)
    assert _status(rig, old_id) is CertificateStatus.REVOKED
    assert _status(rig, new_id) is CertificateStatus.ACTIVE

    # Every step is in the trail.
    assert _trail_operations(rig, rotation.rotation_id) == [
        "StartCertificateRotation", "IssueRotationCertificate", "ConfirmCertificateRotation",
        "DeactivateRotatedCertificate", "RevokeRotatedCertificate"]


def test_a_second_rotation_within_the_period_is_refused(rig: Rig, opened: list[Any]) -> None:
    files = rig.device()
    device = rig.sdk(files)
    opened.append(device)
    first = rig.service.start_rotation(files.name)
    job = device.start_job()
    assert job is not None and job.job_id == first.job_id
    new_id, _ = device.request_certificate(example.new_key_and_csr(files.name)[1])
    # The device gives up: the rotation fails with its reason; it keeps its old
    # certificate and the new one is deactivated.
    device.report(job.job_id, "FAILED", {"reason": "storage-full"})
    rig.wait_status(first.rotation_id, RotationStatus.FAILED)
    failed = rig.service.describe_rotation(first.rotation_id)
    assert failed.reason == "the job execution is FAILED (reason=storage-full)"
    assert _status(rig, files.certificate_id) is CertificateStatus.ACTIVE
    assert _status(rig, new_id) is CertificateStatus.INACTIVE

    # Another rotation a day later: the CSR is refused (at most one per 30 days).
    rig.advance(DAY)
    second = rig.service.start_rotation(files.name)
    job = device.start_job()
    assert job is not None and job.job_id == second.job_id
    with pytest.raises(example.Refused) as refused:
        device.request_certificate(example.new_key_and_csr(files.name)[1])
    assert (refused.value.status_code, refused.value.error_code) == (429, "Throttling")
    assert "may rotate again from" in refused.value.error_message
    assert rig.service.describe_rotation(second.rotation_id).status is RotationStatus.STARTED
    operations = [r["operation"] for r in rig.bastion.app.services.trail.export()
                  if r["service"] == "bastion" and r["outcome"] == "denied"
                  and (r["parameters"] or {}).get("certificateId") == files.certificate_id]
    assert operations[-1] == "IssueRotationCertificate"


def test_a_csr_for_another_things_rotation_is_refused(rig: Rig, opened: list[Any]) -> None:
    victim = rig.device()
    rotation = rig.service.start_rotation(victim.name)
    # Another device, whose policy lets it use any client id, poses as the victim.
    intruder = rig.device(in_group=False, policy="bastion-test-open")
    posing = example.RotationDevice(endpoint="localhost", port=rig.bastion.port,
                                    thing_name=victim.name, cert=intruder.cert,
                                    key=intruder.key, ca=intruder.ca)
    opened.append(posing)
    with pytest.raises(example.Refused) as refused:
        posing.request_certificate(example.new_key_and_csr(victim.name)[1])
    assert (refused.value.status_code, refused.value.error_code) == (403, "AccessDenied")
    assert rig.service.describe_rotation(rotation.rotation_id).status is RotationStatus.STARTED
    principals, _ = rig.plane.registry.list_thing_principals(victim.name)
    assert principals == [rig.service.certificate_arn(victim.certificate_id)]


def test_a_device_that_never_returns_keeps_its_certificate(
        rig: Rig, opened: list[Any]) -> None:
    files = rig.device()
    device = rig.sdk(files)
    opened.append(device)
    rotation = rig.service.start_rotation(files.name)
    job = device.start_job()
    assert job is not None
    new_id, _ = device.request_certificate(example.new_key_and_csr(files.name)[1])
    device.close()  # and is never heard of again

    rig.advance(timedelta(minutes=61))  # past the rotation job's in-progress timeout
    rig.wait_status(rotation.rotation_id, RotationStatus.FAILED)
    execution = rig.bastion.app.services.jobs.describe_job_execution(job.job_id, files.name)
    assert execution is not None and execution.status is ExecutionStatus.TIMED_OUT
    # The reason names the execution's end and the last step the device reported.
    assert rig.service.describe_rotation(rotation.rotation_id).reason == (
        "the job execution is TIMED_OUT (step=generating-key)")
    assert _status(rig, files.certificate_id) is CertificateStatus.ACTIVE
    assert _status(rig, new_id) is CertificateStatus.INACTIVE
    # The old certificate still connects; it is never retired by this rotation.
    rig.advance(30 * DAY)
    again = rig.sdk(files)
    opened.append(again)
    assert _status(rig, files.certificate_id) is CertificateStatus.ACTIVE
    assert "FailCertificateRotation" in _trail_operations(rig, rotation.rotation_id)


def _rsa_csr(bits: int, name: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def test_a_weak_or_reused_key_is_refused(rig: Rig, opened: list[Any]) -> None:
    files = rig.device()
    device = rig.sdk(files)
    opened.append(device)
    rotation = rig.service.start_rotation(files.name)
    assert device.start_job() is not None

    with pytest.raises(example.Refused) as weak:
        device.request_certificate(_rsa_csr(1024, files.name))
    assert (weak.value.status_code, weak.value.error_code) == (400, "InvalidRequest")
    assert "1024 bits" in weak.value.error_message

    # The key of the certificate being replaced is no new key.
    old_key = serialization.load_pem_private_key(files.key.read_bytes(), None)
    reused = (x509.CertificateSigningRequestBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, files.name)]))
              .sign(old_key, hashes.SHA256()))  # type: ignore[arg-type]
    with pytest.raises(example.Refused) as same:
        device.request_certificate(
            reused.public_bytes(serialization.Encoding.PEM).decode("ascii"))
    assert (same.value.status_code, same.value.error_code) == (400, "InvalidRequest")
    assert "key of the certificate it replaces" in same.value.error_message

    # Nothing was issued; a good CSR still gets its certificate.
    assert rig.service.describe_rotation(rotation.rotation_id).status is RotationStatus.STARTED
    new_id, _ = device.request_certificate(example.new_key_and_csr(files.name)[1])
    assert _status(rig, new_id) is CertificateStatus.ACTIVE


def test_a_csr_outside_any_rotation_is_fleet_provisionings(
        rig: Rig, opened: list[Any]) -> None:
    """Without a rotation the CSR is answered as AWS answers it: a PENDING_ACTIVATION
    certificate with an ownership token, attached to nothing."""
    files = rig.device()
    device = rig.sdk(files)
    opened.append(device)
    new_id, _ = device.request_certificate(example.new_key_and_csr(files.name)[1])
    assert _status(rig, new_id) is CertificateStatus.PENDING_ACTIVATION
    assert rig.plane.registry.list_principal_things(
        rig.service.certificate_arn(new_id))[0] == []


def test_the_example_device_rotates_itself(rig: Rig, tmp_path: Path) -> None:
    """``examples/rotate_certificate.py``'s ``rotate()`` from start to end: the files on
    the device are swapped only after the new certificate connected."""
    files = rig.device()
    cert, key = tmp_path / "device.cert.pem", tmp_path / "device.key.pem"
    cert.write_bytes(files.cert.read_bytes())
    key.write_bytes(files.key.read_bytes())
    rotation = rig.service.start_rotation(files.name)
    new_id = example.rotate(endpoint="localhost", port=rig.bastion.port,
                            thing_name=files.name, cert=cert, key=key, ca=files.ca, wait=10)
    rig.wait_status(rotation.rotation_id, RotationStatus.CONFIRMED)
    assert rig.service.describe_rotation(rotation.rotation_id).new_certificate_id == new_id
    assert (tmp_path / "device.cert.pem.old").read_bytes() == files.cert.read_bytes()
    assert rig.plane.identity.describe_certificate(new_id).certificate_pem == cert.read_text()
    assert "PRIVATE KEY" in key.read_text() and key.read_bytes() != files.key.read_bytes()
