"""Training-serving skew: schema, distribution and feature-value skew with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analyzers.skew import detect_schema_skew, detect_skew, detect_value_skew, value_type


def test_value_types() -> None:
    assert value_type(pd.Series([1, 2, None])) == "integer"
    assert value_type(pd.Series([1.5, 2.0])) == "number"
    assert value_type(pd.Series([True, False])) == "boolean"
    assert value_type(pd.Series(["a", None])) == "string"
    assert value_type(pd.Series(["a", 1], dtype=object)) == "mixed"
    assert value_type(pd.Series([None, None])) == "empty"


def test_schema_skew_finds_missing_extra_retyped_and_unseen() -> None:
    training = pd.DataFrame(
        {
            "amount": [1.5, 2.5, 3.5, 4.5],
            "country": ["DE", "FR", "DE", "FR"],
            "age": [30, 40, 50, 60],
            "zip": ["1", "2", "3", "4"],
        }
    )
    serving = pd.DataFrame(
        {
            "amount": [1.0, 2.0, 3.0, 4.0],
            "country": ["DE", "US", "US", "BR"],
            "age": ["30", "x", "y", "z"],
            "device": ["ios", "web", "ios", "web"],
        }
    )
    schema = detect_schema_skew(training, serving, categorical=["country"])
    assert schema.missing == ("zip",)
    assert schema.extra == ("device",)
    assert schema.retyped == {"age": {"reference": "integer", "serving": "string"}}
    unseen = schema.unseen_categories["country"]
    assert unseen["num_values"] == 2
    assert unseen["share"] == pytest.approx(0.75)
    assert unseen["values"] == ["US", "BR"]
    assert schema.has_skew


def test_integer_and_number_are_not_a_retyping() -> None:
    schema = detect_schema_skew(pd.DataFrame({"x": [1, 2]}), pd.DataFrame({"x": [1.5, 2.0]}))
    assert not schema.has_skew


def test_feature_value_skew_per_entity() -> None:
    training = pd.DataFrame(
        {
            "user": ["u1", "u2", "u3", "u4", "u5"],
            "amount": [10.0, 20.0, 30.0, 40.0, None],
            "country": ["DE", "FR", "DE", "FR", "DE"],
        }
    )
    serving = pd.DataFrame(
        {
            "user": ["u1", "u2", "u3", "u4", "u9"],
            "amount": [10.0, 22.0, 30.0 + 1e-12, 36.0, 1.0],
            "country": ["DE", "FR", "FR", "FR", "DE"],
        }
    )
    num_joined, values = detect_value_skew(training, serving, join_key="user")
    assert num_joined == 4
    by_name = {v.feature: v for v in values}
    amount = by_name["amount"]
    assert (amount.num_mismatched, amount.mismatch_rate) == (2, 0.5)  # u2 and u4
    assert amount.max_abs_diff == pytest.approx(4.0)
    assert amount.mean_abs_diff == pytest.approx(1.5)  # (0 + 2 + 0 + 4) / 4
    assert amount.mean_rel_diff == pytest.approx((0 + 0.1 + 0 + 0.1) / 4)
    country = by_name["country"]
    assert (country.num_mismatched, country.mean_abs_diff) == (1, None)


def test_a_null_matches_only_a_null() -> None:
    training = pd.DataFrame({"id": [1, 2, 3], "x": [None, 1.0, None]})
    serving = pd.DataFrame({"id": [1, 2, 3], "x": [None, None, 5.0]})
    _, (x,) = detect_value_skew(training, serving, join_key="id")
    assert x.num_mismatched == 2


def test_a_missing_join_key_is_refused() -> None:
    with pytest.raises(ValueError, match="join key 'user' is not a column of the serving data"):
        detect_value_skew(pd.DataFrame({"user": [1]}), pd.DataFrame({"x": [1]}), join_key="user")


def test_detect_skew_combines_the_three() -> None:
    rng = np.random.default_rng(0)
    training = pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(3000)],
            "amount": rng.normal(50, 10, 3000),
            "country": rng.choice(["DE", "FR"], 3000),
        }
    )
    serving = training.copy()
    serving["amount"] = serving["amount"] * 1.5  # a unit bug upstream
    result = detect_skew(training, serving, join_key="request_id")
    assert result.distribution.feature("amount").drifted
    assert not result.distribution.feature("country").drifted
    assert "request_id" not in {f.feature for f in result.distribution.features}
    assert result.num_joined == 3000
    amount = next(v for v in result.values if v.feature == "amount")
    assert amount.mismatch_rate == 1.0
    assert amount.mean_rel_diff == pytest.approx(0.5)
    assert not result.schema.has_skew
    assert result.to_dict()["join_key"] == "request_id"
