"""The integrator's lease: one process publishes checkpoints at a time, by a database row.

The row (log_state) names the holder and when its lease expires. A holder renews it; any
process takes it once it is free or expired. Renewals are written only when a third of the
term has passed since the last one (nobody can take a lease before it expires), and one
may ride in a transaction the holder writes anyway (`extend_in`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Engine, or_, update
from sqlmodel import Session, col, select

from api.database import read_scope, session_scope
from api.tables import LogState


class Acquired(enum.Enum):
    RENEWED = "renewed"  # still ours: nobody published since we last held it
    TAKEN = "taken"  # free or expired, now ours: another may have published meanwhile


class Lease:
    def __init__(
        self, *, engine: Engine, holder: str, term: float, clock: Callable[[], datetime]
    ) -> None:
        self._engine = engine
        self.holder = holder
        self._term = timedelta(seconds=term)
        self._clock = clock
        self._renewed_at: datetime | None = None  # our clock when we last held it

    def fresh(self) -> bool:
        """Whether we renewed it within a third of its term: nobody can take it for two
        thirds of a term yet, so there is no need to write a renewal."""
        if self._renewed_at is None:
            return False
        return self._clock() - self._renewed_at < self._term / 3

    def acquire(self) -> Acquired | None:
        """Renew ours, or take a free or expired one; None if another holds it.

        The row is read first: a process that does not hold the lease, asking every poll,
        would otherwise take the database's write lock twice a poll (on SQLite, the one
        writer every ingest queues behind) to change nothing. The writes check it again.
        """
        with read_scope(self._engine) as session:
            holder, expires = session.exec(
                select(LogState.lease_holder, LogState.lease_expires_at).where(
                    col(LogState.id) == 1
                )
            ).one()
        if holder == self.holder:
            if self.renew():
                return Acquired.RENEWED
        elif holder is not None and expires is not None and expires >= self._clock():
            return None  # held, and not expired: nothing to write
        return Acquired.TAKEN if self._take() else None

    def renew(self) -> bool:
        """Extend our lease now; False if it is no longer ours.

        Still ours even past expiry: every other taker writes its own id and a release
        writes none, so nobody has published since we last held it."""
        return self._write(col(LogState.lease_holder) == self.holder)

    def extend_in(self, session: Session, now: datetime) -> bool:
        """Extend our lease in `session`'s transaction; call `renewed` once it commits."""
        return self._extend(session, col(LogState.lease_holder) == self.holder, now)

    def renewed(self, now: datetime | None) -> None:
        """Note a renewal committed at `now` (None: it failed, the lease is not ours)."""
        self._renewed_at = now

    def release(self) -> None:
        self._renewed_at = None
        with session_scope(self._engine) as session:
            session.execute(
                update(LogState)
                .where(col(LogState.id) == 1, col(LogState.lease_holder) == self.holder)
                .values(lease_holder=None, lease_expires_at=None)
            )

    def _take(self) -> bool:
        free = col(LogState.lease_holder).is_(None)
        return self._write(or_(free, col(LogState.lease_expires_at) < self._clock()))

    def _write(self, condition: ColumnElement[bool]) -> bool:
        now = self._clock()  # before the transaction: the term is counted from then
        with session_scope(self._engine) as session:
            held = self._extend(session, condition, now)
        self.renewed(now if held else None)
        return held

    def _extend(self, session: Session, condition: ColumnElement[bool], now: datetime) -> bool:
        result = session.execute(
            update(LogState)
            .where(col(LogState.id) == 1, condition)
            .values(lease_holder=self.holder, lease_expires_at=now + self._term)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
