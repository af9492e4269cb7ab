"""The audit's RFC 3161 part: every token over every archived checkpoint, checked at genTime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from cryptography import x509

from custody.errors import CustodyError, TimestampError, UnreadableObjectError
from custody.tsp import parse_response, verify_token

if TYPE_CHECKING:  # custody.audit imports this module to run the check
    from custody.audit import AuditReport, LogSource


class TimestampSource(Protocol):
    """Where a source keeps RFC 3161 tokens: (label, TimeStampResp or token DER) per size;
    in place of the bytes, the UnreadableObjectError of a reply the store cannot read, and
    that error raised where the replies cannot be listed."""

    def timestamps(self, size: int) -> list[tuple[str, bytes | UnreadableObjectError]]: ...


@dataclass(frozen=True, slots=True)
class TimestampPolicy:
    """Check every checkpoint's tokens; tokens whose TSA chain does not end at one of
    `trust_anchors` are valid but untrusted (a failure only if anchors were given)."""

    trust_anchors: tuple[x509.Certificate, ...] = ()


def check_timestamps(
    source: LogSource, sizes: list[int], policy: TimestampPolicy, report: AuditReport
) -> None:
    """Each token over each archived checkpoint: imprint, signature, EKU, chain at genTime.

    Certificates are checked at the token's genTime, not today: a token stays checkable
    after its TSA certificate expires, and later checkpoints, themselves timestamped and
    proven consistent with this one above, carry the history forward.
    """
    if not hasattr(source, "timestamps"):
        raise TypeError("this source cannot list timestamps")
    stamps = cast(TimestampSource, source)
    report.timestamps_checked = True
    for size in sizes:
        stored = _stored(source, stamps, size, report)
        if stored is None:
            continue  # already reported by the checkpoint checks
        checkpoint, listed = stored
        valid = 0
        for label, data in listed:
            if isinstance(data, UnreadableObjectError):
                report.unreadable(data)
            elif _check_token(label, data, checkpoint, policy, report):
                valid += 1
        if not valid:
            report.timestamps_missing.append(size)


def _stored(
    source: LogSource, stamps: TimestampSource, size: int, report: AuditReport
) -> tuple[bytes, list[tuple[str, bytes | UnreadableObjectError]]] | None:
    """Checkpoint `size` and its stored replies; None where the checkpoint is missing or
    unreadable. A listing that fails is named once, however many sizes it leaves bare."""
    try:
        checkpoint = source.read(f"checkpoints/{size}")
        if checkpoint is None:
            return None
    except UnreadableObjectError as exc:
        report.unreadable(exc)
        return None
    try:
        return checkpoint, stamps.timestamps(size)
    except UnreadableObjectError as exc:
        report.unreadable(exc)
        return checkpoint, []


def _check_token(
    label: str, data: bytes, checkpoint: bytes, policy: TimestampPolicy, report: AuditReport
) -> bool:
    """Check one stored reply or token over `checkpoint`; whether it is valid."""
    try:
        token, der_checked = _token_of(data)
        verified = verify_token(
            token, message=checkpoint, trust_anchors=policy.trust_anchors, der_checked=der_checked
        )
    except CustodyError as exc:
        report.fail(label, f"invalid RFC 3161 timestamp: {exc}")
        return False
    report.timestamps += 1
    if not verified.trusted:
        report.timestamps_untrusted += 1
        if policy.trust_anchors:
            root = verified.chain[-1].subject.rfc4514_string()
            report.fail(
                label,
                "the token is valid but its TSA is not trusted: its chain ends at a "
                "root outside the trust anchors given",
                "a root among --tsa-ca",
                root,
            )
    return True


def _token_of(data: bytes) -> tuple[bytes, bool]:
    """The TimeStampToken in a stored TimeStampResp, or `data` if it is a token already;
    and whether its DER was checked (with the reply's)."""
    try:
        reply = parse_response(data)
    except TimestampError:
        return data, False
    if reply.token is None:
        raise TimestampError(f"the stored reply is not a granted token: {reply.status}")
    return reply.token, True
