"""Evidence: streaming ingest (raw PUT, multipart POST) and reading originals back."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from email.message import Message
from typing import Any, BinaryIO

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from api.access import MAX_PURPOSE, READERS
from api.auth import Principal
from api.context import AppContext, Context, CurrentPrincipal, Uploader
from api.downloads import download_response, is_sha256, open_logged
from api.evidence import IngestRequest, IngestResult, View
from api.multipart import MultipartError, MultipartReader
from api.problems import V1_RESPONSES, Problem, not_found, problem_doc, problem_type
from api.receipts import TimestampOut
from api.sidecar import sensitive_json
from api.staging import StagedFile, Stager, UploadTooLargeError
from custody.digests import (
    DeclaredDigest,
    algorithms_needed,
    check_declared,
    parse_digest_field,
)
from custody.events import Subject, decode_entry
from custody.filenames import sanitize_filename

router = APIRouter(tags=["evidence"], responses=V1_RESPONSES)
MULTIPART_OVERHEAD = 1024 * 1024  # headers and boundaries around the file part


class CustodyEventOut(BaseModel):
    type: str = Field(description="ingested, derived, accessed, exported, ...")
    index: int = Field(description="the entry's position in the log: prove it with a receipt")
    time: str = Field(description="the server's time in the entry")
    trusted_time: datetime | None = Field(description="RFC 3161 time of its first checkpoint")
    actor: str = Field(description="the actor's pseudonym")
    case_id: str | None
    sha256: str | None = Field(description="the bytes the event is about")
    access: str | None = Field(description="for reads: original, copy or metadata")
    purpose: str | None = Field(
        description="for reads: the stated purpose (to lawyers and admins of the event's case only)"
    )
    purpose_key: str | None = Field(
        description="for reads with a purpose, shown with it: the hex key under which the "
        "entry's purpose_hmac_sha256 is the HMAC-SHA256 of the purpose's UTF-8 text, so that "
        "the entry can be shown to commit to it; null for an entry with a plain purpose_sha256"
    )
    entry: dict[str, Any] = Field(description="the log entry as logged")


class IngestOut(BaseModel):
    sha256: str
    size: int
    media_type: str
    declared_media_type: str | None
    digests: dict[str, str]
    case_id: str
    index: int
    event_id: str
    received_at: datetime
    stored: bool = Field(
        description="false when you could already read these bytes (an earlier ingest of yours "
        "or of your case); else true, as for bytes never seen"
    )
    receipt: str | None = Field(
        default=None, description="C2SP tlog-proof receipt; absent when the answer is 202"
    )
    receipt_url: str = Field(description="where the receipt can be fetched at any time")
    timestamps: list[TimestampOut] = Field(
        default_factory=list, description="RFC 3161 tokens over the receipt's checkpoint"
    )
    timestamps_pending: list[str] = Field(
        default_factory=list, description="TSAs whose token over that checkpoint is pending"
    )
    trusted_time: datetime | None = Field(
        default=None,
        description="the earliest token time of the first checkpoint covering the entry",
    )
    metadata: dict[str, Any] = Field(
        description="what was read from the file (sealed; never in the log) and the warnings"
    )


_UPLOAD_DOC: dict[str, Any] = {
    "responses": {
        201: {"description": "Sealed, indexed, logged, and covered by a checkpoint: a receipt"},
        202: {"description": "Sealed, indexed and logged; fetch the receipt at receipt_url"},
        400: problem_doc("Empty body, malformed digest header or form"),
        404: problem_doc("No such case"),
        413: problem_doc("Larger than the configured limit"),
        422: problem_doc("The bytes do not match the declared digest; nothing stored"),
        503: problem_doc("The object store failed; nothing recorded"),
    }
}


@router.put(
    "/v1/cases/{case_id}/evidence",
    status_code=201,
    summary="Ingest one file (raw body)",
    **_UPLOAD_DOC,
)
async def put_evidence(
    case_id: str,
    request: Request,
    context: Context,
    principal: Uploader,
    response: Response,
    filename: str | None = Query(default=None, description="used if no Content-Disposition"),
) -> IngestOut:
    declared = _declared_digests(request)
    _check_length(request, context.settings.max_upload_bytes)
    async with _staging(context, declared) as stager:
        async for chunk in request.stream():
            await stager.feed(chunk)
        staged = await stager.finish()
        name = _disposition_filename(request.headers.get("content-disposition")) or filename
        ingest = IngestRequest(
            case_id,
            principal.user_id,
            sanitize_filename(name),
            request.headers.get("content-type"),
            principal.pseudonym,
        )
        out = await _seal(context, principal, staged, declared, ingest)
    return await _attach_receipt(context, out, response)


@router.post(
    "/v1/cases/{case_id}/evidence",
    status_code=201,
    summary="Ingest one file (multipart/form-data, field 'file'; optional field 'digest')",
    **_UPLOAD_DOC,
)
async def post_evidence(
    case_id: str,
    request: Request,
    context: Context,
    principal: Uploader,
    response: Response,
) -> IngestOut:
    _check_length(request, context.settings.max_upload_bytes + MULTIPART_OVERHEAD)
    try:
        reader = MultipartReader(request.headers.get("content-type", ""))
    except MultipartError as exc:
        raise _bad_form(str(exc)) from exc
    async with _staging(context, []) as stager:
        async for chunk in request.stream():
            for data in _read_form(reader, chunk):
                await stager.feed(data)
        _finish_form(reader)
        staged = await stager.finish()
        declared = _form_digests(reader.fields.get("digest"))
        ingest = IngestRequest(
            case_id,
            principal.user_id,
            sanitize_filename(reader.filename),
            reader.file_content_type,
            principal.pseudonym,
        )
        out = await _seal(context, principal, staged, declared, ingest)
    return await _attach_receipt(context, out, response)


async def _seal(
    context: AppContext,
    principal: Principal,
    staged: StagedFile,
    declared: list[DeclaredDigest],
    ingest: IngestRequest,
) -> IngestOut:
    if staged.size == 0:
        raise Problem(
            400,
            "Empty upload",
            "The request carried no bytes; attach the file.",
            type_=problem_type("empty-upload"),
        )
    check_declared(declared, staged.digests)
    result = await run_in_threadpool(_ingest, context, principal, staged, ingest)
    return _ingest_out(result, staged.digests)


def _ingest(
    context: AppContext, principal: Principal, staged: StagedFile, ingest: IngestRequest
) -> IngestResult:
    """Ingest, answering `stored=false` only to an uploader who could already read the
    bytes: to anyone else it would say that some other case holds them."""
    result = context.evidence.ingest(staged, ingest, now=context.clock())
    if result.stored or context.access.could_read(
        principal, result.sha256, besides=result.event_id
    ):
        return result
    return replace(result, stored=True)


async def _attach_receipt(context: AppContext, out: IngestOut, response: Response) -> IngestOut:
    """Wait (bounded) for a checkpoint covering the entry, then for its timestamps within
    the same budget (a TSA that is down is listed as pending); else answer 202 with a URL."""
    deadline = time.monotonic() + context.settings.receipt_wait_seconds
    if not await context.watcher.wait_for(out.index + 1, deadline - time.monotonic()):
        response.status_code = 202
        return out
    size = context.watcher.size
    await context.stamp_watcher.wait_for(size, deadline - time.monotonic())
    receipt = await context.receipts.receipt(out.index, size)
    out.receipt = receipt.receipt
    out.timestamps = receipt.timestamps
    out.timestamps_pending = receipt.timestamps_pending
    out.trusted_time = receipt.trusted_time
    return out


def _ingest_out(result: IngestResult, digests: dict[str, str]) -> IngestOut:
    return IngestOut(
        sha256=result.sha256,
        size=result.size,
        media_type=result.media_type,
        declared_media_type=result.declared_media_type,
        digests=digests,
        case_id=result.case_id,
        index=result.index,
        event_id=result.event_id,
        received_at=result.received_at,
        stored=result.stored,
        receipt_url=f"/v1/log/entries/{result.index}/receipt",
        metadata={
            "sha256": result.metadata_sha256,
            "sensitive": sensitive_json(result.metadata.sensitive),
            "fields": dict(result.metadata.fields),
            "errors": list(result.metadata.errors),
        },
    )


PURPOSE = Query(
    default=None,
    max_length=MAX_PURPOSE,
    description="why you read it (kept with the `accessed` event; the log holds its hash)",
)


@router.get("/v1/evidence/{sha256}", summary="An original's record and custody events")
async def read_evidence(
    sha256: str, context: Context, principal: CurrentPrincipal
) -> dict[str, Any]:
    _require_hash_shape(sha256)
    return await run_in_threadpool(_describe, context, principal, sha256)


def _describe(context: AppContext, principal: Principal, sha256: str) -> dict[str, Any]:
    described = context.evidence.describe(sha256, context.access.view(principal, sha256))
    times = context.log.trusted_times(event["index"] for event in described["events"])
    for event in described["events"]:
        event["trusted_time"] = times[event["index"]]
    return described


@router.get(
    "/v1/evidence/{sha256}/custody",
    summary="The item's chain of custody: every event about it and its copies, in log order",
)
async def read_custody(
    sha256: str, context: Context, principal: CurrentPrincipal
) -> list[CustodyEventOut]:
    _require_hash_shape(sha256)
    return await run_in_threadpool(_custody, context, principal, sha256)


def _custody(context: AppContext, principal: Principal, sha256: str) -> list[CustodyEventOut]:
    view = context.access.view(principal, sha256, auditors=True)
    events = context.evidence.history(sha256, view)
    times = context.log.trusted_times(event.index for event in events)
    # A purpose is for the readers of its case: an admin sees every case's events, as an
    # auditor does, but the purposes only of the cases it is a member of.
    readers_of = context.access.visible_cases(principal) if principal.role in READERS else set()
    purposes = context.access.purposes(
        event.event_id for event in events if event.case_id in readers_of
    )
    history = []
    for event in events:
        entry = decode_entry(event.entry)
        stated = purposes.get(event.event_id)
        history.append(
            CustodyEventOut(
                type=event.type,
                index=event.index,
                time=entry["time"],
                trusted_time=times[event.index],
                actor=entry["actor"],
                case_id=event.case_id,
                sha256=event.subject_sha256,
                access=entry.get("access", {}).get("kind"),
                purpose=stated.text if stated else None,
                purpose_key=stated.key if stated else None,
                entry=entry,
            )
        )
    return history


@router.get("/v1/evidence/{sha256}/metadata", summary="The original's sealed metadata sidecar")
async def read_metadata(
    sha256: str, context: Context, principal: CurrentPrincipal, purpose: str | None = PURPOSE
) -> dict[str, Any]:
    _require_hash_shape(sha256)
    return await run_in_threadpool(_metadata, context, principal, sha256, purpose)


def _metadata(
    context: AppContext, principal: Principal, sha256: str, purpose: str | None
) -> dict[str, Any]:
    # A field account: its own uploads only.
    view, _, subject = context.access.readable_original(principal, sha256)
    sidecar = context.evidence.metadata(sha256)
    _log_read(context, principal, view, subject, "metadata", purpose)
    return sidecar


@router.get(
    "/v1/evidence/{sha256}/content",
    summary="Stream the original back, byte-identical (the read is logged first)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def read_content(
    sha256: str, context: Context, principal: CurrentPrincipal, purpose: str | None = PURPOSE
) -> Response:
    _require_hash_shape(sha256)
    body, size = await run_in_threadpool(_content, context, principal, sha256, purpose)
    return download_response(body, size=size, sha256=sha256)


def _content(
    context: AppContext, principal: Principal, sha256: str, purpose: str | None
) -> tuple[bytes | BinaryIO, int]:
    view, key, subject = context.access.readable_original(principal, sha256)
    context.access.require_reader(principal, "originals")
    body = open_logged(
        context.store,
        key,
        size=subject.size,
        what="evidence content",
        record=lambda: _log_read(context, principal, view, subject, "original", purpose),
    )
    return body, subject.size


def _log_read(
    context: AppContext,
    principal: Principal,
    view: View,
    subject: Subject,
    kind: str,
    purpose: str | None,
) -> None:
    """The `accessed` event, appended (and committed) before any byte is sent."""
    context.access.record_access(
        principal,
        case_id=min(view.cases),
        subject=subject,
        kind=kind,
        purpose=purpose,
        now=context.clock(),
    )


def _require_hash_shape(sha256: str) -> None:
    # Any identifier that names nothing is a 404, whatever its shape.
    if not is_sha256(sha256):
        raise not_found("evidence")


@asynccontextmanager
async def _staging(context: AppContext, declared: list[DeclaredDigest]) -> AsyncIterator[Stager]:
    """A stager whose file is removed however the request ends (done, refused, cut off)."""
    algorithms = set(context.settings.extra_digests) | algorithms_needed(declared)
    stager = Stager(
        context.settings.resolved_staging_dir,
        algorithms=algorithms,
        max_bytes=context.settings.max_upload_bytes,
    )
    try:
        yield stager
    except UploadTooLargeError as exc:
        raise _too_large(exc.limit) from exc
    except ClientDisconnect as exc:
        # Nobody is left to read an answer; this one only ends the request quietly.
        raise Problem(
            400,
            "Client disconnected",
            "The upload was cut off; nothing was stored.",
            type_=problem_type("client-disconnected"),
        ) from exc
    finally:
        if stager.on_disk:
            await run_in_threadpool(stager.discard)


def _declared_digests(request: Request) -> list[DeclaredDigest]:
    declared: list[DeclaredDigest] = []
    for header in ("repr-digest", "content-digest"):
        value = request.headers.get(header)
        if value is not None:
            declared += parse_digest_field(header.title(), value)
    return declared


def _form_digests(value: str | None) -> list[DeclaredDigest]:
    return parse_digest_field("digest (form field)", value) if value is not None else []


def _check_length(request: Request, limit: int) -> None:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(limit)


def _too_large(limit: int) -> Problem:
    return Problem(
        413,
        "Upload too large",
        f"The file is larger than this server's limit of {limit} bytes. "
        "Ask the operator to raise CUSTODY_MAX_UPLOAD_BYTES.",
        type_=problem_type("too-large"),
        limit=limit,
    )


def _bad_form(detail: str) -> Problem:
    return Problem(400, "Malformed form", f"{detail}.", type_=problem_type("malformed-form"))


def _read_form(reader: MultipartReader, chunk: bytes) -> list[bytes]:
    try:
        return reader.write(chunk)
    except MultipartError as exc:
        raise _bad_form(str(exc)) from exc


def _finish_form(reader: MultipartReader) -> None:
    try:
        reader.finish()
    except MultipartError as exc:
        raise _bad_form(str(exc)) from exc


def _disposition_filename(value: str | None) -> str | None:
    if not value:
        return None
    message = Message()
    message["content-disposition"] = value
    name = message.get_filename()
    return name if isinstance(name, str) else None
