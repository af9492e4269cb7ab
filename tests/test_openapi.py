"""The committed openapi.yaml is the one the app generates."""

from __future__ import annotations

from pathlib import Path

import yaml

from api.app import create_app
from api.settings import Settings

SPEC = Path(__file__).parents[1] / "openapi.yaml"


def test_openapi_yaml_matches_the_app(tmp_path: Path) -> None:
    generated = create_app(Settings(data_dir=tmp_path)).openapi()
    committed = yaml.safe_load(SPEC.read_text())
    assert committed == generated, "openapi.yaml is stale: regenerate it with `make openapi`"


# Public by design: a TSA's certificates are public (RFC 3161 verifiers need them).
PUBLIC_V1 = {("get", "/v1/tsa/certs")}


def test_every_v1_operation_documents_401() -> None:
    spec = yaml.safe_load(SPEC.read_text())
    paths = {p: ops for p, ops in spec["paths"].items() if p.startswith("/v1/")}
    assert paths
    for path, operations in paths.items():
        for method, operation in operations.items():
            if (method, path) in PUBLIC_V1:
                assert "401" not in operation["responses"]
                continue
            assert "401" in operation["responses"], f"{method.upper()} {path} lacks a 401"
