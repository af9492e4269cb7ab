"""Streams of the auditor's sources whose failing reads name the object they read."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import BinaryIO

from custody.errors import UnreadableObjectError


class NamedReading(io.RawIOBase):
    """An object's stream whose failing reads (a reset connection, an I/O error) raise
    UnreadableObjectError, which `unreadable` makes from the key and the error: the audit
    names the object and goes on."""

    def __init__(
        self,
        stream: BinaryIO,
        key: str,
        *,
        errors: tuple[type[Exception], ...],
        unreadable: Callable[[str, Exception], UnreadableObjectError],
    ) -> None:
        super().__init__()
        self._stream = stream
        self._key = key
        self._errors = errors
        self._unreadable = unreadable

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        try:
            return self._stream.read(-1 if size is None else size)
        except self._errors as exc:
            raise self._unreadable(self._key, exc) from exc

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()
