"""Streaming stored evidence back to a client, safely for any content."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

from fastapi.responses import Response, StreamingResponse

from api.problems import not_found
from custody.digests import format_digest_field
from storage import ObjectNotFoundError, ObjectStore

READ_CHUNK = 1024 * 1024
HEX = frozenset("0123456789abcdef")


def is_sha256(value: str) -> bool:
    return len(value) == 64 and set(value) <= HEX


def _open_object(store: ObjectStore, key: str, *, what: str) -> BinaryIO:
    """Open a stored object to send it; 404 if it is missing. Opened before the read is
    logged, and the same handle is streamed: one I/O, and nothing to send means no read."""
    try:
        return store.open(key)
    except ObjectNotFoundError:
        raise not_found(what) from None


def open_logged(
    store: ObjectStore, key: str, *, size: int, what: str, record: Callable[[], object]
) -> bytes | BinaryIO:
    """Open the object, log the read (`record`), then give what to send. A missing object
    is a 404 with nothing logged; a read whose logging fails sends nothing."""
    stream = _open_object(store, key, what=what)
    try:
        record()
    except BaseException:
        stream.close()
        raise
    return _prepare(stream, size)


def _prepare(stream: BinaryIO, size: int) -> bytes | BinaryIO:
    """In the worker thread that opened it: a small object read whole (sent without a
    thread hop per chunk), a larger one left to stream."""
    if size > READ_CHUNK:
        return stream
    with stream:
        return stream.read()


def download_response(body: bytes | BinaryIO, *, size: int, sha256: str) -> Response:
    """Bytes or an opened object (closed when sent or abandoned) as a download."""
    headers = {
        "Content-Length": str(size),
        "Repr-Digest": format_digest_field("sha256", sha256),
        # Evidence may be hostile (HTML, SVG): never let a browser render it on our origin.
        "Content-Disposition": f'attachment; filename="{sha256}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }
    if isinstance(body, bytes):
        return Response(body, media_type="application/octet-stream", headers=headers)
    return StreamingResponse(_chunks(body), media_type="application/octet-stream", headers=headers)


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(READ_CHUNK):
            yield chunk
