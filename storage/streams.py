"""What every adapter's `put` shares: chunked reads, the digest check and argument checks."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

from storage.base import ObjectDigestError

CHUNK_SIZE = 1024 * 1024  # 1 MiB: few system calls per GB, yet flat memory per write


class StreamDigest:
    """SHA-256 and length of the bytes seen so far."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self.size += len(chunk)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def digest(self) -> bytes:
        return self._hash.digest()

    def verify(self, key: str, *, sha256: str, size: int) -> None:
        """Raise `ObjectDigestError` unless the bytes seen are the ones declared.

        The declared size is checked too: a wrong size with a matching SHA-256 is impossible
        for honest callers, so both cases are reported as a digest error.
        """
        actual = self.hexdigest()
        if actual != sha256 or self.size != size:
            raise ObjectDigestError(key, sha256, actual)


class HashedFile(io.BufferedReader):
    """A file opened 'rb' whose SHA-256 and size its writer computed from the very buffers
    it wrote, having created the file exclusively and written it through its only handle.

    A store that can take the file as it is (the local store links it) may trust `sha256`
    instead of reading the file back; every other store reads it and checks as it streams.
    """

    def __init__(self, path: str | os.PathLike[str], *, sha256: str, size: int) -> None:
        super().__init__(io.FileIO(os.fspath(path), "rb"), buffer_size=CHUNK_SIZE)
        self.sha256 = sha256
        self.size = size

    def hashed_as(self, *, sha256: str, size: int) -> bool:
        """Whether the writer's digest is the one declared, for the file as it is now."""
        return self.sha256 == sha256 and self.size == size == os.fstat(self.fileno()).st_size


def read_up_to(source: BinaryIO, size: int) -> bytes:
    """Read `size` bytes, fewer only at the end of the stream (sources may return short reads)."""
    parts: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = source.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def iter_chunks(source: BinaryIO, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The stream's bytes, in chunks of at most `chunk_size`, until the end."""
    while chunk := source.read(chunk_size):
        yield chunk


def sha256_of(stream: BinaryIO) -> str:
    """Hex SHA-256 of the rest of `stream`, read in chunks."""
    digest = StreamDigest()
    for chunk in iter_chunks(stream):
        digest.update(chunk)
    return digest.hexdigest()


def check_put_args(retain_until: datetime | None, *, mutable: bool) -> None:
    """Refuse argument combinations that are programming errors, whatever the store."""
    if retain_until is None:
        return
    if mutable:
        # A lock would make the next overwrite of a mutable object impossible.
        raise ValueError("a mutable object cannot have a retention lock (retain_until)")
    if retain_until.tzinfo is None or retain_until.utcoffset() is None:
        # A naive time would be read in the server's or the library's zone: ambiguous.
        raise ValueError("retain_until must be timezone-aware")
