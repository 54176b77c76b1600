"""Device Defender audit: AWS IoT Device Defender's audit checks, tasks, findings,
suppressions, scheduled audits and mitigation tasks, on Bastion's registry, connection
journal, CRLs, key lists and logging options.

* :class:`AuditService` — account configuration, on-demand and scheduled audit tasks,
  findings, related resources, suppressions; :meth:`AuditService.run_due` for the
  scheduler;
* :class:`AuditMitigationService` — audit mitigation actions tasks and executions,
  applied through :class:`bastion.defender.mitigation.RegistryEffects` (so certificate
  changes reach live sessions);
* :class:`AuditScheduler`, waiting with any :class:`bastion.clock.Clock`;
* :class:`CrlRegistry` — CRL sources per issuing CA; :class:`WeakKeyLists` — the
  operator's compromised-key lists;
* :data:`CHECKS` — the catalog (severity, reason codes, settings, allowed actions).
"""

from __future__ import annotations

from .._errors import (
    DefenderError,
    InvalidRequestError,
    LimitExceededError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    TaskAlreadyExistsError,
)
from ._catalog import CHECKS, CheckSpec, ThresholdSetting
from ._crl import CrlRegistry, CrlSource, RevocationIndex
from ._keys import KeyQualityAssessor, KeyVerdict, WeakKeyLists, debian_fingerprint
from ._mitigation_tasks import AuditMitigationService, finding_message
from ._model import (
    AccountAuditConfiguration,
    AuditFrequency,
    AuditMitigationExecution,
    AuditMitigationTask,
    AuditTask,
    AuditTaskStatus,
    AuditTaskType,
    CheckConfiguration,
    CheckDetails,
    CheckName,
    CheckRunStatus,
    ConfigName,
    DayOfWeek,
    ExecutionStatus,
    Finding,
    MitigationCheckStatistics,
    MitigationTaskStatus,
    MitigationTaskTarget,
    NotificationTarget,
    Resource,
    ResourceIdentifier,
    ResourceType,
    ScheduledAudit,
    Severity,
    Suppression,
    TaskStatistics,
)
from ._schedule import next_run
from ._scheduler import AuditScheduler
from ._service import AuditService, Notifier

__all__ = [
    "CHECKS",
    "AccountAuditConfiguration",
    "AuditFrequency",
    "AuditMitigationExecution",
    "AuditMitigationService",
    "AuditMitigationTask",
    "AuditScheduler",
    "AuditService",
    "AuditTask",
    "AuditTaskStatus",
    "AuditTaskType",
    "CheckConfiguration",
    "CheckDetails",
    "CheckName",
    "CheckRunStatus",
    "CheckSpec",
    "ConfigName",
    "CrlRegistry",
    "CrlSource",
    "DayOfWeek",
    "DefenderError",
    "ExecutionStatus",
    "Finding",
    "InvalidRequestError",
    "KeyQualityAssessor",
    "KeyVerdict",
    "LimitExceededError",
    "MitigationCheckStatistics",
    "MitigationTaskStatus",
    "MitigationTaskTarget",
    "NotificationTarget",
    "Notifier",
    "Resource",
    "ResourceAlreadyExistsError",
    "ResourceIdentifier",
    "ResourceNotFoundError",
    "ResourceType",
    "RevocationIndex",
    "ScheduledAudit",
    "Severity",
    "Suppression",
    "TaskAlreadyExistsError",
    "TaskStatistics",
    "ThresholdSetting",
    "WeakKeyLists",
    "debian_fingerprint",
    "finding_message",
    "next_run",
]
