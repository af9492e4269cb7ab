"""Concurrent load for the benchmarks: the same client loop on N threads until a deadline."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def run_clients(client: Callable[[float], None], clients: int, seconds: float) -> float:
    """Run `client(deadline)` on `clients` threads; return the wall-clock seconds taken."""
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=client, args=(deadline,)) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start
