"""Cases: the unit that groups evidence (and, later, access)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlmodel import func, select
from starlette.concurrency import run_in_threadpool

from api.context import AppContext, Context, CurrentPrincipal
from api.database import read_scope, session_scope
from api.ids import new_id
from api.problems import V1_RESPONSES, not_found
from api.tables import Case, Ingest

router = APIRouter(prefix="/v1/cases", tags=["cases"], responses=V1_RESPONSES)


class CaseCreate(BaseModel):
    title: str = Field(min_length=1, max_length=500)


class CaseOut(BaseModel):
    id: str
    title: str
    created_at: datetime
    ingest_count: int = 0


@router.post("", status_code=201, summary="Create a case")
async def create_case(body: CaseCreate, context: Context, principal: CurrentPrincipal) -> CaseOut:
    case = Case(
        id=new_id("c"),
        title=body.title.strip() or body.title,
        created_by=principal.user_id,
        created_at=context.clock(),
    )

    def insert() -> None:
        with session_scope(context.engine) as session:
            session.add(case)

    await run_in_threadpool(insert)
    return CaseOut(id=case.id, title=case.title, created_at=case.created_at)


@router.get("/{case_id}", summary="Read a case")
async def read_case(case_id: str, context: Context, _: CurrentPrincipal) -> CaseOut:
    return await run_in_threadpool(_read_case, context, case_id)


def _read_case(context: AppContext, case_id: str) -> CaseOut:
    with read_scope(context.engine) as session:
        case = session.get(Case, case_id)
        if case is None:
            raise not_found("case")
        count = session.exec(select(func.count()).where(Ingest.case_id == case_id)).one()
    return CaseOut(id=case.id, title=case.title, created_at=case.created_at, ingest_count=count)
