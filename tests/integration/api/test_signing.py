"""Code signing through boto3's ``signer`` client (SigV4) against a running Bastion:
platforms, profiles with keys generated in or imported into Bastion, signing jobs on
uploaded files, cancellation and revocation — and what must be refused: another
platform or algorithm, a file that is not the one meant, a canceled profile, the auditor
signing, a private key in any answer."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from typer.testing import CliRunner

from bastion.cli._app import app as cli
from bastion.pki import load_pem_certificate
from bastion.signing import check_code_signing_chain, verify_file_signature

from .conftest import ACCOUNT, REGION, ApiBastion

PLATFORM = "AmazonFreeRTOS-Default"


def upload(api: ApiBastion, data: bytes, name: str, tmp_path: Path) -> str:
    """``bastion files upload`` into the running Bastion's data directory; the SHA-256."""
    path = tmp_path / name
    path.write_bytes(data)
    result = CliRunner().invoke(cli, ["files", "upload", str(path), "--name", name,
                                      "--overwrite", "--data-dir", str(api.datadir.path)])
    assert result.exit_code == 0, result.output
    return hashlib.sha256(data).hexdigest()


def error_code(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = error.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def bodies(api_bastion: ApiBastion) -> Iterator[tuple[Callable[..., Any], list[bytes]]]:
    """Clients whose every raw answer body is kept, to search them."""
    kept: list[bytes] = []

    def keep(http_response: Any, **_: Any) -> None:
        kept.append(http_response.content)

    def client(service: str = "signer", role: str = "admin") -> Any:
        made = api_bastion.client(service, role)
        made.meta.events.register("after-call", keep)
        return made

    yield client, kept


def signed_object(api: ApiBastion, name: str) -> dict[str, Any]:
    return dict(json.loads((api.datadir.path / "files" / name).read_bytes()))


def code_signing_ca(api: ApiBastion) -> x509.Certificate:
    return load_pem_certificate((api.datadir.ca_dir / "code-signing-ca.cert.pem").read_bytes())


def test_platforms_are_ecdsa_p256_sha256_only(api_bastion: ApiBastion) -> None:
    signer = api_bastion.client("signer")
    [platform] = signer.list_signing_platforms()["platforms"]
    assert platform["platformId"] == PLATFORM
    configuration = platform["signingConfiguration"]
    assert configuration["encryptionAlgorithmOptions"] == {"allowedValues": ["ECDSA"],
                                                           "defaultValue": "ECDSA"}
    assert configuration["hashAlgorithmOptions"] == {"allowedValues": ["SHA256"],
                                                     "defaultValue": "SHA256"}
    described = signer.get_signing_platform(platformId=PLATFORM)
    assert described["category"] == "AWSIoT" and described["revocationSupported"]
    with pytest.raises(ClientError) as error:
        signer.get_signing_platform(platformId="AmazonFreeRTOS-TI-CC3220SF")
    assert error_code(error) == ("ResourceNotFoundException", 404)


@pytest.mark.parametrize(("platform", "overrides"), [
    ("AmazonFreeRTOS-TI-CC3220SF", None),       # SHA-1 / RSA on AWS
    ("AWSLambda-SHA384-ECDSA", None),
    (PLATFORM, {"signingConfiguration": {"encryptionAlgorithm": "RSA"}}),
    (PLATFORM, {"signingConfiguration": {"hashAlgorithm": "SHA1"}}),
], ids=["ti-rsa-sha1", "lambda-sha384", "override-rsa", "override-sha1"])
def test_a_platform_or_algorithm_other_than_ecdsa_p256_is_refused(
        api_bastion: ApiBastion, unique: Callable[[str], str], platform: str,
        overrides: dict[str, Any] | None) -> None:
    signer = api_bastion.client("signer")
    name = unique("refused").replace("-", "_")
    extra = {} if overrides is None else {"overrides": overrides}
    with pytest.raises(ClientError) as error:
        signer.put_signing_profile(profileName=name, platformId=platform, **extra)
    assert error_code(error) == ("ValidationException", 400)
    with pytest.raises(ClientError):
        signer.get_signing_profile(profileName=name)


def test_sign_a_file_with_a_key_generated_in_bastion(
        api_bastion: ApiBastion, unique: Callable[[str], str], tmp_path: Path,
        bodies: tuple[Callable[..., Any], list[bytes]]) -> None:
    client, kept = bodies
    signer = client()
    firmware = os.urandom(50_000)
    file_name = unique("firmware") + ".bin"
    digest = upload(api_bastion, firmware, file_name, tmp_path)
    name = unique("fw_profile").replace("-", "_")
    put = signer.put_signing_profile(profileName=name, platformId=PLATFORM,
                                     signingParameters={"certname": "/certs/signer.pem"},
                                     tags={"team": "firmware"})
    assert put["arn"] == f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/{name}"
    assert put["profileVersionArn"] == f"{put['arn']}/{put['profileVersion']}"
    profile = signer.get_signing_profile(profileName=name)
    assert profile["status"] == "Active" and profile["platformId"] == PLATFORM
    assert profile["signingMaterial"]["certificateArn"].startswith(
        f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/")
    assert profile["signingParameters"] == {"certname": "/certs/signer.pem"}
    assert profile["tags"] == {"team": "firmware"}
    assert profile["signatureValidityPeriod"] == {"value": 135, "type": "MONTHS"}
    assert name in [p["profileName"] for p in signer.list_signing_profiles()["profiles"]]

    token = str(uuid.uuid4())
    started = signer.start_signing_job(
        source={"s3": {"bucketName": "firmware", "key": file_name, "version": digest}},
        destination={"s3": {"bucketName": "signed", "prefix": "SignedImages/"}},
        profileName=name, clientRequestToken=token)
    assert started["jobOwner"] == ACCOUNT
    job = signer.describe_signing_job(jobId=started["jobId"])
    assert job["status"] == "Succeeded" and job["profileName"] == name
    assert job["source"]["s3"] == {"bucketName": "firmware", "key": file_name,
                                   "version": digest}
    assert job["signedObject"]["s3"] == {"bucketName": "signed",
                                         "key": f"SignedImages-{started['jobId']}"}
    assert job["signatureExpiresAt"] > job["createdAt"]
    # The same request token answers the same job.
    again = signer.start_signing_job(
        source={"s3": {"bucketName": "firmware", "key": file_name, "version": digest}},
        destination={"s3": {"bucketName": "signed"}}, profileName=name,
        clientRequestToken=token)
    assert again["jobId"] == started["jobId"]

    # The signed object: the signature verifies the file with the profile's certificate,
    # which the code-signing CA issued (for code signing) and the device CA did not.
    signed = signed_object(api_bastion, job["signedObject"]["s3"]["key"])
    assert signed["rawPayloadSize"] == len(firmware)
    certificate = load_pem_certificate(signed["certificate"])
    signature = base64.b64decode(signed["signature"])
    verify_file_signature(certificate, firmware, signature)
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert isinstance(public_key.curve, ec.SECP256R1)
    public_key.verify(signature, firmware, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public_key.verify(signature, firmware + b"\0", ec.ECDSA(hashes.SHA256()))
    ca = code_signing_ca(api_bastion)
    check_code_signing_chain(certificate, ca, datetime.now(UTC))
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CODE_SIGNING]
    device_ca = load_pem_certificate(api_bastion.datadir.ca_cert_path.read_bytes())
    assert device_ca.subject != ca.subject
    with pytest.raises((ValueError, InvalidSignature)):
        certificate.verify_directly_issued_by(device_ca)

    listed = signer.list_signing_jobs(requestedBy="AKIAADMIN0000000001")["jobs"]
    assert started["jobId"] in [j["jobId"] for j in listed]

    # No answer carries the private key: unseal it from the store (as only Bastion can)
    # and look for it, in every encoding, in every raw body the API sent.
    key = _private_key_of(api_bastion, profile["signingMaterial"]["certificateArn"])
    assert key.public_key() == public_key
    _assert_no_key_in(kept, key)


def _private_key_of(api: ApiBastion, certificate_arn: str) -> ec.EllipticCurvePrivateKey:
    from bastion.signing import _keys
    certificate_id = certificate_arn.rsplit("/", 1)[1]
    services = api.running.app.services
    with services.store.transaction(readonly=True) as uow:
        row = uow.signing.get_certificate(certificate_id)
    assert row is not None
    assert b"PRIVATE KEY" not in row.sealed_key
    return _keys._unseal(api.datadir.open_keystore(), row.sealed_key,
                         _keys._key_aad(certificate_id))


def _assert_no_key_in(kept: list[bytes], key: ec.EllipticCurvePrivateKey) -> None:
    scalar = key.private_numbers().private_value.to_bytes(32, "big")
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    needles = [scalar, scalar.hex().encode(), base64.b64encode(scalar), der,
               base64.b64encode(der), base64.b64encode(der)[:60], b"PRIVATE KEY"]
    assert kept
    for body in kept:
        for needle in needles:
            assert needle not in body


def test_sign_with_an_imported_key(api_bastion: ApiBastion, unique: Callable[[str], str],
                                   tmp_path: Path) -> None:
    signer = api_bastion.client("signer")
    key = ec.generate_private_key(ec.SECP256R1())
    key_path = tmp_path / "signing.key.pem"
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    data_dir = ["--data-dir", str(api_bastion.datadir.path)]
    imported = CliRunner().invoke(cli, ["signing", "import-key", str(key_path), *data_dir])
    assert imported.exit_code == 0, imported.output
    certificate_arn = imported.output.strip().splitlines()[-1]
    assert certificate_arn.startswith(f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/")
    rsa_path = tmp_path / "rsa.key.pem"
    rsa_path.write_bytes(rsa.generate_private_key(
        public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    refused = CliRunner().invoke(cli, ["signing", "import-key", str(rsa_path), *data_dir])
    assert refused.exit_code == 2 and "P-256" in refused.output
    ca = CliRunner().invoke(cli, ["signing", "ca", *data_dir])
    assert ca.exit_code == 0
    assert load_pem_certificate(ca.output) == code_signing_ca(api_bastion)

    name = unique("imported").replace("-", "_")
    signer.put_signing_profile(profileName=name, platformId=PLATFORM,
                               signingMaterial={"certificateArn": certificate_arn})
    assert signer.get_signing_profile(profileName=name)["signingMaterial"] == {
        "certificateArn": certificate_arn}
    firmware = os.urandom(4096)
    file_name = unique("imported") + ".bin"
    digest = upload(api_bastion, firmware, file_name, tmp_path)
    job_id = signer.start_signing_job(
        source={"s3": {"bucketName": "b", "key": file_name, "version": digest}},
        destination={"s3": {"bucketName": "b", "prefix": "signed-"}}, profileName=name,
        clientRequestToken=str(uuid.uuid4()))["jobId"]
    signed = signed_object(api_bastion, f"signed-{job_id}")
    key.public_key().verify(base64.b64decode(signed["signature"]), firmware,
                            ec.ECDSA(hashes.SHA256()))
    check_code_signing_chain(load_pem_certificate(signed["certificate"]),
                             code_signing_ca(api_bastion), datetime.now(UTC))

    with pytest.raises(ClientError) as error:
        signer.put_signing_profile(
            profileName=unique("nocert").replace("-", "_"), platformId=PLATFORM,
            signingMaterial={"certificateArn": f"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/"
                             f"{uuid.uuid4()}"})
    assert error_code(error) == ("ResourceNotFoundException", 404)


def test_what_is_signed_must_be_the_file_meant(api_bastion: ApiBastion,
                                               unique: Callable[[str], str],
                                               tmp_path: Path) -> None:
    signer = api_bastion.client("signer")
    name = unique("strict").replace("-", "_")
    signer.put_signing_profile(profileName=name, platformId=PLATFORM)
    file_name = unique("strict") + ".bin"
    digest = upload(api_bastion, b"version one", file_name, tmp_path)
    upload(api_bastion, b"version two", file_name, tmp_path)  # replaced since
    for source, expected in [
        ({"bucketName": "b", "key": file_name, "version": digest},
         ("ValidationException", 400)),
        ({"bucketName": "b", "key": file_name, "version": "latest"},
         ("ValidationException", 400)),
        ({"bucketName": "b", "key": "no-such-file.bin", "version": digest},
         ("ResourceNotFoundException", 404)),
        ({"bucketName": "b", "key": "../etc/passwd", "version": digest},
         ("ValidationException", 400)),
    ]:
        with pytest.raises(ClientError) as error:
            signer.start_signing_job(source={"s3": source}, destination={},
                                     profileName=name, clientRequestToken=str(uuid.uuid4()))
        assert error_code(error) == expected, source
    with pytest.raises(ClientError) as error:
        signer.start_signing_job(
            source={"s3": {"bucketName": "b", "key": file_name,
                           "version": hashlib.sha256(b"version two").hexdigest()}},
            destination={}, profileName="no_such_profile",
            clientRequestToken=str(uuid.uuid4()))
    assert error_code(error) == ("ResourceNotFoundException", 404)


def test_the_auditor_reads_but_cannot_sign(api_bastion: ApiBastion,
                                           unique: Callable[[str], str],
                                           tmp_path: Path) -> None:
    admin, auditor = api_bastion.client("signer"), api_bastion.client("signer", "auditor")
    name = unique("audited").replace("-", "_")
    admin.put_signing_profile(profileName=name, platformId=PLATFORM)
    file_name = unique("audited") + ".bin"
    digest = upload(api_bastion, b"firmware", file_name, tmp_path)
    assert auditor.get_signing_profile(profileName=name)["status"] == "Active"
    auditor.list_signing_jobs()
    refused = [
        lambda: auditor.start_signing_job(
            source={"s3": {"bucketName": "b", "key": file_name, "version": digest}},
            destination={}, profileName=name, clientRequestToken=str(uuid.uuid4())),
        lambda: auditor.put_signing_profile(profileName=name + "_2", platformId=PLATFORM),
        lambda: auditor.cancel_signing_profile(profileName=name),
    ]
    for call in refused:
        with pytest.raises(ClientError) as error:
            call()
        assert error_code(error) == ("AccessDeniedException", 403)
    assert admin.list_signing_jobs(requestedBy="AKIAAUDITOR00000001")["jobs"] == []
    assert admin.get_signing_profile(profileName=name)["status"] == "Active"


def test_cancel_and_revoke(api_bastion: ApiBastion, unique: Callable[[str], str],
                           tmp_path: Path) -> None:
    signer = api_bastion.client("signer")
    name = unique("cancel").replace("-", "_")
    signer.put_signing_profile(profileName=name, platformId=PLATFORM)
    file_name = unique("cancel") + ".bin"
    digest = upload(api_bastion, b"firmware", file_name, tmp_path)
    source = {"s3": {"bucketName": "b", "key": file_name, "version": digest}}
    job_id = signer.start_signing_job(source=source, destination={}, profileName=name,
                                      clientRequestToken=str(uuid.uuid4()))["jobId"]

    signer.revoke_signature(jobId=job_id, reason="key ceremony botched")
    job = signer.describe_signing_job(jobId=job_id)
    assert job["revocationRecord"]["reason"] == "key ceremony botched"
    assert job["revocationRecord"]["revokedBy"] == "AKIAADMIN0000000001"
    revoked = signer.list_signing_jobs(isRevoked=True)["jobs"]
    assert job_id in [j["jobId"] for j in revoked]
    assert all(j["isRevoked"] for j in revoked)
    with pytest.raises(ClientError) as error:
        signer.revoke_signature(jobId=job_id, reason="again")
    assert error_code(error) == ("ValidationException", 400)

    signer.cancel_signing_profile(profileName=name)
    assert signer.get_signing_profile(profileName=name)["status"] == "Canceled"
    assert name not in [p["profileName"] for p in signer.list_signing_profiles()["profiles"]]
    assert name in [p["profileName"] for p in
                    signer.list_signing_profiles(includeCanceled=True)["profiles"]]
    with pytest.raises(ClientError) as error:
        signer.start_signing_job(source=source, destination={}, profileName=name,
                                 clientRequestToken=str(uuid.uuid4()))
    assert error_code(error) == ("ValidationException", 400)
    with pytest.raises(ClientError) as error:  # a name is never reused
        signer.put_signing_profile(profileName=name, platformId=PLATFORM)
    assert error_code(error) == ("ConflictException", 409)

    other = unique("revoked").replace("-", "_")
    version = signer.put_signing_profile(profileName=other,
                                         platformId=PLATFORM)["profileVersion"]
    signer.revoke_signing_profile(profileName=other, profileVersion=version,
                                  reason="compromised", effectiveTime=datetime.now(UTC))
    described = signer.get_signing_profile(profileName=other)
    assert described["status"] == "Revoked" and described["statusReason"] == "compromised"
    assert "revokedAt" in described["revocationRecord"]
