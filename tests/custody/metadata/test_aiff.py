"""AIFF sharing copies: FVER, COMM, CHAN and SSND only."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custody.metadata.aiff import AiffStripper
from custody.metadata.base import StripError
from tests.custody.metadata import audio_checks as checks
from tests.custody.metadata.audio_contract import CorpusContract
from tests.custody.metadata.audio_fuzzing import mutants

STRIPPER = AiffStripper()
# 1 channel, 4000 frames, 8 bits, 8000 Hz as an 80-bit extended float.
COMM = b"COMM" + (18).to_bytes(4, "big") + bytes.fromhex("0001 00000fa0 0008 400bfa00000000000000")
FRAMES = bytes(range(256)) * 15 + bytes(160)


class TestCorpus(CorpusContract):
    stripper = STRIPPER
    extensions = ("aif", "aiff", "aifc")
    refused: ClassVar[dict[str, str]] = {}


def chunk(kind: bytes, body: bytes) -> bytes:
    return kind + len(body).to_bytes(4, "big") + body + (b"\0" if len(body) % 2 else b"")


def form(*chunks: bytes, kind: bytes = b"AIFF") -> bytes:
    body = kind + b"".join(chunks)
    return b"FORM" + len(body).to_bytes(4, "big") + body


def ssnd(frames: bytes, skipped: bytes = b"") -> bytes:
    return chunk(b"SSND", len(skipped).to_bytes(4, "big") + bytes(4) + skipped + frames)


# AIFF-C's COMM: AIFF's fields, then the compression type and its name as a Pascal string
# padded to an even length ("not compressed": 14 characters, 15 bytes, one pad byte).
COMM_C = chunk(b"COMM", COMM[8:] + b"NONE" + b"\x0enot compressed\x00")
CHAN = chunk(
    b"CHAN", (0x00640002).to_bytes(4, "big") + bytes(4) + (1).to_bytes(4, "big") + bytes(20)
)


def test_only_version_common_channels_and_sound_are_kept() -> None:
    fver = chunk(b"FVER", bytes.fromhex("a2805140"))
    original = form(
        chunk(b"NAME", b"Alice Witness"),
        fver,
        COMM_C,
        chunk(b"AUTH", b"Bob Recorder"),
        chunk(b"(c) ", b"Carol"),
        chunk(b"ANNO", b"Dave said"),
        chunk(b"MARK", b"\0\1\0\1\0\0\0\0\4Erin"),
        chunk(b"ID3 ", b"ID3\4\0\0\0\0\0\0"),
        ssnd(FRAMES),
        chunk(b"APPL", b"pdosFrank"),
        kind=b"AIFC",
    )
    copy, report = checks.strip_bytes(STRIPPER, original)
    assert copy == form(fver, COMM_C, ssnd(FRAMES), kind=b"AIFC")
    assert report.removed == ("NAME", "AUTH", "(c) ", "ANNO", "MARK", "ID3 ", "APPL")


def test_bytes_skipped_by_the_sound_offset_are_zeroed_and_not_digested() -> None:
    original = form(COMM, ssnd(FRAMES, b"Gina's notes"))
    copy, report = checks.strip_bytes(STRIPPER, original)
    assert copy == form(COMM, ssnd(FRAMES, bytes(12)))
    _, plain_report = checks.strip_bytes(STRIPPER, form(COMM, ssnd(FRAMES)))
    assert report.content_digest == plain_report.content_digest


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (form(ssnd(FRAMES)), "no 'COMM'"),
        (form(COMM, ssnd(FRAMES)) + b"Harry", "after the FORM chunk"),
        (form(COMM, ssnd(FRAMES))[:-10], "runs past"),
        (form(COMM, chunk(b"SSND", (999).to_bytes(4, "big") + bytes(12))), "offset runs past"),
        (form(COMM, COMM, ssnd(FRAMES)), "more than one"),
    ],
)
def test_what_cannot_be_parsed_with_certainty_is_refused(data: bytes, reason: str) -> None:
    with pytest.raises(StripError, match=reason):
        checks.strip_bytes(STRIPPER, data)


@pytest.mark.parametrize(
    ("kind", "kept", "reason"),
    [
        (b"AIFF", chunk(b"COMM", COMM[8:] + b"Jane"), "'COMM' chunk of 22 bytes"),
        (b"AIFF", chunk(b"COMM", COMM[8:-2]), "'COMM' chunk of 16 bytes"),
        (b"AIFC", COMM, "'COMM' chunk of 18 bytes"),
        (b"AIFC", chunk(b"COMM", COMM_C[8:] + b"Jane"), "'COMM' chunk of 42 bytes"),
        (b"AIFC", chunk(b"COMM", COMM[8:] + b"NONE\x14not compressed"), "'COMM' chunk of 37"),
        (b"AIFC", chunk(b"FVER", bytes.fromhex("a2805140") + b"Jane"), "'FVER' chunk of 8"),
        (b"AIFF", chunk(b"CHAN", CHAN[8:] + b"Jane"), "'CHAN' chunk of 36 bytes"),
        (b"AIFF", chunk(b"CHAN", CHAN[8:-2]), "'CHAN' chunk of 30 bytes"),
    ],
)
def test_kept_chunks_hold_their_fields_and_nothing_after(
    kind: bytes, kept: bytes, reason: str
) -> None:
    comm = kept if kept.startswith(b"COMM") else COMM_C if kind == b"AIFC" else COMM
    others = [] if kept.startswith(b"COMM") else [kept]
    with pytest.raises(StripError, match=reason):
        checks.strip_bytes(STRIPPER, form(*others, comm, ssnd(FRAMES), kind=kind))


@pytest.mark.parametrize("comm", [COMM_C, chunk(b"COMM", COMM_C[8:-1])])  # name pad left out
def test_chunks_of_their_declared_size_are_kept(comm: bytes) -> None:
    fver = chunk(b"FVER", bytes.fromhex("a2805140"))
    original = form(fver, comm, CHAN, ssnd(FRAMES), kind=b"AIFC")
    assert checks.strip_bytes(STRIPPER, original)[0] == original


def test_a_long_recording_streams_in_flat_memory(tmp_path: Path) -> None:
    path = tmp_path / "long.aif"
    frames = 64 << 20
    with path.open("wb") as out:
        name = chunk(b"NAME", b"Alice Witness")
        out.write(b"FORM" + (4 + len(COMM) + len(name) + 16 + frames).to_bytes(4, "big"))
        out.write(b"AIFF" + COMM + name + b"SSND" + (8 + frames).to_bytes(4, "big") + bytes(8))
        for _ in range(64):
            out.write(bytes(1 << 20))
    assert checks.peak_memory(STRIPPER, path, tmp_path / "copy.aif") < 4 << 20


@settings(
    max_examples=60,
    deadline=2000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_damaged_files_are_refused_or_clean(data: st.DataObject) -> None:
    original = checks.seed("with-id3.aif")
    checks.check_mutant(STRIPPER, data.draw(mutants(original)), ["AIFF title"])
