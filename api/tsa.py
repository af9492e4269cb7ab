"""Trusted time: the built-in RFC 3161 TSA, its key, and the clients that ask TSAs for tokens.

The built-in TSA answers `POST /tsa` (RFC 3161 §3.4 HTTP transport) and, in process, the
timestamper. Its key and certificate chain (a root and a TSA certificate with the critical
id-kp-timeStamping EKU) come from configuration or are generated once in the data directory.
Serial numbers are `epoch << 64 | counter`, the epoch bumped in the database at every start,
so they never repeat across restarts or API processes.
"""

from __future__ import annotations

import http.client
import itertools
import logging
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from cryptography import x509
from sqlalchemy import Engine, update
from sqlmodel import col

from api.anchors import TsaConfigError
from api.database import session_scope
from api.settings import Settings
from api.tables import TsaState
from custody.errors import TimestampError, TimestampRequestError
from custody.tsp import (
    TsaIdentity,
    dump_tsa_key,
    generate_tsa,
    issue_response,
    load_tsa,
    parse_request,
    rejection_response,
)

log = logging.getLogger("custody.tsa")

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
MAX_QUERY_BYTES = 64 * 1024  # a TimeStampReq is a few hundred bytes
MAX_REPLY_BYTES = 1024 * 1024  # a reply carries a token and some certificates
BUILTIN = "builtin"


class TsaUnavailableError(Exception):
    """A TSA did not answer with a reply: down, hanging, or speaking something else."""


class TimestampAuthority:
    """The built-in TSA: one TimeStampReq in, one TimeStampResp out, never an exception."""

    def __init__(
        self,
        identity: TsaIdentity,
        *,
        policy: str,
        epoch: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.identity = identity
        self.policy = policy
        self._epoch = epoch
        self._clock = clock
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    @property
    def root(self) -> x509.Certificate:
        return self.identity.chain[-1] if self.identity.chain else self.identity.certificate

    def chain_pem(self) -> str:
        return self.identity.chain_pem()

    def respond(self, query: bytes) -> bytes:
        """The DER TimeStampResp for `query`: granted, or a rejection naming the reason."""
        if len(query) > MAX_QUERY_BYTES:
            return rejection_response(
                "bad_request", f"a TimeStampReq is at most {MAX_QUERY_BYTES} bytes"
            )
        try:
            request = parse_request(query)
            if request.policy is not None and request.policy != self.policy:
                raise TimestampRequestError(
                    "unaccepted_policy",
                    f"this TSA issues tokens under policy {self.policy} only, not {request.policy}",
                )
            return issue_response(
                request,
                tsa=self.identity,
                serial=self._next_serial(),
                policy=self.policy,
                gen_time=self._clock(),
            )
        except TimestampRequestError as exc:
            return rejection_response(exc.failure_info, str(exc))
        except Exception:  # a signing failure must still answer in the protocol
            log.exception("the built-in TSA could not issue a token")
            return rejection_response("system_failure", "the TSA could not issue a token")

    def _next_serial(self) -> int:
        with self._lock:
            return (self._epoch << 64) | next(self._counter)


def start_authority(
    settings: Settings, engine: Engine, clock: Callable[[], datetime]
) -> TimestampAuthority:
    """Load (or create) the built-in TSA's key and chain, and take a fresh serial epoch."""
    identity = load_identity(settings, now=clock())
    return TimestampAuthority(
        identity, policy=settings.tsa_policy_oid, epoch=next_epoch(engine), clock=clock
    )


def next_epoch(engine: Engine) -> int:
    """Bump and return the serial epoch (a row lock on PostgreSQL, the write lock on SQLite)."""
    with session_scope(engine) as session:
        session.execute(
            update(TsaState).where(col(TsaState.id) == 1).values(epoch=col(TsaState.epoch) + 1)
        )
        state = session.get(TsaState, 1)
        if state is None:
            raise TsaConfigError("the tsa_state row is missing: run the migrations")
        session.refresh(state)
        return state.epoch


def load_identity(settings: Settings, *, now: datetime) -> TsaIdentity:
    """The configured key and chain, or the data directory's, generated on first start."""
    key_file = settings.resolved_tsa_key_file
    chain_file = settings.tsa_chain_file or key_file
    if settings.tsa_key_file is not None or settings.tsa_chain_file is not None:
        try:
            return load_tsa(key_file.read_bytes(), chain_file.read_bytes())
        except OSError as exc:
            raise TsaConfigError(f"cannot read the TSA key or chain: {exc}") from exc
        except TimestampError as exc:
            raise TsaConfigError(f"{key_file}, {chain_file}: {exc}") from exc
    if not key_file.exists():
        _generate(key_file, settings.resolved_tsa_name, now)
    data = key_file.read_bytes()
    try:
        return load_tsa(data, data)
    except TimestampError as exc:
        raise TsaConfigError(f"{key_file}: {exc}") from exc


def _generate(path: Path, name: str, now: datetime) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    identity = generate_tsa(name, now=now)
    data = dump_tsa_key(identity) + identity.chain_pem().encode("ascii")
    # Written whole to a temporary file, then linked into place: two processes starting at
    # once agree on one key (the link of the second fails and it reads the first's).
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tsa-")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, 0o600)
        try:
            os.link(temp, path)
        except FileExistsError:
            return
    finally:
        os.unlink(temp)
    log.warning(
        "GENERATED A NEW TIMESTAMP AUTHORITY KEY AND CERTIFICATES at %s. Its root certificate "
        "(GET /v1/tsa/certs) is what verifiers trust for the built-in TSA's tokens: publish "
        "it, back the file up and keep it secret. In production, also timestamp with an "
        "independent TSA (CUSTODY_TSA_URLS).",
        path,
    )


class TsaClient(Protocol):
    """Sends a DER TimeStampReq, returns the DER TimeStampResp (or TsaUnavailableError)."""

    @property
    def name(self) -> str: ...

    def timestamp(self, query: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class BuiltinClient:
    authority: TimestampAuthority
    name: str = BUILTIN

    def timestamp(self, query: bytes) -> bytes:
        return self.authority.respond(query)


@dataclass(frozen=True, slots=True)
class HttpClient:
    """RFC 3161 §3.4: POST application/timestamp-query, expect application/timestamp-reply."""

    name: str
    url: str
    timeout: float

    def timestamp(self, query: bytes) -> bytes:
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in parse_tsa_urls
            self.url, data=query, method="POST", headers={"Content-Type": QUERY_TYPE}
        )
        deadline = time.monotonic() + self.timeout
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                kind = response.headers.get_content_type()
                body = self._read(response, deadline)
        except urllib.error.HTTPError as exc:
            raise TsaUnavailableError(f"{self.url} answered HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TsaUnavailableError(f"{self.url} did not answer: {reason}") from exc
        except http.client.HTTPException as exc:  # a bad status line, an oversized header
            raise TsaUnavailableError(f"{self.url} answered, but not in HTTP: {exc!r}") from exc
        if kind != REPLY_TYPE:
            raise TsaUnavailableError(f"{self.url} answered {kind}, not {REPLY_TYPE}")
        return body

    def _read(self, response: http.client.HTTPResponse, deadline: float) -> bytes:
        """The body, within the timeout as a whole: a TSA that trickles bytes is cut off."""
        body = bytearray()
        while chunk := response.read1(64 * 1024):
            body += chunk
            if len(body) > MAX_REPLY_BYTES:
                raise TsaUnavailableError(f"{self.url} answered more than {MAX_REPLY_BYTES} bytes")
            if time.monotonic() > deadline:
                raise TsaUnavailableError(
                    f"{self.url} did not finish its answer within {self.timeout:g} s"
                )
        return bytes(body)


def parse_tsa_urls(values: Sequence[str]) -> list[tuple[str, str]]:
    """`builtin`, `https://host/path` or `name=https://...` -> [(name, url-or-builtin)]."""
    parsed: list[tuple[str, str]] = []
    for value in values:
        name, sep, url = value.partition("=")
        if not sep:
            name, url = "", value
        url = url.strip()
        if url == BUILTIN:
            name = name.strip() or BUILTIN
        else:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise TsaConfigError(
                    f"{value!r} in CUSTODY_TSA_URLS is neither 'builtin' nor an http(s) URL"
                )
            name = name.strip() or parts.hostname
        if not 0 < len(name) <= 64:
            raise TsaConfigError(f"TSA name {name!r} must be 1 to 64 characters")
        if any(name == other for other, _ in parsed):
            raise TsaConfigError(f"TSA name {name!r} appears twice in CUSTODY_TSA_URLS")
        parsed.append((name, url))
    return parsed
