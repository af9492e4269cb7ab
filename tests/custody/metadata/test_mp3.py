"""MP3 sharing copies: the MPEG frames alone, whatever tags surround them."""

from __future__ import annotations

import io
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.metadata.base import StripError
from custody.metadata.mp3 import Mp3Stripper
from tests.custody.metadata import audio_checks as checks
from tests.custody.metadata.audio_contract import CorpusContract
from tests.custody.metadata.audio_fuzzing import mutants

STRIPPER = Mp3Stripper()


class TestCorpus(CorpusContract):
    stripper = STRIPPER
    extensions = ("mp3",)
    refused: ClassVar[dict[str, str]] = {
        # A frame cut short by a tag: mutagen's and ExifTool's samples were cut to size.
        "MP3.mp3": "overlaps a trailing tag",
        "id3v1v2-combined.mp3": "overlaps a trailing tag",
        "apev2-lyricsv2.mp3": "after the MPEG frames",  # its second frame is cut short
        "emptyfile.mp3": "truncated",
    }


def _syncsafe(n: int) -> bytes:
    return bytes((n >> shift) & 0x7F for shift in (21, 14, 7, 0))


def id3v2(text: str, *, footer: bool = False) -> bytes:
    frame_body = b"\x03" + text.encode()
    body = b"TPE1" + _syncsafe(len(frame_body)) + b"\0\0" + frame_body
    head = b"ID3\x04\x00" + (b"\x10" if footer else b"\0") + _syncsafe(len(body))
    return head + body + (b"3DI" + head[3:] if footer else b"")


def ape(text: str, *, header: bool = True) -> bytes:
    item = len(text).to_bytes(4, "little") + bytes(4) + b"Artist\0" + text.encode()
    size = (len(item) + 32).to_bytes(4, "little")
    flags = (1 << 31) if header else 0

    def part(extra: int) -> bytes:
        flag_bytes = (flags | extra).to_bytes(4, "little")
        return (
            b"APETAGEX" + (2000).to_bytes(4, "little") + size + b"\1\0\0\0" + flag_bytes + bytes(8)
        )

    return (part(1 << 29) if header else b"") + item + part(0)


def id3v1(text: str) -> bytes:
    return b"TAG" + text.encode().ljust(125, b"\0")


def lyrics3v2(text: str) -> bytes:
    fields = b"LYRICSBEGIN" + b"EAR" + f"{len(text):05}".encode() + text.encode()
    return fields + f"{len(fields):06}".encode() + b"LYRICS200"


def lyrics3v1(text: str) -> bytes:
    return b"LYRICSBEGIN" + text.encode() + b"LYRICSEND"


@pytest.fixture(scope="module")
def frames() -> bytes:
    return checks.seed("no-tags.mp3")  # frames only, a Xing header first


@pytest.mark.parametrize(
    ("before", "after", "removed"),
    [
        (
            id3v2("Alice Witness", footer=True) + bytes(300),
            ape("Bob") + lyrics3v2("Carol Ann") + id3v1("Dave Smith"),
            ("ID3v2.4", "ID3v1", "Lyrics3v2", "APEv2"),
        ),
        (
            id3v2("Alice Witness") + id3v2("Erin Second"),
            ape("Bob Recorder", header=False)
            + lyrics3v1("Carol Ann")
            + id3v2("Frank Footer", footer=True),
            ("ID3v2.4", "ID3v2.4", "ID3v2.4", "Lyrics3v1", "APEv2"),
        ),
        (b"", id3v2("Gina Appended") + ape("Harry Header"), ("ID3v2.4", "APEv2")),
    ],
)
def test_every_kind_of_tag_goes(
    frames: bytes, before: bytes, after: bytes, removed: tuple[str, ...]
) -> None:
    copy, report = checks.strip_bytes(STRIPPER, before + frames + after)
    assert copy == frames
    assert sorted(report.removed) == sorted(removed)
    for name in ("Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Gina", "Harry"):
        assert name.encode() not in copy


def test_unknown_bytes_after_the_frames_are_refused(frames: bytes) -> None:
    with pytest.raises(StripError, match="neither audio nor tags"):
        checks.strip_bytes(STRIPPER, frames + b"recorded by Ivan on device 1234")


def test_a_last_frame_cut_short_is_kept_when_no_tag_follows(frames: bytes) -> None:
    cut = frames[:-100]
    copy, _ = checks.strip_bytes(STRIPPER, cut)
    assert copy == cut


_HEADER = b"\xff\xfb\x90\x6c"  # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz: 417-byte frames


@pytest.mark.parametrize(
    "tail",
    [
        id3v1("Jane Witness") + b"\x00\x01\x02",  # an ID3v1 tag not quite at the end
        id3v1("Jane Witness")[:54],  # an ID3v1 tag cut short
        id3v2("Jane Witness") + bytes(9),
        ape("Jane Witness", header=False)[:-5],
        lyrics3v1("Jane Witness")[:-3],
    ],
)
def test_a_cut_short_last_frame_holding_a_tag_is_refused(frames: bytes, tail: bytes) -> None:
    """Found by fuzzing: a frame header followed by a damaged tag, all taken for audio."""
    for original in (_HEADER + tail, frames + _HEADER + tail):
        with pytest.raises(StripError, match="cut short and holds a tag"):
            checks.strip_bytes(STRIPPER, original)


def test_flac_behind_id3_is_not_taken_for_mp3() -> None:
    with pytest.raises(StripError, match="FLAC"):
        checks.strip_bytes(STRIPPER, id3v2("Alice") + b"fLaC" + bytes(100))


def test_an_unseekable_source_is_refused(frames: bytes, tmp_path: Path) -> None:
    class Pipe(io.BytesIO):
        def seekable(self) -> bool:
            return False

    with pytest.raises(StripError, match="seekable"):
        STRIPPER.strip(Pipe(frames), io.BytesIO())


def test_a_long_recording_streams_in_flat_memory(frames: bytes, tmp_path: Path) -> None:
    body = frames[417:]  # the frames after the first (Xing) one, repeated
    path = tmp_path / "long.mp3"
    with path.open("wb") as out:
        out.write(id3v2("Alice Witness"))
        for _ in range(4000):  # 2 GB would take long; 8 MB is 8 times the copy buffer
            out.write(body)
    assert checks.peak_memory(STRIPPER, path, tmp_path / "copy.mp3") < 4 << 20
    assert (tmp_path / "copy.mp3").stat().st_size == 4000 * len(body)


@settings(
    max_examples=60,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_damaged_files_are_refused_or_clean(data: st.DataObject) -> None:
    original = checks.seed("silence-44-s.mp3")
    secrets = ["Quod Libet Test Data", "piman", "Silence"]
    checks.check_mutant(STRIPPER, data.draw(mutants(original)), secrets)
