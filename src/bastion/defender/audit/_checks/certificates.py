"""Certificate lifetime checks: device and CA certificates expiring, device certificates
past an age threshold, and (Bastion's own) certificates attached to several things."""

from __future__ import annotations

from datetime import datetime, timedelta

from .._catalog import (
    CERTIFICATE_APPROACHING_EXPIRATION,
    CERTIFICATE_ATTACHED_TO_MULTIPLE_THINGS,
    CERTIFICATE_PAST_AGE_THRESHOLD,
    CERTIFICATE_PAST_EXPIRATION,
)
from .._model import ConfigName, FindingDraft, Resource, ResourceIdentifier, ResourceType
from ._base import LIVE_STATUSES, CheckContext, CheckOutcome, epoch_ms

CA_EXPIRY_WINDOW = timedelta(days=30)


def device_certificate_expiring(ctx: CheckContext) -> CheckOutcome:
    """ACTIVE/PENDING_TRANSFER device certificates that expire within
    ``CERT_EXPIRATION_THRESHOLD_IN_DAYS`` (default 30) or have expired — or within the
    rotate-before-expiry window of the rotation policy that governs them
    (:mod:`bastion.rotation`), when one does."""
    audit_days = ctx.threshold(ConfigName.CERT_EXPIRATION_THRESHOLD_IN_DAYS)
    limits = ctx.fleet.certificate_limits()
    findings: list[FindingDraft] = []
    total = 0
    for ident, status, _not_before, not_after, _created in ctx.fleet.certificate_validities():
        if status not in LIVE_STATUSES:
            continue
        total += 1
        window, source = limits.expiry_window(ident, audit_days)
        finding = _expiry(ctx, ResourceType.DEVICE_CERTIFICATE,
                          ResourceIdentifier.device_certificate(ident), not_after, window,
                          "Device certificate", source)
        if finding is not None:
            findings.append(finding)
    return CheckOutcome(total, findings)


def ca_certificate_expiring(ctx: CheckContext) -> CheckOutcome:
    """ACTIVE CA certificates that expire within 30 days or have expired."""
    findings: list[FindingDraft] = []
    total = 0
    for ca in ctx.fleet.ca_certificates():
        if ca.status not in LIVE_STATUSES:
            continue
        total += 1
        finding = _expiry(ctx, ResourceType.CA_CERTIFICATE,
                          ResourceIdentifier.ca_certificate(ca.ca_certificate_id), ca.not_after,
                          CA_EXPIRY_WINDOW, "CA certificate")
        if finding is not None:
            findings.append(finding)
    return CheckOutcome(total, findings)


def _expiry(ctx: CheckContext, kind: ResourceType, ident: ResourceIdentifier,
            not_after: datetime, window: timedelta, what: str,
            source: str = "") -> FindingDraft | None:
    info = {"EXPIRATION_TIME": epoch_ms(not_after)}
    if source:
        info["ROTATION_POLICY"] = source
    if not_after <= ctx.now:
        return FindingDraft(Resource(kind, ident, info), CERTIFICATE_PAST_EXPIRATION,
                            f"{what} has expired.")
    if not_after - ctx.now <= window:
        return FindingDraft(Resource(kind, ident, info), CERTIFICATE_APPROACHING_EXPIRATION,
                            f"{what} is expiring within {window.days} days"
                            + (f" (the rotation policy of {source})." if source else "."))
    return None


def device_certificate_age(ctx: CheckContext) -> CheckOutcome:
    """ACTIVE/PENDING_TRANSFER device certificates created more than
    ``CERT_AGE_THRESHOLD_IN_DAYS`` (default 365) ago — or more than the maximum age of
    the rotation policy that governs them (:mod:`bastion.rotation`), when one does."""
    audit_days = ctx.threshold(ConfigName.CERT_AGE_THRESHOLD_IN_DAYS)
    limits = ctx.fleet.certificate_limits()
    findings: list[FindingDraft] = []
    total = 0
    for ident, status, _not_before, _not_after, created in ctx.fleet.certificate_validities():
        if status not in LIVE_STATUSES:
            continue
        total += 1
        threshold, source = limits.max_age(ident, audit_days)
        age = ctx.now - created
        if age >= threshold:
            info = {"CREATION_TIME": epoch_ms(created), "AGE_IN_DAYS": str(age.days)}
            if source:
                info["ROTATION_POLICY"] = source
            findings.append(FindingDraft(
                Resource(ResourceType.DEVICE_CERTIFICATE,
                         ResourceIdentifier.device_certificate(ident), info),
                CERTIFICATE_PAST_AGE_THRESHOLD,
                f"Certificate has been active for {age.days} days, which exceeds the "
                f"threshold of {threshold.days} days"
                + (f" (the rotation policy of {source})." if source else ".")))
    return CheckOutcome(total, findings)


def certificate_on_several_things(ctx: CheckContext) -> CheckOutcome:
    """Device certificates attached to more than one thing (Bastion's check): one
    identity serving several devices defeats per-device policies and revocation."""
    shared = ctx.fleet.certificates_on_several_things()
    findings = [
        FindingDraft(
            Resource(ResourceType.DEVICE_CERTIFICATE, ResourceIdentifier.device_certificate(cid),
                     {"THING_NAMES": ",".join(things), "THING_COUNT": str(len(things))}),
            CERTIFICATE_ATTACHED_TO_MULTIPLE_THINGS,
            f"Certificate is attached to {len(things)} things: {', '.join(things[:10])}"
            + ("…" if len(things) > 10 else "") + ".")
        for cid, things in sorted(shared.items())
    ]
    return CheckOutcome(ctx.fleet.certificate_count(), findings)
