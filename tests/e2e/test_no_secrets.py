"""No token, token hash, user name or storage secret in server logs, errors or the log."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from api.auth import hash_token
from custody.checkpoint import open_checkpoint
from custody.note import parse_vkey
from custody.tiles import TILE_WIDTH, Bundle, bundle_path
from tests.e2e.conftest import base_env
from tests.e2e.servers import Service, create_user, running_service
from tests.e2e.test_access_events import Account, add_user, integrated
from tests.e2e.test_ingest import event_count, new_case, repr_digest

ADMIN_NAME = "Ingrid Halvorsen"


class Errors:
    """Every error answer a client saw: status line, headers and body."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def __call__(self, response: httpx.Response) -> None:
        if response.status_code >= 400:
            response.read()
            headers = "".join(f"{k}: {v}\n" for k, v in response.headers.items())
            self.seen.append(headers.encode() + response.content)


def test_secrets_stay_out_of_logs_errors_and_the_custody_log(
    deployment: dict[str, str],
) -> None:
    data_dir = Path(deployment["CUSTODY_DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    # The access log is off by default (see below); on, it must hold no secret either.
    deployment["CUSTODY_ACCESS_LOG"] = "true"
    # Made before the server starts: the CLI would queue behind it for SQLite's write lock.
    admin_token = create_user(deployment, ADMIN_NAME)
    accounts = [
        add_user(deployment, "Oksana Melnyk", "lawyer"),
        add_user(deployment, "Dawit Tesfaye", "field"),
        add_user(deployment, "Marguerite Duval", "auditor"),
    ]
    errors = Errors()
    with running_service(deployment, data_dir, token=admin_token) as service:
        wrong, entries = _exercise(service, errors, *accounts)

    tokens = [admin_token, *(account.token for account in accounts), wrong]
    secrets = {
        **{f"token {t[:8]}": t for t in tokens},
        **{f"hash of token {t[:8]}": hash_token(t) for t in tokens},
        **{f"name {n}": n for n in [ADMIN_NAME, *(a.name for a in accounts)]},
    }
    if "CUSTODY_S3_SECRET_ACCESS_KEY" in deployment:
        secrets["the S3 secret"] = deployment["CUSTODY_S3_SECRET_ACCESS_KEY"]
    server_log = b"".join(path.read_bytes() for path in data_dir.glob("server-*.log"))
    assert b"GET /v1/evidence/" in server_log  # the requests were logged: the grep means something
    assert len(errors.seen) >= 8
    places = {"the server log": [server_log], "error answers": errors.seen, "log": entries}
    if "CUSTODY_S3_SECRET_ACCESS_KEY" not in deployment:
        places["stored bundles"] = [p.read_bytes() for p in _stored_bundles(data_dir)]
        assert places["stored bundles"]
    leaks = [
        f"{what} in {where}"
        for where, texts in places.items()
        for text in texts
        for what, secret in secrets.items()
        if secret.encode() in text
    ]
    assert leaks == []


def test_by_default_the_server_log_names_no_client_and_no_request(tmp_path: Path) -> None:
    """A seized server's log must not tell who connected from where, or what they asked for."""
    env = base_env(tmp_path / "data")
    data_dir = Path(env["CUSTODY_DATA_DIR"])
    data_dir.mkdir(parents=True)
    token = create_user(env, ADMIN_NAME)
    with running_service(env, data_dir, token=token) as service, service.client() as client:
        case = new_case(client)
        data = os.urandom(1024)
        stored = client.put(f"/v1/cases/{case}/evidence", content=data)
        assert stored.status_code == 201, stored.text
        sha = stored.json()["sha256"]
        assert client.get(f"/v1/evidence/{sha}/content").content == data
        assert client.get("/v1/nothing-here").status_code == 404
    server_log = b"".join(path.read_bytes() for path in data_dir.glob("server-*.log"))
    assert b"Application startup complete" in server_log  # written: its silence means something
    paths = (b"/v1/cases", b"/v1/evidence", b"/v1/nothing-here")
    for request_trace in (case.encode(), sha.encode(), *paths, b'HTTP/1.1"'):
        assert request_trace not in server_log


def _exercise(
    service: Service, errors: Errors, lawyer: Account, field: Account, auditor: Account
) -> tuple[str, list[bytes]]:
    """Uploads, reads, refusals, failed logins and membership changes; every log entry."""
    hooks: dict[str, list[Callable[..., Any]]] = {"response": [errors]}
    admin = httpx.Client(base_url=service.base_url, headers=service.auth, event_hooks=hooks)
    with admin:
        case, other = new_case(admin), new_case(admin, "Other")
        for user in (lawyer, field):
            added = admin.post(f"/v1/cases/{case}/members", json={"user_id": user.user_id})
            assert added.status_code == 201, added.text
        wrong = field.token[:-4] + ("AAAA" if not field.token.endswith("AAAA") else "BBBB")

        def as_user(token: str) -> httpx.Client:
            headers = {"Authorization": f"Bearer {token}"}
            return httpx.Client(base_url=service.base_url, headers=headers, event_hooks=hooks)

        data = os.urandom(4096)
        with as_user(field.token) as client:
            put = f"/v1/cases/{case}/evidence"
            stored = client.put(put, content=data, headers={"Repr-Digest": repr_digest(data)})
            assert stored.status_code == 201, stored.text
            sha = stored.json()["sha256"]
            bad = client.put(put, content=data + b"!", headers={"Repr-Digest": repr_digest(data)})
            assert bad.status_code == 422
            assert client.put(put, content=data, headers={"Repr-Digest": "x"}).status_code == 400
            assert client.get(f"/v1/evidence/{sha}/content").status_code == 403
        for token in (wrong, hash_token(field.token), f"{field.token} {field.token}"):
            with as_user(token) as client:
                assert client.get(f"/v1/evidence/{sha}").status_code == 401
        basic = httpx.BasicAuth(field.name, field.token)
        with httpx.Client(base_url=service.base_url, auth=basic, event_hooks=hooks) as client:
            assert client.get(f"/v1/cases/{case}").status_code == 401
        with as_user(lawyer.token) as client:
            assert client.get(f"/v1/cases/{other}/members").status_code == 404
            read = client.get(f"/v1/evidence/{sha}/content", params={"purpose": "hearing"})
            assert read.content == data
            assert client.get(f"/v1/evidence/{sha}/metadata").status_code == 200
            assert (
                client.post(f"/v1/cases/{case}/members", json={"user_id": "u"}).status_code == 403
            )
        member = {"user_id": lawyer.user_id}
        assert admin.post(f"/v1/cases/{other}/members", json=member).status_code == 201
        assert admin.delete(f"/v1/cases/{other}/members/{lawyer.user_id}").status_code == 204
        with as_user(auditor.token) as client:
            assert client.get(f"/v1/evidence/{sha}/content").status_code in (403, 404)
            entries = _all_entries(client, size=event_count(admin, case) + 1)
    return wrong, entries


def _all_entries(client: httpx.Client, *, size: int) -> list[bytes]:
    """Every entry and entry bundle of a log of at least `size`, read as an auditor."""
    verifier = parse_vkey(client.get("/v1/log/vkey").text.strip())
    integrated(client, f"/v1/log/entries/{size - 1}")
    size = open_checkpoint(client.get("/v1/log/checkpoint").content, verifier).size
    entries = [client.get(f"/v1/log/entries/{i}").content for i in range(size)]
    full, rest = divmod(size, TILE_WIDTH)
    bundles = [Bundle(i, TILE_WIDTH) for i in range(full)] + ([Bundle(full, rest)] if rest else [])
    for bundle in bundles:
        response = client.get(f"/log/{bundle_path(bundle)}")
        assert response.status_code == 200, response.text
        entries.append(response.content)
    return entries


def _stored_bundles(data_dir: Path) -> list[Path]:
    """Entry bundles as the local object store holds them (on S3: read over HTTP only)."""
    return [
        p for p in (data_dir / "objects" / "log" / "tile" / "entries").rglob("*") if p.is_file()
    ]
