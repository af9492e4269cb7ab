"""`custody verify-bundle`: the report people read, --json, and exit codes 0, 1 and 2; offline,
with no data directory and no network (a subprocess in its own network namespace)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli.main import main
from tests.custody.bundle_fixtures import COPY, BagKeys, make_bag, photo_jpeg, unzip_bag

STATEMENT_FILE = "data/003-statement W.txt"


@pytest.fixture(scope="module")
def keys() -> BagKeys:
    return BagKeys.generate()


@pytest.fixture(scope="module")
def bag(keys: BagKeys, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bag(tmp_path_factory.mktemp("bag"), keys=keys)


@pytest.fixture(scope="module")
def key_files(keys: BagKeys, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return keys.write(tmp_path_factory.mktemp("keys"))


def test_a_good_bag_exits_0_with_a_readable_report(
    bag: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify-bundle", str(bag)]) == 0
    out = capsys.readouterr().out
    assert "INTEGRITY: OK" in out
    assert "Log key: bag only" in out
    assert "001  data/001-IMG_0042.jpg  (original)" in out
    assert "collected by p-field-1 at 2026-03-02T09:01:00.000000Z" in out
    assert "collected no later than 2026-03-02T09:04:30+00:00" in out


def test_supplied_keys_are_reported_as_trusted(
    bag: Path, key_files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["verify-bundle", str(bag), "--vkey", str(key_files["vkey"])]
    argv += ["--tsa-ca", str(key_files["tsa"]), "--org-key", str(key_files["org"]), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert report["trust"]["log_key"] == "supplied"
    assert report["trust"]["organisation_key"] == "supplied"
    assert {t["trust"] for t in report["trust"]["timestamps"]} == {"trusted"}
    assert [e["exhibit"] for e in report["exhibits"]] == [1, 2, 3]


def test_a_vkey_given_inline_that_is_not_the_logs_exits_1(
    bag: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify-bundle", str(bag), "--vkey", BagKeys.generate().vkey]) == 1
    out = capsys.readouterr().out
    assert "FAIL custody/log.vkey: log key" in out
    assert "Log key: MISMATCH" in out


def test_a_tampered_bag_exits_1_naming_the_file(
    bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unzipped = unzip_bag(bag, tmp_path)
    target = unzipped / STATEMENT_FILE
    target.write_bytes(target.read_bytes().replace(b"21:40", b"23:40"))
    assert main(["verify-bundle", str(unzipped)]) == 1
    out = capsys.readouterr().out
    assert "INTEGRITY: FAILED" in out
    assert f"FAIL {STATEMENT_FILE}: fixity sha256" in out
    assert "expected: " in out
    assert "found:    " in out
    assert main(["verify-bundle", str(unzipped), "--json"]) == 1
    failures = json.loads(capsys.readouterr().out)["failures"]
    assert {"file": STATEMENT_FILE, "check": "fixity sha512"}.items() <= failures[1].items()


def test_an_original_proves_its_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zipped = make_bag(tmp_path, exhibits=(COPY,))
    original = tmp_path / "IMG_0042.jpg"
    original.write_bytes(photo_jpeg())
    assert main(["verify-bundle", str(zipped), "--original", str(original), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["warnings"] == []
    assert [(p["exhibit"], p["proven"]) for p in report["content_proofs"]] == [(1, True)]
    assert main(["verify-bundle", str(zipped), "--original", str(original)]) == 0
    assert f"{original} proves the content of exhibit 001" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("option", "content"),
    [
        ("--vkey", "not a key"),
        ("--tsa-ca", "not PEM"),
        ("--org-key", "not PEM"),
    ],
)
def test_unreadable_keys_are_usage_errors(
    option: str, content: str, bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "key.txt"
    file.write_text(content)
    assert main(["verify-bundle", str(bag), option, str(file)]) == 2
    assert option in capsys.readouterr().err


def test_what_is_not_a_bag_is_a_usage_error(
    tmp_path: Path, bag: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify-bundle", str(tmp_path / "missing.zip")]) == 2
    assert "no such file" in capsys.readouterr().err
    text = tmp_path / "notes.zip"
    text.write_text("hello")
    assert main(["verify-bundle", str(text)]) == 2
    assert "not a zip" in capsys.readouterr().err
    assert main(["verify-bundle", str(tmp_path)]) == 2
    assert main(["verify-bundle", str(bag), "--original", str(tmp_path / "nope.jpg")]) == 2
    assert "--original" in capsys.readouterr().err


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], check=False).returncode == 0


@pytest.mark.skipif(
    not _unshare_works(), reason="`unshare -n` is unavailable (needs root or user namespaces)"
)
def test_it_runs_offline_without_a_data_directory(bag: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "fresh"
    workdir.mkdir()
    nowhere = tmp_path / "no-data-dir"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODY_")}
    env["CUSTODY_DATA_DIR"] = str(nowhere)
    custody = Path(sys.executable).parent / "custody"
    command = ["unshare", "-n", str(custody), "verify-bundle", str(bag), "--json"]
    done = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True
    assert not nowhere.exists()
    assert list(workdir.iterdir()) == []
    # The namespace really has no network: a connection attempt there fails.
    probe = ["unshare", "-n", sys.executable, "-c", _PROBE]
    assert subprocess.run(probe, capture_output=True, check=False).returncode == 3


_PROBE = """
import socket, sys
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
except OSError:
    sys.exit(3)
"""
