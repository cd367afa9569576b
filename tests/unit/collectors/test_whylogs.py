"""Decoding whylogs profiles (tests/data/whylogs_reference.bin, written by whylogs 1.6.4 from
tests/data/whylogs_reference_source.parquet with `why.log(frame).view().write(path)`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from collectors.whylogs import WhylogsFormatError, read_whylogs_profile

pytest.importorskip("whylogs")

DATA = Path(__file__).resolve().parents[2] / "data"


def test_columns_counts_and_quantiles() -> None:
    source = pd.read_parquet(DATA / "whylogs_reference_source.parquet")
    profile = read_whylogs_profile(DATA / "whylogs_reference.bin")
    assert set(profile.columns) == {"amount", "country", "card_present", "num_tx"}
    amount = profile.columns["amount"]
    assert amount.num_rows == 5000
    assert amount.num_nulls == int(source["amount"].isna().sum())
    assert amount.num_numbers == int(source["amount"].notna().sum())
    assert amount.mean == pytest.approx(source["amount"].mean(), rel=1e-9)
    assert amount.minimum == pytest.approx(source["amount"].min())
    median = amount.quantile_values[len(amount.quantile_values) // 2]
    assert median == pytest.approx(source["amount"].median(), rel=0.05)
    country = {v: e for v, e, _, _ in profile.columns["country"].frequent_items}
    assert country == source["country"].value_counts().to_dict()
    assert profile.columns["card_present"].num_bools == 5000
    assert profile.columns["num_tx"].num_integers == 5000
    assert profile.dataset_timestamp is not None


def test_a_file_that_is_not_a_profile_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "x.bin"
    bogus.write_bytes(np.arange(100).tobytes())
    with pytest.raises(WhylogsFormatError, match=r"x\.bin is not a whylogs profile"):
        read_whylogs_profile(bogus)
    with pytest.raises(WhylogsFormatError, match="does not exist"):
        read_whylogs_profile(tmp_path / "missing.bin")
