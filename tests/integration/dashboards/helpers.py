"""Calling the UI's Dash callbacks over HTTP, as the browser's Dash renderer does."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

UPDATE_PATH = "/ui/_dash-update-component"


def find_callback(dependencies: list[dict[str, Any]], output_part: str) -> dict[str, Any]:
    """The callback whose output string contains `output_part`, e.g. "overview-status"."""
    [found] = [dep for dep in dependencies if output_part in dep["output"]]
    return found


def callback_body(dependency: dict[str, Any], values: Sequence[Any]) -> dict[str, Any]:
    """The request body the renderer sends for `dependency` with these input values."""
    inputs = [
        {"id": item["id"], "property": item["property"], "value": value}
        for item, value in zip(dependency["inputs"], values, strict=True)
    ]
    return {
        "output": dependency["output"],
        "outputs": _outputs(dependency["output"]),
        "inputs": inputs,
        "changedPropIds": [],
        "state": [],
    }


def _outputs(output: str) -> list[dict[str, Any]] | dict[str, Any]:
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    outputs = []
    for part in parts:
        component, prop = part.rsplit(".", 1)
        outputs.append(
            {
                "id": json.loads(component) if component.startswith("{") else component,
                "property": prop,
            }
        )
    return outputs if output.startswith("..") else outputs[0]


def call(
    client: httpx.Client | Any,
    output_part: str,
    values: Sequence[Any],
    *,
    dependencies: list[dict[str, Any]] | None = None,
) -> httpx.Response:
    """POST one callback; `dependencies` defaults to what the app itself lists."""
    if dependencies is None:
        dependencies = client.get("/ui/_dash-dependencies").json()
    body = callback_body(find_callback(dependencies, output_part), values)
    return client.post(UPDATE_PATH, json=body)  # type: ignore[no-any-return]


def response_props(response: httpx.Response) -> dict[str, dict[str, Any]]:
    """{component id: {property: value}} of a callback's answer."""
    payload = response.json()
    return payload["response"]  # type: ignore[no-any-return]


def texts(component: Any) -> list[str]:
    """Every string in a serialized component tree, in document order."""
    if isinstance(component, str):
        return [component]
    if isinstance(component, list):
        return [text for item in component for text in texts(item)]
    if isinstance(component, dict):
        props = component.get("props", component)
        return texts(props.get("children")) if isinstance(props, dict) else []
    if isinstance(component, int | float):
        return [str(component)]
    return []
