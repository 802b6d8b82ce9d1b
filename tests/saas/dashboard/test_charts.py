"""The pygal charts render the presenters' series as inline SVG that loads nothing."""

from __future__ import annotations

import datetime

from saas.dashboard import charts, presenters


def _is_inline_svg(svg: str) -> bool:
    # pygal writes an inline config <script>; what must not be there is a script to fetch.
    return svg.lstrip().startswith("<svg") and "<script src" not in svg and "<?xml" not in svg


def test_usage_chart_of_a_presenter_series():
    (series,) = presenters.usage_series(
        [{"meter": "predictions", "unit": "prediction", "date": "2026-03-02", "quantity": 4}],
        start=datetime.date(2026, 3, 1),
        today=datetime.date(2026, 3, 7),
    )
    svg = charts.usage_per_day(
        series["days"], {series["meter"]: series["values"]}, title=series["title"]
    )
    assert _is_inline_svg(svg)
    assert "Predictions per day" in svg
    assert "03-01" in svg  # the x labels are MM-DD


def test_training_curves_of_zero_epochs_draw_nothing():
    assert charts.training_curves(presenters.latest_epochs([])) == {}


def test_training_curves_only_for_the_metrics_reported():
    epochs = presenters.latest_epochs([{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.3}])
    curves = charts.training_curves(epochs)
    assert set(curves) == {"loss"}
    assert _is_inline_svg(curves["loss"])


def test_class_balance_with_a_very_long_label():
    long = "x" * 300
    svg = charts.class_balance({long: 3, "b": 1})
    assert _is_inline_svg(svg) and long in svg
