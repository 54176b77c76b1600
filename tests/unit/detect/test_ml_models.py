"""ML Detect's models (:mod:`bastion.defender.detect._ml`): peer-group statistics, the
device's own standing, CUSUM, novelty, fleet events, feedback and persistence — driven
with synthetic fleets, and held by Hypothesis against zero-MAD metrics, missing data
and poisoning."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.defender.detect._ml import (
    CONFIDENCE,
    FLOOR,
    DeviceSlots,
    NoveltyModel,
    NumericModel,
    peer_key,
)

INTERVAL = 10.0
SENSOR = peer_key("sensor", "1.0")
CAMERA = peer_key("camera", "2.1")


def _model(level: str = "MEDIUM", metric: str = "aws:all-bytes-out",
           slots: DeviceSlots | None = None) -> NumericModel:
    return NumericModel(metric, level, slots or DeviceSlots(), refresh=INTERVAL / 2,
                        recent=2 * INTERVAL, fleet_window=3 * INTERVAL)


class Fleet:
    """``n`` devices in two classes whose values follow a rhythm with jitter."""

    def __init__(self, n: int = 100, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        self.things = [f"dev-{i}" for i in range(n)]
        self.peers = [CAMERA if i % 2 else SENSOR for i in range(n)]
        self.base = np.array([40_000.0 if i % 2 else 1_500.0 for i in range(n)]) \
            * self.rng.lognormal(0.0, 0.25, n)

    def values(self, step: int) -> np.ndarray:
        rhythm = 1.0 + 0.6 * math.sin(step / 30.0 * 2 * math.pi)
        return self.base * rhythm * self.rng.lognormal(0.0, 0.1, len(self.things))


def _run(model: NumericModel, fleet: Fleet, steps: int, start: int = 0,
         change: dict[int, float] | None = None) -> list[set[str]]:
    """Evaluate ``steps`` intervals; ``change`` multiplies some devices' values."""
    abnormal = []
    for step in range(start, start + steps):
        values = fleet.values(step)
        for i, factor in (change or {}).items():
            values[i] *= factor
        outcome = model.evaluate(fleet.things, fleet.peers, values.tolist(),
                                 step * INTERVAL)
        abnormal.append({t for t, a in zip(outcome.things, outcome.abnormal) if a})
    return abnormal


def test_a_model_is_pending_until_three_refreshes_then_active() -> None:
    model, fleet = _model(), Fleet()
    assert model.training(0).status == "PENDING_BUILD"
    _run(model, fleet, 2)
    status = model.training(20)
    assert status.status == "PENDING_BUILD"
    assert 0 < status.collection_percentage < 100
    _run(model, fleet, 1, start=2)
    assert model.training(30).status == "ACTIVE"
    assert model.training(30).collection_percentage == 100.0


def test_aws_training_rule_waits_for_14_days_and_25000_datapoints() -> None:
    model = NumericModel("aws:num-messages-sent", "LOW", DeviceSlots(), refresh=5,
                         recent=20, fleet_window=30, strict=True)
    fleet = Fleet()
    flagged = _run(model, fleet, 10, change={3: 1000.0})
    assert not any(flagged), "a strict model flags nothing while it trains"
    status = model.training(100)
    assert status.status == "PENDING_BUILD" and status.collection_percentage < 1


def test_a_normal_fleet_with_rhythm_raises_nothing() -> None:
    model, fleet = _model("LOW"), Fleet(200)
    flagged = _run(model, fleet, 120)
    alarms = sum(len(f) for f in flagged)
    assert alarms <= 0.01 * 200 * 120, alarms


def test_a_flood_is_flagged_in_the_interval_it_starts_with_an_explanation() -> None:
    model, fleet = _model(), Fleet()
    _run(model, fleet, 10)
    values = fleet.values(10)
    values[3] *= 30
    outcome = model.evaluate(fleet.things, fleet.peers, values.tolist(), 100.0)
    assert {t for t, a in zip(outcome.things, outcome.abnormal) if a} == {"dev-3"}
    explanation = outcome.verdicts["dev-3"].explanation
    assert explanation["detector"] == "device-history"
    assert explanation["peerGroup"] == CAMERA
    low, high = explanation["groupNormalRange"]
    assert low < fleet.base[3] < high < explanation["observed"]
    assert explanation["deviceUsualRange"][1] < explanation["observed"]
    assert explanation["score"] > CONFIDENCE["MEDIUM"].z
    assert "aws:all-bytes-out" in explanation["summary"]


def test_a_slow_rise_under_any_single_interval_threshold_is_caught_by_cusum() -> None:
    model, fleet = _model(), Fleet()
    _run(model, fleet, 10)
    caught_at = None
    for k in range(60):
        values = fleet.values(10 + k)
        values[5] *= 1.06 ** k
        outcome = model.evaluate(fleet.things, fleet.peers, values.tolist(),
                                 (10 + k) * INTERVAL)
        verdict = outcome.verdicts.get("dev-5")
        if verdict is not None:
            caught_at = k
            break
    assert caught_at is not None, "the slow rise was never caught"
    assert verdict is not None
    assert verdict.detector in ("cumulative", "device-history")
    # no single step was large: 6 % a step
    assert 1.06 ** caught_at < 12
    if verdict.detector == "cumulative":
        assert verdict.explanation["accumulatedExcess"] > 0
        assert "accumulated excess" in verdict.explanation["summary"]


def test_poisoning_by_small_steps_does_not_teach_a_new_normal() -> None:
    """An attacker who raises its value a little each interval stays flagged instead of
    dragging its usual range along."""
    model, fleet = _model(), Fleet()
    _run(model, fleet, 10)
    flagged = 0
    for k in range(80):
        values = fleet.values(10 + k)
        values[7] *= min(1.1 ** k, 200.0)
        outcome = model.evaluate(fleet.things, fleet.peers, values.tolist(),
                                 (10 + k) * INTERVAL)
        flagged += "dev-7" in outcome.verdicts
    assert flagged >= 25, flagged
    slot = model.slots.index["dev-7"]
    assert model.m[slot] < 3.0, "the device learned the attack as its usual standing"


def test_a_whole_group_shifting_moves_the_baseline_not_a_violation_per_device() -> None:
    model, fleet = _model(), Fleet()
    _run(model, fleet, 10)
    everyone = {i: 8.0 for i in range(len(fleet.things))}
    flagged = _run(model, fleet, 5, start=10, change=everyone)
    assert not any(flagged)


def test_a_share_of_a_group_moving_together_is_one_fleet_event() -> None:
    model, fleet = _model(), Fleet(200)
    _run(model, fleet, 10)
    rollout = {i: 10.0 for i in range(1, 200, 2)[:40]}  # 40 of 100 cameras
    values = fleet.values(10)
    for i, factor in rollout.items():
        values[i] *= factor
    outcome = model.evaluate(fleet.things, fleet.peers, values.tolist(), 100.0)
    assert not outcome.abnormal.any()
    assert len(outcome.fleet_events) == 1
    event = outcome.fleet_events[0]
    assert event.group == CAMERA and event.abnormal >= 20 and event.devices == 100
    # the moved devices learned their new level: the next interval is quiet, and no
    # second event is raised for the same move
    flagged = _run(model, fleet, 3, start=11, change=rollout)
    assert sum(len(f) for f in flagged) <= 2


def test_a_device_that_goes_silent_is_missing_data_not_zero() -> None:
    model, fleet = _model("LOW"), Fleet()
    _run(model, fleet, 10)
    quiet = fleet.things[:50] + fleet.things[51:]
    for step in range(10, 20):  # dev-50 sends nothing for ten intervals
        values = fleet.values(step)
        keep = [i for i in range(len(fleet.things)) if i != 50]
        model.evaluate(quiet, [fleet.peers[i] for i in keep], values[keep].tolist(),
                       step * INTERVAL)
    outcome = model.evaluate(fleet.things, fleet.peers, fleet.values(20).tolist(), 200.0)
    assert "dev-50" not in outcome.verdicts


def test_feedback_on_a_false_positive_widens_the_devices_range() -> None:
    model, fleet = _model(), Fleet()
    _run(model, fleet, 10)
    values = fleet.values(10)
    values[9] *= 40
    outcome = model.evaluate(fleet.things, fleet.peers, values.tolist(), 100.0)
    assert "dev-9" in outcome.verdicts
    assert model.accept("dev-9")
    assert not model.accept("nobody")
    values = fleet.values(11)
    values[9] *= 40
    outcome = model.evaluate(fleet.things, fleet.peers, values.tolist(), 110.0)
    assert "dev-9" not in outcome.verdicts


def test_persisted_state_restores_the_same_judgement() -> None:
    model, fleet = _model(), Fleet()
    _run(model, fleet, 12)
    restored = _model(slots=DeviceSlots())
    restored.load_bytes(model.to_bytes())
    assert restored.training(120) == model.training(120)
    values = fleet.values(12)
    values[4] *= 25
    a = model.evaluate(fleet.things, fleet.peers, values.tolist(), 120.0)
    b = restored.evaluate(fleet.things, fleet.peers, values.tolist(), 120.0)
    assert set(a.verdicts) == set(b.verdicts) == {"dev-4"}
    assert a.verdicts["dev-4"].score == pytest.approx(b.verdicts["dev-4"].score, rel=1e-4)


def test_a_state_that_is_not_a_model_is_refused() -> None:
    with pytest.raises(ValueError, match="not a model state"):
        _model().load_bytes(b"not numpy")


# -- Hypothesis: zero-MAD metrics, arbitrary inputs -----------------------------------

counts = st.lists(st.integers(min_value=0, max_value=3), min_size=20, max_size=60)


@settings(max_examples=60, deadline=None)
@given(counts)
def test_usually_zero_metrics_keep_a_floor_and_ignore_single_events(background: list[int]
                                                                     ) -> None:
    """Disconnects: mostly 0, sometimes 1-3. The scale never falls under the floor, so a
    device with a handful of disconnects is not an alarm; 200 is."""
    model = _model(metric="aws:num-disconnects")
    things = [f"d{i}" for i in range(len(background))]
    peers = [SENSOR] * len(things)
    zeros = [0.0] * len(things)
    for step in range(4):
        model.evaluate(things, peers, zeros, step * INTERVAL)
    outcome = model.evaluate(things, peers, [float(c) for c in background], 40.0)
    assert all(s >= FLOOR for s in model.scale.values())
    assert not outcome.abnormal.any()
    values = [0.0] * len(things)
    values[0] = 200.0
    outcome = model.evaluate(things, peers, values, 50.0)
    assert "d0" in outcome.verdicts


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e12, allow_nan=False), min_size=1,
                max_size=40),
       st.sampled_from(["LOW", "MEDIUM", "HIGH"]))
def test_any_values_give_finite_scores_and_order_does_not_matter(values: list[float],
                                                                 level: str) -> None:
    things = [f"t{i}" for i in range(len(values))]
    peers = [SENSOR if i % 3 else CAMERA for i in range(len(values))]
    forward, backward = _model(level), _model(level)
    for step in range(5):
        a = forward.evaluate(things, peers, values, step * INTERVAL)
        b = backward.evaluate(things[::-1], peers[::-1], values[::-1], step * INTERVAL)
        assert set(a.verdicts) == set(b.verdicts)
        for verdict in a.verdicts.values():
            assert math.isfinite(verdict.score)
    assert np.isfinite(forward.m[:len(values)]).all()
    assert np.isfinite(forward.v[:len(values)]).all()


def test_one_authorization_failure_where_there_never_are_any_is_news() -> None:
    model = _model(metric="aws:num-authorization-failures")
    things = [f"d{i}" for i in range(30)]
    peers = [SENSOR] * len(things)
    for step in range(6):
        model.evaluate(things, peers, [0.0] * len(things), step * INTERVAL)
    values = [0.0] * len(things)
    values[4] = 1.0
    outcome = model.evaluate(things, peers, values, 60.0)
    assert set(outcome.verdicts) == {"d4"}
    assert model.floor < FLOOR


# -- novelty on set metrics -----------------------------------------------------------


def test_novelty_catches_a_slow_scan_but_not_common_or_known_ports() -> None:
    model = NoveltyModel("aws:listening-tcp-ports", "MEDIUM")
    things = [f"d{i}" for i in range(20)]
    for step in range(3):
        for thing in things:
            assert model.evaluate(thing, SENSOR, ["22", "443"], step * INTERVAL) is None
    assert model.training(30).status == "ACTIVE"
    caught = None
    ports = ["22", "443"]
    for step in range(3, 40):
        if step % 2 == 0:
            ports = ports + [str(10_000 + step)]  # one new port every other interval
        for thing in things:
            verdict = model.evaluate(thing, SENSOR, ports if thing == "d0" else ["22", "443"],
                                     step * INTERVAL)
            if verdict is not None:
                assert verdict.thing_name == "d0"
                caught = caught or step
    assert caught is not None
    assert model.accept("d0")


def test_novelty_state_round_trips() -> None:
    model = NoveltyModel("aws:destination-ip-addresses", "LOW")
    for step in range(3):
        model.evaluate("a", SENSOR, ["10.0.0.1"], step)
    restored = NoveltyModel("aws:destination-ip-addresses", "LOW")
    restored.load_bytes(model.to_bytes())
    assert restored.known == model.known and restored.reports == model.reports
    with pytest.raises(ValueError):
        restored.load_bytes(b"{}")


def test_the_alert_payload_carries_the_explanation_and_confidence() -> None:
    from bastion.defender.detect import (
        EXPLANATION_MEMBER,
        ViolationEvent,
        ViolationEventType,
        parse_behavior,
    )
    from bastion.defender.mitigation import violation_message

    behavior = parse_behavior({"name": "out", "metric": "aws:all-bytes-out", "criteria": {
        "mlDetectionConfig": {"confidenceLevel": "HIGH"}}})
    event = ViolationEvent("v-1", "cam-1", "learned", behavior, ViolationEventType.IN_ALARM,
                           None, 1.0, details={"detector": "cumulative", "summary": "why"})
    message = violation_message(event)
    assert message["violationEventAdditionalInfo"] == {"confidenceLevel": "HIGH"}
    assert message[EXPLANATION_MEMBER] == {"detector": "cumulative", "summary": "why"}
