"""observe.pipeline.rollups: grouping a batch into rollup keys without per-record Python."""

from __future__ import annotations

import numpy as np
import pytest

from observe.pipeline.rollups import _unique_rows


@pytest.mark.parametrize(("low", "high"), [(29_000_000, 29_000_090), (0, 2**61)])
def test_unique_rows_match_numpy_unique_over_rows(low: int, high: int) -> None:
    """Packed into one integer when the spans allow it, compared row-wise when they do not."""
    rng = np.random.default_rng(3)
    columns = [rng.integers(0, 3, 500), rng.integers(0, 5, 500), rng.integers(low, high, 500)]

    unique, group = _unique_rows(*columns)

    expected, expected_group = np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)
    assert unique.tolist() == expected.tolist()
    assert group.tolist() == expected_group.reshape(-1).tolist()
