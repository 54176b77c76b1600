"""Certificate rotation over the CBOR CSR topic (``$aws/certificates/create-from-csr/cbor``),
as constrained devices speak it: ``examples/rotate_certificate.py --format cbor`` (AWS's
device SDK for the jobs, ``cbor2`` over the SDK's connection for the CSR) rotates end to
end — a certificate for its own key, attached to its thing with its policies; the old one
deactivated, then revoked, after the graces — and a CBOR CSR for another thing's rotation
is refused on ``…/cbor/rejected``, in CBOR."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bastion.registry import CertificateStatus
from bastion.rotation import RotationStatus

from .conftest import Rig, example
from .test_rotation_sdk import _attached_policies, _refused_connection, _status, _trail_operations

DAY = timedelta(days=1)


def test_a_rotation_over_the_cbor_topic_end_to_end(rig: Rig, tmp_path: Path) -> None:
    files = rig.device()
    old_id = files.certificate_id
    policies_before = _attached_policies(rig, old_id)
    old_key = files.key.read_bytes()
    cert, key = tmp_path / "device.cert.pem", tmp_path / "device.key.pem"
    cert.write_bytes(files.cert.read_bytes())
    key.write_bytes(old_key)
    rotation = rig.service.start_rotation(files.name)

    new_id = example.rotate(endpoint="localhost", port=rig.bastion.port,
                            thing_name=files.name, cert=cert, key=key, ca=files.ca, wait=10,
                            payload_format="cbor")
    rig.wait_status(rotation.rotation_id, RotationStatus.CONFIRMED)
    assert new_id != old_id
    assert rig.service.describe_rotation(rotation.rotation_id).new_certificate_id == new_id
    # Issued ACTIVE for the device's own new key, on its thing, with the old policies.
    assert _status(rig, new_id) is CertificateStatus.ACTIVE
    issued = x509.load_pem_x509_certificate(cert.read_bytes())
    assert rig.plane.identity.describe_certificate(new_id).certificate_pem == cert.read_text()
    device_key = serialization.load_pem_private_key(key.read_bytes(), None)
    assert issued.public_key() == device_key.public_key() and key.read_bytes() != old_key
    assert rig.plane.registry.list_principal_things(
        rig.service.certificate_arn(new_id))[0] == [files.name]
    assert _attached_policies(rig, new_id) == policies_before

    # The old certificate is retired after the group's graces: deactivated a day after
    # the confirmation (and refused at CONNECT), revoked a week after.
    assert _status(rig, old_id) is CertificateStatus.ACTIVE
    rig.advance(timedelta(hours=25))
    rig.wait_status(rotation.rotation_id, RotationStatus.OLD_DEACTIVATED)
    assert _status(rig, old_id) is CertificateStatus.INACTIVE
    assert _refused_connection(rig, files)
    rig.advance(6 * DAY)
    rig.wait_status(rotation.rotation_id, RotationStatus.COMPLETED)
    assert _status(rig, old_id) is CertificateStatus.REVOKED
    assert _status(rig, new_id) is CertificateStatus.ACTIVE
    assert _trail_operations(rig, rotation.rotation_id) == [
        "StartCertificateRotation", "IssueRotationCertificate", "ConfirmCertificateRotation",
        "DeactivateRotatedCertificate", "RevokeRotatedCertificate"]


def test_a_cbor_csr_for_another_things_rotation_is_refused_in_cbor(
        rig: Rig, opened: list[Any]) -> None:
    victim = rig.device()
    rotation = rig.service.start_rotation(victim.name)
    intruder = rig.device(in_group=False, policy="bastion-test-open")
    posing = example.RotationDevice(endpoint="localhost", port=rig.bastion.port,
                                    thing_name=victim.name, cert=intruder.cert,
                                    key=intruder.key, ca=intruder.ca, payload_format="cbor")
    opened.append(posing)
    with pytest.raises(example.Refused) as refused:  # decoded from …/cbor/rejected
        posing.request_certificate(example.new_key_and_csr(victim.name)[1])
    assert (refused.value.status_code, refused.value.error_code) == (403, "AccessDenied")
    assert refused.value.error_message
    assert rig.service.describe_rotation(rotation.rotation_id).status is RotationStatus.STARTED
    principals, _ = rig.plane.registry.list_thing_principals(victim.name)
    assert principals == [rig.service.certificate_arn(victim.certificate_id)]
