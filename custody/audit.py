"""The auditor's check of a whole log from its tlog-tiles objects alone (trusting no database).

Everything is recomputed bottom-up from the entry bundles: leaf hashes, every tile of every
level, the root of the signed checkpoint and of every archived checkpoint, and the root at
the size the auditor last saw. Each failure names the object or entry and what was expected
and found; the audit goes on after a failure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from custody.checkpoint import Checkpoint, open_checkpoint
from custody.errors import CustodyError
from custody.events import decode_entry
from custody.merkle import MerkleFrontier, leaf_hash, root_from_leaf_hashes
from custody.note import Verifier
from custody.tiles import Bundle, Tile, bundle_path, decode_bundle, tile_path

WIDTH = 256
READ_CHUNK = 1024 * 1024


class LogSource(Protocol):
    """Read-only access to the log's objects, by path relative to the log prefix."""

    def read(self, path: str) -> bytes | None: ...

    def archived_sizes(self) -> list[int]: ...


OpenOriginal = Callable[[str], BinaryIO | None]  # sha256 hex -> stream, None if absent


@dataclass(frozen=True, slots=True)
class Failure:
    where: str  # object key or "entry N"
    problem: str
    expected: str = ""
    found: str = ""


@dataclass(frozen=True, slots=True)
class SeenCheckpoint:
    """What an auditor remembers between runs: the newest size and root it verified."""

    size: int
    root: bytes


@dataclass
class AuditReport:
    size: int = 0
    root: bytes = b""
    entries: int = 0
    tiles: int = 0
    checkpoints: int = 0
    originals: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, where: str, problem: str, expected: str = "", found: str = "") -> None:
        self.failures.append(Failure(where, problem, expected, found))


def audit_log(
    source: LogSource,
    verifier: Verifier,
    *,
    seen: SeenCheckpoint | None = None,
    open_original: OpenOriginal | None = None,
) -> AuditReport:
    """Audit the log `source` holds against the log key `verifier`."""
    report = AuditReport()
    checkpoint = _open(source, "checkpoint", verifier, report)
    if checkpoint is None:
        return report
    report.size, report.root = checkpoint.size, checkpoint.root
    archived = _archived(source, verifier, report, checkpoint.size)
    wanted = dict(archived)
    if seen is not None:
        if seen.size > checkpoint.size:
            report.fail(
                "checkpoint",
                "rolled back: smaller than a checkpoint seen before",
                f"size >= {seen.size}",
                f"size {checkpoint.size}",
            )
        else:
            wanted.setdefault(seen.size, seen.root)
    roots, subjects = _walk(source, checkpoint.size, report, set(wanted))
    if roots.get(checkpoint.size, checkpoint.root) != checkpoint.root:
        report.fail(
            "checkpoint",
            "root does not match the entries",
            checkpoint.root.hex(),
            roots[checkpoint.size].hex(),
        )
    for size, root in sorted(wanted.items()):
        label = (
            "last seen checkpoint"
            if seen and size == seen.size and size not in archived
            else f"checkpoints/{size}"
        )
        if size in roots and roots[size] != root:
            report.fail(
                label, "inconsistent with the log: its root differs", root.hex(), roots[size].hex()
            )
    if open_original is not None:
        _check_originals(subjects, open_original, report)
    return report


def _open(
    source: LogSource, path: str, verifier: Verifier, report: AuditReport
) -> Checkpoint | None:
    data = source.read(path)
    if data is None:
        report.fail(path, "missing")
        return None
    try:
        return open_checkpoint(data, verifier)
    except CustodyError as exc:
        report.fail(path, f"signature or format invalid: {exc}")
        return None


def _archived(
    source: LogSource, verifier: Verifier, report: AuditReport, size: int
) -> dict[int, bytes]:
    roots: dict[int, bytes] = {}
    for archived in source.archived_sizes():
        report.checkpoints += 1
        checkpoint = _open(source, f"checkpoints/{archived}", verifier, report)
        if checkpoint is None:
            continue
        if checkpoint.size != archived:
            report.fail(
                f"checkpoints/{archived}", "names another size", str(archived), str(checkpoint.size)
            )
        elif archived > size:
            report.fail(
                f"checkpoints/{archived}",
                "is newer than the latest checkpoint",
                f"size <= {size}",
                str(archived),
            )
        else:
            roots[archived] = checkpoint.root
    return roots


def _walk(
    source: LogSource, size: int, report: AuditReport, sizes: set[int]
) -> tuple[dict[int, bytes], dict[str, int]]:
    """Recompute leaves from bundles, check every tile, and note the roots at `sizes`."""
    subjects: dict[str, int] = {}
    tiles = _TileChecker(source, report)
    frontier = MerkleFrontier.empty()
    roots: dict[int, bytes] = {0: frontier.root()} if 0 in sizes else {}
    for start in range(0, size, WIDTH):
        width = min(WIDTH, size - start)
        leaves = _bundle_leaves(source, Bundle(start // WIDTH, width), start, report, subjects)
        report.entries += len(leaves)
        done = 0
        for boundary in sorted(n - start for n in sizes if start < n <= start + width):
            frontier = frontier.append(leaves[done:boundary])
            roots[start + boundary] = frontier.root()
            done = boundary
        frontier = frontier.append(leaves[done:])
        tiles.push(0, leaves)
    roots[size] = frontier.root()
    tiles.finish()
    return roots, subjects


def _bundle_leaves(
    source: LogSource, bundle: Bundle, start: int, report: AuditReport, subjects: dict[str, int]
) -> list[bytes]:
    """The leaf hashes of one bundle's entries; zero hashes where the bundle is unreadable."""
    path = bundle_path(bundle)
    data = source.read(path)
    if data is None:
        report.fail(path, "missing")
        return [bytes(32)] * bundle.width
    try:
        entries = decode_bundle(data)
    except CustodyError as exc:
        report.fail(path, f"not a valid entry bundle: {exc}")
        return [bytes(32)] * bundle.width
    if len(entries) != bundle.width:
        report.fail(path, "wrong number of entries", str(bundle.width), str(len(entries)))
        entries = (entries + [b""] * bundle.width)[: bundle.width]
    for offset, entry in enumerate(entries):
        _note_subject(entry, start + offset, report, subjects)
    return [leaf_hash(entry) for entry in entries]


def _note_subject(entry: bytes, index: int, report: AuditReport, subjects: dict[str, int]) -> None:
    try:
        event = decode_entry(entry)
    except CustodyError as exc:
        report.fail(f"entry {index}", f"not a canonical custody event: {exc}")
        return
    subject = event.get("subject")
    if event.get("type") == "ingested" and isinstance(subject, dict):
        subjects.setdefault(str(subject.get("sha256")), int(subject.get("size", -1)))


class _TileChecker:
    """Builds every tile bottom-up from recomputed hashes and compares it with the stored one."""

    def __init__(self, source: LogSource, report: AuditReport) -> None:
        self._source = source
        self._report = report
        self._rows: list[list[bytes]] = []  # per level: hashes of its unfinished tile
        self._done: list[int] = []  # per level: full tiles checked so far

    def push(self, level: int, hashes: list[bytes]) -> None:
        if len(self._rows) <= level:
            self._rows.append([])
            self._done.append(0)
        row = self._rows[level]
        row.extend(hashes)
        while len(row) >= WIDTH:
            full, row[:] = row[:WIDTH], row[WIDTH:]
            self._compare(Tile(level, self._done[level], WIDTH), full)
            self._done[level] += 1
            self.push(level + 1, [root_from_leaf_hashes(full)])

    def finish(self) -> None:
        """Check the partial tiles of the right edge."""
        for level, row in enumerate(self._rows):
            if row:
                self._compare(Tile(level, self._done[level], len(row)), row)

    def _compare(self, tile: Tile, expected: list[bytes]) -> None:
        path = tile_path(tile)
        self._report.tiles += 1
        data = self._source.read(path)
        if data is None:
            self._report.fail(path, "missing")
            return
        want = b"".join(expected)
        if data != want:
            self._report.fail(
                path,
                "tile differs from the hashes recomputed from the entries",
                _digest(want),
                _digest(data),
            )


def _check_originals(
    subjects: dict[str, int], open_original: OpenOriginal, report: AuditReport
) -> None:
    for sha256, size in sorted(subjects.items()):
        report.originals += 1
        where = f"original {sha256}"
        stream = open_original(sha256)
        if stream is None:
            report.fail(where, "missing from the object store")
            continue
        digest, length = hashlib.sha256(), 0
        with stream:
            while chunk := stream.read(READ_CHUNK):
                digest.update(chunk)
                length += len(chunk)
        if digest.hexdigest() != sha256 or length != size:
            report.fail(
                where,
                "fixity: stored bytes differ",
                f"sha256 {sha256}, {size} bytes",
                f"sha256 {digest.hexdigest()}, {length} bytes",
            )


def _digest(data: bytes) -> str:
    return f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}…"


def iter_failures(report: AuditReport) -> Iterator[str]:
    for f in report.failures:
        detail = f" (expected {f.expected}, found {f.found})" if f.expected or f.found else ""
        yield f"{f.where}: {f.problem}{detail}"
