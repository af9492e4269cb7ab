"""Users, tokens and pseudonyms, for admins: every change and every resolution is logged."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from api.access import ADMIN, require_role
from api.auth import Principal, create_user, issue_token, list_users, revoke_token
from api.context import AppContext, Context, CurrentPrincipal
from api.database import session_scope
from api.problems import V1_RESPONSES, Problem, not_found, problem_doc, problem_type
from api.sequencer import append_admin_event
from api.tables import ApiToken, User

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    responses={**V1_RESPONSES, 403: problem_doc("Admins only")},
)
MAX_DAYS = 36500  # a token may outlive its user's work, not the service's retention
Role = Literal["admin", "lawyer", "field", "auditor"]


class UserCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role
    cases: list[str] = Field(default_factory=list, max_length=100)
    expires_days: int | None = Field(default=None, ge=1, le=MAX_DAYS)


class UserCreated(BaseModel):
    user_id: str
    pseudonym: str
    role: str
    token: str = Field(description="shown only this once; only its hash is stored")
    token_id: str
    expires_at: datetime | None


class TokenCreate(BaseModel):
    expires_days: int | None = Field(default=None, ge=1, le=MAX_DAYS)
    label: str | None = Field(default=None, max_length=200)


class TokenCreated(BaseModel):
    token_id: str
    token: str = Field(description="shown only this once; only its hash is stored")
    expires_at: datetime | None


class TokenOut(BaseModel):
    id: str
    label: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class UserOut(BaseModel):
    id: str
    name: str
    role: str
    pseudonym: str
    created_at: datetime
    tokens: list[TokenOut]


class PseudonymOut(BaseModel):
    user_id: str
    name: str
    role: str


def _expiry(now: datetime, days: int | None) -> datetime | None:
    return now + timedelta(days=days) if days else None


@router.post("/users", status_code=201, summary="Create a user, a member of `cases` (logged)")
async def post_user(body: UserCreate, context: Context, principal: CurrentPrincipal) -> UserCreated:
    require_role(principal, ADMIN)
    return await run_in_threadpool(_create_user, context, principal, body)


def _create_user(context: AppContext, principal: Principal, body: UserCreate) -> UserCreated:
    now = context.clock()
    try:
        made = create_user(
            context.engine,
            name=body.name,
            role=body.role,
            now=now,
            cases=body.cases,
            actor=principal.pseudonym,
            expires_at=_expiry(now, body.expires_days),
        )
    except ValueError as exc:  # an unknown case, or an auditor given cases
        raise Problem(
            422, "Cannot create user", str(exc), type_=problem_type("invalid-user")
        ) from exc
    return UserCreated(
        user_id=made.user_id,
        pseudonym=made.pseudonym,
        role=made.role,
        token=made.issued.token,
        token_id=made.issued.token_id,
        expires_at=made.issued.expires_at,
    )


@router.get("/users", summary="Every user and their tokens (never a token or its hash)")
async def get_users(context: Context, principal: CurrentPrincipal) -> list[UserOut]:
    require_role(principal, ADMIN)
    records = await run_in_threadpool(list_users, context.engine)
    return [
        UserOut(
            id=r.user.id,
            name=r.user.name,
            role=r.user.role,
            pseudonym=r.user.pseudonym or r.user.id,
            created_at=r.user.created_at,
            tokens=[_token_out(t) for t in r.tokens],
        )
        for r in records
    ]


def _token_out(token: ApiToken) -> TokenOut:
    return TokenOut(
        id=token.id,
        label=token.label,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
    )


@router.post("/users/{user_id}/tokens", status_code=201, summary="Issue a further token (logged)")
async def post_token(
    user_id: str, body: TokenCreate, context: Context, principal: CurrentPrincipal
) -> TokenCreated:
    require_role(principal, ADMIN)
    now = context.clock()
    try:
        issued = await run_in_threadpool(
            lambda: issue_token(
                context.engine,
                user_id=user_id,
                now=now,
                actor=principal.pseudonym,
                expires_at=_expiry(now, body.expires_days),
                label=body.label,
            )
        )
    except LookupError:
        raise not_found("user") from None
    return TokenCreated(token_id=issued.token_id, token=issued.token, expires_at=issued.expires_at)


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token (logged)")
async def delete_token(token_id: str, context: Context, principal: CurrentPrincipal) -> Response:
    require_role(principal, ADMIN)
    try:
        await run_in_threadpool(
            lambda: revoke_token(
                context.engine, token_id, now=context.clock(), actor=principal.pseudonym
            )
        )
    except LookupError:
        raise not_found("token") from None
    # This process forgets every token it trusted: the revoked one stops working here at
    # once (other processes look it up again within CUSTODY_AUTH_CACHE_SECONDS).
    context.tokens.clear()
    return Response(status_code=204)


@router.get(
    "/pseudonyms/{pseudonym}",
    summary="Who a pseudonym in the log is; the resolution is itself a custody event",
)
async def get_pseudonym(
    pseudonym: str, context: Context, principal: CurrentPrincipal
) -> PseudonymOut:
    require_role(principal, ADMIN)
    return await run_in_threadpool(_resolve, context, principal, pseudonym)


def _resolve(context: AppContext, principal: Principal, pseudonym: str) -> PseudonymOut:
    now = context.clock()
    with session_scope(context.engine) as session:
        user = session.exec(select(User).where(User.pseudonym == pseudonym)).first()
        if user is None:
            raise not_found("pseudonym")
        # Unmasking a collector is what the log must show happened, and who did it.
        append_admin_event(
            session,
            "pseudonym-resolved",
            actor=principal.pseudonym,
            now=now,
            target=pseudonym,
            role=user.role,
        )
        return PseudonymOut(user_id=user.id, name=user.name, role=user.role)
