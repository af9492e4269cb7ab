"""Reading the custody log for clients: checkpoints, entries, proofs and receipts."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.database import session_scope
from api.logstore import CHECKPOINT, LogStore, checkpoint_key
from api.problems import Problem, not_found, problem_type
from api.tables import LogState
from custody.checkpoint import open_checkpoint
from custody.merkle import consistency_proof, inclusion_proof
from custody.note import Verifier
from custody.receipt import Receipt, format_receipt
from custody.tiles import Bundle, decode_bundle, read_hash_from_tiles


class LogService:
    def __init__(self, *, engine: Engine, log_store: LogStore, verifier: Verifier) -> None:
        self._engine = engine
        self.log_store = log_store
        self.verifier = verifier

    def published_size(self) -> int:
        """The size of the newest checkpoint the database knows to be published."""
        with session_scope(self._engine) as session:
            state = session.get(LogState, 1)
        return state.size if state is not None else 0

    def checkpoint(self, size: int | None = None) -> bytes:
        """The signed checkpoint: the latest, or the archived one for `size`."""
        if size is None:
            data = self.log_store.read_optional(CHECKPOINT)
        else:
            data = self.log_store.read_optional(checkpoint_key(size))
        if data is None:
            raise not_found("checkpoint")
        return data

    def entry(self, index: int) -> bytes:
        """The entry at `index` as published in its bundle (the store, not the database)."""
        size = self.published_size()
        if not 0 <= index < size:
            raise not_found("log entry")
        bundle_index, offset = divmod(index, 256)
        width = min(256, size - bundle_index * 256)
        entries = decode_bundle(self.log_store.read_bundle(Bundle(bundle_index, width)))
        return entries[offset]

    def inclusion(self, index: int, size: int) -> list[bytes]:
        self._check_size(size)
        if not 0 <= index < size:
            raise _bad_range(f"index must be in [0, {size})")
        return inclusion_proof(index, size, read_hash_from_tiles(size, self.log_store.read_tile))

    def consistency(self, old: int, new: int) -> list[bytes]:
        self._check_size(new)
        if not 1 <= old <= new:
            raise _bad_range(
                f"old must be in [1, {new}]: a consistency proof is from a non-empty tree"
            )
        return consistency_proof(old, new, read_hash_from_tiles(new, self.log_store.read_tile))

    def receipt(self, index: int) -> bytes:
        """The tlog-proof receipt of entry `index` against the latest checkpoint."""
        signed = self.checkpoint()
        checkpoint = open_checkpoint(signed, self.verifier)
        if not 0 <= index < checkpoint.size:
            raise not_found("integrated log entry")
        proof = self.inclusion(index, checkpoint.size)
        return format_receipt(Receipt(self.entry(index), index, tuple(proof), signed))

    def archived_sizes(self) -> list[int]:
        return self.log_store.archived_sizes()

    async def wait_integrated(self, index: int, timeout: float) -> bool:
        """Wait until a published checkpoint covers `index`; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if await run_in_threadpool(self.published_size) > index:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)

    def _check_size(self, size: int) -> None:
        published = self.published_size()
        if not 0 < size <= published:
            raise _bad_range(f"size must be in [1, {published}], the published log size")


def _bad_range(detail: str) -> Problem:
    return Problem(400, "Out of range", detail, type_=problem_type("out-of-range"))
