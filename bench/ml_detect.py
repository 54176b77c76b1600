"""ML Detect: evaluation time per interval and model memory for a large fleet.

Two measurements, both on synthetic values (four device classes, lognormal jitter):

1. **The models alone**: ``--things`` devices × the 13 numeric ML metrics, one
   :class:`~bastion.defender.detect.NumericModel` per metric sharing one device table.
   Prints the time of one interval's evaluation (all 13 models, after warm-up) and the
   bytes of model state (the arrays, plus the shared name table measured with
   ``tracemalloc``). Issue 15's target: ≤ 2 s per interval, ≤ 150 MB.
2. **Through the detect service** (``DetectService.ingest``, in memory): one profile of
   13 ML behaviors against one of 13 static behaviors on the same datapoints, the static
   one as the peer measured in the same run; prints both times and their ratio.

    .venv/bin/python bench/ml_detect.py [--things 100000] [--intervals 4]

Asserts nothing; the figures go to stdout and ``bench/results/ml_detect.json``.
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from bastion.account import Account
from bastion.defender.detect import (
    ML_METRICS,
    Datapoint,
    DetectService,
    MetricValue,
    NumericModel,
    peer_key,
)
from bastion.defender.detect._ml import DeviceSlots

ACCOUNT = Account("us-east-1", "123456789012")
INTERVAL = 300.0
METRICS = sorted(ML_METRICS)
CLASSES = [peer_key("sensor", "1.0"), peer_key("camera", "2.1"), peer_key("gateway", "3"),
           peer_key("meter", "1.2")]


def _values(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    return base * rng.lognormal(0.0, 0.15, base.shape)


def models_alone(things: int, intervals: int) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    names = [f"thing-{i}" for i in range(things)]
    peers = [CLASSES[i % len(CLASSES)] for i in range(things)]
    base = rng.lognormal(5.0, 1.0, (len(METRICS), things))
    tracemalloc.start()
    slots = DeviceSlots()
    slots.slots(names)
    table_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    models = [NumericModel(m, "MEDIUM", slots, refresh=INTERVAL / 2, recent=2 * INTERVAL,
                           fleet_window=3 * INTERVAL) for m in METRICS]
    times = []
    flagged = caught = 0
    bad = set(names[:10])
    for step in range(intervals):
        values = _values(rng, base)
        values[:, :10] *= 50 if step == intervals - 1 else 1  # ten misbehave at the end
        rows = values.tolist()
        started = time.perf_counter()
        for model, row in zip(models, rows, strict=True):
            outcome = model.evaluate(names, peers, row, step * INTERVAL)
            if step == intervals - 1:
                flagged += len(outcome.verdicts)
                caught += len(bad & set(outcome.verdicts))
        times.append(time.perf_counter() - started)
    state = sum(m.nbytes() for m in models)
    return {"things": things, "metrics": len(METRICS),
            "interval_seconds": times[-1], "warmup_seconds": times[0],
            "state_bytes": state, "name_table_bytes": table_bytes,
            "total_mb": (state + table_bytes) / 1e6, "flagged_last_interval": flagged,
            "caught_of_130": caught,
            "false_positive_values": flagged - caught,
            "false_positive_share": (flagged - caught) / (things * len(METRICS))}


def _profiles(service: DetectService) -> None:
    service.create_security_profile("ml", now=0, behaviors=[
        {"name": f"ml-{i}", "metric": m,
         "criteria": {"mlDetectionConfig": {"confidenceLevel": "MEDIUM"}}}
        for i, m in enumerate(METRICS)])
    service.create_security_profile("static", now=0, behaviors=[
        {"name": f"static-{i}", "metric": m,
         "criteria": {"comparisonOperator": "less-than", "value": {"count": 10**9}}}
        for i, m in enumerate(METRICS)])


def through_service(things: int, intervals: int) -> dict[str, Any]:
    rng = np.random.default_rng(2)
    names = [f"thing-{i}" for i in range(things)]
    base = rng.lognormal(5.0, 1.0, (len(METRICS), things))
    out: dict[str, Any] = {}
    for kind in ("static", "ml"):
        service = DetectService(membership=lambda thing: (True, frozenset()),
                                account=ACCOUNT, interval=INTERVAL,
                                peer=lambda thing: CLASSES[hash(thing) % len(CLASSES)])
        _profiles(service)
        service.attach(kind, service.target_arn("all/things"))
        seconds = 0.0
        for step in range(intervals):
            values = _values(rng, base).tolist()
            batch = [Datapoint(names[j], metric, MetricValue(number=values[i][j]),
                               step * INTERVAL)
                     for i, metric in enumerate(METRICS) for j in range(things)]
            started = time.perf_counter()
            service.ingest(batch, step * INTERVAL)
            seconds = time.perf_counter() - started
        out[kind] = seconds
    out["ratio_ml_to_static"] = out["ml"] / out["static"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--things", type=int, default=100_000)
    parser.add_argument("--intervals", type=int, default=4)
    parser.add_argument("--service-things", type=int, default=100_000,
                        help="devices for the detect-service comparison")
    args = parser.parse_args()
    alone = models_alone(args.things, args.intervals)
    print(f"models alone: {alone['things']:,} things × {alone['metrics']} metrics: "
          f"{alone['interval_seconds']:.2f} s per interval (first {alone['warmup_seconds']:.2f}"
          f" s); state {alone['state_bytes'] / 1e6:.1f} MB + name table "
          f"{alone['name_table_bytes'] / 1e6:.1f} MB = {alone['total_mb']:.1f} MB; "
          f"last interval (10 devices × 13 metrics ×50): {alone['caught_of_130']}/130 caught, "
          f"{alone['false_positive_values']} other values abnormal "
          f"({alone['false_positive_share']:.4%})")
    service = through_service(args.service_things, args.intervals)
    print(f"detect service, {args.service_things:,} things × {len(METRICS)} metrics per "
          f"interval: static profile {service['static']:.2f} s, ML profile "
          f"{service['ml']:.2f} s (ratio {service['ratio_ml_to_static']:.2f})")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "ml_detect.json").write_text(json.dumps(
        {"models_alone": alone, "service": service}, indent=2))


if __name__ == "__main__":
    main()
