"""The audit's check of RFC 3161 tokens over every archived checkpoint."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from custody.audit import AuditReport, TimestampPolicy, audit_log
from custody.errors import UnreadableObjectError
from custody.tsp import (
    TsaIdentity,
    generate_tsa,
    issue_response,
    make_request,
    parse_request,
    rejection_response,
)
from tests.custody.test_audit import Log, MemorySource, build_log

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


class StampedSource(MemorySource):
    """A MemorySource whose checkpoints may carry stored TimeStampResps (by size)."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        super().__init__()
        self.objects = dict(objects)
        self.replies: dict[int, list[tuple[str, bytes]]] = {}

    def timestamps(self, size: int) -> list[tuple[str, bytes]]:
        return self.replies.get(size, [])


def reply_over(message: bytes, tsa: TsaIdentity, serial: int, when: datetime = NOW) -> bytes:
    request = parse_request(make_request(message, nonce=serial))
    return issue_response(request, tsa=tsa, serial=serial, policy="1.2.3", gen_time=when)


@pytest.fixture(scope="module")
def tsa() -> TsaIdentity:
    return generate_tsa("Audit Test TSA", now=NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def small() -> Log:
    return build_log((3, 2))


def stamped(log: Log, tsa: TsaIdentity) -> StampedSource:
    source = StampedSource(log.source.objects)
    for size in source.archived_sizes():
        checkpoint = source.objects[f"checkpoints/{size}"]
        source.replies[size] = [
            (f"checkpoints/{size}.tsr.0", reply_over(checkpoint, tsa, size + 1))
        ]
    return source


def audit(
    log: Log, source: StampedSource, anchors: tuple[x509.Certificate, ...] = ()
) -> AuditReport:
    return audit_log(source, log.signer.verifier(), timestamps=TimestampPolicy(anchors))


def test_every_checkpoint_token_checked_and_trusted(small: Log, tsa: TsaIdentity) -> None:
    source = stamped(small, tsa)
    report = audit(small, source, (tsa.chain[-1],))
    assert report.ok, report.failures
    assert report.timestamps_checked
    assert report.timestamps == 3  # checkpoints 0, 3 and 5
    assert report.timestamps_untrusted == 0
    assert report.timestamps_missing == []


def test_without_anchors_tokens_are_valid_but_untrusted(small: Log, tsa: TsaIdentity) -> None:
    report = audit(small, stamped(small, tsa))
    assert report.ok
    assert (report.timestamps, report.timestamps_untrusted) == (3, 3)


def test_other_anchors_make_each_token_an_untrusted_failure(small: Log, tsa: TsaIdentity) -> None:
    other = generate_tsa("Another TSA", now=NOW - timedelta(days=1))
    report = audit(small, stamped(small, tsa), (other.chain[-1],))
    assert [f.where for f in report.failures] == [f"checkpoints/{n}.tsr.0" for n in (0, 3, 5)]
    assert all("not trusted" in f.problem for f in report.failures)


def test_missing_and_invalid_tokens_are_named_by_checkpoint(small: Log, tsa: TsaIdentity) -> None:
    source = stamped(small, tsa)
    del source.replies[3]
    # A token over checkpoint 0's bytes stored as checkpoint 5's.
    source.replies[5] = [("checkpoints/5.tsr.0", source.replies[0][0][1])]
    report = audit(small, source, (tsa.chain[-1],))
    assert report.timestamps_missing == [3, 5]
    [failure] = report.failures
    assert failure.where == "checkpoints/5.tsr.0"
    assert "imprint" in failure.problem


def test_garbled_and_rejected_replies_are_invalid(small: Log, tsa: TsaIdentity) -> None:
    source = stamped(small, tsa)
    source.replies[3] = [("checkpoints/3.tsr.0", b"\x30\x82garbage")]
    source.replies[5] = [("checkpoints/5.tsr.0", rejection_response("bad_request", "no"))]
    report = audit(small, source, (tsa.chain[-1],))
    assert {f.where for f in report.failures} == {"checkpoints/3.tsr.0", "checkpoints/5.tsr.0"}
    assert report.timestamps_missing == [3, 5]
    assert any("rejection" in f.problem for f in report.failures)


def test_a_token_outlives_its_tsa_certificate(small: Log) -> None:
    """Certificates are checked at the token's time: a TSA certificate that has since
    expired does not invalidate the tokens it signed while valid."""
    short = generate_tsa("Short-lived TSA", now=NOW - timedelta(days=2), tsa_days=1, root_days=3)
    source = stamped(small, short)
    for size in list(source.replies):
        checkpoint = source.objects[f"checkpoints/{size}"]
        when = NOW - timedelta(days=1, hours=12)  # inside the TSA certificate's validity
        source.replies[size] = [
            (f"checkpoints/{size}.tsr.0", reply_over(checkpoint, short, 7, when))
        ]
    assert short.certificate.not_valid_after_utc < datetime.now(UTC)
    report = audit(small, source, (short.chain[-1],))
    assert report.ok, report.failures
    assert report.timestamps == 3
    # A token claiming a time after the certificate expired is refused.
    checkpoint = source.objects["checkpoints/5"]
    late = reply_over(checkpoint, short, 8, NOW + timedelta(days=5))
    source.replies[5] = [("checkpoints/5.tsr.0", late)]
    report = audit(small, source, (short.chain[-1],))
    assert [f.where for f in report.failures] == ["checkpoints/5.tsr.0"]


def test_the_timestamps_asked_for_are_announced_first_in_order(
    small: Log, tsa: TsaIdentity
) -> None:
    """A remote source fetches announced timestamps ahead: they must be the ones asked."""
    source = stamped(small, tsa)
    announced: list[int] = []
    asked: list[int] = []
    source.prefetch_timestamps = announced.extend  # type: ignore[attr-defined]
    listed = source.timestamps

    def timestamps(size: int) -> list[tuple[str, bytes]]:
        asked.append(size)
        return listed(size)

    source.timestamps = timestamps  # type: ignore[method-assign]
    report = audit(small, source, (tsa.chain[-1],))
    assert report.ok, report.failures
    assert announced == asked == [0, 3, 5]


class UnreadableStamps(StampedSource):
    """A StampedSource whose store cannot read some objects, or list the replies."""

    def __init__(self, objects: dict[str, bytes], unreadable: set[str]) -> None:
        super().__init__(objects)
        self.unreadable = unreadable

    def read(self, path: str) -> bytes | None:
        if path in self.unreadable:
            raise UnreadableObjectError(path, "a regular file", "a symbolic link")
        return super().read(path)

    def timestamps(self, size: int) -> list[tuple[str, bytes | UnreadableObjectError]]:
        if "checkpoints/" in self.unreadable:
            raise UnreadableObjectError("checkpoints/", "a listing", "an I/O error")
        return [
            (label, UnreadableObjectError(label, "a regular file", "a FIFO"))
            if label in self.unreadable
            else (label, data)
            for label, data in super().timestamps(size)
        ]


def test_an_unreadable_token_is_named_and_the_others_still_checked(
    small: Log, tsa: TsaIdentity
) -> None:
    source = UnreadableStamps(small.source.objects, {"checkpoints/3.tsr.0", "checkpoints/5"})
    source.replies = stamped(small, tsa).replies
    checkpoint = source.objects["checkpoints/3"]
    source.replies[3].append(("checkpoints/3.tsr.1", reply_over(checkpoint, tsa, 99)))
    report = audit(small, source, (tsa.chain[-1],))
    assert [(f.where, f.problem, f.found) for f in report.failures] == [
        ("checkpoints/5", "unreadable in the store", "a symbolic link"),
        ("checkpoints/3.tsr.0", "unreadable in the store", "a FIFO"),
    ]
    assert report.timestamps == 2  # checkpoint 0's token and checkpoint 3's second one
    assert report.timestamps_missing == []  # 5 is named unreadable, its tokens unchecked


def test_a_listing_of_the_replies_that_fails_is_named_once(small: Log, tsa: TsaIdentity) -> None:
    source = UnreadableStamps(small.source.objects, {"checkpoints/"})
    source.replies = stamped(small, tsa).replies
    report = audit(small, source, (tsa.chain[-1],))
    [failure] = report.failures
    assert (failure.where, failure.problem) == ("checkpoints/", "unreadable in the store")
    assert report.timestamps_missing == [0, 3, 5]
