"""The audit engine over an in-memory log: a clean log passes, every tampering is named."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

import pytest
import rfc8785

from custody.audit import (
    COPY,
    ORIGINAL,
    SEALED_KINDS,
    SIDECAR,
    AuditReport,
    Failure,
    NotVisibleError,
    Rehashed,
    SeenCheckpoint,
    audit_log,
    iter_failures,
)
from custody.checkpoint import Checkpoint, sign_checkpoint
from custody.errors import UnreadableObjectError
from custody.events import Derivation, Subject, derived, encode_entry, ingested
from custody.merkle import empty_root, leaf_hash
from custody.note import Signer, generate_signer
from custody.tiles import (
    Bundle,
    Tile,
    bundle_path,
    decode_bundle,
    encode_bundle,
    integrate,
    tile_path,
)

ORIGIN = "custody.example/audit"
T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
# Batches end at 1 (a one-entry partial tile), 256 (the first full tile), 300 and 600:
# at 600 the log has full tiles tile/0/000 and tile/0/001, the partial tile/0/002.p/88 and
# the partial tile/1/000.p/2, and bundles tile/entries/000, 001 and 002.p/88.
BATCHES = (1, 255, 44, 300)
SIZE = sum(BATCHES)
DUPLICATE_EVERY = 50  # every 50th entry re-ingests the previous entry's bytes (another case)
FULL_TILE, PARTIAL_TILE, LEVEL1_TILE = "tile/0/001", "tile/0/002.p/88", "tile/1/000.p/2"
FULL_BUNDLE, PARTIAL_BUNDLE = "tile/entries/001", "tile/entries/002.p/88"


class MemorySource:
    """A LogSource over a dict of objects keyed by path under the log prefix."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def read(self, path: str) -> bytes | None:
        return self.objects.get(path)

    def archived_sizes(self) -> list[int]:
        return sorted(int(k.split("/")[1]) for k in self.objects if k.startswith("checkpoints/"))


@dataclass
class Log:
    source: MemorySource
    signer: Signer
    originals: dict[str, bytes] = field(default_factory=dict)
    entries: list[bytes] = field(default_factory=list)
    roots: dict[int, bytes] = field(default_factory=dict)
    sidecars: dict[str, bytes] = field(default_factory=dict)
    copies: dict[str, bytes] = field(default_factory=dict)

    def open_sealed(self, kind: str, sha256: str) -> BinaryIO | None:
        sealed = {ORIGINAL: self.originals, SIDECAR: self.sidecars, COPY: self.copies}[kind]
        data = sealed.get(sha256)
        return io.BytesIO(data) if data is not None else None

    def audit(
        self, seen: SeenCheckpoint | None = None, kinds: tuple[str, ...] = SEALED_KINDS
    ) -> AuditReport:
        return audit_log(
            self.source,
            self.signer.verifier(),
            seen=seen,
            open_sealed=self.open_sealed,
            sealed_kinds=kinds,
        )

    def sign(self, size: int, root: bytes, signer: Signer | None = None) -> bytes:
        return sign_checkpoint(Checkpoint(ORIGIN, size, root), signer or self.signer)

    def entry_position(self, index: int) -> tuple[str, int]:
        """The bundle holding entry `index` and the offset of its bytes in that bundle."""
        first = index - index % 256
        width = min(256, SIZE - first)
        path = bundle_path(Bundle(index // 256, width))
        offset = sum(2 + len(e) for e in self.entries[first:index]) + 2
        return path, offset


def file_bytes(index: int, salt: str) -> bytes:
    n = index - 1 if index % DUPLICATE_EVERY == DUPLICATE_EVERY - 1 else index
    return f"{salt} evidence file {n}\n".encode()


def is_copy(index: int) -> bool:
    """Every 20th entry records a sharing copy (never one of the re-ingests)."""
    return index % 20 == 7


def sidecar_bytes(index: int) -> bytes | None:
    """Every 10th ingest has a sealed metadata sidecar."""
    return f'{{"sidecar": {index}}}'.encode() if index % 10 == 3 else None


def make_entry(index: int, data: bytes, sidecar: bytes | None = None) -> bytes:
    subject = Subject(hashlib.sha256(data).hexdigest(), len(data), "text/plain")
    common = {
        "event_id": f"e{index:05d}",
        "time": T0 + timedelta(seconds=index),
        "actor": "u1",
        "case": f"c{index % 2}",
        "subject": subject,
    }
    if is_copy(index):
        made_from = hashlib.sha256(file_bytes(index - 1, "")).hexdigest()
        derivation = Derivation(
            made_from, "share/1", "jpeg/1", ("GPS",), "jpeg-frame-tables-scans", "0" * 64
        )
        return encode_entry(derived(**common, derivation=derivation))  # type: ignore[arg-type]
    sidecar_sha256 = hashlib.sha256(sidecar).hexdigest() if sidecar else None
    return encode_entry(ingested(**common, sidecar=sidecar_sha256))  # type: ignore[arg-type]


def build_log(
    batches: tuple[int, ...] = BATCHES, *, salt: str = "", signer: Signer | None = None
) -> Log:
    """A log built by `integrate` batch by batch, each batch's checkpoint archived."""
    log = Log(MemorySource(), signer or generate_signer(ORIGIN))
    objects = log.source.objects

    def read_tile(tile: Tile) -> bytes:
        return objects[tile_path(tile)]

    def read_bundle(bundle: Bundle) -> bytes:
        return objects[bundle_path(bundle)]

    objects["checkpoints/0"] = objects["checkpoint"] = log.sign(0, empty_root())
    log.roots[0] = empty_root()
    for count in batches:
        new = []
        for index in range(len(log.entries), len(log.entries) + count):
            data = file_bytes(index, salt)
            sidecar = sidecar_bytes(index)
            sealed = log.copies if is_copy(index) else log.originals
            sealed[hashlib.sha256(data).hexdigest()] = data
            if sidecar is not None:
                log.sidecars[hashlib.sha256(sidecar).hexdigest()] = sidecar
            new.append(make_entry(index, data, sidecar))
        result = integrate(
            old_size=len(log.entries), new_entries=new, read_tile=read_tile, read_bundle=read_bundle
        )
        objects.update({tile_path(t): data for t, data in result.tiles.items()})
        objects.update({bundle_path(b): data for b, data in result.bundles.items()})
        signed = log.sign(result.new_size, result.root)
        objects[f"checkpoints/{result.new_size}"] = objects["checkpoint"] = signed
        log.entries += new
        log.roots[result.new_size] = result.root
    return log


@pytest.fixture(scope="module")
def pristine() -> Log:
    return build_log()


@pytest.fixture
def log(pristine: Log) -> Log:
    """A fresh copy of the pristine log for one test to tamper with."""
    copy = Log(MemorySource(), pristine.signer, dict(pristine.originals), list(pristine.entries))
    copy.source.objects = dict(pristine.source.objects)
    copy.roots = dict(pristine.roots)
    copy.sidecars, copy.copies = dict(pristine.sidecars), dict(pristine.copies)
    return copy


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def named(report: AuditReport, where: str) -> list[Failure]:
    found = [f for f in report.failures if f.where == where]
    assert found, f"no failure names {where!r}: {list(iter_failures(report))}"
    return found


def only(report: AuditReport, where: str) -> Failure:
    assert not report.ok
    assert [f.where for f in report.failures] == [where], list(iter_failures(report))
    return report.failures[0]


# --- the clean log -------------------------------------------------------------------------


def test_the_layout_has_full_and_partial_tiles_at_levels_0_and_1(log: Log) -> None:
    for path in ("tile/0/000", FULL_TILE, PARTIAL_TILE, LEVEL1_TILE, FULL_BUNDLE, PARTIAL_BUNDLE):
        assert path in log.source.objects
    assert log.source.archived_sizes() == [0, 1, 256, 300, 600]


def test_a_clean_log_passes_with_exact_counts(log: Log) -> None:
    report = log.audit()
    assert report.ok, list(iter_failures(report))
    assert (report.size, report.root) == (SIZE, log.roots[SIZE])
    assert report.entries == SIZE
    assert report.tiles == 4  # tile/0/000, tile/0/001, tile/0/002.p/88, tile/1/000.p/2
    assert report.checkpoints == 5  # checkpoints/0, 1, 256, 300 and 600
    assert report.originals == len(log.originals) == SIZE - SIZE // DUPLICATE_EVERY - SIZE // 20
    assert report.copies == len(log.copies) == SIZE // 20
    assert report.sidecars == len(log.sidecars) == SIZE // 10
    assert report.unchecked == []


def test_a_clean_log_passes_against_what_the_auditor_saw_before(log: Log) -> None:
    for size in (0, 1, 256, 300, SIZE):
        report = log.audit(SeenCheckpoint(size, log.roots[size]))
        assert report.ok, (size, list(iter_failures(report)))


def test_the_empty_log_passes() -> None:
    report = build_log(()).audit()
    assert report.ok, list(iter_failures(report))
    assert (report.size, report.entries, report.tiles, report.checkpoints) == (0, 0, 0, 1)


class AnnouncingSource(MemorySource):
    """A MemorySource that also takes the audit's read-ahead announcements, and logs reads."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        super().__init__()
        self.objects = objects
        self.announced: list[str] = []
        self.reads: list[str] = []

    def prefetch(self, paths: Iterator[str]) -> None:
        self.announced.extend(paths)

    def read(self, path: str) -> bytes | None:
        self.reads.append(path)
        return super().read(path)


def test_the_audit_announces_what_it_reads_in_the_order_it_reads_it(log: Log) -> None:
    """A remote source fetches announced paths ahead: they must be the ones read, in order."""
    source = AnnouncingSource(log.source.objects)
    report = audit_log(source, log.signer.verifier(), open_sealed=log.open_sealed)
    assert report.ok, list(iter_failures(report))
    checkpoints = [f"checkpoints/{n}" for n in (0, 1, 256, 300, 600)]
    walked = ["tile/entries/000", "tile/0/000", FULL_BUNDLE, FULL_TILE]
    assert source.announced == [*checkpoints, *walked, PARTIAL_BUNDLE, PARTIAL_TILE]
    announced = set(source.announced)
    assert [path for path in source.reads if path in announced] == source.announced
    assert set(source.reads) - announced == {"checkpoint", LEVEL1_TILE}


# --- changed bytes -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["tile/0/000", FULL_TILE, PARTIAL_TILE, LEVEL1_TILE])
def test_a_changed_byte_in_a_tile_is_named(log: Log, path: str) -> None:
    log.source.objects[path] = flip(log.source.objects[path], 40)
    failure = only(log.audit(), path)
    assert "differs" in failure.problem
    assert failure.expected.startswith(f"{len(log.source.objects[path])} bytes, sha256 ")
    assert failure.found != failure.expected


@pytest.mark.parametrize("index", [3, 300, 599])  # full bundles 000 and 001, partial 002.p/88
def test_a_changed_hex_digit_in_a_bundle_names_the_entry(log: Log, index: int) -> None:
    # Still canonical JSON, so only the hashes can tell: the entry's leaf hash is not the
    # one its level-0 tile holds, and the entries no longer hash to the signed root.
    path, offset = log.entry_position(index)
    at = offset + log.entries[index].index(b'"sha256":"') + len(b'"sha256":"')
    data = bytearray(log.source.objects[path])
    data[at] = ord("0") if data[at] != ord("0") else ord("1")
    log.source.objects[path] = bytes(data)
    report = log.audit()
    failure = named(report, f"entry {index}")[0]
    assert path in failure.problem
    tampered = decode_bundle(log.source.objects[path])[index % 256]
    assert failure.expected == leaf_hash(log.entries[index]).hex()
    assert failure.found == leaf_hash(tampered).hex()
    root = named(report, "checkpoint")[0]
    assert root.expected == log.roots[SIZE].hex()
    assert root.found != root.expected


def test_a_changed_byte_that_breaks_an_entry_names_the_entry(log: Log) -> None:
    path, offset = log.entry_position(300)
    data = bytearray(log.source.objects[path])
    assert data[offset : offset + 1] == b"{"
    data[offset] = ord("[")
    log.source.objects[path] = bytes(data)
    report = log.audit()
    assert "not a canonical custody event" in named(report, "entry 300")[0].problem
    named(report, "checkpoint")


@pytest.mark.parametrize(
    "subject",
    [
        {"sha256": "../../../etc/passwd", "size": 1, "media_type": "text/plain"},
        {"sha256": "ab" * 32, "size": "12", "media_type": "text/plain"},
        {"size": 12, "media_type": "text/plain"},
    ],
)
def test_a_rewritten_entry_with_a_malformed_subject_is_named(
    log: Log, subject: dict[str, object]
) -> None:
    event = json.loads(log.entries[5])
    event["subject"] = subject
    entries = decode_bundle(log.source.objects["tile/entries/000"])
    entries[5] = rfc8785.dumps(event)
    log.source.objects["tile/entries/000"] = encode_bundle(entries)
    report = log.audit()
    assert "without its subject's sha256 and size" in named(report, "entry 5")[0].problem
    assert report.originals == len(log.originals) - 1  # entry 5's original is no longer named


def test_a_truncated_bundle_is_named(log: Log) -> None:
    log.source.objects[FULL_BUNDLE] = log.source.objects[FULL_BUNDLE][:-1]
    failure = named(log.audit(), FULL_BUNDLE)[0]
    assert "not a valid entry bundle" in failure.problem


def test_a_changed_byte_in_an_original_fails_fixity(log: Log) -> None:
    sha256 = hashlib.sha256(file_bytes(8, "")).hexdigest()
    log.originals[sha256] = flip(log.originals[sha256], 0)
    failure = only(log.audit(), f"original {sha256}")
    assert "fixity" in failure.problem
    assert sha256 in failure.expected
    assert hashlib.sha256(log.originals[sha256]).hexdigest() in failure.found


def test_a_longer_original_with_the_same_prefix_fails_fixity(log: Log) -> None:
    sha256 = hashlib.sha256(file_bytes(8, "")).hexdigest()
    log.originals[sha256] += b"appended"
    failure = only(log.audit(), f"original {sha256}")
    assert failure.found.endswith(f"{len(log.originals[sha256])} bytes")


def test_sealed_objects_rehashed_in_parallel_give_the_same_report(log: Log) -> None:
    """`each` may re-hash on several threads: the report is the same, failures in order."""
    changed = hashlib.sha256(file_bytes(8, "")).hexdigest()
    log.originals[changed] = flip(log.originals[changed], 0)
    del log.originals[hashlib.sha256(file_bytes(42, "")).hexdigest()]
    threads: set[str] = set()

    def rehash_on_threads(fn: Callable[[str], Rehashed], names: Iterable[str]) -> list[Rehashed]:
        def tracked(name: str) -> Rehashed:
            threads.add(threading.current_thread().name)
            return fn(name)

        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(tracked, names))

    sequential = log.audit()
    parallel = audit_log(
        log.source, log.signer.verifier(), open_sealed=log.open_sealed, each=rehash_on_threads
    )
    assert len(sequential.failures) == 2
    assert parallel == sequential
    assert len(threads) > 1


# --- deleted objects -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/000",
        PARTIAL_TILE,
        LEVEL1_TILE,
        "tile/entries/000",
        PARTIAL_BUNDLE,
        f"checkpoints/{SIZE}",  # the latest checkpoint is always archived before it is published
        "checkpoint",
    ],
)
def test_a_deleted_object_is_named(log: Log, path: str) -> None:
    del log.source.objects[path]
    failure = named(log.audit(), path)[0]
    assert failure.problem.startswith("missing")


def test_a_deleted_tile_is_the_only_failure(log: Log) -> None:
    del log.source.objects[FULL_TILE]
    assert only(log.audit(), FULL_TILE).problem == "missing"


def test_a_deleted_bundle_does_not_blame_its_256_entries(log: Log) -> None:
    del log.source.objects["tile/entries/000"]
    report = log.audit()
    assert not [f for f in report.failures if f.where.startswith("entry ")]


def test_a_deleted_original_is_named(log: Log) -> None:
    sha256 = hashlib.sha256(file_bytes(42, "")).hexdigest()
    del log.originals[sha256]
    assert "missing" in only(log.audit(), f"original {sha256}").problem


def test_the_archive_of_the_checkpoint_last_seen_must_exist(log: Log) -> None:
    del log.source.objects["checkpoints/300"]
    failure = only(log.audit(SeenCheckpoint(300, log.roots[300])), "checkpoints/300")
    assert failure.problem.startswith("missing")


# --- checkpoints ---------------------------------------------------------------------------


def test_a_checkpoint_rolled_back_below_the_last_seen_is_named(log: Log) -> None:
    first = log.audit()
    assert first.ok
    seen = SeenCheckpoint(first.size, first.root)
    log.source.objects["checkpoint"] = log.source.objects["checkpoints/300"]
    report = log.audit(seen)
    rolled = named(report, "checkpoint")[0]
    assert "rolled back" in rolled.problem
    assert (rolled.expected, rolled.found) == (f"size >= {SIZE}", "size 300")
    # The newer archives are still there and say so too.
    assert "newer" in named(report, f"checkpoints/{SIZE}")[0].problem


def test_a_rewritten_log_is_caught_by_the_root_last_seen(pristine: Log) -> None:
    # The key holder rewrites history: other entries, every tile, bundle and archive
    # re-signed. Only the auditor's memory of the root at 300 can tell.
    rewritten = build_log(BATCHES, salt="rewritten", signer=pristine.signer)
    assert rewritten.audit().ok
    for size in (300, SIZE):
        report = rewritten.audit(SeenCheckpoint(size, pristine.roots[size]))
        failure = named(report, "last seen checkpoint")[0]
        assert failure.expected == pristine.roots[size].hex()
        assert failure.found == rewritten.roots[size].hex()


def test_a_checkpoint_signed_by_another_key_is_named(log: Log) -> None:
    impostor = generate_signer(ORIGIN)
    log.source.objects["checkpoint"] = log.sign(SIZE, log.roots[SIZE], impostor)
    failure = only(log.audit(), "checkpoint")
    assert "signature" in failure.problem


def test_an_archived_checkpoint_signed_by_another_key_is_named(log: Log) -> None:
    impostor = generate_signer(ORIGIN)
    log.source.objects["checkpoints/256"] = log.sign(256, log.roots[256], impostor)
    assert "signature" in only(log.audit(), "checkpoints/256").problem


def test_an_archived_checkpoint_from_a_fork_is_named(log: Log, pristine: Log) -> None:
    fork = build_log((300,), salt="fork", signer=log.signer)
    log.source.objects["checkpoints/300"] = log.sign(300, fork.roots[300])
    failure = only(log.audit(), "checkpoints/300")
    assert "inconsistent" in failure.problem
    assert (failure.expected, failure.found) == (fork.roots[300].hex(), pristine.roots[300].hex())


def test_an_archived_checkpoint_at_a_new_size_from_a_fork_is_named(log: Log) -> None:
    fork = build_log((450,), salt="fork", signer=log.signer)
    log.source.objects["checkpoints/450"] = log.sign(450, fork.roots[450])
    assert only(log.audit(), "checkpoints/450").expected == fork.roots[450].hex()


def test_an_archived_checkpoint_larger_than_the_latest_is_named(log: Log) -> None:
    log.source.objects["checkpoints/700"] = log.sign(700, bytes(32))
    failure = only(log.audit(), "checkpoints/700")
    assert "newer than the latest" in failure.problem
    assert (failure.expected, failure.found) == (f"size <= {SIZE}", "700")


class GrowingSource(MemorySource):
    """A live log: `checkpoint` moves on after the audit first reads it."""

    def __init__(self, objects: dict[str, bytes], later: bytes) -> None:
        super().__init__()
        self.objects = objects
        self.later = later
        self.reads_of_checkpoint = 0

    def read(self, path: str) -> bytes | None:
        if path == "checkpoint":
            self.reads_of_checkpoint += 1
            if self.reads_of_checkpoint > 1:
                return self.later
        return super().read(path)


def test_checkpoints_published_while_the_audit_runs_are_no_failure(log: Log) -> None:
    """The integrator archives each checkpoint, then publishes it: on a live log, archives
    newer than the checkpoint the audit started from appear; the log grew, nothing more."""
    grown = log.sign(700, bytes(32))
    log.source.objects["checkpoints/700"] = grown
    source = GrowingSource(log.source.objects, later=grown)
    report = audit_log(source, log.signer.verifier(), open_sealed=log.open_sealed)
    assert report.ok, list(iter_failures(report))
    assert (report.size, report.root) == (SIZE, log.roots[SIZE])
    assert source.reads_of_checkpoint == 2


def test_an_archive_newer_than_a_checkpoint_that_stays_behind_is_a_rollback(log: Log) -> None:
    log.source.objects["checkpoints/700"] = log.sign(700, bytes(32))
    source = GrowingSource(log.source.objects, later=log.source.objects["checkpoint"])
    report = audit_log(source, log.signer.verifier(), open_sealed=log.open_sealed)
    assert "newer than the latest" in only(report, "checkpoints/700").problem


def test_an_archived_checkpoint_under_another_size_is_named(log: Log) -> None:
    log.source.objects["checkpoints/300"] = log.source.objects["checkpoints/256"]
    failure = only(log.audit(), "checkpoints/300")
    assert (failure.expected, failure.found) == ("300", "256")


def test_a_latest_checkpoint_over_other_entries_is_named(log: Log) -> None:
    log.source.objects["checkpoint"] = log.sign(SIZE, bytes(32))
    report = log.audit()
    failure = named(report, "checkpoint")[0]
    assert (failure.expected, failure.found) == (bytes(32).hex(), log.roots[SIZE].hex())


# --- many failures -------------------------------------------------------------------------


def test_the_audit_goes_on_after_the_first_failure(log: Log) -> None:
    sha256 = hashlib.sha256(file_bytes(500, "")).hexdigest()
    log.source.objects["tile/0/000"] = flip(log.source.objects["tile/0/000"], 0)
    log.originals[sha256] = b"replaced"
    report = log.audit()
    assert [f.where for f in report.failures] == ["tile/0/000", f"original {sha256}"]
    assert report.entries == SIZE
    assert report.originals == len(log.originals)
    lines = list(iter_failures(report))
    assert lines[0].startswith("tile/0/000: tile differs")
    assert lines[1].startswith(f"original {sha256}: fixity")


def test_without_originals_fixity_is_not_checked(log: Log) -> None:
    log.originals.clear()
    report = audit_log(log.source, log.signer.verifier())
    assert report.ok
    assert report.originals == 0


# --- sidecars and sharing copies -----------------------------------------------------------


def test_a_changed_sharing_copy_fails_fixity(log: Log) -> None:
    sha256 = hashlib.sha256(file_bytes(27, "")).hexdigest()
    log.copies[sha256] = flip(log.copies[sha256], 3)
    failure = only(log.audit(), f"sharing copy {sha256}")
    assert failure.problem == "fixity: stored bytes differ"
    assert failure.expected == f"sha256 {sha256}, {len(file_bytes(27, ''))} bytes"


def test_a_changed_or_deleted_metadata_sidecar_is_named(log: Log) -> None:
    changed, deleted = (hashlib.sha256(sidecar_bytes(n) or b"").hexdigest() for n in (13, 23))
    log.sidecars[changed] = log.sidecars[changed] + b" "
    del log.sidecars[deleted]
    report = log.audit()
    assert {f.where: f.problem for f in report.failures} == {
        f"metadata sidecar {changed}": "fixity: stored bytes differ",
        f"metadata sidecar {deleted}": "missing from the object store",
    }


def test_a_source_that_cannot_read_sidecars_says_so_instead_of_failing(log: Log) -> None:
    log.sidecars.clear()
    report = log.audit(kinds=(ORIGINAL, COPY))
    assert report.ok, list(iter_failures(report))
    assert (report.sidecars, report.unchecked) == (0, [SIDECAR])


def test_a_malformed_sidecar_hash_in_an_entry_is_named(log: Log) -> None:
    event = json.loads(log.entries[3])
    event["metadata"] = {"sha256": "../../../etc/passwd"}
    entries = decode_bundle(log.source.objects["tile/entries/000"])
    entries[3] = rfc8785.dumps(event)
    log.source.objects["tile/entries/000"] = encode_bundle(entries)
    assert "metadata sha256 is malformed" in named(log.audit(), "entry 3")[0].problem


def test_objects_a_source_will_not_show_are_counted_not_failed(log: Log) -> None:
    hidden = set(list(log.originals)[:3])

    def open_sealed(kind: str, sha256: str) -> BinaryIO | None:
        if kind == ORIGINAL and sha256 in hidden:
            raise NotVisibleError(sha256)
        return log.open_sealed(kind, sha256)

    report = audit_log(log.source, log.signer.verifier(), open_sealed=open_sealed)
    assert report.ok, list(iter_failures(report))
    assert report.not_visible == {ORIGINAL: 3}


# --- objects the store holds but cannot read ------------------------------------------------


class UnreadableSource(MemorySource):
    """A source where some objects, or the listing of archived checkpoints, cannot be read
    (a symbolic link, permissions): it raises UnreadableObjectError for them."""

    def __init__(self, objects: dict[str, bytes], unreadable: set[str]) -> None:
        super().__init__()
        self.objects = objects
        self.unreadable = unreadable

    def read(self, path: str) -> bytes | None:
        if path in self.unreadable:
            raise UnreadableObjectError(path, "a regular file", "a symbolic link")
        return super().read(path)

    def archived_sizes(self) -> list[int]:
        if "checkpoints/" in self.unreadable:
            raise UnreadableObjectError("checkpoints/", "a listing", "permission denied")
        return super().archived_sizes()


class FailingRead(io.RawIOBase):
    """A stream that gives some bytes, then fails as a store's read does."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.calls = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        self.calls += 1
        if self.calls > 1:
            raise UnreadableObjectError(self.key, "the object's bytes", "an I/O error")
        buffer[:4] = b"head"
        return 4


def test_unreadable_objects_are_named_and_the_audit_goes_on(log: Log) -> None:
    # The originals are named in bundle 000; bundle 001's entries are unknown to the audit.
    unreadable = {FULL_TILE, FULL_BUNDLE, "checkpoints/300"}
    source = UnreadableSource(log.source.objects, unreadable)
    symlinked, failing = (hashlib.sha256(file_bytes(n, "")).hexdigest() for n in (42, 43))

    def open_sealed(kind: str, sha256: str) -> BinaryIO | None:
        key = f"originals/sha256/{sha256[:2]}/{sha256}"
        if kind == ORIGINAL and sha256 == symlinked:
            raise UnreadableObjectError(key, "a regular file", "a symbolic link")
        if kind == ORIGINAL and sha256 == failing:
            return io.BufferedReader(FailingRead(key))
        return log.open_sealed(kind, sha256)

    report = audit_log(source, log.signer.verifier(), open_sealed=open_sealed)
    problems = {f.where: f for f in report.failures if "unreadable" in f.problem}
    assert sorted(problems) == sorted(
        [*unreadable, *(f"originals/sha256/{s[:2]}/{s}" for s in (symlinked, failing))]
    )
    tile = problems[FULL_TILE]
    assert (tile.problem, tile.expected, tile.found) == (
        "unreadable in the store",
        "a regular file",
        "a symbolic link",
    )
    assert problems[f"originals/sha256/{failing[:2]}/{failing}"].found == "an I/O error"
    assert not report.ok
    # Everything else was still checked: every entry, tile, archive and sealed object.
    assert report.entries == SIZE
    assert report.tiles == 4
    assert report.checkpoints == 5
    # As many sealed objects as where bundle 001 is missing: its entries are unknown.
    without = MemorySource()
    without.objects = {k: v for k, v in log.source.objects.items() if k != FULL_BUNDLE}
    known = audit_log(without, log.signer.verifier(), open_sealed=log.open_sealed)
    assert known.originals > 0
    assert (report.originals, report.sidecars, report.copies) == (
        known.originals,
        known.sidecars,
        known.copies,
    )
    # An object there but unreadable is not also called missing.
    assert not [f for f in report.failures if f.where in problems and "unreadable" not in f.problem]


def test_a_listing_that_fails_is_named_and_the_latest_archive_still_checked(log: Log) -> None:
    source = UnreadableSource(log.source.objects, {"checkpoints/"})
    report = audit_log(source, log.signer.verifier(), open_sealed=log.open_sealed)
    [failure] = report.failures
    assert (failure.where, failure.problem) == ("checkpoints/", "unreadable in the store")
    assert (failure.expected, failure.found) == ("a listing", "permission denied")
    assert report.checkpoints == 1  # the latest's archive must exist, listed or not
    assert report.entries == SIZE
    assert report.originals == len(log.originals)
