"""Code signing over HTTPS: AWS Signer (``signer``) through its own model.

Every handler calls the :class:`~bastion.signing.SigningService`; its
:class:`~bastion.signing.SigningError` escapes to the application, which answers the AWS
error. No answer carries key material: a profile names its certificate by ARN, a job its
signed object by file name.

``profileOwner`` and ``jobOwner`` may only name this account (there is one per Bastion).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bastion.signing import (
    PLATFORMS,
    SigningJob,
    SigningProfile,
    SigningService,
    ValidationError,
    get_platform,
)

from .._context import OperationContext
from ._common import page
from ._table import TABLE, Handler, Params, Result

SIGNER = "signer"


def _service(ctx: OperationContext) -> SigningService:
    return ctx.gateway.services.signing


def _signer(operation: str) -> Callable[[Handler], Handler]:
    return TABLE.register(SIGNER, operation)


def _check_owner(ctx: OperationContext, params: Params, name: str) -> None:
    owner = params.get(name)
    if owner is not None and owner != _service(ctx).account.account_id:
        raise ValidationError(f"{name} {owner} is not this Bastion's account")


# -- platforms ------------------------------------------------------------------------------


@_signer("ListSigningPlatforms")
def list_signing_platforms(ctx: OperationContext, params: Params) -> Result:
    found = [platform.to_json() for platform in PLATFORMS.values()
             if params.get("category") in (None, platform.category)
             and params.get("partner") in (None, platform.partner)
             and params.get("target") in (None, platform.target)]
    return {"platforms": found}


@_signer("GetSigningPlatform")
def get_signing_platform(ctx: OperationContext, params: Params) -> Result:
    return get_platform(params["platformId"]).to_json()


# -- profiles -------------------------------------------------------------------------------


def _profile_json(profile: SigningProfile) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "profileName": profile.name, "profileVersion": profile.profile_version,
        "profileVersionArn": profile.profile_version_arn,
        "signingMaterial": {"certificateArn": profile.certificate_arn},
        "platformId": profile.platform_id, "platformDisplayName": profile.platform_display_name,
        "signatureValidityPeriod": {"value": profile.validity_value,
                                    "type": profile.validity_type},
        "signingParameters": dict(profile.signing_parameters),
        "status": profile.status.value, "arn": profile.arn, "tags": dict(profile.tags)}
    if profile.overrides:
        answer["overrides"] = dict(profile.overrides)
    return answer


@_signer("PutSigningProfile")
def put_signing_profile(ctx: OperationContext, params: Params) -> Result:
    material = params.get("signingMaterial")
    profile = _service(ctx).put_profile(
        params["profileName"], platform_id=params["platformId"],
        certificate_arn=None if material is None else material["certificateArn"],
        signature_validity=params.get("signatureValidityPeriod"),
        overrides=params.get("overrides"), signing_parameters=params.get("signingParameters"),
        tags=params.get("tags"))
    return {"arn": profile.arn, "profileVersion": profile.profile_version,
            "profileVersionArn": profile.profile_version_arn}


@_signer("GetSigningProfile")
def get_signing_profile(ctx: OperationContext, params: Params) -> Result:
    _check_owner(ctx, params, "profileOwner")
    profile = _service(ctx).get_profile(params["profileName"])
    answer = _profile_json(profile)
    if profile.status_reason is not None:
        answer["statusReason"] = profile.status_reason
    if profile.revoked_at is not None:
        answer["revocationRecord"] = {
            "revocationEffectiveFrom": profile.revocation_effective_from,
            "revokedAt": profile.revoked_at, "revokedBy": profile.revoked_by}
    return answer


@_signer("ListSigningProfiles")
def list_signing_profiles(ctx: OperationContext, params: Params) -> Result:
    profiles, token = _service(ctx).list_profiles(
        include_canceled=bool(params.get("includeCanceled", False)),
        statuses=params.get("statuses"), platform_id=params.get("platformId"),
        max_results=params.get("maxResults"), next_token=params.get("nextToken"))
    return page("profiles", [_profile_json(profile) for profile in profiles], token)


@_signer("CancelSigningProfile")
def cancel_signing_profile(ctx: OperationContext, params: Params) -> Result:
    _service(ctx).cancel_profile(params["profileName"])
    return {}


@_signer("RevokeSigningProfile")
def revoke_signing_profile(ctx: OperationContext, params: Params) -> Result:
    _service(ctx).revoke_profile(
        params["profileName"], profile_version=params["profileVersion"],
        reason=params["reason"], effective_time=params["effectiveTime"],
        revoked_by=ctx.caller.access_key_id)
    ctx.gateway.services.ota.withdraw_revoked()  # OTA updates stop going out with it
    return {}


# -- jobs -----------------------------------------------------------------------------------


def _source(job: SigningJob) -> dict[str, Any]:
    if not job.source_key:  # a SignPayload job: no file
        return {}
    return {"s3": {"bucketName": job.source_bucket, "key": job.source_key,
                   "version": job.source_version}}


def _signed_object(job: SigningJob) -> dict[str, Any]:
    if job.signed_key is None:
        return {}
    return {"s3": {"bucketName": job.signed_bucket, "key": job.signed_key}}


@_signer("StartSigningJob")
def start_signing_job(ctx: OperationContext, params: Params) -> Result:
    _check_owner(ctx, params, "profileOwner")
    job = _service(ctx).start_job(
        source=params["source"], destination=params["destination"],
        profile_name=params["profileName"],
        client_request_token=params["clientRequestToken"],
        requested_by=ctx.caller.access_key_id)
    return {"jobId": job.job_id, "jobOwner": job.job_owner}


@_signer("DescribeSigningJob")
def describe_signing_job(ctx: OperationContext, params: Params) -> Result:
    job = _service(ctx).describe_job(params["jobId"])
    answer: dict[str, Any] = {
        "jobId": job.job_id, "source": _source(job),
        "signingMaterial": {"certificateArn": job.certificate_arn},
        "platformId": job.platform_id, "platformDisplayName": job.platform_display_name,
        "profileName": job.profile_name, "profileVersion": job.profile_version,
        "createdAt": job.created_at, "completedAt": job.completed_at,
        "signatureExpiresAt": job.signature_expires_at, "requestedBy": job.requested_by,
        "status": job.status.value, "statusReason": job.status_reason,
        "signedObject": _signed_object(job), "jobOwner": job.job_owner,
        "jobInvoker": job.job_owner}
    if job.revoked_at is not None:
        answer["revocationRecord"] = {"reason": job.revocation_reason,
                                      "revokedAt": job.revoked_at,
                                      "revokedBy": job.revoked_by}
    return answer


@_signer("ListSigningJobs")
def list_signing_jobs(ctx: OperationContext, params: Params) -> Result:
    _check_owner(ctx, params, "jobInvoker")
    jobs, token = _service(ctx).list_jobs(
        status=params.get("status"), platform_id=params.get("platformId"),
        requested_by=params.get("requestedBy"), is_revoked=params.get("isRevoked"),
        expires_before=params.get("signatureExpiresBefore"),
        expires_after=params.get("signatureExpiresAfter"),
        max_results=params.get("maxResults"), next_token=params.get("nextToken"))
    return page("jobs", [{
        "jobId": job.job_id, "source": _source(job), "signedObject": _signed_object(job),
        "signingMaterial": {"certificateArn": job.certificate_arn},
        "createdAt": job.created_at, "status": job.status.value,
        "isRevoked": job.is_revoked, "profileName": job.profile_name,
        "profileVersion": job.profile_version, "platformId": job.platform_id,
        "platformDisplayName": job.platform_display_name,
        "signatureExpiresAt": job.signature_expires_at, "jobOwner": job.job_owner,
        "jobInvoker": job.job_owner} for job in jobs], token)


@_signer("RevokeSignature")
def revoke_signature(ctx: OperationContext, params: Params) -> Result:
    _check_owner(ctx, params, "jobOwner")
    _service(ctx).revoke_signature(params["jobId"], reason=params["reason"],
                                   revoked_by=ctx.caller.access_key_id)
    ctx.gateway.services.ota.withdraw_revoked()  # OTA updates stop going out with it
    return {}


# -- SignPayload, GetRevocationStatus ---------------------------------------------------------


@_signer("SignPayload")
def sign_payload(ctx: OperationContext, params: Params) -> Result:
    _check_owner(ctx, params, "profileOwner")
    job, signature, metadata = _service(ctx).sign_payload(
        params["profileName"], params["payload"], params["payloadFormat"],
        requested_by=ctx.caller.access_key_id)
    return {"jobId": job.job_id, "jobOwner": job.job_owner, "metadata": metadata,
            "signature": signature}


@_signer("GetRevocationStatus")
def get_revocation_status(ctx: OperationContext, params: Params) -> Result:
    return {"revokedEntities": _service(ctx).revocation_status(
        signature_timestamp=params["signatureTimestamp"], platform_id=params["platformId"],
        profile_version_arn=params["profileVersionArn"], job_arn=params["jobArn"],
        certificate_hashes=params["certificateHashes"])}
