"""Sharing copies over the whole corpus, in-process, against `exiftool -all=` in the same run.

For every corpus file Custody supports, makes the checked sharing copy (strip, re-extract,
byte scan, content digest), then checks every released copy independently: ExifTool's view
of it (sensitive tags left), the original's sensitive values as bytes, and the content
digest recomputed on both sides. ExifTool strips the same files in one process for the
baseline. The last line printed is one JSON object.

    python bench/strip.py [--corpus ../shared/corpus]
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custody.media import SNIFF_BYTES, detect_media_type
from custody.metadata.base import StripError, UnsupportedFormatError
from custody.metadata.copies import make_copy, stripper_for, value_needles
from custody.metadata.extract import extract_metadata

SENSITIVE_TAG_WORDS = (
    "GPS",
    "Serial",
    "Artist",
    "Author",
    "Creator",
    "OwnerName",
    "LastModifiedBy",
    "ThumbnailImage",
    "PreviewImage",
    "Picture",
    "CoverArt",
)
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def corpus_files(root: Path) -> list[Path]:
    skip = {".md", ".tsv", ".txt", ".toml", ".rst"}
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() not in skip and "_licences" not in p.parts
    )


def ours(
    files: list[Path], out: Path
) -> tuple[float, list[tuple[Path, Path, str]], dict[str, int]]:
    released: list[tuple[Path, Path, str]] = []
    outcomes = {"released": 0, "refused": 0, "unsupported": 0}
    start = time.perf_counter()
    for index, path in enumerate(files):
        with path.open("rb") as stream:
            media_type = detect_media_type(stream.read(SNIFF_BYTES))
        target = out / f"{index:04d}{path.suffix.lower()}"
        try:
            make_copy(
                path,
                media_type,
                target,
                original_metadata=extract_metadata(path, media_type),
                extract=extract_metadata,
            )
        except UnsupportedFormatError:
            outcomes["unsupported"] += 1
            continue
        except StripError:
            outcomes["refused"] += 1
            target.unlink(missing_ok=True)
            continue
        outcomes["released"] += 1
        released.append((path, target, media_type))
    return time.perf_counter() - start, released, outcomes


def exiftool_baseline(files: list[Path], out: Path) -> float:
    for index, path in enumerate(files):
        shutil.copyfile(path, out / f"{index:04d}{path.suffix.lower()}")
    start = time.perf_counter()
    subprocess.run(
        ["exiftool", "-q", "-q", "-m", "-all=", "-overwrite_original", str(out)],
        capture_output=True,
        check=False,
    )
    return time.perf_counter() - start


def tags_left(copies: list[Path]) -> int:
    if not copies:
        return 0
    result = subprocess.run(
        ["exiftool", "-a", "-G1", "-s", "-j", *map(str, copies)],
        capture_output=True,
        text=True,
        check=False,
    )
    records = json.loads(result.stdout or "[]")
    return sum(1 for r in records if sensitive_tags(r))


def sensitive_tags(record: dict[str, object]) -> list[str]:
    """The GPS, serial, name and thumbnail tags ExifTool still sees in a copy.

    Not counted: the ICC profile header's ProfileCreator (the profile's vendor, e.g. "Apple
    Computer Inc.", part of the colour data that copies keep), and ExifTool's name for the
    main image of a JPEG-compressed TIFF (its strips, shown as "PreviewImage").
    """
    found = []
    for key in record:
        if key.split(":", 1)[0].startswith("ICC"):
            continue
        # ExifTool names a JPEG-compressed TIFF's own strips PreviewImage (no StripOffsets).
        main_image = record.get("IFD0:Compression") == "JPEG" and "IFD0:StripOffsets" not in record
        if key.startswith("IFD0:PreviewImage") and main_image:
            continue
        if any(word in key for word in SENSITIVE_TAG_WORDS):
            found.append(key)
    return found


def values_left(released: list[tuple[Path, Path, str]]) -> int:
    leaks = 0
    for original, copy, media_type in released:
        needles = value_needles(extract_metadata(original, media_type).sensitive_values)
        data = copy.read_bytes()
        leaks += any(needle in data for needle in needles)
    return leaks


def content_preserved(released: list[tuple[Path, Path, str]]) -> float:
    same = 0
    for original, copy, media_type in released:
        stripper = stripper_for(media_type)
        with original.open("rb") as a, copy.open("rb") as b:
            same += stripper.content_digest(a) == stripper.content_digest(b)
    return same / len(released) if released else 1.0


def main() -> None:
    logging.getLogger("exifread").setLevel(logging.ERROR)  # per-file parser chatter
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    if shutil.which("exiftool") is None:
        raise SystemExit("exiftool is required for the baseline (Debian: libimage-exiftool-perl)")
    files = corpus_files(args.corpus)
    with tempfile.TemporaryDirectory(prefix="custody-bench-strip-") as tmp:
        ours_dir, theirs_dir = Path(tmp) / "ours", Path(tmp) / "exiftool"
        ours_dir.mkdir()
        theirs_dir.mkdir()
        elapsed, released, outcomes = ours(files, ours_dir)
        exiftool_elapsed = exiftool_baseline(files, theirs_dir)
        result = {
            "files": len(files),
            **outcomes,
            "files_per_s": round(len(files) / elapsed, 1),
            "exiftool_files_per_s": round(len(files) / exiftool_elapsed, 1),
            "speedup_vs_exiftool": round(exiftool_elapsed / elapsed, 2),
            "files_with_sensitive_tags_left": tags_left([c for _, c, _ in released]),
            "files_with_original_values_left": values_left(released),
            "content_preserved_ratio": round(content_preserved(released), 4),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
