"""`observe import spans FILE` on both databases, with the OTLP files of tests/data/otlp."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
from sqlalchemy import func, select

from observe.db.engine import Database
from observe.db.models import Span, Trace
from tests.integration.test_cli import Invoke, cli, failed, json_of, json_of_exit, succeeded

__all__ = ["cli"]  # the fixture, used by name

OTLP = Path(__file__).parents[1] / "data" / "otlp"


def span_count(db: Database) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(Span)) or 0


def test_import_collector_file_exporter_lines(cli: Invoke, db: Database) -> None:
    summary = json_of(cli("import", "spans", OTLP / "traces.jsonl", "--json"))

    assert (summary["kind"], summary["format"]) == ("spans", "otlp-json")
    assert (summary["num_rows"], summary["num_imported"], summary["num_rejected"]) == (7, 7, 0)
    with db.sessions() as session:
        models = dict(
            session.execute(
                select(Span.name, Span.model).where(
                    Span.trace_id == "00000000000000000000000000000001"
                )
            ).all()
        )
        trace = session.scalars(select(Trace).where(Trace.model == "fraud-scorer")).first()
    # The children came a line before the root that names the model: they were linked to it.
    assert models == dict.fromkeys(["predict", "feature_store.lookup", "forward"], "fraud-scorer")
    assert trace is not None
    assert trace.num_spans == 3


def test_importing_again_counts_duplicates(cli: Invoke, db: Database) -> None:
    succeeded(cli("import", "spans", OTLP / "traces.jsonl"))

    result = succeeded(cli("import", "spans", OTLP / "traces.jsonl", "--batch-size", "2"))

    assert "7 spans read, 0 imported, 7 duplicates, 0 rejected" in result.stdout
    assert span_count(db) == 7


def test_import_one_request_per_file(cli: Invoke, db: Database) -> None:
    summary = json_of(cli("import", "spans", OTLP / "trace.json", "--json"))

    assert summary["num_imported"] == 1
    with db.sessions() as session:
        assert session.scalars(select(Span.service_name)).one() == "my.service"


def test_import_a_gzipped_file_in_small_batches(cli: Invoke, db: Database, tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl.gz"
    path.write_bytes(gzip.compress((OTLP / "traces.jsonl").read_bytes()))

    summary = json_of(cli("import", "spans", path, "--batch-size", "2", "--json"))

    assert summary["num_imported"] == 7
    assert span_count(db) == 7


def test_bad_lines_and_invalid_spans_are_written_to_the_rejects_file(
    cli: Invoke, db: Database, tmp_path: Path
) -> None:
    rejects = tmp_path / "rejects.jsonl"

    summary = json_of_exit(
        cli("import", "spans", OTLP / "traces_with_errors.jsonl", "--rejects", rejects, "--json")
    )

    assert (summary["num_rows"], summary["num_imported"], summary["num_rejected"]) == (3, 2, 2)
    lines = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert [line["row"] for line in lines] == [2, 3]
    assert "not valid JSON" in lines[0]["errors"][0]["message"]
    assert lines[1]["errors"][0]["message"].endswith("endTimeUnixNano is before startTimeUnixNano")
    assert lines[1]["data"]["span_id"] == "0000000000000002"
    assert span_count(db) == 2


def test_a_file_in_neither_layout_is_refused_and_nothing_stored(
    cli: Invoke, db: Database, tmp_path: Path
) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "resourceSpans": [\n')

    failed(cli("import", "spans", path), 1, "neither OTLP/JSON lines nor one OTLP/JSON request")
    failed(cli("import", "spans", tmp_path / "missing.jsonl"), 1, "does not exist")
    assert span_count(db) == 0
