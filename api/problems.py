"""RFC 9457 problem details: the one place where errors become HTTP responses."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.appender import AppenderClosedError
from custody.errors import CustodyError, DigestHeaderError, DigestMismatchError, EventError
from custody.metadata.base import StripError, UnsupportedFormatError
from storage import StorageError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("custody.api")


class Problem(Exception):  # noqa: N818 - RFC 9457 names it a problem; it is the response
    """An error the API answers with as problem+json; extra members go into the body."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type_: str = "about:blank",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type_
        self.headers = headers or {}
        self.extra = extra


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail"],
}


def problem_doc(description: str) -> dict[str, Any]:
    """An OpenAPI response entry for a problem+json answer."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_SCHEMA}}}


V1_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: problem_doc("No valid API token"),
    404: problem_doc("Nothing with that identifier is visible to you"),
    429: problem_doc("Too many failed authentications from your address; see Retry-After"),
    422: problem_doc("Invalid request"),
}


def problem_type(slug: str) -> str:
    """A relative problem type URI (RFC 9457 §3.1.1), e.g. `/problems/digest-mismatch`."""
    return f"/problems/{slug}"


def not_found(what: str) -> Problem:
    return Problem(404, "Not Found", f"No {what} with that identifier is visible to you.")


def problem_response(problem: Problem, request: Request) -> JSONResponse:
    body = {
        "type": problem.type,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path,
        **problem.extra,
    }
    return JSONResponse(body, problem.status, headers=problem.headers, media_type=PROBLEM_JSON)


def from_domain(exc: CustodyError) -> Problem:
    if isinstance(exc, DigestMismatchError):
        return Problem(
            422,
            "Digest mismatch",
            f"The uploaded bytes have {exc.algorithm} {exc.computed}, but the request declared "
            f"{exc.declared}. Nothing was stored; check the file and upload it again.",
            type_=problem_type("digest-mismatch"),
            algorithm=exc.algorithm,
            declared=exc.declared,
            computed=exc.computed,
        )
    if isinstance(exc, DigestHeaderError):
        return Problem(
            400,
            "Malformed digest header",
            f"{exc}. Use RFC 9530 syntax, e.g. sha-256=:BASE64:.",
            type_=problem_type("malformed-digest"),
        )
    if isinstance(exc, UnsupportedFormatError):
        return Problem(
            415,
            "Unsupported format",
            f"Sharing copies cannot be made of {exc.media_type} files yet; the original stays "
            "sealed and can still be exported whole.",
            type_=problem_type("unsupported-format"),
            supported=list(exc.supported),
        )
    if isinstance(exc, StripError):
        return Problem(
            422,
            "Copy refused",
            f"No sharing copy was released: {exc.reason}. Nothing was stored or logged; the "
            "original is unchanged. Share a redacted export made by hand instead.",
            type_=problem_type("copy-refused"),
            found=list(exc.found),
        )
    if isinstance(exc, EventError):
        return Problem(400, "Invalid event", str(exc), type_=problem_type("invalid-event"))
    return Problem(400, "Bad request", str(exc))


def install_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc, request)

    async def on_domain(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, CustodyError)
        return problem_response(from_domain(exc), request)

    async def on_storage(request: Request, exc: Exception) -> JSONResponse:
        log.error("object store failure on %s: %s", request.url.path, exc)
        problem = Problem(
            503,
            "Storage unavailable",
            "The evidence store could not complete the operation; nothing was recorded. "
            "Retry later; if it persists, the operator should check the object store.",
            type_=problem_type("storage-unavailable"),
        )
        return problem_response(problem, request)

    async def on_closing(request: Request, exc: Exception) -> JSONResponse:
        problem = Problem(
            503,
            "Shutting down",
            "The service is shutting down; no custody event was recorded for this request. Send it "
            "again in a moment.",
            type_=problem_type("shutting-down"),
            headers={"Retry-After": "5"},
        )
        return problem_response(problem, request)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
        headers = dict(exc.headers or {})
        return problem_response(
            Problem(exc.status_code, _title(exc.status_code), detail, headers=headers), request
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"location": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors)
        problem = Problem(
            422, "Invalid request", detail, type_=problem_type("invalid-request"), errors=errors
        )
        return problem_response(problem, request)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(CustodyError, on_domain)
    app.add_exception_handler(StorageError, on_storage)
    app.add_exception_handler(AppenderClosedError, on_closing)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
