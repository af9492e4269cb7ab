"""The built-in RFC 3161 TSA (public: a TSA and its certificates are public), and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from api.access import ADMIN, AUDITOR, require_role
from api.context import AppContext, Context, CurrentPrincipal
from api.problems import V1_RESPONSES, Problem, problem_type
from api.timestamper import backlog_of
from api.tsa import MAX_QUERY_BYTES, QUERY_TYPE, REPLY_TYPE, TimestampAuthority
from custody.tsp import rejection_response

router = APIRouter(tags=["trusted time"])
metrics = APIRouter(tags=["health"], responses=V1_RESPONSES)
PEM = "application/pem-certificate-chain"


@router.post(
    "/tsa",
    summary="RFC 3161 Time-Stamp Protocol over HTTP (no token needed)",
    description="Body: a DER TimeStampReq (`application/timestamp-query`). Answer: a DER "
    "TimeStampResp (`application/timestamp-reply`), granted or a rejection naming the reason, "
    "e.g. `openssl ts -query -data FILE -sha256 -cert | curl --data-binary @- -H "
    "'Content-Type: application/timestamp-query' URL/tsa`.",
    response_class=Response,
    responses={
        200: {"content": {REPLY_TYPE: {}}},
        415: {"description": "Not application/timestamp-query"},
    },
    openapi_extra={"requestBody": {"required": True, "content": {QUERY_TYPE: {}}}},
)
async def timestamp(request: Request, context: Context) -> Response:
    authority = _authority(context)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != QUERY_TYPE:
        raise Problem(
            415,
            "Not a timestamp query",
            f"Send a DER TimeStampReq with Content-Type: {QUERY_TYPE} (RFC 3161 §3.4).",
            type_=problem_type("not-a-timestamp-query"),
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_QUERY_BYTES:
            reply = rejection_response(
                "bad_request", f"a TimeStampReq is at most {MAX_QUERY_BYTES} bytes"
            )
            return Response(reply, media_type=REPLY_TYPE)
    reply = await run_in_threadpool(authority.respond, bytes(body))
    return Response(reply, media_type=REPLY_TYPE)


@router.get(
    "/v1/tsa/certs",
    summary="The built-in TSA's certificate chain, PEM, its certificate first (no token needed)",
    response_class=Response,
    responses={200: {"content": {PEM: {}}}},
)
async def certificates(context: Context) -> Response:
    return Response(_authority(context).chain_pem(), media_type=PEM)


@metrics.get(
    "/metrics",
    summary="Prometheus metrics: the log's size and the timestamp backlog per TSA",
    response_class=Response,
    responses={200: {"content": {"text/plain; version=0.0.4": {}}}},
)
async def prometheus(context: Context, principal: CurrentPrincipal) -> Response:
    require_role(principal, ADMIN, AUDITOR)
    text = await run_in_threadpool(_metrics, context)
    return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")


def _metrics(context: AppContext) -> str:
    lines = [
        "# HELP custody_log_size Entries covered by the newest published checkpoint.",
        "# TYPE custody_log_size gauge",
        f"custody_log_size {context.log.published_size()}",
        "# HELP custody_timestamps_pending Checkpoints still waiting for a TSA's token.",
        "# TYPE custody_timestamps_pending gauge",
    ]
    oldest = [
        "# HELP custody_timestamps_oldest_pending_size Size of the oldest checkpoint waiting.",
        "# TYPE custody_timestamps_oldest_pending_size gauge",
    ]
    for target in context.timestamper.targets:
        backlog = backlog_of(context.engine, target.name)
        label = target.name.replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'custody_timestamps_pending{{tsa="{label}"}} {backlog.pending}')
        if backlog.oldest_size is not None:
            oldest.append(
                f'custody_timestamps_oldest_pending_size{{tsa="{label}"}} {backlog.oldest_size}'
            )
    return "\n".join(lines + oldest) + "\n"


def _authority(context: AppContext) -> TimestampAuthority:
    if context.authority is None:
        raise Problem(
            404,
            "No built-in TSA",
            "This server does not run the built-in timestamp authority "
            "(CUSTODY_TSA_SERVER_ENABLED is false and no checkpoint uses it).",
            type_=problem_type("no-tsa"),
        )
    return context.authority
