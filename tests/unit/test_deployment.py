"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine); these tests keep
them consistent with the code: real settings, migrations before the server, health checks."""

from __future__ import annotations

from pathlib import Path

import yaml

from observe.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _settings_env_names() -> set[str]:
    return {f"OBSERVE_{name.upper()}" for name in Settings.model_fields}


def test_compose_runs_postgres_migrations_then_the_server() -> None:
    services = _compose()["services"]
    assert set(services) == {"postgres", "migrate", "observe"}
    assert "healthcheck" in services["postgres"]
    assert services["migrate"]["command"] == ["observe", "db", "upgrade"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    server = services["observe"]
    assert server["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert server["environment"]["OBSERVE_MIGRATE_ON_START"] == "false"
    assert "/healthz" in " ".join(server["healthcheck"]["test"])
    assert any(volume.startswith("postgres-data:") for volume in services["postgres"]["volumes"])


def test_compose_sets_only_real_settings() -> None:
    services = _compose()["services"]
    for name in ("migrate", "observe"):
        names = {key for key in services[name]["environment"] if key.startswith("OBSERVE_")}
        assert names <= _settings_env_names(), names - _settings_env_names()


def test_compose_database_url_is_accepted_by_settings() -> None:
    environment = _compose()["services"]["observe"]["environment"]
    url = environment["OBSERVE_DATABASE_URL"].replace(
        "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}", "secret"
    )
    settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    assert settings.database_url.startswith("postgresql+psycopg://observe:secret@postgres:5432/")


def test_dockerfile_copies_every_package_and_checks_health() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("observe", "collectors", "analyzers", "dashboards", "migrations"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert "/healthz" in dockerfile
    assert 'CMD ["observe", "serve"]' in dockerfile
