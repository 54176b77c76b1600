"""Values of the audit: check names, severities, resources, findings, tasks, schedules,
suppressions and mitigation tasks.

Names and enum values are AWS's (``DEVICE_CERTIFICATE_SHARED_CHECK``, ``CRITICAL``,
``COMPLETED_NON_COMPLIANT``). Resource identifiers are kept in AWS's wire shape
(``{"deviceCertificateId": …}``, ``{"policyVersionIdentifier": {"policyName": …,
"policyVersionId": …}}``) because that is what callers send back to filter findings and
to create suppressions; :attr:`ResourceIdentifier.key` is the canonical digest the store
matches them on.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any


class CheckName(enum.StrEnum):
    """Every audit check Bastion knows: AWS's, and Bastion's own (last three)."""

    AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK = (
        "AUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK")
    CA_CERTIFICATE_EXPIRING_CHECK = "CA_CERTIFICATE_EXPIRING_CHECK"
    CA_CERTIFICATE_KEY_QUALITY_CHECK = "CA_CERTIFICATE_KEY_QUALITY_CHECK"
    CONFLICTING_CLIENT_IDS_CHECK = "CONFLICTING_CLIENT_IDS_CHECK"
    DEVICE_CERTIFICATE_AGE_CHECK = "DEVICE_CERTIFICATE_AGE_CHECK"
    DEVICE_CERTIFICATE_EXPIRING_CHECK = "DEVICE_CERTIFICATE_EXPIRING_CHECK"
    DEVICE_CERTIFICATE_KEY_QUALITY_CHECK = "DEVICE_CERTIFICATE_KEY_QUALITY_CHECK"
    DEVICE_CERTIFICATE_SHARED_CHECK = "DEVICE_CERTIFICATE_SHARED_CHECK"
    INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK = (
        "INTERMEDIATE_CA_REVOKED_FOR_ACTIVE_DEVICE_CERTIFICATES_CHECK")
    IOT_POLICY_OVERLY_PERMISSIVE_CHECK = "IOT_POLICY_OVERLY_PERMISSIVE_CHECK"
    IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK = "IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK"
    IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK = (
        "IOT_ROLE_ALIAS_ALLOWS_ACCESS_TO_UNUSED_SERVICES_CHECK")
    IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK = "IOT_ROLE_ALIAS_OVERLY_PERMISSIVE_CHECK"
    LOGGING_DISABLED_CHECK = "LOGGING_DISABLED_CHECK"
    REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK = "REVOKED_CA_CERTIFICATE_STILL_ACTIVE_CHECK"
    REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK = (
        "REVOKED_DEVICE_CERTIFICATE_STILL_ACTIVE_CHECK")
    UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK = (
        "UNAUTHENTICATED_COGNITO_ROLE_OVERLY_PERMISSIVE_CHECK")
    # -- Bastion's own checks --
    DEVICE_CERTIFICATE_ATTACHED_TO_MULTIPLE_THINGS_CHECK = (
        "DEVICE_CERTIFICATE_ATTACHED_TO_MULTIPLE_THINGS_CHECK")
    IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK = "IOT_POLICY_ALLOWS_ALL_ACTIONS_CHECK"
    CLAIM_PROVISIONING_TEMPLATE_WITHOUT_HOOK_CHECK = (
        "CLAIM_PROVISIONING_TEMPLATE_WITHOUT_HOOK_CHECK")


class Severity(enum.StrEnum):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class ResourceType(enum.StrEnum):
    DEVICE_CERTIFICATE = "DEVICE_CERTIFICATE"
    CA_CERTIFICATE = "CA_CERTIFICATE"
    IOT_POLICY = "IOT_POLICY"
    COGNITO_IDENTITY_POOL = "COGNITO_IDENTITY_POOL"
    CLIENT_ID = "CLIENT_ID"
    ACCOUNT_SETTINGS = "ACCOUNT_SETTINGS"
    ROLE_ALIAS = "ROLE_ALIAS"
    IAM_ROLE = "IAM_ROLE"
    ISSUER_CERTIFICATE = "ISSUER_CERTIFICATE"
    # Bastion's own: a fleet provisioning template (no AWS check looks at templates).
    PROVISIONING_TEMPLATE = "PROVISIONING_TEMPLATE"


class ConfigName(enum.StrEnum):
    CERT_AGE_THRESHOLD_IN_DAYS = "CERT_AGE_THRESHOLD_IN_DAYS"
    CERT_EXPIRATION_THRESHOLD_IN_DAYS = "CERT_EXPIRATION_THRESHOLD_IN_DAYS"


class AuditTaskType(enum.StrEnum):
    ON_DEMAND_AUDIT_TASK = "ON_DEMAND_AUDIT_TASK"
    SCHEDULED_AUDIT_TASK = "SCHEDULED_AUDIT_TASK"


class AuditTaskStatus(enum.StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class CheckRunStatus(enum.StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    WAITING_FOR_DATA_COLLECTION = "WAITING_FOR_DATA_COLLECTION"
    CANCELED = "CANCELED"
    COMPLETED_COMPLIANT = "COMPLETED_COMPLIANT"
    COMPLETED_NON_COMPLIANT = "COMPLETED_NON_COMPLIANT"
    FAILED = "FAILED"


class AuditFrequency(enum.StrEnum):
    DAILY = "DAILY"
    WEEKLY = "WEEKLY"
    BIWEEKLY = "BIWEEKLY"
    MONTHLY = "MONTHLY"


class DayOfWeek(enum.StrEnum):
    SUN = "SUN"
    MON = "MON"
    TUE = "TUE"
    WED = "WED"
    THU = "THU"
    FRI = "FRI"
    SAT = "SAT"

    @property
    def weekday(self) -> int:
        """Python's weekday number (Monday 0 … Sunday 6)."""
        return ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN").index(self.value)


class MitigationTaskStatus(enum.StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class ExecutionStatus(enum.StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    SKIPPED = "SKIPPED"
    PENDING = "PENDING"


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _frozen(v) for k, v in value.items()})
    return value


def _thawed(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thawed(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class ResourceIdentifier:
    """A resource in AWS's ``ResourceIdentifier`` shape. Build one with the class
    methods; :meth:`from_json` validates what a caller sent.

    :ivar fields: the members, e.g. ``{"deviceCertificateId": "<64 hex>"}``.
    """

    fields: Mapping[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", _frozen(self.fields))

    @classmethod
    def device_certificate(cls, certificate_id: str) -> ResourceIdentifier:
        return cls({"deviceCertificateId": certificate_id})

    @classmethod
    def ca_certificate(cls, certificate_id: str) -> ResourceIdentifier:
        return cls({"caCertificateId": certificate_id})

    @classmethod
    def client(cls, client_id: str) -> ResourceIdentifier:
        return cls({"clientId": client_id})

    @classmethod
    def policy_version(cls, policy_name: str, version_id: str) -> ResourceIdentifier:
        return cls({"policyVersionIdentifier": {"policyName": policy_name,
                                                "policyVersionId": version_id}})

    @classmethod
    def account_settings(cls, account_id: str) -> ResourceIdentifier:
        return cls({"account": account_id})

    @classmethod
    def issuer_certificate(cls, subject: str, issuer_id: str,
                           serial_number: str) -> ResourceIdentifier:
        return cls({"issuerCertificateIdentifier": {
            "issuerCertificateSubject": subject, "issuerId": issuer_id,
            "issuerCertificateSerialNumber": serial_number}})

    @classmethod
    def provisioning_template(cls, template_name: str) -> ResourceIdentifier:
        """Bastion's own member: not in AWS's model, so the API shows the template's name
        in ``additionalInfo`` instead."""
        return cls({"provisioningTemplateName": template_name})

    @classmethod
    def from_json(cls, value: object) -> ResourceIdentifier:
        """A caller's identifier (from the API: members already type-checked).

        :raises ValueError: not a non-empty mapping.
        """
        if not isinstance(value, Mapping) or not value:
            raise ValueError("resourceIdentifier must name a resource")
        return cls({k: v for k, v in value.items() if v is not None})

    def as_json(self) -> dict[str, Any]:
        result: dict[str, Any] = _thawed(self.fields)
        return result

    @property
    def key(self) -> str:
        """SHA-256 (hex) of the canonical JSON: equal identifiers, equal keys."""
        text = json.dumps(self.as_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Resource:
    """``NonCompliantResource`` / ``RelatedResource``."""

    resource_type: ResourceType
    identifier: ResourceIdentifier
    additional_info: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "additional_info",
                           MappingProxyType(dict(self.additional_info)))

    def as_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"resourceType": self.resource_type.value,
                                  "resourceIdentifier": self.identifier.as_json()}
        if self.additional_info:
            result["additionalInfo"] = dict(self.additional_info)
        return result

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Resource:
        return cls(ResourceType(value["resourceType"]),
                   ResourceIdentifier(value["resourceIdentifier"]),
                   dict(value.get("additionalInfo") or {}))


@dataclass(frozen=True, slots=True)
class FindingDraft:
    """What a check reports about one noncompliant resource."""

    resource: Resource
    reason_code: str
    reason: str
    related: tuple[Resource, ...] = ()


@dataclass(frozen=True, slots=True)
class Finding:
    """An ``AuditFinding``."""

    finding_id: str
    task_id: str
    check_name: str
    task_start_time: datetime
    finding_time: datetime
    severity: Severity
    non_compliant_resource: Resource
    related_resources: tuple[Resource, ...]
    reason: str
    reason_code: str
    is_suppressed: bool


@dataclass(frozen=True, slots=True)
class CheckConfiguration:
    """One check's account settings: enabled, and its ``configuration`` values."""

    enabled: bool
    configuration: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "configuration", MappingProxyType(dict(self.configuration)))


@dataclass(frozen=True, slots=True)
class NotificationTarget:
    """``AuditNotificationTarget``: for ``SNS``, ``target_arn`` names a Bastion alert
    target (``arn:aws:sns:<region>:<account>:<target name>``)."""

    target_arn: str | None
    role_arn: str | None
    enabled: bool


@dataclass(frozen=True, slots=True)
class AccountAuditConfiguration:
    role_arn: str | None
    notification_targets: Mapping[str, NotificationTarget]
    checks: Mapping[str, CheckConfiguration]


@dataclass(frozen=True, slots=True)
class CheckDetails:
    """``AuditCheckDetails`` of one check of a task."""

    run_status: CheckRunStatus
    compliant: bool | None = None
    total_resources: int | None = None
    non_compliant_resources: int | None = None
    suppressed_non_compliant_resources: int | None = None
    error_code: str | None = None
    message: str | None = None

    def as_json(self) -> dict[str, Any]:
        values = {
            "checkRunStatus": self.run_status.value,
            "checkCompliant": self.compliant,
            "totalResourcesCount": self.total_resources,
            "nonCompliantResourcesCount": self.non_compliant_resources,
            "suppressedNonCompliantResourcesCount": self.suppressed_non_compliant_resources,
            "errorCode": self.error_code,
            "message": self.message,
        }
        return {k: v for k, v in values.items() if v is not None}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> CheckDetails:
        return cls(CheckRunStatus(value["checkRunStatus"]), value.get("checkCompliant"),
                   value.get("totalResourcesCount"), value.get("nonCompliantResourcesCount"),
                   value.get("suppressedNonCompliantResourcesCount"), value.get("errorCode"),
                   value.get("message"))


@dataclass(frozen=True, slots=True)
class TaskStatistics:
    total_checks: int
    in_progress_checks: int
    waiting_for_data_collection_checks: int
    compliant_checks: int
    non_compliant_checks: int
    failed_checks: int
    canceled_checks: int


@dataclass(frozen=True, slots=True)
class AuditTask:
    task_id: str
    task_type: AuditTaskType
    status: AuditTaskStatus
    start_time: datetime
    end_time: datetime | None
    scheduled_audit_name: str | None
    details: Mapping[str, CheckDetails]

    @property
    def statistics(self) -> TaskStatistics:
        statuses = [d.run_status for d in self.details.values()]
        return TaskStatistics(
            total_checks=len(statuses),
            in_progress_checks=statuses.count(CheckRunStatus.IN_PROGRESS),
            waiting_for_data_collection_checks=statuses.count(
                CheckRunStatus.WAITING_FOR_DATA_COLLECTION),
            compliant_checks=statuses.count(CheckRunStatus.COMPLETED_COMPLIANT),
            non_compliant_checks=statuses.count(CheckRunStatus.COMPLETED_NON_COMPLIANT),
            failed_checks=statuses.count(CheckRunStatus.FAILED),
            canceled_checks=statuses.count(CheckRunStatus.CANCELED),
        )


@dataclass(frozen=True, slots=True)
class ScheduledAudit:
    name: str
    arn: str
    frequency: AuditFrequency
    day_of_week: DayOfWeek | None
    day_of_month: str | None
    check_names: tuple[str, ...]
    next_run_time: datetime
    last_run_time: datetime | None


@dataclass(frozen=True, slots=True)
class Suppression:
    check_name: str
    identifier: ResourceIdentifier
    expiration_date: datetime | None
    suppress_indefinitely: bool
    description: str | None


@dataclass(frozen=True, slots=True)
class MitigationTaskTarget:
    """``AuditMitigationActionsTaskTarget``: exactly one way of naming the findings
    (an audit task, optionally narrowed by check → reason codes; or finding ids)."""

    audit_task_id: str | None = None
    finding_ids: tuple[str, ...] | None = None
    check_to_reason_codes: Mapping[str, tuple[str, ...]] | None = None

    def as_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.audit_task_id is not None:
            result["auditTaskId"] = self.audit_task_id
        if self.finding_ids is not None:
            result["findingIds"] = list(self.finding_ids)
        if self.check_to_reason_codes is not None:
            result["auditCheckToReasonCodeFilter"] = {
                k: list(v) for k, v in self.check_to_reason_codes.items()}
        return result

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> MitigationTaskTarget:
        codes = value.get("auditCheckToReasonCodeFilter")
        ids = value.get("findingIds")
        return cls(value.get("auditTaskId"), None if ids is None else tuple(ids),
                   None if codes is None else {k: tuple(v) for k, v in codes.items()})


@dataclass(frozen=True, slots=True)
class MitigationCheckStatistics:
    """``TaskStatisticsForAuditCheck``: counts of executions (finding × action)."""

    total: int
    failed: int
    succeeded: int
    skipped: int
    canceled: int


@dataclass(frozen=True, slots=True)
class AuditMitigationTask:
    task_id: str
    status: MitigationTaskStatus
    start_time: datetime
    end_time: datetime | None
    target: MitigationTaskTarget
    actions_mapping: Mapping[str, tuple[str, ...]]
    statistics: Mapping[str, MitigationCheckStatistics]


@dataclass(frozen=True, slots=True)
class AuditMitigationExecution:
    task_id: str
    finding_id: str
    action_name: str
    action_id: str
    status: ExecutionStatus
    start_time: datetime
    end_time: datetime | None
    error_code: str | None
    message: str | None
