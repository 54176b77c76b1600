"""Provisioning templates, their versions and CreateProvisioningClaim (``iot``).

The handlers call the :class:`~bastion.provisioning.ProvisioningService` that serves the
fleet provisioning topics (both get it from :class:`bastion.services.Services`), so a
template created here is used by devices at once. A
ProvisioningError escapes to the application, which answers its AWS error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bastion.provisioning import (
    ProvisioningService,
    ProvisioningTemplateSummary,
    TemplateVersion,
)

from .._context import OperationContext
from ._common import creation_tags, page, tag_created
from ._table import TABLE, Handler, Params, Result

IOT = "iot"


def _service(ctx: OperationContext) -> ProvisioningService:
    return ctx.regional.provisioning


def _operation(operation: str) -> Callable[[Handler], Handler]:
    """Register ``operation`` (a ProvisioningError is answered by the application)."""
    return TABLE.register(IOT, operation)


def _summary(item: ProvisioningTemplateSummary) -> dict[str, Any]:
    result: dict[str, Any] = {"templateArn": item.template_arn,
                              "templateName": item.template_name,
                              "creationDate": item.creation_date,
                              "lastModifiedDate": item.last_modified_date,
                              "enabled": item.enabled, "type": item.template_type.value}
    if item.description is not None:
        result["description"] = item.description
    return result


def _version(item: TemplateVersion) -> dict[str, Any]:
    result: dict[str, Any] = {"versionId": item.version_id, "creationDate": item.creation_date,
                              "isDefaultVersion": item.is_default_version}
    if item.template_body is not None:
        result["templateBody"] = item.template_body
    return result


# -- templates ----------------------------------------------------------------------------


@_operation("CreateProvisioningTemplate")
def create_provisioning_template(ctx: OperationContext, params: Params) -> Result:
    tags = creation_tags(params)
    template = _service(ctx).create_provisioning_template(
        params["templateName"], params["templateBody"],
        provisioning_role_arn=params.get("provisioningRoleArn"),
        description=params.get("description"), enabled=params.get("enabled", False),
        pre_provisioning_hook=params.get("preProvisioningHook"),
        template_type=params.get("type") or "FLEET_PROVISIONING", tags=params.get("tags"))
    tag_created(ctx, "provisioningtemplate", template.template_name, tags)
    return {"templateArn": template.template_arn, "templateName": template.template_name,
            "defaultVersionId": template.default_version_id}


@_operation("DescribeProvisioningTemplate")
def describe_provisioning_template(ctx: OperationContext, params: Params) -> Result:
    template = _service(ctx).describe_provisioning_template(params["templateName"])
    result: dict[str, Any] = {
        "templateArn": template.template_arn, "templateName": template.template_name,
        "creationDate": template.creation_date, "lastModifiedDate": template.last_modified_date,
        "defaultVersionId": template.default_version_id, "templateBody": template.template_body,
        "enabled": template.enabled, "provisioningRoleArn": template.provisioning_role_arn,
        "type": template.template_type.value,
    }
    if template.description is not None:
        result["description"] = template.description
    if template.pre_provisioning_hook is not None:
        result["preProvisioningHook"] = template.pre_provisioning_hook.as_aws()
    return result


@_operation("ListProvisioningTemplates")
def list_provisioning_templates(ctx: OperationContext, params: Params) -> Result:
    items, token = _service(ctx).list_provisioning_templates(
        max_results=params.get("maxResults"), next_token=params.get("nextToken"))
    return page("templates", [_summary(item) for item in items], token)


@_operation("UpdateProvisioningTemplate")
def update_provisioning_template(ctx: OperationContext, params: Params) -> Result:
    _service(ctx).update_provisioning_template(
        params["templateName"], description=params.get("description"),
        enabled=params.get("enabled"), default_version_id=params.get("defaultVersionId"),
        provisioning_role_arn=params.get("provisioningRoleArn"),
        pre_provisioning_hook=params.get("preProvisioningHook"),
        remove_pre_provisioning_hook=bool(params.get("removePreProvisioningHook")))
    return {}


@_operation("DeleteProvisioningTemplate")
def delete_provisioning_template(ctx: OperationContext, params: Params) -> Result:
    _service(ctx).delete_provisioning_template(params["templateName"])
    return {}


# -- versions -----------------------------------------------------------------------------


@_operation("CreateProvisioningTemplateVersion")
def create_provisioning_template_version(ctx: OperationContext, params: Params) -> Result:
    version = _service(ctx).create_provisioning_template_version(
        params["templateName"], params["templateBody"],
        set_as_default=bool(params.get("setAsDefault")))
    return {"templateArn": version.template_arn, "templateName": version.template_name,
            "versionId": version.version_id, "isDefaultVersion": version.is_default_version}


@_operation("DescribeProvisioningTemplateVersion")
def describe_provisioning_template_version(ctx: OperationContext, params: Params) -> Result:
    return _version(_service(ctx).describe_provisioning_template_version(
        params["templateName"], params["versionId"]))


@_operation("ListProvisioningTemplateVersions")
def list_provisioning_template_versions(ctx: OperationContext, params: Params) -> Result:
    items, token = _service(ctx).list_provisioning_template_versions(
        params["templateName"], max_results=params.get("maxResults"),
        next_token=params.get("nextToken"))
    return page("versions", [_version(item) for item in items], token)


@_operation("DeleteProvisioningTemplateVersion")
def delete_provisioning_template_version(ctx: OperationContext, params: Params) -> Result:
    _service(ctx).delete_provisioning_template_version(params["templateName"],
                                                       params["versionId"])
    return {}


# -- trusted user -------------------------------------------------------------------------


@_operation("CreateProvisioningClaim")
def create_provisioning_claim(ctx: OperationContext, params: Params) -> Result:
    claim = _service(ctx).create_provisioning_claim(params["templateName"])
    return {"certificateId": claim.certificate_id, "certificatePem": claim.certificate_pem,
            "keyPair": {"PublicKey": claim.key_pair.public_key,
                        "PrivateKey": claim.key_pair.private_key},
            "expiration": claim.expiration}
