"""POST/GET /api/v1/references, GET /api/v1/models/{model}/drift, /drift/timeline, /skew."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pandas as pd
from sqlalchemy import func, select

from observe.db.engine import Database
from observe.db.models import ReferenceDataset, ReferenceRow
from tests.conftest import bearer
from tests.factories import T0
from tests.integration.pipeline.test_drift import serving, store, training_frame

HOUR = dt.timedelta(hours=1)
WINDOW = {"start": T0.isoformat(), "end": (T0 + 3 * HOUR).isoformat()}


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def upload(client: Any, key: str, body: bytes, content_type: str, **params: str) -> Any:
    query = {"model": "fraud-scorer", "model_version": "v1", "name": "train", **params}
    return client.post(
        "/api/v1/references",
        params=query,
        content=body,
        headers={**bearer(key), "Content-Type": content_type},
    )


def test_upload_parquet_and_csv_references(
    client: Any, db: Database, api_keys: dict[str, str]
) -> None:
    frame = training_frame(400)
    response = upload(
        client, api_keys["ingest"], parquet_bytes(frame), "application/vnd.apache.parquet"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["num_rows"], body["num_rows_stored"]) == (400, 400)
    assert body["feature_types"]["amount"] == "number"
    csv = frame.to_csv(index=False).encode()
    response = upload(client, api_keys["ingest"], csv, "text/csv", name="csv")
    assert response.status_code == 200, response.text
    listed = client.get(
        "/api/v1/references", params={"model": "fraud-scorer"}, headers=bearer(api_keys["read"])
    )
    assert [item["name"] for item in listed.json()["items"]] == ["csv", "train"]


def test_bad_references_are_refused_and_nothing_is_stored(
    client: Any, db: Database, api_keys: dict[str, str]
) -> None:
    garbage = upload(
        client, api_keys["ingest"], b"PAR1 not really", "application/vnd.apache.parquet"
    )
    assert garbage.status_code == 422
    assert "not a readable parquet file" in garbage.json()["detail"]
    nested = pd.DataFrame({"x": [[1, 2], [3]]})
    refused = upload(
        client, api_keys["ingest"], parquet_bytes(nested), "application/vnd.apache.parquet"
    )
    assert refused.status_code == 422
    assert "column 'x'" in refused.json()["detail"]
    wrong_type = upload(client, api_keys["ingest"], b"{}", "application/json")
    assert wrong_type.status_code == 415
    empty = upload(client, api_keys["ingest"], b"", "text/csv")
    assert empty.status_code == 400
    no_scope = upload(client, api_keys["read"], b"a\n1\n", "text/csv")
    assert no_scope.status_code == 403
    with db.sessions() as session:
        for table in (ReferenceDataset, ReferenceRow):
            assert session.scalar(select(func.count()).select_from(table)) == 0


def test_drift_against_an_uploaded_reference(
    client: Any, db: Database, api_keys: dict[str, str]
) -> None:
    store(db, serving(900, start=T0, hours=3, shift=1.0, seed=3))
    upload(
        client,
        api_keys["ingest"],
        parquet_bytes(training_frame(2000)),
        "application/vnd.apache.parquet",
    )
    response = client.get(
        "/api/v1/models/fraud-scorer/drift",
        params={**WINDOW, "test": "amount:psi", "threshold": "amount:0.2"},
        headers=bearer(api_keys["read"]),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["baseline"]["kind"] == "reference"
    assert body["baseline"]["reference"]["name"] == "train"
    assert body["dataset_drifted"] is True
    assert body["num_features"] == 3
    amount = next(f for f in body["features"] if f["feature"] == "amount")
    assert (amount["test"], amount["threshold"], amount["drifted"]) == ("psi", 0.2, True)
    assert amount["plot"]["type"] == "histogram"
    assert len(amount["plot"]["edges"]) == 21
    country = next(f for f in body["features"] if f["feature"] == "country")
    assert country["plot"]["type"] == "categories"
    assert country["p_value"] is None


def test_drift_errors_are_4xx(client: Any, db: Database, api_keys: dict[str, str]) -> None:
    read = bearer(api_keys["read"])
    nothing = client.get("/api/v1/models/fraud-scorer/drift", params=WINDOW, headers=read)
    assert nothing.status_code == 422
    assert "no records" in nothing.json()["detail"]
    bad_test = client.get(
        "/api/v1/models/fraud-scorer/drift", params={**WINDOW, "test": "amount"}, headers=read
    )
    assert bad_test.status_code == 422
    assert "feature:value" in bad_test.json()["detail"]
    store(db, serving(200, start=T0, hours=3, shift=0, seed=1))
    unknown = client.get(
        "/api/v1/models/fraud-scorer/drift",
        params={
            **WINDOW,
            "test": "amount:kl",
            "baseline_start": (T0 - 3 * HOUR).isoformat(),
            "baseline_end": T0.isoformat(),
        },
        headers=read,
    )
    assert unknown.status_code == 422
    bad_threshold = client.get(
        "/api/v1/models/fraud-scorer/drift",
        params={**WINDOW, "threshold": "amount:nan"},
        headers=read,
    )
    assert bad_threshold.status_code == 422
    half = client.get(
        "/api/v1/models/fraud-scorer/drift",
        params={**WINDOW, "baseline_start": T0.isoformat()},
        headers=read,
    )
    assert half.status_code == 422
    assert "both baseline_start and baseline_end" in half.json()["detail"]
    assert client.get("/api/v1/models/fraud-scorer/drift", params=WINDOW).status_code == 401


def test_timeline_and_skew(client: Any, db: Database, api_keys: dict[str, str]) -> None:
    store(db, serving(600, start=T0, hours=3, shift=0, seed=5))
    frame = training_frame(600)
    upload(client, api_keys["ingest"], parquet_bytes(frame), "application/vnd.apache.parquet")
    read = bearer(api_keys["read"])
    timeline = client.get(
        "/api/v1/models/fraud-scorer/drift/timeline",
        params={**WINDOW, "bucket": "1h"},
        headers=read,
    )
    assert timeline.status_code == 200, timeline.text
    buckets = timeline.json()["buckets"]
    assert len(buckets) == 3
    assert all(b["dataset_drifted"] is False for b in buckets)
    assert set(buckets[0]["features"]) == {"amount", "country", "num_tx"}
    skew = client.get("/api/v1/models/fraud-scorer/skew", params=WINDOW, headers=read)
    assert skew.status_code == 200, skew.text
    body = skew.json()
    assert body["schema"]["missing"] == ["request_id"]
    features = {f["feature"]: f for f in body["distribution"]["features"]}
    assert set(features) == {"amount", "country", "num_tx"}
    assert features["amount"]["test"] == "ks"
    assert features["amount"]["drifted"] is False
    assert body["values"] == []
    bad_bucket = client.get(
        "/api/v1/models/fraud-scorer/drift/timeline",
        params={**WINDOW, "bucket": "5m"},
        headers=read,
    )
    assert bad_bucket.status_code == 422
    no_ref = client.get("/api/v1/models/other/skew", params=WINDOW, headers=read)
    assert no_ref.status_code == 422
    assert "no reference data set" in no_ref.json()["detail"]
