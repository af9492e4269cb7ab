"""The checks every audio sharing copy must pass, run over the shared corpus by each format's tests.

A copy passes when (1) neither ExifTool nor mutagen finds a tag in it, (2) its content digest
is the original's, (3) mutagen reads the same stream parameters from it, and (4) no value of
a removed tag, nor a slice of any embedded picture, is left in it as bytes (UTF-8, Latin-1,
UTF-16 either way round).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import tracemalloc
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import mutagen
import mutagen.apev2
import mutagen.id3
import pytest

from custody.metadata.audio_common import PlannedStripper
from custody.metadata.base import StripError, StripReport

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus"
EXIFTOOL = shutil.which("exiftool")

# ExifTool groups that hold tags and nothing else: none may be left in a copy.
TAG_GROUPS = re.compile(
    r"^(ID3v1|ID3v2_\d|APE|Lyrics3|ItemList|UserData|Keys|iTunes|XMP.*|EXIF"
    r"|IFD\d|ExifIFD|GPS|MakerNotes|Nikon|Canon|Pentax|Sony|BWF|iXML|Real.*)$"
)
# Tag names that carry names, places, devices, free text or pictures, in any group. The
# encoder's own name stays: MPEG:Encoder (the LAME header, part of the first frame) and
# Vorbis:Vendor (the comment header's vendor string, which names the encoding library); the
# copyright bit of every MPEG frame header is audio, not a tag.
KEPT_TAGS = frozenset({"MPEG:Encoder", "Vorbis:Vendor", "MPEG:CopyrightFlag"})
NAME_TAGS = re.compile(
    r"artist|author|creator|composer|comment|lyric|picture|cover|gps|location|serial|make"
    r"|model|title|album|copyright|owner|encodedby|publisher|originator|software|description"
    r"|year|performer|conductor|label|isrc|url|email|keyword|genre|grouping|producer|engineer",
    re.IGNORECASE,
)
TECHNICAL_GROUPS = frozenset({"SourceFile", "System", "File", "ExifTool", "Composite"})
ZERO_DATE = "0000:00:00 00:00:00"
MIN_VALUE = 5  # shorter values ("1/5", "2005") could turn up in audio bytes by chance


def corpus_files(*extensions: str) -> list[Path]:
    """The corpus files with these extensions; none (so the tests skip) without a corpus."""
    if not CORPUS.is_dir():
        return []
    wanted = {f".{e}" for e in extensions}
    return sorted(p for p in CORPUS.rglob("*") if p.suffix.lower() in wanted and p.is_file())


@dataclass(frozen=True)
class Outcome:
    original: Path
    copy: Path | None = None
    report: StripReport | None = None
    reason: str | None = None


def strip_all(stripper: PlannedStripper, files: Iterable[Path], out: Path) -> list[Outcome]:
    """Strip every file into `out` (same base name, so tools sniff the same format)."""
    outcomes = []
    for index, path in enumerate(files):
        copy = out / f"{index:03}-{path.name}"
        sink = io.BytesIO()
        try:
            with path.open("rb") as source:
                report = stripper.strip(source, sink)
        except StripError as error:
            outcomes.append(Outcome(path, reason=error.reason))
            continue
        copy.write_bytes(sink.getvalue())
        outcomes.append(Outcome(path, copy, report))
    return outcomes


def exiftool(paths: list[Path]) -> dict[Path, dict[str, object]]:
    """ExifTool's tags for many files in one run (its start-up dominates)."""
    if not paths:
        return {}
    if EXIFTOOL is None:
        pytest.skip("exiftool is not installed")
    run = subprocess.run(
        [EXIFTOOL, "-a", "-G1", "-s", "-j", *map(str, paths)],
        capture_output=True,
        check=False,
        text=True,
    )
    return {Path(entry["SourceFile"]): entry for entry in json.loads(run.stdout)}


def exiftool_leftovers(tags: dict[str, object]) -> list[str]:
    """The tags of one copy that should not be there (names only)."""
    found = []
    for key, value in tags.items():
        group, _, name = key.partition(":")
        if group in TECHNICAL_GROUPS:
            continue
        named = NAME_TAGS.search(name) and key not in KEPT_TAGS
        dated = ("Date" in name or "Time" in name) and re.match(r"\d{4}:", str(value))
        if TAG_GROUPS.match(group) or named or (dated and value != ZERO_DATE):
            found.append(key)
    return found


def mutagen_leftovers(path: Path) -> list[str]:
    """Tags or pictures mutagen finds in a copy, by the format's loader and by ID3's and APE's."""
    found = []
    for loader in (mutagen.id3.ID3, mutagen.apev2.APEv2):
        try:
            tags = loader(path)
        except mutagen.MutagenError:
            continue
        found.append(f"{type(tags).__name__} tag")
    try:
        loaded = mutagen.File(path)
    except mutagen.MutagenError:
        return found  # unreadable (too short): stream_parameters compares with the original
    if loaded is not None:
        found += [f"tag {key}" for key in (loaded.tags.keys() if loaded.tags is not None else [])]
        found += ["picture" for _ in getattr(loaded, "pictures", [])]
    return found


def stream_parameters(path: Path) -> dict[str, object]:
    """What mutagen reads of the stream; the length only where it is not an estimate."""
    try:
        info = mutagen.File(path).info
    except mutagen.MutagenError as error:
        return {"unreadable": type(error).__name__}
    found: dict[str, object] = {
        name: getattr(info, name)
        for name in ("sample_rate", "channels", "bits_per_sample", "total_samples", "md5_signature")
        if hasattr(info, name)
    }
    if type(info).__name__ not in ("MPEGInfo", "OggOpusInfo"):
        found["length"] = round(info.length, 3)
    return found


def removed_values(
    original: Path, original_tags: dict[str, object], copy_tags: dict[str, object]
) -> set[str]:
    """Text of the original's tags that the copy does not have: ExifTool's and mutagen's."""
    values = {
        str(value)
        for key, value in original_tags.items()
        if key.partition(":")[0] not in TECHNICAL_GROUPS and copy_tags.get(key) != value
    }
    values |= set(_mutagen_texts(original))
    kept = " ".join(str(v) for v in copy_tags.values())
    return {
        v.strip()
        for v in values
        if len(v.strip()) >= MIN_VALUE and not v.startswith("(Binary") and v.strip() not in kept
    }


def _mutagen_texts(path: Path) -> Iterator[str]:
    try:
        loaded = mutagen.File(path)
    except mutagen.MutagenError:
        return
    if loaded is None or loaded.tags is None:
        return
    keys = loaded.tags.keys()  # Vorbis comments iterate as pairs, so keys() it is
    for key in keys:
        value = loaded.tags[key]
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, str | int | float):
                yield str(item)
            elif hasattr(item, "text"):
                yield from (str(t) for t in item.text)


def pictures(path: Path) -> list[bytes]:
    """A 32-byte slice from the middle of each picture the original embeds."""
    try:
        loaded = mutagen.File(path)
    except mutagen.MutagenError:
        return []
    datas = [p.data for p in getattr(loaded, "pictures", [])]
    tags = getattr(loaded, "tags", None)
    if tags is not None:
        keys = tags.keys()
        for key in keys:
            value = tags[key]
            if hasattr(value, "data") and isinstance(value.data, bytes):
                datas.append(value.data)  # ID3 APIC
            if key == "covr":
                datas += [bytes(cover) for cover in value]
    return [d[len(d) // 2 : len(d) // 2 + 32] for d in datas if len(d) >= 64]


def encodings(value: str) -> Iterator[bytes]:
    for codec in ("utf-8", "latin-1", "utf-16-le", "utf-16-be"):
        try:
            yield value.encode(codec)
        except UnicodeEncodeError:
            continue


def leftover_bytes(copy: bytes, values: Iterable[str], slices: Iterable[bytes]) -> list[str]:
    """Which removed values (shown cut short) or picture slices are still in the copy."""
    found = [v[:12] for v in values if any(e in copy for e in encodings(v))]
    found += ["picture bytes" for s in slices if s in copy]
    return found


def seed(name: str) -> bytes:
    """A corpus file by name (the tests that mutate one skip without the corpus)."""
    found = [p for p in corpus_files(Path(name).suffix.lstrip(".")) if p.name == name]
    if not found:
        pytest.skip(f"{name} is not in the corpus")
    return found[0].read_bytes()


def strip_bytes(stripper: PlannedStripper, data: bytes) -> tuple[bytes, StripReport]:
    sink = io.BytesIO()
    report = stripper.strip(io.BytesIO(data), sink)
    return sink.getvalue(), report


def check_mutant(stripper: PlannedStripper, data: bytes, secrets: Iterable[str]) -> None:
    """A mutated file is refused, or its copy keeps its digest, is stable and holds no secret."""
    try:
        copy, report = strip_bytes(stripper, data)
    except StripError:
        return
    assert stripper.content_digest(io.BytesIO(data)) == report.content_digest
    again, second = strip_bytes(stripper, copy)
    assert again == copy
    assert second.content_digest == report.content_digest
    assert leftover_bytes(copy, secrets, ()) == []


def texts(data: bytes, suffix: str, tmp: Path) -> list[str]:
    """The tag texts mutagen reads from a seed file (what no copy of a mutant may hold)."""
    path = tmp / f"seed{suffix}"
    path.write_bytes(data)
    return [t for t in _mutagen_texts(path) if len(t) >= MIN_VALUE]


def peak_memory(stripper: PlannedStripper, source: Path, sink: Path) -> int:
    """The most memory Python held while stripping `source` into the file `sink`."""
    tracemalloc.start()
    try:
        with source.open("rb") as reader, sink.open("wb") as writer:
            stripper.strip(reader, writer)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
