"""The audit part of bench/log.py: a log built as the integrator writes it, and audited.

A checkpoint every N entries, each archived with a built-in TSA's token over it, so the audit
does what `custody audit` does by default: check every entry, tile, checkpoint and token.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from api.logstore import checkpoint_key
from api.timestamper import token_key
from cli.sources import StoreSource
from custody.audit import TimestampPolicy, audit_log
from custody.checkpoint import Checkpoint, sign_checkpoint
from custody.events import Subject, encode_entry, ingested
from custody.note import Verifier, generate_signer
from custody.tiles import Bundle, Tile, bundle_path, integrate, tile_path
from custody.tsp import (
    DEFAULT_POLICY,
    generate_tsa,
    issue_response,
    make_request,
    new_nonce,
    parse_request,
)
from storage.local import LocalObjectStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def entry(i: int) -> bytes:
    subject = Subject(sha256=os.urandom(32).hex(), size=i + 1, media_type="image/jpeg")
    return encode_entry(
        ingested(event_id=f"e_{i}", time=T0, actor="u_bench", case="c_bench", subject=subject)
    )


@dataclass(frozen=True)
class BenchLog:
    store: LocalObjectStore
    verifier: Verifier
    tsa_root: x509.Certificate
    checkpoints: int


def build_log(root: Path, count: int, per_checkpoint: int) -> BenchLog:
    """A log of `count` entries in a local store, written the way the integrator writes it:
    a checkpoint every `per_checkpoint` entries, each archived with a built-in TSA's token."""
    store = LocalObjectStore(root)
    signer = generate_signer("bench.custody")
    now = datetime.now(UTC)
    tsa = generate_tsa("Bench TSA", now=now)
    size, checkpoints = 0, 0

    def read(path: str) -> bytes:
        with store.open("log/" + path) as stream:
            return stream.read()

    while size < count:
        n = min(per_checkpoint, count - size)
        result = integrate(
            old_size=size,
            new_entries=[entry(size + i) for i in range(n)],
            read_tile=lambda t: read(tile_path(t)),
            read_bundle=lambda b: read(bundle_path(b)),
        )
        items: list[tuple[Tile | Bundle, bytes]] = [*result.tiles.items(), *result.bundles.items()]
        for obj, data in items:
            path = tile_path(obj) if isinstance(obj, Tile) else bundle_path(obj)
            _put(store, "log/" + path, data, mutable=not obj.is_full)
        size = result.new_size
        checkpoints += 1
        signed = sign_checkpoint(Checkpoint("bench.custody", size, result.root), signer)
        _put(store, "log/" + checkpoint_key(size), signed, mutable=False)
        request = parse_request(make_request(signed, nonce=new_nonce()))
        reply = issue_response(
            request, tsa=tsa, serial=checkpoints, policy=DEFAULT_POLICY, gen_time=now
        )
        _put(store, "log/" + token_key(size, 0), reply, mutable=False)
        _put(store, "log/checkpoint", signed, mutable=True)
    return BenchLog(store, signer.verifier(), tsa.chain[-1], checkpoints)


def _put(store: LocalObjectStore, key: str, data: bytes, *, mutable: bool) -> None:
    store.put(
        key,
        io.BytesIO(data),
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        mutable=mutable,
    )


def audit_rates(count: int, per_checkpoint: int, tmp: Path) -> dict[str, object]:
    """`custody audit`'s speed over the bench log, as it runs by default (every checkpoint's
    tokens checked) and without timestamps; the difference prices one token's check."""
    log = build_log(tmp / "audit-store", count, per_checkpoint)
    took: dict[bool, float] = {}
    for timestamps in (True, False):
        policy = TimestampPolicy((log.tsa_root,)) if timestamps else None
        start = time.perf_counter()
        report = audit_log(StoreSource(log.store), log.verifier, timestamps=policy)
        took[timestamps] = time.perf_counter() - start
        if not report.ok or report.entries != count or report.timestamps_missing:
            raise RuntimeError(f"audit of the bench log failed: {report.failures[:3]}")
    token_seconds = took[True] - took[False]
    return {
        "audit_entries": count,
        "audit_checkpoints": log.checkpoints,
        "audit_entries_per_s": round(count / took[True], 1),
        "audit_entries_per_s_without_timestamps": round(count / took[False], 1),
        "audit_tokens_per_s": round(log.checkpoints / token_seconds, 1)
        if token_seconds > 0
        else None,
    }
