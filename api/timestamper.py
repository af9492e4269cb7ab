"""RFC 3161 tokens over every archived checkpoint, from every configured TSA.

The integrator records a pending row per (checkpoint, TSA) in the transaction that records
the checkpoint. One worker thread per TSA, active while this process holds the integrator
lease, asks its TSA for a token over the checkpoint's exact bytes with a fresh nonce,
verifies the reply (imprint, nonce, signature, EKU, chain to the trust anchors), and stores
it create-only next to the checkpoint as `checkpoints/<size>.tsr.<slot>`. A TSA that is down
or answers badly never blocks the log or the other TSAs: its row stays pending and is retried
with backoff, and the backlog shows in a log line and in `/metrics`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from api.database import read_scope, session_scope
from api.logstore import LogStore, checkpoint_key
from api.tables import CheckpointTimestamp
from api.tsa import TsaClient, TsaUnavailableError
from custody.errors import TimestampError
from custody.tsp import (
    VerifiedToken,
    certificates_pem,
    make_request,
    new_nonce,
    parse_response,
    verify_reply,
)
from custody.tsp import verify_token as verify_tsp_token
from storage import ObjectExistsError

log = logging.getLogger("custody.timestamps")

PENDING = "pending"
STORED = "stored"
BATCH = 32
BACKLOG_REPORT_SECONDS = 60.0


def token_key(size: int, slot: int) -> str:
    """Where a TSA's reply over checkpoint `size` is stored (relative to the log prefix)."""
    return f"{checkpoint_key(size)}.tsr.{slot}"


@dataclass(frozen=True, slots=True)
class TsaTarget:
    name: str
    slot: int  # position in the configured list: the `.tsr.<slot>` suffix
    client: TsaClient


@dataclass(slots=True)
class _Health:
    """A TSA's run of failures and the backoff it earned (kept by its worker thread)."""

    failures: int = 0
    down_until: datetime | None = None
    error: str = ""

    def failed(self, error: str, now: datetime, retry_max: float) -> None:
        self.failures += 1
        self.error = error
        delay = min(retry_max, 2.0 ** min(self.failures - 1, 20))
        self.down_until = now + timedelta(seconds=delay)

    def recovered(self) -> None:
        self.failures, self.down_until, self.error = 0, None, ""


@dataclass(frozen=True, slots=True)
class Backlog:
    tsa: str
    pending: int
    oldest_size: int | None
    last_error: str | None


class Timestamper:
    """Worker threads that fetch, verify and store tokens for pending checkpoints."""

    def __init__(
        self,
        *,
        engine: Engine,
        log_store: LogStore,
        targets: Sequence[TsaTarget],
        anchors: Sequence[x509.Certificate],
        clock: Callable[[], datetime],
        holds_lease: Callable[[], bool],
        on_settled: Callable[[], None] = lambda: None,
        retention: timedelta,
        retry_max: float = 60.0,
        poll: float = 1.0,
    ) -> None:
        self._retention = retention
        self._engine = engine
        self._log = log_store
        self.targets = tuple(targets)
        self._anchors = tuple(anchors)
        self._clock = clock
        self._holds_lease = holds_lease
        self._on_settled = on_settled
        self._retry_max = retry_max
        self._poll = poll
        self._stop = threading.Event()
        self._wakes = {target.name: threading.Event() for target in self.targets}
        self._health = {target.name: _Health() for target in self.targets}
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for target in self.targets:
            thread = threading.Thread(
                target=self._run, args=(target,), name=f"custody-tsa-{target.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for wake in self._wakes.values():
            wake.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def notify(self) -> None:
        """A checkpoint was published: look for pending rows now."""
        for wake in self._wakes.values():
            wake.set()

    def _run(self, target: TsaTarget) -> None:
        wake = self._wakes[target.name]
        reported = time.monotonic()
        while not self._stop.is_set():
            busy = False
            try:
                if self._holds_lease():
                    busy = self.step(target)
                    if time.monotonic() - reported > BACKLOG_REPORT_SECONDS:
                        reported = time.monotonic()
                        self._report(target)
            except Exception:
                log.exception("timestamping with TSA %s failed; retrying", target.name)
                self._stop.wait(1.0)
            if not busy:
                wake.wait(self._poll)
                wake.clear()

    def step(self, target: TsaTarget) -> bool:
        """Try the due rows of `target`, oldest first, until one fails. True if any was due.

        A failure puts the whole TSA in backoff (it is likely down or misconfigured, and the
        next checkpoint would fail alike): its rows not yet tried are marked deferred, with
        the reason, so receipts list them as pending at once instead of waiting for them.
        """
        health = self._health[target.name]
        if health.down_until is not None and self._clock() < health.down_until:
            if self._defer(target, health):
                self._on_settled()
            return False
        with read_scope(self._engine) as session:
            due = session.exec(
                select(CheckpointTimestamp.size, CheckpointTimestamp.slot)
                .where(
                    col(CheckpointTimestamp.tsa) == target.name,
                    col(CheckpointTimestamp.status) == PENDING,
                    col(CheckpointTimestamp.next_attempt_at) <= self._clock(),
                )
                .order_by(col(CheckpointTimestamp.size))
                .limit(BATCH)
            ).all()
        for size, slot in due:
            if self._stop.is_set():
                break
            if not self.stamp(target, size, slot):
                self._defer(target, health)
                break
        if due:
            self._on_settled()  # stored or failed once: receipts stop waiting for them
        return bool(due) and health.down_until is None

    def stamp(self, target: TsaTarget, size: int, slot: int) -> bool:
        """Adopt, or fetch, verify and store, one token; on failure record it and back off."""
        checkpoint = self._log.read(checkpoint_key(size))
        # The row's slot, not the target's: CUSTODY_TSA_URLS may have been reordered since the
        # row was recorded, and readers find the token by the row's slot.
        key = token_key(size, slot)
        health = self._health[target.name]
        try:
            stored = self._log.read_optional(key)
            if stored is not None:
                # An earlier holder of the lease stored it and crashed before recording it.
                try:
                    token = self._adopt(key, stored, checkpoint)
                except TimestampError as exc:
                    # The store is at fault, not the TSA (and a locked object stays): report
                    # it loudly, retry it rarely, and go on with the other checkpoints.
                    retry = self._clock() + timedelta(seconds=self._retry_max)
                    self._record_failure(target, size, str(exc), retry, level=logging.ERROR)
                    return True
            else:
                nonce = new_nonce()
                reply = target.client.timestamp(make_request(checkpoint, nonce=nonce))
                _, token = verify_reply(
                    reply, message=checkpoint, nonce=nonce, trust_anchors=self._anchors
                )
                self._require_trusted(token)
                token = self._store(key, reply, token, checkpoint)
                health.recovered()
        except (TimestampError, TsaUnavailableError) as exc:
            health.failed(str(exc), self._clock(), self._retry_max)
            self._failed(target, size, health)
            return False
        self._stored(target, size, token)
        return True

    def _defer(self, target: TsaTarget, health: _Health) -> bool:
        """Mark rows of a TSA in backoff that were never tried: pending, for a known reason."""
        assert health.down_until is not None
        with session_scope(self._engine) as session:
            result = session.execute(
                update(CheckpointTimestamp)
                .where(
                    col(CheckpointTimestamp.tsa) == target.name,
                    col(CheckpointTimestamp.status) == PENDING,
                    col(CheckpointTimestamp.attempts) == 0,
                    col(CheckpointTimestamp.last_error).is_(None),
                )
                .values(
                    last_error=f"not requested: TSA in backoff after: {health.error}"[:1024],
                    next_attempt_at=health.down_until,
                    updated_at=self._clock(),
                )
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _require_trusted(self, token: VerifiedToken) -> None:
        if not token.trusted:
            root = token.chain[-1].subject.rfc4514_string() if token.chain else "?"
            raise TimestampError(
                f"the token verifies, but its TSA chain ends at {root!r}, which is not among "
                "the configured trust anchors (CUSTODY_TSA_TRUST_ANCHORS)"
            )

    def _store(
        self, key: str, reply: bytes, token: VerifiedToken, checkpoint: bytes
    ) -> VerifiedToken:
        try:
            self._log.write(key, reply, retain_until=self._clock() + self._retention)
        except ObjectExistsError:
            # Stored since we looked, by a holder that has lost the lease: keep that one.
            return self._adopt(key, self._log.read(key), checkpoint)
        return token

    def _adopt(self, key: str, reply: bytes, checkpoint: bytes) -> VerifiedToken:
        """A stored reply, kept (create-only) if valid; else the store holds what we did not
        write, and the error names the object for an operator to inspect."""
        try:
            token = verify_stored(reply, checkpoint, self._anchors)
            self._require_trusted(token)
        except TimestampError as exc:
            where = self._log.prefix + key
            raise TimestampError(f"{where} is stored already and does not verify: {exc}") from exc
        return token

    def _stored(self, target: TsaTarget, size: int, token: VerifiedToken) -> None:
        with session_scope(self._engine) as session:
            session.execute(
                update(CheckpointTimestamp)
                .where(
                    col(CheckpointTimestamp.size) == size,
                    col(CheckpointTimestamp.tsa) == target.name,
                )
                .values(
                    status=STORED,
                    attempts=col(CheckpointTimestamp.attempts) + 1,
                    gen_time=token.gen_time,
                    chain_pem=certificates_pem(token.chain),
                    last_error=None,
                    updated_at=self._clock(),
                )
            )

    def _failed(self, target: TsaTarget, size: int, health: _Health) -> None:
        assert health.down_until is not None
        self._record_failure(target, size, health.error, health.down_until, level=logging.WARNING)

    def _record_failure(
        self, target: TsaTarget, size: int, reason: str, retry: datetime, *, level: int
    ) -> None:
        with session_scope(self._engine) as session:
            row = session.get(CheckpointTimestamp, (size, target.name))
            if row is None:
                return
            row.attempts += 1
            row.next_attempt_at = retry
            row.last_error = reason[:1024]
            row.updated_at = self._clock()
            attempts = row.attempts
        log.log(
            level,
            "timestamp of checkpoint %d from TSA %s failed (attempt %d; retrying from %s): %s",
            size,
            target.name,
            attempts,
            retry.isoformat(timespec="seconds"),
            reason,
        )

    def _report(self, target: TsaTarget) -> None:
        backlog = backlog_of(self._engine, target.name)
        if backlog.pending:
            log.warning(
                "%d checkpoint timestamp(s) pending from TSA %s (oldest checkpoint %s): %s",
                backlog.pending,
                target.name,
                backlog.oldest_size,
                backlog.last_error or "not yet requested",
            )


def verify_stored(
    reply: bytes, checkpoint: bytes, anchors: Sequence[x509.Certificate]
) -> VerifiedToken:
    """Check a stored reply (its nonce is not recorded, the rest is) against the checkpoint."""
    parsed = parse_response(reply)
    if parsed.token is None:
        raise TimestampError(f"the stored reply is not a granted token: {parsed.status}")
    return verify_tsp_token(
        parsed.token, message=checkpoint, trust_anchors=anchors, der_checked=True
    )


def backlog_of(engine: Engine, tsa: str) -> Backlog:
    with read_scope(engine) as session:
        count, oldest = session.exec(
            select(func.count(), func.min(CheckpointTimestamp.size)).where(
                col(CheckpointTimestamp.tsa) == tsa, col(CheckpointTimestamp.status) == PENDING
            )
        ).one()
        error = None
        if oldest is not None:
            row = session.get(CheckpointTimestamp, (oldest, tsa))
            error = row.last_error if row is not None else None
    return Backlog(tsa, int(count), oldest, error)


def record_pending(
    session: Session, size: int, targets: Sequence[tuple[str, int]], now: datetime
) -> None:
    """Add a pending row per TSA for checkpoint `size` (in the caller's transaction).

    A TSA added to the configuration since `size` was first recorded may have the position
    another TSA had then: its row gets the next free slot, so that it never takes (adopts)
    the other TSA's token stored under that slot as its own.
    """
    rows = session.exec(
        select(CheckpointTimestamp.tsa, CheckpointTimestamp.slot).where(
            col(CheckpointTimestamp.size) == size
        )
    ).all()
    recorded = {tsa for tsa, _ in rows}
    used = {slot for _, slot in rows}
    reserved = used | {slot for _, slot in targets}
    for name, position in targets:
        if name not in recorded:
            slot = position if position not in used else max(reserved) + 1
            reserved.add(slot)
            session.add(
                CheckpointTimestamp(
                    size=size,
                    tsa=name,
                    slot=slot,
                    status=PENDING,
                    next_attempt_at=now,
                    updated_at=now,
                )
            )
