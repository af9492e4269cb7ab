"""API tokens: random secrets shown once, stored as SHA-256, presented as Bearer tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import select

from api.database import read_scope, session_scope
from api.ids import new_id
from api.problems import Problem
from api.sequencer import append_admin_event
from api.tables import ApiToken, Case, CaseMember, User

TOKEN_PREFIX = "cst_"  # noqa: S105 - a visible prefix lets secret scanners spot leaked tokens
ROLES = ("admin", "lawyer", "field", "auditor")


OPERATOR = "operator"  # the actor of `custody admin` commands run on the server itself


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    role: str
    pseudonym: str  # how the custody log names this user


def hash_token(token: str) -> str:
    # 256 random bits cannot be brute-forced, so a fast unsalted hash is enough to keep a
    # leaked table from being usable as tokens (RFC 6819 §5.1.4.1.3).
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh token and the hash that is all the database keeps of it."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, hash_token(token)


def create_user(
    engine: Engine,
    *,
    name: str,
    role: str,
    now: datetime,
    cases: Sequence[str] = (),
    actor: str = OPERATOR,
    expires_at: datetime | None = None,
) -> tuple[str, str]:
    """Create a user with one token, a member of `cases`; return (user id, token). The token
    is never stored; its creation and each membership are custody events."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if cases and role == "auditor":
        raise ValueError("auditors read the log and are members of no case")
    token, digest = new_token()
    user_id, pseudonym, token_id = new_id("u"), new_id("p"), new_id("t")
    with session_scope(engine) as session:
        session.add(User(id=user_id, name=name, role=role, created_at=now, pseudonym=pseudonym))
        session.flush()
        for case_id in dict.fromkeys(cases):
            if session.get(Case, case_id) is None:
                raise ValueError(f"no case {case_id!r}")
            session.add(CaseMember(case_id=case_id, user_id=user_id, added_by=actor, added_at=now))
            append_admin_event(
                session,
                "member-added",
                actor=actor,
                now=now,
                case=case_id,
                target=pseudonym,
                role=role,
            )
        session.add(
            ApiToken(
                id=token_id,
                user_id=user_id,
                token_sha256=digest,
                created_at=now,
                expires_at=expires_at,
            )
        )
        append_admin_event(
            session, "token-created", actor=actor, now=now, target=token_id, role=role
        )
    return user_id, token


def authenticate(engine: Engine, authorization: str | None, *, now: datetime) -> Principal:
    """The principal a `Bearer` header names, or a 401 problem."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Send an API token as 'Authorization: Bearer <token>'.")
    digest = hash_token(token.strip())
    with read_scope(engine) as session:
        row = session.exec(
            select(ApiToken, User).join(User).where(ApiToken.token_sha256 == digest)
        ).first()
    if row is None:
        raise unauthorized("The API token is not valid.")
    api_token, user = row
    # The lookup is by hash; compare again in constant time so timing says nothing.
    if not hmac.compare_digest(api_token.token_sha256, digest):
        raise unauthorized("The API token is not valid.")
    if api_token.revoked_at is not None or (
        api_token.expires_at is not None and api_token.expires_at <= now
    ):
        raise unauthorized("The API token is not valid.")
    return Principal(user_id=user.id, role=user.role, pseudonym=user.pseudonym or user.id)


def unauthorized(detail: str) -> Problem:
    return Problem(
        401,
        "Unauthorized",
        detail,
        type_="/problems/unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="custody"'},
    )
