"""Every corpus file through the sharing-copy pipeline: a clean copy or a reasoned refusal.

The per-format tests check each stripper in depth; this one holds the whole pipeline
(detection, stripper choice, strip, fail-closed checks) to the issue's bar on every file,
with ExifTool as the independent judge.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from custody.media import SNIFF_BYTES, detect_media_type
from custody.metadata.base import StripError, UnsupportedFormatError
from custody.metadata.copies import make_copy, stripper_for, value_needles
from custody.metadata.extract import extract_metadata

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus"
SENSITIVE = (
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
SKIP_SUFFIXES = {".md", ".tsv", ".txt", ".toml", ".rst"}

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is absent")


def corpus() -> list[Path]:
    return sorted(
        p
        for p in CORPUS.rglob("*")
        if p.is_file() and p.suffix.lower() not in SKIP_SUFFIXES and "_licences" not in p.parts
    )


def sensitive_tags(record: dict[str, object]) -> list[str]:
    """As bench/strip.py: not the ICC header's vendor, not a JPEG TIFF's own strips."""
    jpeg_tiff = record.get("IFD0:Compression") == "JPEG" and "IFD0:StripOffsets" not in record
    return [
        key
        for key in record
        if not key.split(":", 1)[0].startswith("ICC")
        and not (jpeg_tiff and key.startswith("IFD0:PreviewImage"))
        and any(word in key for word in SENSITIVE)
    ]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[Path, Path, str]]]:
    out = tmp_path_factory.mktemp("copies")
    result: dict[str, list[tuple[Path, Path, str]]] = {
        "released": [],
        "refused": [],
        "unsupported": [],
    }
    for index, path in enumerate(corpus()):
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
            result["unsupported"].append((path, target, media_type))
        except StripError as exc:
            result["refused"].append((path, target, exc.reason))
        else:
            result["released"].append((path, target, media_type))
    return result


def test_every_file_is_copied_or_refused_with_a_reason(
    outcomes: dict[str, list[tuple[Path, Path, str]]],
) -> None:
    total = sum(len(v) for v in outcomes.values())
    assert total == len(corpus())
    assert all(reason.strip() for _, _, reason in outcomes["refused"])
    assert len(outcomes["released"]) > 150


def test_exiftool_sees_no_sensitive_tag_in_any_copy(
    outcomes: dict[str, list[tuple[Path, Path, str]]],
) -> None:
    if shutil.which("exiftool") is None:
        pytest.skip("exiftool is not installed (make test-tools installs it)")
    copies = [str(copy) for _, copy, _ in outcomes["released"]]
    result = subprocess.run(
        ["exiftool", "-a", "-G1", "-s", "-j", *copies],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    leaks = {r["SourceFile"]: sensitive_tags(r) for r in json.loads(result.stdout)}
    assert {k: v for k, v in leaks.items() if v} == {}


def test_no_copy_holds_an_original_value_and_content_is_kept(
    outcomes: dict[str, list[tuple[Path, Path, str]]],
) -> None:
    for original, copy, media_type in outcomes["released"]:
        data = copy.read_bytes()
        for needle, name in value_needles(
            extract_metadata(original, media_type).sensitive_values
        ).items():
            assert needle not in data, (original, name)
        stripper = stripper_for(media_type)
        with original.open("rb") as a, copy.open("rb") as b:
            assert stripper.content_digest(a) == stripper.content_digest(b), original
