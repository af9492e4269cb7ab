"""Receipts built in batches: the same answers as one at a time, for fewer queries.

`LogService.trusted_times` answers indices close together with one query; it must agree with
the one-index query on every index, wherever the checkpoints, pending tokens and gaps fall.
`ReceiptBatcher` builds the receipts of the requests woken by one checkpoint in one go.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Collection
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from api.logservice import LogService, Timestamps
from api.receipts import ReceiptBatcher, ReceiptOut
from api.tables import CheckpointTimestamp
from tests.api.test_integrator import NOW, VERIFIER, any_engine  # noqa: F401  (a fixture)


def _stamp(session: Session, size: int, tsa: str, gen_time: datetime | None) -> None:
    session.add(
        CheckpointTimestamp(
            size=size,
            tsa=tsa,
            slot=0 if tsa == "a" else 1,
            status="stored" if gen_time else "pending",
            next_attempt_at=NOW,
            gen_time=gen_time,
            updated_at=NOW,
        )
    )


def _log(engine: Engine) -> LogService:
    return LogService(engine=engine, log_store=None, verifier=VERIFIER)  # type: ignore[arg-type]


def _one_by_one(log: LogService, indices: Collection[int]) -> dict[int, datetime | None]:
    return {index: log.trusted_times([index])[index] for index in indices}


def _earliest_of_first_past(
    stamped: dict[int, list[datetime | None]], index: int
) -> datetime | None:
    """The definition, in Python: the earliest token time of the first checkpoint past
    `index` (None if there is none, or while all its tokens are pending)."""
    past = [size for size in sorted(stamped) if size > index]
    times = [time for time in stamped[past[0]] if time is not None] if past else []
    return min(times) if times else None


def test_trusted_times_in_one_query_match_one_at_a_time(any_engine: Engine) -> None:  # noqa: F811
    rng = random.Random(7)
    stamped: dict[int, list[datetime | None]] = {}
    with Session(any_engine) as session:
        size = 0
        for n in range(60):  # checkpoints of 1..9 entries; two TSAs, some tokens pending
            size += rng.randint(1, 9)
            first = NOW + timedelta(seconds=n, milliseconds=rng.randint(0, 900))
            times = (
                first if rng.random() < 0.8 else None,
                first - timedelta(milliseconds=300) if n % 3 else None,
            )
            _stamp(session, size, "a", times[0])
            _stamp(session, size, "b", times[1])
            stamped[size] = list(times)
        session.commit()
    log = _log(any_engine)
    indices = range(size + 5)  # the last few: past every checkpoint, so no trusted time yet
    expected = {index: _earliest_of_first_past(stamped, index) for index in indices}
    assert _one_by_one(log, indices) == expected
    assert sum(time is not None for time in expected.values()) > size // 2
    assert expected[size + 1] is None
    assert log.trusted_times(indices) == expected
    # A batch of a few neighbours, a run cut in two by the span, and lone far indices.
    for batch in ([3, 4, 5, 6], [0, size - 1], [size - 3, size + 2], rng.sample(indices, 25)):
        assert log.trusted_times(batch) == {i: expected[i] for i in batch}


def test_trusted_times_cut_far_indices_into_runs(
    any_engine: Engine,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Session(any_engine) as session:
        for size in (5, 10, 40, 41, 100):
            _stamp(session, size, "a", NOW + timedelta(seconds=size))
        session.commit()
    log = _log(any_engine)
    monkeypatch.setattr("api.logservice.TRUSTED_TIME_SPAN", 8)
    indices = [0, 4, 5, 9, 12, 20, 39, 40, 41, 99, 100]
    expected = {
        0: 5,
        4: 5,
        5: 10,
        9: 10,
        12: 40,
        20: 40,
        39: 40,
        40: 41,
        41: 100,
        99: 100,
        100: None,
    }
    got = log.trusted_times(indices)
    assert got == {
        i: None if size is None else NOW + timedelta(seconds=size) for i, size in expected.items()
    }


class FakeLog:
    """What `build_receipts` asks of the log, counting the calls."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail = fail

    def receipts(self, indices: Collection[int], size: int | None) -> tuple[int, dict[int, bytes]]:
        self.batches.append(sorted(indices))
        if self.fail is not None:
            raise self.fail
        assert size is not None
        return size, {i: f"entry {i} in {size}".encode() for i in indices}

    def timestamps(self, size: int) -> Timestamps:
        return Timestamps(size, (), ("tsa",))

    def trusted_times(self, indices: Collection[int]) -> dict[int, datetime | None]:
        return {i: NOW + timedelta(seconds=i) for i in indices}


def _batcher(log: FakeLog) -> ReceiptBatcher:
    return ReceiptBatcher(log)  # type: ignore[arg-type]


def test_requests_woken_together_share_one_build() -> None:
    log = FakeLog()
    batcher = _batcher(log)

    async def scenario() -> list[ReceiptOut]:
        first = await asyncio.gather(*(batcher.receipt(i, 20) for i in range(12)))
        # The same entry asked twice in one batch, and a request after the batch was built.
        again = await asyncio.gather(batcher.receipt(3, 20), batcher.receipt(3, 20))
        later = await batcher.receipt(19, 20)
        return [*first, *again, later]

    receipts = asyncio.run(scenario())
    assert log.batches == [list(range(12)), [3], [19]]
    for receipt, index in zip(receipts, [*range(12), 3, 3, 19], strict=True):
        assert receipt.index == index
        assert receipt.checkpoint_size == 20
        assert receipt.receipt == f"entry {index} in 20"
        assert receipt.trusted_time == NOW + timedelta(seconds=index)
        assert receipt.timestamps_pending == ["tsa"]


def test_batches_are_per_checkpoint() -> None:
    log = FakeLog()
    batcher = _batcher(log)

    async def scenario() -> list[ReceiptOut]:
        return await asyncio.gather(batcher.receipt(1, 5), batcher.receipt(7, 9))

    small, large = asyncio.run(scenario())
    assert sorted(log.batches) == [[1], [7]]
    assert (small.checkpoint_size, large.checkpoint_size) == (5, 9)


def test_a_failed_build_fails_each_waiting_request_and_the_next_batch_works() -> None:
    log = FakeLog(fail=RuntimeError("database gone"))
    batcher = _batcher(log)

    async def scenario() -> tuple[list[object], ReceiptOut]:
        failed = await asyncio.gather(
            *(batcher.receipt(i, 4) for i in range(3)), return_exceptions=True
        )
        log.fail = None
        return failed, await batcher.receipt(2, 4)

    failed, recovered = asyncio.run(scenario())
    assert all(isinstance(e, RuntimeError) and "database gone" in str(e) for e in failed)
    assert recovered.receipt == "entry 2 in 4"


def test_a_cancelled_request_does_not_disturb_the_others() -> None:
    log = FakeLog()
    batcher = _batcher(log)

    async def scenario() -> list[ReceiptOut]:
        leaving = asyncio.ensure_future(batcher.receipt(0, 3))
        staying = [asyncio.ensure_future(batcher.receipt(i, 3)) for i in (0, 1, 2)]
        await asyncio.sleep(0)  # every request has joined the batch; its build has started
        leaving.cancel()
        return await asyncio.gather(*staying)

    receipts = asyncio.run(scenario())
    assert [r.index for r in receipts] == [0, 1, 2]
    assert log.batches == [[0, 1, 2]]
