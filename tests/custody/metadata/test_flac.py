"""FLAC sharing copies: STREAMINFO, SEEKTABLE and the frames."""

from __future__ import annotations

import io
from pathlib import Path
from typing import ClassVar

import mutagen.flac
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.metadata.audio_flacframes import _crc8, _crc16
from custody.metadata.base import StripError
from custody.metadata.flac import FlacStripper
from tests.custody.metadata import audio_checks as checks
from tests.custody.metadata.audio_contract import CorpusContract
from tests.custody.metadata.audio_fuzzing import mutants

STRIPPER = FlacStripper()
BLOCK = 4096  # samples per synthetic frame


class TestCorpus(CorpusContract):
    stripper = STRIPPER
    extensions = ("flac",)
    refused: ClassVar[dict[str, str]] = {
        "FLAC.flac": "without frames",  # ExifTool's sample: metadata only
        "106-invalid-streaminfo.flac": "STREAMINFO is 18 bytes long",
        "106-short-picture-block-size.flac": "STREAMINFO is not the first",
        "52-overwritten-metadata.flac": "no FLAC frame at offset 220",
        "52-too-short-block-size.flac": "no FLAC frame at offset 94",
        "flac_application.flac": "CRC-16 fails",  # mutagen's samples are cut short
        "variable-block.flac": "CRC-16 fails",
        "ooming-header.flac": "truncated",
    }


def coded_number(n: int) -> bytes:
    """RFC 9639 §9.1.5: UTF-8-like, up to 36 bits in seven bytes."""
    if n < 0x80:
        return bytes([n])
    length = next(k for k in range(2, 8) if n < 1 << (5 * k + 1))
    first = ((0xFF << (8 - length)) & 0xFF) | (n >> (6 * (length - 1)))
    rest = bytes(0x80 | ((n >> (6 * i)) & 0x3F) for i in range(length - 2, -1, -1))
    return bytes([first]) + rest


def frame(number: int, *, variable: bool = False, value: int = 0) -> bytes:
    """A mono 16-bit 44.1 kHz frame of one CONSTANT subframe (§9.2.3)."""
    # Block size code 7 (16-bit size follows), rate code 9 (44.1 kHz), mono, 16 bits.
    head = bytes([0xFF, 0xF9 if variable else 0xF8, 0x79, 0x08])
    head += coded_number(number) + (BLOCK - 1).to_bytes(2, "big")
    body = head + bytes([_crc8(head)]) + b"\x00" + value.to_bytes(2, "big", signed=True)
    return body + _crc16(body).to_bytes(2, "big")


def block(kind: int, body: bytes, *, last: bool = False) -> bytes:
    return bytes([kind | (0x80 if last else 0)]) + len(body).to_bytes(3, "big") + body


def flac(frames: int, *, variable: bool = False, extra: bytes = b"", total: int = -1) -> bytes:
    samples = frames * BLOCK if total < 0 else total
    packed = (44100 << 44) | (15 << 36) | samples  # rate, channels - 1, bits - 1, samples
    info = BLOCK.to_bytes(2, "big") * 2 + bytes(6) + packed.to_bytes(8, "big") + bytes(16)
    numbers = [i * BLOCK if variable else i for i in range(frames)]
    audio = b"".join(frame(n, variable=variable, value=n % 300) for n in numbers)
    return b"fLaC" + block(0, info, last=not extra) + extra + audio


def comment(text: str) -> bytes:
    entry = f"ARTIST={text}".encode()
    return b"\4\0\0\0test" + b"\1\0\0\0" + len(entry).to_bytes(4, "little") + entry


TAGS = (
    block(3, (0).to_bytes(8, "big") * 2 + (BLOCK).to_bytes(2, "big"))  # one seek point
    + block(4, comment("Alice Witness"))
    + block(6, bytes(8) + b"\0\0\0\x0bAlice face!" + bytes(20))  # PICTURE, its description
    + block(2, b"riffBob Recorder")
    + block(5, b"Carol catalog".ljust(396, b"\0"))
    + block(1, b"Dave stale tag", last=True)
)


def test_only_streaminfo_seektable_and_frames_are_kept() -> None:
    original = flac(20, extra=TAGS)
    copy, report = checks.strip_bytes(STRIPPER, original)
    assert report.removed == ("VORBIS_COMMENT", "PICTURE", "APPLICATION", "CUESHEET", "PADDING")
    audio = b"".join(frame(n, value=n % 300) for n in range(20))
    # STREAMINFO loses the "last block" flag (0x80) and SEEKTABLE gains it.
    assert copy == original[:4] + b"\0" + original[5:42] + b"\x83" + TAGS[1:22] + audio
    for name in (b"Alice", b"Bob", b"Carol", b"Dave"):
        assert name not in copy
    loaded = mutagen.flac.FLAC(io.BytesIO(copy))
    assert loaded.tags is None
    assert loaded.pictures == []
    assert loaded.seektable is not None


def test_variable_block_size_streams_are_followed_by_sample_number() -> None:
    original = flac(300, variable=True)
    copy, _ = checks.strip_bytes(STRIPPER, original)
    assert copy == original


def test_trailing_id3v1_goes_and_unknown_trailers_are_refused() -> None:
    original = flac(10)
    copy, report = checks.strip_bytes(STRIPPER, original + b"TAG" + b"Erin Witness".ljust(125))
    assert (copy, report.removed) == (original, ("ID3v1",))
    with pytest.raises(StripError, match="CRC-16"):
        checks.strip_bytes(STRIPPER, original + b"Frank was here")


def test_a_sample_count_other_than_streaminfo_is_refused() -> None:
    with pytest.raises(StripError, match="STREAMINFO says"):
        checks.strip_bytes(STRIPPER, flac(10, total=11 * BLOCK))


def test_a_broken_frame_header_is_refused() -> None:
    data = bytearray(flac(10))
    data[42 + 3 * len(frame(3)) + 2] ^= 0x01  # the rate code of frame 3
    with pytest.raises(StripError, match="CRC-16"):
        checks.strip_bytes(STRIPPER, bytes(data))


def test_corpus_frames_and_md5_are_kept() -> None:
    original = checks.seed("silence-44-s.flac")
    copy, _ = checks.strip_bytes(STRIPPER, original)
    at = 4
    while not copy[at] & 0x80:  # the copy's metadata blocks, up to the last one
        at += 4 + int.from_bytes(copy[at + 1 : at + 4], "big")
    frames = copy[at + 4 + int.from_bytes(copy[at + 1 : at + 4], "big") :]
    assert len(frames) > 40000
    assert original.endswith(frames)
    assert copy[26:42] == original[26:42]  # STREAMINFO's MD5 of the decoded audio


def test_a_long_recording_streams_in_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "long.flac"
    path.write_bytes(flac(72_000, extra=TAGS))  # 1.9 hours, 1.1 MB of frames: two windows
    assert checks.peak_memory(STRIPPER, path, tmp_path / "copy.flac") < 4 << 20


@settings(
    max_examples=60,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_damaged_files_are_refused_or_clean(data: st.DataObject) -> None:
    original = checks.seed("silence-44-s.flac")
    secrets = ["Quod Libet Test Data", "A pixel.", "Silence"]
    checks.check_mutant(STRIPPER, data.draw(mutants(original)), secrets)
