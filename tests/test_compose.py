"""docker-compose.yml parses and names what the app needs (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from api.settings import Settings

COMPOSE = Path(__file__).parents[1] / "docker-compose.yml"


def load() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def test_two_api_replicas_behind_one_port() -> None:
    services = load()["services"]
    apis = [s for s in services.values() if s.get("image") == "custody:latest"]
    assert len(apis) == 2
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert all(str(p).startswith("127.0.0.1:") for p in published)
    proxy = services["proxy"]
    assert all(name in " ".join(proxy["command"]) for name in ("api-1", "api-2"))


def test_api_environment_names_known_settings_and_no_secrets() -> None:
    services = load()["services"]
    known = {f"CUSTODY_{name.upper()}" for name in Settings.model_fields}
    for name in ("api-1", "api-2"):
        env = services[name]["environment"]
        assert set(env) <= known, set(env) - known
        assert env["CUSTODY_STORAGE_BACKEND"] == "s3"
        assert env["CUSTODY_DATABASE_URL"].startswith("postgresql+psycopg://")
        for key in (
            "CUSTODY_S3_SECRET_ACCESS_KEY",
            "CUSTODY_S3_ACCESS_KEY_ID",
            "CUSTODY_LOG_PRIVATE_KEY",
            "CUSTODY_LOG_ORIGIN",
        ):
            assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", env[key]), (
                f"{key} must come from the environment"
            )
        assert "healthz" in " ".join(services[name]["healthcheck"]["test"])


def test_backing_services_have_healthchecks_volumes_and_only_the_s3_port() -> None:
    compose = load()
    services = compose["services"]
    for name in ("postgres", "seaweedfs"):
        assert "healthcheck" in services[name]
        assert services[name]["volumes"]
    assert services["postgres"].get("ports") is None
    assert services["seaweedfs"]["ports"] == ["127.0.0.1:8333:8333"]
    assert set(compose["volumes"]) >= {"postgres-data", "seaweedfs-data"}
    assert "${POSTGRES_PASSWORD:?" in services["postgres"]["environment"]["POSTGRES_PASSWORD"]


def test_the_replicas_trust_the_proxy_and_only_its_network_to_name_clients() -> None:
    """Per-client rate limits must see the clients, not the proxy's one address."""
    compose = load()
    services = compose["services"]
    subnet = compose["networks"]["front"]["ipam"]["config"][0]["subnet"]
    assert services["proxy"]["networks"] == ["front"]
    for name in ("api-1", "api-2"):
        trusted = Settings(
            forwarded_allow_ips=services[name]["environment"]["CUSTODY_FORWARDED_ALLOW_IPS"]
        ).forwarded_allow_ips
        assert trusted == [subnet]
        assert "front" in services[name]["networks"]
    for name in ("postgres", "seaweedfs"):  # on the default network: they cannot pose as it
        assert "networks" not in services[name]
