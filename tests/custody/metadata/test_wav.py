"""WAV sharing copies: 'fmt ', 'fact' and 'data' only."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.metadata.base import StripError
from custody.metadata.riff_audio import WavStripper
from tests.custody.metadata import audio_checks as checks
from tests.custody.metadata.audio_contract import CorpusContract
from tests.custody.metadata.audio_fuzzing import mutants

STRIPPER = WavStripper()
FMT = b"fmt " + (16).to_bytes(4, "little") + bytes.fromhex("0100 0100 401f0000 401f0000 0100 0800")


class TestCorpus(CorpusContract):
    stripper = STRIPPER
    extensions = ("wav",)
    refused: ClassVar[dict[str, str]] = {
        # ExifTool's sample: its 'data' chunk lies past the end the RIFF size gives.
        "RIFF.wav": "16 bytes after the RIFF chunk",
    }


def chunk(kind: bytes, body: bytes, pad: bytes = b"\0") -> bytes:
    return kind + len(body).to_bytes(4, "little") + body + (pad if len(body) % 2 else b"")


def riff(*chunks: bytes, form: bytes = b"RIFF") -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return form + len(body).to_bytes(4, "little") + body


SAMPLES = bytes(range(256)) * 31 + b"odd"  # 8-bit mono, an odd count: the pad byte matters
BEXT = chunk(b"bext", b"Alice Witness, Field Unit 7".ljust(602, b"\0"))
INFO = chunk(b"LIST", b"INFOIART" + chunk(b"", b"Bob Recorder")[4:])


def test_only_format_fact_and_data_are_kept() -> None:
    original = riff(
        BEXT,
        FMT,
        INFO,
        chunk(b"iXML", b"<x>Carol</x>"),
        chunk(b"data", SAMPLES, b"\xaa"),
        chunk(b"_PMX", b"<x:xmpmeta>Dave</x:xmpmeta>"),
        chunk(b"cue ", bytes(28)),
    )
    copy, report = checks.strip_bytes(STRIPPER, original)
    assert copy == riff(FMT, chunk(b"data", SAMPLES))  # the pad byte written as zero
    assert report.removed == ("bext", "LIST", "iXML", "_PMX", "cue ")
    with wave.open(io.BytesIO(copy)) as reader:
        assert reader.readframes(reader.getnframes()) == SAMPLES


def test_a_missing_final_pad_byte_is_accepted() -> None:
    original = riff(FMT, chunk(b"data", SAMPLES, b""))
    original = original[:4] + (len(original) - 7).to_bytes(4, "little") + original[8:]
    copy, _ = checks.strip_bytes(STRIPPER, original)
    assert copy == riff(FMT, chunk(b"data", SAMPLES))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (riff(FMT, chunk(b"data", SAMPLES), form=b"RF64"), "RF64"),
        (riff(FMT, chunk(b"data", SAMPLES)) + b"Erin", "after the RIFF chunk"),
        (riff(chunk(b"data", SAMPLES), FMT), "before 'fmt '"),
        (riff(FMT, chunk(b"data", SAMPLES), chunk(b"data", SAMPLES)), "more than one"),
        (riff(FMT, chunk(b"data", SAMPLES))[:-40], "runs past"),
        (riff(FMT, BEXT), "no 'data'"),
    ],
)
def test_what_cannot_be_parsed_with_certainty_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(StripError, match=reason):
        checks.strip_bytes(STRIPPER, data)


_PCM = FMT[8:]
_EXTENSIBLE = bytes.fromhex("feff 0100 401f0000 401f0000 0100 0800 1600 0800 04000000") + bytes(16)


@pytest.mark.parametrize(
    ("kept", "reason"),
    [
        (chunk(b"fmt ", _PCM + b"Jane"), "'fmt ' chunk of 20 bytes"),
        (chunk(b"fmt ", _PCM + bytes(2) + b"Jane"), "'fmt ' chunk of 22 bytes"),  # cbSize 0
        (chunk(b"fmt ", _EXTENSIBLE + b"Jane"), "'fmt ' chunk of 44 bytes"),
        (chunk(b"fmt ", _EXTENSIBLE[:-2]), "'fmt ' chunk of 38 bytes"),
        (chunk(b"fact", (4000).to_bytes(4, "little") + b"Jane"), "'fact' chunk of 8 bytes"),
        (chunk(b"fact", bytes(2)), "'fact' chunk of 2 bytes"),
    ],
)
def test_kept_chunks_hold_their_fields_and_nothing_after(kept: bytes, reason: str) -> None:
    fmt = kept if kept.startswith(b"fmt ") else FMT
    fact = [kept] if kept.startswith(b"fact") else []
    with pytest.raises(StripError, match=reason):
        checks.strip_bytes(STRIPPER, riff(fmt, *fact, chunk(b"data", SAMPLES)))


@pytest.mark.parametrize("fmt", [_PCM, _PCM + bytes(2), _EXTENSIBLE])
def test_format_chunks_of_their_declared_size_are_kept(fmt: bytes) -> None:
    fact = chunk(b"fact", (4000).to_bytes(4, "little"))
    original = riff(chunk(b"fmt ", fmt), fact, chunk(b"data", SAMPLES))
    assert checks.strip_bytes(STRIPPER, original)[0] == original


def test_a_long_recording_streams_in_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    samples = 64 << 20  # 70 minutes of 8 kHz 16-bit stereo... of 8-bit mono: 2.3 hours
    with path.open("wb") as out:
        out.write(
            riff(BEXT, FMT)[:4] + (4 + len(BEXT) + len(FMT) + 8 + samples).to_bytes(4, "little")
        )
        out.write(b"WAVE" + BEXT + FMT + b"data" + samples.to_bytes(4, "little"))
        for _ in range(64):
            out.write(bytes(1 << 20))
    copy = tmp_path / "copy.wav"
    assert checks.peak_memory(STRIPPER, path, copy) < 4 << 20
    assert copy.stat().st_size == 12 + len(FMT) + 8 + samples


@settings(
    max_examples=60,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_damaged_files_are_refused_or_clean(data: st.DataObject) -> None:
    original = checks.seed("dirty.wav")
    secrets = ["jvoisin's magic track", "Zomg, a comment!", "Super mix 2019"]
    checks.check_mutant(STRIPPER, data.draw(mutants(original)), secrets)
