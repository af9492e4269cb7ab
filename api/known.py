"""Names known to exist (cases, sealed objects): a bounded, thread-safe memory of lookups.

What is remembered is never deleted (cases are not; sealed objects are create-only and
retention-locked), so a hit spares a database or object-store round trip. Bounded, so
names probed by clients cannot grow it without limit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class KnownNames:
    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._names: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def add(self, name: str) -> None:
        with self._lock:
            self._names[name] = None
            self._names.move_to_end(name)
            while len(self._names) > self._size:
                self._names.popitem(last=False)
