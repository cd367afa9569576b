"""Mergeable latency histograms: quantile accuracy, merging, serialisation and grouping."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from analyzers.histograms import (
    GAMMA,
    MAX_VALUE_MS,
    MIN_VALUE_MS,
    RELATIVE_ACCURACY,
    ZERO_BIN,
    Histogram,
    bin_indices,
    bin_values,
    decode_many,
    histograms_by_group,
    quantiles_by_group,
)

QS = [0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1.0]
# The stated bound, with room only for floating-point rounding at a bucket's edge.
TOLERANCE = RELATIVE_ACCURACY * (1 + 1e-9)


def distributions() -> dict[str, npt.NDArray[np.float64]]:
    rng = np.random.default_rng(7)
    return {
        "lognormal": rng.lognormal(3.0, 1.0, 20_011),
        "bimodal": np.concatenate([rng.normal(8.0, 1.0, 6_000), rng.normal(900.0, 50.0, 4_001)]),
        "constant": np.full(1_000, 42.0),
        "tiny_and_zeros": np.concatenate(
            [np.zeros(1_500), rng.uniform(0.0, 2 * MIN_VALUE_MS, 2_000), rng.exponential(5, 3_000)]
        ),
        "fifteen_decades": 10.0 ** rng.uniform(-3.0, 12.0, 5_000),
        "single": np.array([123.456]),
    }


def assert_within_relative_error(actual: object, expected: npt.ArrayLike) -> None:
    """Within RELATIVE_ACCURACY of `expected`, or 0 where `expected` is below MIN_VALUE_MS."""
    got = np.asarray(actual, dtype=np.float64)
    want = np.asarray(expected, dtype=np.float64)
    tiny = want < MIN_VALUE_MS
    np.testing.assert_array_equal(got[tiny], 0.0)
    relative = np.abs(got[~tiny] - want[~tiny]) / want[~tiny]
    assert np.all(relative <= TOLERANCE), f"relative errors {relative.max():.5f}"


@pytest.mark.parametrize("name", list(distributions()))
def test_quantiles_within_relative_error_of_numpy_lower(name: str) -> None:
    values = distributions()[name]

    quantiles = Histogram.from_values(values).quantiles(QS)

    assert_within_relative_error(quantiles, np.quantile(values, QS, method="lower"))


def test_quantiles_pick_the_lower_rank_known_answer() -> None:
    histogram = Histogram.from_values([5.0, 1.0, 4.0, 2.0, 3.0, 100.0])

    # n = 6: rank floor(q * 5) -> 0.5 -> 2 (value 3), 0.39 -> 1 (value 2), 0.99 -> 4 (value 5)
    quantiles = histogram.quantiles([0.0, 0.39, 0.5, 0.99, 1.0])

    assert_within_relative_error(quantiles, [1.0, 2.0, 3.0, 5.0, 100.0])


def test_bimodal_median_stays_in_the_lower_mode() -> None:
    values = np.concatenate([np.full(501, 10.0), np.full(500, 1000.0)])

    [median] = Histogram.from_values(values).quantiles([0.5])

    assert median == pytest.approx(10.0, rel=RELATIVE_ACCURACY)


def test_values_below_the_smallest_bucket_and_zeros_read_as_zero() -> None:
    values = [0.0, 0.0, MIN_VALUE_MS / 2, MIN_VALUE_MS * 0.999, MIN_VALUE_MS, 1.0]

    quantiles = Histogram.from_values(values).quantiles([0.0, 0.5, 0.6, 0.8, 1.0])

    assert quantiles[:3] == [0.0, 0.0, 0.0]
    assert quantiles[3] == pytest.approx(MIN_VALUE_MS, rel=RELATIVE_ACCURACY)
    assert quantiles[4] == pytest.approx(1.0, rel=RELATIVE_ACCURACY)


def test_empty_histogram_has_no_quantiles() -> None:
    empty = Histogram.empty()

    assert empty.quantiles([0.5, 0.99]) == [None, None]
    assert empty.total == 0
    assert Histogram.from_values([]).quantiles([0.5]) == [None]


@pytest.mark.parametrize("q", [-0.01, 1.01, 50])
def test_quantile_outside_zero_to_one_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match="outside"):
        Histogram.from_values([1.0, 2.0]).quantiles([0.5, q])


def test_bucket_representatives_are_within_relative_error_of_every_value() -> None:
    values = np.geomspace(MIN_VALUE_MS, 1e12, 100_003)

    representatives = bin_values(bin_indices(values))

    assert_within_relative_error(representatives, values)


def test_bucket_edges_hold_the_bound() -> None:
    edges = GAMMA ** np.arange(-300, 1_000, dtype=np.float64)
    values = np.concatenate([edges, np.nextafter(edges, np.inf), np.nextafter(edges, 0)])
    values = values[values >= MIN_VALUE_MS]

    assert_within_relative_error(bin_values(bin_indices(values)), values)


def test_bin_indices_known_answers() -> None:
    indices = bin_indices([0.0, MIN_VALUE_MS / 10, 1.0, GAMMA, GAMMA * 1.001])

    assert indices.dtype == np.int16
    assert indices.tolist() == [ZERO_BIN, ZERO_BIN, 0, 1, 2]
    assert bin_values(np.array([ZERO_BIN, 0])).tolist() == [0.0, 2.0 / (GAMMA + 1.0)]


def test_bin_indices_refuses_values_whose_index_would_overflow() -> None:
    assert bin_indices([MAX_VALUE_MS]).item() <= np.iinfo(np.int16).max

    with pytest.raises(OverflowError, match="does not fit"):
        bin_indices([1.0, MAX_VALUE_MS * GAMMA**2])
    with pytest.raises(OverflowError):
        bin_indices([np.inf])


def test_from_values_counts_per_sorted_unique_bucket() -> None:
    histogram = Histogram.from_values([3.0, 1.0, 3.0, 0.0, 3.0])

    assert histogram.indices.tolist() == sorted(set(histogram.indices.tolist()))
    assert histogram.counts.tolist() == [1, 1, 3]
    assert histogram.total == 5
    assert histogram.indices.dtype == np.int16
    assert histogram.counts.dtype == np.int64


def test_merge_equals_the_histogram_of_the_concatenated_values() -> None:
    rng = np.random.default_rng(3)
    first, second = rng.lognormal(2, 1.5, 5_000), rng.lognormal(4, 0.5, 3_000)
    expected = Histogram.from_values(np.concatenate([first, second]))

    merged = Histogram.from_values(first).merge(Histogram.from_values(second))

    np.testing.assert_array_equal(merged.indices, expected.indices)
    np.testing.assert_array_equal(merged.counts, expected.counts)
    assert merged.quantiles(QS) == expected.quantiles(QS)
    assert merged.indices.dtype == np.int16
    assert merged.counts.dtype == np.int64


def test_merge_is_commutative_and_empty_is_neutral() -> None:
    a, b = Histogram.from_values([1.0, 5.0, 5.0]), Histogram.from_values([0.0, 5.0, 70.0])

    ab, ba = a.merge(b), b.merge(a)

    np.testing.assert_array_equal(ab.indices, ba.indices)
    np.testing.assert_array_equal(ab.counts, ba.counts)
    assert ab.total == 6
    np.testing.assert_array_equal(a.merge(Histogram.empty()).counts, a.counts)
    np.testing.assert_array_equal(Histogram.empty().merge(a).indices, a.indices)


def test_bytes_round_trip() -> None:
    rng = np.random.default_rng(11)
    histogram = Histogram.from_values(np.concatenate([np.zeros(10), rng.lognormal(3, 2, 10_000)]))

    restored = Histogram.from_bytes(histogram.to_bytes())

    np.testing.assert_array_equal(restored.indices, histogram.indices)
    np.testing.assert_array_equal(restored.counts, histogram.counts)
    assert restored.indices.dtype == np.int16
    assert restored.counts.dtype == np.int64
    assert restored.quantiles(QS) == histogram.quantiles(QS)


def test_bytes_layout_known_answer() -> None:
    histogram = Histogram(np.array([ZERO_BIN, 0], np.int16), np.array([2, 70_000], np.int64))

    data = histogram.to_bytes()

    assert data == (
        b"H1"
        + (2).to_bytes(4, "little")
        + ZERO_BIN.to_bytes(2, "little", signed=True)
        + (0).to_bytes(2, "little")
        + (2).to_bytes(4, "little")
        + (70_000).to_bytes(4, "little")
    )


def test_empty_histogram_bytes_round_trip() -> None:
    data = Histogram.empty().to_bytes()

    assert data == b"H1\x00\x00\x00\x00"
    assert Histogram.from_bytes(data).total == 0


@pytest.mark.parametrize("data", [b"", b"H", b"H2\x00\x00\x00\x00", b"\x00\x00" + bytes(10)])
def test_from_bytes_refuses_bad_magic(data: bytes) -> None:
    with pytest.raises(ValueError, match="not an observe latency histogram"):
        Histogram.from_bytes(data)


def test_from_bytes_refuses_truncated_data() -> None:
    data = Histogram.from_values([1.0, 2.0, 30.0]).to_bytes()

    with pytest.raises(ValueError, match="buffer is smaller"):
        Histogram.from_bytes(data[:-1])


def test_to_bytes_refuses_a_count_beyond_the_32_bit_counter() -> None:
    at_limit = Histogram(np.array([3], np.int16), np.array([2**32 - 1], np.int64))
    over = Histogram(np.array([3, 4], np.int16), np.array([1, 2**32], np.int64))

    assert Histogram.from_bytes(at_limit.to_bytes()).counts.tolist() == [2**32 - 1]
    with pytest.raises(OverflowError, match="32-bit"):
        over.to_bytes()


def grouped_values(num_groups: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(5)
    size = 20_000
    groups = rng.integers(0, num_groups, size)
    groups[groups == 2] = 1  # group 2 stays empty
    values = rng.lognormal(1.0 + groups * 0.5, 1.0, size)
    values[::97] = 0.0
    return groups, values


def test_histograms_by_group_equals_per_group_histograms() -> None:
    num_groups = 6
    groups, values = grouped_values(num_groups - 1)  # the last group id gets nothing

    histograms = histograms_by_group(groups, values, num_groups)

    assert len(histograms) == num_groups
    for g, histogram in enumerate(histograms):
        expected = Histogram.from_values(values[groups == g])
        np.testing.assert_array_equal(histogram.indices, expected.indices)
        np.testing.assert_array_equal(histogram.counts, expected.counts)
        assert histogram.indices.dtype == np.int16
    assert histograms[2].total == 0
    assert histograms[num_groups - 1].total == 0
    assert sum(h.total for h in histograms) == values.size


def test_quantiles_by_group_equals_per_group_quantiles() -> None:
    num_groups = 5
    groups, values = grouped_values(num_groups)

    result = quantiles_by_group(groups, bin_indices(values), np.ones(values.size), num_groups, QS)

    assert result.shape == (num_groups, len(QS))
    for g in range(num_groups):
        members = values[groups == g]
        if members.size == 0:
            assert np.isnan(result[g]).all()
            continue
        np.testing.assert_array_equal(result[g], Histogram.from_values(members).quantiles(QS))
        assert_within_relative_error(result[g], np.quantile(members, QS, method="lower"))
    assert np.isnan(result[2]).all()


def test_quantiles_by_group_merges_histograms_given_in_any_order() -> None:
    rng = np.random.default_rng(9)
    parts = [rng.lognormal(2, 1, 700) for _ in range(6)]
    owner = [0, 1, 0, 1, 0, 1]  # three histograms merged into each of two groups
    histograms = [Histogram.from_values(part) for part in parts]
    group_ids = np.concatenate(
        [np.full(h.indices.size, o) for h, o in zip(histograms, owner, strict=True)]
    )
    indices = np.concatenate([h.indices for h in histograms])
    counts = np.concatenate([h.counts for h in histograms])
    order = rng.permutation(indices.size)

    result = quantiles_by_group(group_ids[order], indices[order], counts[order], 3, QS)

    for g in (0, 1):
        members = np.concatenate([part for part, o in zip(parts, owner, strict=True) if o == g])
        np.testing.assert_array_equal(result[g], Histogram.from_values(members).quantiles(QS))
    assert np.isnan(result[2]).all()


def test_quantiles_by_group_without_data() -> None:
    empty = np.empty(0, np.int64)

    result = quantiles_by_group(empty, empty, empty, 3, [0.5, 0.9])

    assert result.shape == (3, 2)
    assert np.isnan(result).all()


def test_decode_many_matches_decoding_one_by_one() -> None:
    rng = np.random.default_rng(3)
    histograms = [
        Histogram.from_values(rng.gamma(2.0, scale, size))
        for scale, size in [(5.0, 100), (0.0001, 3), (3000.0, 50), (1.0, 1)]
    ] + [Histogram.from_values([0.0, 0.0, 70_000.0])]
    blobs = [h.to_bytes() for h in histograms]

    lengths, indices, counts = decode_many(blobs)

    assert lengths.tolist() == [h.indices.size for h in histograms]
    assert indices.tolist() == np.concatenate([h.indices for h in histograms]).tolist()
    assert counts.tolist() == np.concatenate([h.counts for h in histograms]).tolist()


def test_decode_many_keeps_counts_beyond_16_bits() -> None:
    big = Histogram(np.array([-5, 7], dtype=np.int16), np.array([70_000, 4_000_000_000]))

    _, indices, counts = decode_many([big.to_bytes()])

    assert indices.tolist() == [-5, 7]
    assert counts.tolist() == [70_000, 4_000_000_000]


def test_decode_many_of_nothing() -> None:
    assert [part.size for part in decode_many([])] == [0, 0, 0]


@pytest.mark.parametrize("blob", [b"", b"XX\x00\x00\x00\x00", b"H1\x01\x00\x00\x00\x01"])
def test_decode_many_refuses_what_is_not_a_histogram(blob: bytes) -> None:
    good = Histogram.from_values([1.0]).to_bytes()

    with pytest.raises(ValueError, match="not an observe latency histogram"):
        decode_many([good, blob])
