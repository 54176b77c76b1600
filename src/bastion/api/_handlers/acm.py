"""The ACM analog through ACM's own model (``acm``, JSON protocol): ImportCertificate,
DescribeCertificate, ListCertificates, DeleteCertificate — the server certificates that
domain configurations serve. Handlers call the
:class:`~bastion.domains.DomainService`; its errors escape to the application, which
answers ACM's error types (``ValidationException``, ``ResourceNotFoundException``,
``ResourceInUseException``, ``InvalidArnException``).

ImportCertificate takes no tags (``Tags`` is refused); ListCertificates filters by
``CertificateStatuses`` and ``Includes.keyTypes`` and ignores the other filters (every
certificate here is ``IMPORTED``, its key pair imported).
"""

from __future__ import annotations

from typing import Any, Final

from bastion.domains import DomainService, ServerCertificate

from .._context import OperationContext
from .._errors import ApiError
from .._pages import page_after
from ._table import TABLE, Params, Result

ACM: Final = "acm"
DEFAULT_PAGE: Final = 1000


def _service(ctx: OperationContext) -> DomainService:
    return ctx.gateway.services.domains


@TABLE.register(ACM, "ImportCertificate")
def import_certificate(ctx: OperationContext, params: Params) -> Result:
    if params.get("Tags"):
        raise ApiError("ValidationException", 400, "Bastion's certificates take no tags.")
    arn = _service(ctx).import_certificate(
        params["Certificate"], params["PrivateKey"], params.get("CertificateChain"),
        certificate_arn=params.get("CertificateArn"))
    return {"CertificateArn": arn}


@TABLE.register(ACM, "DescribeCertificate")
def describe_certificate(ctx: OperationContext, params: Params) -> Result:
    found = _service(ctx).describe_certificate(params["CertificateArn"])
    return {"Certificate": {
        "CertificateArn": found.arn, "DomainName": found.domain_name,
        "SubjectAlternativeNames": list(found.subject_alternative_names),
        "Serial": found.serial, "Subject": found.subject, "Issuer": found.issuer,
        "ImportedAt": found.imported_at, "Status": found.status,
        "NotBefore": found.not_before, "NotAfter": found.not_after,
        "KeyAlgorithm": found.key_algorithm, "SignatureAlgorithm": found.signature_algorithm,
        "InUseBy": list(found.in_use_by), "Type": "IMPORTED",
        "RenewalEligibility": "INELIGIBLE", "CertificateKeyPairOrigin": "IMPORTED"}}


@TABLE.register(ACM, "ListCertificates")
def list_certificates(ctx: OperationContext, params: Params) -> Result:
    statuses = params.get("CertificateStatuses")
    key_types = (params.get("Includes") or {}).get("keyTypes")
    found = sorted((c for c in _service(ctx).list_certificates()
                    if (not statuses or c.status in statuses)
                    and (not key_types or c.key_algorithm in key_types)),
                   key=lambda c: c.arn)  # pages follow the ARN
    chosen, token = page_after(found, lambda c: c.arn, "acm-certificates",
                               params.get("MaxItems") or DEFAULT_PAGE, params.get("NextToken"))
    result: dict[str, Any] = {"CertificateSummaryList": [_summary(c) for c in chosen]}
    if token:
        result["NextToken"] = token
    return result


@TABLE.register(ACM, "DeleteCertificate")
def delete_certificate(ctx: OperationContext, params: Params) -> Result:
    _service(ctx).delete_certificate(params["CertificateArn"])
    return {}


def _summary(found: ServerCertificate) -> dict[str, Any]:
    return {"CertificateArn": found.arn, "DomainName": found.domain_name,
            "SubjectAlternativeNameSummaries": list(found.subject_alternative_names),
            "HasAdditionalSubjectAlternativeNames": False, "Status": found.status,
            "Type": "IMPORTED", "KeyAlgorithm": found.key_algorithm,
            "InUse": bool(found.in_use_by), "NotBefore": found.not_before,
            "NotAfter": found.not_after, "ImportedAt": found.imported_at,
            "RenewalEligibility": "INELIGIBLE", "CertificateKeyPairOrigin": "IMPORTED"}
