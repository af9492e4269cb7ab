"""Receipts with time: the tlog-proof, plus the RFC 3161 tokens over its checkpoint."""

from __future__ import annotations

import base64
from datetime import datetime

from pydantic import BaseModel, Field

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
    size, text = log.receipt(index, size)
    timestamps = log.timestamps(size)
    return ReceiptOut(
        index=index,
        checkpoint_size=size,
        receipt=text.decode("utf-8"),
        timestamps=timestamps_out(timestamps),
        timestamps_pending=list(timestamps.pending),
        trusted_time=log.trusted_times([index])[index],
    )
