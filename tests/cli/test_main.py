"""The `custody` command: create-user prints the token once, alone on the last line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlmodel import select

from api.auth import hash_token
from api.database import build_engine, session_scope
from api.tables import ApiToken, User
from cli.main import main


def test_create_user_prints_token_last_and_stores_only_its_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUSTODY_DATA_DIR", str(tmp_path))
    assert main(["admin", "create-user", "--name", "Amira K.", "--role", "admin"]) == 0
    lines = capsys.readouterr().out.rstrip("\n").splitlines()
    token = lines[-1]
    assert re.fullmatch(r"cst_[A-Za-z0-9_-]{43}", token)
    engine = build_engine(f"sqlite:///{tmp_path / 'custody.db'}")
    with session_scope(engine) as session:
        user = session.exec(select(User)).one()
        stored = session.exec(select(ApiToken)).one()
    assert (user.name, user.role) == ("Amira K.", "admin")
    assert stored.token_sha256 == hash_token(token)
    assert token not in (tmp_path / "custody.db").read_bytes().decode("latin-1")
    engine.dispose()


def test_create_user_rejects_unknown_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUSTODY_DATA_DIR", str(tmp_path))
    assert main(["admin", "create-user", "--name", "x", "--role", "root"]) == 2
    assert "role must be one of" in capsys.readouterr().err


def test_openapi_command_prints_yaml(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUSTODY_DATA_DIR", str(tmp_path))
    assert main(["openapi"]) == 0
    assert capsys.readouterr().out.startswith("openapi:")
