"""Where a bag is read from: a zip holding one bag directory (RFC 8493 §4.2), or that
directory unzipped. Reading only; the checks are in `verify`.

Names are relative to the bag's root directory, with "/" separators. Anything that is not
a file of that one directory (another top-level entry, an absolute or ".." name, a zip
entry written twice) is reported in `stray` rather than silently ignored, because a
verifier that skips what it does not expect is one an attacker can hide things from.
"""

from __future__ import annotations

import os
import zipfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Protocol

from custody.bundle.layout import BAGIT_TXT
from custody.errors import BundleError


class BagSource(Protocol):
    """A bag to verify: its root directory's name, its files and their sizes, their bytes."""

    @property
    def root(self) -> str: ...

    @property
    def stray(self) -> tuple[str, ...]:
        """Entries outside the one top-level directory (or duplicated), as found."""
        ...

    def files(self) -> Mapping[str, int]:
        """Every file of the bag, relative to its root -> its size in bytes."""
        ...

    def open(self, path: str) -> IO[bytes]:
        """The file's bytes; a zip's CRC-32 check fails with zipfile.BadZipFile at its end."""
        ...


class ZipBag:
    """A zipped bag. Keep it open while verifying; `close` (or `with`) when done."""

    def __init__(self, path: Path) -> None:
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
            raise BundleError(f"{path} is not a zip file: {exc}") from exc
        names = [i.filename for i in self._zip.infolist() if not i.is_dir()]
        self._root = _zip_root(names)
        prefix = f"{self._root}/"
        counts = Counter(names)
        self._stray = tuple(
            sorted(
                {n for n in names if not n.startswith(prefix) or not _is_relative(n[len(prefix) :])}
                | {n for n, seen in counts.items() if seen > 1}
            )
        )
        self._files = {
            i.filename[len(prefix) :]: i.file_size
            for i in self._zip.infolist()
            if not i.is_dir() and i.filename.startswith(prefix) and i.filename not in self._stray
        }

    @property
    def root(self) -> str:
        return self._root

    @property
    def stray(self) -> tuple[str, ...]:
        return self._stray

    def files(self) -> Mapping[str, int]:
        return self._files

    def open(self, path: str) -> IO[bytes]:
        return self._zip.open(f"{self._root}/{path}")

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> ZipBag:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class DirectoryBag:
    """An unzipped bag: the bag directory itself, or a directory holding only that one."""

    def __init__(self, path: Path) -> None:
        if not path.is_dir():
            raise BundleError(f"{path} is not a directory")
        self._path = path
        self._stray: tuple[str, ...] = ()
        if not (path / BAGIT_TXT).is_file():
            entries = sorted(path.iterdir())
            holding = [e for e in entries if e.is_dir() and (e / BAGIT_TXT).is_file()]
            if len(holding) != 1:
                raise BundleError(f"{path} holds no bag ({BAGIT_TXT} not found)")
            self._path = holding[0]
            self._stray = tuple(e.name for e in entries if e != holding[0])
        self._files, links = _walk(self._path)
        self._stray += links

    @property
    def root(self) -> str:
        return self._path.name

    @property
    def stray(self) -> tuple[str, ...]:
        return self._stray

    def files(self) -> Mapping[str, int]:
        return self._files

    def open(self, path: str) -> IO[bytes]:
        if path not in self._files:
            raise FileNotFoundError(path)
        return (self._path / path).open("rb")

    def close(self) -> None:
        """Nothing to release; here so both sources are used alike (`with open_bag(...)`)."""

    def __enter__(self) -> DirectoryBag:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_bag(path: Path) -> ZipBag | DirectoryBag:
    """A zip file or a bag directory; BundleError when it is neither."""
    if path.is_dir():
        return DirectoryBag(path)
    if not path.is_file():
        raise BundleError(f"{path}: no such file or directory")
    return ZipBag(path)


def _zip_root(names: list[str]) -> str:
    """The top-level directory holding bagit.txt; else the most common one."""
    tops = Counter(n.split("/", 1)[0] for n in names if "/" in n)
    for name in names:
        top, _, rest = name.partition("/")
        if rest == BAGIT_TXT:
            return top
    if not tops:
        raise BundleError("the zip holds no directory, so no bag")
    return tops.most_common(1)[0][0]


def _is_relative(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _walk(base: Path) -> tuple[dict[str, int], tuple[str, ...]]:
    """Regular files under `base`, and apart the symbolic links and other non-files: a
    link could point out of the bag, so it is named rather than followed."""
    files: dict[str, int] = {}
    others: list[str] = []
    for folder, dirs, names in os.walk(base):
        for name in [*names, *(d for d in dirs if (Path(folder) / d).is_symlink())]:
            full = Path(folder) / name
            relative = full.relative_to(base).as_posix()
            if full.is_symlink() or not full.is_file():
                others.append(relative)
            else:
                files[relative] = full.stat().st_size
    return dict(sorted(files.items())), tuple(sorted(others))
