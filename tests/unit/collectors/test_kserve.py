from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from collectors.kserve import (
    CloudEvent,
    InferenceHalf,
    KServePayloadError,
    decode_half,
    join_halves,
    read_cloudevents,
)
from tests.http_fixtures import read_http


def events_of(name: str) -> list[CloudEvent]:
    request = read_http(name)
    return read_cloudevents(request.headers, request.body)


def half_of(name: str, **options: Any) -> InferenceHalf:
    [event] = events_of(name)
    return decode_half(event, **options)


def pair(stem: str, **options: Any) -> list[dict[str, Any]]:
    return join_halves(
        half_of(f"{stem}-request.http", **options), half_of(f"{stem}-response.http", **options)
    )


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# --- CloudEvents ------------------------------------------------------------------------------


def test_a_binary_mode_event_as_kserve_sends_it() -> None:
    [event] = events_of("v1-binary-request.http")

    assert event.id == "0009174a-24a8-4603-b098-09c8799950e9"
    assert event.type == "org.kubeflow.serving.inference.request"
    assert event.source == "http://localhost:9081/"
    assert event.time == at("2026-11-16T14:05:00.078952+00:00")  # ns cut to µs
    assert event.extensions == {
        "component": "predictor",
        "endpoint": "",
        "inferenceservicename": "sklearn-iris",
        "metadata": "{}",
        "namespace": "default",
    }
    assert event.data == {"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]}


def test_structured_mode_and_base64_data() -> None:
    [plain] = events_of("v1-structured-request.http")
    [encoded] = events_of("v2-structured-base64-response.http")

    assert plain.extensions["endpoint"] == "canary"
    assert plain.data["instances"][0]["amount"] == 312.5
    assert encoded.type == "org.kubeflow.serving.inference.response"
    assert encoded.data["outputs"][0]["data"] == ["billing"]


def test_a_batch_of_structured_events() -> None:
    request = read_http("v1-structured-request.http")
    response = read_http("v1-structured-response.http")
    body = b"[" + request.body + b"," + response.body + b"]"

    events = read_cloudevents({"Content-Type": "application/cloudevents-batch+json"}, body)

    assert [e.type.rsplit(".", 1)[1] for e in events] == ["request", "response"]
    assert {e.id for e in events} == {"e2a7c9b4-3f18-4d6a-9c0e-7b5d1a2f8e36"}


def test_header_values_are_percent_decoded() -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "a%20b",
        "ce-source": "s",
        "ce-type": "org.kubeflow.serving.inference.request",
        "ce-namespace": "team%2Fa",
    }

    [event] = read_cloudevents(headers, b'{"instances": [1]}')

    assert (event.id, event.extensions["namespace"]) == ("a b", "team/a")


@pytest.mark.parametrize(
    ("fixture", "status", "message"),
    [
        ("missing-id.http", 422, "header ce-id is missing or empty"),
        ("feedback-type.http", 422, "type 'io.seldon.serving.feedback' is not an inference"),
        ("binary-tensor.http", 415, "'application/octet-stream': only JSON payloads"),
        ("not-json.http", 400, "the event data is not valid JSON"),
    ],
)
def test_events_observe_cannot_use_are_refused_with_the_reason(
    fixture: str, status: int, message: str
) -> None:
    with pytest.raises(KServePayloadError, match=message) as raised:
        events_of(f"errors/{fixture}")

    assert raised.value.status == status


def test_a_request_without_cloudevents_headers_is_not_a_cloudevent() -> None:
    with pytest.raises(KServePayloadError, match="not a CloudEvent") as raised:
        read_cloudevents({"Content-Type": "application/json"}, b'{"instances": [1]}')

    assert raised.value.status == 400


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"id": "1", "source": "s", "type": "t"}, "attribute specversion is missing"),
        ({"specversion": "0.1", "id": "1", "source": "s", "type": "t"}, "specversion '0.1'"),
        ({"specversion": "1.0", "id": "x" * 181, "source": "s", "type": "t"}, "longer than 180"),
        (
            {
                "specversion": "1.0",
                "id": "1",
                "source": "s",
                "type": "org.kubeflow.serving.inference.request",
                "time": "yesterday",
            },
            "attribute time 'yesterday' is not an RFC 3339 timestamp",
        ),
        (
            {
                "specversion": "1.0",
                "id": "1",
                "source": "s",
                "type": "org.kubeflow.serving.inference.request",
                "data_base64": "not base64!",
            },
            "data_base64 is not valid base64",
        ),
    ],
)
def test_invalid_structured_events_name_the_attribute(event: dict[str, Any], message: str) -> None:
    with pytest.raises(KServePayloadError, match=message):
        read_cloudevents({"content-type": "application/cloudevents+json"}, orjson.dumps(event))


# --- payloads ---------------------------------------------------------------------------------


def test_v1_instances_become_positional_features() -> None:
    half = half_of("v1-binary-request.http")

    assert [row.features for row in half.rows] == [
        {"0": 6.8, "1": 2.8, "2": 4.8, "3": 1.4},
        {"0": 6.0, "1": 3.4, "2": 4.5, "3": 1.6},
    ]
    assert [row.input_size for row in half.rows] == [4, 4]


def test_v1_pair_batch_becomes_one_record_per_instance() -> None:
    records = pair("v1-binary")

    assert [r["request_id"] for r in records] == [
        "0009174a-24a8-4603-b098-09c8799950e9#0",
        "0009174a-24a8-4603-b098-09c8799950e9#1",
    ]
    first = records[0]
    assert (first["model"], first["model_version"], first["status"]) == (
        "sklearn-iris",
        "unknown",
        "ok",
    )
    assert first["timestamp"] == at("2026-11-16T14:05:00.078952+00:00")
    assert first["latency_ms"] == pytest.approx(121.736 - 78.952)
    assert first["tags"] == {"namespace": "default", "component": "predictor"}  # endpoint empty
    assert [r["prediction"] for r in records] == [1, 1]
    assert first["input_size"] == 4


def test_v2_tensors_split_by_the_batch_dimension() -> None:
    records = pair("v2-binary")

    assert len(records) == 3
    assert records[2]["features"] == {
        "input-0[0]": 5.1,
        "input-0[1]": 3.5,
        "input-0[2]": 1.4,
        "input-0[3]": 0.2,
        "source": "web",
    }
    assert records[2]["input_size"] == 5
    assert records[0]["prediction"] == {"predict": 1, "predict_proba": [0.01, 0.87, 0.12]}
    assert records[2]["prediction"] == {"predict": 0, "predict_proba": [0.97, 0.02, 0.01]}
    assert (records[0]["model"], records[0]["model_version"]) == ("iris-v2", "v3")
    assert records[0]["tags"] == {"namespace": "ml-serving", "component": "predictor"}


def test_v1_object_instances_keep_their_names_and_one_instance_keeps_the_event_id() -> None:
    [record] = pair("v1-structured")

    assert record["request_id"] == "e2a7c9b4-3f18-4d6a-9c0e-7b5d1a2f8e36"
    assert record["features"] == {
        "amount": 312.5,
        "country": "DE",
        "card_present": False,
        "merchant.category": "5411",
        "merchant.risk": 0.12,
    }
    assert record["prediction"] == 0.031
    assert record["model"] == "fraud-scorer"
    assert record["tags"]["endpoint"] == "canary"
    assert record["latency_ms"] == pytest.approx(41.0)


def test_v2_single_strings_and_the_model_version_of_the_response() -> None:
    [record] = pair("v2-structured-base64")

    assert record["features"] == {"text": "my card was charged twice"}
    assert record["prediction"] == "billing"
    assert (record["model"], record["model_version"]) == ("ticket-router", "2024-11")
    assert record["latency_ms"] == pytest.approx(75.0)


def test_seldon_messages_use_their_names() -> None:
    records = pair("seldon-binary")

    assert records[1]["features"] == {"age": 28, "workclass": "State-gov", "hours_per_week": 20}
    assert records[0]["prediction"] == {"t:0": 0.8626, "t:1": 0.1374}
    assert records[0]["model"] == "income-classifier"
    assert records[0]["tags"] == {
        "namespace": "seldon",
        "endpoint": "default",
        "modelid": "classifier",
    }
    assert records[0]["latency_ms"] == pytest.approx(12.5)


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("v2-shape-mismatch.http", "input 'input-0' has 7 values for shape \\[2, 4\\]"),
        ("no-instances.http", "the request has no instances, inputs or data"),
    ],
)
def test_payloads_observe_cannot_read_name_the_problem(fixture: str, message: str) -> None:
    with pytest.raises(KServePayloadError, match=message) as raised:
        half_of(f"errors/{fixture}")

    assert raised.value.status == 422
    assert "request event 1a2b3c4d-0000-4000-8000-00000000e001" in str(raised.value)


def test_a_response_with_more_predictions_than_instances_cannot_be_joined() -> None:
    request = half_of("errors/count-mismatch-request.http")
    response = half_of("errors/count-mismatch-response.http")

    with pytest.raises(KServePayloadError, match="has 3 predictions for the 2 instances"):
        join_halves(request, response)


def event(kind: str, data: Any, **extensions: str) -> CloudEvent:
    return CloudEvent(
        id="ev-1",
        source="src",
        type=f"org.kubeflow.serving.inference.{kind}",
        time=dt.datetime(2026, 11, 16, 14, tzinfo=dt.UTC),
        extensions=dict(extensions),
        data=data,
    )


def test_columnar_v1_inputs() -> None:
    half = decode_half(event("request", {"inputs": {"a": [1, 2], "b": ["x", "y"]}}))

    assert [row.features for row in half.rows] == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


def test_v1_inputs_as_rows_and_scalar_instances() -> None:
    rows = decode_half(event("request", {"inputs": [[1, 2]]})).rows
    texts = decode_half(event("request", {"instances": ["hello", "world"]})).rows

    assert rows[0].features == {"0": 1, "1": 2}
    assert [row.features for row in texts] == [{"input": "hello"}, {"input": "world"}]


def test_large_instances_keep_only_their_size() -> None:
    image = [[[0.5] * 3] * 32] * 32  # 3072 values
    half = decode_half(event("request", {"instances": [image]}), max_features=1000)

    assert half.rows[0].features is None
    assert half.rows[0].input_size == 3072


def test_large_predictions_are_left_out() -> None:
    half = decode_half(event("response", {"predictions": [[0.1] * 2000, 1]}), max_features=1000)

    assert half.predictions == [None, 1]


def test_strings_too_long_to_store_and_integers_beyond_64_bits() -> None:
    half = decode_half(
        event("request", {"instances": [{"doc": "x" * 70_000, "id": 2**70, "n": 1}]})
    )

    assert half.rows[0].features == {"id": float(2**70), "n": 1}
    assert half.rows[0].input_size == 3


def test_error_responses_make_error_records() -> None:
    request = decode_half(event("request", {"instances": [[1], [2]]}, inferenceservicename="m"))
    response = decode_half(event("response", {"error": "model m is not ready"}))

    records = join_halves(request, response)

    assert [(r["status"], r["error"]) for r in records] == [("error", "model m is not ready")] * 2
    assert all("prediction" not in r for r in records)


def test_overrides_win_over_what_the_events_say() -> None:
    request = decode_half(
        event("request", {"instances": [[1]]}, inferenceservicename="isvc"),
        overrides={"model": "fraud-scorer", "model_version": "v7"},
    )
    response = decode_half(event("response", {"model_name": "other", "outputs": [1]}))

    [record] = join_halves(request, response)

    assert (record["model"], record["model_version"]) == ("fraud-scorer", "v7")


def test_without_any_model_name_the_pair_cannot_be_joined() -> None:
    request = decode_half(event("request", {"instances": [[1]]}))
    response = decode_half(event("response", {"predictions": [1]}))

    with pytest.raises(KServePayloadError, match=r"no model name.*\?model=NAME"):
        join_halves(request, response)


def test_a_half_survives_its_stay_in_a_json_column() -> None:
    for name in ("v2-binary-request.http", "seldon-binary-response.http"):
        half = half_of(name, overrides={"model": "m"})

        stored = orjson.loads(orjson.dumps(half.to_json()))

        assert InferenceHalf.from_json(stored) == half


def test_seldon_tensors_split_by_their_shape() -> None:
    data = {"data": {"names": ["a", "b"], "tensor": {"shape": [2, 2], "values": [1, 2, 3, 4]}}}

    half = decode_half(event("request", data))

    assert [row.features for row in half.rows] == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]


def test_v2_tensors_without_a_common_batch_dimension_are_one_instance() -> None:
    inputs = [
        {"name": "tokens", "shape": [1, 3], "datatype": "INT64", "data": [[101, 2023, 102]]},
        {"name": "temperature", "shape": [], "datatype": "FP32", "data": 0.7},
    ]

    [row] = decode_half(event("request", {"inputs": inputs})).rows

    assert row.features == {
        "tokens[0]": 101,
        "tokens[1]": 2023,
        "tokens[2]": 102,
        "temperature": 0.7,
    }
    assert row.input_size == 4
