"""Values of the provisioning service. Field names are AWS's response fields in
snake_case (``templateArn`` → ``template_arn``)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from bastion.registry import KeyPair

from ._hook import PreProvisioningHook
from ._template import TemplateType


@dataclass(frozen=True, slots=True)
class ProvisioningTemplate:
    """DescribeProvisioningTemplate: the template with its default version's body."""

    template_name: str
    template_arn: str
    template_id: str
    template_type: TemplateType
    description: str | None
    enabled: bool
    provisioning_role_arn: str
    pre_provisioning_hook: PreProvisioningHook | None
    default_version_id: int
    template_body: str
    tags: tuple[tuple[str, str], ...]
    creation_date: datetime
    last_modified_date: datetime


@dataclass(frozen=True, slots=True)
class ProvisioningTemplateSummary:
    template_name: str
    template_arn: str
    template_type: TemplateType
    description: str | None
    enabled: bool
    creation_date: datetime
    last_modified_date: datetime


@dataclass(frozen=True, slots=True)
class TemplateVersion:
    """A version of a template (``template_body`` is ``None`` in listings)."""

    template_name: str
    template_arn: str
    version_id: int
    is_default_version: bool
    creation_date: datetime
    template_body: str | None = None


@dataclass(frozen=True, slots=True)
class ProvisioningClaim:
    """CreateProvisioningClaim: a temporary claim certificate and its key pair (the
    private key is returned once and never stored)."""

    certificate_id: str
    certificate_arn: str
    certificate_pem: str
    key_pair: KeyPair
    expiration: datetime
    policy_name: str


@dataclass(frozen=True, slots=True)
class OwnedCertificate:
    """CreateKeysAndCertificate / CreateCertificateFromCsr over MQTT: a new certificate
    (``PENDING_ACTIVATION``), its ownership token, and — for CreateKeysAndCertificate —
    its private key."""

    certificate_id: str
    certificate_pem: str
    certificate_ownership_token: str
    private_key: str | None = None


@dataclass(frozen=True, slots=True)
class RegisteredThing:
    """RegisterThing's answer. ``thing_name`` is ``None`` when the template has no thing."""

    thing_name: str | None
    device_configuration: Mapping[str, str]


class AutoRegistrationOutcome(enum.StrEnum):
    PROVISIONED = "PROVISIONED"
    """JITP ran the CA's template: the certificate is registered (and ACTIVE unless the
    template says INACTIVE)."""

    PROVISIONING_FAILED = "PROVISIONING_FAILED"
    """JITP could not run the template; the certificate stays PENDING_ACTIVATION and the
    next connection tries again."""

    REGISTERED = "REGISTERED"
    """JITR: the certificate is PENDING_ACTIVATION, waiting for someone to activate it."""


@dataclass(frozen=True, slots=True)
class AutoRegistration:
    """What happened to a certificate presented on a first connection."""

    outcome: AutoRegistrationOutcome
    certificate_id: str
    ca_certificate_id: str
    account_id: str
    certificate_registration_date: datetime

    def registered_event(self, now: datetime) -> dict[str, object]:
        """The payload AWS publishes on ``$aws/events/certificates/registered/<caId>``."""
        return {
            "certificateId": self.certificate_id,
            "caCertificateId": self.ca_certificate_id,
            "timestamp": int(now.timestamp() * 1000),
            "certificateStatus": "PENDING_ACTIVATION",
            "awsAccountId": self.account_id,
            "certificateRegistrationTimestamp": str(
                int(self.certificate_registration_date.timestamp() * 1000)),
        }
