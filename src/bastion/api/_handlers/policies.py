"""Policies, versions, attachments, effective policies and TestAuthorization (``iot``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from bastion.account import Account
from bastion.enforcement import authorization_decisions
from bastion.policy import AuthDecision, Decision, PolicyRef
from bastion.registry import PolicySummary, split_arn

from .._context import OperationContext
from .._errors import invalid_request, not_found
from ._common import creation_tags, page, refuse_unsupported, tag_created
from ._table import TABLE, Params, Result

ACTIONS: Final = {
    "PUBLISH": "iot:Publish",
    "SUBSCRIBE": "iot:Subscribe",
    "RECEIVE": "iot:Receive",
    "CONNECT": "iot:Connect",
}


def _summary(item: PolicySummary) -> dict[str, str]:
    return {"policyName": item.policy_name, "policyArn": item.policy_arn}


# -- policies and versions --------------------------------------------------------------


@TABLE.register("iot", "CreatePolicy")
def create_policy(ctx: OperationContext, params: Params) -> Result:
    tags = creation_tags(params)
    policy = ctx.services.policies.create_policy(params["policyName"], params["policyDocument"])
    tag_created(ctx, "policy", policy.policy_name, tags)
    return {"policyName": policy.policy_name, "policyArn": policy.policy_arn,
            "policyDocument": policy.policy_document,
            "policyVersionId": policy.default_version_id}


@TABLE.register("iot", "GetPolicy")
def get_policy(ctx: OperationContext, params: Params) -> Result:
    policy = ctx.services.policies.get_policy(params["policyName"])
    return {"policyName": policy.policy_name, "policyArn": policy.policy_arn,
            "policyDocument": policy.policy_document,
            "defaultVersionId": policy.default_version_id,
            "creationDate": policy.creation_date,
            "lastModifiedDate": policy.last_modified_date,
            "generationId": policy.generation_id}


@TABLE.register("iot", "DeletePolicy")
def delete_policy(ctx: OperationContext, params: Params) -> Result:
    ctx.services.policies.delete_policy(params["policyName"])
    return {}


@TABLE.register("iot", "ListPolicies")
def list_policies(ctx: OperationContext, params: Params) -> Result:
    items, token = ctx.services.policies.list_policies(max_results=params.get("pageSize"),
                                                       next_token=params.get("marker"))
    return page("policies", [_summary(item) for item in items], token, "nextMarker")


@TABLE.register("iot", "CreatePolicyVersion")
def create_policy_version(ctx: OperationContext, params: Params) -> Result:
    version = ctx.services.policies.create_policy_version(
        params["policyName"], params["policyDocument"],
        set_as_default=params.get("setAsDefault", False))
    return {"policyArn": version.policy_arn, "policyDocument": version.policy_document,
            "policyVersionId": version.version_id,
            "isDefaultVersion": version.is_default_version}


@TABLE.register("iot", "GetPolicyVersion")
def get_policy_version(ctx: OperationContext, params: Params) -> Result:
    version = ctx.services.policies.get_policy_version(params["policyName"],
                                                       params["policyVersionId"])
    return {"policyArn": version.policy_arn, "policyName": version.policy_name,
            "policyDocument": version.policy_document,
            "policyVersionId": version.version_id,
            "isDefaultVersion": version.is_default_version,
            "creationDate": version.creation_date,
            "lastModifiedDate": version.creation_date}


@TABLE.register("iot", "ListPolicyVersions")
def list_policy_versions(ctx: OperationContext, params: Params) -> Result:
    versions = ctx.services.policies.list_policy_versions(params["policyName"])
    return {"policyVersions": [{"versionId": v.version_id,
                                "isDefaultVersion": v.is_default_version,
                                "createDate": v.creation_date} for v in versions]}


@TABLE.register("iot", "SetDefaultPolicyVersion")
def set_default_policy_version(ctx: OperationContext, params: Params) -> Result:
    ctx.services.policies.set_default_policy_version(params["policyName"],
                                                     params["policyVersionId"])
    return {}


@TABLE.register("iot", "DeletePolicyVersion")
def delete_policy_version(ctx: OperationContext, params: Params) -> Result:
    ctx.services.policies.delete_policy_version(params["policyName"],
                                                params["policyVersionId"])
    return {}


# -- attachments ------------------------------------------------------------------------


@TABLE.register("iot", "AttachPolicy")
def attach_policy(ctx: OperationContext, params: Params) -> Result:
    ctx.services.policies.attach_policy(params["policyName"], params["target"])
    return {}


@TABLE.register("iot", "DetachPolicy")
def detach_policy(ctx: OperationContext, params: Params) -> Result:
    ctx.services.policies.detach_policy(params["policyName"], params["target"])
    return {}


@TABLE.register("iot", "AttachPrincipalPolicy")
def attach_principal_policy(ctx: OperationContext, params: Params) -> Result:
    ctx.services.policies.attach_policy(params["policyName"], params["principal"])
    return {}


@TABLE.register("iot", "DetachPrincipalPolicy")
def detach_principal_policy(ctx: OperationContext, params: Params) -> Result:
    ctx.services.policies.detach_policy(params["policyName"], params["principal"])
    return {}


@TABLE.register("iot", "ListAttachedPolicies")
def list_attached_policies(ctx: OperationContext, params: Params) -> Result:
    items, token = ctx.services.policies.list_attached_policies(
        params["target"], recursive=params.get("recursive", False),
        page_size=params.get("pageSize"), marker=params.get("marker"))
    return page("policies", [_summary(item) for item in items], token, "nextMarker")


@TABLE.register("iot", "ListPrincipalPolicies")
def list_principal_policies(ctx: OperationContext, params: Params) -> Result:
    items, token = ctx.services.policies.list_attached_policies(
        params["principal"], page_size=params.get("pageSize"), marker=params.get("marker"))
    return page("policies", [_summary(item) for item in items], token, "nextMarker")


@TABLE.register("iot", "ListTargetsForPolicy")
def list_targets_for_policy(ctx: OperationContext, params: Params) -> Result:
    items, token = ctx.services.policies.list_targets_for_policy(
        params["policyName"], page_size=params.get("pageSize"), marker=params.get("marker"))
    return page("targets", items, token, "nextMarker")


@TABLE.register("iot", "ListPolicyPrincipals")
def list_policy_principals(ctx: OperationContext, params: Params) -> Result:
    items, token = ctx.services.policies.list_targets_for_policy(
        params["policyName"], page_size=params.get("pageSize"), marker=params.get("marker"))
    principals = [arn for arn in items if ":cert/" in arn]
    return page("principals", principals, token, "nextMarker")


@TABLE.register("iot", "GetEffectivePolicies")
def get_effective_policies(ctx: OperationContext, params: Params) -> Result:
    refuse_unsupported(params, "cognitoIdentityPoolId")
    found = ctx.services.policies.get_effective_policies(
        principal=params.get("principal"), thing_name=params.get("thingName"))
    return {"effectivePolicies": [{"policyName": p.policy_name, "policyArn": p.policy_arn,
                                   "policyDocument": p.policy_document} for p in found]}


# -- TestAuthorization ------------------------------------------------------------------


@TABLE.register("iot", "TestAuthorization")
def test_authorization(ctx: OperationContext, params: Params) -> Result:
    """Evaluate each ``authInfo`` against the principal's effective policies (plus
    ``policyNamesToAdd``, minus ``policyNamesToSkip``) with the reference evaluator, in
    the context a connection of that certificate with ``clientId`` would have."""
    refuse_unsupported(params, "cognitoIdentityPoolId")
    principal = params.get("principal")
    if principal is None:
        raise invalid_request("principal is required: Bastion tests certificate principals")
    services = ctx.services
    account = services.account
    _, certificate_id = split_arn(account, principal, frozenset({"cert"}))
    client_id = params.get("clientId")
    if services.identity.resolve_principal(certificate_id, client_id=client_id) is None:
        raise not_found(f"The certificate {certificate_id} does not exist")

    def decide(action: str, resources: list[str]) -> list[Decision]:
        return authorization_decisions(
            services.identity, services.policies, account, certificate_id,
            client_id=client_id, action=action, resources=resources,
            add=params.get("policyNamesToAdd") or [],
            skip=set(params.get("policyNamesToSkip") or []))

    results = [_auth_result(info, decide, account) for info in params["authInfos"]]
    return {"authResults": results}


def _auth_result(info: Params, decide: Callable[[str, list[str]], list[Decision]],
                 account: Account) -> dict[str, Any]:
    action_type = info.get("actionType")
    if action_type is None:
        raise invalid_request("authInfos.member.actionType is required")
    decisions = decide(ACTIONS[action_type], list(info["resources"]))
    allowed: dict[PolicyRef, None] = {}
    explicit: dict[PolicyRef, None] = {}
    implicit: dict[PolicyRef, None] = {}
    missing: set[str] = set()
    for decision in decisions:
        allowed.update(dict.fromkeys(decision.allowed_policies))
        explicit.update(dict.fromkeys(decision.explicit_deny_policies))
        implicit.update(dict.fromkeys(decision.implicit_deny_policies))
        missing.update(decision.missing_context_values)
    effects = {decision.effect for decision in decisions}
    if AuthDecision.EXPLICIT_DENY in effects:
        verdict = AuthDecision.EXPLICIT_DENY
    elif AuthDecision.IMPLICIT_DENY in effects or not decisions:
        verdict = AuthDecision.IMPLICIT_DENY
    else:
        verdict = AuthDecision.ALLOWED

    def refs(found: dict[PolicyRef, None]) -> list[dict[str, str]]:
        return [{"policyName": ref.name, "policyArn": account.arn(f"policy/{ref.name}")}
                for ref in found]

    result: dict[str, Any] = {
        "authInfo": {"actionType": action_type, "resources": list(info["resources"])},
        "authDecision": verdict.value,
        "missingContextValues": sorted(missing),
    }
    if verdict is AuthDecision.ALLOWED:
        result["allowed"] = {"policies": refs(allowed)}
    else:
        result["allowed"] = {"policies": []}
        result["denied"] = {"implicitDeny": {"policies": refs(implicit)},
                            "explicitDeny": {"policies": refs(explicit)}}
    return result
