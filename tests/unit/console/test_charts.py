"""The Detect charts' geometry."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.console._charts import HEIGHT, WIDTH, line_chart


def test_points_are_scaled_into_the_box_in_time_order() -> None:
    chart = line_chart("aws:num-messages-sent", [(150.0, 10.0), (100.0, 0.0), (199.0, 5.0)],
                       100.0, 200.0)
    assert chart is not None
    assert chart.points == "0.0,100.0 300.0,0.0 594.0,50.0"
    assert (chart.count, chart.latest, chart.maximum) == (3, 5.0, 10.0)


def test_points_outside_the_window_are_left_out() -> None:
    assert line_chart("m", [(99.0, 1.0), (200.0, 1.0)], 100.0, 200.0) is None
    with pytest.raises(ValueError):
        line_chart("m", [], 200.0, 200.0)


@settings(deadline=None)  # a loaded machine must not fail it on time
@given(st.lists(st.tuples(st.floats(0, 1000), st.floats(-1e9, 1e9)), min_size=1))
def test_every_point_lies_in_the_box(datapoints: list[tuple[float, float]]) -> None:
    chart = line_chart("m", datapoints, 0.0, 1001.0)
    assert chart is not None
    for pair in chart.points.split():
        x, y = (float(part) for part in pair.split(","))
        assert 0.0 <= x <= WIDTH and 0.0 <= y <= HEIGHT
