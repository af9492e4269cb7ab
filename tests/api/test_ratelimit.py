"""The sliding-window limiter: counts per key, frees slots as they age, holds across threads."""

from __future__ import annotations

import threading

import pytest

from api.ratelimit import RateLimits, SlidingWindow, too_many_requests


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_acquire_allows_the_limit_then_says_how_long_to_wait() -> None:
    clock = FakeClock()
    window = SlidingWindow(3, window=60, clock=clock)
    for _ in range(3):
        assert window.acquire("a") is None
        clock.now += 10
    assert window.acquire("a") == pytest.approx(30)
    assert window.acquire("b") is None  # another client is not held back


def test_slots_free_one_by_one_as_they_leave_the_window() -> None:
    clock = FakeClock()
    window = SlidingWindow(2, window=60, clock=clock)
    window.acquire("a")
    clock.now += 30
    window.acquire("a")
    clock.now += 29.5
    assert window.acquire("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert window.acquire("a") is None
    assert window.acquire("a") == pytest.approx(30)


def test_record_counts_failures_and_retry_after_only_looks() -> None:
    clock = FakeClock()
    window = SlidingWindow(2, window=60, clock=clock)
    assert window.retry_after("a") is None
    window.record("a")
    assert window.retry_after("a") is None
    window.record("a")
    assert window.retry_after("a") == pytest.approx(60)
    assert window.retry_after("a") == pytest.approx(60)  # looking counts nothing
    clock.now += 60
    assert window.retry_after("a") is None


def test_a_flood_of_addresses_is_bounded() -> None:
    clock = FakeClock()
    window = SlidingWindow(1, window=60, clock=clock, max_keys=3)
    for key in ("a", "b", "c"):
        window.acquire(key)
        clock.now += 1
    window.acquire("d")  # evicts the quietest, "a"
    assert window.acquire("a") is None
    assert window.acquire("d") is not None


def test_threads_get_exactly_the_limit() -> None:
    window = SlidingWindow(50, window=60)
    granted: list[bool] = []
    lock = threading.Lock()

    def hammer() -> None:
        for _ in range(20):
            ok = window.acquire("client") is None
            with lock:
                granted.append(ok)

    threads = [threading.Thread(target=hammer) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert granted.count(True) == 50
    assert len(granted) == 200


def test_rate_limits_keep_one_window_per_name() -> None:
    limits = RateLimits(clock=FakeClock())
    first = limits.window("auth", 5)
    assert limits.window("auth", 5) is first
    assert limits.window("lookup", 5) is not first


def test_too_many_requests_rounds_retry_after_up() -> None:
    problem = too_many_requests(0.2)
    assert problem.status == 429
    assert problem.headers == {"Retry-After": "1"}
    assert too_many_requests(12.01).headers["Retry-After"] == "13"


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SlidingWindow(0)
