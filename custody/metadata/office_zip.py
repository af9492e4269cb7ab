"""ZIP packages of office documents: read within limits, written deterministically (APPNOTE 6.3)."""

from __future__ import annotations

import shutil
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import IO, BinaryIO

from custody.metadata.base import StripError

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a ZIP header can hold (APPNOTE §4.4.6)
_EOCD = b"PK\x05\x06"
_EOCD_SEARCH = 22 + 0xFFFF  # the record and the longest comment (APPNOTE §4.3.16)
_DIRECTORY_ENTRY = 1024  # bytes per central-directory entry we accept (names are short)
_SPOOL = 16 * 1024 * 1024  # bytes a copy for an unseekable sink is held in memory
_ENCRYPTED = 0x1 | 0x40  # general purpose flags: traditional and strong encryption (§4.4.4)


@dataclass(frozen=True, slots=True)
class PackageLimits:
    """What a package may expand to; beyond it the package is refused, never inflated."""

    members: int = 10_000
    member_bytes: int = 64 * 1024 * 1024
    total_bytes: int = 512 * 1024 * 1024


@contextmanager
def zip_errors(what: str) -> Iterator[None]:
    """zipfile's and zlib's exceptions for damaged input, as StripError naming `what`."""
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, struct.error) as exc:
        raise StripError(f"damaged ZIP ({what}): {exc}") from exc
    except (NotImplementedError, ValueError, OSError, RuntimeError) as exc:
        # zipfile raises these for unsupported methods, bad offsets and encryption.
        raise StripError(f"unreadable ZIP ({what}): {type(exc).__name__}") from exc


class Package:
    """The members of a checked ZIP, read one at a time within the limits.

    Member count and sizes are capped before anything is inflated (zip bombs); encrypted
    members, unusual compression, duplicate names (OPC part names compare case-insensitively,
    ECMA-376 Part 2 part names) and names that climb out of the package are refused.
    """

    def __init__(self, source: BinaryIO, limits: PackageLimits) -> None:
        if not source.seekable():
            raise StripError("the source must be seekable")
        self._limits = limits
        with zip_errors("directory"):
            _check_directory(source, limits)
            self._zip = zipfile.ZipFile(source)
            self.members = self._zip.infolist()
        _check_members(self.members, limits)
        self.names = {info.filename.casefold(): info.filename for info in self.members}

    def read(self, info: zipfile.ZipInfo) -> bytes:
        """A member's bytes; zipfile checks its CRC-32 and stops at its declared size."""
        with zip_errors(info.filename), self._zip.open(info) as member:
            data = member.read(self._limits.member_bytes + 1)
        if len(data) != info.file_size:
            raise StripError(f"{info.filename} is not the size its header gives")
        return data

    def close(self) -> None:
        self._zip.close()


def _check_directory(source: BinaryIO, limits: PackageLimits) -> None:
    """Refuse a central directory too large to list before zipfile lists it in memory."""
    end = source.seek(0, 2)
    source.seek(max(0, end - _EOCD_SEARCH))
    tail = source.read()
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) < at + 22:
        raise StripError("not a ZIP package: no end of central directory record")
    entries = int.from_bytes(tail[at + 10 : at + 12], "little")
    size = int.from_bytes(tail[at + 12 : at + 16], "little")
    if entries > limits.members or size > limits.members * _DIRECTORY_ENTRY:
        raise StripError(f"a ZIP directory of {entries} members ({size} bytes)")
    source.seek(0)


def _check_members(members: list[zipfile.ZipInfo], limits: PackageLimits) -> None:
    if len(members) > limits.members:
        raise StripError(f"{len(members)} ZIP members: more than {limits.members}")
    seen: set[str] = set()
    total = 0
    for info in members:
        name = info.filename
        _check_name(info)
        if name.casefold() in seen:
            raise StripError(f"duplicate ZIP member {name!r}", found=(name,))
        seen.add(name.casefold())
        if info.flag_bits & _ENCRYPTED:
            raise StripError(f"encrypted ZIP member {name!r}", found=(name,))
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise StripError(f"ZIP member {name!r} uses compression method {info.compress_type}")
        if info.file_size > limits.member_bytes:
            raise StripError(f"ZIP member {name!r} expands to {info.file_size} bytes")
        total += info.file_size
    if total > limits.total_bytes:
        raise StripError(f"ZIP members expand to {total} bytes: more than {limits.total_bytes}")


def _check_name(info: zipfile.ZipInfo) -> None:
    name = info.filename
    segments = name.rstrip("/").split("/")
    # zipfile cuts names at a NUL byte, so the name it shows would not be the stored one.
    unsafe = (
        info.orig_filename != name
        or not name
        or name.startswith("/")
        or "\\" in name
        or ":" in segments[0]
        or any(segment in ("", ".", "..") for segment in segments)
        or any(ord(char) < 0x20 for char in name)
    )
    if unsafe:
        raise StripError(f"unsafe ZIP member name {name!r}", found=(name,))


class PackageWriter:
    """A new ZIP written member by member, byte-for-byte the same for the same members.

    One fixed time, no extra fields, no comments, no Unix permissions: nothing of the
    machine or the moment the copy was made.
    """

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        # Without seeking, zipfile writes data descriptors after each member; ODF readers
        # expect the mimetype member's sizes in its local header (ODF 1.3 Part 2 §3.3).
        self._target: IO[bytes] = sink if sink.seekable() else _spool()
        self._zip = zipfile.ZipFile(self._target, "w")

    def add(self, name: str, data: bytes, *, stored: bool = False) -> None:
        info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
        info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        info.create_system = 0  # MS-DOS: no Unix mode bits in the external attributes
        info.external_attr = 0
        self._zip.writestr(info, data, compresslevel=None if stored else 6)

    def abandon(self) -> None:
        """Close after a failure: the sink holds a partial copy the caller discards."""
        with suppress(Exception):
            self._zip.close()

    def close(self) -> None:
        self._zip.close()
        if self._target is not self._sink:
            self._target.seek(0)
            shutil.copyfileobj(self._target, self._sink)
            self._target.close()


def _spool() -> IO[bytes]:
    return tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # closed in PackageWriter.close
