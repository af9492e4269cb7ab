"""Exhibit bundles: request one for a case, follow its build, download the sealed bag."""

from __future__ import annotations

import json
from datetime import datetime
from typing import BinaryIO

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.access import MAX_PURPOSE
from api.auth import Principal
from api.context import AppContext, Context, CurrentPrincipal
from api.downloads import download_response, open_logged
from api.exports import BAG_MEDIA_TYPE, READY, bag_root
from api.problems import V1_RESPONSES, Problem, problem_doc, problem_type
from api.tables import ExportJob
from custody.events import Subject

router = APIRouter(tags=["exports"], responses=V1_RESPONSES)


class ExportRequestIn(BaseModel):
    items: list[str] = Field(
        description="SHA-256s of originals and/or sharing copies of this case, in exhibit order"
    )
    purpose: str = Field(
        description="what the bundle is for and for whom; kept in the bag, hashed in the log"
    )


class ExportOut(BaseModel):
    id: str
    case_id: str
    status: str = Field(description="building, ready or failed")
    purpose: str
    items: list[str]
    created_by: str = Field(description="the exporter's pseudonym")
    created_at: datetime
    updated_at: datetime
    error: str | None = Field(description="why the build failed, if it did")
    manifest_sha256: str | None = Field(
        description="SHA-256 of the bag's manifest-sha256.txt, as its `exported` entries carry"
    )
    checkpoint_size: int | None = Field(description="the checkpoint the bag's proofs are under")
    bag_sha256: str | None = Field(description="SHA-256 of the zip")
    bag_size: int | None
    filename: str = Field(description="the zip's name")
    status_url: str
    download_url: str


@router.post(
    "/v1/cases/{case_id}/exports",
    status_code=202,
    summary="Export an exhibit bundle (BagIt, zipped, signed and timestamped); built in the "
    "background",
    responses={
        403: problem_doc("Your role may not export (lawyers and admins who are members may)"),
        404: problem_doc("No such case, or you are not a member"),
        422: problem_doc("No items, malformed or repeated hashes, items not in this case"),
    },
)
async def create_export(
    case_id: str,
    body: ExportRequestIn,
    context: Context,
    principal: CurrentPrincipal,
    response: Response,
) -> ExportOut:
    job = await run_in_threadpool(
        context.exports.request,
        principal,
        case_id,
        items=body.items,
        purpose=body.purpose,
        max_items=context.settings.export_max_items,
        now=context.clock(),
        build=context.bundler.build,
    )
    response.headers["Location"] = f"/v1/exports/{job.id}/status"
    return export_out(job)


@router.get("/v1/cases/{case_id}/exports", summary="The case's exports")
async def list_exports(
    case_id: str, context: Context, principal: CurrentPrincipal
) -> list[ExportOut]:
    jobs = await run_in_threadpool(context.exports.case_jobs, principal, case_id)
    return [export_out(job) for job in jobs]


@router.get("/v1/exports/{export_id}/status", summary="An export's state")
async def export_status(export_id: str, context: Context, principal: CurrentPrincipal) -> ExportOut:
    job = await run_in_threadpool(context.exports.job, principal, export_id, now=context.clock())
    return export_out(job)


@router.get(
    "/v1/exports/{export_id}",
    summary="Download the bag (the download is logged first)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {BAG_MEDIA_TYPE: {}}},
        409: problem_doc("Still building (retry later) or failed (see `error`; export again)"),
    },
)
async def download_export(
    export_id: str,
    context: Context,
    principal: CurrentPrincipal,
    purpose: str | None = Query(default=None, max_length=MAX_PURPOSE, description="why"),
) -> Response:
    body, size, sha256 = await run_in_threadpool(_download, context, principal, export_id, purpose)
    response = download_response(body, size=size, sha256=sha256)
    response.headers["Content-Type"] = BAG_MEDIA_TYPE
    response.headers["Content-Disposition"] = f'attachment; filename="{bag_root(export_id)}.zip"'
    return response


def _download(
    context: AppContext, principal: Principal, export_id: str, purpose: str | None
) -> tuple[bytes | BinaryIO, int, str]:
    """The sealed bag (opened, or read if small), its size and SHA-256, once the download
    is logged."""
    job = context.exports.job(principal, export_id, now=context.clock())
    key, size, sha256 = job.storage_key, job.bag_size, job.bag_sha256
    if job.status != READY or key is None or size is None or sha256 is None:
        building = job.status != "failed"
        raise Problem(
            409,
            "Export not ready" if building else "Export failed",
            f"The bag is still being built; poll /v1/exports/{job.id}/status and download it "
            "when its status is ready."
            if building
            else f"The bag could not be built: {job.error}. Request the export again.",
            type_=problem_type("export-not-ready" if building else "export-failed"),
            export_status=job.status,
            headers={"Retry-After": "2"} if building else None,
        )
    body = open_logged(
        context.store,
        key,
        size=size,
        what="export",
        record=lambda: context.access.record_access(
            principal,
            case_id=job.case_id,
            subject=Subject(sha256, size, BAG_MEDIA_TYPE),
            kind="export",
            purpose=purpose,
            now=context.clock(),
        ),
    )
    return body, size, sha256


def export_out(job: ExportJob) -> ExportOut:
    return ExportOut(
        id=job.id,
        case_id=job.case_id,
        status=job.status,
        purpose=job.purpose,
        items=json.loads(job.items_json),
        created_by=job.actor,
        created_at=job.created_at,
        updated_at=job.updated_at,
        error=job.error,
        manifest_sha256=job.manifest_sha256,
        checkpoint_size=job.checkpoint_size,
        bag_sha256=job.bag_sha256,
        bag_size=job.bag_size,
        filename=f"{bag_root(job.id)}.zip",
        status_url=f"/v1/exports/{job.id}/status",
        download_url=f"/v1/exports/{job.id}",
    )
