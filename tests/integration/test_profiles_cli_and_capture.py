"""`observe import profile` on both databases, and `observe.profiling.capture` recording a real
torch 2.13 model and uploading to the app served by uvicorn on a loopback port."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from observe.cli import app
from observe.client import Client, UploadError
from observe.db.engine import Database
from observe.db.models import ProfileOperator, ProfilerTrace
from tests.conftest import database_url

DATA = Path(__file__).parents[1] / "data"


def run(db: Database, *args: str | Path) -> Any:
    env = {"OBSERVE_DATABASE_URL": database_url(db)}
    return CliRunner().invoke(app, ["import", "profile", *map(str, args)], env=env)


def count(db: Database, table: type) -> int:
    with db.sessions() as session:
        return session.scalar(select(func.count()).select_from(table)) or 0


def test_import_profile_stores_and_reports(db: Database) -> None:
    args = ("--model", "fraud-scorer", "--version", "v2", "--host", "gpu-1")
    first = run(db, DATA / "profile_v2.json.gz", *args, "--json")
    again = run(db, DATA / "profile_v2.json.gz", *args)

    assert first.exit_code == 0, first.output
    answer = orjson.loads(first.stdout)
    assert answer["duplicate"] is False
    assert (answer["profile"]["num_operators"], answer["profile"]["num_steps"]) == (16, 4)
    assert answer["profile"]["file_name"] == "profile_v2.json.gz"
    assert again.exit_code == 0
    assert "already stored as profile" in again.stdout
    assert count(db, ProfilerTrace) == 1
    assert count(db, ProfileOperator) == 16


def test_import_profile_capture_time_from_option_trace_or_mtime(
    db: Database, tmp_path: Path
) -> None:
    bare = tmp_path / "bare.json"  # no baseTimeNanoseconds: the file's mtime is used
    bare.write_bytes(b'{"traceEvents": [{"ph": "X", "name": "op", "ts": 1, "dur": 2}]}')
    os.utime(bare, (1_795_000_000, 1_795_000_000))
    common = ("--model", "m", "--host", "h", "--json")

    given = run(
        db,
        DATA / "profile_v1.json.gz",
        "--version",
        "v1",
        *common,
        "--captured-at",
        "2026-11-20T14:05:00Z",
    )
    from_mtime = run(db, bare, "--version", "v2", *common)

    assert orjson.loads(given.stdout)["profile"]["captured_at"].startswith("2026-11-20T14:05:00")
    assert orjson.loads(from_mtime.stdout)["profile"]["captured_at"].startswith(
        "2026-11-18T11:06:40"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"<html>", "not JSON"),
        (b'{"traceEvents": [{"ph": "X", "name": "op", "ts": 1,', "truncated"),
        (b'{"foo": 1}', "no events"),
    ],
)
def test_import_profile_refuses_bad_files_and_stores_nothing(
    db: Database, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "trace.json"
    path.write_bytes(content)
    result = run(db, path, "--model", "m", "--version", "v1", "--host", "h")

    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "nothing was stored" in result.output
    assert "Traceback" not in result.output
    assert count(db, ProfilerTrace) == 0


def test_import_profile_refuses_a_missing_file_and_bad_options(db: Database) -> None:
    missing = run(db, "nope.json", "--model", "m", "--version", "v1", "--host", "h")
    empty_model = run(
        db, DATA / "profile_v1.json.gz", "--model", "", "--version", "v", "--host", "h"
    )
    bad_time = run(
        db,
        DATA / "profile_v1.json.gz",
        "--model",
        "m",
        "--version",
        "v",
        "--host",
        "h",
        "--captured-at",
        "tomorrow-ish",
    )

    assert missing.exit_code == 2
    assert "no such file" in missing.output
    assert empty_model.exit_code == 2
    assert "--model" in empty_model.output
    assert bad_time.exit_code == 2
    assert "--captured-at" in bad_time.output
    assert count(db, ProfilerTrace) == 0


# --- capture() with real torch against a real server -----------------------------------------


@pytest.mark.slow
def test_capture_records_a_real_model_and_uploads_it(
    live_url: str, api_keys: dict[str, str], db: Database
) -> None:
    torch = pytest.importorskip("torch")
    from observe.profiling import capture

    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 4))
    inputs = torch.randn(8, 32)
    with (
        torch.no_grad(),
        capture(
            model="tiny", version="v3", host="ci-1", url=live_url, api_key=api_keys["ingest"]
        ) as prof,
    ):
        for _ in range(3):
            model(inputs)
            prof.step()

    [answer] = prof.observe_uploads
    profile = answer["profile"]
    assert answer["duplicate"] is False
    assert (profile["model"], profile["model_version"], profile["host"]) == ("tiny", "v3", "ci-1")
    assert profile["num_steps"] == 4  # torch opens one more step at the last .step(), to exit
    with db.sessions() as session:
        names = set(
            session.scalars(
                select(ProfileOperator.name).where(ProfileOperator.profile_id == profile["id"])
            )
        )
    assert {"aten::addmm", "aten::relu", "ProfilerStep*"} <= names


@pytest.mark.slow
def test_capture_uploads_nothing_when_the_block_raises(
    live_url: str, api_keys: dict[str, str], db: Database
) -> None:
    torch = pytest.importorskip("torch")
    from observe.profiling import capture

    def profiled_model_that_fails() -> None:
        with capture(model="tiny", version="v3", url=live_url, api_key=api_keys["ingest"]):
            torch.randn(4, 4).sum()
            raise RuntimeError("model failed")

    with pytest.raises(RuntimeError, match="model failed"):
        profiled_model_that_fails()

    assert count(db, ProfilerTrace) == 0


def test_upload_profile_reports_the_server_refusal(live_url: str, api_keys: dict[str, str]) -> None:
    with Client(live_url, api_keys["ingest"]) as client:
        stored = client.upload_profile(
            DATA / "profile_v1.json.gz", model="m", model_version="v1", host="h"
        )
        again = client.upload_profile(
            gzip.decompress((DATA / "profile_v1.json.gz").read_bytes()),
            model="m",
            model_version="v1",
            host="h",
        )
        with pytest.raises(UploadError, match="truncated") as refused:
            client.upload_profile(b'{"traceEvents": [', model="m", model_version="v1", host="h")

    assert stored["duplicate"] is False
    assert stored["profile"]["file_name"] == "profile_v1.json.gz"
    assert again["duplicate"] is True
    assert refused.value.status_code == 422
