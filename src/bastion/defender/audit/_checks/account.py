"""Account-level checks: LOGGING_DISABLED_CHECK and (Bastion's) claim provisioning
templates without a pre-provisioning hook."""

from __future__ import annotations

from typing import Final

from .._catalog import CLAIM_TEMPLATE_WITHOUT_PRE_PROVISIONING_HOOK, LOGGING_DISABLED
from .._model import FindingDraft, Resource, ResourceIdentifier, ResourceType
from ._base import CheckContext, CheckOutcome

FLEET_PROVISIONING: Final = "FLEET_PROVISIONING"


def logging_disabled(ctx: CheckContext) -> CheckOutcome:
    """Bastion's IoT logging is off: the v2 options disable all logs (or set the default
    level to DISABLED), or — without v2 — v1's level is DISABLED (see :mod:`.._logging`)."""
    state = ctx.fleet.logging_state()
    account = ctx.fleet.account.account_id
    if not state.disabled:
        return CheckOutcome(1, [])
    return CheckOutcome(1, [FindingDraft(
        Resource(ResourceType.ACCOUNT_SETTINGS, ResourceIdentifier.account_settings(account),
                 {"LOGGING_OPTIONS": state.source, "EFFECTIVE_LEVEL": state.effective_level}),
        LOGGING_DISABLED,
        f"IoT logging is disabled (by the {state.source} logging options).")])


def claim_template_without_hook(ctx: CheckContext) -> CheckOutcome:
    """Enabled fleet-provisioning (claim) templates without a pre-provisioning hook: any
    holder of the claim certificate can then mint device identities unchecked (security
    baseline #1: no device secret in firmware is only safe when claims are vetted)."""
    findings: list[FindingDraft] = []
    total = 0
    for template in ctx.fleet.provisioning_templates():
        if template.template_type != FLEET_PROVISIONING:
            continue
        total += 1
        if not template.enabled or template.pre_provisioning_hook:
            continue
        findings.append(FindingDraft(
            Resource(ResourceType.PROVISIONING_TEMPLATE,
                     ResourceIdentifier.provisioning_template(template.name),
                     {"TEMPLATE_NAME": template.name,
                      "TEMPLATE_ARN": ctx.fleet.account.arn(
                          f"provisioningtemplate/{template.name}")}),
            CLAIM_TEMPLATE_WITHOUT_PRE_PROVISIONING_HOOK,
            f"Provisioning template {template.name} provisions devices by claim without a "
            "pre-provisioning hook to validate them."))
    return CheckOutcome(total, findings)
