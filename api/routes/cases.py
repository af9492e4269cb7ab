"""Cases: the unit of access. Membership decides who sees a case and its evidence."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlmodel import col, func, select
from starlette.concurrency import run_in_threadpool

from api.access import ADMIN, AUDITOR, LAWYER, forbidden, require_role
from api.auth import Principal
from api.context import AppContext, Context, CurrentPrincipal
from api.database import read_scope, session_scope
from api.ids import new_id
from api.problems import V1_RESPONSES, Problem, not_found, problem_type
from api.sequencer import append_admin_event
from api.tables import Case, CaseMember, Ingest, User

router = APIRouter(prefix="/v1/cases", tags=["cases"], responses=V1_RESPONSES)


class CaseCreate(BaseModel):
    title: str = Field(min_length=1, max_length=500)


class CaseOut(BaseModel):
    id: str
    title: str
    created_at: datetime
    ingest_count: int = 0


class MemberAdd(BaseModel):
    user_id: str = Field(min_length=1, max_length=64)


class MemberOut(BaseModel):
    user_id: str
    role: str
    pseudonym: str
    name: str | None = Field(default=None, description="shown to admins only")
    added_at: datetime


@router.post("", status_code=201, summary="Create a case (admins); its creator is a member")
async def create_case(body: CaseCreate, context: Context, principal: CurrentPrincipal) -> CaseOut:
    require_role(principal, ADMIN)
    now = context.clock()
    case = Case(
        id=new_id("c"),
        title=body.title.strip() or body.title,
        created_by=principal.user_id,
        created_at=now,
    )

    def insert() -> None:
        with session_scope(context.engine) as session:
            session.add(case)
            session.flush()
            session.add(
                CaseMember(
                    case_id=case.id, user_id=principal.user_id, added_by=principal.user_id,
                    added_at=now,
                )
            )  # fmt: skip
            actor = principal.pseudonym
            append_admin_event(session, "case-created", actor=actor, now=now, case=case.id)
            append_admin_event(
                session, "member-added", actor=actor, now=now, case=case.id,
                target=principal.pseudonym, role=principal.role,
            )  # fmt: skip

    await run_in_threadpool(insert)
    return CaseOut(id=case.id, title=case.title, created_at=case.created_at)


@router.get("", summary="The cases you are a member of (admins: every case)")
async def list_cases(context: Context, principal: CurrentPrincipal) -> list[CaseOut]:
    return await run_in_threadpool(_list_cases, context, principal)


def _list_cases(context: AppContext, principal: Principal) -> list[CaseOut]:
    with read_scope(context.engine) as session:
        query = select(Case).order_by(col(Case.created_at))
        if principal.role != ADMIN:
            query = query.join(CaseMember).where(CaseMember.user_id == principal.user_id)
        cases = session.exec(query).all()
    return [CaseOut(id=c.id, title=c.title, created_at=c.created_at) for c in cases]


@router.get("/{case_id}", summary="Read a case")
async def read_case(case_id: str, context: Context, principal: CurrentPrincipal) -> CaseOut:
    return await run_in_threadpool(_read_case, context, principal, case_id)


def _read_case(context: AppContext, principal: Principal, case_id: str) -> CaseOut:
    case = context.access.require_case(principal, case_id, manage=True)
    with read_scope(context.engine) as session:
        query = select(func.count()).where(Ingest.case_id == case_id)
        if principal.role == "field":
            query = query.where(Ingest.actor_id == principal.user_id)
        count = session.exec(query).one()
    return CaseOut(id=case.id, title=case.title, created_at=case.created_at, ingest_count=count)


@router.get("/{case_id}/members", summary="The case's members (admins and the case's lawyers)")
async def list_members(
    case_id: str, context: Context, principal: CurrentPrincipal
) -> list[MemberOut]:
    return await run_in_threadpool(_members, context, principal, case_id)


def _members(context: AppContext, principal: Principal, case_id: str) -> list[MemberOut]:
    context.access.require_case(principal, case_id, manage=True)
    if principal.role not in (ADMIN, LAWYER):
        raise forbidden("Only admins and the case's lawyers see its members.")
    with read_scope(context.engine) as session:
        rows = session.exec(
            select(CaseMember, User)
            .join(User, col(User.id) == col(CaseMember.user_id))
            .where(CaseMember.case_id == case_id)
            .order_by(col(CaseMember.added_at))
        ).all()
    return [
        MemberOut(
            user_id=user.id,
            role=user.role,
            pseudonym=user.pseudonym or user.id,
            name=user.name if principal.role == ADMIN else None,
            added_at=member.added_at,
        )
        for member, user in rows
    ]


@router.post("/{case_id}/members", status_code=201, summary="Add a member (admins; logged)")
async def add_member(
    case_id: str, body: MemberAdd, context: Context, principal: CurrentPrincipal
) -> MemberOut:
    return await run_in_threadpool(_add_member, context, principal, case_id, body.user_id)


def _add_member(context: AppContext, principal: Principal, case_id: str, user_id: str) -> MemberOut:
    context.access.require_case(principal, case_id, manage=True)
    require_role(principal, ADMIN)
    now = context.clock()
    with session_scope(context.engine) as session:
        user = session.get(User, user_id)
        if user is None:
            raise not_found("user")
        if user.role == AUDITOR:
            raise Problem(
                422,
                "Auditors are members of no case",
                "Auditors read the log and its proofs; add a lawyer or field account instead.",
                type_=problem_type("auditor-not-member"),
            )
        member = session.get(CaseMember, (case_id, user_id))
        if member is None:
            member = CaseMember(case_id=case_id, user_id=user_id, added_by=principal.user_id,
                                added_at=now)  # fmt: skip
            session.add(member)
            append_admin_event(
                session, "member-added", actor=principal.pseudonym, now=now, case=case_id,
                target=user.pseudonym or user.id, role=user.role,
            )  # fmt: skip
        return MemberOut(
            user_id=user.id, role=user.role, pseudonym=user.pseudonym or user.id, name=user.name,
            added_at=member.added_at,
        )  # fmt: skip


@router.delete(
    "/{case_id}/members/{user_id}", status_code=204, summary="Remove a member (admins; logged)"
)
async def remove_member(
    case_id: str, user_id: str, context: Context, principal: CurrentPrincipal
) -> Response:
    await run_in_threadpool(_remove_member, context, principal, case_id, user_id)
    return Response(status_code=204)


def _remove_member(context: AppContext, principal: Principal, case_id: str, user_id: str) -> None:
    context.access.require_case(principal, case_id, manage=True)
    require_role(principal, ADMIN)
    now = context.clock()
    with session_scope(context.engine) as session:
        member = session.get(CaseMember, (case_id, user_id))
        user = session.get(User, user_id)
        if member is None or user is None:
            raise not_found("member")
        session.delete(member)
        append_admin_event(
            session, "member-removed", actor=principal.pseudonym, now=now, case=case_id,
            target=user.pseudonym or user.id, role=user.role,
        )  # fmt: skip
