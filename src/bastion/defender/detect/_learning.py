"""The ML behaviors of a detect service: one model per (profile, behavior), their
training summaries, feedback and persistence (the models themselves: :mod:`._ml`).

A model is keyed by profile and behavior name and remembers the metric and confidence
level it was built for: a behavior that changes either starts a new model. Models are
written to the store (``detect_models``) every ``save_every`` seconds and when the
service stops, and read back at start, so a restart keeps what was learned.

Not thread-safe: the detect service calls it under its lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from bastion.store import DetectModelRow, Store

from ._ml import (
    DeviceSlots,
    FleetEvent,
    NoveltyModel,
    NumericModel,
    Outcome,
    TrainingStatus,
    Verdict,
)
from ._model import ML_SET_METRICS, Behavior, Datapoint, SecurityProfile

log = logging.getLogger("bastion.detect")

PeerOf = Callable[[str], str]
"""thing name → its peer key (:func:`~._ml.peer_key`)."""


@dataclass(frozen=True, slots=True)
class TrainingSummary:
    security_profile_name: str
    behavior_name: str
    status: TrainingStatus


class Learning:
    """See the module docstring.

    :param interval: the detect interval: group statistics are refreshed at most twice
        per interval, a device's value counts in them for two intervals, and abnormal
        devices within three intervals make a fleet event.
    :param strict: AWS's training rule before a model is ACTIVE (``ml_training="aws"``).
    """

    def __init__(self, *, interval: float, strict: bool = False,
                 store: Store | None = None, save_every: float = 300.0) -> None:
        self.interval = interval
        self.strict = strict
        self.slots = DeviceSlots()
        self.numeric: dict[tuple[str, str], NumericModel] = {}
        self.novelty: dict[tuple[str, str], NoveltyModel] = {}
        self.fleet_events: list[FleetEvent] = []
        self._store = store
        self.save_every = save_every
        self._saved_at: float | None = None

    def _numeric(self, profile: str, behavior: Behavior) -> NumericModel:
        model = self.numeric.get((profile, behavior.name))
        if not _fits(model, behavior):
            model = self.numeric[(profile, behavior.name)] = NumericModel(
                behavior.metric, _confidence(behavior), self.slots,
                refresh=self.interval / 2, recent=2 * self.interval,
                fleet_window=3 * self.interval, strict=self.strict)
        assert model is not None
        return model

    def _novelty(self, profile: str, behavior: Behavior) -> NoveltyModel:
        model = self.novelty.get((profile, behavior.name))
        if not _fits(model, behavior):
            model = self.novelty[(profile, behavior.name)] = NoveltyModel(
                behavior.metric, _confidence(behavior))
        assert model is not None
        return model

    def evaluate(self, profile: SecurityProfile, behavior: Behavior,
                 datapoints: list[Datapoint], peer_of: PeerOf, at: float) -> Outcome:
        """Judge one batch's datapoints of an ML behavior (the last of each thing)."""
        latest = {dp.thing_name: dp for dp in datapoints}
        things = list(latest)
        peers = [peer_of(t) for t in things]
        if behavior.metric in ML_SET_METRICS:
            novelty = self._novelty(profile.name, behavior)
            verdicts: dict[str, Verdict] = {}
            flags = []
            for thing, peer in zip(things, peers, strict=True):
                value = latest[thing].value
                elements = [str(e) for e in (value.ports or value.cidrs or value.strings
                                             or value.numbers or ())]
                verdict = novelty.evaluate(thing, peer, elements, at)
                live = novelty.training(at).status == "ACTIVE"
                flags.append(verdict is not None and live)
                if verdict is not None and live:
                    verdicts[thing] = verdict
            return Outcome(things, np.array(flags, np.bool_), verdicts)
        values = [latest[t].value.scalar() or 0.0 for t in things]
        outcome = self._numeric(profile.name, behavior).evaluate(things, peers, values, at)
        for event in outcome.fleet_events:
            log.warning("detect: fleet event on profile %s behavior %s: %d of %d devices "
                        "of peer group %s moved together (%s); absorbed, no violations",
                        profile.name, behavior.name, event.abnormal, event.devices,
                        event.group, event.metric)
        del self.fleet_events[:-1000]
        return outcome

    def accept(self, profile: str, behavior: str, thing: str) -> bool:
        """Feedback: a violation was a false or benign positive."""
        model: NumericModel | NoveltyModel | None = self.numeric.get((profile, behavior)) \
            or self.novelty.get((profile, behavior))
        return model is not None and model.accept(thing)

    def training_summaries(self, profiles: Iterable[SecurityProfile], now: float
                           ) -> list[TrainingSummary]:
        """One summary per ML behavior of ``profiles``, in profile then behavior order."""
        out = []
        for profile in profiles:
            for behavior in profile.behaviors:
                if behavior.criteria.ml_confidence is None:
                    continue
                key = (profile.name, behavior.name)
                model: NumericModel | NoveltyModel | None = self.numeric.get(key) \
                    or self.novelty.get(key)
                status = TrainingStatus("PENDING_BUILD", 0.0, None, None) \
                    if model is None or model.metric != behavior.metric \
                    else model.training(now)
                out.append(TrainingSummary(profile.name, behavior.name, status))
        return out

    def forget(self, profiles: dict[str, SecurityProfile]) -> None:
        """Drop the models of behaviors that no longer exist (or are no longer ML)."""
        wanted = {(p.name, b.name) for p in profiles.values() for b in p.behaviors
                  if b.criteria.ml_confidence is not None}
        for models in (self.numeric, self.novelty):
            for key in [k for k in models if k not in wanted]:
                del models[key]
        if self._store is not None:
            with self._store.transaction() as uow:
                for row in uow.detect.models():
                    if (row.security_profile_name, row.behavior_name) not in wanted:
                        uow.detect.delete_models(row.security_profile_name,
                                                 keep=[b for p, b in wanted
                                                       if p == row.security_profile_name])

    def nbytes(self) -> int:
        return sum(m.nbytes() for m in self.numeric.values()) + \
            sum(m.nbytes() for m in self.novelty.values())

    # -- persistence ---------------------------------------------------------------------

    def snapshot(self, now: float, *, force: bool = False) -> list[DetectModelRow]:
        """The rows to save when a save is due (every ``save_every``; always with
        ``force``); empty otherwise or without a store."""
        if self._store is None:
            return []
        if not force and self._saved_at is not None and now - self._saved_at < self.save_every:
            return []
        self._saved_at = now
        at = datetime.fromtimestamp(now, UTC)
        rows = [DetectModelRow(p, b, m.metric, m.confidence, m.to_bytes(), at)
                for (p, b), m in self.numeric.items()]
        rows += [DetectModelRow(p, b, m.metric, m.confidence, m.to_bytes(), at)
                 for (p, b), m in self.novelty.items()]
        return rows

    def write(self, rows: list[DetectModelRow]) -> None:
        """Save ``rows`` (from :meth:`snapshot`), outside the service's lock."""
        if self._store is None or not rows:
            return
        with self._store.transaction() as uow:
            for row in rows:
                uow.detect.save_model(row)

    def load(self, profiles: dict[str, SecurityProfile]) -> None:
        """Read the stored models of the ML behaviors that still exist unchanged."""
        if self._store is None:
            return
        with self._store.transaction(readonly=True) as uow:
            rows = uow.detect.models()
        for row in rows:
            profile = profiles.get(row.security_profile_name)
            behavior = next((b for b in profile.behaviors if b.name == row.behavior_name),
                            None) if profile is not None else None
            if behavior is None or behavior.metric != row.metric \
                    or behavior.criteria.ml_confidence != row.confidence:
                continue
            try:
                if behavior.metric in ML_SET_METRICS:
                    self._novelty(row.security_profile_name, behavior).load_bytes(row.state)
                else:
                    self._numeric(row.security_profile_name, behavior).load_bytes(row.state)
            except ValueError as exc:
                log.warning("detect: the stored model of %s/%s is unreadable (%s); it "
                            "starts again", row.security_profile_name, row.behavior_name,
                            exc)


def _confidence(behavior: Behavior) -> str:
    return behavior.criteria.ml_confidence or "MEDIUM"


def _fits(model: NumericModel | NoveltyModel | None, behavior: Behavior) -> bool:
    """Whether ``model`` was built for ``behavior``'s metric and confidence level."""
    return model is not None and model.metric == behavior.metric \
        and model.confidence == _confidence(behavior)
