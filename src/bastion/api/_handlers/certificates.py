"""Device certificates, CA certificates and the registration code (``iot``)."""

from __future__ import annotations

from typing import Any

from bastion.registry import (
    CaCertificateRecord,
    CertificateRecord,
    CertificateStatus,
    RegistrationConfig,
)

from .._context import OperationContext
from ._common import creation_tags, page, tag_created
from ._table import TABLE, Params, Result


def _validity(record: CertificateRecord | CaCertificateRecord) -> dict[str, Any]:
    return {"notBefore": record.validity.not_before, "notAfter": record.validity.not_after}


def _certificate_summary(record: CertificateRecord) -> dict[str, Any]:
    return {
        "certificateArn": record.certificate_arn,
        "certificateId": record.certificate_id,
        "status": record.status.value,
        "certificateMode": record.certificate_mode.value,
        "creationDate": record.creation_date,
    }


def _registration_config(params: Params) -> RegistrationConfig | None:
    config = params.get("registrationConfig")
    if config is None:
        return None
    return RegistrationConfig(template_body=config.get("templateBody"),
                              role_arn=config.get("roleArn"),
                              template_name=config.get("templateName"))


# -- device certificates ----------------------------------------------------------------


@TABLE.register("iot", "CreateKeysAndCertificate")
def create_keys_and_certificate(ctx: OperationContext, params: Params) -> Result:
    created = ctx.services.identity.create_keys_and_certificate(
        set_as_active=params.get("setAsActive", False))
    return {
        "certificateArn": created.certificate_arn,
        "certificateId": created.certificate_id,
        "certificatePem": created.certificate_pem,
        "keyPair": {"PublicKey": created.key_pair.public_key,
                    "PrivateKey": created.key_pair.private_key},
    }


@TABLE.register("iot", "CreateCertificateFromCsr")
def create_certificate_from_csr(ctx: OperationContext, params: Params) -> Result:
    record = ctx.services.identity.create_certificate_from_csr(
        params["certificateSigningRequest"], set_as_active=params.get("setAsActive", False))
    return {"certificateArn": record.certificate_arn, "certificateId": record.certificate_id,
            "certificatePem": record.certificate_pem}


def _registration_status(params: Params) -> str | None:
    status = params.get("status")
    if status is None and params.get("setAsActive"):
        return CertificateStatus.ACTIVE.value
    return status if isinstance(status, str) else None


@TABLE.register("iot", "RegisterCertificate")
def register_certificate(ctx: OperationContext, params: Params) -> Result:
    record = ctx.services.identity.register_certificate(
        params["certificatePem"], params.get("caCertificatePem"),
        status=_registration_status(params))
    return {"certificateArn": record.certificate_arn, "certificateId": record.certificate_id}


@TABLE.register("iot", "RegisterCertificateWithoutCA")
def register_certificate_without_ca(ctx: OperationContext, params: Params) -> Result:
    record = ctx.services.identity.register_certificate_without_ca(
        params["certificatePem"], status=_registration_status(params))
    return {"certificateArn": record.certificate_arn, "certificateId": record.certificate_id}


@TABLE.register("iot", "UpdateCertificate")
def update_certificate(ctx: OperationContext, params: Params) -> Result:
    ctx.services.identity.update_certificate(params["certificateId"], params["newStatus"])
    return {}


@TABLE.register("iot", "DescribeCertificate")
def describe_certificate(ctx: OperationContext, params: Params) -> Result:
    record = ctx.services.identity.describe_certificate(params["certificateId"])
    return {"certificateDescription": {
        "certificateArn": record.certificate_arn,
        "certificateId": record.certificate_id,
        "caCertificateId": record.ca_certificate_id,
        "status": record.status.value,
        "certificatePem": record.certificate_pem,
        "ownedBy": record.owned_by,
        "previousOwnedBy": record.previous_owned_by,
        "creationDate": record.creation_date,
        "lastModifiedDate": record.last_modified_date,
        "customerVersion": record.customer_version,
        "generationId": record.generation_id,
        "validity": _validity(record),
        "certificateMode": record.certificate_mode.value,
    }}


@TABLE.register("iot", "ListCertificates")
def list_certificates(ctx: OperationContext, params: Params) -> Result:
    items, token = ctx.services.identity.list_certificates(
        ascending_order=params.get("ascendingOrder", False),
        max_results=params.get("pageSize"), next_token=params.get("marker"))
    return page("certificates", [_certificate_summary(r) for r in items], token, "nextMarker")


@TABLE.register("iot", "ListCertificatesByCA")
def list_certificates_by_ca(ctx: OperationContext, params: Params) -> Result:
    items, token = ctx.services.identity.list_certificates_by_ca(
        params["caCertificateId"], ascending_order=params.get("ascendingOrder", False),
        max_results=params.get("pageSize"), next_token=params.get("marker"))
    return page("certificates", [_certificate_summary(r) for r in items], token, "nextMarker")


@TABLE.register("iot", "DeleteCertificate")
def delete_certificate(ctx: OperationContext, params: Params) -> Result:
    ctx.services.identity.delete_certificate(params["certificateId"],
                                             force_delete=params.get("forceDelete", False))
    return {}


# -- registration code and CA certificates ----------------------------------------------


@TABLE.register("iot", "GetRegistrationCode")
def get_registration_code(ctx: OperationContext, params: Params) -> Result:
    return {"registrationCode": ctx.services.identity.get_registration_code()}


@TABLE.register("iot", "DeleteRegistrationCode")
def delete_registration_code(ctx: OperationContext, params: Params) -> Result:
    ctx.services.identity.delete_registration_code()
    return {}


@TABLE.register("iot", "RegisterCACertificate")
def register_ca_certificate(ctx: OperationContext, params: Params) -> Result:
    tags = creation_tags(params)
    record = ctx.services.identity.register_ca_certificate(
        params["caCertificate"],
        params.get("verificationCertificate"),
        set_as_active=params.get("setAsActive", False),
        allow_auto_registration=params.get("allowAutoRegistration", False),
        certificate_mode=params.get("certificateMode", "DEFAULT"),
        registration_config=_registration_config(params),
    )
    tag_created(ctx, "cacert", record.certificate_id, tags)
    return {"certificateArn": record.certificate_arn, "certificateId": record.certificate_id}


@TABLE.register("iot", "DescribeCACertificate")
def describe_ca_certificate(ctx: OperationContext, params: Params) -> Result:
    record = ctx.services.identity.describe_ca_certificate(params["certificateId"])
    result: dict[str, Any] = {"certificateDescription": {
        "certificateArn": record.certificate_arn,
        "certificateId": record.certificate_id,
        "status": record.status.value,
        "certificatePem": record.certificate_pem,
        "ownedBy": record.owned_by,
        "creationDate": record.creation_date,
        "autoRegistrationStatus": record.auto_registration_status.value,
        "lastModifiedDate": record.last_modified_date,
        "customerVersion": record.customer_version,
        "generationId": record.generation_id,
        "validity": _validity(record),
        "certificateMode": record.certificate_mode.value,
    }}
    config = record.registration_config
    if config is not None:
        result["registrationConfig"] = {"templateBody": config.template_body,
                                        "roleArn": config.role_arn,
                                        "templateName": config.template_name}
    return result


@TABLE.register("iot", "ListCACertificates")
def list_ca_certificates(ctx: OperationContext, params: Params) -> Result:
    template = params.get("templateName")
    items, token = ctx.services.identity.list_ca_certificates(
        ascending_order=params.get("ascendingOrder", False),
        max_results=params.get("pageSize"), next_token=params.get("marker"))
    summaries = [
        {"certificateArn": r.certificate_arn, "certificateId": r.certificate_id,
         "status": r.status.value, "creationDate": r.creation_date}
        for r in items
        if template is None or (r.registration_config is not None
                                and r.registration_config.template_name == template)
    ]
    return page("certificates", summaries, token, "nextMarker")


@TABLE.register("iot", "UpdateCACertificate")
def update_ca_certificate(ctx: OperationContext, params: Params) -> Result:
    ctx.services.identity.update_ca_certificate(
        params["certificateId"],
        new_status=params.get("newStatus"),
        new_auto_registration_status=params.get("newAutoRegistrationStatus"),
        registration_config=_registration_config(params),
        remove_auto_registration=params.get("removeAutoRegistration", False),
    )
    return {}


@TABLE.register("iot", "DeleteCACertificate")
def delete_ca_certificate(ctx: OperationContext, params: Params) -> Result:
    ctx.services.identity.delete_ca_certificate(params["certificateId"])
    return {}
