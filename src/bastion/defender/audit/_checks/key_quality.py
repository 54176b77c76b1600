"""DEVICE_CERTIFICATE_KEY_QUALITY_CHECK and CA_CERTIFICATE_KEY_QUALITY_CHECK: weak or
compromised keys on certificates that can authenticate (see :mod:`.._keys`)."""

from __future__ import annotations

from .._model import FindingDraft, Resource, ResourceIdentifier, ResourceType
from ._base import LIVE_STATUSES, CheckContext, CheckOutcome

_POLL_EVERY = 1000


def device_certificate_key_quality(ctx: CheckContext) -> CheckOutcome:
    assessor = ctx.fleet.key_assessor()
    findings: list[FindingDraft] = []
    total = 0
    for row in ctx.fleet.certificates(LIVE_STATUSES):
        total += 1
        if total % _POLL_EVERY == 0 and ctx.canceled():
            break
        verdict = assessor.assess_pem(row.certificate_pem)
        if verdict is not None:
            findings.append(FindingDraft(
                Resource(ResourceType.DEVICE_CERTIFICATE,
                         ResourceIdentifier.device_certificate(row.certificate_id),
                         {"DETECTOR": verdict.detector}),
                verdict.reason_code, f"Device certificate key is vulnerable: {verdict.detail}."))
    return CheckOutcome(total, findings)


def ca_certificate_key_quality(ctx: CheckContext) -> CheckOutcome:
    assessor = ctx.fleet.key_assessor()
    findings: list[FindingDraft] = []
    total = 0
    for ca in ctx.fleet.ca_certificates():
        if ca.status not in LIVE_STATUSES:
            continue
        total += 1
        verdict = assessor.assess_pem(ca.certificate_pem)
        if verdict is not None:
            findings.append(FindingDraft(
                Resource(ResourceType.CA_CERTIFICATE,
                         ResourceIdentifier.ca_certificate(ca.ca_certificate_id),
                         {"DETECTOR": verdict.detector}),
                verdict.reason_code, f"CA certificate key is vulnerable: {verdict.detail}."))
    return CheckOutcome(total, findings)
