"""The score of a labelled Detect simulation (``detect_sim.py``): what the violation
events say against what the simulator did.

* An attack is **detected** when an ``in-alarm`` event for its device starts inside the
  attack's window or within :data:`GRACE_INTERVALS` intervals after it; its **time to
  detect** is from the attack's start to the first such event, in intervals.
* A **benign device-interval** is an interval of a device outside its attacks (and their
  grace); it is a **false positive** when an ``in-alarm`` event for the device starts in
  it. Intervals are counted from the run's start, ``interval`` seconds each.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

GRACE_INTERVALS = 2
"""An alarm starting this many intervals after an attack still detects it."""


class Attack(Protocol):
    kind: str
    thing: str
    start: float
    """Seconds from the run's start."""
    end: float


def violation_events(iot: Any, start: float, end: float, profiles: list[str]
                     ) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"startTime": start, "endTime": end, "maxResults": 250}
        if token:
            kwargs["nextToken"] = token
        page = iot.list_violation_events(**kwargs)
        events += [e for e in page.get("violationEvents", [])
                   if e.get("securityProfileName") in profiles]
        token = page.get("nextToken")
        if not token:
            return events


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def score(events: list[dict[str, Any]], attacks: list[Attack], things: list[str], *,
          kinds: tuple[str, ...], t0_epoch: float, duration: float, interval: float
          ) -> dict[str, Any]:
    """Recall and time to detect per attack type (in ``kinds`` order); false-positive rate
    over the benign device-intervals of ``things`` (see the module docstring).

    :param events: ``ListViolationEvents``' events, as boto3 returns them.
    :param t0_epoch: the run's start (epoch seconds); attack times are relative to it.
    """
    alarms: dict[str, list[tuple[float, str]]] = {}
    for event in events:
        if event.get("violationEventType") != "in-alarm":
            continue
        when = event["violationEventTime"]
        at = (when.timestamp() if hasattr(when, "timestamp") else float(when)) - t0_epoch
        alarms.setdefault(event["thingName"], []).append((at, event["behavior"]["name"]))
    grace = GRACE_INTERVALS * interval
    per_attack = []
    for attack in attacks:
        hits = sorted((at, behavior) for at, behavior in alarms.get(attack.thing, [])
                      if attack.start <= at <= attack.end + grace)
        per_attack.append({
            "kind": attack.kind, "thing": attack.thing, "start": attack.start,
            "end": attack.end, "detected": bool(hits),
            "intervals_to_detect": (hits[0][0] - attack.start) / interval if hits else None,
            "behaviors": sorted({b for _, b in hits})})
    by_type: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        mine = [a for a in per_attack if a["kind"] == kind]
        if not mine:
            continue
        ttd = [a["intervals_to_detect"] for a in mine if a["detected"]]
        by_type[kind] = {"attacks": len(mine), "detected": len(ttd),
                         "recall": len(ttd) / len(mine),
                         "ttd_p50": _quantile(ttd, 0.5), "ttd_p90": _quantile(ttd, 0.9),
                         "behaviors": sorted({b for a in mine for b in a["behaviors"]})}
    benign = false_positives = 0
    fp_behaviors: dict[str, int] = {}
    intervals = math.ceil(duration / interval)
    for thing in things:
        windows = [(a.start, a.end + grace) for a in attacks if a.thing == thing]
        for k in range(intervals):
            lo, hi = k * interval, (k + 1) * interval
            if any(lo < end and start < hi for start, end in windows):
                continue
            benign += 1
            raised = [b for at, b in alarms.get(thing, []) if lo <= at < hi]
            if raised:
                false_positives += 1
                for b in raised:
                    fp_behaviors[b] = fp_behaviors.get(b, 0) + 1
    detected = [a for a in per_attack if a["detected"]]
    all_ttd = [a["intervals_to_detect"] for a in detected]
    return {
        "recall": len(detected) / len(per_attack) if per_attack else None,
        "false_positive_rate": false_positives / benign if benign else None,
        "false_positive_intervals": false_positives, "benign_device_intervals": benign,
        "false_positives_by_behavior": dict(sorted(fp_behaviors.items())),
        "ttd_p50": _quantile(all_ttd, 0.5), "ttd_p90": _quantile(all_ttd, 0.9),
        "by_type": by_type, "attacks": per_attack,
    }


def print_score(profile: str, result: dict[str, Any]) -> None:
    def fmt(value: float | None, digits: int = 1) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    print(f"\nDetect score, profile {profile}: {result['devices']} devices, "
          f"{result['duration']:g} s, interval {result['interval']:g} s "
          f"(~{result['intervals']} intervals), warm-up {result['warmup']:g} s")
    print(f"{'attack':<19}{'detected':>9}{'recall':>8}{'TTD p50':>9}{'TTD p90':>9}  alarms by")
    for kind, row in result["by_type"].items():
        print(f"{kind:<19}{row['detected']:>5}/{row['attacks']:<3}{row['recall']:>8.2f}"
              f"{fmt(row['ttd_p50']):>9}{fmt(row['ttd_p90']):>9}  "
              f"{', '.join(row['behaviors']) or '-'}")
    print(f"{'all attacks':<19}{sum(r['detected'] for r in result['by_type'].values()):>5}/"
          f"{sum(r['attacks'] for r in result['by_type'].values()):<3}"
          f"{fmt(result['recall'], 2):>8}{fmt(result['ttd_p50']):>9}{fmt(result['ttd_p90']):>9}")
    print(f"false positives: {result['false_positive_intervals']} of "
          f"{result['benign_device_intervals']} benign device-intervals "
          f"(rate {fmt(result['false_positive_rate'], 3)})"
          + (f"; by behavior: {result['false_positives_by_behavior']}"
             if result["false_positives_by_behavior"] else ""))
    gen = result["generator"]
    print(f"generator: {gen['messages']:,} messages, {gen['reports']:,} reports "
          f"({gen['accepted']:,} accepted, {gen['rejected']} rejected), lag p50 "
          f"{fmt(gen['lag_p50_ms'])} ms, p99 {fmt(gen['lag_p99_ms'])} ms, max "
          f"{fmt(gen['lag_max_ms'])} ms")
