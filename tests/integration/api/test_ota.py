"""Signed OTA updates end to end, against a running Bastion: boto3's ``signer`` and ``iot``
clients (SigV4) sign a firmware and create the OTA update; a real mutual-TLS device
receives the job, downloads the file through its presigned URL and checks the signature
against the code-signing CA (not the device CA); the example device
(``examples/ota_device.py``, a separate process) installs it and reports SUCCEEDED — and
reports FAILED for a file tampered with after signing and for a signature under a
certificate of another CA. Refused at creation: a revoked signature, a canceled profile,
an unsigned file, a protocol given twice. A device without the job gets no URL."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bastion.pki import cert_to_pem, create_code_signing_ca, load_pem_certificate
from bastion.pki import issue_code_signing_certificate as issue
from support.clients import Client, DeviceFiles

from .conftest import ACCOUNT, REGION, ApiBastion, device_through_api
from .test_signing import (
    PLATFORM,
    _assert_no_key_in,
    _private_key_of,
    code_signing_ca,
    error_code,
    upload,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "ota_device.py"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/ota"
AUDITOR_ROLE = f"arn:aws:iam::{ACCOUNT}:role/bastion-auditor"


def thing_arn(thing: str) -> str:
    return f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{thing}"


def signed_firmware(api: ApiBastion, unique: Callable[[str], str], tmp_path: Path,
                    firmware: bytes) -> tuple[str, str, str]:
    """Upload ``firmware``, make a profile, sign it: (file name, profile, signing job)."""
    signer = api.client("signer")
    file_name = unique("fw") + ".bin"
    digest = upload(api, firmware, file_name, tmp_path)
    profile = unique("ota").replace("-", "_")
    signer.put_signing_profile(profileName=profile, platformId=PLATFORM,
                               signingParameters={"certname": "/certs/ota.pem"})
    job_id = signer.start_signing_job(
        source={"s3": {"bucketName": "firmware", "key": file_name, "version": digest}},
        destination={"s3": {"bucketName": "firmware", "prefix": "signed-"}},
        profileName=profile, clientRequestToken=str(uuid.uuid4()))["jobId"]
    return file_name, profile, job_id


def ota_file(file_name: str, signing: dict[str, Any]) -> dict[str, Any]:
    return {"fileName": f"/firmware/{file_name}", "fileType": 0,
            "fileLocation": {"s3Location": {"bucket": "firmware", "key": file_name}},
            "codeSigning": signing}


def revocation_alias(api: ApiBastion, unique: Callable[[str], str]) -> str:
    """A role alias to the auditor's role: credentials a device may read Signer with."""
    alias = unique("ota-revocations")
    api.client().create_role_alias(roleAlias=alias, roleArn=AUDITOR_ROLE,
                                   credentialDurationSeconds=900)
    return alias


def revocation_arguments(api: ApiBastion, alias: str) -> list[str]:
    """The example devices' options to check revocation with AWS Signer."""
    return ["--role-alias", alias, "--credentials-endpoint", api.credentials_url,
            "--signer-endpoint", api.url]


def run_example(api: ApiBastion, device: DeviceFiles, install_dir: Path,
                pinned: Path | None = None, *extra: str
                ) -> subprocess.CompletedProcess[str]:
    """``examples/ota_device.py`` as a device would run it (its own process)."""
    return subprocess.run(
        [sys.executable, str(EXAMPLE), "--endpoint", "127.0.0.1",
         "--port", str(api.mqtt_port), "--thing", device.name,
         "--cert", str(device.cert), "--key", str(device.key),
         "--root-ca", str(api.datadir.ca_cert_path),
         "--code-signing-ca", str(pinned or api.datadir.ca_dir / "code-signing-ca.cert.pem"),
         "--install-dir", str(install_dir), "--timeout", "10", *extra],
        capture_output=True, text=True, timeout=50, check=False)


def start_execution(api: ApiBastion, device: DeviceFiles) -> str:
    """The device starts its next job (StartNextPendingJobExecution, over mutual TLS),
    and goes away; returns the job id."""
    client = Client(device, api.mqtt_port, client_id=device.name).connect()
    try:
        base = f"$aws/things/{device.name}/jobs/start-next"
        client.subscribe(f"{base}/+", qos=1)
        client.publish(base, "{}", qos=1)
        [answer] = client.expect()
        assert answer.topic.endswith("/accepted"), answer.payload
        return str(json.loads(answer.payload)["execution"]["jobId"])
    finally:
        client.disconnect()


def execution_of(api: ApiBastion, job_id: str, thing: str) -> dict[str, Any]:
    return dict(api.client().describe_job_execution(jobId=job_id, thingName=thing)["execution"])


def https_get(api: ApiBastion, url: str) -> tuple[int, bytes]:
    context = ssl.create_default_context(cafile=str(api.datadir.ca_cert_path))
    try:
        with urllib.request.urlopen(url, context=context, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_signed_ota_update_end_to_end(api_bastion: ApiBastion, unique: Callable[[str], str],
                                      tmp_path: Path) -> None:
    api = api_bastion
    iot = api.client()
    kept: list[bytes] = []
    iot.meta.events.register("after-call", lambda http_response, **_: kept.append(
        http_response.content))
    firmware = os.urandom(120_000)
    file_name, profile, signing_job = signed_firmware(api, unique, tmp_path, firmware)
    thing, bystander = unique("ota-device"), unique("bystander")
    device = device_through_api(api, iot, thing, tmp_path / "device")
    other = device_through_api(api, iot, bystander, tmp_path / "other")
    kept.clear()  # CreateKeysAndCertificate answers the devices' keys, as it must
    update_id = unique("update")
    created = iot.create_ota_update(
        otaUpdateId=update_id, targets=[thing_arn(thing)], protocols=["HTTP"],
        files=[ota_file(file_name, {"awsSignerJobId": signing_job})], roleArn=ROLE,
        awsJobPresignedUrlConfig={"expiresInSec": 600})
    job_id = f"AFR_OTA-{update_id}"
    assert created["otaUpdateStatus"] == "CREATE_COMPLETE"
    assert created["awsIotJobId"] == job_id
    assert created["otaUpdateArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:otaupdate/{update_id}"
    info = iot.get_ota_update(otaUpdateId=update_id)["otaUpdateInfo"]
    assert info["otaUpdateFiles"][0]["codeSigning"] == {"awsSignerJobId": signing_job}
    assert info["awsIotJobArn"] == f"arn:aws:iot:{REGION}:{ACCOUNT}:job/{job_id}"
    assert update_id in [u["otaUpdateId"] for u in iot.list_ota_updates()["otaUpdates"]]
    # The stored job document names the file; only a device's copy holds a URL.
    stored = json.loads(iot.get_job_document(jobId=job_id)["document"])
    assert stored["afr_ota"]["files"][0]["update_data_url"] == \
        f"${{aws:iot:s3-presigned-url:s3://firmware/{file_name}}}"

    # The device, over mutual TLS, reads its job (without starting it).
    client = Client(device, api.mqtt_port).connect()
    try:
        client.subscribe(f"$aws/things/{thing}/jobs/{job_id}/get/+", qos=1)
        client.publish(f"$aws/things/{thing}/jobs/{job_id}/get", "{}", qos=1)
        [answer] = client.expect()
        assert answer.topic.endswith("/get/accepted"), answer.payload
        kept.append(answer.payload)
        document = json.loads(answer.payload)["execution"]["jobDocument"]
    finally:
        client.disconnect()
    [entry] = document["afr_ota"]["files"]
    assert document["afr_ota"]["protocols"] == ["HTTP"]
    assert entry["filepath"] == f"/firmware/{file_name}"
    assert entry["filesize"] == len(firmware) and entry["fileid"] == 0
    assert entry["certfile"] == "/certs/ota.pem" and entry["fileType"] == 0
    assert entry["auth_scheme"] == "aws.s3.presigned"
    url = entry["update_data_url"]
    assert url.startswith(f"{api.url}/_bastion/files/{file_name}?X-Bastion-Expires=")
    status, body = https_get(api, url)
    assert status == 200 and body == firmware
    # The signature verifies with the certificate, chained to the code-signing CA and
    # not to the device CA.
    certificate = load_pem_certificate(entry["x-bastion-certificate"])
    certificate.verify_directly_issued_by(code_signing_ca(api))
    with pytest.raises((ValueError, InvalidSignature)):
        certificate.verify_directly_issued_by(
            load_pem_certificate(api.datadir.ca_cert_path.read_bytes()))
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(base64.b64decode(entry["sig-sha256-ecdsa"]), body,
                      ec.ECDSA(hashes.SHA256()))

    # A device without the job learns nothing: no execution, no URL; and the file's
    # URL without its signature is refused.
    intruder = Client(other, api.mqtt_port).connect()
    try:
        intruder.subscribe(f"$aws/things/{bystander}/jobs/{job_id}/get/+", qos=1)
        intruder.publish(f"$aws/things/{bystander}/jobs/{job_id}/get", "{}", qos=1)
        [refused] = intruder.expect()
        assert refused.topic.endswith("/get/rejected")
        assert file_name not in refused.payload.decode()
    finally:
        intruder.disconnect()
    assert https_get(api, url.split("?")[0])[0] == 403
    assert https_get(api, url.replace(file_name, f"signed-{signing_job}"))[0] == 403

    # The example device installs it and reports SUCCEEDED.
    installed = tmp_path / "installed"
    result = run_example(api, device, installed)
    assert result.returncode == 0, result.stderr
    assert (installed / file_name).read_bytes() == firmware
    execution = execution_of(api, job_id, thing)
    assert execution["status"] == "SUCCEEDED"
    assert execution["statusDetails"]["detailsMap"] == {"installed": file_name}

    # No answer, HTTPS or MQTT, carried the signing key.
    certificate_arn = api.client("signer").get_signing_profile(
        profileName=profile)["signingMaterial"]["certificateArn"]
    _assert_no_key_in(kept, _private_key_of(api, certificate_arn))

    iot.delete_ota_update(otaUpdateId=update_id, forceDeleteAWSJob=True)
    with pytest.raises(ClientError) as error:
        iot.get_ota_update(otaUpdateId=update_id)
    assert error_code(error) == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError):
        iot.describe_job(jobId=job_id)


def test_the_example_refuses_a_file_tampered_with_after_signing(
        api_bastion: ApiBastion, unique: Callable[[str], str], tmp_path: Path) -> None:
    api = api_bastion
    iot = api.client()
    firmware = os.urandom(30_000)
    file_name, _, signing_job = signed_firmware(api, unique, tmp_path, firmware)
    thing = unique("tampered")
    device = device_through_api(api, iot, thing, tmp_path / "device")
    update_id = unique("tampered")
    iot.create_ota_update(otaUpdateId=update_id, targets=[thing_arn(thing)],
                          files=[ota_file(file_name, {"awsSignerJobId": signing_job})],
                          roleArn=ROLE)
    # Someone replaces the file on the server after the update went out.
    evil = bytearray(firmware)
    evil[1000] ^= 0xFF
    upload(api, bytes(evil), file_name, tmp_path)
    installed = tmp_path / "installed"
    result = run_example(api, device, installed)
    assert result.returncode == 1, result.stdout + result.stderr
    assert not (installed / file_name).exists()
    execution = execution_of(api, f"AFR_OTA-{update_id}", thing)
    assert execution["status"] == "FAILED"
    assert "signature does not match" in execution["statusDetails"]["detailsMap"]["reason"]
    # And a new OTA update of the replaced file with the old signature is refused.
    with pytest.raises(ClientError) as error:
        iot.create_ota_update(otaUpdateId=unique("again"), targets=[thing_arn(thing)],
                              files=[ota_file(file_name, {"awsSignerJobId": signing_job})],
                              roleArn=ROLE)
    assert error_code(error) == ("InvalidRequestException", 400)


def test_the_example_refuses_a_signature_revoked_after_the_update(
        api_bastion: ApiBastion, unique: Callable[[str], str], tmp_path: Path) -> None:
    """The update went out signed; then the signature is revoked (RevokeSignature).
    Bastion cancels the update's job: a device that had not started it gets nothing. One
    that had (its execution stays IN_PROGRESS, as AWS's CancelJob leaves it, and its URL
    still serves the file) asks AWS Signer's GetRevocationStatus, with credentials it
    gets for its own certificate from the credentials provider, before installing — and
    refuses."""
    api = api_bastion
    iot, signer = api.client(), api.client("signer")
    thing = unique("revoked")
    device = device_through_api(api, iot, thing, tmp_path / "device")
    alias = revocation_alias(api, unique)
    # A signature not revoked passes the check: the device installs it.
    good = os.urandom(8_000)
    good_name, _, good_job = signed_firmware(api, unique, tmp_path, good)
    first = unique("not-revoked")
    iot.create_ota_update(otaUpdateId=first, targets=[thing_arn(thing)], roleArn=ROLE,
                          files=[ota_file(good_name, {"awsSignerJobId": good_job})])
    installed = tmp_path / "installed"
    result = run_example(api, device, installed, None, *revocation_arguments(api, alias))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (installed / good_name).read_bytes() == good

    firmware = os.urandom(25_000)
    file_name, profile, signing_job = signed_firmware(api, unique, tmp_path, firmware)
    late = unique("late")
    late_device = device_through_api(api, iot, late, tmp_path / "late")
    update_id = unique("revoked")
    job_id = f"AFR_OTA-{update_id}"
    iot.create_ota_update(otaUpdateId=update_id, targets=[thing_arn(thing), thing_arn(late)],
                          roleArn=ROLE,
                          files=[ota_file(file_name, {"awsSignerJobId": signing_job})])
    # The job document names what GetRevocationStatus asks about.
    document = json.loads(iot.get_job_document(jobId=f"AFR_OTA-{update_id}")["document"])
    [entry] = document["afr_ota"]["files"]
    version = signer.get_signing_profile(profileName=profile)["profileVersionArn"]
    assert entry["x-bastion-signing-job-arn"] == \
        f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-jobs/{signing_job}"
    assert entry["x-bastion-signing-profile-version-arn"] == version
    signed_at = signer.describe_signing_job(jobId=signing_job)["createdAt"]
    assert abs(datetime.fromisoformat(entry["x-bastion-signed-at"]) - signed_at) \
        < timedelta(seconds=1)

    assert start_execution(api, device) == job_id  # the device starts, and goes away

    signer.revoke_signature(jobId=signing_job, reason="leaked build")
    job = iot.describe_job(jobId=job_id)["job"]
    assert (job["status"], job["reasonCode"]) == ("CANCELED", "SIGNATURE_REVOKED")
    assert execution_of(api, job_id, late)["status"] == "CANCELED"
    result = run_example(api, late_device, tmp_path / "late-installed", None,
                         "--timeout", "2")
    assert result.returncode == 2, result.stdout + result.stderr  # no job for it

    result = run_example(api, device, installed, None, *revocation_arguments(api, alias))
    assert result.returncode == 1, result.stdout + result.stderr
    assert not (installed / file_name).exists()
    execution = execution_of(api, job_id, thing)
    assert execution["status"] == "FAILED"
    assert execution["statusDetails"]["detailsMap"]["reason"] == \
        f"the signature is revoked (signing job {signing_job})"


def test_the_example_refuses_what_it_cannot_check_for_revocation(
        api_bastion: ApiBastion, unique: Callable[[str], str], tmp_path: Path) -> None:
    """Fail closed: no credentials (a role alias that does not exist), no answer about
    revocation, no install."""
    api = api_bastion
    iot = api.client()
    firmware = os.urandom(4_000)
    file_name, _, signing_job = signed_firmware(api, unique, tmp_path, firmware)
    thing = unique("unchecked")
    device = device_through_api(api, iot, thing, tmp_path / "device")
    update_id = unique("unchecked")
    iot.create_ota_update(otaUpdateId=update_id, targets=[thing_arn(thing)], roleArn=ROLE,
                          files=[ota_file(file_name, {"awsSignerJobId": signing_job})])
    installed = tmp_path / "installed"
    result = run_example(api, device, installed, None,
                         *revocation_arguments(api, unique("no-such-alias")))
    assert result.returncode == 1, result.stdout + result.stderr
    assert not (installed / file_name).exists()
    reason = execution_of(api, f"AFR_OTA-{update_id}", thing)["statusDetails"]["detailsMap"][
        "reason"]
    assert reason.startswith("could not check the signature's revocation"), reason


def _foreign_signature(data: bytes) -> tuple[bytes, str]:
    """A valid signature of ``data`` under a certificate of another code-signing CA."""
    ca_cert, ca_key = create_code_signing_ca("Someone Else's CA")
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = issue(ca_cert, ca_key, common_name="impostor", public_key=key.public_key())
    return key.sign(data, ec.ECDSA(hashes.SHA256())), cert_to_pem(certificate).decode()


def test_the_example_trusts_only_the_pinned_code_signing_ca(
        api_bastion: ApiBastion, unique: Callable[[str], str], tmp_path: Path) -> None:
    api = api_bastion
    iot = api.client()
    firmware = os.urandom(10_000)
    file_name = unique("custom") + ".bin"
    upload(api, firmware, file_name, tmp_path)
    signature, certificate_pem = _foreign_signature(firmware)
    thing = unique("custom")
    device = device_through_api(api, iot, thing, tmp_path / "device")
    custom = {"customCodeSigning": {
        "signature": {"inlineDocument": signature},
        "certificateChain": {"certificateName": "/certs/impostor.pem",
                             "inlineDocument": certificate_pem},
        "hashAlgorithm": "SHA256", "signatureAlgorithm": "ECDSA"}}
    # Bastion checks that a custom signature verifies the file…
    bad = dict(custom["customCodeSigning"], signature={"inlineDocument": signature[:-2] + b"00"})
    with pytest.raises(ClientError) as error:
        iot.create_ota_update(otaUpdateId=unique("bad"), targets=[thing_arn(thing)],
                              files=[ota_file(file_name, {"customCodeSigning": bad})],
                              roleArn=ROLE)
    assert error_code(error) == ("InvalidRequestException", 400)
    # …but whether to trust its certificate is the device's call, against its pinned CA.
    update_id = unique("custom")
    iot.create_ota_update(otaUpdateId=update_id, targets=[thing_arn(thing)],
                          files=[ota_file(file_name, custom)], roleArn=ROLE)
    info = iot.get_ota_update(otaUpdateId=update_id)["otaUpdateInfo"]
    assert info["otaUpdateFiles"][0]["codeSigning"]["customCodeSigning"]["signature"] == {
        "inlineDocument": signature}
    result = run_example(api, device, tmp_path / "installed")
    assert result.returncode == 1, result.stdout + result.stderr
    execution = execution_of(api, f"AFR_OTA-{update_id}", thing)
    assert execution["status"] == "FAILED"
    assert "not issued by the pinned code-signing CA" in \
        execution["statusDetails"]["detailsMap"]["reason"]


def test_revoked_signatures_and_canceled_profiles_make_no_update(
        api_bastion: ApiBastion, unique: Callable[[str], str], tmp_path: Path) -> None:
    api = api_bastion
    iot, signer = api.client(), api.client("signer")
    thing = unique("refused")
    iot.create_thing(thingName=thing)
    file_name, _, revoked_job = signed_firmware(api, unique, tmp_path, b"one")
    signer.revoke_signature(jobId=revoked_job, reason="leaked build")
    other_file, other_profile, canceled_job = signed_firmware(api, unique, tmp_path, b"two")
    signer.cancel_signing_profile(profileName=other_profile)
    cases = [
        ([ota_file(file_name, {"awsSignerJobId": revoked_job})], None, "revoked"),
        ([ota_file(other_file, {"awsSignerJobId": canceled_job})], None, "Canceled"),
        ([ota_file(other_file, {"startSigningJobParameter": {
            "signingProfileName": other_profile}})], None, "Canceled"),
        ([ota_file(file_name, {})], None, "signed files only"),
        ([ota_file(file_name, {"awsSignerJobId": str(uuid.uuid4())})], None, "does not exist"),
        ([ota_file(other_file, {"awsSignerJobId": canceled_job})], ["MQTT"], "Canceled"),
        ([ota_file(file_name, {"awsSignerJobId": revoked_job})], ["HTTP", "HTTP"],
         "protocols must be"),
    ]
    for files, protocols, message in cases:
        update_id = unique("refused")
        extra = {} if protocols is None else {"protocols": protocols}
        with pytest.raises(ClientError) as error:
            iot.create_ota_update(otaUpdateId=update_id, targets=[thing_arn(thing)],
                                  files=files, roleArn=ROLE, **extra)
        assert error.value.response["Error"]["Code"] in (
            "InvalidRequestException", "ResourceNotFoundException"), message
        assert message in error.value.response["Error"]["Message"]
        with pytest.raises(ClientError):
            iot.get_ota_update(otaUpdateId=update_id)
        with pytest.raises(ClientError):
            iot.describe_job(jobId=f"AFR_OTA-{update_id}")


def test_sign_at_creation_and_the_auditor(api_bastion: ApiBastion,
                                          unique: Callable[[str], str],
                                          tmp_path: Path) -> None:
    """startSigningJobParameter makes the profile and signs at creation; the auditor may
    read OTA updates but not create one."""
    api = api_bastion
    iot = api.client()
    firmware = os.urandom(2048)
    file_name = unique("atonce") + ".bin"
    upload(api, firmware, file_name, tmp_path)
    thing = unique("atonce")
    iot.create_thing(thingName=thing)
    profile = unique("atonce").replace("-", "_")
    files = [ota_file(file_name, {"startSigningJobParameter": {
        "signingProfileName": profile,
        "signingProfileParameter": {"platform": PLATFORM,
                                    "certificatePathOnDevice": "/certs/atonce.pem"},
        "destination": {"s3Destination": {"bucket": "firmware", "prefix": "atonce-"}}}})]
    auditor = api.client("iot", "auditor")
    with pytest.raises(ClientError) as error:
        auditor.create_ota_update(otaUpdateId=unique("audit"), targets=[thing_arn(thing)],
                                  files=files, roleArn=ROLE)
    assert error_code(error) == ("AccessDeniedException", 403)
    update_id = unique("atonce")
    iot.create_ota_update(otaUpdateId=update_id, targets=[thing_arn(thing)], files=files,
                          roleArn=ROLE)
    assert auditor.get_ota_update(otaUpdateId=update_id)["otaUpdateInfo"][
        "otaUpdateStatus"] == "CREATE_COMPLETE"
    document = json.loads(iot.get_job_document(jobId=f"AFR_OTA-{update_id}")["document"])
    [entry] = document["afr_ota"]["files"]
    assert entry["certfile"] == "/certs/atonce.pem"
    certificate = load_pem_certificate(entry["x-bastion-certificate"])
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == profile
    certificate.public_key().verify(  # type: ignore[call-arg, union-attr]
        base64.b64decode(entry["sig-sha256-ecdsa"]), firmware, ec.ECDSA(hashes.SHA256()))
    assert api.client("signer").get_signing_profile(profileName=profile)["status"] == "Active"
    # Deleting the update without forceDeleteAWSJob leaves its job.
    iot.delete_ota_update(otaUpdateId=update_id)
    assert iot.describe_job(jobId=f"AFR_OTA-{update_id}")["job"]["jobId"]
