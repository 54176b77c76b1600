"""Revocation checks against the CRLs operators register (see :mod:`.._crl`):

* REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK — a device certificate on its CA's CRL
  is still ACTIVE in Bastion;
* REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK — a registered CA certificate on its
  issuer's CRL is still ACTIVE;
* INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK — device certificates are
  ACTIVE although the intermediate CA that issued them is on *its* issuer's CRL (one
  finding per device certificate, the intermediate as the related issuer certificate).
"""

from __future__ import annotations

from cryptography import x509

from .._catalog import CERTIFICATE_REVOKED_BY_ISSUER, INTERMEDIATE_CA_REVOKED_BY_ISSUER
from .._model import FindingDraft, Resource, ResourceIdentifier, ResourceType
from ._base import LIVE_STATUSES, CheckContext, CheckOutcome


def _load(pem: str) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return None


def revoked_device_certificate_still_active(ctx: CheckContext) -> CheckOutcome:
    index = ctx.fleet.revocations()
    findings: list[FindingDraft] = []
    total = 0
    for ca_id in index.issuer_ids:
        for row in ctx.fleet.certificates_of_ca(ca_id, LIVE_STATUSES):
            total += 1
            cert = _load(row.certificate_pem)
            if cert is None or not index.revoked_by(ca_id, cert.serial_number):
                continue
            findings.append(FindingDraft(
                Resource(ResourceType.DEVICE_CERTIFICATE,
                         ResourceIdentifier.device_certificate(row.certificate_id),
                         {"SERIAL_NUMBER": format(cert.serial_number, "x"),
                          "ISSUER_CA_CERTIFICATE_ID": ca_id}),
                CERTIFICATE_REVOKED_BY_ISSUER,
                f"Certificate was revoked by its issuing CA but its status is {row.status}.",
                (Resource(ResourceType.CA_CERTIFICATE,
                          ResourceIdentifier.ca_certificate(ca_id)),)))
    return CheckOutcome(total, findings)


def revoked_ca_certificate_still_active(ctx: CheckContext) -> CheckOutcome:
    index = ctx.fleet.revocations()
    findings: list[FindingDraft] = []
    total = 0
    for ca in ctx.fleet.ca_certificates():
        if ca.status not in LIVE_STATUSES:
            continue
        total += 1
        cert = _load(ca.certificate_pem)
        issuer = None if cert is None or not index else index.issuer_revoking(cert)
        if cert is None or issuer is None:
            continue
        findings.append(FindingDraft(
            Resource(ResourceType.CA_CERTIFICATE,
                     ResourceIdentifier.ca_certificate(ca.ca_certificate_id),
                     {"SERIAL_NUMBER": format(cert.serial_number, "x"),
                      "ISSUER": issuer.issuer.subject.rfc4514_string()}),
            CERTIFICATE_REVOKED_BY_ISSUER,
            f"CA certificate was revoked by its issuer but its status is {ca.status}."))
    return CheckOutcome(total, findings)


def intermediate_ca_revoked_for_active_device_certificates(ctx: CheckContext) -> CheckOutcome:
    index = ctx.fleet.revocations()
    findings: list[FindingDraft] = []
    if not index:
        return CheckOutcome(ctx.fleet.certificate_count(), findings)
    for ca in ctx.fleet.ca_certificates():
        cert = _load(ca.certificate_pem)
        if cert is None or cert.issuer == cert.subject:
            continue  # a root is nobody's intermediate
        issuer = index.issuer_revoking(cert)
        if issuer is None:
            continue
        serial = format(cert.serial_number, "x")
        subject = cert.subject.rfc4514_string()
        related = (
            Resource(ResourceType.ISSUER_CERTIFICATE,
                     ResourceIdentifier.issuer_certificate(subject, ca.ca_certificate_id,
                                                           serial),
                     {"REVOKED_BY": issuer.issuer.subject.rfc4514_string()}),
            Resource(ResourceType.CA_CERTIFICATE,
                     ResourceIdentifier.ca_certificate(ca.ca_certificate_id)),
        )
        for row in ctx.fleet.certificates_of_ca(ca.ca_certificate_id, LIVE_STATUSES):
            findings.append(FindingDraft(
                Resource(ResourceType.DEVICE_CERTIFICATE,
                         ResourceIdentifier.device_certificate(row.certificate_id)),
                INTERMEDIATE_CA_REVOKED_BY_ISSUER,
                f"Device certificate is {row.status} although its intermediate CA "
                f"({subject}, serial {serial}) was revoked by its issuer.", related))
    return CheckOutcome(ctx.fleet.certificate_count(), findings)
