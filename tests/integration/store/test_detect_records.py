"""Detect's durable state on both backends: profiles, custom metrics, dimensions, metric
values with retention, violations and events survive a new service (a restart)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from bastion.account import Account
from bastion.defender.detect import (
    Datapoint,
    DetectService,
    MetricValue,
    StoreRecords,
    ViolationEventType,
)
from bastion.store import Store
from support.clock import ManualClock

ACCOUNT = Account("us-east-1", "123456789012")
PREFIX = "arn:aws:iot:us-east-1:123456789012:"
T0 = 1_800_000_000.0


def _service(store: Store, **options: Any) -> DetectService:
    service = DetectService(membership=lambda thing: (True, frozenset()), account=ACCOUNT,
                            records=StoreRecords(store), clock=ManualClock(datetime.fromtimestamp(T0, UTC)), **options)
    service.load()
    return service


def test_state_survives_a_restart(store: Store) -> None:
    suffix = uuid.uuid4().hex[:8]
    thing, profile = f"thing-{suffix}", f"sp-{suffix}"
    metric = f"temp_{suffix}"
    first = _service(store)
    first.create_custom_metric(metric, "number", "Temperature")
    first.create_dimension(f"dim-{suffix}", "TOPIC_FILTER", ["telemetry/#"])
    first.create_security_profile(profile, behaviors=[
        {"name": "hot", "metric": metric,
         "criteria": {"comparisonOperator": "less-than", "value": {"number": 50}}},
        {"name": "msgs", "metric": "aws:num-messages-sent", "suppressAlerts": True,
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 5},
                      "consecutiveDatapointsToClear": 2}}], now=T0)
    first.attach(profile, PREFIX + "all/things")
    events = first.ingest([
        Datapoint(thing, metric, MetricValue(number=70.0), T0 + 1),
        Datapoint(thing, "aws:num-messages-sent", MetricValue(count=9), T0 + 1)], T0 + 1)
    assert sorted(e.behavior.name for e in events) == ["hot", "msgs"]
    hot = next(e for e in events if e.behavior.name == "hot")
    first.put_verification_state(hot.violation_id, "FALSE_POSITIVE", "sensor glitch")

    second = _service(store)
    assert second.describe_security_profile(profile).targets == {"all/things"}
    assert second.describe_custom_metric(metric).display_name == "Temperature"
    assert second.describe_dimension(f"dim-{suffix}").string_values == ("telemetry/#",)
    active = {v.behavior.name: v for v in second.list_active_violations(thing_name=thing)}
    assert set(active) == {"hot", "msgs"}
    assert active["hot"].verification_state is not None
    assert active["hot"].last_violation_value == MetricValue(number=70.0)
    assert second.list_active_violations(thing_name=thing, list_suppressed=False) == [
        active["hot"]]
    # The restored alarm clears with the restored consecutive-datapoint rule.
    assert second.ingest([Datapoint(thing, "aws:num-messages-sent", MetricValue(count=0),
                                    T0 + 2)], T0 + 2) == []
    cleared = second.ingest([Datapoint(thing, "aws:num-messages-sent", MetricValue(count=0),
                                       T0 + 3)], T0 + 3)
    assert [e.event_type for e in cleared] == [ViolationEventType.ALARM_CLEARED]
    history = second.list_violation_events(T0, T0 + 10, thing_name=thing)
    assert sorted((e.behavior.name, e.event_type.value) for e in history) == [
        ("hot", "in-alarm"), ("msgs", "alarm-cleared"), ("msgs", "in-alarm")]
    assert second.list_violation_events(T0, T0 + 10, thing_name=thing,
                                        verification_state="FALSE_POSITIVE")
    values = second.list_metric_values(thing, "aws:num-messages-sent", T0, T0 + 10)
    assert [(t - T0, v.count) for t, v in values] == [(1, 9), (2, 0), (3, 0)]


def test_retention_and_invalidation(store: Store) -> None:
    suffix = uuid.uuid4().hex[:8]
    thing, profile = f"thing-{suffix}", f"sp-{suffix}"
    service = _service(store, retention_seconds=1000, invalidate_after=100)
    service.create_security_profile(profile, behaviors=[
        {"name": "msgs", "metric": "aws:num-messages-sent",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 5}}}], now=T0)
    service.attach(profile, PREFIX + "all/things")
    service.ingest([Datapoint(thing, "aws:num-messages-sent", MetricValue(count=9), T0)], T0)
    [event] = service.expire(T0 + 500)
    assert event.event_type is ViolationEventType.ALARM_INVALIDATED
    assert _service(store).list_active_violations(thing_name=thing) == []
    assert len(service.list_metric_values(thing, "aws:num-messages-sent", T0, T0 + 1)) == 1
    service.expire(T0 + 2000)
    assert service.list_metric_values(thing, "aws:num-messages-sent", T0, T0 + 1) == []
    assert service.list_violation_events(T0, T0 + 3000, thing_name=thing) == []
    service.delete_security_profile(profile)
    assert profile not in {p.name for p in _service(store).list_security_profiles()}


def test_violations_are_saved_in_batches_inserting_and_updating(store: Store) -> None:
    from datetime import UTC, datetime

    from bastion.store import ViolationRow

    at = datetime.fromtimestamp(T0, UTC)

    def row(i: int, active: bool, value: int) -> ViolationRow:
        return ViolationRow(f"v-{i}", f"thing-{i}", "p", "b", {"name": "b"}, active, False,
                            at, at, {"count": value}, None, None)

    with store.transaction() as uow:
        uow.detect.save_violations(row(i, True, 1) for i in range(600))
    with store.transaction() as uow:  # 300 stored ones move or end, 600 are new
        uow.detect.save_violations([row(i, i % 2 == 0, 2) for i in range(300, 1200)]
                                   + [row(1199, True, 3)])
    with store.transaction(readonly=True) as uow:
        active = {v.violation_id: v for v in uow.detect.active_violations()}
        assert uow.detect.get_violation("v-301") is not None
    assert len(active) == 300 + 150 + 300 + 1  # untouched, moved, new even ids, and v-1199
    assert active["v-0"].last_value == {"count": 1}
    assert active["v-300"].last_value == {"count": 2}
    assert "v-301" not in active
    assert active["v-1199"].last_value == {"count": 3}


def test_two_services_on_one_store_an_api_node_and_the_evaluator(store: Store) -> None:
    """A cluster's split: profiles change through one node's service; another evaluates."""
    suffix = uuid.uuid4().hex[:8]
    thing, profile = f"thing-{suffix}", f"sp-{suffix}"
    api, evaluator = _service(store), _service(store)
    api.shared = evaluator.shared = True
    changes: list[str] = []
    api.on_change = lambda: changes.append("changed")
    api.create_security_profile(profile, behaviors=[
        {"name": "msgs", "metric": "aws:num-messages-sent",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 5}}},
        {"name": "fails", "metric": "aws:num-authorization-failures",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 1}}}], now=T0)
    api.attach(profile, PREFIX + "all/things")
    assert changes == ["changed", "changed"]
    assert evaluator.ingest([Datapoint(thing, "aws:num-messages-sent", MetricValue(count=9),
                                       T0)], T0) == []  # not known there yet
    evaluator.reload_definitions()
    events = evaluator.ingest([
        Datapoint(thing, "aws:num-messages-sent", MetricValue(count=9), T0 + 1),
        Datapoint(thing, "aws:num-authorization-failures", MetricValue(count=3), T0 + 1)],
        T0 + 1)
    assert len(events) == 2
    listed = {v.behavior.name: v for v in api.list_active_violations(thing_name=thing)}
    assert set(listed) == {"msgs", "fails"}  # from the store: the api node holds none
    # A verification set through the api node survives the evaluator's next update.
    api.put_verification_state(listed["msgs"].violation_id, "BENIGN_POSITIVE")
    evaluator.ingest([Datapoint(thing, "aws:num-messages-sent", MetricValue(count=8),
                                T0 + 2)], T0 + 2)
    again = {v.behavior.name: v for v in api.list_active_violations(thing_name=thing)}
    assert again["msgs"].verification_state is not None
    assert again["msgs"].verification_state.value == "BENIGN_POSITIVE"
    assert again["msgs"].last_violation_value == MetricValue(count=8)
    # A behavior removed through the api node: the evaluator ends its alarm on reload.
    api.update_security_profile(profile, behaviors=[
        {"name": "msgs", "metric": "aws:num-messages-sent",
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 5}}}], now=T0 + 3)
    evaluator.reload_definitions()
    assert [v.behavior.name for v in api.list_active_violations(thing_name=thing)] == ["msgs"]
    # An evaluator that stops evaluating forgets; the next one loads the open alarm.
    evaluator.reset()
    assert evaluator.active == {}
    api.reset()
    api.load()
    assert api.ingest([Datapoint(thing, "aws:num-messages-sent", MetricValue(count=7),
                                 T0 + 4)], T0 + 4) == []  # still the same alarm
    assert len(evaluator.list_active_violations(thing_name=thing)) == 1
