"""Device Defender detect: device metrics reports, cloud-side metrics, security profiles,
behaviors and violations.

* :func:`parse_report` / :func:`decode_payload` / :func:`report_id_of` — the device's
  metrics report (JSON or CBOR, long or short keys);
* :func:`parse_behavior`, :class:`Behavior`, :class:`Criteria`, :class:`MetricValue` —
  AWS's behavior shapes, validated;
* :func:`satisfies`, :func:`percentile`, :class:`AlarmTracker` — pure evaluation;
* :class:`DetectService` — profiles, targets, metric values, evaluation, violations;
* :class:`Learning`, :class:`NumericModel`, :class:`NoveltyModel` — ML Detect's models
  (peer groups, the device's own standing, slow change, novelty, fleet events);
* :func:`merge_samples` — one interval's cloud-side samples from several nodes as one;
* :class:`DetectMitigationTasks` — mitigation actions tasks over violations.
"""

from __future__ import annotations

from ._errors import (
    DetectError,
    InvalidRequestError,
    ReportRejected,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    VersionConflictError,
)
from ._evaluate import AlarmTracker, percentile, satisfies
from ._learning import Learning, TrainingSummary
from ._membership import thing_membership, thing_peer
from ._merge import merge_samples
from ._ml import CONFIDENCE, FleetEvent, NoveltyModel, NumericModel, peer_key
from ._model import (
    BUILTIN_METRICS,
    CLOUD_METRICS,
    DEVICE_METRICS,
    EXPLANATION_MEMBER,
    ML_METRICS,
    ML_SET_METRICS,
    ActiveViolation,
    Behavior,
    ComparisonOperator,
    Criteria,
    CriteriaType,
    CustomMetric,
    Datapoint,
    MetricType,
    MetricValue,
    SecurityProfile,
    VerificationState,
    ViolationEvent,
    ViolationEventType,
    parse_behavior,
)
from ._records import StoreRecords
from ._report import DeviceReport, decode_payload, parse_report, report_id_of
from ._service import (
    ALL_THINGS,
    REGISTERED,
    UNREGISTERED,
    DetectService,
    Dimension,
    dimension_key,
)
from ._tasks import (
    ActionOutcome,
    DetectMitigationExecution,
    DetectMitigationTask,
    DetectMitigationTasks,
    DetectTaskStatus,
    ExecutionStatus,
    TargetViolation,
)

__all__ = [
    "ALL_THINGS",
    "BUILTIN_METRICS",
    "CLOUD_METRICS",
    "CONFIDENCE",
    "DEVICE_METRICS",
    "EXPLANATION_MEMBER",
    "ML_METRICS",
    "ML_SET_METRICS",
    "REGISTERED",
    "UNREGISTERED",
    "ActionOutcome",
    "ActiveViolation",
    "AlarmTracker",
    "Behavior",
    "ComparisonOperator",
    "Criteria",
    "CriteriaType",
    "CustomMetric",
    "Datapoint",
    "DetectError",
    "DetectMitigationExecution",
    "DetectMitigationTask",
    "DetectMitigationTasks",
    "DetectService",
    "DetectTaskStatus",
    "DeviceReport",
    "Dimension",
    "ExecutionStatus",
    "FleetEvent",
    "InvalidRequestError",
    "Learning",
    "MetricType",
    "MetricValue",
    "NoveltyModel",
    "NumericModel",
    "ReportRejected",
    "ResourceAlreadyExistsError",
    "ResourceNotFoundError",
    "SecurityProfile",
    "StoreRecords",
    "TargetViolation",
    "TrainingSummary",
    "VerificationState",
    "VersionConflictError",
    "ViolationEvent",
    "ViolationEventType",
    "decode_payload",
    "dimension_key",
    "merge_samples",
    "parse_behavior",
    "parse_report",
    "peer_key",
    "percentile",
    "report_id_of",
    "satisfies",
    "thing_membership",
    "thing_peer",
]
