"""Streaming stored evidence back to a client, safely for any content."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from custody.digests import format_digest_field
from storage import ObjectStore

READ_CHUNK = 1024 * 1024
HEX = frozenset("0123456789abcdef")


def is_sha256(value: str) -> bool:
    return len(value) == 64 and set(value) <= HEX


async def stream_object(
    store: ObjectStore, key: str, *, size: int, sha256: str
) -> StreamingResponse:
    """The object as a download, with its digest; never rendered by a browser."""
    stream = await run_in_threadpool(store.open, key)
    headers = {
        "Content-Length": str(size),
        "Repr-Digest": format_digest_field("sha256", sha256),
        # Evidence may be hostile (HTML, SVG): never let a browser render it on our origin.
        "Content-Disposition": f'attachment; filename="{sha256}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }
    return StreamingResponse(
        _chunks(stream), media_type="application/octet-stream", headers=headers
    )


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(READ_CHUNK):
            yield chunk
