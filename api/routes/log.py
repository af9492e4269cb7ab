"""The custody log for auditors: checkpoints, entries, proofs, receipts, and raw tlog-tiles."""

from __future__ import annotations

import base64

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from sqlmodel import col, func, select
from starlette.concurrency import run_in_threadpool

from api.access import ADMIN, AUDITOR, require_role
from api.auth import Principal, unauthorized
from api.context import AppContext, Context, OptionalPrincipal
from api.database import read_scope
from api.downloads import is_sha256
from api.problems import V1_RESPONSES, not_found, problem_doc
from api.ratelimit import client_address, too_many_requests
from api.receipts import TimestampOut, build_receipt, timestamps_out
from api.tables import LogEvent
from api.tsa import REPLY_TYPE
from custody.errors import TileError
from custody.note import format_vkey
from custody.tiles import parse_path

router = APIRouter(tags=["log"], responses=V1_RESPONSES)
raw = APIRouter(tags=["tlog-tiles"])
TEXT = "text/plain; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"


class InclusionProof(BaseModel):
    index: int
    size: int
    proof: list[str]  # base64 hashes, RFC 9162 §2.1.3 order


class ConsistencyProof(BaseModel):
    old: int
    new: int
    proof: list[str]


def _b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hashes]


@router.get(
    "/v1/log/checkpoint",
    summary="The latest signed checkpoint (C2SP tlog-checkpoint)",
    response_class=Response,
    responses={200: {"content": {TEXT: {}}}},
)
async def get_checkpoint(context: Context) -> Response:
    data = await run_in_threadpool(context.log.checkpoint)
    return Response(data, media_type=TEXT, headers={"Cache-Control": "no-cache"})


@router.get(
    "/v1/log/checkpoints/{size}",
    summary="An archived signed checkpoint",
    response_class=Response,
    responses={200: {"content": {TEXT: {}}}},
)
async def get_archived_checkpoint(size: int, context: Context) -> Response:
    data = await run_in_threadpool(context.log.checkpoint, size)
    return Response(data, media_type=TEXT, headers={"Cache-Control": IMMUTABLE})


class ArchivedCheckpoints(BaseModel):
    sizes: list[int]


@router.get("/v1/log/checkpoints", summary="Sizes of every archived checkpoint")
async def list_checkpoints(context: Context) -> ArchivedCheckpoints:
    return ArchivedCheckpoints(sizes=await run_in_threadpool(context.log.archived_sizes))


@router.get(
    "/v1/log/vkey",
    summary="The log's verifier key (C2SP signed-note vkey)",
    response_class=Response,
    responses={200: {"content": {TEXT: {}}}},
)
async def get_vkey(context: Context) -> Response:
    return Response(format_vkey(context.log.verifier) + "\n", media_type=TEXT)


@router.get(
    "/v1/log/entries/{index}",
    summary="One log entry: its RFC 8785 JSON bytes",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
async def get_entry(index: str, context: Context, principal: OptionalPrincipal) -> Response:
    await run_in_threadpool(_require_entry, context, principal, _index(index))
    data = await run_in_threadpool(context.log.entry, _index(index))
    return Response(data, media_type="application/json", headers={"Cache-Control": IMMUTABLE})


@router.get(
    "/v1/log/entries/{index}/receipt",
    summary="The entry's receipt: C2SP tlog-proof text, or JSON with its RFC 3161 timestamps",
    description="`Accept: application/json` gives the tlog-proof together with the RFC 3161 "
    "tokens over its checkpoint, the TSAs still pending, and the entry's trusted time.",
    response_class=Response,
    responses={
        200: {
            "content": {
                TEXT: {},
                "application/json": {"schema": {"$ref": "#/components/schemas/ReceiptOut"}},
            }
        }
    },
)
async def get_receipt(
    index: str, request: Request, context: Context, principal: OptionalPrincipal
) -> Response:
    await run_in_threadpool(_require_entry, context, principal, _index(index))
    if "application/json" in request.headers.get("accept", ""):
        receipt = await run_in_threadpool(build_receipt, context.log, _index(index))
        return Response(receipt.model_dump_json(), media_type="application/json")
    _size, text = await run_in_threadpool(context.log.receipt, _index(index))
    return Response(text, media_type=TEXT)


@router.get(
    "/v1/log/checkpoints/{size}/timestamps",
    summary="RFC 3161 tokens over an archived checkpoint, with their TSA chains",
    description="Each token is over the SHA-256 of the bytes of GET /v1/log/checkpoints/{size}: "
    "`openssl ts -verify -data CHECKPOINT -token_in -in TOKEN.der -CAfile ROOT.pem`.",
)
async def get_timestamps(size: int, context: Context) -> list[TimestampOut]:
    await run_in_threadpool(context.log.checkpoint, size)  # 404 if there is no such checkpoint
    timestamps = await run_in_threadpool(context.log.timestamps, size)
    return timestamps_out(timestamps)


@router.get("/v1/log/proofs/inclusion", summary="RFC 9162 inclusion proof")
async def get_inclusion(
    context: Context,
    principal: OptionalPrincipal,
    index: int = Query(ge=0),
    size: int = Query(ge=1),
) -> InclusionProof:
    await run_in_threadpool(_require_entry, context, principal, index)
    proof = await run_in_threadpool(context.log.inclusion, index, size)
    return InclusionProof(index=index, size=size, proof=_b64(proof))


@router.get("/v1/log/proofs/consistency", summary="RFC 9162 consistency proof")
async def get_consistency(
    context: Context, old: int = Query(ge=1), new: int = Query(ge=1)
) -> ConsistencyProof:
    proof = await run_in_threadpool(context.log.consistency, old, new)
    return ConsistencyProof(old=old, new=new, proof=_b64(proof))


class LookupOut(BaseModel):
    in_log: bool
    index: int | None  # the first entry naming these bytes (as an original or a copy)


@router.get(
    "/v1/log/lookup/{sha256}",
    summary="Is this hash in the log? (for courts; off unless CUSTODY_HASH_LOOKUP_ENABLED)",
    responses={429: problem_doc("Too many lookups from your address; see Retry-After")},
)
async def lookup(sha256: str, request: Request, context: Context) -> LookupOut:
    if not context.settings.hash_lookup_enabled:
        raise not_found("lookup service")
    # A hash is sensitive (it says we hold those bytes): answering costs the asker time.
    window = context.limits.window("hash-lookup", context.settings.hash_lookup_per_minute)
    wait = window.acquire(client_address(request))
    if wait is not None:
        raise too_many_requests(wait)
    digest = sha256.lower()
    if not is_sha256(digest):
        return LookupOut(in_log=False, index=None)
    index = await run_in_threadpool(_first_index, context, digest)
    return LookupOut(in_log=index is not None, index=index)


def _first_index(context: AppContext, sha256: str) -> int | None:
    with read_scope(context.engine) as session:
        first = session.exec(
            select(func.min(col(LogEvent.index))).where(
                LogEvent.subject_sha256 == sha256,
                col(LogEvent.type).in_(("ingested", "derived")),
            )
        ).one()
    return None if first is None else int(first)


@raw.get(
    "/log/{path:path}",
    summary="tlog-tiles objects exactly as stored (read-only)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}, TEXT: {}, REPLY_TYPE: {}}}},
)
async def get_raw(path: str, context: Context, principal: OptionalPrincipal) -> Response:
    if path == "checkpoint" or _is_archive(path) or _is_token(path):
        data = await run_in_threadpool(context.log.log_store.read_optional, path)
        if data is None:
            raise not_found("log object")
        cache = "no-cache" if path == "checkpoint" else IMMUTABLE
        kind = REPLY_TYPE if _is_token(path) else TEXT
        return Response(data, media_type=kind, headers={"Cache-Control": cache})
    try:
        parse_path(path)
    except TileError:
        raise not_found("log object") from None
    if not context.settings.log_public:
        # Tiles and bundles hash and hold every entry: auditors' material.
        require_principal(principal)
        assert principal is not None
        require_role(principal, ADMIN, AUDITOR)
    data = await run_in_threadpool(context.log.log_store.read_optional, path)
    if data is None:
        raise not_found("log object")
    return Response(
        data, media_type="application/octet-stream", headers={"Cache-Control": IMMUTABLE}
    )


def _is_archive(path: str) -> bool:
    prefix, _, size = path.partition("/")
    return prefix == "checkpoints" and size.isdigit() and str(int(size)) == size


def require_principal(principal: Principal | None) -> None:
    if principal is None:
        raise unauthorized("Send an API token as 'Authorization: Bearer <token>'.")


def _require_entry(context: AppContext, principal: Principal | None, index: int) -> None:
    """Entries and their proofs: for auditors, and for members of the entry's case; public
    only where the operator says so (CUSTODY_LOG_PUBLIC). Anyone else: 404."""
    if context.settings.log_public:
        return
    require_principal(principal)
    assert principal is not None
    if principal.role in (ADMIN, AUDITOR):
        return
    event = context.log.event(index)
    if event is None or not context.access.may_read_entry(principal, event):
        raise not_found("log entry")


def _is_token(path: str) -> bool:
    archive, dot, slot = path.partition(".tsr.")
    return bool(dot) and _is_archive(archive) and slot.isdigit() and str(int(slot)) == slot


def _index(value: str) -> int:
    # Whatever its shape, an index that names no entry is a 404.
    if not value.isdigit() or len(value) > 18:
        raise not_found("log entry")
    return int(value)
