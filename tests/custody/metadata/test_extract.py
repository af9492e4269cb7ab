"""Tests for custody.metadata.extract: each family on real files, ExifTool agreement, fuzzing."""

from __future__ import annotations

import io
import json
import re
import shutil
import struct
import subprocess
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.media import SNIFF_BYTES, detect_media_type
from custody.metadata.base import Metadata
from custody.metadata.extract import DEFAULT_LIMITS, Limits, extract_metadata, families
from custody.metadata.extractors.collector import Collector
from custody.metadata.extractors.jpeg import extract_jpeg
from custody.metadata.extractors.kinds import classify

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus"
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS}")
SECONDS_PER_FILE = 5.0  # generous: the slowest corpus file takes well under half a second


def media_type_of(path: Path) -> str:
    with path.open("rb") as fh:
        return detect_media_type(fh.read(SNIFF_BYTES))


def extract(path: Path, *, limits: Limits = DEFAULT_LIMITS) -> Metadata:
    return extract_metadata(path, media_type_of(path), limits=limits)


def corpus_file(relative: str) -> Path:
    path = CORPUS / relative
    if not path.is_file():
        pytest.skip(f"{relative} is not in the corpus")
    return path


def flags(metadata: Metadata) -> set[str]:
    sensitive = metadata.sensitive
    kinds = ("gps", "device_serial", "names", "thumbnail", "dates")
    found = {kind for kind in kinds if getattr(sensitive, kind)}
    return found | {f"other:{kind}" for kind in sensitive.other}


# --- Each family, on real files that carry what a witness must be warned about ----------

FAMILIES = [
    # (file, flags it must raise, fields it must have (None: any value), scanned values)
    ("exif-samples/jpg/gps/DSCN0010.jpg", {"gps", "thumbnail", "dates"},
     {"EXIF:GPS GPSLatitude": "[43, 28, 1407/500]", "EXIF:JPEGThumbnail": "<6702 bytes>"}, []),
    ("exif-samples/heic/IMG_5195.HEIC", {"gps"}, {"EXIF:GPS GPSLongitude": None}, []),
    ("exif-samples/heic/mobile/iphone_13_pro_max.HEIC", {"thumbnail"},
     {"HEIF:iref/thmb": "1 thumbnail item(s)"}, []),
    ("exiftool/t/images/OlympusE1.jpg", {"device_serial", "other:makernote"},
     {"EXIF:MakerNote SerialNumber": "143008611", "EXIF:MakerNote LensSerialNumber": "050105886"},
     ["143008611", "4001310004375102"]),
    # exifread misreads this Nikon maker note; our own reader of serial tags finds it.
    ("exiftool/t/images/NikonD70.jpg", {"device_serial"}, {}, ["NO= 20025585"]),
    ("exif-samples/jpg/Canon_DIGITAL_IXUS_400.jpg", {"names"},
     {"EXIF:MakerNote OwnerName": "Jean-Pierre Grignon"}, ["Jean-Pierre Grignon"]),
    ("exif-samples/jpg/Pentax_K10D.jpg", {"names", "other:unique-id"},
     {"EXIF:Image XPAuthor": "www.laitche.com", "XMP:dc:creator": "Laitche"}, ["Laitche"]),
    ("exiftool/t/images/ExtendedXMP.jpg", {"names"}, {"XMP:pdf:Author": "PhilToo"}, ["PhilToo"]),
    ("exiftool/t/images/ExifTool.jpg",
     {"names", "device_serial", "thumbnail", "other:location-text"},
     {"IPTC:By-line": "Phil Harvey", "IPTC:City": "Kingston", "JPEG:APP12/Serial#": "#00000001",
      "JPEG:APP0/JFXX": None, "JPEG:APP12/Ducky/Copyright": "Copyright 2004 Phil Harvey"},
     ["Phil Harvey", "Kingston", "#00000001"]),
    ("exiftool/t/images/ExifTool.tif", {"names", "other:location-text"},
     {"IPTC:By-line": "I'm the author", "EXIF:Image Make": "Canon"}, ["I'm the author"]),
    ("exiftool/t/images/PNG.png", {"names", "other:comment"},
     {"XMP:dc:creator": "Phil Harvey", "PNG:tEXt/comment": "test comment"}, ["Phil Harvey"]),
    ("mat2-tests/tests/data/dirty.png", {"dates", "other:comment"},
     {"PNG:iTXt/Comment": "This is a comment, be careful!", "PNG:tIME": "2018-03-20T21:59:25"}, []),
    # ImageMagick's "Raw profile type exif": a hex dump of an EXIF block in a zTXt chunk.
    ("pillow/Tests/images/exif_imagemagick.png", {"dates"},
     {"EXIF:Image Orientation": "Horizontal (normal)"}, []),
    ("exiftool/t/images/RIFF.webp", {"names"}, {"EXIF:Image Artist": "me"}, []),
    ("pillow/Tests/images/flower2.webp", {"thumbnail"}, {"EXIF:JPEGThumbnail": None}, []),
    ("exiftool/t/images/MP3.mp3", {"names", "thumbnail", "dates"},
     {"ID3:TPE1": "Phil Harvey", "ID3:APIC:comment": None, "ID3:TCOM": "A Composer"},
     ["Phil Harvey"]),
    ("mutagen/tests/data/apev2-lyricsv2.mp3", {"names"},
     {"APE:REPLAYGAIN_TRACK_GAIN": "-4.080000 dB", "ID3:TPE1": "Auth"}, []),
    ("mat2-tests/tests/data/dirty.flac", {"names", "thumbnail"},
     {"Vorbis:ARTIST": "jvoisin", "FLAC:Picture": "<image/jpeg picture '', 139309 bytes>"},
     ["jvoisin"]),
    ("exiftool/t/images/Vorbis.ogg", {"names", "thumbnail"},
     {"Vorbis:ARTIST": "Who Knows", "Vorbis:COVERART": None}, ["Who Knows"]),
    ("exiftool/t/images/Opus.opus", {"thumbnail"}, {"Vorbis:METADATA_BLOCK_PICTURE": None}, []),
    ("exiftool/t/images/QuickTime.m4a", {"names", "thumbnail", "dates"},
     {"MP4:©ART": "Phil Harvey", "MP4:covr": "<cover image, 19 bytes>"}, ["Phil Harvey"]),
    ("mat2-tests/tests/data/dirty.wav", {"names", "dates"},
     {"RIFF:INFO/IART": "jvoisin", "ID3:TPE1": "jvoisin"}, ["jvoisin"]),
    ("exiftool/t/images/PDF.pdf",
     {"names", "other:private-app-data", "other:location-text", "other:unique-id"},
     {"XMP:dc:creator": "Phil Harvey", "PDF:PieceInfo": "/AdobePhotoshop"}, ["Phil Harvey"]),
    ("pdfjs/issue14046.pdf", {"names"},
     {"PDF:Info/Author": "Yuval Jacobi", "PDF:Annots/T": "yuvya"}, ["Yuval Jacobi", "yuvya"]),
    ("pdfjs/issue19326.pdf", {"thumbnail"}, {"PDF:Thumb": "present"}, []),
    ("mat2-tests/tests/data/comment.docx", {"names", "dates", "other:revision-ids"},
     {"OOXML:word/comments.xml@w:author": "Alex Marchant",
      "OOXML:word/people.xml@w15:author": "Alex Marchant",
      "OOXML:core/cp:lastModifiedBy": "Alex Marchant"}, ["Alex Marchant"]),
    ("mat2-tests/tests/data/revision.docx", {"names"},
     {"OOXML:word/document.xml@w:author": "Unknown Author"}, ["Unknown Author"]),
    ("exiftool/t/images/OOXML.docx", {"names", "thumbnail", "other:organisation"},
     {"OOXML:core/dc:creator": "Author: Jeff", "OOXML:app/Company": "Company - ExifTool",
      "OOXML:docProps/thumbnail.jpeg": "<251 bytes>"}, ["Jeff"]),
    # A picture pasted into a document keeps its own metadata.
    ("mat2-tests/tests/data/dirty.docx", {"other:comment"},
     {"OOXML:word/media/image1.png|PNG:iTXt/Comment": "This is a comment, be careful!"}, []),
    ("mat2-tests/tests/data/revision.odt", {"names", "thumbnail"},
     {"ODF:content.xml/dc:creator": "Unknown Author", "ODF:meta/meta:initial-creator": "jvoisin"},
     ["jvoisin"]),
    ("exiftool/t/images/OpenDoc.ods", {"names", "thumbnail"},
     {"ODF:meta/dc:creator": "IDHW IDHW Informatica",
      "ODF:Thumbnails/thumbnail.png": "<697 bytes>"}, []),
    ("odfpy/api-for-odfpy.odt", {"names"}, {"ODF:meta/meta:printed-by": "Søren Roug"}, []),
]  # fmt: skip


@needs_corpus
@pytest.mark.parametrize(
    ("relative", "expected_flags", "expected_fields", "scanned"),
    FAMILIES,
    ids=[case[0].rsplit("/", 1)[-1] for case in FAMILIES],
)
def test_family(
    relative: str,
    expected_flags: set[str],
    expected_fields: dict[str, str | None],
    scanned: list[str],
) -> None:
    metadata = extract(corpus_file(relative))
    assert expected_flags <= flags(metadata)
    for name, value in expected_fields.items():
        assert name in metadata.fields, sorted(metadata.fields)
        assert value is None or metadata.fields[name] == value
    assert set(scanned) <= set(metadata.sensitive_values)
    assert set(metadata.sensitive.fields) <= set(metadata.fields)
    flagged = {name for name in expected_fields if classify(name.rpartition("|")[2])}
    assert flagged <= set(metadata.sensitive.fields)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("EXIF:GPS GPSVersionID", "gps"),  # a GPS directory at all: the device had a fix
        ("XMP:exif:GPSLatitude", "gps"),
        ("QuickTime:udta/©xyz", "gps"),
        ("EXIF:EXIF BodySerialNumber", "device_serial"),
        ("EXIF:MakerNote SerialNumberFormat", None),  # how Canon prints it, not a serial
        ("RIFF:bext/OriginatorReference", "device_serial"),
        ("EXIF:EXIF ImageUniqueID", "unique-id"),  # per picture, not per device
        ("EXIF:Image Copyright", "names"),  # names the photographer, in practice
        ("ID3:TPE1", "names"),  # a field recording's "artist" is who pressed record
        ("PDF:Info/Creator", "software"),  # ISO 32000-1 Table 317: the authoring product
        ("PDF:Annots/T", "names"),
        ("XMP:xmp:CreatorTool", "software"),
        ("OOXML:core/cp:lastModifiedBy", "names"),
        ("OOXML:app/LinksUpToDate", None),
        ("PNG:tEXt/icc:copyright", None),  # the ICC profile's vendor
        ("EXIF:JPEGThumbnail", "thumbnail"),
        ("ID3:APIC:cover", "thumbnail"),
        ("IPTC:City", "location-text"),
        ("EXIF:Image Make", "camera-model"),
        ("EXIF:EXIF DateTimeOriginal", "dates"),
        ("EXIF:Image Orientation", None),
    ],
)
def test_sensitive_rules(name: str, kind: str | None) -> None:
    assert classify(name) == kind


@needs_corpus
def test_an_encrypted_pdf_is_recorded_not_raised() -> None:
    metadata = extract(corpus_file("pikepdf/tests/resources/graph-encrypted.pdf"))
    assert "pdf: encrypted" in metadata.errors


def test_a_damaged_pdf_gives_the_same_error_text_every_time() -> None:
    """The error is sealed in the sidecar, whose hash is logged: no memory address in it,
    whether the PDF is parsed from memory or from the file."""
    damaged = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n" + b"x" * 100
    errors = {extract_metadata(io.BytesIO(damaged), "application/pdf").errors for _ in range(2)}
    (only,) = errors
    assert any("stream <evidence file>" in error for error in only), only


@needs_corpus
def test_an_entity_attack_in_odf_is_refused() -> None:
    metadata = extract(corpus_file("odfpy/tests/examples/nasty.odt"))
    assert any(error.startswith("odf: DTDForbidden") for error in metadata.errors)
    assert metadata.fields["ODF:meta/meta:generator"] == "ODFPY/1.3.4dev"  # the rest still read


@needs_corpus
def test_a_pdf_above_the_size_limit_is_not_parsed() -> None:
    metadata = extract(corpus_file("exiftool/t/images/PDF.pdf"), limits=Limits(pdf_max_bytes=1000))
    assert any(error.startswith("pdf: not parsed") for error in metadata.errors)
    assert "XMP:dc:creator" in metadata.fields  # the XMP scan does not depend on pikepdf


@needs_corpus
def test_the_read_budget_stops_a_parser_and_is_recorded() -> None:
    metadata = extract(
        corpus_file("exif-samples/jpg/gps/DSCN0010.jpg"), limits=Limits(read_budget=64)
    )
    assert any("LimitError: read budget" in error for error in metadata.errors)


@needs_corpus
def test_fields_are_capped() -> None:
    metadata = extract(corpus_file("exiftool/t/images/ExifTool.jpg"), limits=Limits(max_fields=5))
    assert len(metadata.fields) == 5
    assert "collector: LimitError: more than 5 fields" in metadata.errors


# --- Synthetic files, for what the corpus lacks ------------------------------------------


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def test_quicktime_user_data_location(tmp_path: Path) -> None:
    # Android and older iPhones: moov/udta/©xyz, QuickTime international text (ISO 6709).
    location = b"+48.8577+002.2950/"
    xyz = box(b"\xa9xyz", struct.pack(">HH", len(location), 0x15C7) + location)
    path = tmp_path / "clip.mp4"
    path.write_bytes(box(b"ftyp", b"isom\x00\x00\x02\x00isom") + box(b"moov", box(b"udta", xyz)))
    metadata = extract_metadata(path, "video/mp4")
    assert metadata.fields["QuickTime:udta/©xyz"] == location.decode()
    assert metadata.sensitive.gps
    assert location.decode() in metadata.sensitive_values


def test_quicktime_mdta_keys_location(tmp_path: Path) -> None:
    # iPhone videos: moov/meta with an mdta handler, a keys box and an ilst that uses them.
    key = b"com.apple.quicktime.location.ISO6709"
    keys = box(b"keys", b"\x00" * 4 + struct.pack(">I", 1) + box(b"mdta", key))
    value = box(b"data", struct.pack(">II", 1, 0) + b"+37.3349-122.0090+061.287/")
    meta = box(b"hdlr", b"\x00" * 8 + b"mdta" + b"\x00" * 13) + keys
    meta += box(b"ilst", box(struct.pack(">I", 1), value))
    path = tmp_path / "clip.mov"
    path.write_bytes(box(b"ftyp", b"qt  \x00\x00\x00\x00qt  ") + box(b"moov", box(b"meta", meta)))
    metadata = extract_metadata(path, "video/quicktime")
    assert metadata.fields[f"QuickTime:keys/{key.decode()}"] == "+37.3349-122.0090+061.287/"
    assert metadata.sensitive.gps


def test_broadcast_wave_originator(tmp_path: Path) -> None:
    bext = b"A field note".ljust(256, b"\x00") + b"ZOOM H5".ljust(32, b"\x00")
    bext += b"ZH5-SN0042-20240101".ljust(32, b"\x00") + b"2024-01-01" + b"12:00:00"
    body = b"WAVE" + b"bext" + struct.pack("<I", len(bext)) + bext
    path = tmp_path / "take.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    metadata = extract_metadata(path, "audio/wav")
    assert metadata.fields["RIFF:bext/OriginatorReference"] == "ZH5-SN0042-20240101"
    assert metadata.sensitive.device_serial
    assert metadata.sensitive.names
    assert "ZH5-SN0042-20240101" in metadata.sensitive_values


def test_a_hostile_length_cannot_keep_a_parser_reading(tmp_path: Path) -> None:
    # A maker note that claims 4 GiB: exifread reads it a byte at a time, past the end.
    ifd0 = struct.pack("<HHHII", 1, 0x8769, 4, 1, 26) + b"\x00" * 4  # ExifOffset -> 26
    exif_ifd = struct.pack("<HHHII", 1, 0x927C, 7, 0xFFFFFFFF, 8) + b"\x00" * 4
    path = tmp_path / "hostile.tif"
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd0 + exif_ifd)
    started = time.perf_counter()
    metadata = extract_metadata(path, "image/tiff", limits=Limits(read_calls=20_000))
    assert time.perf_counter() - started < 1
    assert any(error.startswith("exif: LimitError: too many reads") for error in metadata.errors)


def docx(path: Path, parts: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", "<Types/>")
        for name, data in parts.items():
            package.writestr(name, data)
    return path


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
APP = b'<Properties xmlns="x"><Company>Witness Collective</Company></Properties>'


def test_a_zip_bomb_member_is_refused(tmp_path: Path) -> None:
    bomb = b"<document>" + b" " * (2 * 1024 * 1024) + b"</document>"
    path = docx(tmp_path / "bomb.docx", {"word/document.xml": bomb, "docProps/app.xml": APP})
    metadata = extract_metadata(path, DOCX, limits=Limits(zip_max_part=1024 * 1024))
    assert any("expands beyond" in error for error in metadata.errors)
    assert metadata.fields["OOXML:app/Company"] == "Witness Collective"


def test_a_package_with_too_many_members_is_refused(tmp_path: Path) -> None:
    path = docx(tmp_path / "many.docx", {f"word/part{i}.xml": b"<a/>" for i in range(20)})
    metadata = extract_metadata(path, DOCX, limits=Limits(zip_max_members=10))
    assert any("a ZIP directory of 21 members" in error for error in metadata.errors)


def test_an_entity_expansion_in_core_properties_is_refused(tmp_path: Path) -> None:
    laughs = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa">'
    laughs += b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><r>&b;</r>'
    path = docx(tmp_path / "laughs.docx", {"docProps/core.xml": laughs, "docProps/app.xml": APP})
    metadata = extract_metadata(path, DOCX)
    assert any("DTDForbidden" in error for error in metadata.errors)
    assert metadata.fields["OOXML:app/Company"] == "Witness Collective"
    assert metadata.sensitive.other == ("organisation",)


def test_long_values_are_truncated_and_control_characters_escaped(tmp_path: Path) -> None:
    text = b"Author\x00" + b"x" * 5000
    chunk = struct.pack(">I", len(text)) + b"tEXt" + text + b"\x00" * 4
    bell = b"Comment\x00ring\x07"
    chunk += struct.pack(">I", len(bell)) + b"tEXt" + bell + b"\x00" * 4
    path = tmp_path / "long.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk)
    metadata = extract_metadata(path, "image/png")
    assert metadata.fields["PNG:tEXt/Author"] == "x" * 1024 + "…"
    assert metadata.fields["PNG:tEXt/Comment"] == "ring\\x07"


def test_xmp_is_found_in_any_file(tmp_path: Path) -> None:
    packet = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
        b'syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:e="http://'
        b'purl.org/dc/elements/1.1/" exif:GPSLatitude="51,30.5N"><e:creator><rdf:Seq><rdf:li>A. '
        b"Witness</rdf:li></rdf:Seq></e:creator></rdf:Description></rdf:RDF></x:xmpmeta>"
    )
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\x00" * 100 + packet + b"\x00" * 100)
    metadata = extract_metadata(path, "application/octet-stream")
    # The declared prefix "e" is not the name: dc is dc whatever a writer calls it.
    assert metadata.fields == {"XMP:exif:GPSLatitude": "51,30.5N", "XMP:dc:creator": "A. Witness"}
    assert metadata.sensitive.gps
    assert metadata.sensitive.names
    assert metadata.sensitive_values == ("51,30.5N", "A. Witness")


@pytest.mark.parametrize("content", [b"", b"\xff\xd8", b"PK\x03\x04", b"%PDF-1.7\n", b"ID3"])
def test_empty_and_truncated_files_do_not_raise(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "stub"
    path.write_bytes(content)
    metadata = extract(path)
    assert not metadata.sensitive.any


def test_an_unreadable_path_is_an_error_not_an_exception(tmp_path: Path) -> None:
    metadata = extract_metadata(tmp_path / "missing.jpg", "image/jpeg")
    assert metadata.errors == ("open: FileNotFoundError: [Errno 2] No such file or directory: "
                               f"'{tmp_path / 'missing.jpg'}'",)  # fmt: skip


def test_media_type_parameters_and_office_families() -> None:
    assert families("audio/ogg; codecs=opus") == ("audio",)
    assert families("application/vnd.oasis.opendocument.graphics") == ("odf",)
    assert families(DOCX) == ("ooxml",)
    assert families("application/x-unknown") == ("xmp",)


# --- The whole corpus: never raises, bounded time, and agreement with ExifTool -----------


def corpus_paths() -> list[Path]:
    lines = (CORPUS / "FILES.tsv").read_text(encoding="utf-8").splitlines()
    return [CORPUS / line.split("\t", 1)[0] for line in lines if line.strip()]


@pytest.fixture(scope="module")
def corpus_results() -> dict[Path, tuple[Metadata, float]]:
    if not CORPUS.is_dir():
        pytest.skip(f"no corpus at {CORPUS}")
    results = {}
    for path in corpus_paths():
        started = time.perf_counter()
        metadata = extract(path)
        results[path] = (metadata, time.perf_counter() - started)
    return results


def test_every_corpus_file_extracts_in_bounded_time(
    corpus_results: dict[Path, tuple[Metadata, float]],
) -> None:
    assert len(corpus_results) >= 500
    for path, (metadata, seconds) in corpus_results.items():
        assert seconds < SECONDS_PER_FILE, path
        assert len(metadata.fields) <= DEFAULT_LIMITS.max_fields
        assert all(
            len(value) <= DEFAULT_LIMITS.max_value_chars + 1 for value in metadata.fields.values()
        )
        assert set(metadata.sensitive.fields) <= set(metadata.fields), path
        assert all(re.match(r"^[\w ./:|#-]+: ", error) for error in metadata.errors), path


@pytest.fixture(scope="module")
def exiftool_tags() -> dict[Path, dict[str, object]]:
    if not CORPUS.is_dir():
        pytest.skip(f"no corpus at {CORPUS}")
    if shutil.which("exiftool") is None:
        pytest.skip("exiftool is not installed")
    paths = [str(path) for path in corpus_paths()]
    done = subprocess.run(
        ["exiftool", "-a", "-G1", "-s", "-j", "-q", "-q", *paths],
        capture_output=True,
        check=False,
        timeout=120,
    )
    return {Path(entry["SourceFile"]): entry for entry in json.loads(done.stdout)}


def _means(kind: str, key: str, value: object) -> bool:
    """Whether ExifTool's "Group:Tag" and its value mean `kind`."""
    group, _, tag = key.partition(":")
    # Groups ExifTool computes (Composite) or describes the file system with are not metadata;
    # empty values name nobody and locate nothing.
    if group in ("Composite", "System", "File", "ExifTool") or not str(value).strip():
        return False
    return EXIFTOOL_KINDS[kind](group, tag)


# ExifTool tag names (after the group) that mean each kind.
EXIFTOOL_KINDS: dict[str, Callable[[str, str], bool]] = {
    "gps": lambda group, tag: tag.startswith("GPS"),
    "device_serial": lambda group, tag: "Serial" in tag and tag != "SerialNumberFormat",
    # PDF:Creator is the application that made the original (ISO 32000-1 Table 317);
    # CreatorTool, ProfileCreator (ICC), SigningAuthority and AuthorsPosition are not names.
    "names": lambda group, tag: (
        bool(re.search("Author|Artist|Creator|OwnerName", tag))
        and not re.search("Tool|Software|Profile|SigningAuthority|Position|id$", tag, re.I)
        and f"{group}:{tag}" != "PDF:Creator"
    ),
    "thumbnail": lambda group, tag: (
        tag in ("ThumbnailImage", "PreviewImage", "Picture", "CoverArt")
    ),
}

# What ExifTool finds that we do not, and why we accept it. Each entry must still be a miss
# (the test fails when it is not, so the list cannot go stale).
ALLOWED_MISSES = {
    # Thermal cameras' own APP1 "FLIR" (FFF records) and InfiRay APP segments: we record the
    # segment ("JPEG:APP1/FLIR"), but do not parse those vendor formats.
    ("device_serial", "exiftool/t/images/FLIR.jpg"),
    ("device_serial", "exiftool/t/images/InfiRay.jpg"),
    # A trail camera's maker note is a fixed binary record, not an IFD; the maker note is
    # flagged as other=makernote.
    ("device_serial", "exif-samples/jpg/Reconyx_HC500_Hyperfire.jpg"),
    # A 1998 Canon PowerShot stores its owner in a CIFF heap in APP0 (the segment is listed
    # as "JPEG:APP0/II"); no camera of the last twenty years writes CIFF into JPEG.
    ("names", "exif-samples/jpg/exif-org/sony-powershota5.jpg"),
    # ExifTool calls the only image of an old-style JPEG TIFF (Compression 6) PreviewImage;
    # it is the picture itself, not a second, smaller copy of it.
    ("thumbnail", "pillow/Tests/images/hopper_jpg.tif"),
}


@pytest.mark.parametrize("kind", sorted(EXIFTOOL_KINDS))
def test_agreement_with_exiftool(
    kind: str,
    corpus_results: dict[Path, tuple[Metadata, float]],
    exiftool_tags: dict[Path, dict[str, object]],
) -> None:
    agree, missed, only_ours = 0, [], 0
    for path, (metadata, _) in corpus_results.items():
        tags = [
            key for key, value in exiftool_tags.get(path, {}).items() if _means(kind, key, value)
        ]
        ours = getattr(metadata.sensitive, kind)
        relative = path.relative_to(CORPUS).as_posix()
        if tags and ours:
            agree += 1
        elif tags and (kind, relative) not in ALLOWED_MISSES:
            missed.append((relative, tags))
        elif not tags and ours:
            only_ours += 1
        assert not (ours and (kind, relative) in ALLOWED_MISSES), f"stale allowlist: {relative}"
    print(f"{kind}: {agree} agree, {len(missed)} missed, {only_ours} flagged by us only")
    assert len(exiftool_tags) == len(corpus_results)  # ExifTool read every file
    assert agree >= 20  # every kind occurs in the corpus: a vacuous pass would hide a break
    assert not missed


# --- Fuzzing: mutated corpus bytes never raise, and finish in bounded time ---------------

FUZZ_SEEDS = [
    "exif-samples/jpg/gps/DSCN0010.jpg",
    "exiftool/t/images/OlympusE1.jpg",
    "exiftool/t/images/ExifTool.jpg",
    "exiftool/t/images/ExifTool.tif",
    "exiftool/t/images/PNG.png",
    "exiftool/t/images/RIFF.webp",
    "exif-samples/heic/IMG_5195.HEIC",
    "exiftool/t/images/MP3.mp3",
    "mat2-tests/tests/data/dirty.flac",
    "exiftool/t/images/QuickTime.m4a",
    "exiftool/t/images/Vorbis.ogg",
    "mat2-tests/tests/data/dirty.wav",
    "exiftool/t/images/PDF.pdf",
    "mat2-tests/tests/data/comment.docx",
    "mat2-tests/tests/data/revision.odt",
]


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"no corpus at {CORPUS}")
    return tmp_path_factory.mktemp("fuzz")


@settings(
    max_examples=300,
    deadline=None,  # timed below, per file, with a bound that is not flaky on a busy machine
    database=None,  # no .hypothesis directory in the repository
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.sampled_from(FUZZ_SEEDS),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=32),
    keep=st.floats(0.02, 1.0),
)
def test_mutated_corpus_bytes_never_raise(
    fuzz_dir: Path, seed: str, flips: list[tuple[float, int]], keep: float
) -> None:
    original = CORPUS / seed
    data = bytearray(original.read_bytes())
    for where, byte in flips:  # cubed: biased to the head, where the metadata lives
        data[int(where**3 * (len(data) - 1))] = byte
    path = fuzz_dir / original.name
    path.write_bytes(data[: max(1, int(len(data) * keep))])
    started = time.perf_counter()
    metadata = extract_metadata(path, media_type_of(original))
    assert time.perf_counter() - started < SECONDS_PER_FILE
    assert isinstance(metadata, Metadata)
    path.unlink()


@needs_corpus
def test_fields_read_from_a_stream_match_the_file() -> None:
    # The same bytes through BytesIO (as for images embedded in documents) give the same fields.
    path = corpus_file("exiftool/t/images/ExtendedXMP.jpg")
    out = Collector(DEFAULT_LIMITS)
    extract_jpeg(io.BytesIO(path.read_bytes()), out)
    assert out.result("image/jpeg").fields["XMP:pdf:Author"] == "PhilToo"
