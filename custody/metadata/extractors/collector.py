"""What extractors share: limits, a bounded reader, and the collector of fields and errors."""

from __future__ import annotations

import copy
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, cast

from custody.errors import CustodyError
from custody.metadata.base import Metadata, Sensitive
from custody.metadata.extractors import kinds

MiB = 1024 * 1024
_CHUNK = 1 * MiB  # largest single read, so a huge declared length allocates nothing


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on the work done for one file, so that no input can exhaust time or memory."""

    max_fields: int = 2000
    max_value_chars: int = 1024
    max_errors: int = 50
    read_budget: int = 1024 * MiB  # bytes one parser may read through `BoundedReader`
    read_calls: int = 1_000_000  # reads by one parser: 10x the corpus maximum, about 2 s
    xmp_head: int = 4 * MiB  # XMP packets are near the start of images (or at the end)
    xmp_tail: int = 1 * MiB
    xmp_packet: int = 2 * MiB
    pdf_max_bytes: int = 512 * MiB  # qpdf rescans all of a damaged file to rebuild its xref
    pdf_max_pages: int = 5000
    zip_max_members: int = 10_000
    zip_max_part: int = 64 * MiB  # uncompressed bytes read from one package member
    zip_max_total: int = 128 * MiB  # and from all of them (zip bombs, APPNOTE overlaps)
    max_chunks: int = 100_000  # PNG chunks, JPEG segments, ISO boxes walked
    min_scanned_chars: int = 3  # shorter sensitive values would match everywhere


class LimitError(CustodyError):
    """A file exceeds a bound of `Limits`; recorded as an extraction error, never raised out."""


class Budget:
    """Bytes and read calls left to one parser, shared with the blocks it hands on (a second
    EXIF segment, an image in a document): parsers that loop on a hostile length field read
    one byte at a time, at or past the end, for as long as the field says."""

    def __init__(self, limits: Limits) -> None:
        self.bytes = limits.read_budget
        self.calls = limits.read_calls


class BoundedReader(io.RawIOBase):
    """A read-only view of a binary file that draws every read from a `Budget`."""

    def __init__(self, raw: BinaryIO, budget: Budget) -> None:
        super().__init__()
        self._raw = raw
        self._budget = budget

    def __repr__(self) -> str:  # parsers quote their stream in errors: keep those stable
        return "<evidence file>"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def read(self, size: int | None = -1) -> bytes:
        budget = self._budget
        budget.calls -= 1
        if budget.calls < 0:
            raise LimitError(f"too many reads, at offset {self._raw.tell()}")
        if size is not None and 0 <= size <= _CHUNK:  # parsers read a few bytes at a time
            data = self._raw.read(size)
            if len(data) > budget.bytes:
                raise LimitError(f"read budget exhausted at offset {self._raw.tell()}")
            budget.bytes -= len(data)
            return data
        want = None if size is None or size < 0 else size  # None: to the end of the file
        chunks: list[bytes] = []
        while want is None or want > 0:
            data = self._raw.read(_CHUNK if want is None else min(_CHUNK, want))
            if len(data) > self._budget.bytes:
                raise LimitError(f"read budget exhausted at offset {self._raw.tell()}")
            self._budget.bytes -= len(data)
            if not data:
                break
            chunks.append(data)
            want = None if want is None else want - len(data)
        return b"".join(chunks)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


def _escape(character: str) -> str:
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object, limit: int) -> str:
    """A one-line, bounded, printable rendering of a parser's value."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        text = raw[: limit // 2].hex()
        return f"0x{text}…" if len(raw) > limit // 2 else f"0x{text}"
    text = value if isinstance(value, str) else repr(value) if value is not None else ""
    text = text[: limit + 1]
    if not text.isprintable():  # NUL padding, escape sequences: they garble logs, terminals
        text = "".join(c if c.isprintable() else _escape(c) for c in text)
    return text if len(text) <= limit else text[:limit] + "…"


def _empty(value: object) -> bool:
    if isinstance(value, str):
        return not value.strip(" \t\r\n\x00")
    if isinstance(value, bytes | bytearray | memoryview):
        return not bytes(value).strip(b"\x00")
    return value is None


Embedded = Callable[[bytes, "Collector"], None]


class Collector:
    """Accumulates the fields, sensitive kinds and errors of one file, within `Limits`."""

    def __init__(self, limits: Limits, *, embedded: Embedded | None = None) -> None:
        self.limits = limits
        self.budget = Budget(limits)  # replaced for each top-level parser
        self._embedded = embedded  # reads a file embedded in this one (images in documents)
        self._prefix = ""
        self._fields: dict[str, str] = {}
        self._seen: set[tuple[str, str]] = set()
        self._raw: set[tuple[str, str, str]] = set()
        self._kinds: dict[str, str] = {}  # field name -> sensitive kind
        self._values: dict[str, None] = {}  # ordered set of scanned values
        self._errors: list[str] = []

    def add(self, name: str, value: object, *, literal: bool = True) -> None:
        """Record one field; `literal` says the value's text appears as such in the file."""
        if isinstance(value, str):  # fast path: a document names its author a million times
            if (self._prefix, name, value) in self._raw:
                return
            self._raw.add((self._prefix, name, value))
        # Names can carry the file's bytes (keys, descriptions): printable, bounded.
        local, name = printable(name, 200), self._prefix + printable(name, 200)
        text = printable(value, self.limits.max_value_chars)
        if (name, text) in self._seen:
            return
        if len(self._fields) >= self.limits.max_fields:
            self.error("collector", LimitError(f"more than {self.limits.max_fields} fields"))
            return
        self._seen.add((name, text))
        key, suffix = name, 1
        while key in self._fields:  # the same field twice (several packets, repeated tags)
            suffix += 1
            key = f"{name}#{suffix}"
        self._fields[key] = text
        kind = kinds.classify(local)
        if kind is None or _empty(value):  # an empty Artist names nobody
            return
        self._kinds[key] = kind
        if literal and kind in kinds.SCANNED and isinstance(value, str):
            self._scan_value(value)

    def _scan_value(self, value: str) -> None:
        stripped = value.strip(" \t\r\n\x00")[: self.limits.max_value_chars]
        if len(stripped) >= self.limits.min_scanned_chars:
            self._values[stripped] = None

    def error(self, extractor: str, problem: BaseException | str) -> None:
        """Record a parser failure or skipped work (the file is still sealed)."""
        if isinstance(problem, BaseException):
            problem = f"{type(problem).__name__}: {problem}"
        message = f"{self._prefix}{extractor}: {printable(problem, 300)}"
        if len(self._errors) < self.limits.max_errors and message not in self._errors:
            self._errors.append(message)

    def reader(self, data: bytes) -> BinaryIO:
        """A block found inside the file, to hand to another parser on the same budget."""
        return cast(BinaryIO, BoundedReader(io.BytesIO(data), self.budget))

    def embedded(self, name: str, data: bytes) -> None:
        """Read `data`, a file embedded under `name`, into fields named "<name>|<field>"."""
        if self._embedded is not None:
            scoped = copy.copy(self)  # shares the fields, kinds, values and errors
            scoped._prefix, scoped._embedded = f"{self._prefix}{name}|", None  # one level only
            self._embedded(data, scoped)

    def guard(self, extractor: str, work: Callable[[], None]) -> None:
        """Run `work`, recording (never raising) any failure: one parser cannot stop the rest."""
        try:
            work()
        except Exception as exc:  # any parser failure on hostile bytes is data, not a crash
            self.error(extractor, exc)

    def result(self, media_type: str) -> Metadata:
        found = set(self._kinds.values())
        sensitive = Sensitive(
            gps=kinds.GPS in found,
            device_serial=kinds.SERIAL in found,
            names=kinds.NAMES in found,
            thumbnail=kinds.THUMBNAIL in found,
            dates=kinds.DATES in found,
            other=tuple(sorted(found - kinds.FLAGS)),
            fields=tuple(self._kinds),
        )
        return Metadata(
            media_type=media_type,
            fields=dict(self._fields),
            sensitive=sensitive,
            errors=tuple(self._errors),
            sensitive_values=tuple(self._values),
        )
