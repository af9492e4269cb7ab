"""JPEG and JPEG 2000 image streams in a PDF (ISO 32000-2 §7.4.8-9): their metadata goes."""

from __future__ import annotations

import contextlib
import io
import struct
import zlib

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream

from custody.metadata.base import StripError
from custody.metadata.binary import CHUNK, unique
from custody.metadata.jpeg import JpegStripper
from custody.metadata.pdf_graph import Graph, filters, name_bytes, streams

DCT, JPX = Name("/DCTDecode"), Name("/JPXDecode")
# §7.4 Table 6: filters that only re-encode bytes (qpdf's "generalized" ones); any other
# filter is an image codec, after which nothing may follow.
_GENERAL = frozenset(
    {b"/ASCIIHexDecode", b"/ASCII85Decode", b"/LZWDecode", b"/FlateDecode", b"/RunLengthDecode"}
)
# qpdf leaves RunLengthDecode to its "specialized" level, which adds no lossy codec.
_LOSSLESS = pikepdf.StreamDecodeLevel.specialized
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"  # ISO/IEC 15444-1 I.5.1
# Top-level boxes a JP2 (15444-1 I.5) or JPX (15444-2 M.11) decoder needs. Every other box
# goes: xml and uuid (XMP, Exif, GeoJP2 coordinates), uinf, jp2i (rights), asoc/lbl labels.
_JP2_KEPT = frozenset({b"jP  ", b"ftyp", b"rreq", b"jp2h", b"jpch", b"jplh", b"jp2c"})
_JPEG = JpegStripper()
_MAX_DECODED = 256 << 20  # bytes one stream may inflate to: a 600 dpi A4 RGB scan is ~100 MiB


def check_sizes(pdf: pikepdf.Pdf, walked: Graph | None = None) -> None:
    """Refuse a Flate stream that inflates past _MAX_DECODED, before anything decodes it whole.

    A few kilobytes of Flate data can inflate to gigabytes (a compression bomb); the text
    digest and the leak search decode streams in memory. Streams whose Flate filter follows
    another filter are not measured: no common writer makes them.
    """
    for stream in streams(pdf, walked):
        names, _ = filters(stream)
        if names and name_bytes(names[0]) == b"/FlateDecode":
            _measure(bytes(stream.read_raw_bytes()))


def _measure(data: bytes) -> None:
    inflater, total = zlib.decompressobj(), 0
    with contextlib.suppress(zlib.error):  # damage is qpdf's to report, as a warning
        while data and not inflater.eof:
            produced = len(inflater.decompress(data, CHUNK))
            total += produced
            if total > _MAX_DECODED:
                raise StripError(f"PDF stream inflates past {_MAX_DECODED >> 20} MiB")
            if not produced and inflater.unconsumed_tail == data:
                break  # input that yields nothing more (a truncated stream): qpdf's to report
            data = inflater.unconsumed_tail


def _undo(pdf: pikepdf.Pdf, stream: Stream, names: list[Name], parms: list[object]) -> bytes:
    """The stream's data with its first len(names) filters undone."""
    if not names:
        return bytes(stream.read_raw_bytes())
    outer = pikepdf.Stream(pdf, bytes(stream.read_raw_bytes()))
    outer.Filter = Array(names)
    outer.DecodeParms = Array([pikepdf.Dictionary() if p is None else p for p in parms])
    return bytes(outer.read_bytes(_LOSSLESS))


def stream_bytes(pdf: pikepdf.Pdf, stream: Stream) -> bytes:
    """The stream's data with every byte-level filter undone; image codecs stay encoded."""
    names, parms = filters(stream)
    codecs = [index for index, name in enumerate(names) if name_bytes(name) not in _GENERAL]
    count = codecs[0] if codecs else len(names)
    if count == len(names):
        return bytes(stream.read_bytes(_LOSSLESS))
    return _undo(pdf, stream, names[:count], parms[:count])


def _payload(pdf: pikepdf.Pdf, stream: Stream) -> tuple[Name, object, bytes] | None:
    """For a JPEG or JPEG 2000 stream: that filter, its parameters, and the image file bytes."""
    names, parms = filters(stream)
    codecs = [index for index, name in enumerate(names) if name_bytes(name) not in _GENERAL]
    if not codecs or names[codecs[0]] not in (DCT, JPX):
        return None
    if codecs != [len(names) - 1]:
        raise StripError("PDF image stream has filters after its JPEG filter")
    # Undo the byte-level filters before the codec (e.g. [/FlateDecode /DCTDecode]).
    return names[-1], parms[-1], _undo(pdf, stream, names[:-1], parms[:-1])


def _strip(kind: Name, data: bytes) -> tuple[bytes, tuple[str, ...]]:
    if kind == DCT:
        sink = io.BytesIO()
        report = _JPEG.strip(io.BytesIO(data), sink)
        return sink.getvalue(), tuple(f"embedded JPEG {name}" for name in report.removed)
    return _strip_jp2(data)


def _strip_jp2(data: bytes) -> tuple[bytes, tuple[str, ...]]:
    """Keep only the decoding boxes of a JP2/JPX file; a bare codestream has no boxes."""
    if not data.startswith(_JP2_SIGNATURE):
        return data, ()
    kept, removed, at = [], [], 0
    while at < len(data):
        if len(data) - at < 8:
            raise StripError("JPEG 2000 box header runs off the end")
        size, kind = struct.unpack_from(">I4s", data, at)
        header = 8
        if size == 1:  # I.4: the 64-bit XLBox follows
            if len(data) - at < 16:
                raise StripError("JPEG 2000 box header runs off the end")
            (size,) = struct.unpack_from(">Q", data, at + 8)
            header = 16
        elif size == 0:  # I.4: the last box runs to the end of the file
            size = len(data) - at
        if size < header or at + size > len(data):
            raise StripError("JPEG 2000 box has an impossible length")
        if kind in _JP2_KEPT:
            kept.append(data[at : at + size])
        else:
            label = kind.decode("latin-1").strip()
            removed.append(f"JPEG 2000 {label if label.isalnum() else 'unnamed'} box")
        at += size
    return b"".join(kept), tuple(removed)


def clean_images(pdf: pikepdf.Pdf, walked: Graph | None = None) -> list[str]:
    """Strip every JPEG and JPEG 2000 image stream; return what went.

    Only metadata segments and boxes go: entropy-coded data and codestreams stay byte-identical.
    """
    removed: list[str] = []
    for stream in list(streams(pdf, walked)):
        payload = _payload(pdf, stream)
        if payload is None:
            continue
        kind, parms, data = payload
        stripped, dropped = _strip(kind, data)
        if stripped != data:
            stream.write(
                stripped, filter=kind, decode_parms=parms if isinstance(parms, Dictionary) else None
            )
            removed.extend(dropped)
    return list(unique(removed))


def check_inline_jpeg(data: bytes) -> None:
    """Refuse an inline JPEG (§8.9.7) that carries metadata: it sits in a content stream,
    which copies keep byte-identical, so it cannot be stripped."""
    stripped, dropped = _strip(DCT, data)
    if stripped != data:
        raise StripError("PDF inline JPEG image carries metadata", found=dropped)
