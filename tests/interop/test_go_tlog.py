"""Interop with Go's golang.org/x/mod/sumdb/note and sumdb/tlog, via tlogcheck/main.go.

Go's packages are the reference that auditors' tools are built on: if they accept our notes,
checkpoints and tlog-tiles logs (and reject tampered ones), we are byte-compatible.
Needs `go` and the x/mod sources (Debian: golang-go golang-golang-x-mod-dev); skips otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from custody.checkpoint import Checkpoint, format_checkpoint, sign_checkpoint
from custody.note import (
    Signer,
    format_signer,
    format_vkey,
    generate_signer,
    open_note,
    sign_note,
)
from custody.tiles import Bundle, Tile, bundle_path, integrate, tile_path

GOCODE = Path(os.environ.get("CUSTODY_TEST_GOCODE", "/usr/share/gocode"))
XMOD = GOCODE / "src/golang.org/x/mod/sumdb"
SOURCE = Path(__file__).parent / "tlogcheck"
PREFIX = "log/"
ORIGIN = "custody.example/log"


@pytest.fixture(scope="session")
def tlogcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go interop needs `go` (Debian: apt-get install golang-go)")
    if not (XMOD / "note/note.go").is_file() or not (XMOD / "tlog/tile.go").is_file():
        pytest.skip(f"Go interop needs x/mod sources under {GOCODE} (golang-golang-x-mod-dev)")
    work = tmp_path_factory.mktemp("go")
    binary = work / "tlogcheck"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(work),
        "GO111MODULE": "off",  # GOPATH mode: x/mod comes from the Debian sources, offline
        "GOPATH": f"{work / 'gopath'}{os.pathsep}{GOCODE}",
        "GOCACHE": str(work / "cache"),
        "GOENV": "off",
        "GOFLAGS": "",
        "CGO_ENABLED": "0",
    }
    build = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=SOURCE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, f"go build failed:\n{build.stderr}"
    return binary


def run(binary: Path, *args: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=300, check=False
    )
    return done.returncode, json.loads(done.stdout)


def go_opens(binary: Path, tmp_path: Path, data: bytes, signer: Signer) -> dict[str, Any]:
    path = tmp_path / "note"
    path.write_bytes(data)
    code, summary = run(binary, "-vkey", format_vkey(signer.verifier()), "-verify-note", str(path))
    assert code == (0 if summary["ok"] else 1), summary
    return summary


# (a) Notes, keys and checkpoints.

# The example in c2sp.org/signed-note: non-ASCII text with an empty line inside.
TEXT = (
    "Ognuno sta solo sul cuor della terra\n"
    "trafitto da un raggio di sole:\n"
    "\n"
    "ed \u00e8 subito sera.\n"
)


def test_go_opens_our_signed_note(tlogcheck: Path, tmp_path: Path) -> None:
    signer = generate_signer("quasimodo.example/salvatore")
    summary = go_opens(tlogcheck, tmp_path, sign_note(TEXT, [signer]), signer)
    assert summary == {"ok": True, "text": TEXT, "verified": 1, "unverified": 0}


def test_go_ignores_cosignatures_it_does_not_know(tlogcheck: Path, tmp_path: Path) -> None:
    signer, witness = generate_signer(ORIGIN), generate_signer("witness.example/w")
    summary = go_opens(tlogcheck, tmp_path, sign_note(TEXT, [witness, signer]), signer)
    assert (summary["verified"], summary["unverified"]) == (1, 1)


def test_go_opens_our_signed_checkpoint(tlogcheck: Path, tmp_path: Path) -> None:
    signer = generate_signer(ORIGIN)
    checkpoint = Checkpoint(ORIGIN, 20852163, bytes(range(32)))
    summary = go_opens(tlogcheck, tmp_path, sign_checkpoint(checkpoint, signer), signer)
    assert summary["text"] == format_checkpoint(checkpoint)


def test_go_rejects_our_note_tampered_or_under_another_key(tlogcheck: Path, tmp_path: Path) -> None:
    signer = generate_signer(ORIGIN)
    data = sign_note(TEXT, [signer])
    tampered = data.replace(b"sera", b"Sera")
    assert go_opens(tlogcheck, tmp_path, tampered, signer)["error"].startswith("note.Open")
    assert not go_opens(tlogcheck, tmp_path, data, generate_signer(ORIGIN))["ok"]


def test_go_signs_with_our_private_key_exactly_as_we_do(tlogcheck: Path, tmp_path: Path) -> None:
    # Go parses our PRIVATE+KEY+ form; Ed25519 is deterministic, so the notes are identical.
    signer = generate_signer(ORIGIN)
    (tmp_path / "text").write_text(TEXT, encoding="utf-8")
    done = subprocess.run(
        [str(tlogcheck), "-skey", format_signer(signer), "-sign-note", str(tmp_path / "text")],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == sign_note(TEXT, [signer])
    assert open_note(done.stdout, [signer.verifier()]).text == TEXT


# (b) A tlog-tiles log written by custody.tiles.


@dataclass
class LogDir:
    """A log on disk, grown with custody.tiles.integrate as the integrator grows one."""

    root: Path
    signer: Signer
    size: int = 0

    def path(self, relative: str) -> Path:
        return self.root / PREFIX / relative

    def read_tile(self, tile: Tile) -> bytes:
        return self.path(tile_path(tile)).read_bytes()

    def read_bundle(self, bundle: Bundle) -> bytes:
        return self.path(bundle_path(bundle)).read_bytes()

    def write(self, relative: str, data: bytes, *, immutable: bool) -> None:
        path = self.path(relative)
        if immutable and path.exists():
            # Full tiles, bundles and archived checkpoints are create-only (design §3).
            assert path.read_bytes() == data, f"{relative} would change"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def append(self, entries: list[bytes]) -> None:
        result = integrate(
            old_size=self.size,
            new_entries=entries,
            read_tile=self.read_tile,
            read_bundle=self.read_bundle,
        )
        for tile, data in result.tiles.items():
            self.write(tile_path(tile), data, immutable=tile.is_full)
        for bundle, data in result.bundles.items():
            self.write(bundle_path(bundle), data, immutable=bundle.is_full)
        checkpoint = Checkpoint(ORIGIN, result.new_size, result.root)
        signed = sign_checkpoint(checkpoint, self.signer)
        self.write(f"checkpoints/{result.new_size}", signed, immutable=True)
        self.write("checkpoint", signed, immutable=False)
        self.size = result.new_size


def entries(start: int, count: int) -> list[bytes]:
    # Varied lengths, including empty and long ones, to exercise the uint16 length prefixes.
    return [
        (b"entry %d " % i) * (i % 7) + bytes([i % 256]) * (i % 300)
        for i in range(start, start + count)
    ]


def grow(root: Path, batches: list[int]) -> LogDir:
    log = LogDir(root, generate_signer(ORIGIN))
    for count in batches:
        log.append(entries(log.size, count))
    return log


def flip(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 1
    path.write_bytes(bytes(data))


def check(binary: Path, log: LogDir, signer: Signer | None = None) -> tuple[int, dict[str, Any]]:
    vkey = format_vkey((signer or log.signer).verifier())
    return run(binary, "-vkey", vkey, "-root", str(log.root), "-prefix", PREFIX)


def test_go_checks_our_log(tlogcheck: Path, tmp_path: Path) -> None:
    # Sizes 1, 5, 256 (one full tile), 300, 513, 600, 602 (level-1 partial tiles, 3 bundles).
    log = grow(tmp_path, [1, 4, 251, 44, 213, 87])
    log.append([b"\xff" * 0xFFFF, b""])  # the longest entry a uint16 length allows, and ""
    code, summary = check(tlogcheck, log)
    assert code == 0, summary
    assert summary["ok"] is True
    assert summary["size"] == summary["entries"] == 602
    assert summary["checkpoints"] == [1, 5, 256, 300, 513, 600, 602]


def test_go_checks_a_log_with_three_tile_levels(tlogcheck: Path, tmp_path: Path) -> None:
    log = grow(tmp_path, [65535, 1, 2, 300])  # 65,536 = 256**2 leaves: the first level-2 tile
    code, summary = check(tlogcheck, log)
    assert code == 0, summary
    assert log.path("tile/2/000.p/1").is_file()
    assert summary["checkpoints"] == [65535, 65536, 65538, 65838]


def test_go_rejects_a_changed_entry(tlogcheck: Path, tmp_path: Path) -> None:
    log = grow(tmp_path, [300])
    bundle = log.path("tile/entries/000")
    flip(bundle, len(bundle.read_bytes()) - 1)
    code, summary = check(tlogcheck, log)
    assert code == 1
    assert summary["error"].startswith("entry 255: tlog.RecordHash is")


def test_go_rejects_a_changed_partial_tile(tlogcheck: Path, tmp_path: Path) -> None:
    log = grow(tmp_path, [300])
    flip(log.path("tile/0/001.p/44"), 0)
    code, summary = check(tlogcheck, log)
    assert code == 1
    assert summary["error"] == "tlog.TreeHash(300): downloaded inconsistent tile"


def test_go_rejects_a_changed_full_tile(tlogcheck: Path, tmp_path: Path) -> None:
    # At size 300 Go's TileHashReader does not check tile/0/000 against its parent (see
    # main.go, storedHashes); tlogcheck's own link check must catch it.
    log = grow(tmp_path, [300])
    flip(log.path("tile/0/000"), 5)
    code, summary = check(tlogcheck, log)
    assert code == 1
    assert summary["error"].startswith("tiles disagree: tile/0/000 is not under its parent")


def test_go_rejects_a_missing_partial_tile(tlogcheck: Path, tmp_path: Path) -> None:
    log = grow(tmp_path, [300])
    log.path("tile/1/000.p/1").unlink()
    code, summary = check(tlogcheck, log)
    assert code == 1
    assert "tile/1/000.p/1: no such file" in summary["error"]


def test_go_rejects_bytes_after_a_bundles_entries(tlogcheck: Path, tmp_path: Path) -> None:
    log = grow(tmp_path, [300])
    bundle = log.path("tile/entries/001.p/44")
    bundle.write_bytes(bundle.read_bytes() + b"\0\0")
    code, summary = check(tlogcheck, log)
    assert code == 1
    assert summary["error"] == "bundle 1 has bytes after its 44 entries"


def test_go_rejects_another_key(tlogcheck: Path, tmp_path: Path) -> None:
    log = grow(tmp_path, [3])
    code, summary = check(tlogcheck, log, generate_signer(ORIGIN))
    assert code == 1
    assert "note.Open" in summary["error"]


def test_go_rejects_a_forked_archived_checkpoint(tlogcheck: Path, tmp_path: Path) -> None:
    log = grow(tmp_path, [10, 10])
    fork = grow(tmp_path / "fork", [10])
    fork.signer = log.signer
    fork.append(entries(1000, 3))  # size 13, but other entries than the log's first 13
    (log.path("checkpoints/13")).write_bytes(fork.path("checkpoints/13").read_bytes())
    code, summary = check(tlogcheck, log)
    assert code == 1
    assert "checkpoints/13: tlog.CheckTree" in summary["error"]
