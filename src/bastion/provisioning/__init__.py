"""Zero-touch provisioning: templates, fleet provisioning by claim, JITP and JITR.

A domain service (no front door): the REST API and the MQTT reserved topics translate
into calls of :class:`ProvisioningService`, and the broker's gate calls
:meth:`ProvisioningService.register_on_first_connection` for certificates it meets for
the first time.

* the template language — :func:`parse_template` (static checks, clear errors with the
  place of the problem) and :func:`plan_provisioning` (evaluation into a
  :class:`ProvisioningPlan`) — pure;
* templates and versions (CreateProvisioningTemplate, …), CreateProvisioningClaim,
  CreateKeysAndCertificate / CreateCertificateFromCsr with ownership tokens,
  RegisterThing with pre-provisioning hooks (HTTP endpoints, deny by default), JITP and
  JITR.

Refused requests raise a :class:`ProvisioningError` subclass carrying what goes on the
wire for both doors.
"""

from __future__ import annotations

from ._errors import (
    AccessDeniedError,
    ConflictingResourceUpdateError,
    DeleteConflictError,
    InvalidRequestError,
    OwnershipTokenError,
    ParameterError,
    ProvisioningError,
    ProvisioningFailedError,
    ResourceAlreadyExistsError,
    ResourceConflictsError,
    ResourceNotFoundError,
    TemplateError,
    VersionsLimitExceededError,
)
from ._evaluate import (
    CertificatePlan,
    PolicyPlan,
    ProvisioningPlan,
    ThingPlan,
    certificate_parameters,
    check_request_parameters,
    plan_provisioning,
    resolve_parameters,
)
from ._hook import (
    HOOK_TIMEOUT,
    HookCallError,
    HookClient,
    HookDecision,
    HttpHookClient,
    PreProvisioningHook,
    decide,
    hook_input,
    parse_hook,
)
from ._model import (
    AutoRegistration,
    AutoRegistrationOutcome,
    OwnedCertificate,
    ProvisioningClaim,
    ProvisioningTemplate,
    ProvisioningTemplateSummary,
    RegisteredThing,
    TemplateVersion,
)
from ._service import (
    CLAIM_LIFETIME,
    CLAIM_POLICY_PREFIX,
    ProvisioningService,
    claim_policy_document,
)
from ._template import (
    BUILTIN_PARAMETERS,
    CERTIFICATE_ID,
    OverrideAction,
    ResourceType,
    Template,
    TemplateType,
    parse_template,
)
from ._tokens import TOKEN_LIFETIME

__all__ = [
    "BUILTIN_PARAMETERS",
    "CERTIFICATE_ID",
    "CLAIM_LIFETIME",
    "CLAIM_POLICY_PREFIX",
    "HOOK_TIMEOUT",
    "TOKEN_LIFETIME",
    "AccessDeniedError",
    "AutoRegistration",
    "AutoRegistrationOutcome",
    "CertificatePlan",
    "ConflictingResourceUpdateError",
    "DeleteConflictError",
    "HookCallError",
    "HookClient",
    "HookDecision",
    "HttpHookClient",
    "InvalidRequestError",
    "OverrideAction",
    "OwnedCertificate",
    "OwnershipTokenError",
    "ParameterError",
    "PolicyPlan",
    "PreProvisioningHook",
    "ProvisioningClaim",
    "ProvisioningError",
    "ProvisioningFailedError",
    "ProvisioningPlan",
    "ProvisioningService",
    "ProvisioningTemplate",
    "ProvisioningTemplateSummary",
    "RegisteredThing",
    "ResourceAlreadyExistsError",
    "ResourceConflictsError",
    "ResourceNotFoundError",
    "ResourceType",
    "Template",
    "TemplateError",
    "TemplateType",
    "TemplateVersion",
    "ThingPlan",
    "VersionsLimitExceededError",
    "certificate_parameters",
    "check_request_parameters",
    "claim_policy_document",
    "decide",
    "hook_input",
    "parse_hook",
    "parse_template",
    "plan_provisioning",
    "resolve_parameters",
]
