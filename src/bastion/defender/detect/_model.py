"""Values of detect: metric values, the metric catalogue, behaviors and their criteria.

Behaviors arrive in AWS's JSON shape (``Behavior`` / ``BehaviorCriteria`` /
``MetricValue``) and go back out in it; :func:`parse_behavior` validates like AWS
(operator ↔ value type, statistic names, datapoint counts, durations).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ._errors import InvalidRequestError

NAME_PATTERN: Final = re.compile(r"^[a-zA-Z0-9:_-]{1,128}$")
STATISTICS: Final = ("p0", "p0.1", "p0.01", "p1", "p10", "p50", "p90", "p99", "p99.9",
                     "p99.99", "p100")
DURATIONS: Final = (300, 600, 900, 1800, 3600)


class MetricType(enum.StrEnum):
    """How a metric's values look and which operators apply."""

    NUMBER = "number"
    NUMBER_LIST = "number-list"
    STRING_LIST = "string-list"
    IP_ADDRESS_LIST = "ip-address-list"
    PORT_LIST = "port-list"  # built-in listening-port sets only


CLOUD_METRICS: Final[dict[str, MetricType]] = {
    "aws:num-messages-sent": MetricType.NUMBER,
    "aws:num-messages-received": MetricType.NUMBER,
    "aws:message-byte-size": MetricType.NUMBER,
    "aws:num-authorization-failures": MetricType.NUMBER,
    "aws:num-connection-attempts": MetricType.NUMBER,
    "aws:num-disconnects": MetricType.NUMBER,
    "aws:source-ip-address": MetricType.IP_ADDRESS_LIST,
    "aws:disconnect-duration": MetricType.NUMBER,
    # Bastion's own: deliveries to the device that were dropped (its queue at its cap,
    # QoS 0 to a backed-up socket, expired or too large for it). Not an AWS metric.
    "bastion:num-messages-dropped": MetricType.NUMBER,
}
DEVICE_METRICS: Final[dict[str, MetricType]] = {
    "aws:all-bytes-out": MetricType.NUMBER,
    "aws:all-bytes-in": MetricType.NUMBER,
    "aws:all-packets-out": MetricType.NUMBER,
    "aws:all-packets-in": MetricType.NUMBER,
    "aws:num-listening-tcp-ports": MetricType.NUMBER,
    "aws:num-listening-udp-ports": MetricType.NUMBER,
    "aws:num-established-tcp-connections": MetricType.NUMBER,
    "aws:listening-tcp-ports": MetricType.PORT_LIST,
    "aws:listening-udp-ports": MetricType.PORT_LIST,
    "aws:destination-ip-addresses": MetricType.IP_ADDRESS_LIST,
}
BUILTIN_METRICS: Final = {**CLOUD_METRICS, **DEVICE_METRICS}
ACCUMULATING: Final = frozenset({
    "aws:num-messages-sent", "aws:num-messages-received", "aws:num-authorization-failures",
    "aws:num-connection-attempts", "aws:num-disconnects", "bastion:num-messages-dropped",
    "aws:all-bytes-out",
    "aws:all-bytes-in", "aws:all-packets-out", "aws:all-packets-in",
})
"""Per-interval counts: over ``durationSeconds`` their datapoints are summed."""
ML_METRICS: Final = frozenset({
    "aws:num-authorization-failures", "aws:num-connection-attempts", "aws:num-disconnects",
    "aws:num-messages-sent", "aws:num-messages-received", "aws:message-byte-size",
    "aws:all-bytes-out", "aws:all-bytes-in", "aws:all-packets-out", "aws:all-packets-in",
    "aws:num-listening-tcp-ports", "aws:num-listening-udp-ports",
    "aws:num-established-tcp-connections",
})
"""The metrics AWS's ML Detect models."""
ML_SET_METRICS: Final = frozenset({
    "aws:listening-tcp-ports", "aws:listening-udp-ports", "aws:destination-ip-addresses",
})
"""Set-valued metrics Bastion also models (novelty); AWS refuses ML on them."""
CONFIDENCE_LEVELS: Final = ("LOW", "MEDIUM", "HIGH")
DIMENSION_METRICS: Final = frozenset({
    "aws:num-messages-sent", "aws:num-messages-received", "aws:message-byte-size",
    "aws:num-authorization-failures",
})
"""Metrics that accept a TOPIC_FILTER ``metricDimension``."""


class ComparisonOperator(enum.StrEnum):
    LESS_THAN = "less-than"
    LESS_THAN_EQUALS = "less-than-equals"
    GREATER_THAN = "greater-than"
    GREATER_THAN_EQUALS = "greater-than-equals"
    IN_CIDR_SET = "in-cidr-set"
    NOT_IN_CIDR_SET = "not-in-cidr-set"
    IN_PORT_SET = "in-port-set"
    NOT_IN_PORT_SET = "not-in-port-set"
    IN_SET = "in-set"
    NOT_IN_SET = "not-in-set"


NUMERIC_OPERATORS: Final = frozenset({
    ComparisonOperator.LESS_THAN, ComparisonOperator.LESS_THAN_EQUALS,
    ComparisonOperator.GREATER_THAN, ComparisonOperator.GREATER_THAN_EQUALS})
OPERATORS_FOR: Final[dict[MetricType, frozenset[ComparisonOperator]]] = {
    MetricType.NUMBER: NUMERIC_OPERATORS,
    MetricType.NUMBER_LIST: frozenset({ComparisonOperator.IN_SET,
                                       ComparisonOperator.NOT_IN_SET}),
    MetricType.STRING_LIST: frozenset({ComparisonOperator.IN_SET,
                                       ComparisonOperator.NOT_IN_SET}),
    MetricType.IP_ADDRESS_LIST: frozenset({ComparisonOperator.IN_CIDR_SET,
                                           ComparisonOperator.NOT_IN_CIDR_SET}),
    MetricType.PORT_LIST: frozenset({ComparisonOperator.IN_PORT_SET,
                                     ComparisonOperator.NOT_IN_PORT_SET}),
}


class ViolationEventType(enum.StrEnum):
    IN_ALARM = "in-alarm"
    ALARM_CLEARED = "alarm-cleared"
    ALARM_INVALIDATED = "alarm-invalidated"


class VerificationState(enum.StrEnum):
    FALSE_POSITIVE = "FALSE_POSITIVE"
    BENIGN_POSITIVE = "BENIGN_POSITIVE"
    TRUE_POSITIVE = "TRUE_POSITIVE"
    UNKNOWN = "UNKNOWN"


class CriteriaType(enum.StrEnum):
    STATIC = "STATIC"
    STATISTICAL = "STATISTICAL"
    MACHINE_LEARNING = "MACHINE_LEARNING"


@dataclass(frozen=True, slots=True)
class MetricValue:
    """AWS ``MetricValue``: exactly the members that are set."""

    count: int | None = None
    number: float | None = None
    numbers: tuple[float, ...] | None = None
    strings: tuple[str, ...] | None = None
    cidrs: tuple[str, ...] | None = None
    ports: tuple[int, ...] | None = None

    def scalar(self) -> float | None:
        """The numeric value of a count/number datapoint."""
        if self.count is not None:
            return float(self.count)
        return self.number

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("count", "number", "numbers", "strings", "cidrs", "ports"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_json(cls, data: object, what: str = "value") -> MetricValue:
        """Parse an AWS ``MetricValue``.

        :raises InvalidRequestError: not an object, an unknown member or a bad element.
        """
        if not isinstance(data, Mapping):
            raise InvalidRequestError(f"{what} must be an object")
        unknown = set(data) - {"count", "number", "numbers", "strings", "cidrs", "ports"}
        if unknown:
            raise InvalidRequestError(f"{what}: unknown member {min(unknown)}")
        kwargs: dict[str, Any] = {}
        if "count" in data:
            count = data["count"]
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise InvalidRequestError(f"{what}.count must be an unsigned integer")
            kwargs["count"] = count
        if "number" in data:
            kwargs["number"] = _number(data["number"], f"{what}.number")
        if "numbers" in data:
            kwargs["numbers"] = tuple(_number(n, f"{what}.numbers")
                                      for n in _list(data["numbers"], f"{what}.numbers"))
        if "strings" in data:
            strings = _list(data["strings"], f"{what}.strings")
            if not all(isinstance(s, str) for s in strings):
                raise InvalidRequestError(f"{what}.strings must be strings")
            kwargs["strings"] = tuple(strings)
        if "cidrs" in data:
            cidrs = _list(data["cidrs"], f"{what}.cidrs")
            for cidr in cidrs:
                if not isinstance(cidr, str) or not 2 <= len(cidr) <= 43:
                    raise InvalidRequestError(f"{what}.cidrs: bad CIDR {cidr!r}")
                try:
                    ipaddress.ip_network(cidr, strict=False)
                except ValueError:
                    raise InvalidRequestError(f"{what}.cidrs: bad CIDR {cidr!r}") from None
            kwargs["cidrs"] = tuple(cidrs)
        if "ports" in data:
            ports = _list(data["ports"], f"{what}.ports")
            for port in ports:
                if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                    raise InvalidRequestError(f"{what}.ports: bad port {port!r}")
            kwargs["ports"] = tuple(ports)
        return cls(**kwargs)


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequestError(f"{what} must be a number")
    return float(value)


def _list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequestError(f"{what} must be a list")
    return value


@dataclass(frozen=True, slots=True)
class MetricDimension:
    dimension_name: str
    operator: str = "IN"  # IN | NOT_IN

    def to_json(self) -> dict[str, Any]:
        return {"dimensionName": self.dimension_name, "operator": self.operator}


@dataclass(frozen=True, slots=True)
class Criteria:
    """AWS ``BehaviorCriteria``: a comparison (static or statistical), or an ML
    detection config (``ml_confidence``; then ``comparison_operator`` is ``None``)."""

    comparison_operator: ComparisonOperator | None
    value: MetricValue | None = None
    duration_seconds: int | None = None
    consecutive_datapoints_to_alarm: int = 1
    consecutive_datapoints_to_clear: int = 1
    statistic: str | None = None
    ml_confidence: str | None = None

    @property
    def kind(self) -> CriteriaType:
        if self.ml_confidence is not None:
            return CriteriaType.MACHINE_LEARNING
        return CriteriaType.STATISTICAL if self.statistic else CriteriaType.STATIC

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"consecutiveDatapointsToAlarm":
                                   self.consecutive_datapoints_to_alarm,
                               "consecutiveDatapointsToClear":
                                   self.consecutive_datapoints_to_clear}
        if self.ml_confidence is not None:
            out["mlDetectionConfig"] = {"confidenceLevel": self.ml_confidence}
        if self.comparison_operator is not None:
            out["comparisonOperator"] = self.comparison_operator.value
        if self.value is not None:
            out["value"] = self.value.to_json()
        if self.duration_seconds is not None:
            out["durationSeconds"] = self.duration_seconds
        if self.statistic is not None:
            out["statisticalThreshold"] = {"statistic": self.statistic}
        return out


@dataclass(frozen=True, slots=True)
class Behavior:
    """AWS ``Behavior``; ``severe`` is Bastion's mark for certificate deactivation."""

    name: str
    metric: str
    criteria: Criteria
    metric_dimension: MetricDimension | None = None
    suppress_alerts: bool = False
    export_metric: bool = False
    severe: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "metric": self.metric,
                               "criteria": self.criteria.to_json(),
                               "suppressAlerts": self.suppress_alerts}
        if self.export_metric:
            out["exportMetric"] = True
        if self.metric_dimension is not None:
            out["metricDimension"] = self.metric_dimension.to_json()
        return out


@dataclass(frozen=True, slots=True)
class CustomMetric:
    name: str
    metric_type: MetricType
    display_name: str = ""


def parse_behavior(data: object, custom: Mapping[str, MetricType] | None = None,
                   dimensions: frozenset[str] | None = None, *,
                   ml_sets: bool = True) -> Behavior:
    """Validate one AWS ``Behavior`` document.

    :param custom: the custom metrics that exist (name → type).
    :param dimensions: names of the dimensions that exist (``None``: do not check).
    :param ml_sets: accept ML detection on the set metrics of :data:`ML_SET_METRICS`
        (Bastion's; ``False`` refuses them as AWS does).
    :raises InvalidRequestError: anything AWS's ValidateSecurityProfileBehaviors refuses.
    """
    if not isinstance(data, Mapping):
        raise InvalidRequestError("a behavior must be an object")
    name = data.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InvalidRequestError(f"bad behavior name {name!r}")
    metric = data.get("metric")
    if not isinstance(metric, str) or not metric:
        raise InvalidRequestError(f"behavior {name}: metric is required")
    metric_type = BUILTIN_METRICS.get(metric) or (custom or {}).get(metric)
    if metric_type is None:
        raise InvalidRequestError(f"behavior {name}: unknown metric {metric}")
    raw = data.get("criteria")
    if not isinstance(raw, Mapping):
        raise InvalidRequestError(f"behavior {name}: criteria are required")
    if raw.get("mlDetectionConfig") is not None:
        return _ml_behavior(data, raw, name, metric, ml_sets)
    try:
        operator = ComparisonOperator(str(raw.get("comparisonOperator")))
    except ValueError:
        raise InvalidRequestError(
            f"behavior {name}: bad comparisonOperator {raw.get('comparisonOperator')!r}"
        ) from None
    if operator not in OPERATORS_FOR[metric_type]:
        raise InvalidRequestError(
            f"behavior {name}: {operator.value} does not apply to {metric}")
    statistic: str | None = None
    if "statisticalThreshold" in raw:
        threshold = raw["statisticalThreshold"]
        statistic = threshold.get("statistic") if isinstance(threshold, Mapping) else None
        if statistic not in STATISTICS:
            raise InvalidRequestError(f"behavior {name}: bad statistic {statistic!r}")
        if metric_type is not MetricType.NUMBER:
            raise InvalidRequestError(
                f"behavior {name}: statistical thresholds apply to numeric metrics only")
    value: MetricValue | None = None
    if "value" in raw:
        value = MetricValue.from_json(raw["value"], f"behavior {name} value")
        _check_value_fits(name, metric_type, value)
    elif statistic is None:
        raise InvalidRequestError(f"behavior {name}: criteria need a value")
    if statistic is not None and value is not None:
        raise InvalidRequestError(
            f"behavior {name}: a statistical threshold and a value are exclusive")
    duration = raw.get("durationSeconds")
    if duration is not None:
        if isinstance(duration, bool) or not isinstance(duration, int) or duration <= 0:
            raise InvalidRequestError(f"behavior {name}: bad durationSeconds")
        if metric_type is not MetricType.NUMBER:
            raise InvalidRequestError(
                f"behavior {name}: durationSeconds does not apply to list metrics")
    elif statistic is not None and metric in ACCUMULATING:
        raise InvalidRequestError(
            f"behavior {name}: a statistical threshold needs durationSeconds")
    to_alarm = _datapoints(raw, "consecutiveDatapointsToAlarm", name)
    to_clear = _datapoints(raw, "consecutiveDatapointsToClear", name)
    dimension: MetricDimension | None = None
    if "metricDimension" in data and data["metricDimension"] is not None:
        dim = data["metricDimension"]
        if not isinstance(dim, Mapping) or not isinstance(dim.get("dimensionName"), str):
            raise InvalidRequestError(f"behavior {name}: bad metricDimension")
        if metric not in DIMENSION_METRICS:
            raise InvalidRequestError(f"behavior {name}: {metric} takes no dimension")
        if dimensions is not None and dim["dimensionName"] not in dimensions:
            raise InvalidRequestError(
                f"behavior {name}: no dimension {dim['dimensionName']}")
        op = dim.get("operator", "IN")
        if op not in ("IN", "NOT_IN"):
            raise InvalidRequestError(f"behavior {name}: bad dimension operator {op!r}")
        dimension = MetricDimension(dim["dimensionName"], op)
    flags = _flags(data, name)
    return Behavior(name, metric,
                    Criteria(operator, value, duration, to_alarm, to_clear, statistic),
                    dimension, flags["suppressAlerts"], flags["exportMetric"],
                    flags["severe"])


def _ml_behavior(data: Mapping[str, Any], raw: Mapping[str, Any], name: str, metric: str,
                 ml_sets: bool) -> Behavior:
    """An ML behavior: ``criteria`` holds ``mlDetectionConfig`` and the datapoint counts
    only; the metric is one ML Detect models."""
    config = raw["mlDetectionConfig"]
    level = config.get("confidenceLevel") if isinstance(config, Mapping) else None
    if level not in CONFIDENCE_LEVELS:
        raise InvalidRequestError(
            f"behavior {name}: mlDetectionConfig.confidenceLevel must be LOW, MEDIUM or "
            "HIGH")
    if metric not in ML_METRICS and not (ml_sets and metric in ML_SET_METRICS):
        raise InvalidRequestError(f"behavior {name}: ML detection does not support {metric}")
    for key in ("comparisonOperator", "value", "statisticalThreshold", "durationSeconds"):
        if raw.get(key) is not None:
            raise InvalidRequestError(
                f"behavior {name}: {key} cannot be used with mlDetectionConfig")
    if data.get("metricDimension") is not None:
        raise InvalidRequestError(
            f"behavior {name}: metricDimension cannot be used with mlDetectionConfig")
    flags = _flags(data, name)
    return Behavior(name, metric, Criteria(
        None, None, None, _datapoints(raw, "consecutiveDatapointsToAlarm", name),
        _datapoints(raw, "consecutiveDatapointsToClear", name), None, str(level)),
        None, flags["suppressAlerts"], flags["exportMetric"], flags["severe"])


def _flags(data: Mapping[str, Any], name: str) -> dict[str, bool]:
    """A behavior's boolean members (``suppressAlerts``, ``exportMetric``, ``severe``)."""
    flags = {}
    for key in ("suppressAlerts", "exportMetric", "severe"):
        flag = data.get(key, False)
        if not isinstance(flag, bool):
            raise InvalidRequestError(f"behavior {name}: {key} must be a boolean")
        flags[key] = flag
    return flags


def _datapoints(raw: Mapping[str, Any], key: str, name: str) -> int:
    value = raw.get(key, 1)
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
        raise InvalidRequestError(f"behavior {name}: {key} must be 1..10")
    return value


def _check_value_fits(name: str, metric_type: MetricType, value: MetricValue) -> None:
    members = {key for key in ("count", "number", "numbers", "strings", "cidrs", "ports")
               if getattr(value, key) is not None}
    allowed = {
        MetricType.NUMBER: {"count", "number"},
        MetricType.NUMBER_LIST: {"numbers"},
        MetricType.STRING_LIST: {"strings"},
        MetricType.IP_ADDRESS_LIST: {"cidrs"},
        MetricType.PORT_LIST: {"ports"},
    }[metric_type]
    if len(members) != 1 or not members <= allowed:
        raise InvalidRequestError(
            f"behavior {name}: the value must have one of {sorted(allowed)}")


@dataclass(frozen=True, slots=True)
class Datapoint:
    """One measured value of one metric of one thing, at ``timestamp`` (epoch seconds)."""

    thing_name: str
    metric: str
    value: MetricValue
    timestamp: float
    dimension: str | None = None
    registered: bool = True


@dataclass(slots=True)
class SecurityProfile:
    name: str
    behaviors: tuple[Behavior, ...] = ()
    description: str = ""
    alert_targets: dict[str, dict[str, str]] = field(default_factory=dict)
    additional_metrics: tuple[dict[str, Any], ...] = ()
    version: int = 1
    creation_date: float = 0.0
    last_modified_date: float = 0.0
    targets: set[str] = field(default_factory=set)
    mitigation_actions: tuple[str, ...] = ()
    """Bastion: names of mitigation actions applied when a behavior goes in-alarm."""
    metrics_export: dict[str, str] | None = None
    """``metricsExportConfig``: ``mqttTopic`` and ``roleArn``."""


@dataclass(frozen=True, slots=True)
class ViolationEvent:
    violation_id: str
    thing_name: str
    security_profile_name: str
    behavior: Behavior
    event_type: ViolationEventType
    metric_value: MetricValue | None
    timestamp: float
    verification_state: VerificationState | None = None
    verification_state_description: str | None = None
    details: dict[str, Any] | None = None
    """Bastion's explanation of an ML violation (:mod:`._ml`)."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "violationId": self.violation_id, "thingName": self.thing_name,
            "securityProfileName": self.security_profile_name,
            "behavior": self.behavior.to_json(),
            "violationEventType": self.event_type.value,
            "violationEventTime": self.timestamp,
        }
        _ml_members(out, self.behavior, self.details)
        if self.metric_value is not None:
            out["metricValue"] = self.metric_value.to_json()
        if self.verification_state is not None:
            out["verificationState"] = self.verification_state.value
        if self.verification_state_description:
            out["verificationStateDescription"] = self.verification_state_description
        return out


@dataclass(slots=True)
class ActiveViolation:
    violation_id: str
    thing_name: str
    security_profile_name: str
    behavior: Behavior
    last_violation_value: MetricValue | None
    last_violation_time: float
    violation_start_time: float
    verification_state: VerificationState | None = None
    verification_state_description: str | None = None
    details: dict[str, Any] | None = None
    """Bastion's explanation of an ML violation, as of its last abnormal value."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "violationId": self.violation_id, "thingName": self.thing_name,
            "securityProfileName": self.security_profile_name,
            "behavior": self.behavior.to_json(),
            "lastViolationTime": self.last_violation_time,
            "violationStartTime": self.violation_start_time,
        }
        _ml_members(out, self.behavior, self.details)
        if self.last_violation_value is not None:
            out["lastViolationValue"] = self.last_violation_value.to_json()
        if self.verification_state is not None:
            out["verificationState"] = self.verification_state.value
        if self.verification_state_description:
            out["verificationStateDescription"] = self.verification_state_description
        return out


EXPLANATION_MEMBER: Final = "bastionExplanation"
"""The member of an ML violation (API, alert) that holds its explanation; AWS's clients
ignore members their model does not know."""


def _ml_members(out: dict[str, Any], behavior: Behavior,
                details: dict[str, Any] | None) -> None:
    level = behavior.criteria.ml_confidence
    if level is not None:
        out["violationEventAdditionalInfo"] = {"confidenceLevel": level}
    if details:
        out[EXPLANATION_MEMBER] = details
