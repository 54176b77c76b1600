"""Values of the registry: things, groups, certificates, CAs, policies, principals.

Field names are AWS's response fields in snake_case (``thingArn`` → ``thing_arn``).
All values are frozen; mappings inside them are fresh copies owned by the value.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeAlias, TypeVar

from bastion.policy import Policy as CompiledPolicyInput
from bastion.policy import parse_policy

T = TypeVar("T")

Page: TypeAlias = tuple[list[T], str | None]
"""A page of a listing: the items and the next token (``None`` on the last page)."""


class CertificateStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    REVOKED = "REVOKED"
    PENDING_TRANSFER = "PENDING_TRANSFER"
    REGISTER_INACTIVE = "REGISTER_INACTIVE"
    PENDING_ACTIVATION = "PENDING_ACTIVATION"


class CaCertificateStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"


class AutoRegistrationStatus(enum.StrEnum):
    ENABLE = "ENABLE"
    DISABLE = "DISABLE"


class CertificateMode(enum.StrEnum):
    DEFAULT = "DEFAULT"
    SNI_ONLY = "SNI_ONLY"


# -- things ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ThingType:
    thing_type_name: str
    thing_type_arn: str
    thing_type_id: str
    description: str | None
    searchable_attributes: tuple[str, ...]
    deprecated: bool
    deprecation_date: datetime | None
    creation_date: datetime


@dataclass(frozen=True, slots=True)
class Thing:
    thing_name: str
    thing_arn: str
    thing_id: str
    thing_type_name: str | None
    attributes: Mapping[str, str]
    version: int
    creation_date: datetime
    last_modified_date: datetime
    billing_group_name: str | None = None
    """The billing group the thing is in (filled in by DescribeThing only)."""


@dataclass(frozen=True, slots=True)
class GroupNameAndArn:
    group_name: str
    group_arn: str


@dataclass(frozen=True, slots=True)
class ThingGroup:
    """A thing group. ``root_to_parent_thing_groups`` runs from the root of the
    hierarchy down to the direct parent (empty for a root group). A dynamic group has a
    ``query_string`` (and is always a root without children)."""

    thing_group_name: str
    thing_group_arn: str
    thing_group_id: str
    parent_group_name: str | None
    root_to_parent_thing_groups: tuple[GroupNameAndArn, ...]
    description: str | None
    attributes: Mapping[str, str]
    version: int
    creation_date: datetime
    last_modified_date: datetime
    query_string: str | None = None
    index_name: str | None = None
    query_version: str | None = None

    @property
    def dynamic(self) -> bool:
        return self.query_string is not None


@dataclass(frozen=True, slots=True)
class BillingGroup:
    """A billing group: things gathered for cost allocation, tagged as a whole."""

    billing_group_name: str
    billing_group_arn: str
    billing_group_id: str
    description: str | None
    version: int
    creation_date: datetime
    last_modified_date: datetime


# -- certificates ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Validity:
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """A device certificate as DescribeCertificate returns it."""

    certificate_id: str
    certificate_arn: str
    ca_certificate_id: str | None
    status: CertificateStatus
    certificate_pem: str
    owned_by: str
    previous_owned_by: str | None
    creation_date: datetime
    last_modified_date: datetime
    customer_version: int
    generation_id: str
    validity: Validity
    certificate_mode: CertificateMode


@dataclass(frozen=True, slots=True)
class RegistrationConfig:
    """A CA's just-in-time provisioning settings (``registrationConfig``)."""

    template_body: str | None = None
    role_arn: str | None = None
    template_name: str | None = None


@dataclass(frozen=True, slots=True)
class CaCertificateRecord:
    """A registered CA certificate as DescribeCACertificate returns it."""

    certificate_id: str
    certificate_arn: str
    status: CaCertificateStatus
    auto_registration_status: AutoRegistrationStatus
    certificate_pem: str
    owned_by: str
    creation_date: datetime
    last_modified_date: datetime
    customer_version: int
    generation_id: str
    validity: Validity
    certificate_mode: CertificateMode
    registration_config: RegistrationConfig | None


@dataclass(frozen=True, slots=True)
class KeyPair:
    public_key: str
    private_key: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class KeysAndCertificate:
    """CreateKeysAndCertificate's answer. The private key exists only here: Bastion does
    not keep it, so it can be given to the caller once."""

    certificate_arn: str
    certificate_id: str
    certificate_pem: str
    key_pair: KeyPair


# -- policies -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Policy:
    """A policy with its default version (GetPolicy)."""

    policy_name: str
    policy_arn: str
    policy_document: str
    default_version_id: str
    creation_date: datetime
    last_modified_date: datetime
    generation_id: str


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """One version of a policy (GetPolicyVersion / ListPolicyVersions)."""

    policy_name: str
    policy_arn: str
    version_id: str
    policy_document: str
    is_default_version: bool
    creation_date: datetime


@dataclass(frozen=True, slots=True)
class PolicySummary:
    """``{policyName, policyArn}`` as the list operations return it."""

    policy_name: str
    policy_arn: str


@dataclass(frozen=True, slots=True)
class EffectivePolicy:
    """A policy in force for a principal, with its default version's document.

    :ivar target_arn: the certificate or thing group it is attached to.
    """

    policy_name: str
    policy_arn: str
    policy_document: str
    version_id: str
    target_arn: str

    def parse(self) -> CompiledPolicyInput:
        """The parsed policy, ready for :func:`bastion.policy.compile_policy_set`.

        :raises bastion.policy.MalformedPolicyError: the stored document no longer
            validates (it did when it was stored).
        """
        return CompiledPolicyInput(
            name=self.policy_name,
            document=parse_policy(self.policy_document, max_length=None),
            version_id=self.version_id,
        )


@dataclass(frozen=True, slots=True)
class PrincipalRecord:
    """What the broker needs about a certificate on CONNECT.

    :ivar ca_status: the status of the CA that registered the certificate; ``None`` when
        the certificate was registered without a CA, or its CA has been deleted.
    :ivar thing_names: every thing the certificate is attached to.
    :ivar thing: the attached thing named like the client id, when one was asked for and
        exists (AWS applies thing-group policies and ``iot:Connection.Thing.*`` variables
        only then).
    :ivar policies: the policies in force, attached to the certificate or (for
        :attr:`thing`) inherited through its thing groups and their ancestors; each
        policy once, ordered by name.
    """

    certificate_id: str
    certificate_arn: str
    status: CertificateStatus
    certificate_mode: CertificateMode
    ca_certificate_id: str | None
    ca_status: CaCertificateStatus | None
    validity: Validity
    thing_names: tuple[str, ...]
    thing: Thing | None
    policies: tuple[EffectivePolicy, ...]

    @property
    def may_connect(self) -> bool:
        """Whether the certificate's state allows a connection: it is ``ACTIVE`` and so is
        its CA (when it was registered with one). Validity dates are checked by TLS."""
        if self.status is not CertificateStatus.ACTIVE:
            return False
        if self.ca_certificate_id is None:
            return self.certificate_mode is CertificateMode.SNI_ONLY
        return self.ca_status is CaCertificateStatus.ACTIVE
