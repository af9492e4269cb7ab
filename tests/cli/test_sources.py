"""cli.sources: the store source's listings; which source a SOURCE argument names."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator

from cli.sources import StoreSource
from storage.memory import MemoryObjectStore


class SlowListing(MemoryObjectStore):
    """A store whose listings take a while per key, as over S3."""

    def list(self, prefix: str) -> Iterator[str]:
        for key in super().list(prefix):
            threading.Event().wait(0.01)
            yield key


def test_a_store_source_lists_timestamps_once_even_when_asked_at_once() -> None:
    store = SlowListing()
    for size in (1, 2, 3):
        for name in (f"checkpoints/{size}", f"checkpoints/{size}.tsr.0"):
            data = name.encode()
            store.put(
                "log/" + name,
                io.BytesIO(data),
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
            )
    source = StoreSource(store)
    found: dict[int, list[tuple[str, bytes]]] = {}
    threads = [
        threading.Thread(target=lambda n=n: found.setdefault(n, source.timestamps(n)))
        for n in (1, 2, 3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for n in (1, 2, 3):
        assert found[n] == [(f"log/checkpoints/{n}.tsr.0", f"checkpoints/{n}.tsr.0".encode())]
