"""Where an auditor reads a log from: a local store directory, S3, or the service over HTTP
(cli.http_source); what the audit asks of each (AuditSource)."""

from __future__ import annotations

import threading
import urllib.parse
from pathlib import Path
from typing import BinaryIO, Protocol, cast

from cli.http_source import HttpSource
from cli.reading import NamedReading
from custody.audit import COPY, ORIGINAL, SEALED_KINDS, SIDECAR
from custody.errors import UnreadableObjectError
from storage import InvalidKeyError, ObjectNotFoundError, ObjectStore, StorageError
from storage.local import LocalObjectStore
from storage.s3 import S3ObjectStore

# Where the service seals what the log names, by content address (see api.evidence,
# api.sidecar, api.copies): <prefix>/<first two hex digits>/<sha256>.
SEALED_PREFIXES = {
    ORIGINAL: "originals/sha256",
    SIDECAR: "metadata/sha256",
    COPY: "copies/sha256",
}


class AuditSource(Protocol):
    """What `custody audit` reads a log through: StoreSource, HttpSource, and ReadAhead
    (cli.read_ahead) over either."""

    remote: bool  # each read a round trip away: worth reading ahead

    def read(self, path: str) -> bytes | None: ...

    def archived_sizes(self) -> list[int]: ...

    def timestamps(self, size: int) -> list[tuple[str, bytes | UnreadableObjectError]]: ...

    @property
    def sealed_kinds(self) -> tuple[str, ...]: ...

    def open_sealed(self, kind: str, sha256: str) -> BinaryIO | None: ...

    def close(self) -> None: ...


class StoreSource:
    """A log in an object store (local directory or S3), under `log_prefix`.

    An object the store holds but cannot read (a symbolic link, permissions, a read that
    fails) or a listing that fails raises UnreadableObjectError, for the audit to name.
    """

    def __init__(self, store: ObjectStore, log_prefix: str = "log/") -> None:
        self._store = store
        self._prefix = log_prefix
        self._tokens: dict[int, list[str]] | UnreadableObjectError | None = None
        self._listing = threading.Lock()
        self.remote = isinstance(store, S3ObjectStore)  # each read a round trip away

    def close(self) -> None:
        """Nothing to release: each read opens and closes its own object."""

    def read(self, path: str) -> bytes | None:
        try:
            with self._store.open(self._prefix + path) as stream:
                return stream.read()
        except ObjectNotFoundError:
            return None
        except (StorageError, OSError) as exc:
            raise _unreadable(path, exc) from exc

    def archived_sizes(self) -> list[int]:
        names = (k.rsplit("/", 1)[-1] for k in self._list("checkpoints/"))
        return sorted(int(n) for n in names if _is_number(n))

    def timestamps(self, size: int) -> list[tuple[str, bytes | UnreadableObjectError]]:
        """The stored replies `checkpoints/<size>.tsr.<slot>` (listed once for all sizes),
        each reply the store cannot read as its UnreadableObjectError."""
        with self._listing:  # read ahead, several sizes may ask first at once
            if self._tokens is None:
                try:
                    self._tokens = _by_size(self._list("checkpoints/"))
                except UnreadableObjectError as exc:  # once, not once per size
                    self._tokens = exc
            tokens = self._tokens
        if isinstance(tokens, UnreadableObjectError):
            raise UnreadableObjectError(tokens.key, tokens.expected, tokens.found)
        found: list[tuple[str, bytes | UnreadableObjectError]] = []
        for key in sorted(tokens.get(size, [])):
            try:
                data = self.read(key.removeprefix(self._prefix))
            except UnreadableObjectError as exc:
                found.append((key, UnreadableObjectError(key, exc.expected, exc.found)))
                continue
            if data is not None:
                found.append((key, data))
        return found

    @property
    def sealed_kinds(self) -> tuple[str, ...]:
        return SEALED_KINDS

    def open_sealed(self, kind: str, sha256: str) -> BinaryIO | None:
        key = f"{SEALED_PREFIXES[kind]}/{sha256[:2]}/{sha256}"
        try:
            stream = self._store.open(key)
        except ObjectNotFoundError:
            return None
        except (StorageError, OSError) as exc:
            raise _unreadable(key, exc) from exc
        reading = NamedReading(stream, key, errors=(StorageError, OSError), unreadable=_unreadable)
        return cast(BinaryIO, reading)

    def _list(self, path: str) -> list[str]:
        try:
            return list(self._store.list(self._prefix + path))
        except (StorageError, OSError) as exc:
            raise UnreadableObjectError(path, "a listing of its objects", str(exc)) from exc


def _unreadable(key: str, error: Exception) -> UnreadableObjectError:
    if isinstance(error, InvalidKeyError):  # the local store's refusal of a symbolic link
        return UnreadableObjectError(key, "a regular file", f"a path that {error.reason}")
    return UnreadableObjectError(key, "an object the auditor can read", str(error))


def _by_size(keys: list[str]) -> dict[int, list[str]]:
    """The keys of stored replies (`<size>.tsr.<slot>`) by checkpoint size."""
    tokens: dict[int, list[str]] = {}
    for key in keys:
        name, dot, slot = key.rsplit("/", 1)[-1].partition(".tsr.")
        if dot and _is_number(name) and _is_number(slot):
            tokens.setdefault(int(name), []).append(key)
    return tokens


def _is_number(text: str) -> bool:
    return text.isdigit() and str(int(text)) == text


def open_source(
    source: str, *, log_prefix: str, endpoint_url: str | None, region: str, token: str | None
) -> StoreSource | HttpSource:
    """The source a SOURCE argument names (directory, s3://bucket/prefix, http(s)://...)."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme in ("http", "https"):
        return HttpSource(source, token)
    if parsed.scheme == "s3":
        prefix = parsed.path.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        store = S3ObjectStore.from_settings(
            endpoint_url=endpoint_url,
            region=region,
            access_key_id=None,
            secret_access_key=None,
            bucket=parsed.netloc,
            prefix=prefix,
        )
        return StoreSource(store, log_prefix)
    if parsed.scheme:
        raise ValueError(f"unsupported source {source!r}: use a directory, s3:// or http(s)://")
    root = Path(source)
    if not root.is_dir():
        raise ValueError(f"{source} is not a directory (the root of a local object store)")
    return StoreSource(LocalObjectStore(root), log_prefix)
