"""The shapes shared by extractors and strippers: fields, sensitive summaries, strip results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from custody.errors import CustodyError


class StripError(CustodyError):
    """A sharing copy cannot be made safely (unparseable input, leftovers): fail closed."""

    def __init__(self, reason: str, *, found: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.found = found  # names of what was found (never the values)


class UnsupportedFormatError(CustodyError):
    def __init__(self, media_type: str, supported: tuple[str, ...]) -> None:
        super().__init__(f"no sharing-copy support for {media_type}")
        self.media_type = media_type
        self.supported = supported


@dataclass(frozen=True, slots=True)
class Sensitive:
    """What an uploader must be warned about: kinds present, and the fields that carry them."""

    gps: bool = False
    device_serial: bool = False
    names: bool = False  # owner, author, artist, creator, last-modified-by, comment authors
    thumbnail: bool = False
    dates: bool = False  # capture/creation/modification times
    other: tuple[str, ...] = ()  # further kinds, e.g. "software", "location-text", "camera-model"
    fields: tuple[str, ...] = ()  # the field names behind the flags above

    @property
    def any(self) -> bool:
        return self.gps or self.device_serial or self.names or self.thumbnail or bool(self.other)


@dataclass(frozen=True, slots=True)
class Metadata:
    """Everything read from one file: field name -> printable value, and any parse errors."""

    media_type: str
    fields: dict[str, str] = field(default_factory=dict)
    sensitive: Sensitive = field(default_factory=Sensitive)
    errors: tuple[str, ...] = ()  # parser failures, recorded (never block ingest)
    # The raw sensitive values (as found), for the fail-closed byte scan of copies.
    sensitive_values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StripReport:
    """What a stripper did: removed field names (never values) and the kept content's digest."""

    removed: tuple[str, ...]
    content_digest: str  # sha256 hex of the content kept (see each format's definition)
    content_kind: str  # what was digested, e.g. "jpeg-frame-tables-scans", "png-idat"


class Stripper(Protocol):
    """Makes a lossless sharing copy of one family of formats, streaming, in flat memory."""

    name: str  # e.g. "jpeg"
    version: str  # bumped whenever output can change, recorded in the `derived` event
    media_types: frozenset[str]

    def strip(self, source: BinaryIO, sink: BinaryIO) -> StripReport:
        """Write the copy of `source` to `sink`; raise StripError when it cannot be made safely.

        Strippers stream, so after a StripError `sink` may hold part of a copy: discard it.
        Some formats (WebP, TIFF) need a seekable `source` and refuse a stream.
        """
        ...

    def content_digest(self, source: BinaryIO) -> str:
        """The digest of `source`'s content as `strip` defines it: equal for an original and
        its copy (`make_copy` reads it back from every copy)."""
        ...


def digests_both_sides(stripper: Stripper) -> bool:
    """Whether `strip` already computed the digest on the copy it wrote and compared it with
    the original's (raising StripError if they differ), so reading the copy back once more
    would only repeat that work."""
    return bool(getattr(stripper, "digests_both_sides", False))
