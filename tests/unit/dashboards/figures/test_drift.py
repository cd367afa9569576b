"""dashboards.figures.drift: distributions, the drift heatmap and value skew."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from analyzers.drift import detect_drift
from analyzers.skew import ValueSkew
from dashboards.data.drift import TimelineCell
from dashboards.figures import drift as drift_figures

T0 = dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)


def drift_of(reference: dict[str, list], current: dict[str, list]) -> dict:
    result = detect_drift(pd.DataFrame(reference), pd.DataFrame(current))
    return {feature.feature: feature for feature in result.features}


def test_a_numeric_feature_overlays_both_histograms_on_the_same_bins() -> None:
    rng = np.random.default_rng(3)
    features = drift_of(
        {"amount": list(rng.normal(0, 1, 500))}, {"amount": list(rng.normal(3, 1, 500))}
    )

    figure = drift_figures.distribution_figure(features["amount"])

    reference, current = figure.data
    assert (reference.name, current.name) == ("baseline", "window")
    assert list(reference.x) == list(current.x)
    assert sum(reference.y) == pytest.approx(100.0)
    assert sum(current.y) == pytest.approx(100.0)
    centre = np.average(current.x, weights=current.y) - np.average(reference.x, weights=reference.y)
    assert centre == pytest.approx(3.0, abs=0.3)
    assert figure.layout.barmode == "overlay"
    assert figure.layout.title.text.startswith("amount: ks ")
    assert figure.layout.title.text.endswith(", drifted")


def test_a_categorical_feature_compares_category_shares() -> None:
    features = drift_of(
        {"country": ["DE"] * 60 + ["FR"] * 40}, {"country": ["DE"] * 20 + ["FR"] * 80}
    )

    figure = drift_figures.distribution_figure(
        features["country"], reference_label="reference training"
    )

    reference, current = figure.data
    assert reference.name == "reference training"
    shares = dict(zip(reference.x, reference.y, strict=True))
    assert shares == pytest.approx({"DE": 60.0, "FR": 40.0})
    assert dict(zip(current.x, current.y, strict=True)) == pytest.approx({"DE": 20.0, "FR": 80.0})


def test_the_heatmap_has_a_row_per_feature_and_a_column_per_bucket() -> None:
    hour = dt.timedelta(hours=1)
    cells = [
        TimelineCell("amount", T0, "wasserstein", 0.05, False),
        TimelineCell("amount", T0 + 2 * hour, "wasserstein", 0.4, True),
        TimelineCell("country", T0, "jensenshannon", 0.01, False),
    ]

    figure = drift_figures.drift_heatmap(cells, bucket_seconds=3600)

    [heatmap] = figure.data
    assert list(heatmap.y) == ["amount", "country"]
    assert list(heatmap.x) == [T0, T0 + 2 * hour]
    assert [list(row) for row in heatmap.z] == [[0.0, 1.0], [0.0, None]]
    assert heatmap.text[0][1] == "wasserstein 0.4 · drifted"
    assert "1 h buckets" in figure.layout.title.text


def test_an_empty_timeline_says_so() -> None:
    figure = drift_figures.drift_heatmap([], bucket_seconds=86_400)

    assert figure.layout.annotations[0].text == "No records in any bucket of the window"


def test_value_skew_ranks_features_by_mismatch_rate() -> None:
    values = [
        ValueSkew("country", 1200, 0, 0.0, None, None, None),
        ValueSkew("amount", 1200, 240, 0.2, 2.0, 10.0, 0.03),
    ]

    figure = drift_figures.value_skew_figure(values, join_key="request_id")

    [bar] = figure.data
    assert list(bar.y) == ["amount", "country"]
    assert list(bar.x) == pytest.approx([20.0, 0.0])
    assert list(bar.marker.color) == [drift_figures.DRIFTED_COLOUR, drift_figures.REFERENCE_COLOUR]
    assert "same request_id" in figure.layout.title.text
