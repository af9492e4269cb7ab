"""Building one exhibit bundle: stream the exhibits in, log the export, prove it, seal the bag.

The order matters. The payload goes first, so its manifest's hash exists; the `exported`
entries carry that hash, binding the log to this bag's exact files; then the bag waits for a
checkpoint covering those entries, and every custody entry of every exhibit is proven
against that one checkpoint. The bag is written to a temporary file, hashed, sealed
create-only in the object store, and only then marked ready.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from sqlmodel import Session, col, or_, select

from api.appender import Appender
from api.database import read_scope
from api.exports import READY, ExportRequest, ExportService, Item, bag_root, export_key
from api.ids import new_id
from api.logservice import LogService
from api.sequencer import append_event
from api.tables import LogEvent, SharingCopy
from custody.bundle import organisation
from custody.bundle.assemble import LogMaterial, TokenFile, write_tags
from custody.bundle.layout import BUNDLE_JSON
from custody.bundle.model import (
    ORIGINAL,
    BundleInfo,
    Collection,
    Contents,
    CopyOrigin,
    ExhibitRecord,
)
from custody.bundle.writer import BagWriter
from custody.errors import BundleError
from custody.events import Export, decode_entry, exported, format_time
from custody.note import format_vkey
from custody.purpose import commit_purpose
from custody.receipt import parse_receipt
from storage import ObjectStore

POLL = 0.05  # seconds between looks at the published log size
HEARTBEAT = 5.0  # seconds between a building export's signs of life
COPY_CHUNK = 1024 * 1024


class ExportInterruptedError(Exception):
    """The service is shutting down; the export must be requested again."""


@dataclass(frozen=True, slots=True)
class BundlerConfig:
    organisation: str
    log_origin: str
    log_wait: float  # seconds to wait for a checkpoint over the exported entries
    timestamp_wait: float  # then for the TSAs' tokens over it
    retention: timedelta
    staging: Path
    font_dir: Path | None


class Bundler:
    def __init__(
        self,
        *,
        engine: Engine,
        store: ObjectStore,
        log: LogService,
        appender: Appender,
        exports: ExportService,
        key: Ed25519PrivateKey,
        clock: Callable[[], datetime],
        config: BundlerConfig,
    ) -> None:
        self._engine = engine
        self._store = store
        self._log = log
        self._appender = appender
        self._exports = exports
        self._key = key
        self._clock = clock
        self._config = config

    def build(self, request: ExportRequest) -> None:
        """Build the bag; also where an interrupted build resumes (see `_logged_export` and
        `_already_sealed`)."""
        self._config.staging.mkdir(parents=True, exist_ok=True)
        if self._already_sealed(request):
            return
        with tempfile.TemporaryFile(dir=self._config.staging, prefix="export-") as sink:
            writer = BagWriter(sink, bag_root(request.export_id), time=request.created_at)
            try:
                sha512s = self._payload(writer, request)
                manifest = writer.payload_manifests()
                manifest_sha256 = hashlib.sha256(manifest).hexdigest()
                self._exports.update(
                    request.export_id, manifest_sha256=manifest_sha256, now=self._clock()
                )
                last = self._logged_export(request, manifest_sha256)
                if last is None:
                    last = self._log_export(request, manifest_sha256)
                size = self._wait_for_checkpoint(request.export_id, last + 1)
                contents, material = self._gather(request, size, manifest_sha256, sha512s)
                write_tags(
                    writer,
                    contents,
                    material,
                    organisation_pem=organisation.public_pem(self._key),
                    font_dir=self._config.font_dir,
                )
            except BaseException:
                writer.abort()
                raise
            writer.finish(lambda data: organisation.sign(self._key, data))
            self._seal(request, sink, size)

    def _payload(self, writer: BagWriter, request: ExportRequest) -> dict[int, str]:
        """Copy every exhibit in, checking each against its content address."""
        sha512s, beat = {}, time.monotonic()
        for item in request.items:
            self._check_running()
            with self._store.open(item.storage_key) as source:
                digests = writer.add_payload(item.path, source, size=item.size)
            if digests["sha256"] != item.sha256:
                raise BundleError(
                    f"the store returned bytes with SHA-256 {digests['sha256']} for exhibit "
                    f"{item.number} ({item.sha256}): run `custody audit` on this deployment"
                )
            sha512s[item.number] = digests["sha512"]
            beat = self._heartbeat(request.export_id, beat)
        return sha512s

    def _log_export(self, request: ExportRequest, manifest_sha256: str) -> int:
        """Append one `exported` entry per exhibit, in one transaction; the last index."""
        now = self._clock()
        purpose = commit_purpose(request.purpose, bytes.fromhex(request.purpose_key))
        events = [
            exported(
                event_id=new_id("e"),
                time=now,
                actor=request.actor,
                case=request.case_id,
                subject=item.subject(),
                export=Export(
                    request.export_id, item.number, len(request.items), manifest_sha256, purpose
                ),
            )
            for item in request.items
        ]

        def run(session: Session) -> int:
            return max(append_event(session, event, now=now) for event in events)

        return self._appender.submit(run)

    def _logged_export(self, request: ExportRequest, manifest_sha256: str) -> int | None:
        """The last index of this export's `exported` entries if an interrupted build of it
        appended them already (all or none: one transaction), else None. They must name
        the manifest the payload has now: the exhibits are content-addressed, so it cannot
        differ unless the store changed."""
        hashes = [item.sha256 for item in request.items]
        with read_scope(self._engine) as session:
            rows = session.exec(
                select(LogEvent.index, LogEvent.entry).where(
                    LogEvent.case_id == request.case_id,
                    LogEvent.type == "exported",
                    col(LogEvent.subject_sha256).in_(hashes),
                )
            ).all()
        exports = {index: decode_entry(entry)["export"] for index, entry in rows}
        logged = {i: export for i, export in exports.items() if export["id"] == request.export_id}
        if not logged:
            return None
        manifests = {export["manifest_sha256"] for export in logged.values()}
        if manifests != {manifest_sha256}:
            raise BundleError(
                f"export {request.export_id} was logged with payload manifest "
                f"{', '.join(sorted(manifests))}, but its exhibits now give {manifest_sha256}: "
                "run `custody audit` on this deployment"
            )
        return max(logged)

    def _already_sealed(self, request: ExportRequest) -> bool:
        """Mark ready a bag an interrupted build sealed but did not record (the put is
        atomic, so a sealed bag is a whole one); False if there is none."""
        key = export_key(request.export_id)
        if self._store.stat(key) is None:
            return False
        digest, length = hashlib.sha256(), 0
        with (
            tempfile.TemporaryFile(dir=self._config.staging, prefix="export-") as copy,
            self._store.open(key) as source,
        ):
            while chunk := source.read(COPY_CHUNK):
                digest.update(chunk)
                length += len(chunk)
                copy.write(chunk)
            copy.seek(0)
            with zipfile.ZipFile(copy) as bag:
                name = f"{bag_root(request.export_id)}/{BUNDLE_JSON}"
                info = BundleInfo.from_json(json.loads(bag.read(name)))
        self._ready(
            request.export_id,
            digest.hexdigest(),
            length,
            info.checkpoint,
            self._clock(),
            manifest_sha256=info.manifest_sha256,
        )
        return True

    def _wait_for_checkpoint(self, export_id: str, size: int) -> int:
        """The published size once it covers `size` entries, then (bounded) its tokens."""
        deadline = time.monotonic() + self._config.log_wait
        beat = time.monotonic()
        while (published := self._log.published_size()) < size:
            self._check_running()
            if time.monotonic() > deadline:
                raise BundleError(
                    f"no checkpoint covered the export's entries within {self._config.log_wait:g}"
                    " s; is the integrator running? Export again later."
                )
            time.sleep(POLL)
            beat = self._heartbeat(export_id, beat)
        deadline = time.monotonic() + self._config.timestamp_wait
        while self._log.settled_through() < published and time.monotonic() < deadline:
            self._check_running()
            time.sleep(POLL)
            beat = self._heartbeat(export_id, beat)
        return published

    def _heartbeat(self, export_id: str, last: float) -> float:
        """Show the build is alive every HEARTBEAT seconds: silence means interrupted."""
        if time.monotonic() - last <= HEARTBEAT:
            return last
        self._exports.update(export_id, now=self._clock())
        return time.monotonic()

    def _gather(
        self, request: ExportRequest, size: int, manifest_sha256: str, sha512s: dict[int, str]
    ) -> tuple[Contents, LogMaterial]:
        archived = self._log.archived_sizes()
        histories = self._histories(request, size)
        _, receipts = self._log.receipts(
            sorted({i for indices, _ in histories.values() for i in indices}), size
        )
        entries = {
            index: decode_entry(parse_receipt(text).entry) for index, text in receipts.items()
        }
        records = []
        for item in request.items:
            history = histories[item.number]
            checkpoint = archived[bisect.bisect_right(archived, history[1])]
            proof = tuple(self._log.consistency(checkpoint, size)) if checkpoint < size else ()
            records.append(_record(item, sha512s[item.number], history, entries, checkpoint, proof))
        sizes = {size, *(record.collected.checkpoint for record in records)}
        tokens, trusted, pending = self._timestamps(sizes)
        info = BundleInfo(
            export_id=request.export_id,
            case_id=request.case_id,
            case_title=request.case_title,
            organisation=self._config.organisation,
            purpose=request.purpose,
            purpose_key=request.purpose_key,
            created=format_time(request.created_at),
            log_origin=self._config.log_origin,
            checkpoint=size,
            manifest_sha256=manifest_sha256,
            exhibits=len(records),
            timestamps_pending=pending,
        )
        contents = Contents(
            root=bag_root(request.export_id),
            info=info,
            exhibits=tuple(records),
            entries=entries,
            trusted_times=trusted,
            tokens={s: tuple(t.slot for t in tokens if t.size == s) for s in sizes},
            vkey=format_vkey(self._log.verifier),
        )
        checkpoints = {s: self._log.checkpoint(s) for s in sizes}
        return contents, LogMaterial(checkpoints, receipts, tokens)

    def _histories(self, request: ExportRequest, size: int) -> dict[int, tuple[list[int], int]]:
        """Per exhibit: the indices of every entry about it in this case (below `size`), and
        the index of the `ingested` entry that collected it (a copy: its original)."""
        out = {}
        with read_scope(self._engine) as session:
            for item in request.items:
                if item.collected is None:
                    raise BundleError(f"exhibit {item.number} has no ingest in this case")
                indices = _entries_about(session, item, request.case_id, size)
                out[item.number] = (sorted({*indices, item.collected}), item.collected)
        return out

    def _timestamps(
        self, sizes: Iterable[int]
    ) -> tuple[list[TokenFile], dict[int, datetime | None], dict[int, tuple[str, ...]]]:
        tokens, trusted, pending = [], {}, {}
        for size in sorted(sizes):
            stamps = self._log.timestamps(size)
            for token in stamps.stored:
                tokens.append(TokenFile(size, token.slot, token.reply, token.chain_pem))
            times = [token.gen_time for token in stamps.stored]
            trusted[size] = min(times) if times else None
            if stamps.pending:
                pending[size] = stamps.pending
        return tokens, trusted, pending

    def _seal(self, request: ExportRequest, sink: BinaryIO, size: int) -> None:
        sink.seek(0)
        digest, length = hashlib.sha256(), 0
        while chunk := sink.read(COPY_CHUNK):
            digest.update(chunk)
            length += len(chunk)
        sink.seek(0)
        key, now = export_key(request.export_id), self._clock()
        self._store.put(
            key,
            sink,
            sha256=digest.hexdigest(),
            size=length,
            retain_until=now + self._config.retention,
        )
        self._ready(request.export_id, digest.hexdigest(), length, size, now)

    def _ready(
        self,
        export_id: str,
        bag_sha256: str,
        bag_size: int,
        checkpoint: int,
        now: datetime,
        **also: object,
    ) -> None:
        """Record the sealed bag: the export is ready to download."""
        self._exports.update(
            export_id,
            status=READY,
            bag_sha256=bag_sha256,
            bag_size=bag_size,
            storage_key=export_key(export_id),
            checkpoint_size=checkpoint,
            now=now,
            **also,
        )

    def _check_running(self) -> None:
        if self._exports.stopping.is_set():
            raise ExportInterruptedError("the service shut down during the export; export again")


def _entries_about(session: Session, item: Item, case_id: str, size: int) -> list[int]:
    """Entries whose subject is the item, and for an original the `derived` entries of its
    copies (which name it as their original)."""
    subjects = [item.sha256]
    copies: list[int] = []
    if item.kind == ORIGINAL:
        copies = list(
            session.exec(
                select(SharingCopy.event_index).where(
                    SharingCopy.original_sha256 == item.sha256, SharingCopy.case_id == case_id
                )
            ).all()
        )
    rows = session.exec(
        select(LogEvent.index).where(
            LogEvent.case_id == case_id,
            col(LogEvent.index) < size,
            or_(col(LogEvent.subject_sha256).in_(subjects), col(LogEvent.index).in_(copies)),
        )
    ).all()
    return list(rows)


def _record(
    item: Item,
    sha512: str,
    history: tuple[list[int], int],
    entries: dict[int, dict[str, Any]],
    checkpoint: int,
    proof: tuple[bytes, ...],
) -> ExhibitRecord:
    indices, collected = history
    copy_of = None
    if item.kind != ORIGINAL:
        derived = next(
            entries[i]["derived_from"]
            for i in indices
            if entries[i]["type"] == "derived" and entries[i]["subject"]["sha256"] == item.sha256
        )
        copy_of = CopyOrigin(
            original_sha256=derived["original"],
            profile=derived["profile"],
            tool=derived["tool"],
            removed=tuple(derived["removed"]),
            content_kind=derived["content"]["kind"],
            content_sha256=derived["content"]["sha256"],
        )
    return ExhibitRecord(
        number=item.number,
        path=item.path,
        filename=item.filename,
        kind=item.kind,
        sha256=item.sha256,
        sha512=sha512,
        size=item.size,
        media_type=item.media_type,
        entries=tuple(indices),
        collected=Collection(collected, checkpoint, proof),
        copy_of=copy_of,
    )
