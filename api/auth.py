"""API tokens: random secrets shown once, stored as SHA-256, presented as Bearer tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
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


def authenticate(engine: Engine, authorization: str | None, *, now: datetime) -> Principal:
    """The principal a `Bearer` header names, or a 401 problem."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Send an API token as 'Authorization: Bearer <token>'.")
    digest = hash_token(token.strip())
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
    return Principal(user_id=user.id, role=user.role)


def _unauthorized(detail: str) -> Problem:
    return Problem(
        401,
        "Unauthorized",
        detail,
        type_="/problems/unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="custody"'},
    )
