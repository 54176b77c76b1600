"""Detect's durable state in the store: what :class:`~._service.DetectService` writes
through, and what it loads at start.

The service keeps the evaluation state in memory (profiles, alarm trackers, windows) and
writes every change here: profiles, custom metrics and dimensions when they change,
datapoints and violation events per ingested batch, active violations when they open,
move or end. Metric values and violation events are read back from here (ListMetricValues,
ListViolationEvents), so they survive a restart and obey retention.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bastion.store import (
    DetectProfileRow,
    MetricValueRow,
    Store,
    ViolationEventRow,
    ViolationRow,
)

from ._errors import InvalidRequestError
from ._model import (
    ActiveViolation,
    Behavior,
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


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(slots=True)
class Loaded:
    profiles: list[SecurityProfile]
    custom_metrics: list[CustomMetric]
    dimensions: list[tuple[str, str, list[str]]]
    active: list[tuple[ActiveViolation, bool]]


class StoreRecords:
    """The store-backed records of the detect service."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        return self._store

    def load(self) -> Loaded:
        loaded = self.load_definitions()
        loaded.active = self.active_violations(
            {m.name: m.metric_type for m in loaded.custom_metrics})
        return loaded

    def load_definitions(self) -> Loaded:
        """Profiles, custom metrics and dimensions (``active`` is left empty)."""
        with self._store.transaction(readonly=True) as uow:
            profiles = uow.detect.profiles()
            metrics = uow.detect.custom_metrics()
            dimensions = uow.detect.dimensions()
        custom = {name: MetricType(kind) for name, kind, _ in metrics}
        return Loaded(self._profiles(profiles, custom),
                      [CustomMetric(n, MetricType(k), d) for n, k, d in metrics],
                      dimensions, [])

    def active_violations(self, custom: dict[str, MetricType]
                          ) -> list[tuple[ActiveViolation, bool]]:
        """The stored active violations, oldest first, each with its suppressed flag."""
        with self._store.transaction(readonly=True) as uow:
            rows = uow.detect.active_violations()
        return _actives(rows, custom)

    @staticmethod
    def _profiles(profiles: list[DetectProfileRow], custom: dict[str, MetricType]
                  ) -> list[SecurityProfile]:
        loaded_profiles = []
        for row in profiles:
            doc = row.document
            behaviors = tuple(_stored_behavior(b, custom) for b in doc.get("behaviors", ()))
            loaded_profiles.append(SecurityProfile(
                row.name, behaviors, doc.get("description", ""),
                dict(doc.get("alertTargets", {})), tuple(doc.get("additionalMetrics", ())),
                row.version, row.creation_date.timestamp(), row.last_modified_date.timestamp(),
                set(doc.get("targets", ())), tuple(doc.get("mitigationActions", ())),
                doc.get("metricsExportConfig")))
        return loaded_profiles

    def save_profile(self, profile: SecurityProfile) -> None:
        document = {"behaviors": [_behavior_document(b) for b in profile.behaviors],
                    "description": profile.description,
                    "alertTargets": profile.alert_targets,
                    "additionalMetrics": list(profile.additional_metrics),
                    "targets": sorted(profile.targets),
                    "mitigationActions": list(profile.mitigation_actions),
                    "metricsExportConfig": profile.metrics_export}
        with self._store.transaction() as uow:
            uow.detect.save_profile(DetectProfileRow(
                profile.name, profile.version, document, _dt(profile.creation_date),
                _dt(profile.last_modified_date)))

    def delete_profile(self, name: str) -> None:
        with self._store.transaction() as uow:
            uow.detect.delete_profile(name)

    def save_custom_metric(self, metric: CustomMetric, now: float) -> None:
        with self._store.transaction() as uow:
            uow.detect.save_custom_metric(metric.name, metric.metric_type.value,
                                          metric.display_name, _dt(now))

    def delete_custom_metric(self, name: str) -> None:
        with self._store.transaction() as uow:
            uow.detect.delete_custom_metric(name)

    def save_dimension(self, name: str, type_: str, values: list[str], now: float) -> None:
        with self._store.transaction() as uow:
            uow.detect.save_dimension(name, type_, values, _dt(now))

    def delete_dimension(self, name: str) -> None:
        with self._store.transaction() as uow:
            uow.detect.delete_dimension(name)

    def record_batch(self, datapoints: Iterable[Datapoint],
                     violations: Iterable[tuple[ActiveViolation, bool, bool]],
                     events: Iterable[tuple[ViolationEvent, bool]]) -> None:
        """One transaction per ingested batch: its datapoints, the violations it opened,
        moved or ended (``(violation, active, suppressed)``), and its events, each kind
        written with batched statements."""
        with self._store.transaction() as uow:
            uow.detect.add_metric_values(
                MetricValueRow(d.thing_name, d.metric, d.dimension or "", _dt(d.timestamp),
                               d.value.to_json()) for d in datapoints)
            uow.detect.save_violations(ViolationRow(
                violation.violation_id, violation.thing_name,
                violation.security_profile_name, violation.behavior.name,
                _behavior_document(violation.behavior), active, suppressed,
                _dt(violation.violation_start_time), _dt(violation.last_violation_time),
                None if violation.last_violation_value is None
                else violation.last_violation_value.to_json(),
                None if violation.verification_state is None
                else violation.verification_state.value,
                violation.verification_state_description, violation.details)
                for violation, active, suppressed in violations)
            uow.detect.add_events(ViolationEventRow(
                e.violation_id, e.event_type.value, _dt(e.timestamp), e.thing_name,
                e.security_profile_name, _behavior_document(e.behavior),
                None if e.metric_value is None else e.metric_value.to_json(), suppressed,
                e.details)
                for e, suppressed in events)

    def metric_values(self, thing: str, metric: str, dimension: str | None, start: float,
                      end: float) -> list[tuple[float, MetricValue]]:
        with self._store.transaction(readonly=True) as uow:
            rows = uow.detect.metric_values(thing, metric, dimension or "", _dt(start),
                                            _dt(end))
        return [(r.timestamp.timestamp(), MetricValue.from_json(r.value)) for r in rows]

    def events(self, start: float, end: float, thing_name: str | None,
               security_profile_name: str | None,
               custom: dict[str, MetricType]) -> list[tuple[ViolationEvent, bool]]:
        with self._store.transaction(readonly=True) as uow:
            rows = uow.detect.events(_dt(start), _dt(end), thing_name=thing_name,
                                     security_profile_name=security_profile_name)
        return [(ViolationEvent(
            r.violation_id, r.thing_name, r.security_profile_name,
            _stored_behavior(r.behavior, custom), ViolationEventType(r.event_type),
            None if r.metric_value is None else MetricValue.from_json(r.metric_value),
            r.timestamp.timestamp(),
            None if state is None else VerificationState(state), description,
            None if r.details is None else dict(r.details)), r.suppressed)
            for r, state, description in rows]

    def violation_of(self, violation_id: str) -> tuple[str, str, str] | None:
        """(thing, profile, behavior name) of a stored violation."""
        with self._store.transaction(readonly=True) as uow:
            row = uow.detect.get_violation(violation_id)
        return None if row is None else (row.thing_name, row.security_profile_name,
                                         row.behavior_name)

    def set_verification(self, violation_id: str, state: str, description: str | None
                         ) -> bool:
        with self._store.transaction() as uow:
            return uow.detect.set_verification(violation_id, state, description)

    def purge(self, before: float) -> None:
        with self._store.transaction() as uow:
            uow.detect.purge_metric_values(_dt(before))
            uow.detect.purge_violations(_dt(before))


def _actives(rows: list[ViolationRow], custom: dict[str, MetricType]
             ) -> list[tuple[ActiveViolation, bool]]:
    return [(ActiveViolation(
        r.violation_id, r.thing_name, r.security_profile_name,
        _stored_behavior(r.behavior, custom),
        None if r.last_value is None else MetricValue.from_json(r.last_value),
        r.last_time.timestamp(), r.start_time.timestamp(),
        None if r.verification_state is None else VerificationState(r.verification_state),
        r.verification_description, None if r.details is None else dict(r.details)),
        r.suppressed) for r in rows]


def _behavior_document(behavior: Behavior) -> dict[str, Any]:
    document = behavior.to_json()
    if behavior.severe:
        document["severe"] = True
    return document


def _stored_behavior(document: Any, custom: dict[str, MetricType]) -> Behavior:
    """A stored behavior (validated when it was created; its custom metric may have been
    deleted since, so its type is inferred then)."""
    try:
        return parse_behavior(document, custom, None)
    except InvalidRequestError:
        metric = str(document.get("metric", ""))
        for kind in MetricType:
            try:
                return parse_behavior(document, {metric: kind}, None)
            except InvalidRequestError:
                continue
        raise
