"""Custody events and their log entries: RFC 8785 canonical JSON, ids/hashes/types/times only."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import rfc8785

from custody.errors import EventError

ENTRY_VERSION = 1
MAX_ENTRY_BYTES = 0xFFFF  # design §3 (64 KiB), capped by the uint16 length of a tlog-tiles bundle
# Everything in an entry is an id, a hash, a type or a time: never free text a person typed
# (a filename, a case title, a name), because auditors read every entry.
# Used with fullmatch: with match, "$" would let a trailing newline through.
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]{32,256}$")
_MEDIA_TYPE = re.compile(
    r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*(; ?[a-z]+=[a-z0-9.+-]+)?$"
)
EVENT_TYPES = frozenset(
    {
        "ingested",
        "derived",
        "accessed",
        "exported",
        "transferred",
        "fixity-checked",
        "annotated",
        "legal-hold",
        "case-created",
        "member-added",
        "member-removed",
        "token-created",
        "token-revoked",
        "pseudonym-resolved",
    }
)
ACCESS_KINDS = frozenset({"original", "copy", "metadata", "export"})


@dataclass(frozen=True, slots=True)
class Subject:
    """The bytes an event is about: SHA-256, size, detected media type, extra digests."""

    sha256: str
    size: int
    media_type: str
    digests: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sha256": self.sha256,
            "size": self.size,
            "media_type": self.media_type,
        }
        if self.digests:
            out["digests"] = dict(self.digests)
        return out


@dataclass(frozen=True, slots=True)
class Derivation:
    """How a sharing copy was made from its original: names only, never values."""

    original: str  # the original's sha256
    profile: str  # e.g. "share/1"
    tool: str  # the stripper and its version, e.g. "jpeg/1"
    removed: tuple[str, ...]  # names of what was removed (segment, chunk, tag names)
    content_kind: str  # what the content digest covers, e.g. "jpeg-frame-tables-scans"
    content_sha256: str  # the same on the original and the copy

    def to_json(self) -> dict[str, Any]:
        return {
            "original": self.original,
            "profile": self.profile,
            "tool": self.tool,
            "removed": list(self.removed),
            "content": {"kind": self.content_kind, "sha256": self.content_sha256},
        }


@dataclass(frozen=True, slots=True)
class Access:
    """What was read, and a commitment to why: the keyed hash of the stated purpose (see
    custody.purpose; its text, which may name people, and its key stay in the database)."""

    kind: str  # one of ACCESS_KINDS
    purpose_hmac_sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.purpose_hmac_sha256 is not None:
            out["purpose_hmac_sha256"] = self.purpose_hmac_sha256
        return out


@dataclass(frozen=True, slots=True)
class Export:
    """An item went into an exhibit bundle: which export, as which exhibit, the bag's payload
    manifest (so the bag is bound to the log), and a commitment to the stated purpose (see
    custody.purpose; its text, which names the recipient, and its key stay in the database
    and the bag)."""

    id: str
    exhibit: int  # the item's exhibit number in the bag
    exhibits: int  # how many exhibits the bag holds
    manifest_sha256: str  # SHA-256 of the bag's manifest-sha256.txt
    purpose_hmac_sha256: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "exhibit": self.exhibit,
            "exhibits": self.exhibits,
            "manifest_sha256": self.manifest_sha256,
            "purpose_hmac_sha256": self.purpose_hmac_sha256,
        }


@dataclass(frozen=True, slots=True)
class CustodyEvent:
    """One custody event, before the log gives it an index."""

    type: str
    id: str
    time: datetime
    actor: str
    case: str | None = None
    subject: Subject | None = None
    sidecar: str | None = None  # sha256 of the sealed metadata sidecar (values stay there)
    derivation: Derivation | None = None
    target: str | None = None  # the pseudonym or token id a membership/token event is about
    access: Access | None = None
    role: str | None = None  # the role a member or token was given
    export: Export | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": ENTRY_VERSION,
            "type": self.type,
            "id": self.id,
            "time": format_time(self.time),
            "actor": self.actor,
        }
        if self.case is not None:
            out["case"] = self.case
        if self.subject is not None:
            out["subject"] = self.subject.to_json()
        if self.sidecar is not None:
            out["metadata"] = {"sha256": self.sidecar}
        if self.derivation is not None:
            out["derived_from"] = self.derivation.to_json()
        if self.target is not None:
            out["target"] = self.target
        if self.access is not None:
            out["access"] = self.access.to_json()
        if self.role is not None:
            out["role"] = self.role
        if self.export is not None:
            out["export"] = self.export.to_json()
        return out


def encode_entry(event: CustodyEvent) -> bytes:
    """The log entry for `event`: validated RFC 8785 canonical JSON bytes."""
    _validate(event)
    entry = canonical_json(event.to_json())
    if len(entry) > MAX_ENTRY_BYTES:
        raise EventError(f"entry is {len(entry)} bytes, more than {MAX_ENTRY_BYTES}")
    return entry


def decode_entry(entry: bytes) -> dict[str, Any]:
    """Parse an entry's bytes, checking they are the canonical form of what they hold."""
    try:
        value, plain = _loads(entry)
    except ValueError as exc:
        raise EventError(f"entry is not JSON: {exc}") from exc
    try:
        canonical = _dumps_plain(value) if plain else canonical_json(value)
    except (ValueError, TypeError, UnicodeError, rfc8785.CanonicalizationError) as exc:
        raise EventError(f"entry cannot be canonicalised: {exc}") from exc
    if not isinstance(value, dict) or canonical != entry:
        raise EventError("entry is not an RFC 8785 canonical JSON object")
    return value


_MAX_EXACT_INT = 2**53  # RFC 8785 §3.2.2.3: numbers are IEEE 754 doubles


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of `value`.

    For values made only of strings with ASCII keys, integers below 2**53, booleans and
    null (every custody entry), Python's sorted, compact, non-ASCII-escaping `json.dumps`
    produces exactly the RFC 8785 bytes: the same string escapes (§3.2.2.2), the same key
    order (§3.2.3: UTF-16 order equals code-point order for ASCII), integers printed alike.
    It is many times faster than the general serialiser, which handles everything else.
    """
    if _plain(value):
        return _dumps_plain(value)
    result: bytes = rfc8785.dumps(value)
    return result


def _dumps_plain(value: Any) -> bytes:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text.encode("utf-8")


class _NotPlainError(Exception):
    """The JSON holds something (a float, a huge integer, a non-ASCII key) that needs RFC 8785."""


def _loads(entry: bytes) -> tuple[Any, bool]:
    """Parse `entry`, noting on the way whether it is plain (see `canonical_json`)."""
    try:
        return json.loads(
            entry,
            parse_float=_not_plain,
            parse_constant=_not_plain,
            parse_int=_plain_int,
            object_pairs_hook=_plain_object,
        ), True
    except _NotPlainError:
        return json.loads(entry), False


def _not_plain(_: str) -> Any:
    raise _NotPlainError


def _plain_int(text: str) -> int:
    number = int(text)
    if not -_MAX_EXACT_INT < number < _MAX_EXACT_INT:
        raise _NotPlainError
    return number


def _plain_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if not all(key.isascii() for key, _ in pairs):
        raise _NotPlainError
    return dict(pairs)


def _plain(value: Any) -> bool:
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_MAX_EXACT_INT < value < _MAX_EXACT_INT
    if isinstance(value, dict):
        return all(isinstance(k, str) and k.isascii() and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return False  # floats and anything else: the general serialiser


def ingested(
    *,
    event_id: str,
    time: datetime,
    actor: str,
    case: str,
    subject: Subject,
    sidecar: str | None = None,
) -> CustodyEvent:
    """The event for one ingest: a person collected these bytes into this case."""
    return CustodyEvent(
        "ingested", event_id, time, actor, case=case, subject=subject, sidecar=sidecar
    )


def format_time(time: datetime) -> str:
    """RFC 3339 UTC with microseconds, e.g. 2026-11-28T21:40:00.123456Z."""
    if time.tzinfo is None:
        raise EventError("event times must be timezone-aware")
    return time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _validate(event: CustodyEvent) -> None:
    if event.type not in EVENT_TYPES:
        raise EventError(f"unknown event type {event.type!r}")
    for name, value in (
        ("id", event.id),
        ("actor", event.actor),
        ("case", event.case),
        ("target", event.target),
    ):
        if value is not None and not _ID.fullmatch(value):
            raise EventError(f"{name} {value!r} is not an opaque id")
    if event.role is not None and not _TOKEN.fullmatch(event.role):
        raise EventError(f"role {event.role!r} is not a token")
    if event.access is not None:
        _validate_access(event.access)
    if event.export is not None:
        _validate_export(event.export)
    if event.sidecar is not None and not _SHA256.fullmatch(event.sidecar):
        raise EventError("metadata sidecar sha256 must be 64 lowercase hex digits")
    if event.derivation is not None:
        _validate_derivation(event.derivation)
    if event.subject is not None:
        _validate_subject(event.subject)


def _validate_subject(subject: Subject) -> None:
    if not _SHA256.fullmatch(subject.sha256):
        raise EventError("subject sha256 must be 64 lowercase hex digits")
    if subject.size < 0:
        raise EventError("subject size must not be negative")
    if not _MEDIA_TYPE.fullmatch(subject.media_type):
        raise EventError(f"media type {subject.media_type!r} is malformed")
    for algorithm, value in subject.digests.items():
        if not _ID.fullmatch(algorithm) or not _HEX.fullmatch(value):
            raise EventError(f"digest {algorithm!r} must be lowercase hex")


def _validate_export(export: Export) -> None:
    if not _ID.fullmatch(export.id):
        raise EventError(f"export id {export.id!r} is not an opaque id")
    if not 1 <= export.exhibit <= export.exhibits:
        raise EventError(f"exhibit {export.exhibit} is not in [1, {export.exhibits}]")
    for value in (export.manifest_sha256, export.purpose_hmac_sha256):
        if not _SHA256.fullmatch(value):
            raise EventError("export hashes must be 64 lowercase hex digits")


def _validate_access(access: Access) -> None:
    if access.kind not in ACCESS_KINDS:
        raise EventError(f"access kind {access.kind!r} is not one of {sorted(ACCESS_KINDS)}")
    purpose = access.purpose_hmac_sha256
    if purpose is not None and not _SHA256.fullmatch(purpose):
        raise EventError("purpose HMAC-SHA256 must be 64 lowercase hex digits")


# Removed-field names are format vocabulary ("APP1 Exif", "ID3:TPE1", "docProps/core.xml"):
# printable ASCII, short; anything else could smuggle a value into the log.
_NAME = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,79}$")
_TOKEN = re.compile(r"^[a-z0-9][a-z0-9._/-]{0,63}$")
MAX_REMOVED_NAMES = 256


def _validate_derivation(derivation: Derivation) -> None:
    if not _SHA256.fullmatch(derivation.original) or not _SHA256.fullmatch(
        derivation.content_sha256
    ):
        raise EventError("derivation hashes must be 64 lowercase hex digits")
    for name, value in (
        ("profile", derivation.profile),
        ("tool", derivation.tool),
        ("content kind", derivation.content_kind),
    ):
        if not _TOKEN.fullmatch(value):
            raise EventError(f"{name} {value!r} is not a token")
    if len(derivation.removed) > MAX_REMOVED_NAMES:
        raise EventError(f"more than {MAX_REMOVED_NAMES} removed names")
    for removed in derivation.removed:
        if not _NAME.fullmatch(removed):
            raise EventError(f"removed name {removed!r} is not a printable name")


def derived(
    *,
    event_id: str,
    time: datetime,
    actor: str,
    case: str,
    subject: Subject,
    derivation: Derivation,
) -> CustodyEvent:
    """The event for a sharing copy: `subject` is the copy, made from `derivation.original`."""
    return CustodyEvent(
        "derived", event_id, time, actor, case=case, subject=subject, derivation=derivation
    )


def accessed(
    *,
    event_id: str,
    time: datetime,
    actor: str,
    case: str,
    subject: Subject,
    access: Access,
) -> CustodyEvent:
    """Someone read these bytes (an original, a sharing copy, or the sealed metadata)."""
    return CustodyEvent(
        "accessed", event_id, time, actor, case=case, subject=subject, access=access
    )


def administrative(
    kind: str,
    *,
    event_id: str,
    time: datetime,
    actor: str,
    case: str | None = None,
    target: str | None = None,
    role: str | None = None,
) -> CustodyEvent:
    """Case creation, membership and token changes, and pseudonym resolutions."""
    if kind not in _ADMINISTRATIVE:
        raise EventError(f"{kind!r} is not an administrative event")
    return CustodyEvent(kind, event_id, time, actor, case=case, target=target, role=role)


_ADMINISTRATIVE = frozenset(
    {
        "case-created",
        "member-added",
        "member-removed",
        "token-created",
        "token-revoked",
        "pseudonym-resolved",
    }
)


def exported(
    *,
    event_id: str,
    time: datetime,
    actor: str,
    case: str,
    subject: Subject,
    export: Export,
) -> CustodyEvent:
    """These bytes went into an exhibit bundle (one event per exhibit)."""
    return CustodyEvent(
        "exported", event_id, time, actor, case=case, subject=subject, export=export
    )
