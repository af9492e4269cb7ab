"""Sharing copies: make one from an original, read its record, download it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, BinaryIO

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.access import FIELD, MAX_PURPOSE
from api.auth import Principal
from api.context import AppContext, Context, CurrentPrincipal
from api.downloads import download_response, is_sha256, open_logged
from api.problems import V1_RESPONSES, not_found, problem_doc
from api.tables import SharingCopy
from custody.events import Subject

router = APIRouter(tags=["copies"], responses=V1_RESPONSES)


class CopyRequest(BaseModel):
    profile: str = Field(default="share", description="the only profile so far: share")
    case_id: str | None = Field(default=None, description="the case the copy is made for")


class CopyOut(BaseModel):
    sha256: str
    size: int
    media_type: str
    original: str
    case_id: str
    profile: str
    tool: str
    removed: list[str]
    content: dict[str, str]
    index: int
    created_at: datetime
    receipt_url: str


@router.post(
    "/v1/evidence/{sha256}/copies",
    status_code=201,
    summary="Make a sharing copy",
    responses={
        415: problem_doc("No stripper for this format; `supported` lists those there are"),
        422: problem_doc("The copy could not be proven clean; nothing stored or logged"),
    },
)
async def create_copy(
    sha256: str, body: CopyRequest, context: Context, principal: CurrentPrincipal
) -> CopyOut:
    _require_hash(sha256)
    if body.profile != "share":
        raise not_found("profile")
    case_id = await run_in_threadpool(_copy_case, context, principal, sha256, body.case_id)
    result = await run_in_threadpool(
        context.copies.make,
        sha256,
        actor=principal,
        case_id=case_id,
        now=context.clock(),
    )
    made = result.copy
    return CopyOut(
        sha256=made.sha256,
        size=made.size,
        media_type=result.media_type,
        original=result.original,
        case_id=result.case_id,
        profile=body.profile,
        tool=made.stripper,
        removed=list(made.report.removed),
        content={"kind": made.report.content_kind, "sha256": made.report.content_digest},
        index=result.index,
        created_at=result.created_at,
        receipt_url=f"/v1/log/entries/{result.index}/receipt",
    )


def _copy_case(context: AppContext, principal: Principal, sha256: str, asked: str | None) -> str:
    """The case the copy is made for: one the principal reads the original in."""
    view = context.access.view(principal, sha256)
    context.access.require_reader(principal, "originals or make copies of them")
    if asked is None:
        return min(view.cases)
    if asked not in view.cases:
        raise not_found("case")
    return asked


@router.get("/v1/copies/{sha256}", summary="A sharing copy's record")
async def read_copy(sha256: str, context: Context, principal: CurrentPrincipal) -> dict[str, Any]:
    _require_hash(sha256)
    _, copy = await run_in_threadpool(_visible_copy, context, principal, sha256)
    return context.copies.describe(copy)


def _visible_copy(
    context: AppContext, principal: Principal, sha256: str
) -> tuple[str, SharingCopy]:
    case_id, copy = context.access.copy_case(principal, sha256)
    if principal.role == FIELD:  # a copy names its original: field accounts see their own only
        context.access.view(principal, copy.original_sha256)
    return case_id, copy


@router.get(
    "/v1/copies/{sha256}/content",
    summary="Download a sharing copy",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def read_copy_content(
    sha256: str,
    context: Context,
    principal: CurrentPrincipal,
    purpose: str | None = Query(default=None, max_length=MAX_PURPOSE, description="why"),
) -> Response:
    _require_hash(sha256)
    body, size = await run_in_threadpool(_copy_content, context, principal, sha256, purpose)
    return download_response(body, size=size, sha256=sha256)


def _copy_content(
    context: AppContext, principal: Principal, sha256: str, purpose: str | None
) -> tuple[bytes | BinaryIO, int]:
    case_id, copy = _visible_copy(context, principal, sha256)
    context.access.require_reader(principal, "sharing copies")
    subject = Subject(copy.sha256, copy.size, copy.media_type)
    body = open_logged(
        context.store,
        copy.storage_key,
        size=copy.size,
        what="copy content",
        record=lambda: context.access.record_access(
            principal,
            case_id=case_id,
            subject=subject,
            kind="copy",
            purpose=purpose,
            now=context.clock(),
        ),
    )
    return body, copy.size


def _require_hash(sha256: str) -> None:
    if not is_sha256(sha256):
        raise not_found("evidence")
