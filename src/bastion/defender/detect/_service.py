"""The detect service: security profiles, metric values, evaluation and violations.

Theory of operation
-------------------
Datapoints arrive in batches: a device's metrics report (at once, event-driven) and the
broker's cloud-side sample (every detect interval). :meth:`DetectService.ingest` keeps
each value (retention: ``retention_seconds``), adds numeric ones to the thing's sliding
window, then evaluates every behavior of every profile that targets the thing and uses
that metric. Statistical thresholds are computed once per (profile, behavior) per batch
over the windows of the profile's devices; a small batch (one device's report) reuses
the last threshold when it is younger than ``statistics_ttl``, so a report costs no
pass over the fleet. An alarm transition becomes a
:class:`~._model.ViolationEvent`, kept in the event history and handed to ``on_event``
(alerts, mitigation, trail — wired by the app). :meth:`DetectService.expire` turns the
alarms of devices that sent no datapoint for ``invalidate_after`` seconds into
``alarm-invalidated`` and drops metric values past retention.

The service is thread-safe (one lock); it reads group membership through the injected
``membership`` function, cached per thing until :meth:`membership_changed`.

With ``records`` (:class:`~._records.StoreRecords`) every change is written through to
the store and :meth:`DetectService.load` restores profiles, custom metrics, dimensions
and open alarms at start; metric values and violation events are then read from the
store. Without it (unit tests, benchmarks) everything stays in memory.

In a cluster (``docs/cluster.md``) every node has a service, but only one of them, the
evaluator, ingests: the others hold no evaluation state. Then :attr:`DetectService.shared`
is set: active violations are listed from the store, and every change of a profile, custom
metric, dimension or verification state calls :attr:`DetectService.on_change`, so the
other nodes :meth:`~DetectService.reload_definitions`. :meth:`~DetectService.reset`
forgets the evaluation state (a node that stops evaluating; one that starts calls
:meth:`~DetectService.load` after it).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

from bastion.account import Account
from bastion.clock import Clock, SystemClock

from ._errors import (
    InvalidRequestError,
    ResourceAlreadyExistsError,
    ResourceNotFoundError,
    VersionConflictError,
)
from ._evaluate import AlarmTracker, Window, percentile, satisfies
from ._learning import Learning, PeerOf, TrainingSummary
from ._ml import FleetEvent, Outcome, peer_key
from ._model import (
    ACCUMULATING,
    BUILTIN_METRICS,
    NAME_PATTERN,
    ActiveViolation,
    Behavior,
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

if TYPE_CHECKING:
    from ._tasks import DetectMitigationTasks

log = logging.getLogger("bastion.detect")

ALL_THINGS = "all/things"
REGISTERED = "all/registered-things"
UNREGISTERED = "all/unregistered-things"

Membership = Callable[[str], tuple[bool, frozenset[str]]]
"""thing name → (registered?, names of the thing groups it belongs to)."""
ViolationHandler = Callable[[ViolationEvent, SecurityProfile], None]
"""Called with each violation event and the profile it belongs to (alerts, mitigation)."""


@dataclass(slots=True)
class DetectStats:
    """Plain counters of the evaluation (``/metrics`` reads them; see
    :mod:`bastion.metrics`). Written under the service's lock."""

    batches: int = 0
    """Batches of datapoints evaluated (reports, cloud-side samples)."""
    datapoints: int = 0
    evaluation_seconds: float = 0.0
    """Wall time spent in :meth:`DetectService.ingest`, summed."""
    events: dict[str, int] = field(default_factory=dict)
    """Violation events by type (``in-alarm``, ``alarm-cleared``, ``alarm-invalidated``)."""


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    string_values: tuple[str, ...]
    type: str = "TOPIC_FILTER"


class DetectService:
    """See the module docstring.

    :param membership: resolves a thing's registration and groups.
    :param account: region and account of the target ARNs.
    :param clock: the time of stored records and task timestamps (epoch seconds).
    :param on_event: called (outside the lock) with every violation event.
    """

    def __init__(self, *, membership: Membership, account: Account,
                 on_event: ViolationHandler | None = None, retention_seconds: float = 14 * 86400,
                 invalidate_after: float = 2 * 86400,
                 clock: Clock | None = None,
                 records: StoreRecords | None = None,
                 statistics_ttl: float = 300.0,
                 peer: PeerOf | None = None, interval: float = 300.0,
                 ml_training: str = "fast") -> None:
        if ml_training not in ("fast", "aws"):
            raise ValueError("ml_training must be 'fast' or 'aws'")
        self._membership = membership
        self._peer_of = peer
        self._peers: dict[str, str] = {}
        self.interval = interval
        self.ml_strict = ml_training == "aws"
        self.learning = self._new_learning(records)
        self._ml_watch: dict[tuple[str, str], set[str]] = {}
        """Things with an alarm state per ML behavior (others are neutral)."""
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._records = records
        self.statistics_ttl = statistics_ttl
        self._threshold_cache: dict[tuple[str, str, str | None], tuple[float, float | None]] = {}
        self._account = account
        self.on_event = on_event
        self.retention_seconds = retention_seconds
        self.invalidate_after = invalidate_after
        self._lock = threading.RLock()
        self.profiles: dict[str, SecurityProfile] = {}
        self.custom_metrics: dict[str, CustomMetric] = {}
        self.dimensions: dict[str, Dimension] = {}
        self._members: dict[str, tuple[bool, frozenset[str]]] = {}
        self._values: dict[tuple[str, str, str | None], deque[tuple[float, MetricValue]]] = \
            defaultdict(deque)
        self._windows: dict[tuple[str, str, str | None], Window] = defaultdict(Window)
        self._trackers: dict[tuple[str, str, str], AlarmTracker] = {}
        self.active: dict[tuple[str, str, str], ActiveViolation] = {}
        self.events: list[ViolationEvent] = []
        self._suppressed: set[str] = set()
        self._unregistered: set[str] = set()
        self.on_export: ExportSink | None = None
        """Set by the app: publishes an exported metrics batch (topic, document)."""
        self.mitigation_tasks: DetectMitigationTasks | None = None
        """Set by the app: the detect mitigation actions tasks on these violations."""
        self.stats = DetectStats()
        self.shared = False
        """Another node may be the one evaluating: list active violations from the store."""
        self.jobs_in_progress: Callable[[Sequence[str]], Iterable[str]] | None = None
        """Set by the app: ids of the jobs queued or in progress on some things."""
        self.on_fleet_event: Callable[[FleetEvent, SecurityProfile], None] | None = None
        """Set by the app: a group that moved together (alerts)."""
        self.on_change: Callable[[], None] | None = None
        """Called (any thread) after a profile, custom metric, dimension or verification
        state changed through this service."""

    def _new_learning(self, records: StoreRecords | None) -> Learning:
        return Learning(interval=self.interval, strict=self.ml_strict,
                        store=None if records is None else records.store)

    def load(self) -> None:
        """Restore the stored state (no-op without records): the definitions, the ML
        models, and the open alarms added to what is held."""
        if self._records is None:
            return
        loaded = self._records.load()
        with self._lock:
            self.learning.load({p.name: p for p in loaded.profiles})
            self.profiles = {p.name: p for p in loaded.profiles}
            self.custom_metrics = {m.name: m for m in loaded.custom_metrics}
            self.dimensions = {n: Dimension(n, tuple(v), t) for n, t, v in loaded.dimensions}
            for active, suppressed in loaded.active:
                key = (active.thing_name, active.security_profile_name, active.behavior.name)
                self.active[key] = active
                self._trackers[key] = AlarmTracker(True, 0, 0, active.last_violation_time)
                if active.behavior.criteria.ml_confidence is not None:
                    self._ml_watch.setdefault((key[1], key[2]), set()).add(key[0])
                if suppressed:
                    self._suppressed.add(active.violation_id)

    def reset(self) -> None:
        """Forget the evaluation state: windows, alarm trackers, active violations and
        thresholds (the stored records stay). Definitions are kept."""
        with self._lock:
            self._values.clear()
            self._windows.clear()
            self._trackers.clear()
            self.active.clear()
            self.events.clear()
            self._threshold_cache.clear()
            self._suppressed.clear()
            self.learning = self._new_learning(self._records)
            self._ml_watch.clear()

    def reload_definitions(self) -> None:
        """Read profiles, custom metrics and dimensions from the store again (another node
        may have changed them), end the alarms of behaviors and targets that are gone, and
        take the stored verification state of the open alarms. No-op without records."""
        if self._records is None:
            return
        loaded = self._records.load_definitions()
        stored = {v.violation_id: v for v, _ in self._records.active_violations(
            {m.name: m.metric_type for m in loaded.custom_metrics})} if self.active else {}
        with self._lock:
            self.profiles = {p.name: p for p in loaded.profiles}
            self.custom_metrics = {m.name: m for m in loaded.custom_metrics}
            self.dimensions = {n: Dimension(n, tuple(v), t) for n, t, v in loaded.dimensions}
            self._threshold_cache.clear()
            gone = []
            for key in self._trackers:
                thing, name, behavior = key
                profile = self.profiles.get(name)
                if profile is None or behavior not in {b.name for b in profile.behaviors} \
                        or not self._targets(profile, thing, thing not in self._unregistered):
                    gone.append(key)
            for active in self.active.values():
                found = stored.get(active.violation_id)
                if found is not None:
                    active.verification_state = found.verification_state
                    active.verification_state_description = \
                        found.verification_state_description
            self._end_alarms(gone)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _end_alarms(self, keys: list[tuple[str, str, str]]) -> None:
        """Forget the alarms of ``keys`` (behavior or target removed); lock held."""
        ended = []
        for key in keys:
            self._trackers.pop(key, None)
            active = self.active.pop(key, None)
            if active is not None:
                ended.append((active, False, active.violation_id in self._suppressed))
        if ended and self._records is not None:
            self._records.record_batch((), ended, ())

    # -- custom metrics and dimensions ----------------------------------------------------

    def custom_types(self) -> dict[str, MetricType]:
        with self._lock:
            return {n: m.metric_type for n, m in self.custom_metrics.items()}

    def create_custom_metric(self, name: str, metric_type: str, display_name: str = ""
                             ) -> CustomMetric:
        """:raises InvalidRequestError: bad name or type. :raises
        ResourceAlreadyExistsError: the metric exists."""
        if not NAME_PATTERN.match(name) or name.startswith("aws:"):
            raise InvalidRequestError(f"bad custom metric name {name!r}")
        try:
            kind = MetricType(metric_type)
        except ValueError:
            raise InvalidRequestError(f"bad metricType {metric_type!r}") from None
        if kind is MetricType.PORT_LIST:
            raise InvalidRequestError(f"bad metricType {metric_type!r}")
        with self._lock:
            if name in self.custom_metrics:
                raise ResourceAlreadyExistsError(f"custom metric {name} exists")
            metric = CustomMetric(name, kind, display_name)
            if self._records is not None:
                self._records.save_custom_metric(metric, self.clock.time())
            self.custom_metrics[name] = metric
            self._changed()
            return metric

    def describe_custom_metric(self, name: str) -> CustomMetric:
        with self._lock:
            if name not in self.custom_metrics:
                raise ResourceNotFoundError(f"no custom metric {name}")
            return self.custom_metrics[name]

    def update_custom_metric(self, name: str, display_name: str) -> CustomMetric:
        with self._lock:
            metric = replace(self.describe_custom_metric(name), display_name=display_name)
            if self._records is not None:
                self._records.save_custom_metric(metric, self.clock.time())
            self.custom_metrics[name] = metric
            self._changed()
            return metric

    def delete_custom_metric(self, name: str) -> None:
        with self._lock:
            if self._records is not None:
                self._records.delete_custom_metric(name)
            self.custom_metrics.pop(name, None)
            self._changed()

    def create_dimension(self, name: str, type_: str, values: list[str]) -> Dimension:
        if not NAME_PATTERN.match(name):
            raise InvalidRequestError(f"bad dimension name {name!r}")
        if type_ != "TOPIC_FILTER":
            raise InvalidRequestError("the only dimension type is TOPIC_FILTER")
        if not 1 <= len(values) <= 100 or not all(
                isinstance(v, str) and 1 <= len(v) <= 256 for v in values):
            raise InvalidRequestError("stringValues must hold 1..100 strings of 1..256")
        with self._lock:
            if name in self.dimensions:
                raise ResourceAlreadyExistsError(f"dimension {name} exists")
            dimension = Dimension(name, tuple(values))
            if self._records is not None:
                self._records.save_dimension(name, type_, list(values), self.clock.time())
            self.dimensions[name] = dimension
            self._changed()
            return dimension

    def describe_dimension(self, name: str) -> Dimension:
        with self._lock:
            if name not in self.dimensions:
                raise ResourceNotFoundError(f"no dimension {name}")
            return self.dimensions[name]

    def update_dimension(self, name: str, values: list[str]) -> Dimension:
        with self._lock:
            old = self.describe_dimension(name)
            dimension = replace(old, string_values=tuple(values))
            if self._records is not None:
                self._records.save_dimension(name, old.type, list(values), self.clock.time())
            self.dimensions[name] = dimension
            self._changed()
            return dimension

    def dimensions_in_use(self, metric: str) -> list[tuple[str, tuple[str, ...]]]:
        """(name, topic filters) of the dimensions some behavior uses with ``metric``."""
        with self._lock:
            names = {b.metric_dimension.dimension_name for p in self.profiles.values()
                     for b in p.behaviors
                     if b.metric == metric and b.metric_dimension is not None}
            return [(n, self.dimensions[n].string_values) for n in sorted(names)
                    if n in self.dimensions]

    def topic_dimensions_for(self, thing: str, registered: bool, metrics: Iterable[str]
                             ) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
        """metric → (dimension name, topic filters) of the TOPIC_FILTER dimensions that
        behaviors of profiles targeting ``thing`` use with ``metrics`` (empty when none:
        the broker then counts nothing per topic for the thing's session).

        May read the registry (group membership) once per thing; cached after."""
        wanted = set(metrics)
        with self._lock:
            if not any(b.metric in wanted and b.metric_dimension is not None
                       for p in self.profiles.values() for b in p.behaviors):
                return {}
            found: dict[str, set[str]] = {}
            for profile in self.profiles.values():
                uses = [b for b in profile.behaviors
                        if b.metric in wanted and b.metric_dimension is not None]
                if not uses or not self._targets(profile, thing, registered):
                    continue
                for b in uses:
                    assert b.metric_dimension is not None
                    found.setdefault(b.metric, set()).add(b.metric_dimension.dimension_name)
            return {metric: [(n, self.dimensions[n].string_values) for n in sorted(names)
                             if n in self.dimensions]
                    for metric, names in found.items()}

    def delete_dimension(self, name: str) -> None:
        with self._lock:
            if self._records is not None:
                self._records.delete_dimension(name)
            self.dimensions.pop(name, None)
            self._changed()

    # -- security profiles ----------------------------------------------------------------

    def validate_behaviors(self, behaviors: object) -> list[Behavior]:
        """Parse AWS ``Behavior`` documents.

        :raises InvalidRequestError: a bad behavior, duplicate names, more than 100.
        """
        if not isinstance(behaviors, list):
            raise InvalidRequestError("behaviors must be a list")
        if len(behaviors) > 100:
            raise InvalidRequestError("at most 100 behaviors per profile")
        parsed = [parse_behavior(b, self.custom_types(), frozenset(self.dimensions),
                                 ml_sets=not self.ml_strict)
                  for b in behaviors]
        names = [b.name for b in parsed]
        if len(set(names)) != len(names):
            raise InvalidRequestError("behavior names must be unique in a profile")
        return parsed

    def create_security_profile(self, name: str, *, behaviors: object = (),
                                description: str = "",
                                alert_targets: Mapping[str, Any] | None = None,
                                additional_metrics: Iterable[dict[str, Any]] = (),
                                mitigation_actions: Iterable[str] = (),
                                metrics_export: Mapping[str, Any] | None = None,
                                now: float) -> SecurityProfile:
        """CreateSecurityProfile.

        :raises InvalidRequestError: a bad name or behavior, a bad ``metrics_export``, or
            an exported metric without it.
        :raises ResourceAlreadyExistsError: the profile exists.
        """
        if not NAME_PATTERN.match(name):
            raise InvalidRequestError(f"bad security profile name {name!r}")
        parsed = self.validate_behaviors(list(behaviors)
                                         if isinstance(behaviors, (list, tuple)) else behaviors)
        with self._lock:
            if name in self.profiles:
                raise ResourceAlreadyExistsError(f"security profile {name} exists")
            profile = SecurityProfile(name, tuple(parsed), description,
                                      dict(alert_targets or {}), tuple(additional_metrics),
                                      1, now, now, set(), tuple(mitigation_actions),
                                      _export_config(metrics_export))
            _check_export(profile)
            if self._records is not None:
                self._records.save_profile(profile)
            self.profiles[name] = profile
            self._changed()
            return profile

    def describe_security_profile(self, name: str) -> SecurityProfile:
        with self._lock:
            profile = self.profiles.get(name)
            if profile is None:
                raise ResourceNotFoundError(f"no security profile {name}")
            return profile

    def update_security_profile(self, name: str, *, expected_version: int | None = None,
                                behaviors: object = None, description: str | None = None,
                                alert_targets: Mapping[str, Any] | None = None,
                                additional_metrics: Iterable[dict[str, Any]] | None = None,
                                mitigation_actions: Iterable[str] | None = None,
                                metrics_export: Mapping[str, Any] | None = None,
                                delete_metrics_export: bool = False,
                                delete_behaviors: bool = False,
                                delete_alert_targets: bool = False,
                                now: float) -> SecurityProfile:
        """UpdateSecurityProfile. Alarms of behaviors that were removed are dropped.

        :raises VersionConflictError: ``expected_version`` is not the current version.
        """
        parsed = None if behaviors is None else self.validate_behaviors(behaviors)
        with self._lock:
            profile = self.describe_security_profile(name)
            if expected_version is not None and expected_version != profile.version:
                raise VersionConflictError(
                    f"expected version {expected_version}, the profile is at "
                    f"{profile.version}")
            export = profile.metrics_export
            if delete_metrics_export:
                export = None
            elif metrics_export is not None:
                export = _export_config(metrics_export)
            _check_export(replace(
                profile, metrics_export=export,
                behaviors=() if delete_behaviors else profile.behaviors
                if parsed is None else tuple(parsed),
                additional_metrics=profile.additional_metrics if additional_metrics is None
                else tuple(additional_metrics)))
            profile.metrics_export = export
            if delete_behaviors:
                profile.behaviors = ()
            elif parsed is not None:
                profile.behaviors = tuple(parsed)
            if description is not None:
                profile.description = description
            if delete_alert_targets:
                profile.alert_targets = {}
            elif alert_targets is not None:
                profile.alert_targets = dict(alert_targets)
            if additional_metrics is not None:
                profile.additional_metrics = tuple(additional_metrics)
            if mitigation_actions is not None:
                profile.mitigation_actions = tuple(mitigation_actions)
            profile.version += 1
            profile.last_modified_date = now
            if self._records is not None:
                self._records.save_profile(profile)
            kept = {b.name for b in profile.behaviors}
            self._end_alarms([k for k in self._trackers if k[1] == name and k[2] not in kept])
            self.learning.forget(self.profiles)
            self._changed()
            return profile

    def delete_security_profile(self, name: str, expected_version: int | None = None) -> None:
        with self._lock:
            profile = self.describe_security_profile(name)
            if expected_version is not None and expected_version != profile.version:
                raise VersionConflictError(f"expected version {expected_version}")
            if self._records is not None:
                self._records.delete_profile(name)
            del self.profiles[name]
            self._end_alarms([k for k in self._trackers if k[1] == name])
            self.learning.forget(self.profiles)
            self._changed()

    def list_security_profiles(self) -> list[SecurityProfile]:
        with self._lock:
            return sorted(self.profiles.values(), key=lambda p: p.name)

    def target_key(self, target_arn: str) -> str:
        """``arn:…:thinggroup/g`` → ``thinggroup/g``; ``arn:…:all/things`` → ``all/things``.

        :raises InvalidRequestError: not a profile target.
        """
        if not target_arn.startswith("arn:"):
            raise InvalidRequestError(f"bad securityProfileTargetArn {target_arn!r}")
        resource = target_arn.split(":", 5)[-1]
        if resource in (ALL_THINGS, REGISTERED, UNREGISTERED) or (
                resource.startswith("thinggroup/") and len(resource) > len("thinggroup/")):
            return resource
        raise InvalidRequestError(f"bad securityProfileTargetArn {target_arn!r}")

    def target_arn(self, key: str) -> str:
        return self._account.arn(key)

    def attach(self, name: str, target_arn: str) -> None:
        key = self.target_key(target_arn)
        with self._lock:
            profile = self.describe_security_profile(name)
            profile.targets.add(key)
            if self._records is not None:
                self._records.save_profile(profile)
            self._changed()

    def detach(self, name: str, target_arn: str) -> None:
        key = self.target_key(target_arn)
        with self._lock:
            profile = self.describe_security_profile(name)
            profile.targets.discard(key)
            if self._records is not None:
                self._records.save_profile(profile)
            self._end_alarms([k for k in self._trackers
                              if k[1] == name and not self._targets(profile, k[0])])
            self._changed()

    def profiles_for_target(self, target_arn: str) -> list[tuple[SecurityProfile, str]]:
        key = self.target_key(target_arn)
        with self._lock:
            return [(p, key) for p in self.list_security_profiles() if key in p.targets]

    # -- membership -----------------------------------------------------------------------

    def membership_changed(self, thing_name: str | None = None) -> None:
        """Forget cached membership (of one thing, or of all)."""
        with self._lock:
            if thing_name is None:
                self._members.clear()
                self._peers.clear()
            else:
                self._members.pop(thing_name, None)
                self._peers.pop(thing_name, None)

    def _profile_peer(self, profile: SecurityProfile, thing: str) -> str:
        """The peer key of ``thing`` under ``profile``: the profile's target group the
        thing is in (the first by name; ``*`` for the fleet-wide targets), then its
        thing type and firmware (:meth:`_peer`). Lock held."""
        groups = sorted(t[len("thinggroup/"):] for t in profile.targets
                        if t.startswith("thinggroup/"))
        group = "*"
        if groups and thing not in self._unregistered:
            _, member_of = self._member(thing, True)
            group = next((g for g in groups if g in member_of), "*")
        return f"group={group};{self._peer(thing)}"

    def _peer(self, thing: str) -> str:
        """The peer key of ``thing`` (cached until :meth:`membership_changed`)."""
        found = self._peers.get(thing)
        if found is None:
            if thing in self._unregistered or self._peer_of is None:
                found = peer_key(None, None)
            else:
                found = self._peer_of(thing)
            self._peers[thing] = found
        return found

    def _member(self, thing: str, registered_hint: bool) -> tuple[bool, frozenset[str]]:
        if not registered_hint:
            return False, frozenset()
        cached = self._members.get(thing)
        if cached is None:
            cached = self._membership(thing)
            self._members[thing] = cached
        return cached

    def _targets(self, profile: SecurityProfile, thing: str,
                 registered_hint: bool = True) -> bool:
        targets = profile.targets
        if not targets:
            return False
        if ALL_THINGS in targets:
            return True
        registered, groups = self._member(thing, registered_hint)
        if registered and REGISTERED in targets:
            return True
        if not registered:
            return UNREGISTERED in targets
        return any(f"thinggroup/{g}" in targets for g in groups)

    # -- ingestion and evaluation ---------------------------------------------------------

    def ingest(self, datapoints: Iterable[Datapoint], now: float) -> list[ViolationEvent]:
        """Store and evaluate a batch of datapoints (see the module docstring)."""
        started = time.perf_counter()
        batch = list(datapoints)
        fired: list[tuple[ViolationEvent, SecurityProfile]] = []
        touched: dict[str, tuple[ActiveViolation, bool]] = {}
        exports: dict[str, list[dict[str, Any]]] = defaultdict(list)
        with self._lock:
            keep = now - max(self._longest_window(), 0.0)
            profiles = list(self.profiles.values())
            uses: dict[str, dict[str, list[Behavior]]] = {}
            for profile in profiles:
                for behavior in profile.behaviors:
                    uses.setdefault(profile.name, {}).setdefault(behavior.metric, []).append(
                        behavior)
            # windows serve durations and statistical thresholds only
            windowed = {b.metric for p in profiles for b in p.behaviors
                        if b.criteria.statistic is not None
                        or b.criteria.duration_seconds is not None}
            for dp in batch:
                key = (dp.thing_name, dp.metric, dp.dimension)
                if not dp.registered:
                    self._unregistered.add(dp.thing_name)
                if self._records is None:
                    self._values[key].append((dp.timestamp, dp.value))
                if dp.metric in windowed:
                    scalar = dp.value.scalar()
                    if scalar is not None:
                        self._windows[key].add(dp.timestamp, scalar, keep - 1)
            thresholds: dict[tuple[str, str], float | None] = {}
            small = len({dp.thing_name for dp in batch}) == 1
            learned: dict[tuple[str, str], list[Datapoint]] = defaultdict(list)
            moved: list[tuple[FleetEvent, SecurityProfile]] = []
            for dp in batch:
                for profile in profiles:
                    export = profile.metrics_export is not None and _exported(profile, dp)
                    behaviors = uses.get(profile.name, {}).get(dp.metric)
                    if not export and not behaviors:
                        continue
                    if not self._targets(profile, dp.thing_name, dp.registered):
                        continue
                    if export and profile.metrics_export is not None:
                        exports[profile.metrics_export["mqttTopic"]].append(
                            _export_entry(dp))
                    for behavior in behaviors or ():
                        if _dim(behavior) != dp.dimension:
                            continue
                        if behavior.criteria.ml_confidence is not None:
                            learned[(profile.name, behavior.name)].append(dp)
                            continue
                        event = self._evaluate(profile, behavior, dp, thresholds, touched,
                                               small)
                        if event is not None:
                            fired.append((event, profile))
            for (profile_name, behavior_name), points in learned.items():
                profile = self.profiles[profile_name]
                ml_behavior = next(b for b in profile.behaviors if b.name == behavior_name)
                outcome = self.learning.evaluate(
                    profile, ml_behavior, points, partial(self._profile_peer, profile), now)
                moved.extend((event, profile) for event in outcome.fleet_events)
                fired.extend((event, profile) for event in self._judged(
                    profile, ml_behavior, outcome, points, touched))
        if self._records is not None:
            self._records.record_batch(
                batch, [(v, is_active, v.violation_id in self._suppressed)
                        for v, is_active in touched.values()],
                [(e, e.violation_id in self._suppressed) for e, _ in fired])
        with self._lock:
            self.stats.batches += 1
            self.stats.datapoints += len(batch)
            self.stats.evaluation_seconds += time.perf_counter() - started
        self._emit(fired)
        self._fleet_moved(moved)
        if exports and self.on_export is not None:
            for topic, entries in exports.items():
                self.on_export(topic, {"version": "1.0", "metrics": entries})
        return [event for event, _ in fired]

    def _fleet_moved(self, moved: list[tuple[FleetEvent, SecurityProfile]]) -> None:
        """Annotate fleet events with the jobs in progress on their devices and hand them
        to ``on_fleet_event`` (outside the lock)."""
        for event, profile in moved:
            jobs: tuple[str, ...] = ()
            if self.jobs_in_progress is not None:
                try:
                    jobs = tuple(self.jobs_in_progress(event.things[:20]))
                except Exception:
                    log.exception("detect: jobs of a fleet event")
            event = replace(event, jobs=jobs)
            self.learning.fleet_events.append(event)
            if self.on_fleet_event is not None:
                self.on_fleet_event(event, profile)

    def _longest_window(self) -> float:
        longest = 0.0
        for profile in self.profiles.values():
            for behavior in profile.behaviors:
                longest = max(longest, float(behavior.criteria.duration_seconds or 0))
        return longest

    def _observed(self, behavior: Behavior, thing: str, dp_value: MetricValue,
                  dimension: str | None, at: float) -> MetricValue:
        """The value compared: the window's sum for accumulating metrics with a
        duration, else the datapoint itself."""
        duration = behavior.criteria.duration_seconds
        if duration and behavior.metric in ACCUMULATING:
            total = self._windows[(thing, behavior.metric, dimension)].total(at - duration)
            return MetricValue(count=int(total)) if float(total).is_integer() \
                else MetricValue(number=total)
        return dp_value

    def _statistical(self, profile: SecurityProfile, behavior: Behavior, at: float,
                     dimension: str | None) -> float | None:
        statistic = behavior.criteria.statistic
        assert statistic is not None
        duration = behavior.criteria.duration_seconds or 0
        samples: list[float] = []
        for (thing, metric, dim), window in self._windows.items():
            if metric != behavior.metric or dim != dimension or not window.points:
                continue
            if not self._targets(profile, thing, thing not in self._unregistered):
                continue
            if duration and metric in ACCUMULATING:
                samples.append(window.total(at - duration))
            else:
                samples.append(window.points[-1][1])
        return percentile(samples, statistic)

    def _evaluate(self, profile: SecurityProfile, behavior: Behavior, dp: Datapoint,
                  thresholds: dict[tuple[str, str], float | None],
                  touched: dict[str, tuple[ActiveViolation, bool]],
                  small: bool = False) -> ViolationEvent | None:
        criteria = behavior.criteria
        observed = self._observed(behavior, dp.thing_name, dp.value, dp.dimension,
                                  dp.timestamp)
        threshold: float | None = None
        if criteria.statistic is not None:
            tkey = (profile.name, behavior.name)
            if tkey not in thresholds:
                ckey = (profile.name, behavior.name, dp.dimension)
                cached = self._threshold_cache.get(ckey)
                if small and cached is not None and \
                        dp.timestamp - cached[0] < self.statistics_ttl:
                    thresholds[tkey] = cached[1]
                else:
                    thresholds[tkey] = self._statistical(profile, behavior, dp.timestamp,
                                                         dp.dimension)
                    self._threshold_cache[ckey] = (dp.timestamp, thresholds[tkey])
            threshold = thresholds[tkey]
            if threshold is None:
                return None
        ok = satisfies(criteria, observed, threshold)
        return self._step(profile, behavior, dp.thing_name, ok, observed, dp.timestamp,
                          touched)

    def _judged(self, profile: SecurityProfile, behavior: Behavior, outcome: Outcome,
                points: list[Datapoint], touched: dict[str, tuple[ActiveViolation, bool]]
                ) -> list[ViolationEvent]:
        """The alarm steps of an ML behavior's judged datapoints: every abnormal one and
        every normal one of a thing with an alarm state (others change nothing). An ML
        behavior keeps alarm trackers only while they are not neutral, so a normal
        fleet costs no tracker per thing."""
        latest = {dp.thing_name: dp for dp in points}
        watched = self._ml_watch.setdefault((profile.name, behavior.name), set())
        flagged = {outcome.things[i] for i in outcome.abnormal.nonzero()[0].tolist()}
        events = []
        for thing in sorted(flagged | (watched & latest.keys())):
            key = (thing, profile.name, behavior.name)
            dp = latest[thing]
            verdict = outcome.verdicts.get(thing)
            event = self._step(profile, behavior, thing, thing not in flagged, dp.value,
                               dp.timestamp, touched,
                               None if verdict is None else verdict.explanation)
            if event is not None:
                events.append(event)
            tracker = self._trackers.get(key)
            if tracker is None or (not tracker.in_alarm and tracker.abnormal == 0):
                self._trackers.pop(key, None)  # neutral: the model alone remembers
                watched.discard(thing)
            else:
                watched.add(thing)
        return events

    def _step(self, profile: SecurityProfile, behavior: Behavior, thing: str, ok: bool,
              observed: MetricValue, timestamp: float,
              touched: dict[str, tuple[ActiveViolation, bool]],
              details: dict[str, Any] | None = None) -> ViolationEvent | None:
        """Account one judged value in the thing's alarm state; the event it causes."""
        criteria = behavior.criteria
        key = (thing, profile.name, behavior.name)
        tracker = self._trackers.get(key)
        if tracker is None:
            tracker = self._trackers[key] = AlarmTracker()
        kind = tracker.step(ok, criteria, timestamp)
        active = self.active.get(key)
        if active is not None and not ok:
            active.last_violation_value = observed
            active.last_violation_time = timestamp
            if details is not None:
                active.details = details
            touched[active.violation_id] = (active, True)
        if kind is None:
            return None
        if kind is ViolationEventType.IN_ALARM:
            violation_id = str(uuid.uuid4())
            active = ActiveViolation(violation_id, thing, profile.name, behavior,
                                     observed, timestamp, timestamp, details=details)
            self.active[key] = active
            if behavior.suppress_alerts:
                self._suppressed.add(violation_id)
            touched[violation_id] = (active, True)
        else:
            active = self.active.pop(key)
            touched[active.violation_id] = (active, False)
        event = ViolationEvent(active.violation_id, thing, profile.name, behavior,
                               kind, observed, timestamp, active.verification_state,
                               active.verification_state_description,
                               details if kind is ViolationEventType.IN_ALARM else None)
        if self._records is None:
            self.events.append(event)
        return event

    def expire(self, now: float) -> list[ViolationEvent]:
        """Invalidate alarms of silent devices; drop metric values past retention."""
        fired: list[tuple[ViolationEvent, SecurityProfile]] = []
        ended: list[tuple[ActiveViolation, bool, bool]] = []
        with self._lock:
            for key, tracker in list(self._trackers.items()):
                if tracker.last_datapoint >= now - self.invalidate_after:
                    continue
                if tracker.invalidate():
                    active = self.active.pop(key)
                    event = ViolationEvent(active.violation_id, key[0], key[1],
                                           active.behavior,
                                           ViolationEventType.ALARM_INVALIDATED, None, now,
                                           active.verification_state,
                                           active.verification_state_description)
                    if self._records is None:
                        self.events.append(event)
                    ended.append((active, False, active.violation_id in self._suppressed))
                    profile = self.profiles.get(key[1])
                    if profile is not None:
                        fired.append((event, profile))
                del self._trackers[key]
            horizon = now - self.retention_seconds
            for value_key, values in list(self._values.items()):
                while values and values[0][0] < horizon:
                    values.popleft()
                if not values:
                    del self._values[value_key]
                    self._windows.pop(value_key, None)
            self.events = [e for e in self.events if e.timestamp >= horizon]
            models = self.learning.snapshot(now)
        if self._records is not None:
            self._records.record_batch((), ended, [
                (e, e.violation_id in self._suppressed) for e, _ in fired])
            self._records.purge(horizon)
            self.learning.write(models)
        self._emit(fired)
        return [event for event, _ in fired]

    def _emit(self, fired: list[tuple[ViolationEvent, SecurityProfile]]) -> None:
        """Count and log each event, then hand it to ``on_event``."""
        for event, _ in fired:
            with self._lock:
                events = self.stats.events
                events[event.event_type.value] = events.get(event.event_type.value, 0) + 1
            value = "" if event.metric_value is None else json.dumps(
                event.metric_value.to_json())
            log.info("detect: %s: thing %r, profile %s, behavior %s (%s)%s [violation %s]",
                     event.event_type.value, event.thing_name, event.security_profile_name,
                     event.behavior.name, event.behavior.metric,
                     f", value {value}" if value else "", event.violation_id)
        if self.on_event is None:
            return
        for event, profile in fired:
            self.on_event(event, profile)

    def is_suppressed(self, violation_id: str) -> bool:
        return violation_id in self._suppressed

    # -- queries --------------------------------------------------------------------------

    def list_metric_values(self, thing_name: str, metric: str, start: float, end: float,
                           dimension: str | None = None) -> list[tuple[float, MetricValue]]:
        """ListMetricValues: the thing's datapoints of ``metric`` in [start, end)."""
        if metric not in BUILTIN_METRICS and metric not in self.custom_metrics:
            raise InvalidRequestError(f"unknown metric {metric}")
        if self._records is not None:
            return self._records.metric_values(thing_name, metric, dimension, start, end)
        with self._lock:
            values = self._values.get((thing_name, metric, dimension), ())
            return [(t, v) for t, v in values if start <= t < end]

    def list_active_violations(self, *, thing_name: str | None = None,
                               security_profile_name: str | None = None,
                               criteria_type: str | None = None,
                               list_suppressed: bool | None = None,
                               verification_state: str | None = None
                               ) -> list[ActiveViolation]:
        if self.shared and self._records is not None:
            stored = self._records.active_violations(self.custom_types())
            found = [v for v, _ in stored]
            with self._lock:
                self._suppressed.update(v.violation_id for v, suppressed in stored
                                        if suppressed)
        else:
            with self._lock:
                found = sorted(self.active.values(), key=lambda v: v.violation_start_time)
        return [v for v in found if _matches(
            v.thing_name, v.security_profile_name, v.behavior, v.verification_state,
            v.violation_id, self, thing_name=thing_name,
            security_profile_name=security_profile_name, criteria_type=criteria_type,
            list_suppressed=list_suppressed, verification_state=verification_state)]

    def list_violation_events(self, start: float, end: float, *,
                              thing_name: str | None = None,
                              security_profile_name: str | None = None,
                              criteria_type: str | None = None,
                              list_suppressed: bool | None = None,
                              verification_state: str | None = None
                              ) -> list[ViolationEvent]:
        if self._records is not None:
            stored = self._records.events(start, end, thing_name, security_profile_name,
                                          self.custom_types())
            found = [e for e, _ in stored]
            self._suppressed.update(e.violation_id for e, suppressed in stored if suppressed)
        else:
            with self._lock:
                found = [e for e in self.events if start <= e.timestamp <= end]
        return [e for e in found if _matches(
            e.thing_name, e.security_profile_name, e.behavior, e.verification_state,
            e.violation_id, self, thing_name=thing_name,
            security_profile_name=security_profile_name, criteria_type=criteria_type,
            list_suppressed=list_suppressed, verification_state=verification_state)]

    def put_verification_state(self, violation_id: str, state: str,
                               description: str | None = None) -> None:
        """PutVerificationStateOnViolation.

        :raises InvalidRequestError: unknown state or no such violation.
        """
        try:
            verification = VerificationState(state)
        except ValueError:
            raise InvalidRequestError(f"bad verificationState {state!r}") from None
        if description is not None and len(description) > 1000:
            raise InvalidRequestError("verificationStateDescription is too long")
        with self._lock:
            hit = False
            for active in self.active.values():
                if active.violation_id == violation_id:
                    active.verification_state = verification
                    active.verification_state_description = description
                    hit = True
            for i, event in enumerate(self.events):
                if event.violation_id == violation_id:
                    self.events[i] = replace(event, verification_state=verification,
                                             verification_state_description=description)
                    hit = True
            if self._records is not None:
                hit = self._records.set_verification(violation_id, verification.value,
                                                     description) or hit
            if not hit:
                raise InvalidRequestError(f"no violation {violation_id}")
            if verification in (VerificationState.FALSE_POSITIVE,
                                VerificationState.BENIGN_POSITIVE):
                self._learn_from(violation_id)
            self._changed()

    def _learn_from(self, violation_id: str) -> None:
        """A false or benign positive: its ML model widens the device's usual range."""
        found = next(((a.thing_name, a.security_profile_name, a.behavior.name)
                      for a in self.active.values() if a.violation_id == violation_id), None)
        if found is None:
            found = next(((e.thing_name, e.security_profile_name, e.behavior.name)
                          for e in self.events if e.violation_id == violation_id), None)
        if found is None and self._records is not None:
            found = self._records.violation_of(violation_id)
        if found is not None:
            thing, profile, behavior = found
            self.learning.accept(profile, behavior, thing)

    # -- ML Detect ------------------------------------------------------------------------

    def training_summaries(self, security_profile_name: str | None = None
                           ) -> list[TrainingSummary]:
        """GetBehaviorModelTrainingSummaries: the ML behaviors' models.

        :raises ResourceNotFoundError: ``security_profile_name`` names no profile.
        """
        with self._lock:
            profiles = [self.describe_security_profile(security_profile_name)] \
                if security_profile_name is not None else self.list_security_profiles()
            return self.learning.training_summaries(profiles, self.clock.time())

    def save_models(self) -> None:
        """Write the ML models to the store now (when the service stops)."""
        with self._lock:
            rows = self.learning.snapshot(self.clock.time(), force=True)
        self.learning.write(rows)


ExportSink = Callable[[str, dict[str, Any]], None]


def _export_config(raw: Mapping[str, Any] | None) -> dict[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidRequestError("metricsExportConfig must be an object")
    topic, role = raw.get("mqttTopic"), raw.get("roleArn")
    if not isinstance(topic, str) or not 1 <= len(topic) <= 512 \
            or any(c in topic for c in "#+") or topic.startswith("$"):
        raise InvalidRequestError("metricsExportConfig.mqttTopic must be a topic name")
    if not isinstance(role, str) or not 20 <= len(role) <= 2048:
        raise InvalidRequestError("metricsExportConfig.roleArn must be a role ARN")
    return {"mqttTopic": topic, "roleArn": role}


def _check_export(profile: SecurityProfile) -> None:
    exported = any(b.export_metric for b in profile.behaviors) or any(
        m.get("exportMetric") for m in profile.additional_metrics)
    if exported and profile.metrics_export is None:
        raise InvalidRequestError("exportMetric needs the profile's metricsExportConfig")


def _exported(profile: SecurityProfile, dp: Datapoint) -> bool:
    for behavior in profile.behaviors:
        if behavior.export_metric and behavior.metric == dp.metric \
                and _dim(behavior) == dp.dimension:
            return True
    for metric in profile.additional_metrics:
        dimension = metric.get("metricDimension")
        key = None if not dimension else dimension_key(
            dimension.get("dimensionName", ""), dimension.get("operator") or "IN")
        if metric.get("exportMetric") and metric.get("metric") == dp.metric \
                and key == dp.dimension:
            return True
    return False


def _export_entry(dp: Datapoint) -> dict[str, Any]:
    """One datapoint in AWS's metrics export schema (timestamp in epoch milliseconds)."""
    entry: dict[str, Any] = {"name": dp.metric, "thing": dp.thing_name,
                             "value": dp.value.to_json(), "version": 1,
                             "timestamp": int(dp.timestamp * 1000)}
    if dp.dimension is not None:
        name, _, negated = dp.dimension.partition("|")
        entry["dimension"] = {"name": name, "operator": negated or "IN"}
    return entry


def dimension_key(name: str, operator: str = "IN") -> str:
    """The ``Datapoint.dimension`` of a TOPIC_FILTER dimension: its name for ``IN`` (the
    topics matching its filters), ``<name>|NOT_IN`` for the others."""
    return name if operator == "IN" else f"{name}|NOT_IN"


def _dim(behavior: Behavior) -> str | None:
    dimension = behavior.metric_dimension
    return None if dimension is None else dimension_key(dimension.dimension_name,
                                                         dimension.operator)


def _matches(thing: str, profile: str, behavior: Behavior,
             state: VerificationState | None, violation_id: str, service: DetectService, *,
             thing_name: str | None, security_profile_name: str | None,
             criteria_type: str | None, list_suppressed: bool | None,
             verification_state: str | None) -> bool:
    if thing_name is not None and thing != thing_name:
        return False
    if security_profile_name is not None and profile != security_profile_name:
        return False
    if criteria_type is not None and behavior.criteria.kind is not CriteriaType(criteria_type):
        return False
    if list_suppressed is False and service.is_suppressed(violation_id):
        return False
    return verification_state is None or (state.value if state else None) == verification_state
