"""The `observe` command line on both databases (OBSERVE_DATABASE_URL -> the `db` fixture), and
`observe serve` as a real process."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from click.testing import Result
from sqlalchemy import func, select
from typer.testing import CliRunner

from observe.cli import app
from observe.db import migrate
from observe.db.engine import Database
from observe.db.models import ApiKey, Event, InferenceRecord, Label, MetricSample, Model
from tests.conftest import bearer, database_url
from tests.factories import records

DATA = Path(__file__).parents[1] / "data"
WINDOW = ["--start", "2026-11-16T00:00:00Z", "--end", "2026-11-17T00:00:00Z"]
# The collector tests cover every decoder; here, one file per format family.
RECORD_FILES = ("records.jsonl", "records.csv", "records.parquet", "records_nested.parquet")

SERVE_MAIN = "from observe.cli import main; main()"  # what the `observe` script runs

Invoke = Callable[..., Result]


@pytest.fixture
def cli(db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """Run `observe ARGS...` on `db`, from an empty working directory."""
    monkeypatch.chdir(tmp_path)  # no .env from the checkout; default rejects files land here
    env = {"OBSERVE_DATABASE_URL": database_url(db)}
    runner = CliRunner()

    def invoke(*args: str | Path) -> Result:
        return runner.invoke(app, [str(arg) for arg in args], env=env)

    return invoke


def succeeded(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def failed(result: Result, code: int, message: str) -> None:
    """The command failed with `code` and a one-line message, not a traceback."""
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit), result.exception


def json_of(result: Result) -> Any:
    return orjson.loads(succeeded(result).stdout)


def count_rows(db: Database, model: type[Any]) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def stored_keys(db: Database) -> list[ApiKey]:
    with db.sessions() as session:
        return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


# --- db -----------------------------------------------------------------------------------------


def test_db_upgrade_creates_the_schema_of_an_empty_database(tmp_path: Path) -> None:
    env = {"OBSERVE_DATABASE_URL": f"sqlite:///{tmp_path / 'new' / 'observe.db'}"}
    runner = CliRunner()

    before = orjson.loads(runner.invoke(app, ["db", "current", "--json"], env=env).stdout)
    upgrade = runner.invoke(app, ["db", "upgrade"], env=env)
    after = orjson.loads(runner.invoke(app, ["db", "current", "--json"], env=env).stdout)

    head = migrate.head_revision()
    assert before["current"] is None
    assert upgrade.exit_code == 0, upgrade.output
    assert f"empty -> {head}" in upgrade.stdout
    assert after == {"database": env["OBSERVE_DATABASE_URL"], "current": head, "head": head}


def test_db_upgrade_of_a_current_database_changes_nothing(cli: Invoke) -> None:
    head = migrate.head_revision()

    result = succeeded(cli("db", "upgrade"))

    assert f"{head} -> {head}" in result.stdout


def test_db_current_shows_the_revision(cli: Invoke, db: Database) -> None:
    head = migrate.head_revision()

    info = json_of(cli("db", "current", "--json"))
    text = succeeded(cli("db", "current")).stdout

    assert (info["current"], info["head"]) == (head, head)
    assert f"at {head}, newest {head}" in text


def test_db_current_hides_the_database_password(tmp_path: Path) -> None:
    # Nothing listens on port 1: the command must fail cleanly, naming the URL without secrets.
    env = {"OBSERVE_DATABASE_URL": "postgresql://observe:hunter2@127.0.0.1:1/observe"}

    result = CliRunner().invoke(app, ["db", "current"], env=env)

    failed(result, 1, "cannot read postgresql+psycopg://observe:***@127.0.0.1:1/observe")
    assert "hunter2" not in result.output


def test_an_unsupported_database_url_is_a_clear_error() -> None:
    result = CliRunner().invoke(
        app, ["keys", "list"], env={"OBSERVE_DATABASE_URL": "mysql://root@localhost/observe"}
    )

    failed(result, 1, "unsupported database URL scheme 'mysql'")


# --- keys ---------------------------------------------------------------------------------------


def test_keys_create_prints_the_key_once_and_stores_only_its_hash(
    cli: Invoke, db: Database
) -> None:
    result = succeeded(cli("keys", "create", "--scope", "ingest", "--name", "edge collector"))

    lines = [line.strip() for line in result.stdout.splitlines()]
    [key] = [line for line in lines if line.startswith("obs_")]
    assert result.stdout.count(key) == 1
    assert "cannot be shown again" in result.stdout
    [row] = stored_keys(db)
    assert (row.name, row.scopes) == ("edge collector", "ingest")
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert row.prefix == key[:12]
    assert key not in {row.name, row.prefix, row.key_hash, row.scopes}


def test_keys_create_json_gives_the_key_and_its_scopes(cli: Invoke, db: Database) -> None:
    created = json_of(cli("keys", "create", "--scope", "read", "--scope", "ingest", "--json"))

    assert created["scopes"] == ["ingest", "read"]
    assert created["name"] == "ingest,read"
    assert created["key"].startswith("obs_")
    assert created["id"] == stored_keys(db)[0].id


def test_keys_create_accepts_each_scope(cli: Invoke, db: Database) -> None:
    for scope in ("ingest", "read", "admin"):
        assert json_of(cli("keys", "create", "--scope", scope, "--json"))["scopes"] == [scope]

    assert [key.scopes for key in stored_keys(db)] == ["ingest", "read", "admin"]


@pytest.mark.parametrize("scopes", [["--scope", "superuser"], ["--scope", "ingest", "--scope", ""]])
def test_keys_create_refuses_an_unknown_scope(cli: Invoke, db: Database, scopes: list[str]) -> None:
    result = cli("keys", "create", *scopes)

    if scopes[-1]:
        failed(result, 2, "unknown scope 'superuser': use ingest, read, admin")
        assert stored_keys(db) == []
    else:  # an empty value is ignored, the other scope stands
        assert succeeded(result)
        assert stored_keys(db)[0].scopes == "ingest"


def test_keys_create_needs_a_scope(cli: Invoke, db: Database) -> None:
    result = cli("keys", "create")

    assert result.exit_code == 2
    assert "--scope" in result.output
    assert stored_keys(db) == []


def test_created_keys_work_against_the_api_with_their_scopes(cli: Invoke, client: Any) -> None:
    ingest = json_of(cli("keys", "create", "--scope", "ingest", "--json"))["key"]
    read = json_of(cli("keys", "create", "--scope", "read", "--json"))["key"]

    assert (
        client.post("/api/v1/records", json=records(3), headers=bearer(ingest)).status_code == 200
    )
    assert client.post("/api/v1/records", json=records(3), headers=bearer(read)).status_code == 403
    assert client.get("/api/v1/models", headers=bearer(read)).status_code == 200
    assert client.get("/api/v1/models", headers=bearer("obs_made-up")).status_code == 401


def test_keys_list_shows_prefixes_never_keys(cli: Invoke) -> None:
    first = json_of(cli("keys", "create", "--scope", "ingest", "--name", "one", "--json"))
    second = json_of(cli("keys", "create", "--scope", "admin", "--name", "two", "--json"))

    table = succeeded(cli("keys", "list")).stdout
    listed = json_of(cli("keys", "list", "--json"))

    for key in (first["key"], second["key"]):
        assert key not in table
        assert key[:12] + "…" in table
    assert [(k["id"], k["name"], k["prefix"], k["scopes"]) for k in listed] == [
        (first["id"], "one", first["key"][:12], ["ingest"]),
        (second["id"], "two", second["key"][:12], ["admin"]),
    ]
    assert all(k["revoked_at"] is None and k["last_used_at"] is None for k in listed)
    assert all(first["key"] not in str(k) and second["key"] not in str(k) for k in listed)


def test_keys_list_with_no_keys_is_empty(cli: Invoke) -> None:
    assert json_of(cli("keys", "list", "--json")) == []


def test_keys_revoke_by_id(cli: Invoke, client: Any) -> None:
    kept = json_of(cli("keys", "create", "--scope", "read", "--name", "kept", "--json"))
    gone = json_of(cli("keys", "create", "--scope", "read", "--name", "gone", "--json"))

    result = succeeded(cli("keys", "revoke", str(gone["id"])))

    assert f"Revoked {gone['id']} (gone)" in result.stdout
    listed = {k["name"]: k for k in json_of(cli("keys", "list", "--json"))}
    assert listed["gone"]["revoked_at"] is not None
    assert listed["kept"]["revoked_at"] is None
    assert client.get("/api/v1/models", headers=bearer(gone["key"])).status_code == 401
    assert client.get("/api/v1/models", headers=bearer(kept["key"])).status_code == 200


def test_keys_revoke_by_prefix_as_listed(cli: Invoke, db: Database) -> None:
    first = json_of(cli("keys", "create", "--scope", "ingest", "--json"))
    second = json_of(cli("keys", "create", "--scope", "ingest", "--json"))
    third = json_of(cli("keys", "create", "--scope", "ingest", "--json"))

    succeeded(cli("keys", "revoke", first["key"][:12]))
    succeeded(cli("keys", "revoke", second["key"][:12] + "…"))  # copied from `keys list`

    assert [key.revoked_at is not None for key in stored_keys(db)] == [True, True, False]
    assert third["id"] == stored_keys(db)[2].id


def test_keys_revoke_of_an_unknown_or_revoked_key_fails(cli: Invoke) -> None:
    created = json_of(cli("keys", "create", "--scope", "ingest", "--json"))
    succeeded(cli("keys", "revoke", str(created["id"])))

    failed(cli("keys", "revoke", "obs_nothing"), 1, "no active key with id or prefix 'obs_nothing'")
    failed(cli("keys", "revoke", "4242"), 1, "no active key with id or prefix '4242'")
    failed(cli("keys", "revoke", str(created["id"])), 1, "no active key")


# --- import -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RECORD_FILES)
def test_import_records_from_every_format(cli: Invoke, db: Database, name: str) -> None:
    result = succeeded(cli("import", "records", DATA / name))

    assert f"{name}: 20 rows read, 20 imported, 0 duplicates, 0 rejected" in result.stdout
    with db.sessions() as session:
        stored = {r.request_id: r for r in session.scalars(select(InferenceRecord))}
        labels = dict(session.execute(select(Label.request_id, Label.label)).all())
    assert len(stored) == 20
    assert stored["req-0"].timestamp == dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)
    assert stored["req-0"].features == {
        "amount": 5.25,
        "country": "DE",
        "card_present": True,
        "num_tx": 0,
    }
    assert stored["req-0"].tags == {"host": "gpu-1", "region": "eu-west", "zone": "1"}
    assert stored["req-5"].features is not None
    assert stored["req-5"].features["amount"] is None
    assert stored["req-6"].tags == {"host": "gpu-1", "zone": "1"}
    assert (stored["req-7"].status, stored["req-7"].error) == ("error", "feature store timed out")
    assert {r.model_version for r in stored.values()} == {"v1", "v2"}
    # Inline labels of the records (every fourth one carries one).
    assert labels == {f"req-{i}": int(i % 8 == 0) for i in range(0, 20, 4)}
    assert not (Path.cwd() / f"{name}.rejects.jsonl").exists()


def test_import_json_summary(cli: Invoke) -> None:
    summary = json_of(cli("import", "records", DATA / "records.parquet", "--json"))

    assert summary["format"] == "parquet"
    assert summary["kind"] == "records"
    assert (summary["num_rows"], summary["num_imported"]) == (20, 20)
    assert (summary["num_duplicates"], summary["num_rejected"]) == (0, 0)
    assert summary["rejects_path"] is None


def test_the_same_records_in_another_format_are_duplicates(cli: Invoke, db: Database) -> None:
    succeeded(cli("import", "records", DATA / "records.jsonl"))

    summary = json_of(cli("import", "records", DATA / "records.csv", "--json"))

    assert (summary["num_imported"], summary["num_duplicates"]) == (0, 20)
    assert count_rows(db, InferenceRecord) == 20


def test_import_in_small_batches_stores_every_row_once(cli: Invoke, db: Database) -> None:
    summary = json_of(cli("import", "records", DATA / "records.csv", "--batch-size", "3", "--json"))

    assert summary["num_imported"] == 20
    assert count_rows(db, InferenceRecord) == 20


def test_rejected_rows_are_written_with_row_numbers_and_reasons(
    cli: Invoke, db: Database, tmp_path: Path
) -> None:
    rejects = tmp_path / "out" / "bad.jsonl"
    rejects.parent.mkdir()

    result = cli("import", "records", DATA / "records_with_errors.jsonl", "--rejects", rejects)

    assert result.exit_code == 3, result.output
    assert "7 rows read, 3 imported, 0 duplicates, 4 rejected" in result.stdout
    assert str(rejects) in result.stdout
    lines = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert [line["row"] for line in lines] == [3, 5, 6, 7]
    reasons = {line["row"]: line["errors"] for line in lines}
    assert reasons[3][0]["message"].startswith("not valid JSON")
    assert reasons[5] == [{"field": None, "message": "each line must be a JSON object"}]
    assert [e["field"] for e in reasons[6]] == ["latency_ms"]
    assert reasons[7] == [{"field": "request_id", "message": "field required"}]
    # The rejected row itself is kept, so it can be fixed and imported again.
    assert lines[2]["data"]["request_id"] == "err-bad-latency"
    assert lines[1]["data"].strip() == "[1, 2, 3]"
    with db.sessions() as session:
        stored = set(session.scalars(select(InferenceRecord.request_id)))
    assert stored == {"err-0", "err-1", "err-2"}


def test_rejects_go_next_to_the_working_directory_by_default(cli: Invoke) -> None:
    summary = json_of_exit(cli("import", "records", DATA / "records_with_errors.jsonl", "--json"))

    expected = Path.cwd() / "records_with_errors.jsonl.rejects.jsonl"
    assert summary["rejects_path"] == str(expected)
    assert summary["num_rejected"] == 4
    assert len(expected.read_bytes().splitlines()) == 4


def json_of_exit(result: Result, code: int = 3) -> Any:
    assert result.exit_code == code, result.output
    return orjson.loads(result.stdout)


def test_csv_rejects_count_the_header_line(cli: Invoke, tmp_path: Path) -> None:
    path = tmp_path / "records.csv"
    path.write_text(
        "model,model_version,timestamp,request_id,latency_ms\n"
        "m,v1,2026-11-16T12:00:00Z,a,1.5\n"
        "m,v1,2026-11-16T12:00:01Z,b,-1\n"
        "m,v1,not a time,c,2.5\n"
    )
    rejects = tmp_path / "rejects.jsonl"

    summary = json_of_exit(cli("import", "records", path, "--rejects", rejects, "--json"))

    assert (summary["num_imported"], summary["num_rejected"]) == (1, 2)
    lines = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert [(line["row"], line["errors"][0]["field"]) for line in lines] == [
        (3, "latency_ms"),
        (4, "timestamp"),
    ]


def test_import_labels(cli: Invoke, db: Database) -> None:
    succeeded(cli("import", "records", DATA / "records.jsonl"))

    result = succeeded(cli("import", "labels", DATA / "labels.jsonl"))

    # req-4 came with label 0 inside its record already: the same value again is a duplicate.
    assert "10 rows read, 9 imported, 1 duplicates" in result.stdout
    with db.sessions() as session:
        labels = dict(session.execute(select(Label.request_id, Label.label)).all())
    assert {f"req-{i}": i % 2 for i in range(1, 11)}.items() <= labels.items()


def test_import_events_twice_stores_them_once(cli: Invoke, db: Database) -> None:
    first = json_of(cli("import", "events", DATA / "events.jsonl", "--json"))
    second = json_of(cli("import", "events", DATA / "events.jsonl", "--json"))

    assert (first["num_imported"], first["num_duplicates"]) == (4, 0)
    assert (second["num_imported"], second["num_duplicates"]) == (0, 4)
    with db.sessions() as session:
        incident = session.scalars(select(Event).where(Event.kind == "incident")).one()
        canary = session.scalars(select(Event).where(Event.kind == "canary")).one()
    assert incident.timestamp == dt.datetime(2026, 11, 16, 11, 15, tzinfo=dt.UTC)
    assert (canary.traffic_pct, canary.tags) == (10, {"region": "eu-west"})


def test_import_metrics_from_csv(cli: Invoke, db: Database) -> None:
    summary = json_of(cli("import", "metrics", DATA / "metrics.csv", "--json"))

    assert summary["num_imported"] == 12
    with db.sessions() as session:
        samples = list(session.scalars(select(MetricSample).order_by(MetricSample.id)))
    assert len(samples) == 12
    assert samples[0].timestamp == dt.datetime(2026, 11, 16, 12, 0, tzinfo=dt.UTC)
    assert (samples[0].host, samples[0].name, samples[0].value) == (
        "gpu-1",
        "gpu_utilization_pct",
        60.0,
    )
    assert samples[0].tags == {"gpu_model": "H100"}


def test_importing_a_file_of_another_kind_rejects_every_row(cli: Invoke, db: Database) -> None:
    summary = json_of_exit(cli("import", "records", DATA / "events.jsonl", "--json"))

    assert (summary["num_imported"], summary["num_rejected"]) == (0, 4)
    assert count_rows(db, InferenceRecord) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "unknown format 'xml'"),
        (["--format", "parquet"], "not a readable Parquet file"),
    ],
)
def test_import_with_a_bad_format_fails_and_stores_nothing(
    cli: Invoke, db: Database, args: list[str], message: str
) -> None:
    failed(cli("import", "records", DATA / "records.jsonl", *args), 1, message)

    assert count_rows(db, InferenceRecord) == 0


def test_import_of_a_file_with_an_unknown_suffix_says_to_pass_format(
    cli: Invoke, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "records.txt"
    path.write_bytes((DATA / "records.jsonl").read_bytes())

    failed(cli("import", "records", path), 1, "cannot tell the format of records.txt")
    assert count_rows(db, InferenceRecord) == 0
    assert succeeded(cli("import", "records", path, "--format", "jsonl"))
    assert count_rows(db, InferenceRecord) == 20


@pytest.mark.parametrize("name", ["missing.jsonl", "missing.parquet"])
def test_import_of_a_missing_file_fails_and_stores_nothing(
    cli: Invoke, db: Database, tmp_path: Path, name: str
) -> None:
    failed(cli("import", "records", tmp_path / name), 1, f"{tmp_path / name} does not exist")

    assert count_rows(db, InferenceRecord) == 0


def test_import_of_an_unreadable_parquet_file_fails_and_stores_nothing(
    cli: Invoke, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "records.parquet"
    path.write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")

    failed(cli("import", "records", path), 1, "records.parquet is not a readable Parquet file")

    assert count_rows(db, InferenceRecord) == 0
    assert list(tmp_path.glob("*.rejects.jsonl")) == []


def test_db_upgrade_to_an_unknown_revision_fails(cli: Invoke) -> None:
    failed(cli("db", "upgrade", "no-such-revision"), 1, "failed")

    assert json_of(cli("db", "current", "--json"))["current"] == migrate.head_revision()


def test_import_of_an_unknown_kind_is_a_usage_error(cli: Invoke) -> None:
    result = cli("import", "spans-and-things", DATA / "records.jsonl")

    assert result.exit_code == 2
    assert "No such command" in result.output


# --- models -------------------------------------------------------------------------------------


def test_models_lists_traffic_errors_and_percentiles(cli: Invoke) -> None:
    succeeded(cli("import", "records", DATA / "records.jsonl"))

    listing = json_of(cli("models", *WINDOW, "--json"))
    table = succeeded(cli("models", *WINDOW)).stdout

    [model] = listing["models"]
    assert model["name"] == "fraud-scorer"
    assert (model["num_requests"], model["num_errors"]) == (20, 1)
    assert model["error_rate"] == pytest.approx(0.05)
    assert 10.0 <= model["p50"] <= model["p95"] <= model["p99"] <= 38.5
    versions = {v["model_version"]: v["num_requests"] for v in model["versions"]}
    assert versions == {"v1": 10, "v2": 10}
    assert "fraud-scorer" in table
    assert "5.00%" in table
    for version in ("v1", "v2"):
        assert version in table


def test_models_without_data_is_an_empty_list(cli: Invoke) -> None:
    assert json_of(cli("models", "--json"))["models"] == []


def test_models_with_a_bad_window_fails(cli: Invoke) -> None:
    failed(cli("models", "--start", "yesterday-ish"), 2, "error: start:")


def test_models_slo_set_show_and_clear(cli: Invoke, db: Database) -> None:
    set_slo = ("--percentile", "95", "--latency-ms", "250", "--error-rate-pct", "1")

    shown_when_set = succeeded(cli("models", "slo", "fraud-scorer", *set_slo)).stdout
    stored = json_of(cli("models", "slo", "fraud-scorer", "--json"))
    shown = succeeded(cli("models", "slo", "fraud-scorer")).stdout
    listed = json_of(cli("models", "--json"))["models"]
    cleared = json_of(cli("models", "slo", "fraud-scorer", "--clear", "--json"))

    assert "fraud-scorer: p95 <= 250 ms; error rate <= 1%" in shown_when_set
    assert shown.strip() == "fraud-scorer: p95 <= 250 ms; error rate <= 1%"
    assert stored["model"] == "fraud-scorer"
    slo = stored["slo"]
    assert (slo["latency_percentile"], slo["latency_ms"], slo["error_rate_pct"]) == (95, 250, 1)
    assert slo["updated_at"] is not None
    assert [m["slo"]["latency_ms"] for m in listed] == [250]
    assert cleared["slo"]["latency_ms"] is None
    assert cleared["slo"]["error_rate_pct"] is None
    shown_cleared = succeeded(cli("models", "slo", "fraud-scorer")).stdout
    assert "no latency objective; no error-rate objective" in shown_cleared
    assert count_rows(db, Model) == 1


def test_models_slo_error_rate_alone(cli: Invoke) -> None:
    result = json_of(cli("models", "slo", "churn", "--error-rate-pct", "0.5", "--json"))

    assert result["slo"]["error_rate_pct"] == 0.5
    assert result["slo"]["latency_ms"] is None


INVALID_SLOS = [
    (["--percentile", "95"], "latency_percentile and latency_ms are set together"),
    (["--latency-ms", "250"], "latency_percentile and latency_ms are set together"),
    (["--percentile", "100", "--latency-ms", "250"], "less than 100"),
    (["--percentile", "0", "--latency-ms", "250"], "greater than 0"),
    (["--percentile", "95", "--latency-ms", "-1"], "greater than 0"),
    (["--error-rate-pct", "150"], "less than or equal to 100"),
    (["--error-rate-pct", "-1"], "greater than or equal to 0"),
]


def test_models_slo_refuses_invalid_values_and_keeps_the_old_slo(cli: Invoke) -> None:
    succeeded(cli("models", "slo", "fraud-scorer", "--percentile", "99", "--latency-ms", "80"))

    for args, message in INVALID_SLOS:
        failed(cli("models", "slo", "fraud-scorer", *args), 2, message)

    slo = json_of(cli("models", "slo", "fraud-scorer", "--json"))["slo"]
    assert (slo["latency_percentile"], slo["latency_ms"], slo["error_rate_pct"]) == (99, 80, None)


def test_models_slo_of_a_non_number_is_a_usage_error(cli: Invoke) -> None:
    result = cli("models", "slo", "fraud-scorer", "--latency-ms", "fast")

    assert result.exit_code == 2
    assert "Invalid value for '--latency-ms'" in result.output


def test_models_slo_of_an_unknown_model_fails(cli: Invoke) -> None:
    failed(cli("models", "slo", "nope"), 1, "no model named 'nope'")


# --- demo ---------------------------------------------------------------------------------------


def test_demo_builds_a_day_of_data_for_three_models(cli: Invoke, db: Database) -> None:
    result = succeeded(cli("demo", "--days", "1", "--no-serve"))

    assert "Demo data" in result.stdout
    listing = json_of(cli("models", "--start", "-25h", "--json"))
    models = {m["name"]: m for m in listing["models"]}
    assert set(models) == {"fraud-scorer", "recsys-ranker", "churn-classifier"}
    assert all(m["num_requests"] > 1000 for m in models.values())
    fraud = models["fraud-scorer"]["slo"]
    assert (fraud["latency_percentile"], fraud["latency_ms"]) == (95, 60)
    assert count_rows(db, Label) > 0
    assert count_rows(db, MetricSample) > 0
    # A second run finds the data and leaves it alone.
    num_records = count_rows(db, InferenceRecord)
    again = succeeded(cli("demo", "--days", "1", "--no-serve"))
    assert "already loaded" in again.stdout
    assert count_rows(db, InferenceRecord) == num_records


# --- serve --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """`observe serve` as a child process, its output read as it comes."""

    def __init__(self, data_dir: Path, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OBSERVE_")}
        env.update(OBSERVE_DATA_DIR=str(data_dir), OBSERVE_LOG_LEVEL="info")
        self.url = f"http://127.0.0.1:{port}"
        self.output = ""
        self.process = subprocess.Popen(
            [sys.executable, "-c", SERVE_MAIN, "serve", "--port", str(port)],
            cwd=data_dir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def wait_until_serving(self, timeout: float = 60.0) -> None:
        assert self.process.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while "Application startup complete" not in self.output:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"observe serve did not start:\n{self.output}")
            if selector.select(timeout=0.1):
                self.output += os.read(self.process.stdout.fileno(), 65536).decode()
        selector.close()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            rest, _ = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            rest, _ = self.process.communicate()
        self.output += rest.decode()
        return self.process.returncode


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[], Served]]:
    started: list[Served] = []

    def start() -> Served:
        served = Served(tmp_path, free_port())
        started.append(served)
        served.wait_until_serving()
        return served

    yield start
    for served in started:
        served.stop()


@pytest.mark.slow
def test_serve_prints_an_admin_key_on_first_start_only(
    serve: Callable[[], Served], tmp_path: Path
) -> None:
    first = serve()
    keys = [word for word in first.output.split() if word.startswith("obs_")]
    assert len(keys) == 1, first.output
    [key] = keys
    assert "shown only this once" in first.output
    with httpx.Client(base_url=first.url) as http:
        assert http.get("/api/v1/models", headers=bearer(key)).status_code == 200
        assert http.get("/api/v1/models").status_code == 401
    first_code = first.stop()
    assert "Application shutdown complete" in first.output
    assert first_code in (0, -signal.SIGTERM)

    second = serve()
    with httpx.Client(base_url=second.url) as http:
        assert http.get("/api/v1/models", headers=bearer(key)).status_code == 200
    second.stop()

    assert "obs_" not in second.output
    assert "admin API key" not in second.output
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("observe.db*"))
    assert hashlib.sha256(key.encode()).hexdigest().encode() in stored
    assert key.encode() not in stored


def test_diagnose_prints_the_steps_and_ranked_causes(cli: Invoke, db: Database) -> None:
    from tests.integration.pipeline.test_diagnosis import serve

    serve(db, canary_share=0.25, canary_slowdown=3.0)
    window = ["--model", "fraud-scorer", "--start", "2026-11-16T12:00:00Z"]
    window += ["--end", "2026-11-16T13:00:00Z"]

    text = succeeded(cli("diagnose", *window)).stdout
    result = json_of(cli("diagnose", *window, "--json"))

    assert "versions" in text
    assert "deploy" in text
    assert "model_version=v7" in text
    assert result["causes"][0]["scope"] == {"model_version": "v7"}
    assert result["window"]["start"].startswith("2026-11-16T12:00:00")


def test_diagnose_refuses_an_unknown_model_and_a_bad_window(cli: Invoke, db: Database) -> None:
    failed(cli("diagnose", "--model", "nope"), 1, "no model named 'nope'")
    failed(
        cli(
            "diagnose", "--model", "x", "--start", "2026-11-16T13:00Z", "--end", "2026-11-16T12:00Z"
        ),
        2,
        "start must be before end",
    )
