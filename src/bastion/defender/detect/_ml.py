"""ML Detect: behaviour models learned online, per peer group, evaluated as arrays.

Theory of operation
-------------------
One :class:`NumericModel` holds the state of one ML behavior (a profile's behavior with
``mlDetectionConfig``) over every device it sees. Devices are slots of a
:class:`DeviceSlots` shared by all the models of a service, so 100,000 devices cost one
name table, and each model's state is a handful of ``float32`` arrays.

A value ``x`` (a count, a byte total, a gauge: never negative) is compared in log space,
``y = log1p(x)``, where a doubling is the same step at every size. Each evaluation:

1. **Peer group.** A device's peer key (the profile's target narrowed by thing type and
   firmware attribute, :func:`peer_key`) names its group; groups with fewer than
   ``MIN_PEERS`` recently reporting devices fall back to the model's whole population.
   Every ``refresh`` seconds the model takes, per group, the median ``c`` and the MAD of
   the latest ``y`` of its devices that reported within ``recent`` seconds, and keeps a
   smoothed scale ``s = max(1.4826·MAD, FLOOR)``. The centre is the *current*
   cross-section, so when a whole group moves (daily rhythm, a fleet-wide shift) its
   baseline moves with it. ``FLOOR`` keeps usually-zero metrics from turning one event
   into an alarm (``FLOORS`` sets a smaller one where one event is news).
2. **Standing.** ``r = (y − c) / s`` is where the device sits in its group, in group
   scale units. The device learns the mean ``m`` and variance ``v`` of its own ``r``
   (an exponentially weighted average, ``1/n`` at first so its first value counts fully).
   Its score is ``d = (r − m) / sqrt(v + τ²)``: how far it is from its own usual place.
   ``τ`` floors the device's own spread at ``FLOOR`` in log1p units and at ``TAU_MIN`` of
   the group's scale, so a device that was steady for a while is not alarmed by ordinary
   noise. A new device (fewer than ``DEVICE_WARMUP`` values) has ``τ = 1`` and
   ``m = v = 0`` at first, so ``d = r``: the group decides until it has a history.
3. **Slow change.** A one-sided CUSUM ``S = max(0, S + d − KAPPA)`` adds up small excesses
   that no single interval shows; with it the model keeps the accumulated excess in the
   metric's own units (bytes, messages) since ``S`` last left zero.
4. **Verdict.** A value is abnormal when ``d`` passes the confidence level's ``z`` or
   ``S`` passes its ``h`` (:data:`CONFIDENCE`). Only high values are abnormal: a device
   that goes quiet is an operations matter, and a device that sends nothing sends no
   datapoint (missing data is not zero).
5. **Poisoning.** The device learns from a value only when it is not abnormal, its ``d``
   is under ``LEARN_BOUND`` and its CUSUM is under half of ``h`` (it is not drifting), so
   an attacker cannot teach the model a new normal one interval at a time. Its first
   ``DEVICE_WARMUP`` values are learned whenever they are not abnormal (a device that
   sits high in its group learns where it sits) and add nothing to its CUSUM.
6. **Fleet events.** When at least ``FLEET_SHARE`` of a group (and at least
   ``MIN_PEERS`` devices) moved up (``d`` above half of ``z``) within ``fleet_window``
   seconds and some of them are abnormal, the group is moving together (a network blip, a firmware rollout): its devices' abnormal values
   are absorbed (learned) instead of alarmed, and one :class:`FleetEvent` is reported.

Feedback: :meth:`NumericModel.accept` (a violation verified as a false or benign
positive) widens the device's usual range so the value that fired scores 1, and clears
its CUSUM.

:class:`NoveltyModel` does the same job for set-valued metrics (listening ports,
destination addresses): an element is novel when the device never reported it and fewer
than ``RARE_SHARE`` of its group did; a decaying sum of novel elements catches a slow
scan that adds one port every few intervals.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
Flags = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Confidence:
    """What one AWS confidence level means in numbers."""

    z: float        # device score d above which one value is abnormal
    h: float        # CUSUM level above which a slow change is abnormal
    novelty: float  # decayed count of novel elements from which a set is abnormal


CONFIDENCE: Final[dict[str, Confidence]] = {
    "LOW": Confidence(z=3.0, h=6.0, novelty=2.0),
    "MEDIUM": Confidence(z=4.0, h=9.0, novelty=3.0),
    "HIGH": Confidence(z=5.5, h=14.0, novelty=5.0),
}
"""LOW alarms on smaller deviations (more alarms), HIGH only on large ones."""

FLOOR: Final = 0.35        # smallest group scale in log1p units (a factor of ~1.4)
FLOORS: Final = {"aws:num-authorization-failures": 0.17}
"""Metrics with a smaller floor: a device refused once where it and its peers never are
is news (one failure scores 4), where one more message or byte is not."""
TAU_MIN: Final = 0.25      # a device's own spread counts as at least this share of the
#                            group's scale, and at least FLOOR in log1p units
KAPPA: Final = 0.5         # CUSUM allowance per datapoint, in device-score units
LEARN_BOUND: Final = 2.5   # a device learns only from values scoring under this
MIN_ALPHA: Final = 0.05    # slowest learning rate (a memory of ~20 datapoints)
DEVICE_WARMUP: Final = 3   # a device's first values: learned up to z, no CUSUM yet
MIN_PEERS: Final = 5       # smaller groups use the model's whole population
FLEET_SHARE: Final = 0.2   # this share of a group abnormal together is a fleet event
SCALE_SMOOTHING: Final = 0.3
WARMUP_REFRESHES: Final = 3  # fast start: refreshes with MIN_PEERS devices before ACTIVE
AWS_TRAINING_SECONDS: Final = 14 * 86400.0
AWS_TRAINING_DATAPOINTS: Final = 25_000
RARE_SHARE: Final = 0.1    # an element held by fewer of the group is rare
NOVELTY_DECAY: Final = 0.97
NOVELTY_WARMUP: Final = 2  # a device's first reports only teach its set
MAX_SET: Final = 512       # elements remembered per device and set metric
FALLBACK: Final = "*"


def peer_key(thing_type: str | None, firmware: str | None) -> str:
    """The peer key of a device: its thing type and firmware attribute."""
    return f"type={thing_type or '-'};firmware={firmware or '-'}"


class DeviceSlots:
    """Thing name ↔ slot number, shared by the models of one service."""

    __slots__ = ("index", "names")

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = []

    def slots(self, things: Iterable[str]) -> npt.NDArray[np.int64]:
        index, names = self.index, self.names
        out = []
        for thing in things:
            slot = index.get(thing)
            if slot is None:
                slot = index[thing] = len(names)
                names.append(thing)
            out.append(slot)
        return np.fromiter(out, dtype=np.int64, count=len(out))

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One abnormal value, with what explains it."""

    thing_name: str
    detector: str           # "peer-group" | "device-history" | "cumulative" | "novelty"
    score: float
    threshold: float
    explanation: dict[str, Any]


@dataclass(frozen=True, slots=True)
class FleetEvent:
    """A group that moved together: reported once instead of a violation per device."""

    metric: str
    group: str
    devices: int
    abnormal: int
    at: float
    things: tuple[str, ...]
    jobs: tuple[str, ...] = ()
    """Jobs in progress on the devices that moved (filled in by the service)."""

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "peerGroup": self.group, "devices": self.devices,
                "moved": self.abnormal, "time": self.at,
                "sample": list(self.things[:10]), "jobsInProgress": list(self.jobs)}


@dataclass(slots=True)
class Outcome:
    """What one evaluation found: per evaluated device, abnormal or not; the verdicts of
    the abnormal ones; the fleet events it raised."""

    things: list[str]
    abnormal: Flags
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    fleet_events: list[FleetEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TrainingStatus:
    """``BehaviorModelTrainingSummary`` of one model."""

    status: str                 # PENDING_BUILD | ACTIVE | EXPIRED
    collection_percentage: float
    started: float | None
    refreshed: float | None


class NumericModel:
    """The model of one numeric ML behavior. See the module docstring.

    :param metric: the behavior's metric (for explanations and fleet events).
    :param confidence: LOW, MEDIUM or HIGH.
    :param slots: the service's shared device slots.
    :param refresh: seconds between two group-statistics refreshes.
    :param recent: a device's value older than this is not in its group's statistics.
    :param fleet_window: abnormal devices of one group within this many seconds count
        together towards a fleet event.
    :param strict: AWS's training rule (14 days and 25,000 datapoints) before ACTIVE.
    :raises ValueError: an unknown confidence level.
    """

    def __init__(self, metric: str, confidence: str, slots: DeviceSlots, *,
                 refresh: float, recent: float, fleet_window: float,
                 strict: bool = False) -> None:
        if confidence not in CONFIDENCE:
            raise ValueError(f"unknown confidence level {confidence!r}")
        self.metric = metric
        self.floor = FLOORS.get(metric, FLOOR)
        self.confidence = confidence
        self.level = CONFIDENCE[confidence]
        self.slots = slots
        self.refresh = refresh
        self.recent = recent
        self.fleet_window = fleet_window
        self.strict = strict
        size = 0
        self.y: F32 = np.zeros(size, np.float32)        # latest log1p(value)
        self.seen: F64 = np.full(size, -math.inf)        # time of the latest value
        self.peer: I32 = np.zeros(size, np.int32)        # peer key id
        self.m: F32 = np.zeros(size, np.float32)         # usual standing (mean of r)
        self.v: F32 = np.zeros(size, np.float32)         # its variance
        self.n: I32 = np.zeros(size, np.int32)           # values learned
        self.cusum: F32 = np.zeros(size, np.float32)
        self.excess: F64 = np.zeros(size, np.float64)    # accumulated, in metric units
        self.excess_since: F64 = np.zeros(size, np.float64)
        self.flagged: F64 = np.full(size, -math.inf)     # since when it has moved (d > z/2)
        self.peer_keys: list[str] = []
        self._peer_ids: dict[str, int] = {}
        self.center: dict[str, float] = {}
        self.scale: dict[str, float] = {}
        self.members: dict[str, int] = {}
        self._group_of: dict[int, str] = {}
        self.fleet_moving: set[str] = set()
        self.started: float | None = None
        self.refreshed: float | None = None
        self.last_datapoint: float | None = None
        self.refreshes = 0
        self.datapoints = 0

    # -- state ---------------------------------------------------------------------------

    def _grow(self, size: int) -> None:
        have = len(self.y)
        if size <= have:
            return
        new = max(size, 2 * have, 64)
        extra = new - have

        def pad(a: Any, fill: float) -> Any:
            return np.concatenate([a, np.full(extra, fill, a.dtype)])

        self.y, self.seen = pad(self.y, 0.0), pad(self.seen, -math.inf)
        self.peer, self.m, self.v = pad(self.peer, 0), pad(self.m, 0.0), pad(self.v, 0.0)
        self.n, self.cusum = pad(self.n, 0), pad(self.cusum, 0.0)
        self.excess, self.excess_since = pad(self.excess, 0.0), pad(self.excess_since, 0.0)
        self.flagged = pad(self.flagged, -math.inf)

    def _peer_id(self, key: str) -> int:
        found = self._peer_ids.get(key)
        if found is None:
            found = self._peer_ids[key] = len(self.peer_keys)
            self.peer_keys.append(key)
        return found

    def nbytes(self) -> int:
        """Bytes held by the per-device arrays."""
        return sum(a.nbytes for a in (self.y, self.seen, self.peer, self.m, self.v, self.n,
                                      self.cusum, self.excess, self.excess_since,
                                      self.flagged))

    def training(self, now: float) -> TrainingStatus:
        """This model's training summary at ``now``."""
        if self.started is None:
            return TrainingStatus("PENDING_BUILD", 0.0, None, None)
        if self.last_datapoint is not None and \
                now - self.last_datapoint > AWS_TRAINING_SECONDS:
            return TrainingStatus("EXPIRED", 100.0, self.started, self.refreshed)
        if self.strict:
            share = min(self.datapoints / AWS_TRAINING_DATAPOINTS,
                        (now - self.started) / AWS_TRAINING_SECONDS)
        else:
            share = self.refreshes / WARMUP_REFRESHES
        percentage = round(100.0 * min(1.0, max(0.0, share)), 1)
        status = "ACTIVE" if percentage >= 100.0 else "PENDING_BUILD"
        return TrainingStatus(status, percentage, self.started, self.refreshed)

    def active(self, now: float) -> bool:
        return self.training(now).status == "ACTIVE"

    # -- evaluation ----------------------------------------------------------------------

    def evaluate(self, things: Sequence[str], peers: Sequence[str],
                 values: Sequence[float], at: float) -> Outcome:
        """Take one value per thing (a thing at most once) and judge them.

        :param peers: each thing's peer key (:func:`peer_key`).
        :returns: which of ``things`` are abnormal, with verdicts, once the model is
            ACTIVE (before that nothing is abnormal and every value is learned).
        """
        slots = self.slots.slots(things)
        self._grow(len(self.slots))
        x = np.maximum(np.asarray(values, np.float64), 0.0)
        y = np.log1p(x).astype(np.float32)
        self.y[slots] = y
        self.seen[slots] = at
        self.peer[slots] = np.fromiter((self._peer_id(p) for p in peers), np.int32,
                                       count=len(peers))
        if self.started is None:
            self.started = at
        self.last_datapoint = at
        self.datapoints += len(slots)
        if self.refreshed is None or at - self.refreshed >= self.refresh \
                or len(slots) * 5 >= max(1, self.population(at)):
            self._refresh(at)
        groups = [self._group_of.get(int(p), FALLBACK) for p in self.peer[slots]]
        center = np.fromiter((self.center.get(g, 0.0) for g in groups), np.float32,
                             count=len(groups))
        scale = np.fromiter((self.scale.get(g, self.floor) for g in groups), np.float32,
                            count=len(groups))
        r = (y - center) / scale
        m, v, n = self.m[slots], self.v[slots], self.n[slots]
        warm = n < DEVICE_WARMUP
        tau = np.where(warm, 1.0, np.maximum(self.floor / scale, TAU_MIN))
        d = (r - m) / np.sqrt(v + tau * tau)
        cusum = np.where(warm, 0.0, np.maximum(0.0, self.cusum[slots] + d - KAPPA)
                         ).astype(np.float32)
        started_excess = (cusum > 0) & (self.cusum[slots] <= 0)
        self.excess_since[slots] = np.where(started_excess, at, self.excess_since[slots])
        usual = np.expm1(center + scale * m).astype(np.float64)
        self.excess[slots] = np.where(cusum > 0, self.excess[slots]
                                      + np.maximum(0.0, x - usual), 0.0)
        self.cusum[slots] = cusum
        live = self.active(at)
        abnormal = (d > self.level.z) | (cusum > self.level.h)
        if not live:
            abnormal = np.zeros(len(slots), np.bool_)
        outcome = Outcome(list(things), abnormal)
        moved = (d > self.level.z / 2) & live
        newly = moved & ~np.isfinite(self.flagged[slots])
        self.flagged[slots] = np.where(moved, np.where(newly, at, self.flagged[slots]),
                                       -math.inf)
        absorbed = self._fleet_events(slots, abnormal, groups, at, outcome)
        if absorbed.any():
            outcome.abnormal = abnormal = abnormal & ~absorbed
        bound = np.where(warm, self.level.z, LEARN_BOUND)
        learn = (~abnormal) & ((d < bound) | absorbed) \
            & ((cusum < self.level.h / 2) | absorbed)
        self._learn(slots[learn], r[learn], m[learn], v[learn], n[learn])
        if absorbed.any():
            self.cusum[slots[absorbed]] = 0.0
            self.excess[slots[absorbed]] = 0.0
        for i in map(int, np.flatnonzero(abnormal)):
            outcome.verdicts[things[i]] = self._verdict(
                things[i], groups[i], float(x[i]), float(d[i]), float(cusum[i]),
                float(center[i]), float(scale[i]), float(m[i]), float(v[i]), int(n[i]),
                int(slots[i]))
        return outcome

    def population(self, at: float) -> int:
        """Devices with a value within ``recent`` seconds."""
        return int(np.count_nonzero(self.seen >= at - self.recent))

    def _refresh(self, at: float) -> None:
        recent = np.flatnonzero(self.seen >= at - self.recent)
        ids = self.peer[recent]
        counts = np.bincount(ids, minlength=len(self.peer_keys))
        big = {i for i, c in enumerate(counts) if c >= MIN_PEERS}
        self._group_of = {i: (self.peer_keys[i] if i in big else FALLBACK)
                          for i in range(len(self.peer_keys))}
        members: dict[str, npt.NDArray[np.int64]] = {}
        for i in big:
            members[self.peer_keys[i]] = recent[ids == i]
        members[FALLBACK] = recent
        for group, where in members.items():
            ys = self.y[where]
            if len(ys) == 0:
                continue
            center = float(np.median(ys))
            mad = float(np.median(np.abs(ys - center))) * 1.4826
            target = max(mad, self.floor)
            old = self.scale.get(group)
            self.scale[group] = target if old is None else \
                max(self.floor, old + SCALE_SMOOTHING * (target - old))
            self.center[group] = center
            self.members[group] = len(ys)
        if len(recent) >= MIN_PEERS:
            self.refreshes += 1
        self.refreshed = at

    def _learn(self, slots: npt.NDArray[np.int64], r: F32, m: F32, v: F32, n: I32) -> None:
        if len(slots) == 0:
            return
        alpha = np.maximum(1.0 / (n + 1.0), MIN_ALPHA).astype(np.float32)
        delta = r - m
        new_m = m + alpha * delta
        self.m[slots] = new_m
        self.v[slots] = (1.0 - alpha) * (v + alpha * delta * delta)
        self.n[slots] = n + 1

    def _fleet_events(self, slots: npt.NDArray[np.int64], abnormal: Flags,
                      groups: list[str], at: float, outcome: Outcome) -> Flags:
        """Absorb the abnormal values of groups that move together (see the module
        docstring); returns which of ``slots`` were absorbed."""
        absorbed = np.zeros(len(slots), np.bool_)
        if not abnormal.any():
            self.fleet_moving.clear()
            return absorbed
        touched = {groups[i] for i in np.flatnonzero(abnormal)}
        recent = self.seen >= at - self.recent
        lately = self.flagged >= at - self.fleet_window
        for group in touched:
            if group == FALLBACK:
                in_group = recent
            else:
                ids = [i for i, g in self._group_of.items() if g == group]
                in_group = recent & np.isin(self.peer, ids)
            size = int(np.count_nonzero(in_group))
            moved = int(np.count_nonzero(in_group & lately))
            if size < MIN_PEERS or moved < MIN_PEERS or moved < FLEET_SHARE * size:
                self.fleet_moving.discard(group)
                continue
            mine = np.fromiter((g == group for g in groups), np.bool_, count=len(groups))
            absorbed |= mine & abnormal
            if group not in self.fleet_moving:
                self.fleet_moving.add(group)
                names = tuple(self.slots.names[int(s)]
                              for s in np.flatnonzero(in_group & lately)[:50])
                outcome.fleet_events.append(
                    FleetEvent(self.metric, group, size, moved, at, names))
        return absorbed

    def _verdict(self, thing: str, group: str, x: float, d: float, cusum: float,
                 center: float, scale: float, m: float, v: float, n: int, slot: int
                 ) -> Verdict:
        z = self.level.z
        if d > z:
            detector = "device-history" if n > 0 else "peer-group"
            score, threshold = d, z
        else:
            detector, score, threshold = "cumulative", cusum, self.level.h
        group_range = (_raw(center - z * scale), _raw(center + z * scale))
        tau = 1.0 if n < DEVICE_WARMUP else max(self.floor / scale, TAU_MIN)
        spread = z * math.sqrt(v + tau * tau)
        usual_range = (_raw(center + scale * (m - spread)), _raw(center + scale * (m + spread)))
        explanation: dict[str, Any] = {
            "detector": detector, "metric": self.metric, "observed": x,
            "score": round(score, 2), "threshold": threshold,
            "confidenceLevel": self.confidence,
            "peerGroup": group, "peers": self.members.get(group, 0),
            "groupNormalRange": list(group_range),
            "deviceUsualRange": list(usual_range) if n > 0 else None,
            "datapointsLearned": n,
        }
        excess = float(self.excess[slot])
        since = float(self.excess_since[slot])
        if excess > 0:
            explanation["accumulatedExcess"] = excess
            explanation["excessSince"] = since
        explanation["summary"] = _summary(self.metric, x, detector, group_range,
                                          usual_range if n > 0 else None, excess,
                                          self.last_datapoint or since, since)
        return Verdict(thing, detector, score, threshold, explanation)

    def accept(self, thing: str) -> bool:
        """A violation of ``thing`` was a false or benign positive: widen its usual range
        so its latest value scores 1 and clear its CUSUM. False for an unknown thing."""
        slot = self.slots.index.get(thing)
        if slot is None or slot >= len(self.y):
            return False
        group = self._group_of.get(int(self.peer[slot]), FALLBACK)
        r = (float(self.y[slot]) - self.center.get(group, 0.0)) / self.scale.get(group, self.floor)
        m = float(self.m[slot])
        tau = max(self.floor / self.scale.get(group, self.floor), TAU_MIN)
        needed = max(0.0, (r - m) ** 2 - tau * tau)
        self.v[slot] = max(float(self.v[slot]), needed)
        self.n[slot] = max(1, int(self.n[slot]))
        self.cusum[slot] = 0.0
        self.excess[slot] = 0.0
        self.flagged[slot] = -math.inf
        return True

    # -- persistence ---------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The model's state (with its things' names, so the slots may differ)."""
        used = len(self.slots)
        size = min(used, len(self.y))
        names = "\n".join(self.slots.names[:size]).encode()
        meta = np.array([self.started if self.started is not None else math.nan,
                         self.refreshed if self.refreshed is not None else math.nan,
                         self.last_datapoint if self.last_datapoint is not None
                         else math.nan, self.refreshes, self.datapoints], np.float64)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer, names=np.frombuffer(names, np.uint8), meta=meta,
            peer_keys=np.frombuffer("\n".join(self.peer_keys).encode(), np.uint8),
            y=self.y[:size], seen=self.seen[:size], peer=self.peer[:size], m=self.m[:size],
            v=self.v[:size], n=self.n[:size], cusum=self.cusum[:size],
            excess=self.excess[:size], excess_since=self.excess_since[:size],
            groups=np.frombuffer("\n".join(
                f"{g}\t{self.center[g]}\t{self.scale[g]}\t{self.members.get(g, 0)}"
                for g in self.center).encode(), np.uint8))
        return buffer.getvalue()

    def load_bytes(self, data: bytes) -> None:
        """Restore :meth:`to_bytes` into this (fresh) model.

        :raises ValueError: not a model's state.
        """
        try:
            saved = np.load(io.BytesIO(data), allow_pickle=False)
            names = bytes(saved["names"]).decode().split("\n") if saved["names"].size else []
            peer_keys = bytes(saved["peer_keys"]).decode().split("\n") \
                if saved["peer_keys"].size else []
            meta = saved["meta"]
            arrays = {k: saved[k] for k in ("y", "seen", "peer", "m", "v", "n", "cusum",
                                            "excess", "excess_since")}
            group_lines = bytes(saved["groups"]).decode().split("\n") \
                if saved["groups"].size else []
        except (OSError, KeyError, ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"not a model state: {exc}") from None
        if any(len(a) != len(names) for a in arrays.values()):
            raise ValueError("not a model state: arrays of different lengths")
        for key in peer_keys:
            self._peer_id(key)
        slots = self.slots.slots(names)
        self._grow(len(self.slots))
        for key, array in arrays.items():
            getattr(self, key)[slots] = array
        for line in group_lines:
            group, center, scale, count = line.split("\t")
            self.center[group], self.scale[group] = float(center), float(scale)
            self.members[group] = int(count)
        started, refreshed, last, refreshes, datapoints = (float(x) for x in meta)
        self.started = None if math.isnan(started) else started
        self.refreshed = None if math.isnan(refreshed) else refreshed
        self.last_datapoint = None if math.isnan(last) else last
        self.refreshes, self.datapoints = int(refreshes), int(datapoints)
        big = {self._peer_ids[k] for k, c in self.members.items()
               if k in self._peer_ids and k != FALLBACK}
        self._group_of = {i: (self.peer_keys[i] if i in big else FALLBACK)
                          for i in range(len(self.peer_keys))}


class NoveltyModel:
    """The model of one set-valued ML behavior (Bastion's: AWS has no ML on sets).

    Per device the elements it reported (at most ``MAX_SET``) and a decaying count of
    novel ones; per peer group how many devices hold each element. See the module
    docstring.
    """

    def __init__(self, metric: str, confidence: str) -> None:
        if confidence not in CONFIDENCE:
            raise ValueError(f"unknown confidence level {confidence!r}")
        self.metric = metric
        self.confidence = confidence
        self.level = CONFIDENCE[confidence]
        self.known: dict[str, set[str]] = {}
        self.reports: Counter[str] = Counter()
        self.score: dict[str, float] = {}
        self.recent_novel: dict[str, list[str]] = {}
        self.holders: dict[str, Counter[str]] = {}
        self.devices: Counter[str] = Counter()
        self.group_of: dict[str, str] = {}
        self.started: float | None = None
        self.last_datapoint: float | None = None
        self.datapoints = 0

    def training(self, now: float) -> TrainingStatus:
        if self.started is None:
            return TrainingStatus("PENDING_BUILD", 0.0, None, None)
        if self.last_datapoint is not None and \
                now - self.last_datapoint > AWS_TRAINING_SECONDS:
            return TrainingStatus("EXPIRED", 100.0, self.started, self.last_datapoint)
        share = min(1.0, len(self.known) / MIN_PEERS,
                    min(self.reports.values(), default=0) / NOVELTY_WARMUP)
        percentage = round(100.0 * share, 1)
        return TrainingStatus("ACTIVE" if share >= 1.0 else "PENDING_BUILD", percentage,
                              self.started, self.last_datapoint)

    def evaluate(self, thing: str, peer: str, elements: Iterable[str], at: float
                 ) -> Verdict | None:
        """Take one report of ``thing``'s set; the verdict when it is abnormal."""
        if self.started is None:
            self.started = at
        self.last_datapoint = at
        self.datapoints += 1
        group = peer
        old_group = self.group_of.get(thing)
        known = self.known.setdefault(thing, set())
        if old_group is None:
            self.group_of[thing] = group
            self.devices[group] += 1
        elif old_group != group:
            self._leave(thing, old_group, known)
            self.group_of[thing] = group
            self.devices[group] += 1
            for element in known:
                self.holders.setdefault(group, Counter())[element] += 1
        holders = self.holders.setdefault(group, Counter())
        size = max(1, self.devices[group])
        novel = []
        for element in sorted(set(elements)):
            if element in known:
                continue
            if self.reports[thing] >= NOVELTY_WARMUP and holders[element] < max(
                    1.0, RARE_SHARE * size):
                novel.append(element)
            if len(known) < MAX_SET:
                known.add(element)
                holders[element] += 1
        self.reports[thing] += 1
        score = self.score.get(thing, 0.0) * NOVELTY_DECAY + len(novel)
        self.score[thing] = score
        if novel:
            self.recent_novel[thing] = (self.recent_novel.get(thing, []) + novel)[-20:]
        if score < self.level.novelty:
            return None
        explanation: dict[str, Any] = {
            "detector": "novelty", "metric": self.metric, "score": round(score, 2),
            "threshold": self.level.novelty, "confidenceLevel": self.confidence,
            "peerGroup": group, "peers": self.devices[group],
            "novelElements": self.recent_novel.get(thing, [])[-10:],
            "knownElements": len(known),
            "summary": (f"{self.metric}: {len(self.recent_novel.get(thing, []))} elements "
                        f"new to this device and rare in its peer group (decayed count "
                        f"{score:.1f} >= {self.level.novelty:g})"),
        }
        return Verdict(thing, "novelty", score, self.level.novelty, explanation)

    def _leave(self, thing: str, group: str, known: set[str]) -> None:
        self.devices[group] -= 1
        holders = self.holders.get(group)
        if holders is not None:
            for element in known:
                holders[element] -= 1

    def accept(self, thing: str) -> bool:
        if thing not in self.known:
            return False
        self.score[thing] = 0.0
        self.recent_novel.pop(thing, None)
        return True

    def nbytes(self) -> int:
        return sum(len(s) for s in self.known.values()) * 64

    def to_bytes(self) -> bytes:
        import json
        return json.dumps({
            "known": {t: sorted(s) for t, s in self.known.items()},
            "reports": dict(self.reports), "score": self.score,
            "group_of": self.group_of, "started": self.started,
            "last": self.last_datapoint, "datapoints": self.datapoints}).encode()

    def load_bytes(self, data: bytes) -> None:
        """:raises ValueError: not a model's state."""
        import json
        try:
            saved: Mapping[str, Any] = json.loads(data)
            known = {str(t): set(map(str, s)) for t, s in saved["known"].items()}
            group_of = {str(t): str(g) for t, g in saved["group_of"].items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a model state: {exc}") from None
        self.known, self.group_of = known, group_of
        self.reports = Counter({str(k): int(v) for k, v in saved["reports"].items()})
        self.score = {str(k): float(v) for k, v in saved["score"].items()}
        self.started, self.last_datapoint = saved["started"], saved["last"]
        self.datapoints = int(saved["datapoints"])
        self.devices = Counter(group_of.values())
        self.holders = {}
        for thing, group in group_of.items():
            holders = self.holders.setdefault(group, Counter())
            for element in known.get(thing, ()):
                holders[element] += 1


def _raw(y: float) -> float:
    """A log1p value back in the metric's units (never negative)."""
    return max(0.0, math.expm1(min(y, 700.0)))


def _amount(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return f"{value:.3g}"


def _summary(metric: str, observed: float, detector: str,
             group_range: tuple[float, float], usual_range: tuple[float, float] | None,
             excess: float, now: float, since: float) -> str:
    text = (f"{metric} {_amount(observed)} (peer group normal up to "
            f"{_amount(group_range[1])}")
    if usual_range is not None:
        text += f", this device usually {_amount(usual_range[0])}-{_amount(usual_range[1])}"
    text += f"); detector: {detector}"
    if excess > 0 and now > since:
        text += f"; accumulated excess +{_amount(excess)} over {_duration(now - since)}"
    return text


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"
