"""Signed OTA updates over MQTT streams, end to end: boto3 signs a firmware and creates an
OTA update with ``protocols=["MQTT"]``; Bastion makes the stream and names it in the job
document (``afr_ota.streamname``); ``examples/ota_mqtt_device.py`` — AWS's device SDK
over mutual TLS with the least-privilege device policy, its own code run here — reads
the file block by block, checks it against the pinned code-signing CA and installs it.
And it refuses, one test each: a file tampered with on the server, an unsigned file, a
file signed by another profile than the one it expects, a signature revoked after the
update went out (RevokeSignature, or its profile revoked from before it was made)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bastion.account import Account
from bastion.controlplane import device_policy_document
from support.clients import DeviceFiles
from support.examples import load_example

from .conftest import ACCOUNT, REGION, ApiBastion, device_through_api
from .test_ota import (
    ROLE,
    execution_of,
    ota_file,
    revocation_alias,
    revocation_arguments,
    signed_firmware,
    start_execution,
    thing_arn,
)
from .test_signing import error_code, upload

LEAST_PRIVILEGE = device_policy_document(Account(REGION, ACCOUNT))


def with_role_aliases(document: str) -> str:
    """``document`` that also lets the device trade its certificate for credentials."""
    policy = json.loads(document)
    policy["Statement"].append({
        "Effect": "Allow", "Action": "iot:AssumeRoleWithCertificate",
        "Resource": f"arn:aws:iot:{REGION}:{ACCOUNT}:rolealias/*"})
    return json.dumps(policy)


example = load_example("ota_mqtt_device.py")


def run_device(api: ApiBastion, device: DeviceFiles, install_dir: Path,
               *extra: str) -> int:
    """The example's ``main``, as a device would run it."""
    code: int = example.main([
        "--endpoint", "localhost", "--port", str(api.mqtt_port), "--thing", device.name,
        "--cert", str(device.cert), "--key", str(device.key),
        "--root-ca", str(api.datadir.ca_cert_path),
        "--code-signing-ca", str(api.datadir.ca_dir / "code-signing-ca.cert.pem"),
        "--install-dir", str(install_dir), "--timeout", "10", *extra])
    return code


def reason(api: ApiBastion, job_id: str, thing: str) -> str:
    execution = execution_of(api, job_id, thing)
    assert execution["status"] == "FAILED", execution
    return str(execution["statusDetails"]["detailsMap"]["reason"])


def ota_streams(api: ApiBastion, update_id: str) -> list[str]:
    """The streams Bastion made for an OTA update (by their description)."""
    return [stream["streamId"] for stream in api.client().list_streams()["streams"]
            if stream.get("description") == f"OTA update {update_id}"]


def test_an_ota_update_over_mqtt_streams_end_to_end(
        api_bastion: ApiBastion, unique: Callable[[str], str], tmp_path: Path) -> None:
    api = api_bastion
    iot = api.client()
    firmware = os.urandom(70_001)  # 18 blocks of 4 KB, the last one short
    file_name, profile, signing_job = signed_firmware(api, unique, tmp_path, firmware)
    thing = unique("mqtt-ota")
    device = device_through_api(api, iot, thing, tmp_path / "device", LEAST_PRIVILEGE)
    update_id = unique("mqtt")
    created = iot.create_ota_update(
        otaUpdateId=update_id, targets=[thing_arn(thing)], protocols=["MQTT"],
        files=[ota_file(file_name, {"awsSignerJobId": signing_job})], roleArn=ROLE)
    job_id = created["awsIotJobId"]
    [stream_id] = ota_streams(api, update_id)
    assert stream_id.startswith("AFR_OTA-") and len(stream_id) == 44
    stream = iot.describe_stream(streamId=stream_id)["streamInfo"]
    assert [(f["fileId"], f["s3Location"]["key"]) for f in stream["files"]] == [(0, file_name)]
    document = json.loads(iot.get_job_document(jobId=job_id)["document"])["afr_ota"]
    assert document["protocols"] == ["MQTT"] and document["streamname"] == stream_id
    [entry] = document["files"]
    assert entry["fileid"] == 0 and entry["filesize"] == len(firmware)
    assert "update_data_url" not in entry and "auth_scheme" not in entry

    installed = tmp_path / "installed"
    assert run_device(api, device, installed, "--signing-profile", profile) == 0
    assert (installed / file_name).read_bytes() == firmware
    execution = execution_of(api, job_id, thing)
    assert execution["status"] == "SUCCEEDED"
    assert execution["statusDetails"]["detailsMap"] == {"installed": file_name}

    iot.delete_ota_update(otaUpdateId=update_id, forceDeleteAWSJob=True, deleteStream=True)
    with pytest.raises(ClientError) as error:
        iot.describe_stream(streamId=stream_id)
    assert error_code(error) == ("ResourceNotFoundException", 404)


def test_both_protocols_and_no_stream_left_by_a_refused_update(
        api_bastion: ApiBastion, unique: Callable[[str], str], tmp_path: Path) -> None:
    api = api_bastion
    iot = api.client()
    file_name, _, signing_job = signed_firmware(api, unique, tmp_path, b"both ways")
    thing = unique("both")
    iot.create_thing(thingName=thing)
    update_id = unique("both")
    iot.create_ota_update(otaUpdateId=update_id, targets=[thing_arn(thing)],
                          protocols=["MQTT", "HTTP"], roleArn=ROLE,
                          files=[ota_file(file_name, {"awsSignerJobId": signing_job})])
    document = json.loads(iot.get_job_document(jobId=f"AFR_OTA-{update_id}")["document"])
    [stream_id] = ota_streams(api, update_id)
    assert document["afr_ota"]["streamname"] == stream_id
    assert "update_data_url" in document["afr_ota"]["files"][0]
    # The job is refused (no such target): the stream made for it goes too.
    refused = unique("refused")
    with pytest.raises(ClientError):
        iot.create_ota_update(otaUpdateId=refused, protocols=["MQTT"], roleArn=ROLE,
                              targets=[f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/{unique('no')}"],
                              files=[ota_file(file_name, {"awsSignerJobId": signing_job})])
    assert ota_streams(api, refused) == []
    # Without deleteStream, deleting the update leaves its stream.
    iot.delete_ota_update(otaUpdateId=update_id, forceDeleteAWSJob=True)
    assert iot.describe_stream(streamId=stream_id)["streamInfo"]["streamId"] == stream_id


def test_the_device_refuses_a_file_tampered_with_on_the_server(
        api_bastion: ApiBastion, unique: Callable[[str], str], tmp_path: Path) -> None:
    api = api_bastion
    iot = api.client()
    firmware = os.urandom(20_000)
    file_name, _, signing_job = signed_firmware(api, unique, tmp_path, firmware)
    thing = unique("tampered")
    device = device_through_api(api, iot, thing, tmp_path / "device", LEAST_PRIVILEGE)
    update_id = unique("tampered")
    iot.create_ota_update(otaUpdateId=update_id, targets=[thing_arn(thing)],
                          protocols=["MQTT"], roleArn=ROLE,
                          files=[ota_file(file_name, {"awsSignerJobId": signing_job})])
    # Someone changes the bytes on the server's disk, behind Bastion's back (same size:
    # the stream's record of the file still matches).
    stored = api.datadir.path / "files" / file_name
    evil = bytearray(stored.read_bytes())
    evil[12_345] ^= 0x01
    stored.write_bytes(bytes(evil))
    installed = tmp_path / "installed"
    assert run_device(api, device, installed) == 1
    assert not (installed / file_name).exists()
    assert "signature does not match" in reason(api, f"AFR_OTA-{update_id}", thing)


def test_the_device_refuses_an_unsigned_file(
        api_bastion: ApiBastion, unique: Callable[[str], str], tmp_path: Path) -> None:
    """Bastion's OTA updates are always signed; an operator who writes the job by hand
    (CreateStream, CreateJob with an ``afr_ota`` document) can still send an unsigned
    file — and the device refuses it."""
    api = api_bastion
    iot = api.client()
    firmware = os.urandom(5_000)
    file_name = unique("unsigned") + ".bin"
    upload(api, firmware, file_name, tmp_path)
    stream_id = unique("unsigned")
    iot.create_stream(streamId=stream_id, roleArn=ROLE, files=[
        {"fileId": 0, "s3Location": {"bucket": "firmware", "key": file_name}}])
    thing = unique("unsigned")
    device = device_through_api(api, iot, thing, tmp_path / "device", LEAST_PRIVILEGE)
    job_id = f"AFR_OTA-{uuid.uuid4().hex[:12]}"
    document: dict[str, Any] = {"afr_ota": {"protocols": ["MQTT"], "streamname": stream_id,
                                            "files": [{"filepath": f"/fw/{file_name}",
                                                       "filesize": len(firmware),
                                                       "fileid": 0,
                                                       "certfile": "/certs/none.pem"}]}}
    iot.create_job(jobId=job_id, targets=[thing_arn(thing)], document=json.dumps(document))
    installed = tmp_path / "installed"
    assert run_device(api, device, installed) == 1
    assert not (installed / file_name).exists()
    assert "not signed" in reason(api, job_id, thing)


def test_the_device_refuses_a_file_signed_by_another_profile(
        api_bastion: ApiBastion, unique: Callable[[str], str], tmp_path: Path) -> None:
    """Signed by Bastion's code-signing CA, but under a profile the device does not
    expect (a test build's profile, on a production device)."""
    api = api_bastion
    iot = api.client()
    firmware = os.urandom(9_000)
    file_name, _, signing_job = signed_firmware(api, unique, tmp_path, firmware)
    expected_profile = unique("prod").replace("-", "_")
    api.client("signer").put_signing_profile(profileName=expected_profile,
                                             platformId="AmazonFreeRTOS-Default")
    thing = unique("profiled")
    device = device_through_api(api, iot, thing, tmp_path / "device", LEAST_PRIVILEGE)
    update_id = unique("profiled")
    iot.create_ota_update(otaUpdateId=update_id, targets=[thing_arn(thing)],
                          protocols=["MQTT"], roleArn=ROLE,
                          files=[ota_file(file_name, {"awsSignerJobId": signing_job})])
    installed = tmp_path / "installed"
    assert run_device(api, device, installed, "--signing-profile", expected_profile) == 1
    assert not (installed / file_name).exists()
    assert "another signing profile" in reason(api, f"AFR_OTA-{update_id}", thing)


def test_the_device_refuses_a_revoked_signature(
        api_bastion: ApiBastion, unique: Callable[[str], str], tmp_path: Path) -> None:
    """The device had started the update when its signature was revoked (so Bastion's
    cancelation of the job leaves its execution, and the stream still serves): checked
    with AWS Signer's GetRevocationStatus (credentials from the credentials provider, for
    the device's own certificate) after the file came over the stream, a revoked signing
    job, and a profile revoked effective before the signature, are refused; so is a
    hand-written job naming no signing job to check."""
    api = api_bastion
    iot, signer = api.client(), api.client("signer")
    alias = revocation_alias(api, unique)
    policy = with_role_aliases(LEAST_PRIVILEGE)
    check = revocation_arguments(api, alias)

    firmware = os.urandom(15_000)
    file_name, _, signing_job = signed_firmware(api, unique, tmp_path, firmware)
    thing = unique("revoked")
    device = device_through_api(api, iot, thing, tmp_path / "device", policy)
    update_id = unique("revoked")
    iot.create_ota_update(otaUpdateId=update_id, targets=[thing_arn(thing)],
                          protocols=["MQTT"], roleArn=ROLE,
                          files=[ota_file(file_name, {"awsSignerJobId": signing_job})])
    # Another update, under another profile, to another device.
    other, profile, other_job = signed_firmware(api, unique, tmp_path, os.urandom(6_000))
    second = unique("profile")
    device_2 = device_through_api(api, iot, second, tmp_path / "device-2", policy)
    update_2 = unique("profile")
    iot.create_ota_update(otaUpdateId=update_2, targets=[thing_arn(second)],
                          protocols=["MQTT"], roleArn=ROLE,
                          files=[ota_file(other, {"awsSignerJobId": other_job})])
    assert start_execution(api, device) == f"AFR_OTA-{update_id}"
    assert start_execution(api, device_2) == f"AFR_OTA-{update_2}"

    signer.revoke_signature(jobId=signing_job, reason="leaked build")
    assert iot.describe_job(jobId=f"AFR_OTA-{update_id}")["job"]["status"] == "CANCELED"
    assert iot.describe_job(jobId=f"AFR_OTA-{update_2}")["job"]["status"] == "IN_PROGRESS"
    installed = tmp_path / "installed"
    assert run_device(api, device, installed, *check) == 1
    assert not (installed / file_name).exists()
    assert reason(api, f"AFR_OTA-{update_id}", thing) == \
        f"the signature is revoked (signing job {signing_job})"

    # The other profile revoked from an hour before: its signatures since are revoked.
    version = signer.get_signing_profile(profileName=profile)["profileVersion"]
    signer.revoke_signing_profile(profileName=profile, profileVersion=version,
                                  reason="key compromised",
                                  effectiveTime=datetime.now(UTC) - timedelta(hours=1))
    assert iot.describe_job(jobId=f"AFR_OTA-{update_2}")["job"]["status"] == "CANCELED"
    assert run_device(api, device_2, installed, *check) == 1
    assert not (installed / other).exists()
    refused = reason(api, f"AFR_OTA-{update_2}", second)
    assert refused.startswith(f"the signing profile version {profile}/{version} is revoked")

    # A job written by hand, with a good signature but no signing job named: the device
    # that checks revocation cannot, and refuses.
    plain, _, plain_job = signed_firmware(api, unique, tmp_path, os.urandom(3_000))
    stream_id = unique("by-hand")
    iot.create_stream(streamId=stream_id, roleArn=ROLE, files=[
        {"fileId": 0, "s3Location": {"bucket": "firmware", "key": plain}}])
    third = unique("by-hand")
    device_3 = device_through_api(api, iot, third, tmp_path / "device-3", policy)
    update_3 = unique("source")
    iot.create_ota_update(otaUpdateId=update_3, targets=[thing_arn(third)],
                          protocols=["MQTT"], roleArn=ROLE,
                          files=[ota_file(plain, {"awsSignerJobId": plain_job})])
    document = json.loads(iot.get_job_document(jobId=f"AFR_OTA-{update_3}")["document"])
    iot.delete_ota_update(otaUpdateId=update_3, forceDeleteAWSJob=True)
    [entry] = document["afr_ota"]["files"]
    for key in ("x-bastion-signing-job-arn", "x-bastion-signing-profile-version-arn",
                "x-bastion-signed-at"):
        del entry[key]
    document["afr_ota"]["streamname"] = stream_id
    job_id = f"AFR_OTA-{uuid.uuid4().hex[:12]}"
    iot.create_job(jobId=job_id, targets=[thing_arn(third)], document=json.dumps(document))
    assert run_device(api, device_3, installed, *check) == 1
    assert "no signing job to check" in reason(api, job_id, third)
    assert not (installed / plain).exists()
