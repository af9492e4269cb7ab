"""The timestamper against misbehaving TSAs over real loopback HTTP, beside the built-in TSA.

Each test drives `Integrator.step()` and `Timestamper.step()` by hand against SQLite in a file
and a local object store, with a clock the test moves, so the backoff is exact. The remote
TSA is an `http.server` on 127.0.0.1 whose answer each test programs.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID
from sqlalchemy import Engine
from sqlmodel import col, select

from api.database import read_scope
from api.integrator import Integrator, IntegratorConfig
from api.logservice import LogService
from api.logstore import LogStore, checkpoint_key
from api.tables import CheckpointTimestamp
from api.timestamper import PENDING, STORED, Timestamper, TsaTarget, backlog_of, verify_stored
from api.tsa import REPLY_TYPE, BuiltinClient, HttpClient, TimestampAuthority
from custody.tsp import (
    DEFAULT_POLICY,
    TimestampRequest,
    TsaIdentity,
    generate_tsa,
    issue_response,
    make_request,
    new_nonce,
    parse_request,
    rejection_response,
    verify_token,
)
from storage.local import LocalObjectStore
from tests.api.test_integrator import (
    NOW,
    ORIGIN,
    SIGNER,
    VERIFIER,
    FakeClock,
    append,
    sqlite_engine,
)
from tests.custody.tsa_fixtures import make_root, make_tsa

PREFIX = "log/"
RETRY_MAX = 8.0  # seconds: the longest backoff, so one advance by it makes every row due
TIMEOUT = 0.5  # seconds the client waits for the remote TSA
HANG = 10.0  # seconds a hanging TSA holds its answer (released at teardown)
ROOT = make_root(now=NOW - timedelta(days=1000), name="Remote TSA Root", days=3650)
STRANGER = make_root(now=NOW - timedelta(days=1000), name="Unknown Root", days=3650)
GOOD = make_tsa(ROOT, now=NOW - timedelta(days=30))
NO_EKU = make_tsa(ROOT, now=NOW - timedelta(days=30), purposes=None)
CLIENT_AUTH = make_tsa(
    ROOT, now=NOW - timedelta(days=30), purposes=[ExtendedKeyUsageOID.CLIENT_AUTH]
)
EXPIRED = make_tsa(ROOT, now=NOW - timedelta(days=400), days=365)
UNTRUSTED = make_tsa(STRANGER, now=NOW - timedelta(days=30))
BUILTIN = generate_tsa("Built-in TSA", now=NOW - timedelta(days=1))
ANCHORS = [BUILTIN.chain[-1], ROOT.certificate]
RETENTION = timedelta(days=1)

# HTTP status, Content-Type, body; status 0: raw bytes, no HTTP; TRICKLE: 200, a byte at a time
Reply = tuple[int, str, bytes]
TRICKLE = 1


# ---------------------------------------------------------------------------------------
# The remote TSA: a programmable HTTP server on loopback
# ---------------------------------------------------------------------------------------


class RemoteTsa:
    """An RFC 3161 TSA over HTTP whose answer to each query is `answer(self, query)`."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.answer: Callable[[RemoteTsa, bytes], Reply] = granted
        self.queries = 0
        self.release = threading.Event()  # ends every hanging answer
        self._serials = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.tsa = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/tsa"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def issue(self, request: TimestampRequest, identity: TsaIdentity = GOOD) -> bytes:
        return issue_response(
            request,
            tsa=identity,
            serial=next(self._serials),
            policy=DEFAULT_POLICY,
            gen_time=self.clock(),
        )


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        tsa: RemoteTsa = self.server.tsa  # type: ignore[attr-defined]
        query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        tsa.queries += 1
        status, kind, body = tsa.answer(tsa, query)
        try:
            if status == 0:
                self.wfile.write(body)
                return
            self.send_response(200 if status == TRICKLE else status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != TRICKLE:
                self.wfile.write(body)
                return
            for byte in body:
                if tsa.release.wait(0.1):
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the hanging TSA)

    def log_message(self, format: str, *args: object) -> None:
        pass


def granted(tsa: RemoteTsa, query: bytes) -> Reply:
    return 200, REPLY_TYPE, tsa.issue(parse_request(query))


def signed_by(identity: TsaIdentity) -> Callable[[RemoteTsa, bytes], Reply]:
    return lambda tsa, query: (200, REPLY_TYPE, tsa.issue(parse_request(query), identity))


def wrong_imprint(tsa: RemoteTsa, query: bytes) -> Reply:
    asked = parse_request(query)
    other = TimestampRequest(
        "sha256", hashlib.sha256(b"another checkpoint").digest(), asked.nonce, True, None
    )
    return 200, REPLY_TYPE, tsa.issue(other)


def wrong_nonce(tsa: RemoteTsa, query: bytes) -> Reply:
    asked = parse_request(query)
    other = TimestampRequest("sha256", asked.message_imprint, (asked.nonce or 0) + 1, True, None)
    return 200, REPLY_TYPE, tsa.issue(other)


def garbled(tsa: RemoteTsa, query: bytes) -> Reply:
    reply = tsa.issue(parse_request(query))
    return 200, REPLY_TYPE, reply[: len(reply) // 2]


def hanging(tsa: RemoteTsa, query: bytes) -> Reply:
    tsa.release.wait(HANG)
    return granted(tsa, query)


def trickling(tsa: RemoteTsa, query: bytes) -> Reply:
    _, _, reply = granted(tsa, query)
    return TRICKLE, REPLY_TYPE, reply


def rejected(_tsa: RemoteTsa, _query: bytes) -> Reply:
    return 200, REPLY_TYPE, rejection_response("system_failure", "TSA overloaded, try later")


def server_error(_tsa: RemoteTsa, _query: bytes) -> Reply:
    return 500, "text/plain", b"Internal Server Error"


def html(tsa: RemoteTsa, query: bytes) -> Reply:
    _, _, reply = granted(tsa, query)
    return 200, "text/html", reply


def not_http(_tsa: RemoteTsa, _query: bytes) -> Reply:
    return 0, "", b"NOT A TSA\r\n\r\n"


@dataclass(frozen=True)
class Flaw:
    name: str
    answer: Callable[[RemoteTsa, bytes], Reply]
    words: tuple[str, ...]  # what the recorded error must say, and no other flaw's error says


FLAWS = [
    Flaw("wrong imprint", wrong_imprint, ("message imprint mismatch",)),
    Flaw("wrong nonce", wrong_nonce, ("nonce mismatch",)),
    Flaw("no EKU", signed_by(NO_EKU), ("has no extendedKeyUsage", "RFC 3161")),
    Flaw("other EKU", signed_by(CLIENT_AUTH), ("not id-kp-timeStamping",)),
    Flaw("expired chain", signed_by(EXPIRED), ("expired at the token's genTime",)),
    Flaw("untrusted chain", signed_by(UNTRUSTED), ("Unknown Root", "CUSTODY_TSA_TRUST_ANCHORS")),
    Flaw("garbled DER", garbled, ("malformed TimeStampResp", "truncated")),
    Flaw("hangs", hanging, ("timed out",)),
    Flaw("trickles", trickling, ("did not finish its answer",)),
    Flaw("rejection", rejected, ("answered rejection", "TSA overloaded", "system_failure")),
    Flaw("HTTP 500", server_error, ("HTTP 500",)),
    Flaw("wrong content type", html, ("text/html", f"not {REPLY_TYPE}")),
    Flaw("not HTTP", not_http, ("not in HTTP",)),
]


# ---------------------------------------------------------------------------------------
# The service's side: integrator and timestamper, as `api.app.compose` wires them
# ---------------------------------------------------------------------------------------


@dataclass
class Harness:
    engine: Engine
    store: LocalObjectStore
    log_store: LogStore
    clock: FakeClock
    integrator: Integrator
    timestamper: Timestamper
    builtin: TsaTarget
    remote: TsaTarget

    def publish(self, entries: int = 3) -> int:
        """Append `entries` events and integrate them; the new published size."""
        append(self.engine, entries)
        assert self.integrator.step(), "the integrator published nothing"
        return self.sizes()[-1]

    def sizes(self) -> list[int]:
        return self.log_store.archived_sizes()

    def stamp(self) -> None:
        """One round of both TSAs' workers."""
        self.timestamper.step(self.builtin)
        self.timestamper.step(self.remote)

    def rows(self, target: TsaTarget) -> dict[int, CheckpointTimestamp]:
        with read_scope(self.engine) as session:
            rows = session.exec(
                select(CheckpointTimestamp).where(col(CheckpointTimestamp.tsa) == target.name)
            ).all()
        return {row.size: row for row in rows}

    def tokens(self, target: TsaTarget) -> list[str]:
        """The keys of the stored replies of `target`, in the store itself."""
        suffix = f".tsr.{target.slot}"
        return sorted(k for k in self.store.list(PREFIX + "checkpoints/") if k.endswith(suffix))

    def token_key(self, size: int, target: TsaTarget) -> str:
        return f"{PREFIX}{checkpoint_key(size)}.tsr.{target.slot}"

    def checkpoint(self, size: int) -> bytes:
        return self.log_store.read(checkpoint_key(size))


def new_timestamper(
    engine: Engine, store: LocalObjectStore, clock: FakeClock, targets: list[TsaTarget]
) -> Timestamper:
    """A timestamper as `api.app.compose` builds it, trusting the built-in and remote roots."""
    return Timestamper(
        engine=engine,
        log_store=LogStore(store, PREFIX),
        targets=targets,
        anchors=ANCHORS,
        clock=clock,
        holds_lease=lambda: True,
        retention=RETENTION,
        retry_max=RETRY_MAX,
    )


def new_integrator(
    engine: Engine, store: LocalObjectStore, clock: FakeClock, targets: list[TsaTarget]
) -> Integrator:
    """An integrator that asks `targets` for timestamps of every checkpoint it publishes."""
    return Integrator(
        engine=engine,
        log_store=LogStore(store, PREFIX),
        signer=SIGNER,
        verifier=VERIFIER,
        origin=ORIGIN,
        clock=clock,
        config=IntegratorConfig(
            batch_size=64, batch_delay=0, poll=0.01, lease=10.0, retention=RETENTION
        ),
        timestamp_targets=[(target.name, target.slot) for target in targets],
    )


@pytest.fixture
def remote() -> Iterator[RemoteTsa]:
    server = RemoteTsa(FakeClock())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def harness(tmp_path: Path, remote: RemoteTsa) -> Iterator[Harness]:
    engine = sqlite_engine(tmp_path / "custody.db")
    store = LocalObjectStore(tmp_path / "objects")
    clock = remote.clock
    builtin = TsaTarget("builtin", 0, BuiltinClient(builtin_authority(clock)))
    far = TsaTarget("remote", 1, HttpClient("remote", remote.url, TIMEOUT))
    integrator = new_integrator(engine, store, clock, [builtin, far])
    timestamper = new_timestamper(engine, store, clock, [builtin, far])
    log_store = LogStore(store, PREFIX)
    yield Harness(engine, store, log_store, clock, integrator, timestamper, builtin, far)
    engine.dispose()


def builtin_authority(clock: FakeClock) -> TimestampAuthority:
    return TimestampAuthority(BUILTIN, policy=DEFAULT_POLICY, epoch=1, clock=clock)


def assert_all_stored(harness: Harness, target: TsaTarget) -> None:
    """Every checkpoint has a stored, trusted, valid reply of `target`, and its row says so."""
    rows = harness.rows(target)
    sizes = harness.sizes()
    assert sorted(rows) == sizes
    assert harness.tokens(target) == sorted(harness.token_key(s, target) for s in sizes)
    for size, row in rows.items():
        assert row.status == STORED, (target.name, size, row.last_error)
        assert row.last_error is None
        with harness.store.open(harness.token_key(size, target)) as stream:
            token = verify_stored(stream.read(), harness.checkpoint(size), ANCHORS)
        assert token.trusted
        assert token.gen_time == row.gen_time


def log_service(harness: Harness) -> LogService:
    return LogService(engine=harness.engine, log_store=harness.log_store, verifier=VERIFIER)


# ---------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------


def test_a_sound_remote_tsa_and_the_builtin_both_store_tokens(
    harness: Harness, remote: RemoteTsa
) -> None:
    harness.publish()
    harness.stamp()
    assert remote.queries == 2  # checkpoints 0 and 3
    assert_all_stored(harness, harness.builtin)
    assert_all_stored(harness, harness.remote)
    assert backlog_of(harness.engine, "remote").pending == 0


@pytest.mark.parametrize("flaw", FLAWS, ids=[flaw.name for flaw in FLAWS])
def test_a_misbehaving_tsa_stays_pending_until_fixed_and_blocks_nothing(
    harness: Harness, remote: RemoteTsa, flaw: Flaw
) -> None:
    remote.answer = flaw.answer
    first = harness.publish()
    harness.stamp()

    # The built-in TSA beside it stores its tokens; the flawed one stores nothing. The first
    # failure puts the TSA in backoff: checkpoint 0 was asked for, `first` deferred.
    assert_all_stored(harness, harness.builtin)
    assert harness.tokens(harness.remote) == []
    assert remote.queries == 1
    rows = harness.rows(harness.remote)
    assert {s: (r.status, r.attempts) for s, r in rows.items()} == {
        0: (PENDING, 1),
        first: (PENDING, 0),
    }
    others = [w for other in FLAWS if other is not flaw for w in other.words]
    for row in rows.values():
        assert row.last_error is not None
        for word in flaw.words:
            assert word in row.last_error, row.last_error
        assert not [w for w in others if w in row.last_error], row.last_error
    assert rows[first].last_error == f"not requested: TSA in backoff after: {rows[0].last_error}"
    backlog = backlog_of(harness.engine, "remote")
    assert (backlog.pending, backlog.oldest_size, backlog.last_error) == (2, 0, rows[0].last_error)

    # The log goes on, and receipts do not wait for the TSA in backoff.
    second = harness.publish()
    assert second > first
    harness.stamp()
    assert_all_stored(harness, harness.builtin)
    assert harness.tokens(harness.remote) == []
    assert remote.queries == 1
    assert log_service(harness).settled_through() == second
    assert log_service(harness).timestamps(second).pending == ("remote",)

    # Fixed: nothing is asked before the backoff ends, then every token is stored.
    remote.answer = granted
    harness.clock.advance(0.5)
    assert harness.timestamper.step(harness.remote) is False
    assert remote.queries == 1
    harness.clock.advance(RETRY_MAX)
    assert harness.timestamper.step(harness.remote) is True
    assert_all_stored(harness, harness.remote)
    assert remote.queries == 4
    assert {s: r.attempts for s, r in harness.rows(harness.remote).items()} == {
        0: 2,
        first: 1,
        second: 1,
    }
    assert backlog_of(harness.engine, "remote").pending == 0
    assert [t.tsa for t in log_service(harness).timestamps(second).stored] == ["builtin", "remote"]


def test_the_backoff_doubles_up_to_the_maximum(harness: Harness, remote: RemoteTsa) -> None:
    remote.answer = server_error
    harness.integrator.step()  # checkpoint 0 only
    waits = []
    for _ in range(6):
        start = harness.clock()
        harness.timestamper.step(harness.remote)
        row = harness.rows(harness.remote)[0]
        waits.append((row.next_attempt_at - start).total_seconds())
        harness.clock.now = row.next_attempt_at
    assert waits == [1.0, 2.0, 4.0, 8.0, RETRY_MAX, RETRY_MAX]
    assert harness.rows(harness.remote)[0].attempts == 6
    assert remote.queries == 6


def fetch_reply(remote: RemoteTsa, checkpoint: bytes, identity: TsaIdentity = GOOD) -> bytes:
    """A reply of the TSA as a previous holder of the lease got it."""
    request = parse_request(make_request(checkpoint, nonce=new_nonce()))
    return remote.issue(request, identity)


def test_a_reply_stored_before_a_crash_is_adopted_even_while_its_tsa_is_down(
    harness: Harness, remote: RemoteTsa
) -> None:
    harness.publish()
    harness.timestamper.step(harness.builtin)
    # A holder stored replies and died before recording them: the rows are still pending.
    stored = {s: fetch_reply(remote, harness.checkpoint(s)) for s in harness.sizes()}
    for s, reply in stored.items():
        harness.log_store.write(f"{checkpoint_key(s)}.tsr.1", reply, retain_until=None)
    assert {r.status for r in harness.rows(harness.remote).values()} == {PENDING}

    remote.answer = server_error
    harness.clock.advance(60)
    assert harness.timestamper.step(harness.remote) is True
    assert_all_stored(harness, harness.remote)
    assert remote.queries == 0, "an adopted reply needs no new token"
    for s, reply in stored.items():
        with harness.store.open(harness.token_key(s, harness.remote)) as stream:
            assert stream.read() == reply
        assert harness.rows(harness.remote)[s].gen_time == NOW


@pytest.mark.parametrize(
    ("flaw", "word"),
    [("over another checkpoint", "imprint mismatch"), ("untrusted", "Unknown Root")],
)
def test_an_invalid_stored_reply_is_neither_adopted_nor_replaced(
    harness: Harness, remote: RemoteTsa, flaw: str, word: str
) -> None:
    size = harness.publish()
    if flaw == "untrusted":
        bad = fetch_reply(remote, harness.checkpoint(size), UNTRUSTED)
    else:
        bad = fetch_reply(remote, harness.checkpoint(0))
    key = f"{checkpoint_key(size)}.tsr.1"
    harness.log_store.write(key, bad, retain_until=None)
    later = harness.publish()

    harness.timestamper.step(harness.remote)
    rows = harness.rows(harness.remote)
    assert rows[0].status == STORED
    assert rows[size].status == PENDING
    # The store is at fault, not the TSA: later checkpoints are still stamped.
    assert rows[later].status == STORED
    error = rows[size].last_error or ""
    assert f"{PREFIX}{key} is stored already" in error, "it names the object to inspect"
    assert word in error
    with harness.store.open(PREFIX + key) as stream:
        assert stream.read() == bad, "a create-only object is never replaced"


def test_pending_rows_keep_their_slot_when_the_tsa_list_is_reordered(
    harness: Harness, remote: RemoteTsa
) -> None:
    remote.answer = server_error
    size = harness.publish()
    harness.stamp()  # the built-in's tokens at .tsr.0; the remote's rows pending for .tsr.1
    # A restart with CUSTODY_TSA_URLS=remote,builtin: slots 0 and 1 now name the other TSA.
    remote.answer = granted
    far = TsaTarget("remote", 0, HttpClient("remote", remote.url, TIMEOUT))
    near = TsaTarget("builtin", 1, BuiltinClient(builtin_authority(harness.clock)))
    restarted = new_timestamper(harness.engine, harness.store, harness.clock, [far, near])
    harness.clock.advance(RETRY_MAX)
    assert restarted.step(far) is True

    timestamps = log_service(harness).timestamps(size)
    assert timestamps.pending == ()
    signers = {}
    for stamp in timestamps.stored:
        token = verify_token(stamp.token, message=harness.checkpoint(size), trust_anchors=ANCHORS)
        signers[stamp.tsa] = token.tsa_certificate
    assert signers == {"builtin": BUILTIN.certificate, "remote": GOOD.certificate}
    assert_all_stored(harness, harness.remote)


def test_a_tsa_added_later_is_asked_itself_not_credited_with_a_token_in_its_slot(
    tmp_path: Path, remote: RemoteTsa
) -> None:
    engine = sqlite_engine(tmp_path / "custody.db")
    store = LocalObjectStore(tmp_path / "objects")
    clock = remote.clock
    # First with the built-in TSA alone, in slot 0: the checkpoint is stamped.
    builtin = TsaTarget("builtin", 0, BuiltinClient(builtin_authority(clock)))
    append(engine, 3)
    assert new_integrator(engine, store, clock, [builtin]).step()
    size = LogStore(store, PREFIX).archived_sizes()[-1]
    new_timestamper(engine, store, clock, [builtin]).step(builtin)
    # Restarted with a remote TSA first: it has slot 0 now, and the restart records the
    # current checkpoint again, with a row for it.
    clock.advance(11)
    far = TsaTarget("remote", 0, HttpClient("remote", remote.url, TIMEOUT))
    builtin = TsaTarget("builtin", 1, BuiltinClient(builtin_authority(clock)))
    second = new_integrator(engine, store, clock, [far, builtin])
    second.step()
    stamper = new_timestamper(engine, store, clock, [far, builtin])
    stamper.step(far)
    harness = Harness(engine, store, LogStore(store, PREFIX), clock, second, stamper, builtin, far)
    stamps = log_service(harness).timestamps(size)
    assert stamps.pending == ()
    assert remote.queries == 1, "the remote TSA was never asked"
    signers = {
        stamp.tsa: verify_token(
            stamp.token, message=harness.checkpoint(size), trust_anchors=ANCHORS
        ).tsa_certificate
        for stamp in stamps.stored
    }
    assert signers["remote"] == GOOD.certificate
    assert signers["builtin"] != GOOD.certificate
    engine.dispose()
