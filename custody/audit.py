"""The auditor's check of a whole log from its tlog-tiles objects alone (trusting no database).

Everything is recomputed bottom-up from the entry bundles: leaf hashes, every tile of every
level, the root of the signed checkpoint and of every archived checkpoint, and the root at
the size the auditor last saw. Each failure names the object or entry and what was expected
and found; the audit goes on after a failure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from custody.audit_report import (
    SOURCE_GONE,
    UNREADABLE,
    AuditReport,
    Failure,
    SeenCheckpoint,
    iter_failures,
)
from custody.audit_sealed import (
    COPY,
    ORIGINAL,
    READ_CHUNK,
    SEALED_KINDS,
    SIDECAR,
    EachInOrder,
    NotVisibleError,
    OpenSealed,
    Rehashed,
    check_sealed,
    note_sealed,
)
from custody.audit_timestamps import TimestampPolicy, TimestampSource, check_timestamps
from custody.checkpoint import Checkpoint, open_checkpoint
from custody.errors import CustodyError, SourceUnavailableError, UnreadableObjectError
from custody.merkle import HASH_SIZE, MerkleFrontier, leaf_hash, root_from_leaf_hashes
from custody.note import Verifier
from custody.tiles import Bundle, Tile, bundle_path, decode_bundle, tile_path

__all__ = [
    "COPY",
    "ORIGINAL",
    "READ_CHUNK",
    "SEALED_KINDS",
    "SIDECAR",
    "SOURCE_GONE",
    "UNREADABLE",
    "WIDTH",
    "AuditReport",
    "EachInOrder",
    "Failure",
    "LogSource",
    "NotVisibleError",
    "OpenSealed",
    "Rehashed",
    "SeenCheckpoint",
    "TimestampPolicy",
    "TimestampSource",
    "audit_log",
    "iter_failures",
]

WIDTH = 256


class LogSource(Protocol):
    """Read-only access to the log's objects, by path relative to the log prefix. `read` gives
    None for an object that is not there, and raises UnreadableObjectError for one the store
    holds but cannot read (as `archived_sizes` does for a listing that fails).

    A source may also have `prefetch(paths: Iterator[str])` and, with timestamps,
    `prefetch_timestamps(sizes: Iterator[int])`: the audit then announces what it will ask
    next, in order, so a remote source can fetch it ahead, several at a time (see
    cli.read_ahead.ReadAhead). The answers stay the same either way.
    """

    def read(self, path: str) -> bytes | None: ...

    def archived_sizes(self) -> list[int]: ...


def audit_log(
    source: LogSource,
    verifier: Verifier,
    *,
    seen: SeenCheckpoint | None = None,
    open_sealed: OpenSealed | None = None,
    sealed_kinds: Collection[str] = SEALED_KINDS,
    each: EachInOrder = map,
    timestamps: TimestampPolicy | None = None,
) -> AuditReport:
    """Audit the log `source` holds against the log key `verifier`; with `timestamps`, also
    every RFC 3161 token over every archived checkpoint (`source` is then a TimestampSource);
    with `open_sealed`, the fixity of every object of `sealed_kinds` the entries name, each
    re-hashed through `each` (`map`, or a parallel map that keeps the order).

    A source that stops answering altogether (SourceUnavailableError) ends the audit with
    that one failure, the report holding what was checked until then.
    """
    report = AuditReport()
    try:
        _audit(source, verifier, report, seen, open_sealed, sealed_kinds, each, timestamps)
    except SourceUnavailableError as exc:
        report.fail(exc.key, SOURCE_GONE, "answers to the rest of the audit", exc.reason)
    return report


def _audit(
    source: LogSource,
    verifier: Verifier,
    report: AuditReport,
    seen: SeenCheckpoint | None,
    open_sealed: OpenSealed | None,
    sealed_kinds: Collection[str],
    each: EachInOrder,
    timestamps: TimestampPolicy | None,
) -> None:
    checkpoint = _open(source, "checkpoint", verifier, report)
    if checkpoint is None:
        return
    report.size, report.root = checkpoint.size, checkpoint.root
    if seen is not None and seen.size > checkpoint.size:
        report.fail(
            "checkpoint",
            "rolled back: smaller than a checkpoint seen before",
            f"size >= {seen.size}",
            f"size {checkpoint.size}",
        )
    # The integrator archives every checkpoint before publishing it, so the latest and the
    # one last seen must have archives even where the source cannot list them (HTTP).
    required = {checkpoint.size} | ({seen.size} if seen and seen.size <= checkpoint.size else set())
    archived = _archived(source, verifier, report, checkpoint.size, required)
    walk = _walk(source, checkpoint.size, report, set(archived) | required)
    _compare_roots(walk, checkpoint, archived, seen, report)
    if timestamps is not None:
        sizes = sorted(archived)
        _announce(source, (f"checkpoints/{size}" for size in sizes))
        _announce(source, iter(sizes), hint="prefetch_timestamps")
        check_timestamps(source, sizes, timestamps, report)
    if open_sealed is not None:
        for kind in SEALED_KINDS:
            if kind in sealed_kinds:
                check_sealed(kind, walk.sealed[kind], open_sealed, report, each)
            elif walk.sealed[kind]:
                report.unchecked.append(kind)


def _compare_roots(
    walk: _Walk,
    checkpoint: Checkpoint,
    archived: dict[int, bytes],
    seen: SeenCheckpoint | None,
    report: AuditReport,
) -> None:
    """Compare the roots recomputed from the entries with every root signed or seen."""
    if walk.roots[checkpoint.size] != checkpoint.root:
        report.fail(
            "checkpoint",
            "root does not match the entries",
            checkpoint.root.hex(),
            walk.roots[checkpoint.size].hex(),
        )
        _name_changed_entries(walk, report)
    for size, root in sorted(archived.items()):
        if walk.roots[size] != root:
            report.fail(
                f"checkpoints/{size}",
                "inconsistent with the log: its root differs",
                root.hex(),
                walk.roots[size].hex(),
            )
    if seen is not None and walk.roots.get(seen.size, seen.root) != seen.root:
        # Caught only here when the key holder re-signed a rewritten history, archives too.
        report.fail(
            "last seen checkpoint",
            f"the log was rewritten: its root at size {seen.size} is not the one seen before",
            seen.root.hex(),
            walk.roots[seen.size].hex(),
        )


def _open(
    source: LogSource, path: str, verifier: Verifier, report: AuditReport
) -> Checkpoint | None:
    data = _read(source, path, report)
    if data is None:
        return None
    try:
        return open_checkpoint(data, verifier)
    except CustodyError as exc:
        report.fail(path, f"signature or format invalid: {exc}")
        return None


def _read(source: LogSource, path: str, report: AuditReport) -> bytes | None:
    """The object's bytes; None, the failure reported, where it is missing or unreadable."""
    try:
        data = source.read(path)
    except UnreadableObjectError as exc:
        report.unreadable(exc)
        return None
    if data is None:
        report.fail(path, "missing")
    return data


def _archived(
    source: LogSource, verifier: Verifier, report: AuditReport, size: int, required: set[int]
) -> dict[int, bytes]:
    roots: dict[int, bytes] = {}
    try:
        listed = source.archived_sizes()
    except UnreadableObjectError as exc:  # the archives that must exist are still checked
        report.unreadable(exc)
        listed = []
    sizes = sorted(set(listed) | required)
    published = _published_since(source, verifier, size, sizes)
    _announce(source, (f"checkpoints/{archived}" for archived in sizes))
    for archived in sizes:
        report.checkpoints += 1
        checkpoint = _open(source, f"checkpoints/{archived}", verifier, report)
        if checkpoint is None:
            continue
        if checkpoint.size != archived:
            report.fail(
                f"checkpoints/{archived}", "names another size", str(archived), str(checkpoint.size)
            )
        elif archived > published:
            report.fail(
                f"checkpoints/{archived}",
                "is newer than the latest checkpoint",
                f"size <= {published}",
                str(archived),
            )
        elif archived <= size:
            roots[archived] = checkpoint.root
        # else: published while this audit ran, signed and of its size; the next audit
        # walks that far and checks it against the entries.
    return roots


def _published_since(source: LogSource, verifier: Verifier, size: int, sizes: list[int]) -> int:
    """The latest checkpoint's size now, if archives newer than `size` (the one audited) exist.

    The integrator archives a checkpoint just before it publishes it, so on a live log newer
    archives appear while an audit runs. Only while the published checkpoint stays older than
    an archive is that archive a sign of a rollback.
    """
    if not sizes or sizes[-1] <= size:
        return size
    # Unreadable now, the newer archives are failures as before; the first read's problems
    # are in the report already.
    latest = _open(source, "checkpoint", verifier, AuditReport())
    return size if latest is None else max(size, latest.size)


@dataclass
class _Walk:
    roots: dict[int, bytes] = field(default_factory=dict)  # recomputed, at the sizes asked
    # kind -> sha256 -> size (None where the entry gives none: a sidecar)
    sealed: dict[str, dict[str, int | None]] = field(
        default_factory=lambda: {kind: {} for kind in SEALED_KINDS}
    )
    unread: set[int] = field(default_factory=set)  # bundles whose entries are unknown
    leaves: list[_LeafMismatch] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _LeafMismatch:
    """A level-0 tile whose stored hash at `index` is not the hash of the entry there."""

    index: int
    tile: Tile  # at level 0, the tile of a bundle has the bundle's index and width
    stored: bytes
    recomputed: bytes


def _walk(source: LogSource, size: int, report: AuditReport, sizes: set[int]) -> _Walk:
    """Recompute leaves from bundles, check every tile, and note the roots at `sizes`."""
    walk = _Walk()
    _announce(source, _walk_reads(size))
    tiles = _TileChecker(source, report, walk.leaves)
    frontier = MerkleFrontier.empty()
    walk.roots[0] = frontier.root()
    for start in range(0, size, WIDTH):
        bundle = Bundle(start // WIDTH, min(WIDTH, size - start))
        leaves = _bundle_leaves(source, bundle, start, report, walk.sealed)
        if leaves is None:
            walk.unread.add(bundle.index)
            leaves = [bytes(32)] * bundle.width
        report.entries += len(leaves)
        done = 0
        for boundary in sorted(n - start for n in sizes if start < n <= start + bundle.width):
            frontier = frontier.append(leaves[done:boundary])
            walk.roots[start + boundary] = frontier.root()
            done = boundary
        frontier = frontier.append(leaves[done:])
        tiles.push(0, leaves)
    walk.roots[size] = frontier.root()
    tiles.finish()
    return walk


def _walk_reads(size: int) -> Iterator[str]:
    """What `_walk` reads, in order: each bundle, then its level-0 tile. (The tiles above,
    one per 256 below, are left to be read when needed.)"""
    for start in range(0, size, WIDTH):
        index, width = start // WIDTH, min(WIDTH, size - start)
        yield bundle_path(Bundle(index, width))
        yield tile_path(Tile(0, index, width))


def _announce(source: LogSource, keys: Iterator[object], *, hint: str = "prefetch") -> None:
    """Tell a source that reads ahead what comes next: paths (`prefetch`) or checkpoint
    sizes whose timestamps are asked (`prefetch_timestamps`); see LogSource."""
    prefetch = getattr(source, hint, None)
    if prefetch is not None:
        prefetch(keys)


def _bundle_leaves(
    source: LogSource,
    bundle: Bundle,
    start: int,
    report: AuditReport,
    sealed: dict[str, dict[str, int | None]],
) -> list[bytes] | None:
    """The leaf hashes of one bundle's entries; None where the bundle is unreadable."""
    path = bundle_path(bundle)
    data = _read(source, path, report)
    if data is None:
        return None
    try:
        entries = decode_bundle(data)
    except CustodyError as exc:
        report.fail(path, f"not a valid entry bundle: {exc}")
        return None
    if len(entries) != bundle.width:
        report.fail(path, "wrong number of entries", str(bundle.width), str(len(entries)))
        entries = (entries + [b""] * bundle.width)[: bundle.width]
    for offset, entry in enumerate(entries):
        note_sealed(entry, start + offset, report, sealed)
    return [leaf_hash(entry) for entry in entries]


def _name_changed_entries(walk: _Walk, report: AuditReport) -> None:
    """Name the entries whose leaf hash differs from their level-0 tile's.

    Called only when the entries do not hash to the signed root: then the signature says the
    entries, not the tiles, were changed (had the root matched, the tiles would be wrong).
    """
    named = {f.where for f in report.failures}
    for leaf in walk.leaves:
        where = f"entry {leaf.index}"
        if leaf.tile.index in walk.unread or where in named:
            continue
        bundle = bundle_path(Bundle(leaf.tile.index, leaf.tile.width))
        report.fail(
            where,
            f"changed in {bundle}: its leaf hash is not the one {tile_path(leaf.tile)} holds, "
            "and the entries do not hash to the signed root",
            leaf.stored.hex(),
            leaf.recomputed.hex(),
        )


class _TileChecker:
    """Builds every tile bottom-up from recomputed hashes and compares it with the stored one."""

    def __init__(self, source: LogSource, report: AuditReport, leaves: list[_LeafMismatch]) -> None:
        self._source = source
        self._report = report
        self._leaves = leaves  # where a level-0 tile and the entries disagree
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
        data = _read(self._source, path, self._report)
        if data is None:
            return
        want = b"".join(expected)
        if data == want:
            return
        if tile.level == 0 and len(data) == len(want):
            self._note_leaves(tile, data, expected)
        self._report.fail(
            path,
            "tile differs from the hashes recomputed from the entries",
            _digest(want),
            _digest(data),
        )

    def _note_leaves(self, tile: Tile, data: bytes, expected: list[bytes]) -> None:
        for offset, recomputed in enumerate(expected):
            stored = data[offset * HASH_SIZE : (offset + 1) * HASH_SIZE]
            if stored != recomputed:
                index = tile.index * WIDTH + offset
                self._leaves.append(_LeafMismatch(index, tile, stored, recomputed))


def _digest(data: bytes) -> str:
    return f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}…"
