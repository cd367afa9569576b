"""observe import reference|whylogs and observe analyze drift|skew, on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from observe.db.engine import Database
from tests.factories import T0
from tests.integration.pipeline.test_drift import serving, store, training_frame
from tests.integration.test_cli import DATA, Invoke, cli, failed, json_of, succeeded

__all__ = ["cli"]  # the fixture, shared with the other CLI tests

WINDOW = ["--start", T0.isoformat(), "--end", "2026-11-16T15:00:00Z"]


@pytest.fixture
def reference_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.parquet"
    training_frame(1500).to_parquet(path)
    return path


def test_import_reference_then_analyze_drift(
    cli: Invoke, db: Database, reference_file: Path, tmp_path: Path
) -> None:
    store(db, serving(900, start=T0, hours=3, shift=1.0, seed=2))
    imported = json_of(
        cli(
            "import",
            "reference",
            reference_file,
            "--model",
            "fraud-scorer",
            "--version",
            "v1",
            "--max-rows",
            "500",
            "--json",
        )
    )
    assert (imported["num_rows"], imported["num_rows_stored"]) == (1500, 500)
    report = json_of(
        cli(
            "analyze",
            "drift",
            "--model",
            "fraud-scorer",
            *WINDOW,
            "--test",
            "amount=psi",
            "--threshold",
            "country=0.05",
            "--json",
        )
    )
    assert report["baseline"]["kind"] == "reference"
    features = {f["feature"]: f for f in report["features"]}
    assert features["amount"]["test"] == "psi"
    assert features["amount"]["drifted"] is True
    assert features["country"]["threshold"] == 0.05
    assert report["dataset_drifted"] is True
    table = succeeded(cli("analyze", "drift", "--model", "fraud-scorer", *WINDOW))
    assert "data set drifted" in table.output
    assert "amount" in table.output


def test_analyze_drift_writes_an_evidently_report(
    cli: Invoke, db: Database, reference_file: Path, tmp_path: Path
) -> None:
    pytest.importorskip("evidently")
    store(db, serving(600, start=T0, hours=3, shift=1.0, seed=2))
    succeeded(
        cli("import", "reference", reference_file, "--model", "fraud-scorer", "--version", "v1")
    )
    out = tmp_path / "drift.html"
    succeeded(cli("analyze", "drift", "--model", "fraud-scorer", *WINDOW, "--html", out))
    html = out.read_text()
    assert "<html" in html.lower()
    assert "amount" in html


def test_analyze_skew_with_a_join_key(cli: Invoke, db: Database, tmp_path: Path) -> None:
    frame = training_frame(300)
    path = tmp_path / "train.csv"
    frame.to_csv(path, index=False)
    items = serving(300, start=T0, hours=1, shift=0, seed=4, prefix="t")
    store(db, items)
    succeeded(cli("import", "reference", path, "--model", "fraud-scorer", "--version", "v1"))
    report = json_of(
        cli(
            "analyze",
            "skew",
            "--model",
            "fraud-scorer",
            *WINDOW,
            "--join-key",
            "request_id",
            "--json",
        )
    )
    assert report["num_joined"] == 300
    assert {v["feature"] for v in report["values"]} == {"amount", "country", "num_tx"}
    assert report["schema"]["missing"] == []
    table = succeeded(
        cli("analyze", "skew", "--model", "fraud-scorer", *WINDOW, "--join-key", "request_id")
    )
    assert "mismatch rate" in table.output


def test_whylogs_import(cli: Invoke, db: Database) -> None:
    pytest.importorskip("whylogs")
    result = json_of(
        cli(
            "import",
            "whylogs",
            DATA / "whylogs_reference.bin",
            "--model",
            "fraud-scorer",
            "--version",
            "v1",
            "--as",
            "reference",
            "--json",
        )
    )
    assert result["num_features"] == 4
    failed(
        cli("import", "whylogs", DATA / "records.csv", "--model", "m", "--version", "v1"),
        1,
        "not a whylogs profile",
    )
    failed(
        cli(
            "import",
            "whylogs",
            DATA / "whylogs_reference.bin",
            "--model",
            "m",
            "--version",
            "v1",
            "--as",
            "nope",
        ),
        2,
        "--as must be reference or serving",
    )


def test_clear_errors(cli: Invoke, db: Database, tmp_path: Path) -> None:
    failed(cli("analyze", "drift", "--model", "fraud-scorer", *WINDOW), 1, "no records")
    failed(cli("analyze", "drift", "--model", "m", "--test", "amount"), 2, "feature=value")
    failed(cli("analyze", "drift", "--model", "m", "--threshold", "amount=x"), 2, "not a number")
    failed(cli("analyze", "skew", "--model", "m"), 1, "no reference data set for m")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    failed(
        cli("import", "reference", bad, "--model", "m", "--version", "v1"),
        1,
        "not a readable parquet file",
    )
    failed(
        cli("import", "reference", tmp_path / "x.txt", "--model", "m", "--version", "v1"),
        1,
        "does not exist",
    )
