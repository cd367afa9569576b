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


def callback_body(
    dependency: dict[str, Any], values: Sequence[Any], states: Sequence[Any] = ()
) -> dict[str, Any]:
    """The request body the renderer sends for `dependency` with these input (and state)
    values."""
    inputs = [
        {"id": item["id"], "property": item["property"], "value": value}
        for item, value in zip(dependency["inputs"], values, strict=True)
    ]
    state = [
        {"id": item["id"], "property": item["property"], "value": value}
        for item, value in zip(dependency["state"], states, strict=True)
    ]
    return {
        "output": dependency["output"],
        "outputs": _outputs(dependency["output"]),
        "inputs": inputs,
        "changedPropIds": [],
        "state": state,
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
    states: Sequence[Any] = (),
    dependencies: list[dict[str, Any]] | None = None,
) -> httpx.Response:
    """POST one callback; `dependencies` defaults to what the app itself lists."""
    if dependencies is None:
        dependencies = client.get("/ui/_dash-dependencies").json()
    body = callback_body(find_callback(dependencies, output_part), values, states)
    return client.post(UPDATE_PATH, json=body)  # type: ignore[no-any-return]


def response_props(response: httpx.Response) -> dict[str, dict[str, Any]]:
    """{component id: {property: value}} of a callback's answer."""
    payload = response.json()
    return payload["response"]  # type: ignore[no-any-return]


def find_all(component: Any, predicate: Any) -> list[dict[str, Any]]:
    """Every serialized component in the tree for which `predicate(props)` holds."""
    found: list[dict[str, Any]] = []
    if isinstance(component, list):
        for item in component:
            found += find_all(item, predicate)
    elif isinstance(component, dict):
        props = component.get("props", {})
        if isinstance(props, dict):
            if predicate(props):
                found.append(component)
            found += find_all(props.get("children"), predicate)
    return found


def by_id(component: Any, element_id: str) -> dict[str, Any]:
    [found] = find_all(component, lambda props: props.get("id") == element_id)
    return found


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
