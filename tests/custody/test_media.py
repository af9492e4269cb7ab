"""Tests for custody.media: media types from magic bytes, on synthetic heads and a real corpus."""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import pytest

from custody.media import OCTET_STREAM, SNIFF_BYTES, detect_media_type

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODP = "application/vnd.oasis.opendocument.presentation"

CORPUS = Path(__file__).parents[2].parent / "shared" / "corpus"


# --- ISO base media file format (ISO/IEC 14496-12) ---------------------------------------


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    return box(b"ftyp", major + bytes(4) + b"".join(compatible))


def track(handler: bytes) -> bytes:
    hdlr = box(b"hdlr", bytes(8) + handler + bytes(12) + b"handler\x00")
    return box(b"trak", box(b"tkhd", bytes(84)) + box(b"mdia", box(b"mdhd", bytes(24)) + hdlr))


def movie(*handlers: bytes) -> bytes:
    return box(b"moov", box(b"mvhd", bytes(100)) + b"".join(track(h) for h in handlers))


# --- ZIP packages, written with zipfile as office suites would ------------------------------


def zip_of(*entries: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries:
            # ODF and EPUB require the "mimetype" entry uncompressed; a large random "image"
            # is stored too, as a PNG would be.
            stored = name == "mimetype" or name.endswith(".png")
            kind = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            archive.writestr(name, data, compress_type=kind)
    return buffer.getvalue()


def content_types(main: str, content_type: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/{main}" ContentType="{content_type}"/></Types>'
    ).encode()


def package_rels(main: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="' + main + '" Type="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships/officeDocument"/></Relationships>'
    ).encode()


OOXML_PARTS = {
    DOCX: ("word/document.xml", "wordprocessingml.document.main+xml"),
    XLSX: ("xl/workbook.xml", "spreadsheetml.sheet.main+xml"),
    PPTX: ("ppt/presentation.xml", "presentationml.presentation.main+xml"),
}


def ooxml(media_type: str) -> bytes:
    main, suffix = OOXML_PARTS[media_type]
    content_type = f"application/vnd.openxmlformats-officedocument.{suffix}"
    return zip_of(
        ("[Content_Types].xml", content_types(main, content_type)),
        ("_rels/.rels", package_rels(main)),
        ("docProps/core.xml", b"<cp:coreProperties/>"),
        (main, b"<document/>"),
    )


def odf(media_type: str, *, mimetype_first: bool = True) -> bytes:
    mimetype = ("mimetype", media_type.encode())
    rest = [
        ("META-INF/manifest.xml", b"<manifest:manifest/>"),
        ("content.xml", b"<office:document-content/>"),
        ("meta.xml", b"<office:document-meta/>"),
    ]
    return zip_of(mimetype, *rest) if mimetype_first else zip_of(*rest, mimetype)


SIGNATURES = [
    pytest.param(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg", id="jpeg-jfif"),
    pytest.param(b"\xff\xd8\xff\xe1\x12\x34Exif\x00\x00", "image/jpeg", id="jpeg-exif"),
    pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png", id="png"),
    pytest.param(b"GIF87a\x01\x00\x01\x00", "image/gif", id="gif87a"),
    pytest.param(b"GIF89a\x01\x00\x01\x00", "image/gif", id="gif89a"),
    pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf", id="pdf"),
    pytest.param(b"fLaC\x00\x00\x00\x22", "audio/flac", id="flac"),
    pytest.param(b"#!AMR\n", "audio/amr", id="amr"),
    pytest.param(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", "video/webm", id="webm"),
    pytest.param(b"BM\x36\x00\x0c\x00\x00\x00\x00\x00\x36\x00", "image/bmp", id="bmp"),
    pytest.param(b"\x00\x00\x01\x00\x01\x00\x10\x10", "image/x-icon", id="ico"),
    pytest.param(b"7z\xbc\xaf\x27\x1c\x00\x04", "application/x-7z-compressed", id="7z"),
    pytest.param(b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "application/gzip", id="gzip"),
    pytest.param(b"Rar!\x1a\x07\x01\x00", "application/vnd.rar", id="rar5"),
    pytest.param(
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(8), "application/x-ole-storage", id="ole"
    ),
    pytest.param(b"{\\rtf1\\ansi\\deff0 hello}", "text/rtf", id="rtf"),
    pytest.param(b"RIFF\x24\x08\x00\x00WAVEfmt ", "audio/wav", id="wav"),
    pytest.param(b"RIFF\x24\x08\x00\x00WEBPVP8 ", "image/webp", id="webp"),
    pytest.param(b"RIFF\x24\x08\x00\x00AVI LIST", "video/x-msvideo", id="avi"),
    pytest.param(b"FORM\x00\x00\x10\x00AIFFCOMM", "audio/aiff", id="aiff"),
    pytest.param(b"FORM\x00\x00\x10\x00AIFCFVER", "audio/aiff", id="aifc"),
    pytest.param(ftyp(b"heic", b"mif1", b"heic"), "image/heic", id="heic"),
    pytest.param(ftyp(b"heix", b"mif1"), "image/heic", id="heix"),
    pytest.param(ftyp(b"mif1", b"mif1", b"heic"), "image/heif", id="mif1-major"),
    pytest.param(ftyp(b"avif", b"mif1", b"miaf"), "image/avif", id="avif"),
    pytest.param(ftyp(b"M4A ", b"M4A ", b"mp42", b"isom"), "audio/mp4", id="m4a"),
    pytest.param(ftyp(b"M4B ", b"M4B ", b"mp42"), "audio/mp4", id="m4b"),
    pytest.param(ftyp(b"isom", b"isom", b"mp42") + box(b"free"), "video/mp4", id="mp4-isom"),
    pytest.param(ftyp(b"mp42", b"mp42", b"isom") + movie(b"vide"), "video/mp4", id="mp4-mp42"),
    pytest.param(ftyp(b"qt  ", b"qt  "), "video/quicktime", id="quicktime"),
    pytest.param(ftyp(b"3gp5", b"3gp5", b"isom"), "video/3gpp", id="3gp"),
    pytest.param(ftyp(b"crx ", b"crx ", b"isom"), "image/x-canon-cr3", id="cr3"),
    pytest.param(ftyp(b"isom", b"mif1", b"avif"), "image/avif", id="avif-compatible"),
    pytest.param(ftyp(b"isom", b"mif1", b"heic"), "image/heic", id="heic-compatible"),
    pytest.param(ftyp(b"isom", b"mif1"), "image/heif", id="mif1-compatible"),
    pytest.param(
        b"OggS\x00\x02" + bytes(20) + b"\x01\x13OpusHead\x01\x02",
        "audio/ogg; codecs=opus",
        id="ogg-opus",
    ),
    pytest.param(b"OggS\x00\x02" + bytes(20) + b"\x01\x1e\x01vorbis", "audio/ogg", id="ogg-vorbis"),
    pytest.param(b"OggS\x00\x02" + bytes(20) + b"\x01\x2a\x80theora", "video/ogg", id="ogg-theora"),
    pytest.param(b"ID3\x04\x00\x00\x00\x00\x00\x23TIT2", "audio/mpeg", id="mp3-id3"),
    pytest.param(b"\xff\xfb\x90\x64" + bytes(413), "audio/mpeg", id="mp3-layer3"),
    pytest.param(b"\xff\xf3\x48\xc4" + bytes(100), "audio/mpeg", id="mp3-mpeg2"),
    pytest.param(b"\xff\xfd\x90\x64" + bytes(100), "audio/mpeg", id="mp2-layer2"),
    pytest.param(b"II*\x00\x08\x00\x00\x00\x0e\x00", "image/tiff", id="tiff-le"),
    pytest.param(b"MM\x00*\x00\x00\x00\x08\x00\x0e", "image/tiff", id="tiff-be"),
    pytest.param(b"II+\x00\x08\x00\x00\x00\x10\x00\x00\x00", "image/tiff", id="bigtiff-le"),
    pytest.param(b"MM\x00+\x00\x08\x00\x00\x00\x00\x00\x10", "image/tiff", id="bigtiff-be"),
    pytest.param(b"II*\x00\x10\x00\x00\x00CR\x02\x00", "image/x-canon-cr2", id="cr2"),
    pytest.param(ooxml(DOCX), DOCX, id="docx"),
    pytest.param(ooxml(XLSX), XLSX, id="xlsx"),
    pytest.param(ooxml(PPTX), PPTX, id="pptx"),
    pytest.param(odf(ODT), ODT, id="odt"),
    pytest.param(odf(ODS), ODS, id="ods"),
    pytest.param(odf(ODP), ODP, id="odp"),
    pytest.param(odf("application/epub+zip"), "application/epub+zip", id="epub"),
    pytest.param(zip_of(("notes.txt", b"hello")), "application/zip", id="zip"),
    pytest.param(
        zip_of(("[Content_Types].xml", b"<Types/>"), ("data/word/x.xml", b"<x/>")),
        "application/zip",
        id="opc-without-office-part",
    ),
    pytest.param(zip_of(("mimetype", b"text/plain")), "application/zip", id="zip-other-mimetype"),
]


@pytest.mark.parametrize(("head", "expected"), SIGNATURES)
def test_signature(head: bytes, expected: str) -> None:
    assert detect_media_type(head) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        pytest.param(b"Plain statement, page 1.\r\n", "text/plain", id="ascii"),
        pytest.param("Témoignage n° 3 — 証言\n".encode(), "text/plain", id="utf-8"),
        pytest.param("\ufeffwith a BOM".encode(), "text/plain", id="utf-8-bom"),
        pytest.param("é".encode() * 10 + "€".encode()[:2], "text/plain", id="cut-3-byte-char"),
        pytest.param(b"x" + "😀".encode()[:3], "text/plain", id="cut-4-byte-char"),
        pytest.param(b"x" + "😀".encode()[:1], "text/plain", id="cut-lead-byte"),
        pytest.param(b"<!DOCTYPE html><html><body>", "text/html", id="html-doctype"),
        pytest.param(b"\n  <HTML lang='en'>", "text/html", id="html-tag"),
        pytest.param(b'<?xml version="1.0"?>\n<svg xmlns="x">', "image/svg+xml", id="svg-xml"),
        pytest.param(b'<svg xmlns="http://www.w3.org/2000/svg">', "image/svg+xml", id="svg"),
        pytest.param(b'<?xml version="1.0"?>\n<note/>', "application/xml", id="xml"),
        pytest.param(b"", OCTET_STREAM, id="empty"),
        pytest.param(b"plain text\x00with a NUL", OCTET_STREAM, id="nul"),
        pytest.param(b"\x00\x01\x02\x03", OCTET_STREAM, id="binary"),
        pytest.param(b"text, then \xff in the middle, then text", OCTET_STREAM, id="invalid-utf-8"),
        pytest.param(b"text ending in an invalid byte\xff", OCTET_STREAM, id="invalid-last"),
        pytest.param(b"text ending in \xc3\x28", OCTET_STREAM, id="bad-continuation-at-end"),
        pytest.param(b"\xff\xe1abc", OCTET_STREAM, id="sync-without-layer"),
        pytest.param(b"RIFF\x24\x08\x00\x00XXXX", OCTET_STREAM, id="unknown-riff"),
        pytest.param(b"FORM\x00\x00\x10\x008SVX", OCTET_STREAM, id="unknown-iff"),
    ],
)
def test_text_and_unknown_content(head: bytes, expected: str) -> None:
    assert detect_media_type(head) == expected


def test_a_character_cut_by_the_sniff_window_is_still_text() -> None:
    text = ("a" * (SNIFF_BYTES - 1) + "é").encode()
    assert detect_media_type(text[:SNIFF_BYTES]) == "text/plain"


@pytest.mark.parametrize(
    ("handlers", "expected"),
    [
        ((b"soun",), "audio/mp4"),
        ((b"soun", b"text"), "audio/mp4"),
        ((b"vide", b"soun"), "video/mp4"),
        ((b"vide",), "video/mp4"),
        ((), "video/mp4"),
    ],
)
def test_generic_mp4_brands_are_told_apart_by_their_tracks(
    handlers: tuple[bytes, ...], expected: str
) -> None:
    head = ftyp(b"mp42", b"mp42", b"isom") + box(b"mdat", bytes(1000)) + movie(*handlers)
    assert detect_media_type(head) == expected


def test_an_mp4_moov_after_a_64_bit_mdat_is_read() -> None:
    mdat = (1).to_bytes(4, "big") + b"mdat" + (16 + 500).to_bytes(8, "big") + bytes(500)
    head = ftyp(b"isom", b"isom", b"iso2", b"mp41") + mdat + movie(b"soun")
    assert detect_media_type(head) == "audio/mp4"


def test_an_mp4_whose_moov_is_beyond_the_sniff_window_is_video() -> None:
    content = ftyp(b"mp42", b"isom") + box(b"mdat", bytes(SNIFF_BYTES)) + movie(b"soun")
    assert detect_media_type(content[:SNIFF_BYTES]) == "video/mp4"


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b"\x00\x00\x00\x03moov", id="box smaller than its header"),
        pytest.param((1).to_bytes(4, "big") + b"moov" + bytes(8), id="largesize zero"),
        pytest.param(b"\xff\xff\xff\xffmoov" + bytes(40), id="size beyond the head"),
        pytest.param(box(b"moov", box(b"trak", box(b"mdia", box(b"hdlr")))), id="short hdlr"),
        pytest.param(box(b"moov") * 2000, id="many boxes"),
        pytest.param(b"moov" * 3000, id="nested garbage"),
    ],
)
def test_malformed_boxes_end_the_walk_without_error(tail: bytes) -> None:
    assert detect_media_type(ftyp(b"mp42", b"isom") + tail) in ("video/mp4", "audio/mp4")


def test_a_moov_box_with_size_zero_runs_to_the_end() -> None:
    head = ftyp(b"mp42", b"isom") + b"\x00\x00\x00\x00moov" + movie(b"soun")[8:]
    assert detect_media_type(head) == "audio/mp4"


def test_odf_mimetype_need_not_be_the_first_entry() -> None:
    # Tools that re-zip documents (e.g. metadata cleaners) sort the entries.
    assert detect_media_type(odf(ODT, mimetype_first=False)) == ODT


def test_ooxml_with_content_types_beyond_the_sniff_window() -> None:
    # LibreOffice's order: _rels/.rels first, [Content_Types].xml after the document's parts.
    image = random.Random(0).randbytes(SNIFF_BYTES)
    main, suffix = OOXML_PARTS[DOCX]
    content_type = f"application/vnd.openxmlformats-officedocument.{suffix}"
    docx = zip_of(
        ("_rels/.rels", package_rels(main)),
        ("docProps/app.xml", b"<Properties/>"),
        (main, b"<document/>"),
        ("word/media/image1.png", image),
        ("[Content_Types].xml", content_types(main, content_type)),
    )
    head = docx[:SNIFF_BYTES]
    assert b"[Content_Types].xml" not in head
    assert detect_media_type(head) == DOCX


def test_zip_entry_names_are_matched_whole_not_as_substrings() -> None:
    archive = zip_of(
        ("[Content_Types].xml", b"<Types/>"),
        ("notes/word/", b""),
        ("readme.png", b"see word/document.xml and xl/workbook.xml"),
    )
    assert detect_media_type(archive) == "application/zip"


# --- The shared corpus ---------------------------------------------------------------------

# What each extension in the corpus may be detected as.
EXPECTED_BY_EXTENSION: dict[str, set[str]] = {
    ".jpg": {"image/jpeg"},
    ".jpeg": {"image/jpeg"},
    ".png": {"image/png"},
    ".tif": {"image/tiff"},
    ".tiff": {"image/tiff"},
    ".webp": {"image/webp"},
    ".heic": {"image/heic", "image/heif"},
    ".heif": {"image/heic", "image/heif"},
    ".avif": {"image/avif"},
    ".pdf": {"application/pdf"},
    ".mp3": {"audio/mpeg"},
    ".id3": {"audio/mpeg"},  # a bare ID3v2 tag: what an MP3 starts with
    ".flac": {"audio/flac"},
    ".ogg": {"audio/ogg"},
    ".oggflac": {"audio/ogg"},
    ".opus": {"audio/ogg; codecs=opus"},
    ".wav": {"audio/wav"},
    ".aif": {"audio/aiff"},
    ".m4a": {"audio/mp4"},
    ".m4b": {"audio/mp4"},
    ".mp4": {"video/mp4"},
    ".docx": {DOCX},
    ".xlsx": {XLSX},
    ".odt": {ODT},
    ".ods": {ODS},
    ".odp": {ODP},
    ".odg": {"application/vnd.oasis.opendocument.graphics"},
    ".odf": {"application/vnd.oasis.opendocument.formula"},
}

# Files the corpus breaks on purpose, what detection says of them, and why that is right.
KNOWN_EXCEPTIONS: dict[str, tuple[str, str]] = {
    "mutagen/tests/data/emptyfile.mp3": (OCTET_STREAM, "it is empty"),
    "mutagen/tests/data/64bit.mp4": (
        OCTET_STREAM,
        "85 bytes: a bare 64-bit 'moov' tag box, no 'ftyp', no tracks",
    ),
    "mat2-tests/tests/data/embedded_corrupted.docx": (
        "application/zip",
        "93 KB of padding come before the first word/ part, beyond the sniffed window",
    ),
    "mat2-tests/tests/data/embedded_corrupted.odt": (
        "application/zip",
        "its 'mimetype' entry is at offset 211,900, beyond the sniffed window",
    ),
}


def corpus_files() -> list[str]:
    if not (CORPUS / "FILES.tsv").is_file():
        pytest.skip(f"the shared corpus is not at {CORPUS} (../shared/corpus beside the checkout)")
    lines = (CORPUS / "FILES.tsv").read_text(encoding="utf-8").splitlines()
    return [line.split("\t", 1)[0] for line in lines if line.strip()]


def test_corpus_files_are_detected_as_their_extension_says() -> None:
    names = corpus_files()
    assert len(names) > 400
    failures = []
    for name in names:
        with (CORPUS / name).open("rb") as file:
            found = detect_media_type(file.read(64 * 1024))
        if name in KNOWN_EXCEPTIONS:
            expected = {KNOWN_EXCEPTIONS[name][0]}
        else:
            expected = EXPECTED_BY_EXTENSION.get(Path(name).suffix.lower(), set())
        if found not in expected:
            failures.append(f"{name}: detected {found}, expected one of {sorted(expected)}")
    assert not failures, f"{len(failures)} of {len(names)} misdetected:\n" + "\n".join(failures)


def test_corpus_known_exceptions_are_in_the_corpus() -> None:
    names = set(corpus_files())
    assert set(KNOWN_EXCEPTIONS) <= names


def test_flac_behind_an_id3_tag_is_flac() -> None:
    tag = b"ID3\x04\x00\x00" + bytes([0, 0, 0, 20]) + b"\x00" * 20
    assert detect_media_type(tag + b"fLaC\x00\x00\x00\x22") == "audio/flac"
    assert detect_media_type(tag + b"\xff\xfb\x90\x64") == "audio/mpeg"
    footer = b"ID3\x04\x00\x10" + bytes([0, 0, 0, 20]) + b"\x00" * 20 + b"3DI" + b"\x00" * 7
    assert detect_media_type(footer + b"fLaC") == "audio/flac"
