"""Evaluating datapoints against behaviors (pure: no clock, no storage).

Theory of operation
-------------------
A behavior's criteria describe *normal* behaviour: :func:`satisfies` says whether one
value is normal. Numeric metrics compare the value (for ``durationSeconds`` windows of
per-interval counts, the window's sum, see :class:`Window`) with the criteria's value or,
for a statistical threshold, with the percentile of the same quantity over the profile's
devices (:func:`percentile`). Set metrics are normal when every element is inside the
set (``in-*``) or none is (``not-in-*``); an empty set is always normal, as in AWS.

:class:`AlarmTracker` is the alarm state of one (thing, profile, behavior): it counts
consecutive abnormal / normal datapoints and turns them into ``in-alarm`` after
``consecutiveDatapointsToAlarm`` and ``alarm-cleared`` after
``consecutiveDatapointsToClear``.
"""

from __future__ import annotations

import ipaddress
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ._model import ComparisonOperator, Criteria, MetricValue, ViolationEventType

_Op = ComparisonOperator


def threshold_of(criteria: Criteria) -> float | None:
    """The static numeric threshold of ``criteria`` (``None`` for set operators)."""
    value = criteria.value
    return None if value is None else value.scalar()


def satisfies(criteria: Criteria, value: MetricValue, threshold: float | None = None) -> bool:
    """Whether ``value`` is normal under ``criteria``.

    :param threshold: the numeric threshold (a percentile for statistical criteria);
        defaults to the criteria's own value.
    """
    op = criteria.comparison_operator
    if op in (_Op.LESS_THAN, _Op.LESS_THAN_EQUALS, _Op.GREATER_THAN,
              _Op.GREATER_THAN_EQUALS):
        x = value.scalar()
        limit = threshold if threshold is not None else threshold_of(criteria)
        if x is None or limit is None:
            return True  # nothing to compare: no evidence of abnormal behaviour
        if op is _Op.LESS_THAN:
            return x < limit
        if op is _Op.LESS_THAN_EQUALS:
            return x <= limit
        if op is _Op.GREATER_THAN:
            return x > limit
        return x >= limit
    expected = criteria.value or MetricValue()
    if op in (_Op.IN_CIDR_SET, _Op.NOT_IN_CIDR_SET):
        networks = [ipaddress.ip_network(c, strict=False) for c in expected.cidrs or ()]
        inside = [any(_in(ip, net) for net in networks) for ip in value.cidrs or ()]
        return all(inside) if op is _Op.IN_CIDR_SET else not any(inside)
    if op in (_Op.IN_PORT_SET, _Op.NOT_IN_PORT_SET):
        allowed = set(expected.ports or ())
        hits = [p in allowed for p in value.ports or ()]
        return all(hits) if op is _Op.IN_PORT_SET else not any(hits)
    members: Iterable[object] = value.numbers if value.numbers is not None else (
        value.strings or ())
    reference: set[object] = set(expected.numbers or ()) | set(expected.strings or ())
    hits = [m in reference for m in members]
    return all(hits) if op is _Op.IN_SET else not any(hits)


def _in(ip: str, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    try:
        address = ipaddress.ip_address(ip.split("/")[0])
    except ValueError:
        return False
    return address.version == network.version and address in network


def percentile(values: Sequence[float], statistic: str) -> float | None:
    """``p0`` … ``p100`` of ``values`` (nearest rank); ``None`` without values."""
    if not values:
        return None
    q = float(statistic[1:])
    ordered = sorted(values)
    if q <= 0:
        return ordered[0]
    rank = math.ceil(q / 100.0 * len(ordered))
    return ordered[min(len(ordered), max(1, rank)) - 1]


@dataclass(slots=True)
class Window:
    """The datapoints of one numeric metric of one thing over the longest window any
    behavior needs; ``total(since)`` sums the ones newer than ``since``."""

    points: deque[tuple[float, float]] = field(default_factory=deque)

    def add(self, timestamp: float, value: float, keep_since: float) -> None:
        self.points.append((timestamp, value))
        while self.points and self.points[0][0] < keep_since:
            self.points.popleft()

    def total(self, since: float) -> float:
        return sum(v for t, v in self.points if t > since)


@dataclass(slots=True)
class AlarmTracker:
    """Alarm state of one (thing, profile, behavior). See the module docstring."""

    in_alarm: bool = False
    abnormal: int = 0
    normal: int = 0
    last_datapoint: float = 0.0

    def step(self, ok: bool, criteria: Criteria, timestamp: float
             ) -> ViolationEventType | None:
        """Account one datapoint; returns the event it causes, if any."""
        self.last_datapoint = timestamp
        if ok:
            self.abnormal = 0
            if not self.in_alarm:
                return None
            self.normal += 1
            if self.normal >= criteria.consecutive_datapoints_to_clear:
                self.in_alarm = False
                self.normal = 0
                return ViolationEventType.ALARM_CLEARED
            return None
        self.normal = 0
        if self.in_alarm:
            return None
        self.abnormal += 1
        if self.abnormal >= criteria.consecutive_datapoints_to_alarm:
            self.in_alarm = True
            self.abnormal = 0
            return ViolationEventType.IN_ALARM
        return None

    def invalidate(self) -> bool:
        """The device stopped reporting: drop an alarm. True when one was dropped."""
        was = self.in_alarm
        self.in_alarm = False
        self.abnormal = self.normal = 0
        return was
