"""Receipts with time: the tlog-proof, plus the RFC 3161 tokens over its checkpoint."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Collection
from datetime import datetime

from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.logservice import LogService, Timestamps


class TimestampOut(BaseModel):
    tsa: str = Field(description="the configured TSA's name")
    token: str = Field(description="base64 of the DER TimeStampToken (RFC 3161)")
    chain_pem: str = Field(description="the TSA's certificate chain, its certificate first")
    time: datetime = Field(description="the token's genTime")
    object: str = Field(description="the stored TimeStampResp, under /log/")


class ReceiptOut(BaseModel):
    index: int
    checkpoint_size: int
    receipt: str = Field(description="C2SP tlog-proof text")
    timestamps: list[TimestampOut] = Field(
        description="RFC 3161 tokens over the receipt's checkpoint, exactly as published"
    )
    timestamps_pending: list[str] = Field(description="TSAs whose token is still pending")
    trusted_time: datetime | None = Field(
        description="the earliest token time of the first checkpoint covering the entry; "
        "null while pending"
    )


def timestamps_out(timestamps: Timestamps) -> list[TimestampOut]:
    return [
        TimestampOut(
            tsa=token.tsa,
            token=base64.b64encode(token.token).decode("ascii"),
            chain_pem=token.chain_pem,
            time=token.gen_time,
            object=token.key,
        )
        for token in timestamps.stored
    ]


def build_receipt(log: LogService, index: int, size: int | None = None) -> ReceiptOut:
    """The receipt of entry `index` (against checkpoint `size`, default the latest)."""
    return build_receipts(log, [index], size)[index]


def build_receipts(
    log: LogService, indices: Collection[int], size: int | None = None
) -> dict[int, ReceiptOut]:
    """The receipts of several entries against one checkpoint: its tiles, its timestamps
    and the entries' trusted times are read once for all of them."""
    size, texts = log.receipts(indices, size)
    timestamps = log.timestamps(size)
    tokens = timestamps_out(timestamps)
    trusted = log.trusted_times(indices)
    return {
        index: ReceiptOut(
            index=index,
            checkpoint_size=size,
            receipt=text.decode("utf-8"),
            timestamps=tokens,
            timestamps_pending=list(timestamps.pending),
            trusted_time=trusted[index],
        )
        for index, text in texts.items()
    }


class ReceiptBatcher:
    """Builds the receipts of the requests waiting on one checkpoint together.

    A published checkpoint wakes every ingest it covers at once; each building its own
    receipt would cost a thread hand-off and three queries apiece. The first request for a
    checkpoint opens a batch and schedules its build for the next turn of the event loop,
    so the requests woken with it join; the batch is then built in one worker thread.
    """

    def __init__(self, log: LogService) -> None:
        self._log = log
        self._open: dict[int, dict[int, list[asyncio.Future[ReceiptOut]]]] = {}
        self._building: set[asyncio.Task[None]] = set()

    async def receipt(self, index: int, size: int) -> ReceiptOut:
        """The receipt of entry `index` against the published checkpoint of `size`."""
        loop = asyncio.get_running_loop()
        batch = self._open.get(size)
        if batch is None:
            batch = self._open[size] = {}
            loop.call_soon(self._close, size)
        future: asyncio.Future[ReceiptOut] = loop.create_future()
        batch.setdefault(index, []).append(future)
        return await future

    def _close(self, size: int) -> None:
        batch = self._open.pop(size)
        task = asyncio.ensure_future(self._build(size, batch))
        self._building.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._building.discard)

    async def _build(self, size: int, batch: dict[int, list[asyncio.Future[ReceiptOut]]]) -> None:
        try:
            receipts = await run_in_threadpool(build_receipts, self._log, list(batch), size)
        except Exception as exc:  # each waiting request answers with the error itself
            for futures in batch.values():
                for future in futures:
                    if not future.done():  # done: its request was cancelled
                        future.set_exception(exc)
            return
        for index, futures in batch.items():
            for future in futures:
                if not future.done():
                    future.set_result(receipts[index])
