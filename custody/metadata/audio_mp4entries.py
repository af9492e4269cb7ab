"""Audio sample entries of an MP4 'stsd' box (ISO/IEC 14496-12 §8.5.2, §12.2.3; QuickTime)."""

from __future__ import annotations

from custody.metadata import audio_mp4box as boxes
from custody.metadata.audio_common import printable
from custody.metadata.base import StripError

# Sample entry formats of sound tracks: AAC and MPEG audio, ALAC, FLAC, Opus, (E-)AC-3 and
# AC-4, AMR, MPEG-H, DTS, MLP, and the PCM formats of ISO/IEC 23003-5 and QuickTime.
# fmt: off
_FORMATS = frozenset({
    b"mp4a", b"alac", b"fLaC", b"Opus", b"ac-3", b"ec-3", b"ac-4", b"samr", b"sawb", b"sawp",
    b"mha1", b"mha2", b"mhm1", b"mhm2", b"dtsc", b"dtsh", b"dtsl", b"dtse", b"mlpa", b".mp3",
    b"ipcm", b"fpcm", b"lpcm", b"sowt", b"twos", b"raw ", b"in24", b"in32", b"fl32", b"fl64",
    b"ulaw", b"alaw",
})
# fmt: on
# Bytes of an entry before its boxes: SampleEntry (8) and AudioSampleEntry (20), plus the
# sound description fields of QuickTime's versions 1 (16 bytes) and 2 (36 bytes).
_FIELDS = {0: 28, 1: 44, 2: 64}
_WAVE_BOXES = (b"frma", b"mp4a", b"esds", b"alac", b"enda", b"chan", b"\0\0\0\0")  # 0: the end
_QUICKTIME_WAVE: dict[bytes, boxes.Rule] = dict.fromkeys(_WAVE_BOXES, boxes.verbatim)
# The boxes a decoder needs (decoder configurations, channel layouts, bit rates, sampling
# rate, PCM format). Any other box in an entry is refused, or dropped if it is
# one of `boxes.DROPPED` (user data and tags can sit here too).
# fmt: off
_DECODING = (
    b"esds", b"alac", b"dfLa", b"dOps", b"dac3", b"dec3", b"dac4", b"damr", b"mhaC", b"ddts",
    b"dmlp", b"chan", b"chnl", b"btrt", b"srat", b"pcmC",
)
# fmt: on
_CHILDREN: dict[bytes, boxes.Rule] = dict.fromkeys(_DECODING, boxes.verbatim)
_CHILDREN[b"wave"] = boxes.container(_QUICKTIME_WAVE)  # QuickTime's decompression parameters


def sample_descriptions(payload: memoryview, context: boxes.Context, path: str) -> bytes:
    """stsd of a sound track: each entry an audio format of `_FORMATS`, its fields kept, its
    boxes passed through `_CHILDREN`."""
    if len(payload) < 8:
        raise StripError(f"{path} is too short")
    entries = list(boxes.children(payload[8:], path))
    if len(entries) != int.from_bytes(payload[4:8], "big"):
        raise StripError(f"{path} entry count does not match its entries")
    # ISO's AudioSampleEntryV1 (stsd version 1) keeps version 0's layout.
    iso = payload[0] == 1
    parts = [bytes(payload[:8])]
    for kind, body in entries:
        parts.append(boxes.box(kind, _entry(kind, body, iso, context, f"{path}/{printable(kind)}")))
    return b"".join(parts)


def _entry(kind: bytes, body: memoryview, iso: bool, context: boxes.Context, path: str) -> bytes:
    if kind not in _FORMATS:
        raise StripError(f"an audio sample entry {printable(kind)!r} of an unknown format")
    if len(body) < _FIELDS[0]:
        raise StripError(f"{path} is too short")
    version = 0 if iso else int.from_bytes(body[8:10], "big")
    if version not in _FIELDS:
        raise StripError(f"{path} has sound description version {version}")
    fields = _FIELDS[version]
    if len(body) < fields:
        raise StripError(f"{path} is too short")
    return bytes(body[:fields]) + boxes.rebuild(body[fields:], _CHILDREN, context, path)
