"""The diagnosis against incident scenarios built from the contract formats alone
(tests/integration/pipeline/diagnosis_scenarios.py): everything goes in through the public
ingest endpoints (records, events, metrics, OTLP/JSON traces, profiler uploads) and the
answer comes from GET /api/v1/diagnoses, on SQLite and Postgres.

Each scenario has one injected cause (two for the co-occurring ones) or none; the diagnosis
must rank the injected cause first with its scope and a fitting action, or say that nothing
stands out.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import bearer
from tests.integration.pipeline import diagnosis_scenarios as scenarios

#: The same incidents seen another way (see `scenarios.variant`): a late or transient onset, low
#: traffic, a 6-hour or a 15-minute window, a weaker effect, hosts named by a tag that is not
#: rolled up, spans linked by a model attribute instead of trace ids, other random draws.
VARIANTS = (
    ("bad_deploy_rollout", "short"),
    ("canary_slow", "late"),
    ("host_thermal", "weak"),
    ("host_power_cap", "transient"),
    ("host_cpu_saturation", "node"),
    ("gpu_memory_pressure", "node"),
    ("gpu_memory_fleet", "late"),
    ("traffic_surge", "transient"),
    ("feature_store_slow", "spanattr"),
    ("null_rate_spike", "low"),
    ("prompt_length_shift", "long"),
    ("quiet_low_traffic_15m", "seed1"),
    ("quiet_diurnal_6h", "short"),
    ("quiet_slower_host_always", "short"),
    ("quiet_high_traffic_15m", "late"),
)


def _specs() -> list[Any]:
    specs = [pytest.param(make(), id=name) for name, make in scenarios.SPECS.items()]
    for name, how in VARIANTS:
        spec = scenarios.variant(scenarios.SPECS[name](), how)
        specs.append(pytest.param(spec, id=spec.name, marks=pytest.mark.slow))
    return specs


@pytest.mark.parametrize("spec", _specs())
def test_the_diagnosis_names_the_injected_cause(
    client: Any, api_keys: dict[str, str], spec: scenarios.Spec
) -> None:
    scenario = scenarios.build(spec)
    scenarios.send(client, bearer(api_keys["ingest"]), scenario)

    body = scenarios.request_diagnosis(client, bearer(api_keys["read"]), spec)

    verdict = scenarios.judge(spec, body)
    assert verdict.ok, (verdict, body["symptom"])
