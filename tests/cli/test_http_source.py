"""cli.http_source: the service as an audit source, over a loopback HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import CancelledError
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import BinaryIO

import pytest

from cli.http_source import MAX_PROBED_SLOTS, MAX_UNANSWERED, PROBE_WORKERS, HttpSource
from custody.audit import ORIGINAL, SOURCE_GONE, UNREADABLE, audit_log
from custody.errors import SourceUnavailableError, UnreadableObjectError
from tests.custody.test_audit import build_log


@dataclass
class Served:
    """What a loopback server answers (path -> body, else 404) and what it was asked."""

    objects: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location
    statuses: dict[str, int] = field(default_factory=dict)  # path -> an error status
    short: dict[str, bytes] = field(default_factory=dict)  # path -> body cut short
    gate: threading.Event = field(default_factory=threading.Event)  # answers wait for it
    answers: int | None = None  # requests answered before the server goes away, if set
    gone: threading.Event = field(default_factory=threading.Event)  # set: it is to go away
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(served: Served) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with served.lock:
                served.requests.append((self.path, dict(self.headers)))
                if served.answers is not None and len(served.requests) > served.answers:
                    served.gone.set()  # the service dies: this and every later request unanswered
                if served.gone.is_set():
                    self.close_connection = True
                    return
                served.in_flight += 1
                served.most_in_flight = max(served.most_in_flight, served.in_flight)
            served.gate.wait(timeout=10)
            with served.lock:
                served.in_flight -= 1
            if self.path in served.redirects:
                self.send_response(302)
                self.send_header("Location", served.redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path in served.statuses:
                self.send_error(served.statuses[self.path])
                return
            if self.path in served.short:  # promises twice the bytes, then hangs up
                self.send_response(200)
                self.send_header("Content-Length", str(2 * len(served.short[self.path])))
                self.end_headers()
                self.wfile.write(served.short[self.path])
                self.close_connection = True
                return
            body = served.objects.get(self.path)
            self.send_response(404 if body is None else 200)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve() -> Iterator[tuple[str, Served]]:
    state = Served()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()

    def go_away() -> None:
        state.gone.wait()
        server.shutdown()
        server.server_close()  # from now on, connections are refused

    threading.Thread(target=go_away, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        state.gate.set()
        state.gone.set()
        thread.join(timeout=10)


@pytest.fixture
def served() -> Iterator[tuple[str, Served]]:
    with serve() as url_and_state:
        yield url_and_state


@pytest.fixture
def elsewhere() -> Iterator[tuple[str, Served]]:
    """A second server: another origin (another port) on the same loopback address."""
    with serve() as url_and_state:
        yield url_and_state


def wait_until(condition: object, what: str) -> None:
    for _ in range(2000):
        if callable(condition) and condition():
            return
        threading.Event().wait(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def test_tokens_after_a_missing_slot_are_found_in_slot_order(served: tuple[str, Served]) -> None:
    url, state = served
    state.gate.set()
    # The TSA of slot 0 was down when checkpoint 5 was stamped: its slot stays empty.
    state.objects["/log/checkpoints/5.tsr.3"] = b"third"
    state.objects["/log/checkpoints/5.tsr.1"] = b"first"
    state.objects[f"/log/checkpoints/5.tsr.{MAX_PROBED_SLOTS - 1}"] = b"last"
    source = HttpSource(url, None)
    try:
        assert source.timestamps(5) == [
            ("checkpoints/5.tsr.1", b"first"),
            ("checkpoints/5.tsr.3", b"third"),
            (f"checkpoints/5.tsr.{MAX_PROBED_SLOTS - 1}", b"last"),
        ]
    finally:
        source.close()
    probed = sorted(path for path, _ in state.requests)
    assert probed == sorted(f"/log/checkpoints/5.tsr.{n}" for n in range(MAX_PROBED_SLOTS))


def test_slots_are_probed_several_at_a_time_but_within_a_bound(
    served: tuple[str, Served],
) -> None:
    url, state = served
    source = HttpSource(url, None)
    try:
        found: list[object] = []
        thread = threading.Thread(target=lambda: found.append(source.timestamps(7)))
        thread.start()
        wait_until(lambda: state.in_flight == PROBE_WORKERS, "the probes to fill the bound")
        threading.Event().wait(0.05)
        assert state.most_in_flight == PROBE_WORKERS < MAX_PROBED_SLOTS
        state.gate.set()
        thread.join(timeout=10)
        assert found == [[]]
    finally:
        source.close()
    assert len(state.requests) == MAX_PROBED_SLOTS


def test_no_probe_starts_once_the_source_is_closed(served: tuple[str, Served]) -> None:
    url, state = served
    source = HttpSource(url, None)
    failed: list[BaseException] = []

    def probe() -> None:
        try:
            source.timestamps(9)
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=probe)
    thread.start()
    wait_until(lambda: state.in_flight == PROBE_WORKERS, "the first probes")
    source.close()
    state.gate.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(failed) == 1
    assert isinstance(failed[0], CancelledError)
    assert len(state.requests) == PROBE_WORKERS  # those in flight at close, and no more
    with pytest.raises(CancelledError):
        source.read("checkpoint")
    assert len(state.requests) == PROBE_WORKERS


def test_with_a_token_the_listing_is_asked_and_nothing_probed(
    served: tuple[str, Served],
) -> None:
    url, state = served
    state.gate.set()
    state.objects["/v1/log/checkpoints/5/timestamps"] = b'[{"tsa": "second", "token": "dG9rZW4="}]'
    source = HttpSource(url, "secret-token")
    try:
        assert source.timestamps(5) == [("checkpoints/5 (second)", b"token")]
    finally:
        source.close()
    assert [path for path, _ in state.requests] == ["/v1/log/checkpoints/5/timestamps"]


def authorization(state: Served) -> list[str | None]:
    return [headers.get("Authorization") for _, headers in state.requests]


def test_a_redirect_to_another_origin_does_not_carry_the_token(
    served: tuple[str, Served], elsewhere: tuple[str, Served]
) -> None:
    url, state = served
    other_url, other = elsewhere
    state.gate.set()
    other.gate.set()
    state.redirects["/log/checkpoint"] = f"{other_url}/log/checkpoint"
    other.objects["/log/checkpoint"] = b"the checkpoint"
    source = HttpSource(url, "secret-token")
    try:
        assert source.read("checkpoint") == b"the checkpoint"
    finally:
        source.close()
    assert authorization(state) == ["Bearer secret-token"]
    assert [path for path, _ in other.requests] == ["/log/checkpoint"]
    assert authorization(other) == [None]


def test_a_redirect_to_another_host_name_of_the_same_port_does_not_carry_the_token(
    served: tuple[str, Served],
) -> None:
    url, state = served
    state.gate.set()
    port = url.rsplit(":", 1)[1]
    state.redirects["/log/checkpoint"] = f"http://localhost:{port}/log/elsewhere"
    state.objects["/log/elsewhere"] = b"the checkpoint"
    source = HttpSource(url, "secret-token")
    try:
        assert source.read("checkpoint") == b"the checkpoint"
    finally:
        source.close()
    assert authorization(state) == ["Bearer secret-token", None]


def test_a_redirect_within_the_origin_keeps_the_token(served: tuple[str, Served]) -> None:
    url, state = served
    state.gate.set()
    state.redirects["/log/checkpoint"] = "/log/moved"
    state.redirects["/log/moved"] = f"{url}/log/moved-again"
    state.objects["/log/moved-again"] = b"the checkpoint"
    source = HttpSource(url, "secret-token")
    try:
        assert source.read("checkpoint") == b"the checkpoint"
    finally:
        source.close()
    assert [path for path, _ in state.requests] == [
        "/log/checkpoint",
        "/log/moved",
        "/log/moved-again",
    ]
    assert authorization(state) == ["Bearer secret-token"] * 3


def drain(stream: BinaryIO) -> None:
    while stream.read(4096):
        pass


def test_a_server_error_names_the_object_unreadable_instead_of_ending_the_audit(
    served: tuple[str, Served],
) -> None:
    url, state = served
    state.gate.set()
    state.statuses["/log/tile/0/000"] = 503
    state.objects["/log/tile/0/001"] = b"tile"
    source = HttpSource(url, None)
    try:
        with pytest.raises(UnreadableObjectError) as unreadable:
            source.read("tile/0/000")
        assert unreadable.value.key == "/log/tile/0/000"
        assert "HTTP 503" in unreadable.value.found
        assert source.read("tile/0/001") == b"tile"  # the next object is asked as before
    finally:
        source.close()


def test_a_slot_answering_an_error_is_named_and_the_other_slots_still_found(
    served: tuple[str, Served],
) -> None:
    url, state = served
    state.gate.set()
    state.statuses["/log/checkpoints/5.tsr.0"] = 500
    state.objects["/log/checkpoints/5.tsr.2"] = b"second"
    source = HttpSource(url, None)
    try:
        found = source.timestamps(5)
    finally:
        source.close()
    assert [path for path, _ in found] == ["checkpoints/5.tsr.0", "checkpoints/5.tsr.2"]
    assert isinstance(found[0][1], UnreadableObjectError)
    assert "HTTP 500" in found[0][1].found
    assert found[1][1] == b"second"


def test_an_original_cut_short_is_unreadable_at_the_read_that_fails(
    served: tuple[str, Served],
) -> None:
    url, state = served
    state.gate.set()
    sha256 = "ab" * 32
    state.short[f"/v1/evidence/{sha256}/content"] = b"x" * 1000
    source = HttpSource(url, "token")
    try:
        stream = source.open_sealed(ORIGINAL, sha256)
        assert stream is not None
        with stream, pytest.raises(UnreadableObjectError) as unreadable:
            drain(stream)
        assert unreadable.value.key == f"/v1/evidence/{sha256}/content"
    finally:
        source.close()


def test_a_service_that_is_not_there_is_named_unreadable() -> None:
    with serve() as (url, _):
        pass  # the port is free again: nothing listens there now
    source = HttpSource(url, None)
    try:
        with pytest.raises(UnreadableObjectError) as unreadable:
            source.read("checkpoint")
        assert unreadable.value.key == "/log/checkpoint"
    finally:
        source.close()


def test_a_service_gone_mid_audit_ends_it_with_one_failure_not_one_per_object() -> None:
    """The service answers the first requests, then nothing: after MAX_UNANSWERED requests
    in a row without an answer the audit ends, saying it is incomplete, instead of naming
    every remaining tile, bundle and original unreadable (millions of lines in a big log)."""
    log = build_log((256,) * 12)  # 12 bundles and 13 tiles after the checkpoint
    with serve() as (url, state):
        state.objects = {f"/log/{path}": data for path, data in log.source.objects.items()}
        state.gate.set()
        state.answers = 4  # the checkpoint and a few tiles
        source = HttpSource(url, None)
        try:
            report = audit_log(source, log.signer.verifier())
        finally:
            source.close()
    assert not report.ok
    assert report.size == 256 * 12  # the checkpoint was read before the service went away
    gone = [f for f in report.failures if f.problem == SOURCE_GONE]
    assert len(gone) == 1, report.failures
    assert gone[0].found.startswith("no answer")
    unreadable = [f for f in report.failures if f.problem == UNREADABLE]
    assert len(unreadable) < MAX_UNANSWERED
    assert len(report.failures) == len(gone) + len(unreadable)


def test_requests_without_answers_end_the_source_only_in_a_row() -> None:
    """An answer (even a 404 or a 503) in between means the service is there: one object
    at a time is named unreadable, and the source goes on."""
    with serve() as (url, state):
        state.gate.set()
        state.statuses = {"/log/tile/0/000": 503}
    source = HttpSource(url, None)  # the server is gone: every request goes unanswered
    try:
        for number in range(MAX_UNANSWERED - 1):
            with pytest.raises(UnreadableObjectError):
                source.read(f"tile/entries/{number:03d}")
        with pytest.raises(SourceUnavailableError, match="stopped answering"):
            source.read("tile/entries/100")
        with pytest.raises(SourceUnavailableError):
            source.read("checkpoint")  # at once, without asking again
    finally:
        source.close()
    with serve() as (url, state):
        state.gate.set()
        source = HttpSource(url, None)
        try:
            for _ in range(3 * MAX_UNANSWERED):
                assert source.read("tile/entries/000") is None  # answered: 404
        finally:
            source.close()
