"""cli.reading: a failing read names its object; other errors pass through unchanged."""

from __future__ import annotations

import io
from typing import BinaryIO, cast

import pytest

from cli.reading import NamedReading
from custody.errors import UnreadableObjectError


class Failing(io.BytesIO):
    def __init__(self, error: Exception) -> None:
        super().__init__(b"")
        self.error = error

    def read(self, size: int | None = -1) -> bytes:
        raise self.error


def named(key: str, error: Exception) -> UnreadableObjectError:
    return UnreadableObjectError(key, "an object", str(error))


def reading(stream: io.BytesIO) -> NamedReading:
    return NamedReading(cast(BinaryIO, stream), "tile/0/000", errors=(OSError,), unreadable=named)


def test_bytes_pass_through_and_closing_closes_the_stream() -> None:
    stream = io.BytesIO(b"tile bytes")
    with reading(stream) as wrapped:
        assert wrapped.read(4) == b"tile"
        assert wrapped.read() == b" bytes"
    assert stream.closed


def test_a_listed_error_names_the_object() -> None:
    with pytest.raises(UnreadableObjectError) as unreadable:
        reading(Failing(ConnectionResetError("reset by peer"))).read(10)
    assert (unreadable.value.key, unreadable.value.found) == ("tile/0/000", "reset by peer")


def test_an_error_not_listed_is_not_hidden() -> None:
    with pytest.raises(ValueError, match="a bug"):
        reading(Failing(ValueError("a bug"))).read(10)
