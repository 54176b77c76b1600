"""Line charts of a thing's Detect metrics, as SVG geometry (a pure core: values in,
coordinates out; the template draws them, the stylesheet colours them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

WIDTH: Final = 600
HEIGHT: Final = 100


@dataclass(frozen=True, slots=True)
class Chart:
    """One metric's datapoints over ``[start, end)``, scaled into a
    ``WIDTH`` x ``HEIGHT`` box (y grows downward, as in SVG).

    :ivar points: the polyline's ``points`` attribute (``"x,y x,y …"``).
    :ivar maximum: the value drawn at the top edge.
    """

    metric: str
    points: str
    count: int
    latest: float
    maximum: float
    start: float
    end: float
    violated: bool = False


def line_chart(metric: str, datapoints: Sequence[tuple[float, float]], start: float,
               end: float, *, violated: bool = False) -> Chart | None:
    """The chart of ``datapoints`` (``(epoch seconds, value)``), those outside
    ``[start, end)`` left out, in time order; ``None`` when none is left.

    :raises ValueError: ``end`` is not after ``start``.
    """
    if end <= start:
        raise ValueError("end must be after start")
    inside = sorted((t, v) for t, v in datapoints if start <= t < end)
    if not inside:
        return None
    maximum = max(1.0, max(v for _, v in inside))
    minimum = min(0.0, min(v for _, v in inside))
    span = maximum - minimum
    coordinates = []
    for t, v in inside:
        x = (t - start) / (end - start) * WIDTH
        y = HEIGHT - (v - minimum) / span * HEIGHT
        coordinates.append(f"{x:.1f},{y:.1f}")
    return Chart(metric, " ".join(coordinates), len(inside), inside[-1][1], maximum, start,
                 end, violated)
