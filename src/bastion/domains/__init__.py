"""Domain configurations: server names the MQTT listeners serve with their own
certificates, chosen by SNI, each with a TLS security policy and a status; and the ACM
analog that holds those certificates (ImportCertificate and friends, keys sealed at
rest). See ``docs/domains.md``."""

from __future__ import annotations

from ._errors import (
    CertificateInUseError,
    CertificateInvalidError,
    CertificateNotFoundError,
    CertificateValidationError,
    DomainExistsError,
    DomainNotFoundError,
    DomainsError,
    InvalidArnError,
    InvalidDomainRequestError,
)
from ._events import ServedDomainsChanged
from ._model import (
    DEFAULT_DOMAIN,
    DomainConfiguration,
    DomainConfigurationStatus,
    DomainType,
    ServedDomain,
    ServerCertificate,
    ServiceType,
)
from ._policies import (
    DEFAULT_SECURITY_POLICY,
    SECURITY_POLICIES,
    SecurityPolicy,
    security_policy,
)
from ._service import DomainService
from ._x509 import covers

__all__ = [
    "DEFAULT_DOMAIN",
    "DEFAULT_SECURITY_POLICY",
    "SECURITY_POLICIES",
    "CertificateInUseError",
    "CertificateInvalidError",
    "CertificateNotFoundError",
    "CertificateValidationError",
    "DomainConfiguration",
    "DomainConfigurationStatus",
    "DomainExistsError",
    "DomainNotFoundError",
    "DomainService",
    "DomainType",
    "DomainsError",
    "InvalidArnError",
    "InvalidDomainRequestError",
    "SecurityPolicy",
    "ServedDomain",
    "ServedDomainsChanged",
    "ServerCertificate",
    "ServiceType",
    "covers",
    "security_policy",
]
