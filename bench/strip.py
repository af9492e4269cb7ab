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

from custody.metadata.copies import stripper_for, value_needles
from custody.metadata.extract import extract_metadata
from tests.custody.metadata.corpus_copies import (
    CORPUS,
    Outcomes,
    copy_all,
    corpus_files,
    sensitive_tags,
)


def ours(files: list[Path], out: Path) -> tuple[float, Outcomes]:
    start = time.perf_counter()
    outcomes = copy_all(files, out)
    return time.perf_counter() - start, outcomes


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
        elapsed, outcomes = ours(files, ours_dir)
        released = outcomes.released
        exiftool_elapsed = exiftool_baseline(files, theirs_dir)
        result = {
            "files": len(files),
            "released": len(released),
            "refused": len(outcomes.refused),
            "unsupported": len(outcomes.unsupported),
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
