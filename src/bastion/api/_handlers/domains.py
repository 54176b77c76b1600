"""Domain configurations (``iot``): CreateDomainConfiguration,
UpdateDomainConfiguration, DescribeDomainConfiguration, ListDomainConfigurations,
DeleteDomainConfiguration. Handlers call the :class:`~bastion.domains.DomainService`;
its errors escape to the application, which answers the AWS error.

``validationCertificateArn``, ``tags`` and ``serverCertificateConfig.enableOCSPCheck``
(Bastion staples no OCSP responses) are refused rather than silently ignored; the
authorizer, authentication type, application protocol and client certificate settings are
kept and answered as given (every MQTT domain authenticates X.509 client certificates).
"""

from __future__ import annotations

from typing import Any, Final

from bastion.domains import DomainConfiguration, DomainService

from .._context import OperationContext
from .._errors import invalid_request
from .._pages import page_after
from ._table import TABLE, Params, Result

DEFAULT_PAGE: Final = 250
_KEPT: Final = ("authorizerConfig", "authenticationType", "applicationProtocol",
                "clientCertificateConfig", "serverCertificateConfig")


def _service(ctx: OperationContext) -> DomainService:
    return ctx.gateway.services.domains


def _kept(params: Params) -> dict[str, Any]:
    if (params.get("serverCertificateConfig") or {}).get("enableOCSPCheck"):
        raise invalid_request("Bastion does not staple OCSP responses (enableOCSPCheck).")
    return {key: params[key] for key in _KEPT if params.get(key) is not None}


def _policy(params: Params) -> str | None:
    policy = (params.get("tlsConfig") or {}).get("securityPolicy")
    return str(policy) if policy else None


@TABLE.register("iot", "CreateDomainConfiguration")
def create_domain_configuration(ctx: OperationContext, params: Params) -> Result:
    for unsupported in ("validationCertificateArn", "tags"):
        if params.get(unsupported):
            raise invalid_request(f"Bastion does not support {unsupported} on domain "
                                  "configurations.")
    created = _service(ctx).create_domain_configuration(
        params["domainConfigurationName"], domain_name=params.get("domainName"),
        server_certificate_arns=params.get("serverCertificateArns"),
        service_type=params.get("serviceType"), security_policy_name=_policy(params),
        settings=_kept(params))
    return {"domainConfigurationName": created.name,
            "domainConfigurationArn": created.arn}


@TABLE.register("iot", "UpdateDomainConfiguration")
def update_domain_configuration(ctx: OperationContext, params: Params) -> Result:
    updated = _service(ctx).update_domain_configuration(
        params["domainConfigurationName"], status=params.get("domainConfigurationStatus"),
        security_policy_name=_policy(params), settings=_kept(params),
        remove_authorizer_config=bool(params.get("removeAuthorizerConfig")))
    return {"domainConfigurationName": updated.name,
            "domainConfigurationArn": updated.arn}


@TABLE.register("iot", "DescribeDomainConfiguration")
def describe_domain_configuration(ctx: OperationContext, params: Params) -> Result:
    found = _service(ctx).describe_domain_configuration(params["domainConfigurationName"])
    result: dict[str, Any] = {
        "domainConfigurationName": found.name, "domainConfigurationArn": found.arn,
        "domainName": found.domain_name,
        "serverCertificates": _server_certificates(found),
        "domainConfigurationStatus": found.status.value,
        "serviceType": found.service_type.value, "domainType": found.domain_type.value,
        "lastStatusChangeDate": found.last_status_change,
        "tlsConfig": {"securityPolicy": found.security_policy}}
    result.update(found.settings)
    return result


@TABLE.register("iot", "ListDomainConfigurations")
def list_domain_configurations(ctx: OperationContext, params: Params) -> Result:
    found = _service(ctx).list_domain_configurations(params.get("serviceType"))
    chosen, token = page_after(found, lambda d: d.name, "domain-configurations",
                               params.get("pageSize") or DEFAULT_PAGE, params.get("marker"))
    result: dict[str, Any] = {"domainConfigurations": [
        {"domainConfigurationName": d.name, "domainConfigurationArn": d.arn,
         "serviceType": d.service_type.value} for d in chosen]}
    if token:
        result["nextMarker"] = token
    return result


@TABLE.register("iot", "DeleteDomainConfiguration")
def delete_domain_configuration(ctx: OperationContext, params: Params) -> Result:
    _service(ctx).delete_domain_configuration(params["domainConfigurationName"])
    return {}


def _server_certificates(found: DomainConfiguration) -> list[dict[str, Any]]:
    if found.server_certificate_arn is None:
        return []
    valid = found.server_certificate_valid
    summary: dict[str, Any] = {"serverCertificateArn": found.server_certificate_arn,
                               "serverCertificateStatus": "VALID" if valid else "INVALID"}
    if not valid:
        summary["serverCertificateStatusDetail"] = "The certificate has expired."
    return [summary]
