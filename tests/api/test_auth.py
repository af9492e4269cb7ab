"""API tokens: lookup by hash, and the cache of tokens already found valid."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, update

from api.auth import TokenCache, authenticate, authenticate_member, create_user, hash_token
from api.database import build_engine, migrate, session_scope
from api.problems import Problem
from api.tables import ApiToken, Case
from tests.api.test_integrator import any_engine  # noqa: F401  (a fixture)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = build_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    migrate(eng)
    yield eng
    eng.dispose()


def revoke(engine: Engine, token: str) -> None:
    with session_scope(engine) as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.token_sha256 == hash_token(token))  # type: ignore[arg-type]
            .values(revoked_at=NOW)
        )


def test_a_valid_token_is_served_from_the_cache_until_the_ttl_ends(engine: Engine) -> None:
    user = create_user(engine, name="a", role="field", now=NOW)
    user_id, token = user.user_id, user.issued.token
    clock = FakeClock()
    cache = TokenCache(5.0, clock=clock)
    header = f"Bearer {token}"
    assert cache.get(header, now=NOW) is None
    principal = authenticate(engine, header, now=NOW, cache=cache)
    assert principal.user_id == user_id
    revoke(engine, token)
    assert cache.get(header, now=NOW) == principal, "within the TTL the lookup is skipped"
    clock.now += 5.0
    assert cache.get(header, now=NOW) is None, "after the TTL the database decides again"
    with pytest.raises(Problem) as refused:
        authenticate(engine, header, now=NOW, cache=cache)
    assert refused.value.status == 401


def test_expiry_is_checked_on_every_cached_use(engine: Engine) -> None:
    token = create_user(engine, name="a", role="field", now=NOW).issued.token
    with session_scope(engine) as session:
        session.execute(update(ApiToken).values(expires_at=NOW + timedelta(seconds=1)))
    cache = TokenCache(60.0, clock=FakeClock())
    header = f"Bearer {token}"
    authenticate(engine, header, now=NOW, cache=cache)
    assert cache.get(header, now=NOW) is not None
    assert cache.get(header, now=NOW + timedelta(seconds=1)) is None


def test_failures_are_not_cached_and_a_zero_ttl_caches_nothing(engine: Engine) -> None:
    cache = TokenCache(5.0, clock=FakeClock())
    with pytest.raises(Problem):
        authenticate(engine, "Bearer cst_nope", now=NOW, cache=cache)
    assert cache.get("Bearer cst_nope", now=NOW) is None
    assert cache.get(None, now=NOW) is None
    assert cache.get("Basic abc", now=NOW) is None
    token = create_user(engine, name="a", role="field", now=NOW).issued.token
    off = TokenCache(0)
    authenticate(engine, f"Bearer {token}", now=NOW, cache=off)
    assert off.get(f"Bearer {token}", now=NOW) is None


def test_the_cache_is_bounded(engine: Engine) -> None:
    cache = TokenCache(5.0, size=1, clock=FakeClock())
    first = create_user(engine, name="a", role="field", now=NOW).issued.token
    second = create_user(engine, name="b", role="field", now=NOW).issued.token
    authenticate(engine, f"Bearer {first}", now=NOW, cache=cache)
    authenticate(engine, f"Bearer {second}", now=NOW, cache=cache)
    assert cache.get(f"Bearer {first}", now=NOW) is None
    assert cache.get(f"Bearer {second}", now=NOW) is not None


def test_the_token_and_the_membership_come_from_one_query(any_engine: Engine) -> None:  # noqa: F811
    admin = create_user(any_engine, name="admin", role="admin", now=NOW)
    with session_scope(any_engine) as session:
        for case in ("c_in", "c_out"):
            session.add(Case(id=case, title=case, created_by=admin.user_id, created_at=NOW))
    field = create_user(any_engine, name="f", role="field", now=NOW, cases=["c_in"])
    header = f"Bearer {field.issued.token}"
    sent: list[str] = []
    event.listen(any_engine, "before_cursor_execute", lambda *args: sent.append(args[2]))

    principal, member = authenticate_member(any_engine, header, "c_in", now=NOW)
    assert (principal.user_id, member) == (field.user_id, True)
    assert len([s for s in sent if s.lstrip().upper().startswith("SELECT")]) == 1
    assert authenticate_member(any_engine, header, "c_out", now=NOW) == (principal, False)
    assert authenticate_member(any_engine, header, "c_none", now=NOW) == (principal, False)
    assert authenticate(any_engine, header, now=NOW) == principal
    revoke(any_engine, field.issued.token)
    with pytest.raises(Problem) as refused:
        authenticate_member(any_engine, header, "c_in", now=NOW)
    assert refused.value.status == 401


def test_a_lookup_that_a_clear_overtakes_does_not_fill_the_cache(engine: Engine) -> None:
    token = create_user(engine, name="a", role="field", now=NOW).issued.token
    header = f"Bearer {token}"
    cache = TokenCache(60.0, clock=FakeClock())
    read, cleared = threading.Event(), threading.Event()

    def hold_the_lookup(*args: object) -> None:
        if threading.current_thread() is not threading.main_thread() and not read.is_set():
            read.set()  # the row is read; a revocation clears the cache now
            assert cleared.wait(10)

    event.listen(engine, "after_cursor_execute", hold_the_lookup)
    found: list[object] = []
    lookup = threading.Thread(
        target=lambda: found.append(authenticate(engine, header, now=NOW, cache=cache))
    )
    lookup.start()
    assert read.wait(10)
    cache.clear()
    cleared.set()
    lookup.join(10)
    assert len(found) == 1, "the lookup itself still answers from the row it read"
    assert cache.get(header, now=NOW) is None, "a lookup older than the clear is not cached"
    authenticate(engine, header, now=NOW, cache=cache)
    assert cache.get(header, now=NOW) is not None, "a lookup after the clear is"
