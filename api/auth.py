"""API tokens: random secrets shown once, stored as SHA-256, presented as Bearer tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import select

from api.database import read_scope, session_scope
from api.ids import new_id
from api.problems import Problem
from api.tables import ApiToken, User

TOKEN_PREFIX = "cst_"  # noqa: S105 - a visible prefix lets secret scanners spot leaked tokens
ROLES = ("admin", "lawyer", "field", "auditor")


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    role: str


def hash_token(token: str) -> str:
    # 256 random bits cannot be brute-forced, so a fast unsalted hash is enough to keep a
    # leaked table from being usable as tokens (RFC 6819 §5.1.4.1.3).
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(engine: Engine, *, name: str, role: str, now: datetime) -> tuple[str, str]:
    """Create a user with one token; return (user id, token). The token is never stored."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user_id = new_id("u")
    with session_scope(engine) as session:
        session.add(User(id=user_id, name=name, role=role, created_at=now))
        session.flush()
        session.add(
            ApiToken(
                id=new_id("t"), user_id=user_id, token_sha256=hash_token(token), created_at=now
            )
        )
    return user_id, token


@dataclass(frozen=True, slots=True)
class _Valid:
    principal: Principal
    expires_at: datetime | None
    checked: float  # monotonic seconds of the database lookup


class TokenCache:
    """Tokens found valid in the database, trusted again for `ttl` seconds without a lookup.

    Only successes are kept, so a new token works at once; a token revoked in the database
    stops working within `ttl` (expiry is still checked on every request). `ttl=0` disables it.
    """

    def __init__(
        self, ttl: float, *, size: int = 4096, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[str, _Valid] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, authorization: str | None, *, now: datetime) -> Principal | None:
        """The cached principal of this header, or None: then call `authenticate`."""
        digest = _bearer_digest(authorization) if self._ttl else None
        if digest is None:
            return None
        with self._lock:
            valid = self._entries.get(digest)
        if valid is None or self._clock() - valid.checked >= self._ttl:
            return None
        if valid.expires_at is not None and valid.expires_at <= now:
            return None
        return valid.principal

    def put(self, digest: str, principal: Principal, expires_at: datetime | None) -> None:
        if not self._ttl:
            return
        with self._lock:
            self._entries[digest] = _Valid(principal, expires_at, self._clock())
            self._entries.move_to_end(digest)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


def authenticate(
    engine: Engine,
    authorization: str | None,
    *,
    now: datetime,
    cache: TokenCache | None = None,
) -> Principal:
    """The principal a `Bearer` header names, or a 401 problem."""
    digest = _bearer_digest(authorization)
    if digest is None:
        raise _unauthorized("Send an API token as 'Authorization: Bearer <token>'.")
    with read_scope(engine) as session:
        row = session.exec(
            select(ApiToken, User).join(User).where(ApiToken.token_sha256 == digest)
        ).first()
    if row is None:
        raise _unauthorized("The API token is not valid.")
    api_token, user = row
    # The lookup is by hash; compare again in constant time so timing says nothing.
    if not hmac.compare_digest(api_token.token_sha256, digest):
        raise _unauthorized("The API token is not valid.")
    if api_token.revoked_at is not None or (
        api_token.expires_at is not None and api_token.expires_at <= now
    ):
        raise _unauthorized("The API token is not valid.")
    principal = Principal(user_id=user.id, role=user.role)
    if cache is not None:
        cache.put(digest, principal, api_token.expires_at)
    return principal


def _bearer_digest(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return hash_token(token.strip())


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401,
        "Unauthorized",
        detail,
        type_="/problems/unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="custody"'},
    )
