"""Object store in a local directory: atomic, fsync'd, create-only writes (no retention locks)."""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from storage.base import (
    InvalidKeyError,
    LockInfo,
    ObjectExistsError,
    ObjectInfo,
    ObjectNotFoundError,
    PutResult,
    StorageError,
    check_key,
    check_prefix,
)
from storage.streams import HashedFile, StreamDigest, check_put_args, iter_chunks, sha256_of

# '~' is outside the key alphabet, so no key can name the temp directory and `list` skips it.
TMP_DIR = ".tmp~"
READ_ONLY = 0o444  # create-only objects: a guard against accidental writes, not a lock
WRITABLE = 0o644  # mutable objects (partial tiles, the checkpoint)
_TEMP_NAMES = itertools.count()  # next() on a count is atomic: no two threads get one number
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
_TEMP_ATTEMPTS = 100


@contextlib.contextmanager
def _fs_errors(key: str) -> Iterator[None]:
    """Turn file-system failures (disk full, permissions) into the port's `StorageError`."""
    try:
        yield
    except OSError as error:
        raise StorageError(f"file-system error for {key!r}: {error}") from error


class LocalObjectStore:
    """Each key is the file at the same relative path under `root`."""

    def __init__(self, root: Path) -> None:
        self._root = Path(root).resolve()
        self._tmp_made = False  # the temp directory, once made, is not asked for again

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self._root)!r})"

    @property
    def supports_lock(self) -> bool:
        return False

    def put(
        self,
        key: str,
        source: BinaryIO,
        *,
        sha256: str,
        size: int,
        retain_until: datetime | None = None,
        mutable: bool = False,
    ) -> PutResult:
        path = self._path(key)
        check_put_args(retain_until, mutable=mutable)
        with _fs_errors(key):
            tmp_dir = self._tmp_dir()
            linked = _link_source(source, tmp_dir)
            fd, name = (-1, str(linked)) if linked else self._temp_file()
        try:
            if linked:
                _check_linked(key, source, linked, sha256=sha256, size=size)
            else:
                _fill(key, fd, source, sha256=sha256, size=size)
            with _fs_errors(key):
                return self._publish(key, Path(name), path, sha256=sha256, mutable=mutable)
        finally:
            # After os.link or a failure the temp name must go; after os.replace it is gone.
            with contextlib.suppress(OSError):
                os.unlink(name)

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            # O_NOFOLLOW: a symlink swapped in after the check in _path is refused, not followed.
            # O_NONBLOCK: opening a FIFO put in an object's place would wait for a writer.
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFoundError(key) from None
        except OSError as error:
            raise StorageError(f"cannot open {key!r}: {error}") from error
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ObjectNotFoundError(key)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            status = path.lstat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as error:
            raise StorageError(f"cannot stat {key!r}: {error}") from error
        return ObjectInfo(key, status.st_size) if stat.S_ISREG(status.st_mode) else None

    def list(self, prefix: str) -> Iterator[str]:
        check_prefix(prefix)
        # Start at the deepest directory the prefix names in full; filter on the rest.
        directory, slash, _ = prefix.rpartition("/")
        start = self._path(directory) if slash else self._root
        for key in _walk(start, directory + slash):
            if key.startswith(prefix):
                yield key

    def lock_info(self, key: str) -> LockInfo | None:
        if self.stat(key) is None:
            raise ObjectNotFoundError(key)
        return None

    def _path(self, key: str) -> Path:
        segments = check_key(key).split("/")
        # A symlink under the root could lead anywhere: keys must name plain paths. The root
        # is resolved and segments are never "." or "..", so only the names below the root
        # need a look, and none past the first that does not exist.
        current = str(self._root)
        for segment in segments:
            current = f"{current}/{segment}"
            try:
                mode = os.lstat(current).st_mode
            except (FileNotFoundError, NotADirectoryError):
                break
            except OSError as error:
                raise InvalidKeyError(key, f"cannot be resolved: {error}") from None
            if stat.S_ISLNK(mode):
                raise InvalidKeyError(key, "passes through a symbolic link")
        return self._root.joinpath(*segments)

    def _tmp_dir(self) -> Path:
        tmp_dir = self._root / TMP_DIR
        if not self._tmp_made:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            self._tmp_made = True
        return tmp_dir

    def _temp_file(self) -> tuple[int, str]:
        """A new file in the temp directory, open for writing (mode 0600, as `mkstemp`).

        Named by process and counter rather than by `mkstemp`'s random letters, which cost
        more than the rest of a small put; O_EXCL still refuses a name already taken (a
        file left by an earlier process with the same PID), and the next number is tried.
        """
        for _ in range(_TEMP_ATTEMPTS):
            name = f"{self._tmp_dir()}/put-{os.getpid()}-{next(_TEMP_NAMES)}"
            try:
                return os.open(name, _TEMP_FLAGS, 0o600), name
            except FileExistsError:
                continue
            except FileNotFoundError:  # the temp directory was removed since: make it again
                self._tmp_made = False
        raise FileExistsError(f"no free temp file name in {self._root / TMP_DIR}")

    def _publish(self, key: str, tmp: Path, path: Path, *, sha256: str, mutable: bool) -> PutResult:
        tmp.chmod(WRITABLE if mutable else READ_ONLY)
        # Most parents exist already: the name is placed first, and only a missing parent
        # (FileNotFoundError) costs the walk that makes them.
        created_dirs: list[Path] = []
        try:
            placed = _place(tmp, path, mutable=mutable)
        except FileNotFoundError:
            created_dirs = _make_parents(self._root, path.parent)
            placed = _place(tmp, path, mutable=mutable)
        if not placed:
            if _file_sha256(path) != sha256:
                raise ObjectExistsError(key)
            return PutResult(key, created=False)
        # The new name and any new directories are durable only once their parents are synced.
        for directory in {path.parent, *(created.parent for created in created_dirs)}:
            _fsync_dir(directory)
        return PutResult(key, created=True)


def _place(tmp: Path, path: Path, *, mutable: bool) -> bool:
    """Give `tmp` the name `path`; False if a create-only name exists already."""
    if mutable:
        os.replace(tmp, path)
        return True
    try:
        # link() fails if the name exists: an atomic create-only write, even between
        # processes, that never exposes a partly written file.
        os.link(tmp, path)
    except FileExistsError:
        return False
    return True


def _fill(key: str, fd: int, source: BinaryIO, *, sha256: str, size: int) -> None:
    """Copy `source` into the open temp file `fd`, check its digest, then make it durable."""
    digest = StreamDigest()
    with os.fdopen(fd, "wb") as file:
        for chunk in iter_chunks(source):  # the source's own errors pass through unchanged
            digest.update(chunk)
            with _fs_errors(key):
                file.write(chunk)
        digest.verify(key, sha256=sha256, size=size)
        with _fs_errors(key):
            file.flush()
            os.fsync(file.fileno())


def _link_source(source: BinaryIO, tmp_dir: Path) -> Path | None:
    """Hard-link `source` into the temp directory when it is a whole file opened 'rb' here.

    A staged upload of many GB then becomes an object without a second copy. None where
    that cannot be done (a stream, another file system, a file read part-way): then copy.
    """
    name = getattr(source, "name", None)
    if not isinstance(name, str) or getattr(source, "mode", None) != "rb":
        return None
    target = tmp_dir / f"link-{secrets.token_hex(12)}"
    try:
        status = os.fstat(source.fileno())
        if source.tell() != 0 or not stat.S_ISREG(status.st_mode):
            return None
        if os.stat(name, follow_symlinks=False).st_ino != status.st_ino:
            return None  # the name no longer leads to the open file
        os.link(name, target, follow_symlinks=False)
    except (OSError, ValueError):  # EXDEV across file systems, no fileno, closed file
        return None
    return target


def _check_linked(key: str, source: BinaryIO, linked: Path, *, sha256: str, size: int) -> None:
    """Check the linked file's digest (read through `source`) and make it durable.

    A `HashedFile` was hashed from the buffers its writer wrote into it: reading it back
    would only hash the same bytes again (a second pass over a file of many GB).
    """
    if not (isinstance(source, HashedFile) and source.hashed_as(sha256=sha256, size=size)):
        digest = StreamDigest()
        for chunk in iter_chunks(source):
            digest.update(chunk)
        digest.verify(key, sha256=sha256, size=size)
    with _fs_errors(key):
        fd = os.open(linked, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _file_sha256(path: Path) -> str | None:
    """The SHA-256 of the regular file at `path`; None for anything else (a directory, a
    FIFO, whose open would wait for a writer, a symbolic link)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    os.set_blocking(fd, True)
    with os.fdopen(fd, "rb") as file:
        return sha256_of(file)


def _make_parents(root: Path, directory: Path) -> list[Path]:
    """Create the missing directories from `root` down to `directory`; return those created."""
    created: list[Path] = []
    current = root
    for part in directory.relative_to(root).parts:
        current = current / part
        try:
            current.mkdir()
        except FileExistsError:
            continue  # made by us earlier or by a concurrent writer; a file here fails later
        created.append(current)
    return created


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_segment(name: str) -> bool:
    try:
        check_key(name)
    except InvalidKeyError:
        return False
    return True


def _walk(directory: Path, relative: str) -> Iterator[str]:
    """Keys of the regular files under `directory`, in lexicographic order of the whole key."""
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as error:
        raise StorageError(f"cannot list {relative or '/'!r}: {error}") from error

    def order(entry: os.DirEntry[str]) -> str:
        # Every key below directory "a" starts with "a/": sorting it as "a/" puts it after
        # the names "a-b" and "a.b", as plain string order of the keys requires.
        return entry.name + "/" if entry.is_dir(follow_symlinks=False) else entry.name

    for entry in sorted(entries, key=order):
        if not _is_segment(entry.name):
            continue  # the temp directory, or a stray file no key can name
        name = relative + entry.name
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path), name + "/")
        elif entry.is_file(follow_symlinks=False):
            yield name
