"""The registry: things, groups, certificates, CAs and policies, with AWS IoT's rules.

Domain services — business rules and AWS error semantics, no I/O framework:

* :class:`RegistryService` — things, thing types, thing groups (static and dynamic: the
  fleet index, :mod:`bastion.index`, decides a dynamic group's members), membership,
  billing groups, thing principals;
* :class:`RoleAliasService` — role aliases: the role and duration of the temporary
  credentials devices get from the credentials provider;
* :class:`TaggingService` — tags on the taggable resources (TagResource and friends);
* :class:`IdentityService` — certificates (create, issue from CSR, register, update,
  delete), CA certificates and the registration code, and
  :meth:`IdentityService.resolve_principal` for the broker;
* :class:`PolicyService` — policies, versions, attachments, effective policies.

Each service is built from a :class:`~bastion.store.Store`, a :class:`~bastion.account.Account`
(region and account of the ARNs), a ``publish`` sink for the domain events of
:mod:`._events` (called after each commit) and an optional clock. Refused requests raise
a :class:`RegistryError` subclass carrying ``aws_error_type`` and ``http_status`` (the
wire-error contract, :class:`bastion.errors.ServiceError`).
"""

from __future__ import annotations

from ._arns import split_arn
from ._authority import CertificateAuthority
from ._certificate_states import TRANSITIONS as CERTIFICATE_STATUS_TRANSITIONS
from ._connectivity import ThingConnectivity
from ._errors import (
    CertificateStateError,
    CertificateValidationError,
    DeleteConflictError,
    InvalidRequestError,
    InvalidStateTransitionError,
    LimitExceededError,
    MalformedPolicyDocumentError,
    RegistrationCodeValidationError,
    RegistryError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    VersionConflictError,
    VersionsLimitExceededError,
)
from ._events import (
    CaCertificateDeleted,
    CaCertificateRegistered,
    CaCertificateStatusChanged,
    CertificateDeleted,
    CertificateRegistered,
    CertificateStatusChanged,
    PolicyAttachmentChanged,
    PolicyDefaultVersionChanged,
    PolicyDeleted,
    ThingCreated,
    ThingDeleted,
    ThingGroupDeleted,
    ThingGroupMembershipChanged,
    ThingPrincipalChanged,
    ThingUpdated,
)
from ._identity import IdentityService
from ._model import (
    AutoRegistrationStatus,
    BillingGroup,
    CaCertificateRecord,
    CaCertificateStatus,
    CertificateMode,
    CertificateRecord,
    CertificateStatus,
    EffectivePolicy,
    GroupNameAndArn,
    KeyPair,
    KeysAndCertificate,
    Page,
    Policy,
    PolicySummary,
    PolicyVersion,
    PrincipalRecord,
    RegistrationConfig,
    Thing,
    ThingGroup,
    ThingType,
    Validity,
)
from ._policies import PolicyService
from ._registry import RegistryService
from ._role_aliases import RoleAlias, RoleAliasService, check_role_alias_name
from ._tagging import MAX_TAGS, TaggingService, check_tags

__all__ = [
    "CERTIFICATE_STATUS_TRANSITIONS",
    "MAX_TAGS",
    "AutoRegistrationStatus",
    "BillingGroup",
    "CaCertificateDeleted",
    "CaCertificateRecord",
    "CaCertificateRegistered",
    "CaCertificateStatus",
    "CaCertificateStatusChanged",
    "CertificateAuthority",
    "CertificateDeleted",
    "CertificateMode",
    "CertificateRecord",
    "CertificateRegistered",
    "CertificateStateError",
    "CertificateStatus",
    "CertificateStatusChanged",
    "CertificateValidationError",
    "DeleteConflictError",
    "EffectivePolicy",
    "GroupNameAndArn",
    "IdentityService",
    "InvalidRequestError",
    "InvalidStateTransitionError",
    "KeyPair",
    "KeysAndCertificate",
    "LimitExceededError",
    "MalformedPolicyDocumentError",
    "Page",
    "Policy",
    "PolicyAttachmentChanged",
    "PolicyDefaultVersionChanged",
    "PolicyDeleted",
    "PolicyService",
    "PolicySummary",
    "PolicyVersion",
    "PrincipalRecord",
    "RegistrationCodeValidationError",
    "RegistrationConfig",
    "RegistryError",
    "RegistryService",
    "ResourceAlreadyExistsError",
    "ResourceNotFoundError",
    "RoleAlias",
    "RoleAliasService",
    "TaggingService",
    "Thing",
    "ThingConnectivity",
    "ThingCreated",
    "ThingDeleted",
    "ThingGroup",
    "ThingGroupDeleted",
    "ThingGroupMembershipChanged",
    "ThingPrincipalChanged",
    "ThingType",
    "ThingUpdated",
    "Validity",
    "VersionConflictError",
    "VersionsLimitExceededError",
    "check_role_alias_name",
    "check_tags",
    "split_arn",
]
