"""Values of threat detection: finding types, findings, signals.

A finding is GuardDuty's shape (type, severity, resource, service: action, evidence,
count, first and last seen, archived) for what Bastion sees on its own control plane
and device connections. The finding types are Bastion's, named the way GuardDuty names
its own (``ThreatPurpose:ResourceType/Name``): ``IoTAPI`` for access keys and the API,
``IoTControlPlane`` for risky changes, ``IoTDevice`` for device certificates.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Final


class ResourceKind(enum.StrEnum):
    ACCESS_KEY = "AccessKey"
    SOURCE = "SourceAddress"
    CONTROL_PLANE = "IoTControlPlane"
    CERTIFICATE = "IoTCertificate"
    TRAIL = "IoTTrail"


@dataclass(frozen=True, slots=True)
class FindingType:
    name: str
    severity: float  # GuardDuty's scale: 1-3.9 low, 4-6.9 medium, 7-8.9 high, 9-10 critical
    title: str
    resource: ResourceKind


def _types(*types: FindingType) -> dict[str, FindingType]:
    return {t.name: t for t in types}


TYPES: Final = _types(
    FindingType("CredentialAccess:IoTAPI/SignatureFailureBurst", 8.0,
                "A burst of failed API authentications from one address",
                ResourceKind.SOURCE),
    FindingType("UnauthorizedAccess:IoTAPI/NewSourceAddress", 3.0,
                "An access key was used from an address it never used", ResourceKind.ACCESS_KEY),
    FindingType("Discovery:IoTAPI/UnusualCallRate", 5.0,
                "An access key called the API far more often than it usually does",
                ResourceKind.ACCESS_KEY),
    FindingType("UnauthorizedAccess:IoTAPI/KeyUsedFromTwoAddresses", 7.0,
                "An access key was used from two addresses at once", ResourceKind.ACCESS_KEY),
    FindingType("UnauthorizedAccess:IoTAPI/ThreatListAddress", 8.0,
                "The API was called from an address on a threat list", ResourceKind.SOURCE),
    FindingType("PrivilegeEscalation:IoTControlPlane/PolicyWidenedToWildcard", 7.0,
                "A policy now allows every action or every resource",
                ResourceKind.CONTROL_PLANE),
    FindingType("DefenseEvasion:IoTControlPlane/LoggingReduced", 6.0,
                "IoT logging was turned off or down", ResourceKind.CONTROL_PLANE),
    FindingType("DefenseEvasion:IoTControlPlane/AuditScheduleDeleted", 6.0,
                "A scheduled audit was deleted", ResourceKind.CONTROL_PLANE),
    FindingType("Persistence:IoTControlPlane/CACertificateRegistered", 5.0,
                "A CA certificate was registered or activated", ResourceKind.CONTROL_PLANE),
    FindingType("Impact:IoTControlPlane/MassCertificateRevocation", 8.0,
                "Many certificates were revoked or deactivated in a short time",
                ResourceKind.CONTROL_PLANE),
    FindingType("Persistence:IoTControlPlane/MassCertificateCreation", 6.0,
                "Many certificates were created in a short time",
                ResourceKind.CONTROL_PLANE),
    FindingType("Persistence:IoTControlPlane/ClaimTemplateWithoutHook", 5.0,
                "A fleet provisioning template was saved without a pre-provisioning hook",
                ResourceKind.CONTROL_PLANE),
    FindingType("DefenseEvasion:IoTTrail/VerificationFailed", 9.0,
                "The trail of control-plane calls failed verification", ResourceKind.TRAIL),
    FindingType("UnauthorizedAccess:IoTDevice/CertificateCloned", 8.0,
                "A device certificate connected from several addresses",
                ResourceKind.CERTIFICATE),
    FindingType("CredentialAccess:IoTDevice/ConnectFailureBurst", 7.0,
                "A burst of refused device connections from one address",
                ResourceKind.SOURCE),
    FindingType("UnauthorizedAccess:IoTDevice/ThreatListAddress", 8.0,
                "A device connected from an address on a threat list",
                ResourceKind.CERTIFICATE),
)


@dataclass(frozen=True, slots=True)
class Signal:
    """One thing the detector saw that makes (or adds to) a finding.

    ``resource_id`` identifies what the finding is about (an access key, an address, a
    certificate, a policy); the same type and resource add to one finding (its count and
    last seen) instead of making a new one, as GuardDuty aggregates."""

    type: str
    resource_id: str
    at: float
    evidence: dict[str, Any] = field(default_factory=dict)
    source_ip: str = ""
    access_key_id: str = ""
    api: str = ""


@dataclass(slots=True)
class Finding:
    """One finding, aggregated over its signals."""

    id: str
    type: str
    resource_id: str
    first_seen: float
    last_seen: float
    count: int
    evidence: dict[str, Any]
    source_ip: str = ""
    access_key_id: str = ""
    api: str = ""
    archived: bool = False
    updated_at: float = 0.0

    @property
    def kind(self) -> FindingType:
        return TYPES[self.type]

    @property
    def severity(self) -> float:
        return self.kind.severity
