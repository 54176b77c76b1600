"""Values of the ACM analog and of domain configurations (frozen, as the API shows them)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from bastion.pki import PrivateKey

from ._policies import SecurityPolicy

DEFAULT_DOMAIN: Final = "iot:Data-ATS"
"""The reserved name of the default domain: the listeners' own server certificate."""


class DomainConfigurationStatus(enum.Enum):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


class DomainType(enum.Enum):
    ENDPOINT = "ENDPOINT"                    # the default domain
    CUSTOMER_MANAGED = "CUSTOMER_MANAGED"    # a name with an imported certificate


class ServiceType(enum.Enum):
    DATA = "DATA"
    CREDENTIAL_PROVIDER = "CREDENTIAL_PROVIDER"
    JOBS = "JOBS"


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """An imported certificate, as ACM's DescribeCertificate shows it (no key).

    :ivar status: ``ISSUED`` or, past ``not_after``, ``EXPIRED``.
    :ivar in_use_by: ARNs of the domain configurations that serve it.
    """

    arn: str
    certificate_id: str
    domain_name: str | None
    subject_alternative_names: tuple[str, ...]
    serial: str
    subject: str
    issuer: str
    imported_at: datetime
    not_before: datetime
    not_after: datetime
    key_algorithm: str
    signature_algorithm: str
    status: str
    in_use_by: tuple[str, ...]
    certificate_pem: str
    chain_pem: str | None


@dataclass(frozen=True, slots=True)
class DomainConfiguration:
    """A domain configuration, as DescribeDomainConfiguration shows it.

    :ivar domain_name: ``None`` for the default domain when no public host is configured.
    :ivar server_certificate_arn: the ACM ARN served; ``None`` for the default domain.
    :ivar server_certificate_valid: the certificate exists and has not expired.
    :ivar settings: ``authorizerConfig``, ``authenticationType``,
        ``applicationProtocol`` as given (kept and answered; Bastion authenticates every
        MQTT domain with X.509 client certificates).
    """

    name: str
    arn: str
    domain_name: str | None
    server_certificate_arn: str | None
    server_certificate_valid: bool
    status: DomainConfigurationStatus
    service_type: ServiceType
    domain_type: DomainType
    security_policy: str
    last_status_change: datetime
    settings: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ServedDomain:
    """What the listeners need to serve one domain (the SNI side of
    :class:`DomainConfiguration`).

    :ivar domain_name: the server name (lower case); ``None`` for the default domain,
        served with the data directory's certificate.
    :ivar certificate_chain_pem: the certificate then its chain; ``None`` for the default.
    :ivar key: the certificate's private key, unsealed; ``None`` for the default.
    """

    domain_name: str | None
    enabled: bool
    policy: SecurityPolicy
    certificate_chain_pem: bytes | None
    key: PrivateKey | None = None
