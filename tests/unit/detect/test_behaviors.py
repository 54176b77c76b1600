"""Behaviors: AWS's validation rules, and evaluation of every comparison operator."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.defender.detect import (
    ML_METRICS,
    AlarmTracker,
    CriteriaType,
    InvalidRequestError,
    MetricType,
    MetricValue,
    ViolationEventType,
    parse_behavior,
    percentile,
    satisfies,
)


def _behavior(metric: str, op: str, value: dict[str, Any] | None = None,
              **criteria: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"comparisonOperator": op, **criteria}
    if value is not None:
        body["value"] = value
    return {"name": "b", "metric": metric, "criteria": body}


CUSTOM = {"temp": MetricType.NUMBER, "tags": MetricType.STRING_LIST,
          "codes": MetricType.NUMBER_LIST, "peers": MetricType.IP_ADDRESS_LIST}


@pytest.mark.parametrize(("metric", "op", "value", "observed", "normal"), [
    ("aws:num-messages-sent", "less-than", {"count": 10}, MetricValue(count=9), True),
    ("aws:num-messages-sent", "less-than", {"count": 10}, MetricValue(count=10), False),
    ("aws:num-messages-sent", "less-than-equals", {"count": 10}, MetricValue(count=10), True),
    ("aws:num-messages-sent", "greater-than", {"count": 10}, MetricValue(count=10), False),
    ("aws:num-messages-sent", "greater-than-equals", {"count": 10}, MetricValue(count=10),
     True),
    ("temp", "less-than", {"number": 80.5}, MetricValue(number=80.6), False),
    ("aws:source-ip-address", "in-cidr-set", {"cidrs": ["10.0.0.0/8"]},
     MetricValue(cidrs=("10.1.2.3",)), True),
    ("aws:source-ip-address", "in-cidr-set", {"cidrs": ["10.0.0.0/8"]},
     MetricValue(cidrs=("11.1.2.3",)), False),
    ("aws:destination-ip-addresses", "not-in-cidr-set", {"cidrs": ["10.0.0.0/8"]},
     MetricValue(cidrs=("10.1.2.3",)), False),
    ("aws:destination-ip-addresses", "not-in-cidr-set", {"cidrs": ["10.0.0.0/8"]},
     MetricValue(cidrs=()), True),
    ("aws:listening-tcp-ports", "in-port-set", {"ports": [22, 443]},
     MetricValue(ports=(22, 8080)), False),
    ("aws:listening-tcp-ports", "in-port-set", {"ports": [22, 443]}, MetricValue(ports=()),
     True),
    ("aws:listening-udp-ports", "not-in-port-set", {"ports": [53]}, MetricValue(ports=(53,)),
     False),
    ("tags", "in-set", {"strings": ["a", "b"]}, MetricValue(strings=("a",)), True),
    ("tags", "not-in-set", {"strings": ["a", "b"]}, MetricValue(strings=("c", "a")), False),
    ("codes", "in-set", {"numbers": [1, 2]}, MetricValue(numbers=(3.0,)), False),
    ("peers", "in-cidr-set", {"cidrs": ["fe80::/10"]}, MetricValue(cidrs=("fe80::1",)), True),
])
def test_every_operator(metric: str, op: str, value: dict[str, Any],
                        observed: MetricValue, normal: bool) -> None:
    behavior = parse_behavior(_behavior(metric, op, value), CUSTOM)
    assert satisfies(behavior.criteria, observed) is normal


@pytest.mark.parametrize("document", [
    pytest.param(_behavior("aws:num-messages-sent", "in-cidr-set", {"cidrs": ["1.0.0.0/8"]}),
                 id="operator-for-another-type"),
    pytest.param(_behavior("aws:source-ip-address", "less-than", {"count": 1}),
                 id="numeric-op-on-ip"),
    pytest.param(_behavior("aws:num-messages-sent", "less-than", {"cidrs": ["1.0.0.0/8"]}),
                 id="value-of-another-type"),
    pytest.param(_behavior("aws:num-messages-sent", "less-than"), id="no-value"),
    pytest.param(_behavior("aws:nope", "less-than", {"count": 1}), id="unknown-metric"),
    pytest.param(_behavior("aws:num-messages-sent", "less-than", {"count": 1},
                           consecutiveDatapointsToAlarm=11), id="datapoints-over-10"),
    pytest.param(_behavior("aws:listening-tcp-ports", "in-port-set", {"ports": [1]},
                           durationSeconds=300), id="duration-on-list"),
    pytest.param(_behavior("aws:num-messages-sent", "less-than",
                           statisticalThreshold={"statistic": "p42"}, durationSeconds=300),
                 id="bad-statistic"),
    pytest.param(_behavior("aws:num-messages-sent", "less-than",
                           statisticalThreshold={"statistic": "p90"}),
                 id="statistical-without-duration"),
    pytest.param(_behavior("aws:num-messages-sent", "eq", {"count": 1}), id="bad-operator"),
    pytest.param({"name": "bad name", "metric": "aws:num-messages-sent",
                  "criteria": {"comparisonOperator": "less-than", "value": {"count": 1}}},
                 id="bad-name"),
    pytest.param({"name": "ml", "metric": "aws:source-ip-address",
                  "criteria": {"mlDetectionConfig": {"confidenceLevel": "HIGH"}}},
                 id="ml-metric-unsupported"),
    pytest.param({"name": "ml", "metric": "temp",
                  "criteria": {"mlDetectionConfig": {"confidenceLevel": "HIGH"}}},
                 id="ml-on-custom-metric"),
    pytest.param({"name": "ml", "metric": "aws:num-messages-sent",
                  "criteria": {"mlDetectionConfig": {"confidenceLevel": "VERY"}}},
                 id="ml-bad-confidence"),
    pytest.param({"name": "ml", "metric": "aws:num-messages-sent",
                  "criteria": {"mlDetectionConfig": {}}}, id="ml-no-confidence"),
    pytest.param({"name": "ml", "metric": "aws:num-messages-sent",
                  "criteria": {"mlDetectionConfig": {"confidenceLevel": "LOW"},
                               "comparisonOperator": "less-than", "value": {"count": 1}}},
                 id="ml-with-comparison"),
    pytest.param({"name": "ml", "metric": "aws:num-messages-sent",
                  "criteria": {"mlDetectionConfig": {"confidenceLevel": "LOW"},
                               "durationSeconds": 300}}, id="ml-with-duration"),
    pytest.param({"name": "ml", "metric": "aws:num-messages-sent",
                  "metricDimension": {"dimensionName": "d"},
                  "criteria": {"mlDetectionConfig": {"confidenceLevel": "LOW"}}},
                 id="ml-with-dimension"),
    pytest.param({**_behavior("temp", "less-than", {"number": 1}),
                  "metricDimension": {"dimensionName": "d"}}, id="dimension-on-custom"),
])
def test_invalid_behaviors(document: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError):
        parse_behavior(document, CUSTOM, frozenset({"d"}))


def test_round_trip_to_aws_shape() -> None:
    document = {"name": "b", "metric": "aws:num-messages-sent",
                "criteria": {"comparisonOperator": "less-than", "durationSeconds": 300,
                             "statisticalThreshold": {"statistic": "p90"},
                             "consecutiveDatapointsToAlarm": 2,
                             "consecutiveDatapointsToClear": 3},
                "metricDimension": {"dimensionName": "d", "operator": "NOT_IN"},
                "suppressAlerts": True}
    behavior = parse_behavior(document, {}, frozenset({"d"}))
    assert behavior.to_json() == document
    assert parse_behavior(behavior.to_json(), {}, frozenset({"d"})) == behavior


@pytest.mark.parametrize(("statistic", "expected"), [
    ("p0", 1.0), ("p50", 5.0), ("p90", 9.0), ("p99", 10.0), ("p100", 10.0), ("p10", 1.0),
])
def test_percentiles(statistic: str, expected: float) -> None:
    assert percentile([float(v) for v in range(10, 0, -1)], statistic) == expected
    assert percentile([], statistic) is None


def test_alarm_tracker_counts_consecutive_datapoints() -> None:
    behavior = parse_behavior(_behavior("aws:num-messages-sent", "less-than", {"count": 5},
                                        consecutiveDatapointsToAlarm=2,
                                        consecutiveDatapointsToClear=3))
    tracker = AlarmTracker()
    steps = [False, True, False, False, True, True, False, True, True, True]
    out = [tracker.step(ok, behavior.criteria, float(i)) for i, ok in enumerate(steps)]
    assert out == [None, None, None, ViolationEventType.IN_ALARM, None, None, None, None,
                   None, ViolationEventType.ALARM_CLEARED]
    assert not tracker.in_alarm


@pytest.mark.parametrize("metric", sorted(ML_METRICS))
@pytest.mark.parametrize("level", ["LOW", "MEDIUM", "HIGH"])
def test_ml_behaviors_parse_and_round_trip(metric: str, level: str) -> None:
    document = {"name": "ml", "metric": metric,
                "criteria": {"mlDetectionConfig": {"confidenceLevel": level},
                             "consecutiveDatapointsToAlarm": 2,
                             "consecutiveDatapointsToClear": 3}}
    behavior = parse_behavior(document, CUSTOM)
    assert behavior.criteria.kind is CriteriaType.MACHINE_LEARNING
    assert behavior.criteria.ml_confidence == level
    assert behavior.criteria.comparison_operator is None
    out = behavior.to_json()
    assert out["criteria"] == {"mlDetectionConfig": {"confidenceLevel": level},
                               "consecutiveDatapointsToAlarm": 2,
                               "consecutiveDatapointsToClear": 3}
    assert parse_behavior(out, CUSTOM) == behavior


def test_ml_on_set_metrics_is_bastions_and_refused_in_aws_mode() -> None:
    document = {"name": "ports", "metric": "aws:listening-tcp-ports",
                "criteria": {"mlDetectionConfig": {"confidenceLevel": "MEDIUM"}}}
    assert parse_behavior(document).criteria.ml_confidence == "MEDIUM"
    with pytest.raises(InvalidRequestError, match="does not support"):
        parse_behavior(document, ml_sets=False)
