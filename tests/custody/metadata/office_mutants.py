"""Damaged office packages: ZIP header patches and member-level mutants for the fuzz tests."""

from __future__ import annotations

import io
import random
import warnings
import zipfile
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from tests.custody.metadata import office_samples as sample
from tests.custody.metadata.office_checks import members
from tests.custody.metadata.strip_checks import EDITS, apply_edits

GIF = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"
Items = list[tuple[zipfile.ZipInfo, bytes]]


def rezip(data: bytes, change: Callable[[Items], object]) -> bytes:
    """The package with its member list changed by `change`, written again by zipfile."""
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        items = [(info, package.read(info)) for info in package.infolist()]
    change(items)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as package:
        for info, content in items:
            package.writestr(info, content)
    return out.getvalue()


def added(name: str) -> Callable[[Items], object]:
    return lambda items: items.append((zipfile.ZipInfo(name), b"<a/>"))


def bzip2(items: Items) -> None:
    items[2][0].compress_type = zipfile.ZIP_BZIP2


def central(data: bytes | bytearray, name: str) -> int:
    """Where the central directory header of member `name` starts (APPNOTE §4.3.12)."""
    return data.index(name.encode(), data.index(b"PK\x01\x02")) - 46


def encrypted(data: bytes) -> bytes:
    patched = bytearray(data)
    patched[central(data, "word/document.xml") + 8] |= 0x1  # general purpose flag bit 0
    return bytes(patched)


def nul_name(data: bytes) -> bytes:
    return rezip(data, added("word/evilX.xml")).replace(b"evilX", b"evil\x00")


def understated(data: bytes, name: str, size: int) -> bytes:
    """The central directory gives member `name` an uncompressed size of `size` bytes."""
    patched = bytearray(data)
    at = central(data, name) + 24
    patched[at : at + 4] = size.to_bytes(4, "little")
    return bytes(patched)


class Stream(io.RawIOBase):
    """A source or sink that cannot seek: a pipe."""

    def __init__(self, data: bytes = b"") -> None:
        self._source = io.BytesIO(data)
        self.written = bytearray()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._source.readinto(buffer)

    def write(self, data: Any) -> int:
        self.written += data
        return len(data)


NAMES = st.sampled_from(
    [
        "../evil.xml", "/abs.xml", "WORD/DOCUMENT.XML", "word/unknown.xml", "word/media/x.png",
        "Pictures/x.gif", "mimetype", "content.xml", "meta.xml", "customXml/item9.xml",
        "docProps/thumbnail.png", "word/embeddings/oleObject1.bin", "Object 1/content.xml",
        "word/footnotes.xml", "xl/comments2.xml", "word/_rels/footnotes.xml.rels", "dir/",
    ]
)  # fmt: skip
DATA = st.sampled_from(
    [
        b"", b"<a/>", GIF, sample.photo(), bytes(2 << 20),
        b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
        f'<w:footnotes xmlns:w="{sample.W}"><w:ins w:author="{sample.NAME}"/>'
        "</w:footnotes>".encode(),
        b"application/vnd.oasis.opendocument.text",
    ]
)  # fmt: skip
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("rename"), st.integers(0, 40), NAMES),
        st.tuples(st.just("add"), NAMES, DATA),
        st.tuples(st.just("remove"), st.integers(0, 40)),
        st.tuples(st.just("edit"), st.integers(0, 40), EDITS),
        st.tuples(st.just("first"), st.integers(0, 40)),
    ),
    min_size=1,
    max_size=3,
)


def mutate(seed: bytes, ops: list[Any]) -> bytes:
    """Member-level mutants: renamed, added, removed, reordered or edited-inflated members."""
    items = list(members(seed).items())
    for op in ops:
        at = op[1] % len(items) if items and isinstance(op[1], int) else 0
        if op[0] == "add":
            items.append((op[1], op[2]))
        elif not items:
            continue
        elif op[0] == "rename":
            items[at] = (op[2], items[at][1])
        elif op[0] == "remove":
            del items[at]
        elif op[0] == "edit":
            items[at] = (items[at][0], apply_edits(items[at][1], op[2]))
        else:
            items.insert(0, items.pop(at))
    out = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate names made here
        for name, data in items:
            package.writestr(name, data)
    return out.getvalue()


def seeded_ops(rng: random.Random) -> list[Any]:
    """One mild mutation, drawn from `rng`: most such mutants can still be stripped."""
    name = rng.choice(["word/unknown.xml", "word/footnotes.xml", "dir/", "meta.xml"])
    return [
        rng.choice(
            [
                ("first", rng.randrange(40)),
                ("remove", rng.randrange(40)),
                ("add", name, b"<a/>"),
                ("edit", rng.randrange(40), [(0, rng.random(), bytes([rng.randrange(256)]))]),
            ]
        )
    ]
