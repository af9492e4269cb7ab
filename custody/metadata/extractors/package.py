"""ZIP packages (PKWARE APPNOTE 6.3) opened within limits; their XML parts read with defusedxml."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from functools import partial
from typing import IO, BinaryIO
from xml.etree.ElementTree import Element

from defusedxml import ElementTree

from custody.metadata.extractors import xmlstream
from custody.metadata.extractors.collector import Collector, LimitError, Limits
from custody.metadata.extractors.xmlstream import Event

_EOCD, _ZIP64_LOCATOR, _ZIP64_EOCD = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"
_EOCD_SEARCH = 22 + 65535  # the record and the longest comment (APPNOTE §4.3.16)
_SMALL_PART = 8 * 1024 * 1024  # property parts: a few KiB in practice
_MEDIA_COUNT, _MEDIA_BYTES = 64, 16 * 1024 * 1024  # embedded images read per package, each
_DIRECTORY_ENTRY = 1024  # bytes per central-directory entry we accept (names are short)


class Package:
    """A ZIP file whose members are read with a shared budget, so no zip bomb can go off."""

    def __init__(self, fh: BinaryIO, limits: Limits) -> None:
        _check_directory(fh, limits)
        self.zip = zipfile.ZipFile(fh)
        self.names = [info.filename for info in self.zip.infolist()]
        self._part = limits.zip_max_part
        self._left = limits.zip_max_total

    def read(self, name: str, limit: int) -> bytes:
        """The whole of one small member (at most `limit` bytes), within the package limits."""
        with self.zip.open(name) as member:
            data = self._capped(member).read(limit + 1)
        if len(data) > limit:
            raise LimitError(f"{name} is larger than {limit} bytes")
        return data

    def events(
        self, name: str, tags: frozenset[str], attributes: tuple[str, ...] = ()
    ) -> Iterator[Event]:
        """Some elements of a large XML member, streamed (see `xmlstream.events`)."""
        with self.zip.open(name) as member:
            yield from xmlstream.events(self._capped(member), tags, attributes)

    def parse(self, name: str) -> Element:
        """A small XML member as a tree (core, app and custom properties, meta.xml)."""
        # No DTDs: package XML never has one, and they carry entity-expansion attacks.
        tree: Element = ElementTree.fromstring(self.read(name, _SMALL_PART), forbid_dtd=True)
        return tree

    def _capped(self, member: IO[bytes]) -> _Capped:
        return _Capped(member, self)

    def consume(self, size: int, part_read: int) -> None:
        if part_read > self._part:
            raise LimitError(f"a package member expands beyond {self._part} bytes")
        self._left -= size
        if self._left < 0:
            raise LimitError("the package's members expand beyond the total limit")


class _Capped(io.RawIOBase):
    """A member stream that charges every byte inflated to its package's budget."""

    def __init__(self, member: IO[bytes], package: Package) -> None:
        super().__init__()
        self._member = member
        self._package = package
        self._read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size >= 0:
            data = self._member.read(size)
            self._charge(len(data))
            return data
        chunks = []
        while chunk := self.read(64 * 1024):  # "all" in chunks, so the caps apply early
            chunks.append(chunk)
        return b"".join(chunks)

    def _charge(self, size: int) -> None:
        self._read += size
        self._package.consume(size, self._read)


def _check_directory(fh: BinaryIO, limits: Limits) -> None:
    """Refuse a central directory too large to list, before zipfile lists it in memory."""
    end = fh.seek(0, io.SEEK_END)
    fh.seek(max(0, end - _EOCD_SEARCH))
    tail = fh.read()
    at = len(tail) - 22 if tail[-22:-18] == _EOCD else tail.rfind(_EOCD)
    if at < 0:
        return  # not a ZIP: zipfile says so
    entries = int.from_bytes(tail[at + 10 : at + 12], "little")
    size = int.from_bytes(tail[at + 12 : at + 16], "little")
    locator = tail[at - 20 : at] if at >= 20 else b""
    if locator[:4] == _ZIP64_LOCATOR:  # APPNOTE §4.3.14-15: the ZIP64 record has the counts
        fh.seek(int.from_bytes(locator[8:16], "little"))
        record = fh.read(56)
        if record[:4] == _ZIP64_EOCD:
            entries = int.from_bytes(record[32:40], "little")
            size = int.from_bytes(record[40:48], "little")
    if entries > limits.zip_max_members or size > limits.zip_max_members * _DIRECTORY_ENTRY:
        raise LimitError(f"a ZIP directory of {entries} members ({size} bytes)")


def qname(tag: str, prefixes: dict[str, str]) -> str:
    """The "prefix:local" form of an ElementTree "{uri}local" name, with our fixed prefixes."""
    if not tag.startswith("{"):
        return tag
    uri, _, local = tag[1:].partition("}")
    return f"{prefixes.get(uri, 'ns')}:{local}"


def read_media(package: Package, out: Collector, family: str, pattern: re.Pattern[str]) -> None:
    """Read the images a document embeds: a photo pasted into a report keeps its EXIF (GPS)."""
    media = [name for name in package.names if pattern.search(name)]
    for name in media[:_MEDIA_COUNT]:
        out.guard(family.lower(), partial(_medium, package, name, out, family))
    if len(media) > _MEDIA_COUNT:
        out.error(family.lower(), f"images after the first {_MEDIA_COUNT} not read")


def _medium(package: Package, name: str, out: Collector, family: str) -> None:
    out.embedded(f"{family}:{name}", package.read(name, _MEDIA_BYTES))


def add_members(package: Package, out: Collector, family: str, pattern: re.Pattern[str]) -> None:
    """Record members whose presence is sensitive (thumbnails, embedded files), with sizes."""
    for info in package.zip.infolist():
        if pattern.search(info.filename):
            out.add(f"{family}:{info.filename}", f"<{info.file_size} bytes>", literal=False)
