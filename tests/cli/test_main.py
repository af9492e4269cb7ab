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
from custody.note import format_vkey, parse_signer, parse_vkey


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


def test_new_log_key_prints_a_key_and_its_vkey(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["admin", "new-log-key", "--origin", "custody.example.org"]) == 0
    private, vkey = capsys.readouterr().out.splitlines()
    signer = parse_signer(private)
    assert signer.name == "custody.example.org"
    assert format_vkey(signer.verifier()) == vkey
    assert parse_vkey(vkey).public_key == signer.public_key


def test_show_vkey_matches_the_generated_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CUSTODY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CUSTODY_LOG_ORIGIN", "custody.test")
    assert main(["admin", "show-vkey"]) == 0
    vkey = capsys.readouterr().out.strip()
    key_file = parse_signer((tmp_path / "keys" / "log.key").read_text().strip())
    assert vkey == format_vkey(key_file.verifier())
    assert (tmp_path / "keys" / "log.key").stat().st_mode & 0o077 == 0
