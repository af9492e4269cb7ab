"""Users, tokens and pseudonyms through /v1/admin and `custody admin`: each change is logged."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import base_env
from tests.e2e.servers import Service, custody_cli, running_service
from tests.e2e.test_ingest import assert_problem, new_case


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """The embedded deployment only: users and tokens are the same rows on PostgreSQL, which
    the other end-to-end tests cover, and every service start here costs seconds."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with running_service(base_env(data_dir), data_dir) as svc:
        yield svc


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def log_entries(client: httpx.Client, want: dict[str, str]) -> list[dict[str, Any]]:
    """Every published entry, once one matching `want` is published (waits up to 15 s)."""
    deadline = time.monotonic() + 15
    while True:
        entries, index = [], 0
        while (response := client.get(f"/v1/log/entries/{index}")).status_code == 200:
            entries.append(json.loads(response.content))
            index += 1
        if any(all(e.get(k) == v for k, v in want.items()) for e in entries):
            return entries
        assert time.monotonic() < deadline, f"no entry {want} in the log"
        time.sleep(0.1)


def admin_pseudonym(client: httpx.Client) -> str:
    users = client.get("/v1/admin/users").json()
    return str(next(u["pseudonym"] for u in users if u["name"] == "E2E admin"))


def test_admin_creates_a_member_whose_token_is_shown_once(service: Service) -> None:
    with service.client() as admin:
        case = new_case(admin)
        made = admin.post(
            "/v1/admin/users",
            json={"name": "Leyla (field)", "role": "field", "cases": [case], "expires_days": 7},
        )
        assert made.status_code == 201, made.text
        user = made.json()
        assert user["role"] == "field"
        expires = datetime.fromisoformat(user["expires_at"])
        assert abs(expires - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=5)
        with httpx.Client(base_url=service.base_url, headers=bearer(user["token"])) as field:
            assert field.get(f"/v1/cases/{case}").status_code == 200

        members = admin.get(f"/v1/cases/{case}/members").json()
        assert user["user_id"] in {m["user_id"] for m in members}
        listing = admin.get("/v1/admin/users")
        assert user["token"] not in listing.text
        assert "sha256" not in listing.text
        (listed,) = [u for u in listing.json() if u["id"] == user["user_id"]]
        assert listed["pseudonym"] == user["pseudonym"]
        assert [t["id"] for t in listed["tokens"]] == [user["token_id"]]

        entries = log_entries(admin, {"type": "token-created", "target": user["token_id"]})
        me = admin_pseudonym(admin)
        added = [e for e in entries if e["type"] == "member-added" and e["case"] == case]
        assert user["pseudonym"] in {e.get("target") for e in added}
        assert all(e["actor"] == me for e in added)
        assert "Leyla" not in json.dumps(entries)
        assert user["token"] not in json.dumps(entries)

        auditor_with_case = admin.post(
            "/v1/admin/users", json={"name": "a", "role": "auditor", "cases": [case]}
        )
        assert_problem(auditor_with_case, 422)
        assert_problem(
            admin.post("/v1/admin/users", json={"name": "b", "role": "lawyer", "cases": ["c_x"]}),
            422,
        )
        assert_problem(admin.post("/v1/admin/users", json={"name": "c", "role": "root"}), 422)


def test_tokens_are_issued_and_revoked_and_each_is_logged(service: Service) -> None:
    with service.client() as admin:
        user = admin.post("/v1/admin/users", json={"name": "Sam", "role": "lawyer"}).json()
        second = admin.post(f"/v1/admin/users/{user['user_id']}/tokens", json={"label": "laptop"})
        assert second.status_code == 201, second.text
        token = second.json()
        assert token["token"].startswith("cst_")
        assert token["expires_at"] is None
        for secret in (user["token"], token["token"]):
            assert httpx.get(f"{service.base_url}/v1/cases", headers=bearer(secret)).is_success

        assert admin.delete(f"/v1/admin/tokens/{token['token_id']}").status_code == 204
        revoked = httpx.get(f"{service.base_url}/v1/cases", headers=bearer(token["token"]))
        body = assert_problem(revoked, 401)
        assert token["token"] not in json.dumps(body)
        assert httpx.get(f"{service.base_url}/v1/cases", headers=bearer(user["token"])).is_success
        assert admin.delete(f"/v1/admin/tokens/{token['token_id']}").status_code == 204
        assert_problem(admin.delete("/v1/admin/tokens/t_nothing"), 404)
        assert_problem(admin.post("/v1/admin/users/u_nobody/tokens", json={}), 404)

        listed = next(u for u in admin.get("/v1/admin/users").json() if u["id"] == user["user_id"])
        states = {t["id"]: (t["label"], t["revoked_at"] is not None) for t in listed["tokens"]}
        assert states == {user["token_id"]: (None, False), token["token_id"]: ("laptop", True)}

        entries = log_entries(admin, {"type": "token-revoked", "target": token["token_id"]})
        revocations = [e for e in entries if e["type"] == "token-revoked"]
        assert [e["target"] for e in revocations] == [token["token_id"]]  # once, not twice
        assert revocations[0]["role"] == "lawyer"
        created = {e["target"] for e in entries if e["type"] == "token-created"}
        assert {user["token_id"], token["token_id"]} <= created

        sam = httpx.Client(base_url=service.base_url, headers=bearer(user["token"]))
        with sam:
            assert_problem(sam.get("/v1/admin/users"), 403)
            assert_problem(sam.delete(f"/v1/admin/tokens/{user['token_id']}"), 403)


def test_resolving_a_pseudonym_is_itself_logged(service: Service) -> None:
    with service.client() as admin:
        user = admin.post("/v1/admin/users", json={"name": "Nadia", "role": "field"}).json()
        with httpx.Client(base_url=service.base_url, headers=bearer(user["token"])) as field:
            assert_problem(field.get(f"/v1/admin/pseudonyms/{user['pseudonym']}"), 403)
        resolved = admin.get(f"/v1/admin/pseudonyms/{user['pseudonym']}")
        assert resolved.json() == {"user_id": user["user_id"], "name": "Nadia", "role": "field"}
        assert_problem(admin.get("/v1/admin/pseudonyms/p_unknown"), 404)

        entries = log_entries(admin, {"type": "pseudonym-resolved", "target": user["pseudonym"]})
        resolutions = [e for e in entries if e["type"] == "pseudonym-resolved"]
        assert len(resolutions) == 1  # the refused and the unknown ones resolved nothing
        assert resolutions[0]["actor"] == admin_pseudonym(admin)
        assert "Nadia" not in json.dumps(entries)


def test_cli_issues_lists_and_revokes_tokens(service: Service) -> None:
    with service.client() as admin:
        user = admin.post("/v1/admin/users", json={"name": "Omar", "role": "lawyer"}).json()

    made = custody_cli(
        "admin", "create-token", "--user", user["user_id"], "--expires-days", "3", env=service.env
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.rstrip("\n").splitlines()[-1]
    assert token.startswith("cst_")
    cases = httpx.get(f"{service.base_url}/v1/cases", headers=bearer(token))
    assert cases.status_code == 200

    listing = custody_cli("admin", "list-users", env=service.env)
    assert listing.returncode == 0, listing.stderr
    assert token not in listing.stdout
    assert user["token"] not in listing.stdout
    assert user["user_id"] in listing.stdout
    assert "Omar" in listing.stdout
    token_ids = [
        line.split()[1] for line in listing.stdout.splitlines() if line.startswith("  token ")
    ]
    assert user["token_id"] in token_ids

    with service.client() as admin:
        listed = next(u for u in admin.get("/v1/admin/users").json() if u["id"] == user["user_id"])
    new_id = next(t["id"] for t in listed["tokens"] if t["id"] != user["token_id"])
    assert listed["tokens"][-1]["expires_at"] is not None

    revoked = custody_cli("admin", "revoke-token", new_id, env=service.env)
    assert revoked.returncode == 0, revoked.stderr
    cases = httpx.get(f"{service.base_url}/v1/cases", headers=bearer(token))
    assert cases.status_code == 401
    unknown = custody_cli("admin", "revoke-token", "t_nothing", env=service.env)
    assert unknown.returncode == 2
    assert "no token" in unknown.stderr
