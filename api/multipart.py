"""Streaming multipart/form-data for browser uploads: one file part, never held in memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header

MAX_FIELD_BYTES = 8 * 1024  # text fields (e.g. "digest") are short; more is not a field
FILE_FIELD = "file"


class MultipartError(Exception):
    """The body is not the multipart/form-data the endpoint expects."""


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    filename: str | None = None
    is_file: bool = False
    text: bytearray = field(default_factory=bytearray)


@dataclass(frozen=True, slots=True)
class FileData:
    data: bytes


class MultipartReader:
    """Push raw body chunks in with `write`; take file bytes and fields out as they appear.

    `write` returns the file part's bytes found in that chunk (copied out of the parser's
    buffer), so the caller can stage them before pushing the next chunk.
    """

    def __init__(self, content_type: str) -> None:
        media_type, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if media_type != b"multipart/form-data" or not boundary:
            raise MultipartError("expected multipart/form-data with a boundary")
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.file_content_type: str | None = None
        self.file_seen = False
        self.file_complete = False
        self._finished = False
        self._part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._out: list[bytes] = []
        callbacks: dict[str, Callable[..., None]] = {
            "on_part_begin": self._on_part_begin,
            "on_header_field": lambda d, s, e: self._header_field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_end": self._on_end,
        }
        self._parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]

    def write(self, chunk: bytes) -> list[bytes]:
        try:
            self._parser.write(chunk)
        except MultipartError:
            raise
        except Exception as exc:
            raise MultipartError(f"malformed multipart body: {exc}") from exc
        out, self._out = self._out, []
        return out

    def finish(self) -> None:
        """Check the body ended properly with exactly one complete file part."""
        if not self._finished:
            raise MultipartError("the multipart body ended before its closing boundary")
        if not self.file_seen:
            raise MultipartError(
                f"no file part: send the file in a form field named {FILE_FIELD!r}"
            )

    def _on_part_begin(self) -> None:
        self._part = _Part()

    def _on_header_end(self) -> None:
        name = self._header_field.decode("latin-1").strip().lower()
        self._part.headers[name] = self._header_value.decode("utf-8", "replace").strip()
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        part = self._part
        disposition = part.headers.get("content-disposition", "")
        _, params = parse_options_header(disposition)
        name = params.get(b"name")
        filename = params.get(b"filename")
        part.name = name.decode("utf-8", "replace") if name is not None else None
        part.filename = filename.decode("utf-8", "replace") if filename is not None else None
        part.is_file = part.name == FILE_FIELD or part.filename is not None
        if part.is_file:
            if self.file_seen:
                raise MultipartError("send exactly one file per request")
            self.file_seen = True
            self.filename = part.filename
            self.file_content_type = part.headers.get("content-type")

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part.is_file:
            self._out.append(bytes(data[start:end]))
            return
        self._part.text += data[start:end]
        if len(self._part.text) > MAX_FIELD_BYTES:
            raise MultipartError(
                f"form field {self._part.name!r} is longer than {MAX_FIELD_BYTES} bytes"
            )

    def _on_part_end(self) -> None:
        part = self._part
        if part.is_file:
            self.file_complete = True
        elif part.name:
            self.fields[part.name] = part.text.decode("utf-8", "replace")

    def _on_end(self) -> None:
        self._finished = True
