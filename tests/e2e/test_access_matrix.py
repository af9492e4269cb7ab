"""Every route x every kind of caller: the status each must get, from one real server.

The routes come from the app itself, so a route added without a rule here fails the test.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.auth import create_user
from api.database import build_engine
from api.settings import Settings
from custody.tsp.protocol import make_request
from tests.e2e.conftest import base_env
from tests.e2e.servers import Service, running_service
from tests.e2e.test_copies import GPS_PHOTO

CALLERS = ("admin", "lawyer", "owner", "field", "auditor", "outsider", "anon", "expired", "revoked")
PUBLIC = (200,) * 9

# Columns as in CALLERS: the admin and a lawyer are members of the case; "owner" is the field
# member who uploaded the item, "field" a field member who did not; "outsider" is a lawyer of
# another case; "anon" sends no token; "expired" and "revoked" send such a token.
# fmt: off
RULES: dict[tuple[str, str], tuple[int, ...]] = {
    #                                                 adm  law  own  fld  aud  out  ano  exp  rev
    ("GET", "/healthz"):                              PUBLIC,
    ("POST", "/v1/cases"):                            (201, 403, 403, 403, 403, 403, 401, 401, 401),
    ("GET", "/v1/cases"):                             (200, 200, 200, 200, 200, 200, 401, 401, 401),
    ("GET", "/v1/cases/{case_id}"):                   (200, 200, 200, 200, 404, 404, 401, 401, 401),
    ("GET", "/v1/cases/{case_id}/members"):           (200, 200, 403, 403, 404, 404, 401, 401, 401),
    ("POST", "/v1/cases/{case_id}/members"):          (201, 403, 403, 403, 404, 404, 401, 401, 401),
    ("DELETE", "/v1/cases/{case_id}/members/{user_id}"):
                                                      (204, 403, 403, 403, 404, 404, 401, 401, 401),
    ("PUT", "/v1/cases/{case_id}/evidence"):          (201, 201, 201, 201, 404, 404, 401, 401, 401),
    ("POST", "/v1/cases/{case_id}/evidence"):         (201, 201, 201, 201, 404, 404, 401, 401, 401),
    ("GET", "/v1/evidence/{sha256}"):                 (200, 200, 200, 404, 404, 404, 401, 401, 401),
    ("GET", "/v1/evidence/{sha256}/custody"):         (200, 200, 200, 404, 200, 404, 401, 401, 401),
    ("GET", "/v1/evidence/{sha256}/metadata"):        (200, 200, 200, 404, 404, 404, 401, 401, 401),
    ("GET", "/v1/evidence/{sha256}/content"):         (200, 200, 403, 404, 404, 404, 401, 401, 401),
    ("POST", "/v1/evidence/{sha256}/copies"):         (201, 201, 403, 404, 404, 404, 401, 401, 401),
    ("GET", "/v1/copies/{sha256}"):                   (200, 200, 200, 404, 404, 404, 401, 401, 401),
    ("GET", "/v1/copies/{sha256}/content"):           (200, 200, 403, 404, 404, 404, 401, 401, 401),
    ("POST", "/v1/cases/{case_id}/exports"):          (202, 202, 403, 403, 404, 404, 401, 401, 401),
    ("GET", "/v1/cases/{case_id}/exports"):           (200, 200, 403, 403, 404, 404, 401, 401, 401),
    ("GET", "/v1/exports/{export_id}/status"):        (200, 200, 403, 403, 404, 404, 401, 401, 401),
    ("GET", "/v1/exports/{export_id}"):               (200, 200, 403, 403, 404, 404, 401, 401, 401),
    ("GET", "/v1/log/checkpoint"):                    PUBLIC,
    ("GET", "/v1/log/checkpoints/{size}"):            PUBLIC,
    ("GET", "/v1/log/checkpoints"):                   PUBLIC,
    ("GET", "/v1/log/vkey"):                          PUBLIC,
    ("GET", "/v1/log/entries/{index}"):               (200, 200, 200, 404, 200, 404, 401, 401, 401),
    ("GET", "/v1/log/entries/{index}/receipt"):       (200, 200, 200, 404, 200, 404, 401, 401, 401),
    ("GET", "/v1/log/checkpoints/{size}/timestamps"): PUBLIC,
    ("GET", "/v1/log/proofs/inclusion"):              (200, 200, 200, 404, 200, 404, 401, 401, 401),
    ("GET", "/v1/log/proofs/consistency"):            PUBLIC,
    ("GET", "/v1/log/lookup/{sha256}"):               (404,) * 9,  # off unless configured
    ("POST", "/tsa"):                                 PUBLIC,
    ("GET", "/v1/tsa/certs"):                         PUBLIC,
    ("GET", "/log/{path}"):                           (200, 403, 403, 403, 200, 403, 401, 401, 401),
    ("GET", "/metrics"):                              (200, 403, 403, 403, 200, 403, 401, 401, 401),
    ("POST", "/v1/admin/users"):                      (201, 403, 403, 403, 403, 403, 401, 401, 401),
    ("GET", "/v1/admin/users"):                       (200, 403, 403, 403, 403, 403, 401, 401, 401),
    ("POST", "/v1/admin/users/{user_id}/tokens"):     (201, 403, 403, 403, 403, 403, 401, 401, 401),
    ("DELETE", "/v1/admin/tokens/{token_id}"):        (204, 403, 403, 403, 403, 403, 401, 401, 401),
    ("GET", "/v1/admin/pseudonyms/{pseudonym}"):      (200, 403, 403, 403, 403, 403, 401, 401, 401),
}
# fmt: on


def app_routes() -> set[tuple[str, str]]:
    """Every (method, path) the app serves through an APIRoute, `{x:path}` as `{x}`."""
    found: set[tuple[str, str]] = set()
    for route in create_app(Settings()).routes:
        contexts: Iterator[Any] = (
            route.effective_route_contexts()  # type: ignore[attr-defined]
            if hasattr(route, "effective_route_contexts")
            else iter(())
        )
        for context in contexts:
            path = context.path.replace(":path}", "}")
            found.update((method, path) for method in context.methods)
    return found


def test_every_route_has_a_rule() -> None:
    routes = app_routes()
    assert ("POST", "/tsa") in routes
    assert ("GET", "/log/{path}") in routes
    missing = sorted(routes - RULES.keys())
    assert not missing, f"routes without an access rule in RULES: {missing}"
    assert not sorted(RULES.keys() - routes), "rules for routes that no longer exist"


@dataclass
class World:
    tokens: dict[str, str | None]
    params: dict[str, str]
    bodies: dict[tuple[str, str], Callable[[], dict[str, Any]]]


@pytest.fixture
def matrix_service(tmp_path: Path) -> Iterator[Service]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = base_env(data_dir)
    env["CUSTODY_AUTH_FAILURES_PER_MINUTE"] = "100000"  # the expired/revoked columns fail a lot
    with running_service(env, data_dir) as service:
        yield service


def _ok(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def build_world(service: Service) -> World:
    admin = service.client()
    case = _ok(admin.post("/v1/cases", json={"title": "Matrix"}))["id"]
    other = _ok(admin.post("/v1/cases", json={"title": "Elsewhere"}))["id"]
    made: dict[str, dict[str, Any]] = {}
    for name, role, cases in (
        ("lawyer", "lawyer", [case]),
        ("owner", "field", [case]),
        ("field", "field", [case]),
        ("auditor", "auditor", []),
        ("outsider", "lawyer", [other]),
        ("revoked", "lawyer", [case]),
        ("spare", "field", [case]),
    ):
        body = {"name": name, "role": role, "cases": cases}
        made[name] = _ok(admin.post("/v1/admin/users", json=body))
    _ok(admin.delete(f"/v1/admin/tokens/{made['revoked']['token_id']}"), 204)
    engine = build_engine(Settings(data_dir=service.data_dir).resolved_database_url)
    past = datetime.now(UTC) - timedelta(days=1)
    expired = create_user(
        engine, name="expired", role="lawyer", now=past, cases=[case], expires_at=past
    )
    engine.dispose()
    throwaway = _ok(admin.post(f"/v1/admin/users/{made['spare']['user_id']}/tokens", json={}))

    owner = {"Authorization": f"Bearer {made['owner']['token']}"}
    photo = GPS_PHOTO.read_bytes()
    upload = admin.put(f"/v1/cases/{case}/evidence?filename=site.jpg", content=photo, headers=owner)
    ingested = _ok(upload)
    sha = ingested["sha256"]
    copy = _ok(admin.post(f"/v1/evidence/{sha}/copies", json={"profile": "share"}))
    export = _ok(
        admin.post(
            f"/v1/cases/{case}/exports",
            json={"items": [sha, copy["sha256"]], "purpose": "Matrix submission"},
        ),
        202,
    )
    _wait_for_export(admin, export["id"])
    size = _wait_for_size(admin, copy["index"] + 1)
    admin.close()

    tokens: dict[str, str | None] = {
        name: made[name]["token"] for name in ("lawyer", "owner", "field", "auditor", "outsider")
    }
    tokens.update(
        admin=service.token,
        anon=None,
        expired=expired.issued.token,
        revoked=made["revoked"]["token"],
    )
    params = {
        "case_id": case,
        "user_id": made["spare"]["user_id"],
        "sha256": sha,
        "copy": copy["sha256"],
        "index": str(ingested["index"]),
        "size": str(size),
        "path": f"tile/0/000.p/{size}",
        "token_id": throwaway["token_id"],
        "pseudonym": made["owner"]["pseudonym"],
        "export_id": export["id"],
    }
    query = make_request(b"matrix", nonce=int.from_bytes(os.urandom(8), "big"))
    bodies: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
        ("POST", "/v1/cases"): lambda: {"json": {"title": "Another"}},
        ("POST", "/v1/cases/{case_id}/members"): lambda: {"json": {"user_id": params["user_id"]}},
        ("PUT", "/v1/cases/{case_id}/evidence"): lambda: {"content": os.urandom(32)},
        ("POST", "/v1/cases/{case_id}/evidence"): lambda: {
            "files": {"file": ("note.bin", os.urandom(32), "application/octet-stream")}
        },
        ("POST", "/v1/evidence/{sha256}/copies"): lambda: {"json": {"profile": "share"}},
        ("POST", "/v1/cases/{case_id}/exports"): lambda: {
            "json": {"items": [sha], "purpose": "Matrix submission"}
        },
        ("POST", "/tsa"): lambda: {
            "content": query,
            "headers": {"Content-Type": "application/timestamp-query"},
        },
        ("POST", "/v1/admin/users"): lambda: {"json": {"name": "new", "role": "lawyer"}},
        ("POST", "/v1/admin/users/{user_id}/tokens"): lambda: {"json": {"label": "matrix"}},
    }
    return World(tokens, params, bodies)


def _wait_for_export(client: httpx.Client, export_id: str) -> None:
    for _ in range(600):
        status = _ok(client.get(f"/v1/exports/{export_id}/status"), 200)
        if status["status"] != "building":
            assert status["status"] == "ready", status
            return
        time.sleep(0.1)
    raise AssertionError(f"export {export_id} was never built")


def _wait_for_size(client: httpx.Client, size: int) -> int:
    for _ in range(300):
        sizes = _ok(client.get("/v1/log/checkpoints"), 200)["sizes"]
        if sizes and sizes[-1] >= size:
            return int(sizes[-1])
        time.sleep(0.05)
    raise AssertionError(f"the log never reached size {size}")


def _url(method: str, path: str, params: dict[str, str]) -> str:
    values = dict(params)
    if path.startswith("/v1/copies/"):
        values["sha256"] = params["copy"]
    url = path.format(**values)
    if path == "/v1/log/proofs/inclusion":
        url += f"?index={params['index']}&size={params['size']}"
    if path == "/v1/log/proofs/consistency":
        url += f"?old=1&new={params['size']}"
    return url


@pytest.mark.skipif(not GPS_PHOTO.exists(), reason="../shared/corpus is absent")
def test_every_route_answers_every_caller_as_the_rules_say(matrix_service: Service) -> None:
    world = build_world(matrix_service)
    secrets = [t for t in world.tokens.values() if t]
    wrong: list[str] = []
    with httpx.Client(base_url=matrix_service.base_url, timeout=60) as client:
        for (method, path), expected in sorted(RULES.items()):
            for caller, status in zip(CALLERS, expected, strict=True):
                kwargs = world.bodies.get((method, path), dict)()
                token = world.tokens[caller]
                headers = dict(kwargs.pop("headers", {}))
                if token:
                    headers["Authorization"] = f"Bearer {token}"
                url = _url(method, path, world.params)
                response = client.request(method, url, headers=headers, **kwargs)
                if response.status_code != status:
                    wrong.append(f"{method} {path} as {caller}: {response.status_code} != {status}")
                if response.status_code >= 400:
                    assert response.headers["content-type"].startswith("application/problem+json")
                assert not any(secret in response.text for secret in secrets), url
    assert not wrong, "\n".join(wrong)
    logs = "".join(p.read_text(errors="replace") for p in matrix_service.data_dir.glob("*.log"))
    assert not any(secret in logs for secret in secrets), "a token reached the server log"


@pytest.fixture
def limited_service(tmp_path: Path) -> Iterator[Service]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = base_env(data_dir)
    env.update(
        CUSTODY_AUTH_FAILURES_PER_MINUTE="3",
        CUSTODY_HASH_LOOKUP_ENABLED="true",
        CUSTODY_HASH_LOOKUP_PER_MINUTE="3",
    )
    with running_service(env, data_dir) as service:
        yield service


def _from(client: str, token: str | None = None) -> dict[str, str]:
    # uvicorn takes the client address from X-Forwarded-For when the peer is loopback.
    headers = {"X-Forwarded-For": client}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def test_failed_authentication_is_limited_per_client(limited_service: Service) -> None:
    with httpx.Client(base_url=limited_service.base_url, timeout=60) as client:
        guess = "cst_" + "A" * 43
        for _ in range(3):
            refused = client.get("/v1/cases", headers=_from("198.51.100.7", guess))
            assert refused.status_code == 401
            assert guess not in refused.text
        # Once over the limit, even the right token waits: guessing gains nothing.
        held = client.get("/v1/cases", headers=_from("198.51.100.7", limited_service.token))
        assert held.status_code == 429, held.text
        assert held.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(held.headers["Retry-After"]) <= 60
        other = client.get("/v1/cases", headers=_from("198.51.100.8", limited_service.token))
        assert other.status_code == 200
        # Asking without a token is no failed guess.
        for _ in range(5):
            assert client.get("/v1/cases", headers=_from("198.51.100.9")).status_code == 401
        fine = client.get("/v1/cases", headers=_from("198.51.100.9", limited_service.token))
        assert fine.status_code == 200


def test_a_peer_not_trusted_as_a_proxy_cannot_name_another_client(tmp_path: Path) -> None:
    """X-Forwarded-For counts only from the proxies configured: anyone else could dodge
    the limit by naming a fresh address with each guess."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    env = base_env(data_dir)
    env.update(CUSTODY_AUTH_FAILURES_PER_MINUTE="3", CUSTODY_FORWARDED_ALLOW_IPS="192.0.2.1")
    with (
        running_service(env, data_dir) as service,
        httpx.Client(base_url=service.base_url, timeout=60) as client,
    ):
        guess = "cst_" + "B" * 43
        for n in range(3):
            refused = client.get("/v1/cases", headers=_from(f"198.51.100.{n}", guess))
            assert refused.status_code == 401
        held = client.get("/v1/cases", headers=_from("198.51.100.99", guess))
        assert held.status_code == 429, held.text


def test_hash_lookup_when_enabled_is_public_and_limited(limited_service: Service) -> None:
    with limited_service.client() as admin:
        case = _ok(admin.post("/v1/cases", json={"title": "Lookup"}))["id"]
        ingested = _ok(admin.put(f"/v1/cases/{case}/evidence", content=os.urandom(64)))
    with httpx.Client(base_url=limited_service.base_url, timeout=60) as client:
        found = client.get(f"/v1/log/lookup/{ingested['sha256']}", headers=_from("203.0.113.1"))
        assert found.json() == {"in_log": True, "index": ingested["index"]}
        absent = client.get(f"/v1/log/lookup/{'0' * 64}", headers=_from("203.0.113.1"))
        assert absent.json() == {"in_log": False, "index": None}
        odd = client.get("/v1/log/lookup/not-a-hash", headers=_from("203.0.113.1"))
        assert odd.json() == {"in_log": False, "index": None}
        held = client.get(f"/v1/log/lookup/{ingested['sha256']}", headers=_from("203.0.113.1"))
        assert held.status_code == 429
        assert held.headers["content-type"].startswith("application/problem+json")
        assert int(held.headers["Retry-After"]) >= 1
        other = client.get(f"/v1/log/lookup/{ingested['sha256']}", headers=_from("203.0.113.2"))
        assert other.status_code == 200
