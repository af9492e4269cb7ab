"""The corpus through the sharing-copy pipeline, shared by the corpus test and bench/strip.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from custody.media import SNIFF_BYTES, detect_media_type
from custody.metadata.base import StripError, UnsupportedFormatError
from custody.metadata.copies import make_copy
from custody.metadata.extract import extract_metadata

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus"
SKIP_SUFFIXES = {".md", ".tsv", ".txt", ".toml", ".rst"}
# What the issue counts as a leak in a copy: GPS, serial, owner/author and thumbnail tags.
SENSITIVE_TAG_WORDS = (
    "GPS", "Serial", "Artist", "Author", "Creator", "OwnerName", "LastModifiedBy",
    "ThumbnailImage", "PreviewImage", "Picture", "CoverArt",
)  # fmt: skip


@dataclass
class Outcomes:
    released: list[tuple[Path, Path, str]] = field(default_factory=list)  # original, copy, type
    refused: list[tuple[Path, str]] = field(default_factory=list)  # original, reason
    unsupported: list[Path] = field(default_factory=list)


def corpus_files(root: Path = CORPUS) -> list[Path]:
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() not in SKIP_SUFFIXES and "_licences" not in p.parts
    )  # fmt: skip


def copy_all(files: list[Path], out: Path) -> Outcomes:
    """Make the checked sharing copy of every file into `out`; note refusals and reasons."""
    outcomes = Outcomes()
    for index, path in enumerate(files):
        with path.open("rb") as stream:
            media_type = detect_media_type(stream.read(SNIFF_BYTES))
        target = out / f"{index:04d}{path.suffix.lower()}"
        try:
            original = extract_metadata(path, media_type)
            make_copy(
                path, media_type, target, original_metadata=original, extract=extract_metadata
            )
        except UnsupportedFormatError:
            outcomes.unsupported.append(path)
        except StripError as exc:
            target.unlink(missing_ok=True)
            outcomes.refused.append((path, exc.reason))
        else:
            outcomes.released.append((path, target, media_type))
    return outcomes


def sensitive_tags(record: dict[str, object]) -> list[str]:
    """The GPS, serial, name and thumbnail tags ExifTool (`-a -G1 -s -j`) sees in a copy.

    Not counted: the ICC profile header's ProfileCreator (the profile's vendor, e.g. "Apple
    Computer Inc.", part of the colour data copies keep), and ExifTool's name for the main
    image of a JPEG-compressed TIFF (its strips, shown as "PreviewImage").
    """
    jpeg_tiff = record.get("IFD0:Compression") == "JPEG" and "IFD0:StripOffsets" not in record
    return [
        key for key in record
        if not key.split(":", 1)[0].startswith("ICC")
        and not (jpeg_tiff and key.startswith("IFD0:PreviewImage"))
        and any(word in key for word in SENSITIVE_TAG_WORDS)
    ]  # fmt: skip
