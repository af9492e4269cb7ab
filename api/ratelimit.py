"""Per-client sliding-window rate limits: failed authentication and the public hash lookup.

Guessing tokens or probing which hashes we hold must cost an attacker time (OWASP ASVS
v4 §2.2.1); a sliding window, unlike a fixed one, allows no double burst at its edge.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from fastapi import Request

from api.problems import Problem, problem_type

WINDOW_SECONDS = 60.0
MAX_CLIENTS = 100_000  # bounds memory under a flood of distinct addresses


class SlidingWindow:
    """At most `limit` events per `window` seconds for each key; safe across threads."""

    def __init__(
        self,
        limit: int,
        *,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_CLIENTS,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._window = window
        self._clock = clock
        self._max_keys = max_keys
        self._events: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float | None:
        """Seconds until `key` may act again, or None if it may act now."""
        with self._lock:
            return self._wait(key, self._clock())

    def record(self, key: str) -> None:
        """Count one event for `key` (e.g. a failed authentication)."""
        with self._lock:
            now = self._clock()
            self._wait(key, now)
            self._remember(key, now)

    def acquire(self, key: str) -> float | None:
        """Count one event if `key` is under the limit and return None; otherwise return
        the seconds to wait and count nothing."""
        with self._lock:
            now = self._clock()
            wait = self._wait(key, now)
            if wait is None:
                self._remember(key, now)
            return wait

    def _wait(self, key: str, now: float) -> float | None:
        events = self._events.get(key)
        if events is None:
            return None
        while events and events[0] <= now - self._window:
            events.popleft()
        if not events:
            del self._events[key]
            return None
        if len(events) < self.limit:
            return None
        return events[0] + self._window - now

    def _remember(self, key: str, now: float) -> None:
        if key not in self._events and len(self._events) >= self._max_keys:
            self._forget_idle(now)
        self._events.setdefault(key, deque()).append(now)

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, e in self._events.items() if e[-1] <= now - self._window]:
            del self._events[key]
        if len(self._events) >= self._max_keys:  # still full: drop the longest quiet
            del self._events[min(self._events, key=lambda k: self._events[k][-1])]


class RateLimits:
    """The service's named windows, made on first use (one set per running app)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, SlidingWindow] = {}
        self._lock = threading.Lock()

    def window(self, name: str, per_minute: int) -> SlidingWindow:
        with self._lock:
            window = self._windows.get(name)
            if window is None or window.limit != per_minute:
                window = SlidingWindow(per_minute, clock=self._clock)
                self._windows[name] = window
            return window


def client_address(request: Request) -> str:
    # The peer as the ASGI server reports it (uvicorn applies X-Forwarded-For only from
    # the proxies it is told to trust), so a client cannot pick its own key.
    return request.client.host if request.client else "unknown"


def too_many_requests(retry_after: float) -> Problem:
    seconds = max(1, math.ceil(retry_after))
    return Problem(
        429,
        "Too Many Requests",
        f"Too many requests from your address; try again in {seconds} seconds.",
        type_=problem_type("rate-limited"),
        headers={"Retry-After": str(seconds)},
    )
