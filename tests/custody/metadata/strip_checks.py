"""Shared checks for the image stripper tests: corpus batches, ExifTool scans, pixel equality."""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import subprocess
import tracemalloc
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st
from PIL import Image

from custody.metadata.base import StripError, Stripper, StripReport

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus"
EXIFTOOL = shutil.which("exiftool")

# Groups a copy may show in `exiftool -a -G1`: file facts, the image's own structure, the
# ICC profile (kept verbatim by design), and IFD0 (TIFF image tags, or the re-emitted
# Orientation). Any other group (XMP*, IPTC, Photoshop, ExifIFD, GPS, InteropIFD, IFD1,
# MakerNotes and vendor groups like Canon or Nikon, MPF0, GeoTiff, PrintIM, ...) is a leak.
ALLOWED_GROUPS = re.compile(
    r"^(SourceFile|ExifTool|System|File|Composite|JFIF|Adobe|IFD0|ICC_Profile\d*|ICC-\w+|RIFF"
    r"|PNG|PNG-pHYs|PNG-cICP|GIF)$"
)
# Tag names a copy must not have outside the file-system and ICC groups: the list
# (GPS*, *Serial*, Artist, Author, Creator, OwnerName, Copyright, ThumbnailImage,
# PreviewImage, XMP, IPTC, MakerNotes, Make, Model) plus other free text and dates.
FORBIDDEN_TAGS = re.compile(
    r"GPS|Serial|^Artist$|Author|Creator|OwnerName|Copyright|Thumbnail|PreviewImage|XMP|IPTC"
    r"|MakerNote|^Make$|^Model$|Software|HostComputer|Description|DocumentName|Comment"
    r"|Date|Keywords|Title|Caption|City|Location|Country"
)
_UNCHECKED_GROUPS = re.compile(r"^(SourceFile|ExifTool|System|File|ICC_Profile\d*|ICC-\w+)$")


@dataclass
class Outcome:
    source: Path
    copy: Path | None = None
    report: StripReport | None = None
    reason: str | None = None


@dataclass
class Batch:
    outcomes: list[Outcome]
    tags: dict[Path, dict[str, Any]] = field(default_factory=dict)  # ExifTool, by file

    @property
    def stripped(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.copy is not None]

    def refused(self) -> dict[str, str]:
        return {rel(o.source): o.reason for o in self.outcomes if o.reason is not None}


def rel(path: Path) -> str:
    return path.relative_to(CORPUS).as_posix()


def corpus_files(*suffixes: str) -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def strip_bytes(stripper: Stripper, data: bytes) -> tuple[bytes, StripReport]:
    sink = io.BytesIO()
    report = stripper.strip(io.BytesIO(data), sink)
    return sink.getvalue(), report


def digest_of(stripper: Stripper, data: bytes) -> str:
    return stripper.content_digest(io.BytesIO(data))


def peak_memory(stripper: Stripper, path: Path) -> int:
    """Peak bytes Python allocates while stripping `path` into /dev/null."""
    tracemalloc.start()
    try:
        with path.open("rb") as source, Path(os.devnull).open("wb") as sink:
            stripper.strip(source, sink)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def run_batch(stripper: Stripper, files: list[Path], out: Path) -> Batch:
    """Strip every file into `out`, then read originals and copies with one ExifTool run."""
    if not files:
        pytest.skip(f"no corpus at {CORPUS}")
    outcomes = []
    for index, path in enumerate(files):
        copy = out / f"{index:03d}{path.suffix.lower()}"
        try:
            with path.open("rb") as source, copy.open("wb") as sink:
                report = stripper.strip(source, sink)
        except StripError as exc:
            copy.unlink()
            outcomes.append(Outcome(path, reason=exc.reason))
            continue
        outcomes.append(Outcome(path, copy, report))
    batch = Batch(outcomes)
    paths = [o.source for o in outcomes] + [o.copy for o in outcomes if o.copy is not None]
    batch.tags = exiftool(paths)
    return batch


def exiftool(paths: Iterable[Path]) -> dict[Path, dict[str, Any]]:
    """`exiftool -a -G1 -s -j -n` over many files in one process, keyed by path."""
    if EXIFTOOL is None:
        pytest.skip("exiftool is not installed")
    args = [str(p) for p in paths]
    done = subprocess.run(
        [EXIFTOOL, "-a", "-G1", "-s", "-j", "-n", "-q", "-q", "-charset", "filename=utf8", *args],
        capture_output=True,
        check=False,
        timeout=120,
    )
    records = json.loads(done.stdout or b"[]")
    return {Path(r["SourceFile"]): r for r in records}


def leaks(
    record: dict[str, Any],
    *,
    allow: Callable[[str], bool] = lambda _: False,
    pages: bool = False,
) -> list[str]:
    """The keys of an ExifTool record that show metadata a copy must not carry.

    With `pages`, IFD1, IFD2, ... are pages of a TIFF (held to the IFD0 rules), not thumbnails.
    """
    found = []
    for key in record:
        group, _, name = key.rpartition(":")
        group = group or key
        if allow(key):
            continue
        allowed = ALLOWED_GROUPS.match(group) or (pages and re.fullmatch(r"IFD\d+", group))
        checked = not _UNCHECKED_GROUPS.match(group)
        if not allowed or (checked and FORBIDDEN_TAGS.search(name)):
            found.append(key)
    return found


@dataclass(frozen=True)
class Pixels:
    size: tuple[int, int]
    mode: str
    frames: tuple[bytes, ...]
    icc: bytes | None


def decode(data: bytes, *, frames: Iterable[int] | None = None) -> Pixels:
    """Decode with Pillow; its warnings about odd metadata are about the original's metadata."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(io.BytesIO(data)) as image:
            wanted = range(getattr(image, "n_frames", 1)) if frames is None else frames
            pixels = []
            for index in wanted:
                image.seek(index)
                pixels.append(image.tobytes())
            image.seek(0)
            icc = image.info.get("icc_profile")
            return Pixels(image.size, image.mode, tuple(pixels), icc)


Edit = tuple[int, float, bytes]  # (kind, relative position, bytes to insert or flip with)
_EDIT = st.tuples(st.integers(0, 3), st.floats(0, 1), st.binary(min_size=1, max_size=8))
_FLIP = st.tuples(st.just(0), st.floats(0, 1), st.binary(min_size=1, max_size=1))
# Any edits, or only byte flips: those keep the layout, so more mutants get past the parser.
EDITS = st.lists(_EDIT, min_size=1, max_size=4) | st.lists(_FLIP, min_size=1, max_size=4)


def apply_edits(data: bytes, edits: Iterable[Edit]) -> bytes:
    """Bit flips, truncations, inserted and deleted bytes at the given places."""
    out = bytearray(data)
    for kind, where, chunk in edits:
        at = min(int(where * len(out)), len(out))
        if kind == 0 and at < len(out):
            out[at] ^= chunk[0] or 1
        elif kind == 1:
            del out[at:]
        elif kind == 2:
            out[at:at] = chunk
        else:
            del out[at : at + len(chunk)]
    return bytes(out)


def random_edits(rng: random.Random) -> list[Edit]:
    count = rng.randrange(1, 4)
    return [
        (rng.randrange(4), rng.random(), rng.randbytes(rng.randrange(1, 9))) for _ in range(count)
    ]


def needles(record: dict[str, Any]) -> list[bytes]:
    """Values of sensitive tags, to search for in the bytes of a copy of a mutated original."""
    found = []
    for key, value in record.items():
        group, _, name = key.rpartition(":")
        if _UNCHECKED_GROUPS.match(group or key) or not FORBIDDEN_TAGS.search(name):
            continue
        text = str(value).strip()
        if len(text) >= 6 and not text.startswith("(Binary data") and not _numeric(text):
            found.append(text.encode())
    return found


def _numeric(text: str) -> bool:
    return all(part.replace(".", "", 1).lstrip("-").isdigit() for part in text.split())


def fixed_point(stripper: Stripper, copy: bytes) -> None:
    """Stripping a copy again changes nothing: the copy holds only what the allowlist keeps."""
    again, _ = strip_bytes(stripper, copy)
    assert again == copy


# --- assertions shared by the per-format tests -------------------------------------------


def _copy(outcome: Outcome) -> bytes:
    assert outcome.copy is not None
    return outcome.copy.read_bytes()


def assert_no_leaks(batch: Batch, *, pages: bool = False) -> None:
    found = {
        rel(o.source): leaks(batch.tags[o.copy], pages=pages) for o in batch.stripped if o.copy
    }
    assert {name: keys for name, keys in found.items() if keys} == {}


def assert_digests(batch: Batch, stripper: Stripper) -> None:
    """The content digest is the same computed on the original, by strip, and on the copy."""
    for outcome in batch.stripped:
        assert outcome.report is not None
        expected = outcome.report.content_digest
        assert digest_of(stripper, outcome.source.read_bytes()) == expected, rel(outcome.source)
        assert digest_of(stripper, _copy(outcome)) == expected, rel(outcome.source)


def assert_fixed_points(batch: Batch, stripper: Stripper) -> None:
    for outcome in batch.stripped:
        fixed_point(stripper, _copy(outcome))


def seed_needles(seeds: list[bytes], folder: Path, suffix: str) -> list[list[bytes]]:
    """Sensitive values ExifTool reads from each seed, for the mutant byte scans."""
    paths = [folder / f"{index}{suffix}" for index in range(len(seeds))]
    for path, data in zip(paths, seeds, strict=True):
        path.write_bytes(data)
    tags = exiftool(paths)
    return [needles(tags[path]) for path in paths]


def check_mutant(stripper: Stripper, data: bytes, secrets: Iterable[bytes]) -> bool:
    """Strip a damaged file: StripError, or a copy that keeps its digest and no secret."""
    try:
        copy, report = strip_bytes(stripper, data)
    except StripError:
        return False
    assert digest_of(stripper, data) == report.content_digest == digest_of(stripper, copy)
    fixed_point(stripper, copy)
    assert [secret for secret in secrets if secret in copy] == []
    return True


def exiftool_mutants(
    stripper: Stripper,
    seeds: list[bytes],
    folder: Path,
    suffix: str,
    *,
    count: int = 60,
    repair: Callable[[bytes], bytes] = lambda data: data,
    allow: Callable[[str], bool] = lambda _: False,
    pages: bool = False,
) -> dict[str, list[str]]:
    """Copies of `count` seeded-random mutants, read by one ExifTool run: the leaks found."""
    rng = random.Random(20261128)
    paths = []
    for number in range(count):
        data = repair(apply_edits(seeds[number % len(seeds)], random_edits(rng)))
        try:
            copy, _ = strip_bytes(stripper, data)
        except StripError:
            continue
        paths.append(folder / f"{number}{suffix}")
        paths[-1].write_bytes(copy)
    assert len(paths) >= 5, "too few mutants survive to test anything"
    tags = exiftool(paths)
    found = {path.name: leaks(tags[path], allow=allow, pages=pages) for path in paths}
    return {name: keys for name, keys in found.items() if keys}
