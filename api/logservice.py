"""Reading the custody log for clients: checkpoints, entries, proofs and receipts."""

from __future__ import annotations

import asyncio
import bisect
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, Table, bindparam, func
from sqlalchemy import select as sql_select
from sqlmodel import col, select
from starlette.concurrency import run_in_threadpool

from api.database import read_connection, read_once, read_scope
from api.logstore import CHECKPOINT, LogStore, checkpoint_key
from api.problems import Problem, not_found, problem_type
from api.tables import CheckpointTimestamp, LogEvent, LogState
from api.timestamper import PENDING, STORED, token_key
from custody.checkpoint import Checkpoint, open_checkpoint
from custody.errors import CustodyError
from custody.merkle import HashReader, consistency_proof, inclusion_proof
from custody.note import Verifier
from custody.receipt import Receipt, format_receipt
from custody.tiles import Bundle, decode_bundle, read_hash_from_tiles
from custody.tsp import parse_response

log = logging.getLogger("custody.log")
CACHED_SUBTREES = 65_536  # (level, index) -> hash: 32 bytes each, a few MiB at most
CACHED_BUNDLES = 64  # decoded entry bundles (up to 256 entries each)
CACHED_TOKENS = 256  # parsed timestamp tokens, a few KiB each
TRUSTED_TIME_SPAN = 4096  # indices this close share one trusted-time query


@dataclass(frozen=True, slots=True)
class StoredToken:
    tsa: str
    token: bytes  # DER TimeStampToken (a CMS ContentInfo)
    chain_pem: str
    gen_time: datetime
    key: str  # the stored TimeStampResp, relative to the log prefix
    slot: int  # the TSA's position in the configuration
    reply: bytes  # the stored TimeStampResp (DER), which holds `token`


@dataclass(frozen=True, slots=True)
class Timestamps:
    size: int
    stored: tuple[StoredToken, ...]
    pending: tuple[str, ...]


class LogService:
    def __init__(self, *, engine: Engine, log_store: LogStore, verifier: Verifier) -> None:
        self._engine = engine
        self.log_store = log_store
        self.verifier = verifier
        self._checkpoint_cache: tuple[bytes, Checkpoint] | None = None
        # A complete subtree's hash never changes as the log grows, nor does a bundle of a
        # given width: receipts for one checkpoint share most of their work through these.
        self._subtrees: dict[tuple[int, int], bytes] = {}
        self._bundles: OrderedDict[Bundle, list[bytes]] = OrderedDict()
        self._tokens: OrderedDict[tuple[int, str, int], StoredToken] = OrderedDict()
        self._lock = threading.Lock()

    def published_size(self) -> int:
        """The size of the newest checkpoint the database knows to be published."""
        with read_scope(self._engine) as session:
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
        return self._entry(index, size)

    def _entry(self, index: int, size: int) -> bytes:
        bundle_index, offset = divmod(index, 256)
        bundle = Bundle(bundle_index, min(256, size - bundle_index * 256))
        entries = self._bundles.get(bundle)
        if entries is None:
            entries = decode_bundle(self.log_store.read_bundle(bundle))
            self._bundles[bundle] = entries
            while len(self._bundles) > CACHED_BUNDLES:
                self._bundles.popitem(last=False)
        return entries[offset]

    def _hashes(self, size: int) -> HashReader:
        """The tree of `size`'s complete subtrees from its tiles, remembered across calls."""
        tiles = read_hash_from_tiles(size, self.log_store.read_tile)
        memo = self._subtrees

        def read(level: int, index: int) -> bytes:
            cached = memo.get((level, index))
            if cached is not None and (index + 1) << level <= size:
                return cached
            value = tiles(level, index)
            if len(memo) >= CACHED_SUBTREES:
                memo.clear()
            memo[level, index] = value
            return value

        return read

    def inclusion(self, index: int, size: int) -> list[bytes]:
        self._check_size(size)
        if not 0 <= index < size:
            raise _bad_range(f"index must be in [0, {size})")
        return inclusion_proof(index, size, self._hashes(size))

    def consistency(self, old: int, new: int) -> list[bytes]:
        self._check_size(new)
        if not 1 <= old <= new:
            raise _bad_range(
                f"old must be in [1, {new}]: a consistency proof is from a non-empty tree"
            )
        return consistency_proof(old, new, self._hashes(new))

    def receipt(self, index: int, size: int | None = None) -> tuple[int, bytes]:
        """The tlog-proof receipt of entry `index` and the size of its checkpoint: the latest
        published one, or the archived checkpoint of `size` (at most the published size)."""
        size, texts = self.receipts([index], size)
        return size, texts[index]

    def receipts(
        self, indices: Iterable[int], size: int | None = None
    ) -> tuple[int, dict[int, bytes]]:
        """The receipts of several entries against one checkpoint (as `receipt`): its tiles
        are read once for all of them."""
        # The archived copy: immutable, so cached, unlike the mutable `checkpoint` object.
        signed, checkpoint = self._published_checkpoint(size)
        size = checkpoint.size
        hashes = self._hashes(size)
        texts: dict[int, bytes] = {}
        for index in indices:
            if not 0 <= index < size:
                raise not_found("integrated log entry")
            proof = inclusion_proof(index, size, hashes)
            receipt = Receipt(self._entry(index, size), index, tuple(proof), signed)
            texts[index] = format_receipt(receipt)
        return size, texts

    def event(self, index: int) -> LogEvent | None:
        """The database's row for entry `index` (its case and actor, for access checks)."""
        with read_scope(self._engine) as session:
            return session.get(LogEvent, index)

    def timestamps(self, size: int) -> Timestamps:
        """The stored RFC 3161 tokens over checkpoint `size`, and the TSAs still pending."""
        with read_once(self._engine) as connection:  # Core: every receipt asks
            rows = connection.execute(_TIMESTAMPS, {"size": size}).all()
        stored: list[StoredToken] = []
        pending: list[str] = []
        for row in rows:
            if row.status != STORED or row.gen_time is None:
                pending.append(row.tsa)
            else:
                stored.append(self._stored_token(row))
        return Timestamps(size, tuple(stored), tuple(pending))

    def _stored_token(self, row: Row[Any, Any, Any, Any, Any, Any]) -> StoredToken:
        """The token a `stored` row names, read and parsed once: the object is create-only."""
        cache_key = (row.size, row.tsa, row.slot)
        with self._lock:
            token = self._tokens.get(cache_key)
        if token is not None:
            return token
        key = token_key(row.size, row.slot)
        data = self.log_store.read(key)
        reply = parse_response(data)
        if reply.token is None:  # verified before it was stored: a tampered store
            raise Problem(500, "Stored timestamp unreadable", f"{key} holds no token")
        token = StoredToken(
            row.tsa, reply.token, row.chain_pem or "", row.gen_time, key, row.slot, data
        )
        with self._lock:
            self._tokens[cache_key] = token
            while len(self._tokens) > CACHED_TOKENS:
                self._tokens.popitem(last=False)
        return token

    def trusted_times(self, indices: Iterable[int]) -> dict[int, datetime | None]:
        """For each entry index: the earliest token time of the first checkpoint covering it
        (None while that checkpoint's timestamps are pending).

        Indices close together (those of one receipt batch, say) share one query over the
        few checkpoints between them; one far from the rest gets a query of its own (over
        the one checkpoint past it).
        """
        times: dict[int, datetime | None] = {}
        with read_connection(self._engine) as connection:
            for run in _runs(sorted(set(indices)), TRUSTED_TIME_SPAN):
                params = {"low": run[0], "high": run[-1]}
                rows = connection.execute(_TRUSTED_TIMES, params).all()
                sizes = [row.size for row in rows]
                for index in run:
                    first = bisect.bisect_right(sizes, index)  # the first checkpoint past it
                    times[index] = rows[first].gen_time if first < len(rows) else None
        return times

    def settled_through(self) -> int:
        """The largest size S such that every TSA has answered, failed, or is in backoff for
        every checkpoint of size <= S: receipts wait for this, not for TSAs that are down."""
        with read_scope(self._engine) as session:
            unsettled = session.exec(
                select(func.min(CheckpointTimestamp.size)).where(
                    col(CheckpointTimestamp.status) == PENDING,
                    col(CheckpointTimestamp.attempts) == 0,
                    col(CheckpointTimestamp.last_error).is_(None),
                )
            ).one()
            state = session.get(LogState, 1)
        published = state.size if state is not None else 0
        return published if unsettled is None else min(published, unsettled - 1)

    def _published_checkpoint(self, size: int | None = None) -> tuple[bytes, Checkpoint]:
        """The newest published checkpoint (or that of `size`), signature checked once per size."""
        size = self.published_size() if size is None else size
        cached = self._checkpoint_cache
        if cached is None or cached[1].size != size:
            signed = self.checkpoint(size)
            try:
                cached = (signed, open_checkpoint(signed, self.verifier))
            except CustodyError as exc:
                # Our own archived checkpoint does not verify with our key: a misconfigured
                # deployment (replicas with different keys) or a tampered store.
                log.error("checkpoint %d does not verify with this server's key: %s", size, exc)
                raise Problem(
                    500,
                    "Log key mismatch",
                    "This server cannot verify its log's checkpoint with its own key; the "
                    "operator must check CUSTODY_LOG_PRIVATE_KEY and CUSTODY_LOG_ORIGIN on every "
                    "replica, and run `custody audit`.",
                    type_=problem_type("log-key-mismatch"),
                ) from exc
            self._checkpoint_cache = cached
        return cached

    def archived_sizes(self) -> list[int]:
        return self.log_store.archived_sizes()

    def _check_size(self, size: int) -> None:
        published = self.published_size()
        if not 0 < size <= published:
            raise _bad_range(f"size must be in [1, {published}], the published log size")


class SizeWatcher:
    """The published log size as this process knows it, and waiters for it to grow.

    One poll of the database per interval serves every waiting request (the integrator may
    run in another process); an integrator in this process reports at once via `published`.
    """

    def __init__(self, read_size: Callable[[], int], *, poll: float) -> None:
        self._read_size = read_size
        self._poll = poll
        self.size = 0
        self._changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self) -> None:
        """Poll until cancelled (a task started with the app)."""
        self._loop = asyncio.get_running_loop()
        while True:
            try:
                self._set(await run_in_threadpool(self._read_size))
            except Exception:  # a database hiccup must not end the watcher
                log.exception("could not read the published log size")
            await asyncio.sleep(self._poll)

    def published(self, size: int) -> None:
        """Thread-safe: the integrator published a checkpoint of `size`."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._set, size)

    async def wait_for(self, size: int, timeout: float) -> bool:
        """Wait until the published size reaches `size`; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.size < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return self.size >= size
        return True

    def _set(self, size: int) -> None:
        if size > self.size:
            self.size = size
            self._changed.set()
            self._changed = asyncio.Event()


def _runs(ordered: list[int], span: int) -> Iterator[list[int]]:
    """`ordered` cut into runs whose first and last differ by at most `span`."""
    run: list[int] = []
    for value in ordered:
        if run and value - run[0] > span:
            yield run
            run = []
        run.append(value)
    if run:
        yield run


def _bad_range(detail: str) -> Problem:
    return Problem(400, "Out of range", detail, type_=problem_type("out-of-range"))


_STAMPS: Table = CheckpointTimestamp.__table__  # type: ignore[attr-defined]
# Per checkpoint from the first past `low` to the first past `high`: its earliest token time.
# Each checkpoint holds at least one new entry, so there are at most high - low + 1 of them.
_FIRST_PAST_HIGH = (
    sql_select(func.min(_STAMPS.c.size)).where(_STAMPS.c.size > bindparam("high")).scalar_subquery()
)
_TRUSTED_TIMES = (
    sql_select(_STAMPS.c.size, func.min(_STAMPS.c.gen_time).label("gen_time"))
    .where(
        _STAMPS.c.size > bindparam("low"),
        _STAMPS.c.size <= func.coalesce(_FIRST_PAST_HIGH, bindparam("high")),
    )
    .group_by(_STAMPS.c.size)
    .order_by(_STAMPS.c.size)
)
_TIMESTAMPS = (
    sql_select(
        _STAMPS.c.size,
        _STAMPS.c.tsa,
        _STAMPS.c.slot,
        _STAMPS.c.status,
        _STAMPS.c.gen_time,
        _STAMPS.c.chain_pem,
    )
    .where(_STAMPS.c.size == bindparam("size"))
    .order_by(_STAMPS.c.slot)
)
