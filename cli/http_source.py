"""The service as an audit source: raw tlog-tiles paths under /log/ and, with a token,
the archived checkpoints, timestamps and sealed objects through /v1."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import CancelledError, ThreadPoolExecutor
from http.client import HTTPException, HTTPMessage
from typing import IO, BinaryIO, cast

from cli.reading import NamedReading
from custody.audit import COPY, ORIGINAL, NotVisibleError
from custody.errors import SourceUnavailableError, UnreadableObjectError

HTTP_TIMEOUT = 60
# TSA slots per checkpoint an HTTP source probes without a listing: it cannot list, and a
# TSA that was down leaves its slot empty, so every slot is asked for, not only up to a gap.
MAX_PROBED_SLOTS = 16
DEFAULT_PORTS = {"http": 80, "https": 443}
PROBE_WORKERS = 4  # probes in flight per source: the slots of a checkpoint in a few round trips
# Requests in a row without any answer (refused, reset, timed out) after which the service is
# taken for gone: more than the requests a read-ahead and the probes have in flight at once.
MAX_UNANSWERED = 12


class HttpSource:
    """A log read from the service: raw tlog-tiles paths under /log/, and with a token the
    archived checkpoints and originals through /v1."""

    remote = True

    def __init__(self, base_url: str, token: str | None, *, probes: int = PROBE_WORKERS) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._closed = threading.Event()
        self._opener = urllib.request.build_opener(_SameOriginRedirects)
        self._probes = ThreadPoolExecutor(probes, thread_name_prefix="custody-probe")
        self._silence = threading.Lock()
        self._unanswered = 0  # requests in a row that got no answer at all
        self._gone: SourceUnavailableError | None = None

    def close(self) -> None:
        """Start no request from now on (each then raises CancelledError); those in flight
        end as they do, probes not started are cancelled."""
        self._closed.set()
        self._probes.shutdown(wait=False, cancel_futures=True)

    def read(self, path: str) -> bytes | None:
        # Tiles and bundles need the auditor role unless the operator made them public.
        return self._get(f"/log/{path}", auth=True)

    def archived_sizes(self) -> list[int]:
        data = self._get("/v1/log/checkpoints", auth=True) if self._token else None
        return sorted(int(n) for n in json.loads(data)["sizes"]) if data else []

    def timestamps(self, size: int) -> list[tuple[str, bytes | UnreadableObjectError]]:
        """With a token, the tokens the service lists; without, the raw replies by slot."""
        if self._token:
            data = self._get(f"/v1/log/checkpoints/{size}/timestamps", auth=True)
            listed = json.loads(data) if data else []
            return [
                (f"checkpoints/{size} ({item['tsa']})", base64.b64decode(item["token"]))
                for item in listed
            ]
        paths = [f"checkpoints/{size}.tsr.{slot}" for slot in range(MAX_PROBED_SLOTS)]
        try:
            probes = [self._probes.submit(self._probe, path) for path in paths]
        except RuntimeError as exc:  # the pool shut down: the source was closed
            raise CancelledError(f"{self._base}: the source was closed") from exc
        replies = [probe.result() for probe in probes]  # CancelledError if closed meanwhile
        return [
            (path, reply) for path, reply in zip(paths, replies, strict=True) if reply is not None
        ]

    def _probe(self, path: str) -> bytes | UnreadableObjectError | None:
        """One slot's reply; an error is that slot's, the other slots are still asked."""
        try:
            return self.read(path)
        except UnreadableObjectError as exc:
            return UnreadableObjectError(path, exc.expected, exc.found)

    @property
    def sealed_kinds(self) -> tuple[str, ...]:
        """Originals and copies, through the API with a token of a member who may read them;
        the API serves a sidecar's values, not its sealed bytes, so those cannot be re-hashed."""
        return (ORIGINAL, COPY) if self._token else ()

    def open_sealed(self, kind: str, sha256: str) -> BinaryIO | None:
        """The object's bytes as the service serves them. The service answers 404 alike for
        what is not there and for what this token may not see (and 403 to roles that read no
        evidence), so neither is a failure here: auditing the store itself settles it."""
        path = {ORIGINAL: f"/v1/evidence/{sha256}/content", COPY: f"/v1/copies/{sha256}/content"}
        try:
            stream = self._open(path[kind], auth=True, forbidden_ok=True)
        except PermissionError as exc:
            raise NotVisibleError(str(exc)) from exc
        if stream is None:
            raise NotVisibleError(f"{kind} {sha256}: not found, or not visible to this token")
        return stream  # streamed: an original may be larger than memory

    def _get(self, path: str, *, auth: bool, forbidden_ok: bool = False) -> bytes | None:
        stream = self._open(path, auth=auth, forbidden_ok=forbidden_ok)
        if stream is None:
            return None
        with stream:
            return bytes(stream.read())  # _Answer: a failing read is UnreadableObjectError

    def _open(self, path: str, *, auth: bool, forbidden_ok: bool = False) -> BinaryIO | None:
        if self._closed.is_set():
            raise CancelledError(f"{self._base}{path}: not asked, the source was closed")
        request = urllib.request.Request(self._base + path)  # noqa: S310 - scheme checked in open_source
        if auth and self._token:
            # Unredirected: only _SameOriginRedirects carries it on, and only within the origin.
            request.add_unredirected_header("Authorization", f"Bearer {self._token}")
        if self._gone is not None:
            raise self._gone
        try:
            response = self._opener.open(request, timeout=HTTP_TIMEOUT)
            self._answered()
            return cast(BinaryIO, _Answer(path, response))
        except urllib.error.HTTPError as exc:
            self._answered()
            exc.close()  # its body is not read: give the connection back
            if exc.code == 404:
                return None
            if exc.code == 403 and forbidden_ok:
                raise PermissionError(f"{path}: HTTP 403") from exc
            if exc.code in (401, 403):
                raise ValueError(
                    f"{self._base}{path} answered HTTP {exc.code}: the log's tiles and entries "
                    "need an auditor's token (--token or CUSTODY_TOKEN) unless the operator "
                    "made them public"
                ) from exc
            # A server error or an unexpected answer for one object: the audit names it and
            # goes on with the others, as for an object a store cannot read.
            raise UnreadableObjectError(
                path, "the object or 404", f"HTTP {exc.code} {exc.reason}"
            ) from exc
        except (urllib.error.URLError, HTTPException, OSError) as exc:
            found = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            self._no_answer(path, f"no answer: {found}")
            raise UnreadableObjectError(path, "an answer", f"no answer: {found}") from exc

    def _answered(self) -> None:
        with self._silence:
            self._unanswered = 0

    def _no_answer(self, path: str, reason: str) -> None:
        """Count requests in a row that got no answer at all; at MAX_UNANSWERED the service
        is gone, not one object: SourceUnavailableError, now and for every later request."""
        with self._silence:
            self._unanswered += 1
            if self._unanswered >= MAX_UNANSWERED and self._gone is None:
                self._gone = SourceUnavailableError(self._base, path, reason)
            gone = self._gone
        if gone is not None:
            raise gone


class _Answer(NamedReading):
    """A response whose failing read (connection reset, timed out) or body cut short raises
    UnreadableObjectError naming the object, for the audit to report and go on."""

    def __init__(self, path: str, response: IO[bytes]) -> None:
        stream = cast(BinaryIO, response)
        super().__init__(stream, path, errors=(HTTPException, OSError), unreadable=_failed_read)
        self._response = response

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        # http.client ends a body cut short quietly when read in pieces; what the answer
        # promised (Content-Length) and did not send tells it from the end.
        missing = getattr(self._response, "length", None)
        if not data and size != 0 and missing:
            raise UnreadableObjectError(
                self._key, "the whole object", f"an answer cut short, {missing} bytes missing"
            )
        return data


def _failed_read(path: str, error: Exception) -> UnreadableObjectError:
    return UnreadableObjectError(path, "the whole object", f"a read that failed: {error!r}")


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, carrying the bearer token only to the origin (scheme, host, port)
    it was sent to. urllib carries headers set with add_header to wherever it is redirected:
    a proxy or a changed Location would then receive an auditor's token for the log."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        redirected = super().redirect_request(req, fp, code, msg, headers, newurl)
        token = req.unredirected_hdrs.get("Authorization")
        if redirected is not None and token and _same_origin(req.full_url, redirected.full_url):
            redirected.add_unredirected_header("Authorization", token)
        return redirected


def _same_origin(url: str, other: str) -> bool:
    """RFC 6454 §4: the same scheme, host and port (the scheme's default port if none)."""
    try:
        a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(other)
        origins = [
            (u.scheme.lower(), (u.hostname or "").lower(), u.port or DEFAULT_PORTS.get(u.scheme))
            for u in (a, b)
        ]
    except ValueError:  # a port that is not a number: no origin to share
        return False
    return bool(origins[0][1]) and origins[0] == origins[1]
