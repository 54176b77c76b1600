"""AWS Signer's SignPayload and GetRevocationStatus through boto3 against a running
Bastion: a payload signed with a profile's sealed key (recorded as a signing job, its
certificate chained to the code-signing CA), refused for a canceled profile and for the
auditor; revocation reported for a revoked signature and for signatures made after a
profile's revocation took effect — and not before."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from bastion.pki import load_pem_certificate

from .conftest import ACCOUNT, KEYS, NO_RETRIES, REGION, ApiBastion
from .test_signing import PLATFORM, code_signing_ca, error_code


def revocations(api: ApiBastion) -> Any:
    """A ``signer`` client that reaches GetRevocationStatus (no ``data-`` host prefix)."""
    key_id, secret = KEYS["admin"]
    return boto3.client("signer", endpoint_url=api.url, region_name=REGION,
                        aws_access_key_id=key_id, aws_secret_access_key=secret,
                        verify=api.verify,
                        config=NO_RETRIES.merge(BotoConfig(inject_host_prefix=False)))


def job_arn(job_id: str) -> str:
    return f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-jobs/{job_id}"


def test_sign_payload_with_a_profiles_key(api_bastion: ApiBastion,
                                          unique: Callable[[str], str]) -> None:
    signer = api_bastion.client("signer")
    profile = unique("payload").replace("-", "_")
    signer.put_signing_profile(profileName=profile, platformId=PLATFORM)
    payload = b'{"targetArtifact": {"digest": "sha256:9f2c"}}'
    signed = signer.sign_payload(profileName=profile, payload=payload,
                                 payloadFormat="application/json")
    metadata = signed["metadata"]
    assert metadata["signatureAlgorithm"] == "SHA256withECDSA"
    certificate = load_pem_certificate(metadata["certificate"])
    certificate.verify_directly_issued_by(code_signing_ca(api_bastion))
    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(signed["signature"], payload, ec.ECDSA(hashes.SHA256()))
    job = signer.describe_signing_job(jobId=signed["jobId"])
    assert job["status"] == "Succeeded" and job["profileName"] == profile
    assert job["source"] == {} and job["jobOwner"] == ACCOUNT

    auditor = api_bastion.client("signer", "auditor")
    with pytest.raises(ClientError) as error:
        auditor.sign_payload(profileName=profile, payload=payload, payloadFormat="json")
    assert error_code(error) == ("AccessDeniedException", 403)
    with pytest.raises(ClientError) as error:
        signer.sign_payload(profileName=unique("none").replace("-", "_"), payload=payload,
                            payloadFormat="json")
    assert error_code(error) == ("ResourceNotFoundException", 404)
    signer.cancel_signing_profile(profileName=profile)
    with pytest.raises(ClientError) as error:
        signer.sign_payload(profileName=profile, payload=payload, payloadFormat="json")
    assert error_code(error) == ("ValidationException", 400)


def test_revocation_status_of_signatures_and_profiles(api_bastion: ApiBastion,
                                                      unique: Callable[[str], str]) -> None:
    signer = api_bastion.client("signer")
    status = revocations(api_bastion)
    profile = unique("revoked").replace("-", "_")
    made = signer.put_signing_profile(profileName=profile, platformId=PLATFORM)
    version_arn = made["profileVersionArn"]
    first = signer.sign_payload(profileName=profile, payload=b"one", payloadFormat="raw")
    second = signer.sign_payload(profileName=profile, payload=b"two", payloadFormat="raw")
    now = datetime.now(UTC)

    def revoked(job_id: str, at: datetime) -> list[str]:
        answer = status.get_revocation_status(
            signatureTimestamp=at, platformId=PLATFORM, profileVersionArn=version_arn,
            jobArn=job_arn(job_id), certificateHashes=["00" * 32])
        return list(answer["revokedEntities"])

    assert revoked(first["jobId"], now) == []
    signer.revoke_signature(jobId=first["jobId"], reason="leaked build")
    assert revoked(first["jobId"], now) == [job_arn(first["jobId"])]
    assert revoked(second["jobId"], now) == []
    # The profile revoked from an hour ago: signatures since then are revoked, older ones
    # are not.
    signer.revoke_signing_profile(profileName=profile, profileVersion=made["profileVersion"],
                                  reason="key compromised",
                                  effectiveTime=now - timedelta(hours=1))
    assert revoked(second["jobId"], now) == [version_arn]
    assert revoked(second["jobId"], now - timedelta(hours=2)) == []
    for bad in ({"platformId": "AWSLambda-SHA384-ECDSA"},
                {"jobArn": f"arn:aws:iot:{REGION}:{ACCOUNT}:job/x"},
                {"profileVersionArn": f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/p"}):
        arguments: dict[str, Any] = {
            "signatureTimestamp": now, "platformId": PLATFORM,
            "profileVersionArn": version_arn, "jobArn": job_arn(second["jobId"]),
            "certificateHashes": ["00" * 32]}
        arguments.update(bad)
        with pytest.raises(ClientError) as error:
            status.get_revocation_status(**arguments)
        assert error_code(error) == ("ValidationException", 400), bad
