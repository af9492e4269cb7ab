"""Streams a bag into a zip (RFC 8493 §4.2: one top-level directory holding one bag).

Payload files are copied from their streams once, in flat memory, while both manifest
digests are computed; the zip entries are stored, not compressed (evidence is mostly
compressed media already, and a stored entry can be hashed as fast as it is read).
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from datetime import datetime
from typing import BinaryIO

from custody.bundle.bagit import format_manifest, payload_oxum
from custody.bundle.layout import (
    ALGORITHMS,
    PAYLOAD_DIR,
    manifest_name,
    signature_name,
    tag_manifest_name,
)
from custody.errors import BundleError

CHUNK = 1024 * 1024
ZIP64_FROM = 2**31  # zipfile needs to know in advance that an entry will need ZIP64


def digests_of(data: bytes) -> dict[str, str]:
    return {algorithm: hashlib.new(algorithm, data).hexdigest() for algorithm in ALGORITHMS}


class BagWriter:
    """A bag being written: payload first, then its manifests, then the tag files."""

    def __init__(self, sink: BinaryIO, root: str, *, time: datetime) -> None:
        if not root or "/" in root or root in (".", ".."):
            raise BundleError(f"{root!r} cannot name a bag's directory")
        self._zip = zipfile.ZipFile(sink, "w", allowZip64=True)
        self._root = root
        self._date_time = time.timetuple()[:6]
        self._payload: list[tuple[str, dict[str, str]]] = []
        self._tags: list[tuple[str, dict[str, str]]] = []
        self._names: set[str] = set()
        self._octets = 0

    @property
    def root(self) -> str:
        return self._root

    def add_payload(self, path: str, source: BinaryIO, *, size: int) -> dict[str, str]:
        """Copy one payload file from `source`; its digests, once all `size` bytes came."""
        if not path.startswith(PAYLOAD_DIR):
            raise BundleError(f"payload file {path!r} is not under {PAYLOAD_DIR}")
        hashers = {algorithm: hashlib.new(algorithm) for algorithm in ALGORITHMS}
        info = self._info(path, zipfile.ZIP_STORED)
        info.file_size = size
        copied = 0
        with self._zip.open(info, "w", force_zip64=size >= ZIP64_FROM) as out:
            while chunk := source.read(CHUNK):
                for hasher in hashers.values():
                    hasher.update(chunk)
                out.write(chunk)
                copied += len(chunk)
        if copied != size:
            raise BundleError(f"{path}: expected {size} bytes from the store, read {copied}")
        digests = {algorithm: hasher.hexdigest() for algorithm, hasher in hashers.items()}
        self._payload.append((path, digests))
        self._octets += size
        return digests

    def payload_manifests(self) -> bytes:
        """Write manifest-<alg>.txt for the payload so far; return manifest-sha256.txt."""
        texts = {
            algorithm: format_manifest((path, d[algorithm]) for path, d in self._payload)
            for algorithm in ALGORITHMS
        }
        for algorithm, text in texts.items():
            self.add_tag(manifest_name(algorithm), text)
        return texts["sha256"]

    @property
    def oxum(self) -> str:
        return payload_oxum(self._octets, len(self._payload))

    def add_tag(self, path: str, data: bytes) -> None:
        if path.startswith(PAYLOAD_DIR):
            raise BundleError(f"tag file {path!r} is under {PAYLOAD_DIR}")
        self._zip.writestr(self._info(path, zipfile.ZIP_DEFLATED), data)
        self._tags.append((path, digests_of(data)))

    def finish(self, sign: Callable[[bytes], bytes]) -> dict[str, bytes]:
        """Write the tag manifests and the detached signature over each; close the zip.
        Returns each tag manifest's bytes."""
        manifests = {}
        for algorithm in ALGORITHMS:
            text = format_manifest((path, d[algorithm]) for path, d in self._tags)
            manifests[algorithm] = text
            self._zip.writestr(self._info(tag_manifest_name(algorithm), zipfile.ZIP_DEFLATED), text)
            self._zip.writestr(
                self._info(signature_name(algorithm), zipfile.ZIP_STORED), sign(text)
            )
        self._zip.close()
        return manifests

    def abort(self) -> None:
        self._zip.close()

    def _info(self, path: str, compression: int) -> zipfile.ZipInfo:
        parts = path.split("/")
        if path.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise BundleError(f"{path!r} is not a relative path inside the bag")
        if path in self._names:
            raise BundleError(f"{path} is written twice")
        self._names.add(path)
        info = zipfile.ZipInfo(f"{self._root}/{path}", date_time=self._date_time)
        info.compress_type = compression
        info.external_attr = 0o644 << 16
        return info
