"""The detect service without a broker: targets, windows, statistical thresholds,
versions, invalidation, filters and verification states."""

from __future__ import annotations

from typing import Any

import pytest

from bastion.account import Account
from bastion.defender.detect import (
    Datapoint,
    DetectService,
    InvalidRequestError,
    MetricValue,
    ResourceAlreadyExistsError,
    VersionConflictError,
    ViolationEventType,
)

ACCOUNT = Account("us-east-1", "123456789012")
PREFIX = "arn:aws:iot:us-east-1:123456789012:"
GROUPS = {"a": frozenset({"fleet"}), "b": frozenset({"fleet"}), "c": frozenset({"fleet"}),
          "lone": frozenset()}


def _service(**options: Any) -> tuple[DetectService, list[Any]]:
    seen: list[Any] = []
    service = DetectService(
        membership=lambda t: (t in GROUPS, GROUPS.get(t, frozenset())), account=ACCOUNT,
        on_event=lambda e, p: seen.append((e.thing_name, e.event_type)), **options)
    return service, seen


def _sent(thing: str, count: int, at: float, registered: bool = True) -> Datapoint:
    return Datapoint(thing, "aws:num-messages-sent", MetricValue(count=count), at, None,
                     registered)


def _static(limit: int, **criteria: Any) -> dict[str, Any]:
    return {"name": "msgs", "metric": "aws:num-messages-sent",
            "criteria": {"comparisonOperator": "less-than", "value": {"count": limit},
                         **criteria}}


def test_targets_groups_registered_and_unregistered() -> None:
    service, seen = _service()
    for name, target in (("g", "thinggroup/fleet"), ("r", "all/registered-things"),
                         ("u", "all/unregistered-things")):
        service.create_security_profile(name, behaviors=[_static(5)], now=0)
        service.attach(name, PREFIX + target)
    service.ingest([_sent("a", 9, 1), _sent("lone", 9, 1), _sent("client-x", 9, 1, False)], 1)
    profiles = sorted((e.thing_name, e.security_profile_name)
                      for e in service.list_violation_events(0, 2))
    assert profiles == [("a", "g"), ("a", "r"), ("client-x", "u"), ("lone", "r")]
    assert len(seen) == 4
    with pytest.raises(InvalidRequestError):
        service.attach("g", PREFIX + "thing/a")


def test_duration_window_sums_datapoints() -> None:
    service, _ = _service()
    service.create_security_profile("p", behaviors=[_static(10, durationSeconds=300)], now=0)
    service.attach("p", PREFIX + "thinggroup/fleet")
    assert service.ingest([_sent("a", 4, 100)], 100) == []
    assert service.ingest([_sent("a", 4, 200)], 200) == []
    events = service.ingest([_sent("a", 4, 300)], 300)  # 12 over the last 300 s
    assert [e.event_type for e in events] == [ViolationEventType.IN_ALARM]
    assert events[0].metric_value == MetricValue(count=12)
    events = service.ingest([_sent("a", 0, 450)], 450)  # 4 + 0 since 150
    assert [e.event_type for e in events] == [ViolationEventType.ALARM_CLEARED]


def test_statistical_threshold_over_the_profiles_devices() -> None:
    service, _ = _service()
    service.create_security_profile("p", behaviors=[{
        "name": "msgs", "metric": "aws:num-messages-sent",
        "criteria": {"comparisonOperator": "less-than-equals", "durationSeconds": 300,
                     "statisticalThreshold": {"statistic": "p50"}}}], now=0)
    service.attach("p", PREFIX + "thinggroup/fleet")
    events = service.ingest([_sent("a", 10, 1), _sent("b", 12, 1), _sent("c", 500, 1),
                             _sent("lone", 1000, 1)], 1)
    # p50 of the fleet (10, 12, 500) is 12: only c is above it; "lone" is not targeted.
    assert [(e.thing_name, e.event_type.value) for e in events] == [("c", "in-alarm")]


def test_versions_and_deletion() -> None:
    service, _ = _service()
    profile = service.create_security_profile("p", behaviors=[_static(5)], now=0)
    assert profile.version == 1
    with pytest.raises(ResourceAlreadyExistsError):
        service.create_security_profile("p", now=0)
    with pytest.raises(VersionConflictError):
        service.update_security_profile("p", expected_version=7, description="x", now=1)
    assert service.update_security_profile("p", expected_version=1, description="x",
                                           now=1).version == 2
    with pytest.raises(VersionConflictError):
        service.delete_security_profile("p", expected_version=1)
    service.delete_security_profile("p", expected_version=2)
    assert service.list_security_profiles() == []


def test_silent_device_is_invalidated_and_values_expire() -> None:
    service, _ = _service(invalidate_after=1000, retention_seconds=5000)
    service.create_security_profile("p", behaviors=[_static(5)], now=0)
    service.attach("p", PREFIX + "all/things")
    service.ingest([_sent("a", 9, 10)], 10)
    assert service.expire(500) == []
    events = service.expire(2000)
    assert [e.event_type for e in events] == [ViolationEventType.ALARM_INVALIDATED]
    assert service.list_active_violations() == []
    assert len(service.list_metric_values("a", "aws:num-messages-sent", 0, 3000)) == 1
    service.expire(6000)
    assert service.list_metric_values("a", "aws:num-messages-sent", 0, 7000) == []


def test_filters_suppression_and_verification_state() -> None:
    service, _ = _service()
    service.create_security_profile("p", behaviors=[{**_static(5), "suppressAlerts": True}],
                                    now=0)
    service.attach("p", PREFIX + "all/things")
    [event] = service.ingest([_sent("a", 9, 10)], 10)
    assert service.list_active_violations(list_suppressed=False) == []
    assert len(service.list_active_violations(list_suppressed=True)) == 1
    assert service.list_active_violations(criteria_type="STATISTICAL") == []
    service.put_verification_state(event.violation_id, "BENIGN_POSITIVE", "lab device")
    [active] = service.list_active_violations(verification_state="BENIGN_POSITIVE")
    assert active.verification_state_description == "lab device"
    assert service.list_violation_events(0, 20, verification_state="BENIGN_POSITIVE")
    with pytest.raises(InvalidRequestError):
        service.put_verification_state(event.violation_id, "MAYBE")
    with pytest.raises(InvalidRequestError):
        service.put_verification_state("nope", "UNKNOWN")


def test_custom_metrics_and_dimensions() -> None:
    service, _ = _service()
    service.create_custom_metric("temp", "number", "Temperature")
    with pytest.raises(InvalidRequestError):
        service.create_custom_metric("aws:temp", "number")
    with pytest.raises(InvalidRequestError):
        service.create_custom_metric("x", "port-list")
    service.create_dimension("telemetry", "TOPIC_FILTER", ["telemetry/#"])
    with pytest.raises(InvalidRequestError):
        service.create_dimension("bad", "CLIENT_ID", ["x"])
    parsed = service.validate_behaviors([{**_static(5), "metricDimension": {
        "dimensionName": "telemetry"}}])
    assert parsed[0].metric_dimension is not None
    with pytest.raises(InvalidRequestError):
        service.validate_behaviors([_static(5), _static(6)])


def test_a_single_report_reuses_the_fleet_threshold() -> None:
    service, _ = _service(statistics_ttl=300)
    service.create_security_profile("p", behaviors=[{
        "name": "conns", "metric": "aws:num-established-tcp-connections",
        "criteria": {"comparisonOperator": "less-than-equals",
                     "statisticalThreshold": {"statistic": "p90"}}}], now=0)
    service.attach("p", PREFIX + "thinggroup/fleet")

    def conns(thing: str, count: int, at: float) -> Datapoint:
        return Datapoint(thing, "aws:num-established-tcp-connections",
                         MetricValue(count=count), at)
    assert service.ingest([conns("a", 2, 10), conns("b", 3, 10), conns("c", 4, 10)], 10) \
        == []
    # "c" reports 9 alone: compared with the cached fleet p90 (4), not with a p90 that
    # its own new value would move (to 9).
    [event] = service.ingest([conns("c", 9, 20)], 20)
    assert event.event_type is ViolationEventType.IN_ALARM
