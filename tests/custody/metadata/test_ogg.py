"""Ogg Vorbis and Opus sharing copies: codec headers, an empty comment header, the audio pages."""

from __future__ import annotations

import io
from pathlib import Path
from typing import ClassVar

import mutagen.oggopus
import mutagen.oggvorbis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.metadata.audio_oggpage import Page, page_header, paginate, read_page
from custody.metadata.base import StripError
from custody.metadata.ogg import OggStripper
from tests.custody.metadata import audio_checks as checks
from tests.custody.metadata.audio_contract import CorpusContract
from tests.custody.metadata.audio_fuzzing import mutants

STRIPPER = OggStripper()


class TestCorpus(CorpusContract):
    stripper = STRIPPER
    extensions = ("ogg", "opus", "oggflac")
    refused: ClassVar[dict[str, str]] = {
        "FLAC.ogg": "FLAC in Ogg is not supported",
        "empty.oggflac": "FLAC in Ogg is not supported",
        "Vorbis.ogg": "truncated Ogg lacing values",  # ExifTool's sample: headers only, cut
    }


def pages(data: bytes) -> list[Page]:
    found, offset = [], 0
    while offset < len(data):
        found.append(read_page(io.BytesIO(data), offset, len(data)))  # checks every CRC
        offset = found[-1].offset + found[-1].length
    return found


def _audio(found: list[Page]) -> list[Page]:
    """The pages after the headers (header pages have granule position 0 or -1)."""
    return [p for p in found if p.granule not in (bytes(8), b"\xff" * 8)]


def test_a_multipage_comment_shrinks_to_one_page_and_later_pages_are_renumbered() -> None:
    original = checks.seed("multipagecomment.ogg")
    copy, _ = checks.strip_bytes(STRIPPER, original)
    before, after = pages(original), pages(copy)
    assert len(after) < len(before)
    assert [p.sequence for p in after] == list(range(len(after)))
    audio_before, audio_after = _audio(before), _audio(after)
    assert audio_after
    assert [p.body for p in audio_after] == [p.body for p in audio_before]
    assert [p.granule for p in audio_after] == [p.granule for p in audio_before]
    assert mutagen.oggvorbis.OggVorbis(io.BytesIO(copy)).tags.vendor.startswith("Xiph.Org")


def test_opus_keeps_its_head_and_vendor_and_loses_its_tags() -> None:
    original = checks.seed("example.opus")
    copy, _ = checks.strip_bytes(STRIPPER, original)
    assert pages(copy)[0].body == pages(original)[0].body  # OpusHead: gain, mapping, pre-skip
    loaded = mutagen.oggopus.OggOpus(io.BytesIO(copy))
    assert list(loaded.tags.keys()) == []
    assert loaded.tags.vendor == mutagen.oggopus.OggOpus(io.BytesIO(original)).tags.vendor


def test_a_second_logical_stream_is_refused() -> None:
    original = checks.seed("dirty.ogg")
    other = b"".join(paginate([b"\x01vorbis" + bytes(23)], 99, 0, first=True))
    with pytest.raises(StripError, match="second logical Ogg stream"):
        checks.strip_bytes(STRIPPER, original + other)


def test_a_page_with_a_bad_crc_is_refused() -> None:
    data = bytearray(checks.seed("dirty.ogg"))
    data[-100] ^= 0xFF
    with pytest.raises(StripError, match="fails its CRC"):
        checks.strip_bytes(STRIPPER, bytes(data))


def test_a_trailing_id3v1_tag_goes() -> None:
    original = checks.seed("dirty.ogg")
    plain, _ = checks.strip_bytes(STRIPPER, original)
    copy, report = checks.strip_bytes(STRIPPER, original + b"TAG" + b"Gina".ljust(125, b"\0"))
    assert copy == plain
    assert report.removed == ("ID3v1", "Vorbis comments")


def test_a_long_recording_streams_in_flat_memory(tmp_path: Path) -> None:
    original = checks.seed("dirty.ogg")
    head = pages(original)
    audio = _audio(head)
    path = tmp_path / "long.ogg"
    with path.open("wb") as out:
        out.write(original[: audio[0].offset])
        sequence = audio[0].sequence
        for _ in range(400):  # 400 x 20 kB: 8 MB, eight copy buffers
            for page in audio:
                out.write(_renumbered(original, page, sequence))
                sequence += 1
    copy = tmp_path / "copy.ogg"
    assert checks.peak_memory(STRIPPER, path, copy) < 4 << 20
    assert len(pages(copy.read_bytes())) == len(pages(path.read_bytes()))


def _renumbered(data: bytes, page: Page, sequence: int) -> bytes:
    flags = page.flags & ~0x04  # no end of stream before the last repeat
    moved = Page(page.offset, flags, page.granule, page.serial, 0, page.lacing, page.body)
    return page_header(moved, sequence) + page.body


def _with_page(data: bytes, index: int, lacing: bytes, body: bytes) -> bytes:
    """`data` with one page's segments replaced and the page re-sealed (a good CRC)."""
    page = pages(data)[index]
    damaged = Page(page.offset, page.flags, page.granule, page.serial, 0, lacing, body)
    return (
        data[: page.offset]
        + page_header(damaged, page.sequence)
        + body
        + data[page.offset + page.length :]
    )


def test_a_comment_header_carried_inside_the_setup_header_is_refused() -> None:
    """Found by the fuzz test below: the setup header's signature, then the whole comment
    header, then the setup header. Checked by its signature only, it went into the copy."""
    original = checks.seed("dirty.ogg")
    page = pages(original)[1]  # lacing: the comment header, then the setup header
    repeated = page.body[: page.lacing[0] + len(b"\x05vorbis")]
    mutant = _with_page(original, 1, page.lacing, (repeated + page.body)[: len(page.body)])
    with pytest.raises(StripError, match="Vorbis codebook without its sync pattern"):
        checks.strip_bytes(STRIPPER, mutant)


@pytest.mark.parametrize(
    ("name", "index", "reason"),
    [
        ("dirty.ogg", 0, "malformed Vorbis identification header"),
        ("dirty.ogg", 1, "bytes after the end of the Vorbis setup header"),
        ("example.opus", 0, "OpusHead of 44 bytes where 19 are expected"),
    ],
)
def test_bytes_after_a_header_kept_verbatim_are_refused(name: str, index: int, reason: str) -> None:
    original = checks.seed(name)
    page = pages(original)[index]
    extra = b"ARTIST=jvoisin".ljust(25, b"\0")
    lacing = page.lacing[:-1] + bytes([page.lacing[-1] + len(extra)])
    assert lacing[-1] < 255  # still the page's last packet, which ends on it
    with pytest.raises(StripError, match=reason):
        checks.strip_bytes(STRIPPER, _with_page(original, index, lacing, page.body + extra))


@settings(
    max_examples=100,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_damaged_headers_with_good_crcs_are_refused_or_clean(data: st.DataObject) -> None:
    """Header pages damaged and re-sealed, so that the parsing behind the CRC check is tried."""
    original = checks.seed("dirty.ogg")
    found = pages(original)
    index = data.draw(st.integers(0, 2))
    page = found[index]
    lacing = bytearray(page.lacing)
    if lacing and data.draw(st.booleans()):
        lacing[data.draw(st.integers(0, len(lacing) - 1))] = data.draw(st.integers(0, 255))
    body = data.draw(mutants(page.body))
    body = (body + bytes(sum(lacing)))[: sum(lacing)]
    flags = data.draw(st.sampled_from([page.flags, 0, 1, 2, 4, 7]))
    damaged = Page(page.offset, flags, page.granule, page.serial, 0, bytes(lacing), body)
    rebuilt = [page_header(damaged, page.sequence) + body if p is page else b"" for p in found]
    mutant = b"".join(
        rebuilt[i] or original[p.offset : p.offset + p.length] for i, p in enumerate(found)
    )
    checks.check_mutant(STRIPPER, mutant, ["Thank you for using MAT !", "jvoisin"])


@settings(
    max_examples=60,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_damaged_files_are_refused_or_clean(data: st.DataObject) -> None:
    original = checks.seed("dirty.ogg")
    secrets = ["Thank you for using MAT !", "jvoisin", "various comment", "harmfull"]
    checks.check_mutant(STRIPPER, data.draw(mutants(original)), secrets)
