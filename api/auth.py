"""API tokens: random secrets shown once, stored as SHA-256, presented as Bearer tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine, Table, bindparam
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from api.database import read_once, read_scope, session_scope
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


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token_id: str
    token: str = field(repr=False)  # the secret: shown once, never stored or logged
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewUser:
    user_id: str
    pseudonym: str
    role: str
    issued: IssuedToken


@dataclass(frozen=True, slots=True)
class UserRecord:
    """A user as admins see it: never a token or its hash."""

    user: User
    tokens: list[ApiToken]


def create_user(
    engine: Engine,
    *,
    name: str,
    role: str,
    now: datetime,
    cases: Sequence[str] = (),
    actor: str = OPERATOR,
    expires_at: datetime | None = None,
) -> NewUser:
    """Create a user with one token, a member of `cases`. The token is never stored; its
    creation and each membership are custody events."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if cases and role == "auditor":
        raise ValueError("auditors read the log and are members of no case")
    user_id, pseudonym = new_id("u"), new_id("p")
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
        issued = _add_token(session, user_id, role, actor=actor, now=now, expires_at=expires_at)
    return NewUser(user_id, pseudonym, role, issued)


def issue_token(
    engine: Engine,
    *,
    user_id: str,
    now: datetime,
    actor: str = OPERATOR,
    expires_at: datetime | None = None,
    label: str | None = None,
) -> IssuedToken:
    """A further token for an existing user (logged as `token-created`)."""
    with session_scope(engine) as session:
        user = session.get(User, user_id)
        if user is None:
            raise LookupError(f"no user {user_id!r}")
        return _add_token(
            session, user.id, user.role, actor=actor, now=now, expires_at=expires_at, label=label
        )


def revoke_token(engine: Engine, token_id: str, *, now: datetime, actor: str = OPERATOR) -> None:
    """Revoke a token for good (logged as `token-revoked` the first time)."""
    with session_scope(engine) as session:
        row = session.exec(select(ApiToken, User).join(User).where(ApiToken.id == token_id)).first()
        if row is None:
            raise LookupError(f"no token {token_id!r}")
        api_token, user = row
        if api_token.revoked_at is not None:
            return
        api_token.revoked_at = now
        session.add(api_token)
        append_admin_event(
            session, "token-revoked", actor=actor, now=now, target=api_token.id, role=user.role
        )


def list_users(engine: Engine) -> list[UserRecord]:
    with read_scope(engine) as session:
        users = session.exec(select(User).order_by(col(User.created_at), col(User.id))).all()
        tokens = session.exec(select(ApiToken).order_by(col(ApiToken.created_at))).all()
    by_user: dict[str, list[ApiToken]] = {}
    for api_token in tokens:
        by_user.setdefault(api_token.user_id, []).append(api_token)
    return [UserRecord(user, by_user.get(user.id, [])) for user in users]


def _add_token(
    session: Session,
    user_id: str,
    role: str,
    *,
    actor: str,
    now: datetime,
    expires_at: datetime | None,
    label: str | None = None,
) -> IssuedToken:
    token, digest = new_token()
    token_id = new_id("t")
    session.add(
        ApiToken(
            id=token_id,
            user_id=user_id,
            token_sha256=digest,
            created_at=now,
            expires_at=expires_at,
            label=label,
        )
    )
    append_admin_event(session, "token-created", actor=actor, now=now, target=token_id, role=role)
    return IssuedToken(token_id, token, expires_at)


@dataclass(frozen=True, slots=True)
class _Valid:
    principal: Principal
    expires_at: datetime | None
    checked: float  # monotonic seconds of the database lookup


class TokenCache:
    """Tokens found valid in the database, trusted again for `ttl` seconds without a lookup.

    Only successes are kept, so a new token works at once; a token revoked in the database
    stops working within `ttl` (expiry is still checked on every request). `ttl=0` disables it.
    A lookup puts its result only if no `clear` happened since it began (`generation`): one
    that read the token's row before a revocation cleared the cache would trust it again.
    """

    def __init__(
        self, ttl: float, *, size: int = 4096, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._entries: OrderedDict[str, _Valid] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0  # how many times the cache was cleared

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

    @property
    def generation(self) -> int:
        """Read before a lookup, handed back to `put` after it."""
        with self._lock:
            return self._generation

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def put(
        self, digest: str, principal: Principal, expires_at: datetime | None, *, generation: int
    ) -> None:
        """Keep a lookup's result, unless the cache was cleared since `generation`."""
        if not self._ttl:
            return
        with self._lock:
            if generation != self._generation:
                return
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
    principal, _ = _authenticate(engine, authorization, None, now=now, cache=cache)
    return principal


def authenticate_member(
    engine: Engine,
    authorization: str | None,
    case_id: str,
    *,
    now: datetime,
    cache: TokenCache | None = None,
) -> tuple[Principal, bool]:
    """As `authenticate`, and whether the principal is a member of case `case_id`, found
    by the same query (an upload's two questions in one round trip)."""
    return _authenticate(engine, authorization, case_id, now=now, cache=cache)


def _authenticate(
    engine: Engine,
    authorization: str | None,
    case_id: str | None,
    *,
    now: datetime,
    cache: TokenCache | None,
) -> tuple[Principal, bool]:
    digest = _bearer_digest(authorization)
    if digest is None:
        raise unauthorized("Send an API token as 'Authorization: Bearer <token>'.")
    generation = cache.generation if cache is not None else 0  # before the row is read
    with read_once(engine) as connection:  # Core: every request starts here
        if case_id is None:
            row = connection.execute(_TOKEN, {"digest": digest}).first()
        else:
            row = connection.execute(_TOKEN_MEMBER, {"digest": digest, "case": case_id}).first()
    if row is None:
        raise unauthorized("The API token is not valid.")
    # The lookup is by hash; compare again in constant time so timing says nothing.
    if not hmac.compare_digest(row.token_sha256, digest):
        raise unauthorized("The API token is not valid.")
    if row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        raise unauthorized("The API token is not valid.")
    principal = Principal(user_id=row.id, role=row.role, pseudonym=row.pseudonym or row.id)
    if cache is not None:
        cache.put(digest, principal, row.expires_at, generation=generation)
    return principal, case_id is not None and bool(row.member)


def _bearer_digest(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return hash_token(token.strip())


def unauthorized(detail: str) -> Problem:
    return Problem(
        401,
        "Unauthorized",
        detail,
        type_="/problems/unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="custody"'},
    )


_TOKENS: Table = ApiToken.__table__  # type: ignore[attr-defined]
_USERS: Table = User.__table__  # type: ignore[attr-defined]
_TOKEN = (
    sql_select(
        _TOKENS.c.token_sha256,
        _TOKENS.c.revoked_at,
        _TOKENS.c.expires_at,
        _USERS.c.id,
        _USERS.c.role,
        _USERS.c.pseudonym,
    )
    .join(_USERS, _USERS.c.id == _TOKENS.c.user_id)
    .where(_TOKENS.c.token_sha256 == bindparam("digest"))
)
_MEMBERS: Table = CaseMember.__table__  # type: ignore[attr-defined]
_TOKEN_MEMBER = _TOKEN.add_columns(
    sql_select(_MEMBERS.c.case_id)
    .where(_MEMBERS.c.case_id == bindparam("case"), _MEMBERS.c.user_id == _USERS.c.id)
    .exists()
    .label("member")
)
