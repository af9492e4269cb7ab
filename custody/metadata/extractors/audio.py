"""Audio tags read with mutagen: ID3v2 and v1, Vorbis comments, FLAC pictures, MP4 ilst, APEv2."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, BinaryIO

import mutagen
from mutagen.aiff import AIFF
from mutagen.apev2 import APENoHeaderError, APEv2
from mutagen.flac import FLAC
from mutagen.id3 import ID3, ID3NoHeaderError
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, MP4Tags
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggspeex import OggSpeex
from mutagen.oggtheora import OggTheora
from mutagen.oggvorbis import OggVorbis
from mutagen.wave import WAVE

from custody.metadata.extractors.collector import Collector

# mutagen picks the class whose header test scores best; these are the containers we accept.
_CLASSES = (MP3, FLAC, OggVorbis, OggFLAC, OggOpus, OggSpeex, OggTheora, MP4, WAVE, AIFF)


def extract_audio(fh: BinaryIO, out: Collector) -> None:
    """The tags of an audio (or MP4 video) file, named "<tag format>:<key>"."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        audio = mutagen.File(fh, options=_CLASSES)
    if audio is None:
        return
    for picture in getattr(audio, "pictures", ()):  # FLAC METADATA_BLOCK_PICTURE blocks
        out.add("FLAC:Picture", _picture(picture.mime, picture.desc, picture.data))
    tags = audio.tags
    for kind, handler in _HANDLERS:
        if isinstance(tags, kind):
            handler(tags, out)
            return
    if tags is not None:  # Vorbis comments (Ogg, FLAC): a list of (key, value) pairs
        for key, value in tags:
            out.add(f"Vorbis:{str(key).upper()}", value)


def extract_id3(fh: BinaryIO, out: Collector) -> None:
    """ID3v2 at the start and ID3v1 at the end, read without needing valid MPEG frames."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tags = ID3(fh)  # type: ignore[no-untyped-call]
    except ID3NoHeaderError:
        return
    _id3(tags, out)


def extract_apev2(fh: BinaryIO, out: Collector) -> None:
    """An APEv2 tag at the end of the file (MP3 often carries one next to ID3)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tags = APEv2(fh)  # type: ignore[no-untyped-call]
    except APENoHeaderError:
        return
    _ape(tags, out)


def _picture(mime: object, description: object, data: bytes) -> str:
    return f"<{mime} picture {description!r}, {len(data)} bytes>"


def _id3(tags: Any, out: Collector) -> None:
    """ID3v2 frames keyed as mutagen's HashKey: "TPE1", "TXXX:<desc>", "APIC:<desc>"."""
    for key, frame in tags.items():
        name = f"ID3:{key}"
        if frame.FrameID in ("APIC", "PIC"):  # attached pictures (§4.14)
            out.add(name, _picture(frame.mime, getattr(frame, "desc", ""), frame.data))
        elif hasattr(frame, "text"):  # a list of strings, or one string (USLT, SYLT)
            for text in frame.text if isinstance(frame.text, list) else [frame.text]:
                out.add(name, str(text))
        elif hasattr(frame, "data"):  # PRIV, GEOB, MCDI...: opaque bytes, keyed by owner
            owner = getattr(frame, "owner", "")
            out.add(f"ID3:{frame.FrameID}:{owner}", f"<{len(frame.data)} bytes>", literal=False)
        else:
            out.add(name, frame.pprint())


def _mp4(tags: Any, out: Collector) -> None:
    """iTunes-style ilst atoms (ISO/IEC 14496-12 meta box): "MP4:©ART", "MP4:covr"."""
    for key, values in tags.items():
        name = f"MP4:{key}"
        for value in values if isinstance(values, list) else [values]:
            if key == "covr":
                out.add(name, f"<cover image, {len(value)} bytes>", literal=False)
            elif isinstance(value, bytes):  # MP4FreeForm: text in practice, bytes in type
                out.add(name, value.decode("utf-8", "replace"))
            else:
                text = isinstance(value, str)
                out.add(name, value if text else repr(value), literal=text)


def _ape(tags: Any, out: Collector) -> None:
    for key, value in tags.items():
        name = f"APE:{key}"
        if value.kind == 0:  # UTF-8 text (APEv2 item flags, bits 1-2)
            for text in value:
                out.add(name, text)
        else:
            out.add(name, f"<{len(value.value)} bytes>", literal=False)


_HANDLERS: tuple[tuple[type, Callable[[Any, Collector], None]], ...] = (
    (ID3, _id3),
    (MP4Tags, _mp4),
    (APEv2, _ape),
)
