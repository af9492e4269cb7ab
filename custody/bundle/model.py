"""The records an exhibit bundle carries about each exhibit, as JSON (custody/exhibits/*.json).

A record is a convenience for people and the certificate: every fact in it that matters
(hashes, who, when, what was removed) is also in a log entry the bag proves, and the
verifier checks that the two agree rather than trusting the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from custody.bundle.layout import FORMAT
from custody.errors import BundleError
from custody.note import decode_base64, encode_base64

ORIGINAL, SHARING_COPY = "original", "sharing-copy"


@dataclass(frozen=True, slots=True)
class CopyOrigin:
    """For a sharing copy: its original and what the stripper did (from the `derived` entry)."""

    original_sha256: str
    profile: str
    tool: str
    removed: tuple[str, ...]
    content_kind: str
    content_sha256: str

    def to_json(self) -> dict[str, Any]:
        return {
            "original_sha256": self.original_sha256,
            "profile": self.profile,
            "tool": self.tool,
            "removed": list(self.removed),
            "content": {"kind": self.content_kind, "sha256": self.content_sha256},
        }

    @classmethod
    def from_json(cls, value: Any) -> CopyOrigin:
        content = _field(value, "content", dict)
        return cls(
            original_sha256=_field(value, "original_sha256", str),
            profile=_field(value, "profile", str),
            tool=_field(value, "tool", str),
            removed=tuple(_strings(_field(value, "removed", list), "removed")),
            content_kind=_field(content, "kind", str),
            content_sha256=_field(content, "sha256", str),
        )


@dataclass(frozen=True, slots=True)
class Collection:
    """When and by whom the exhibit's bytes (a copy: its original's) were collected: the
    `ingested` entry, the first archived checkpoint covering it (whose RFC 3161 tokens date
    the collection), and a consistency proof from that checkpoint to the bundle's."""

    entry: int
    checkpoint: int
    consistency: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "entry": self.entry,
            "checkpoint": self.checkpoint,
            "consistency": [encode_base64(node) for node in self.consistency],
        }

    @classmethod
    def from_json(cls, value: Any) -> Collection:
        proof = _strings(_field(value, "consistency", list), "consistency")
        try:
            nodes = tuple(decode_base64(node) for node in proof)
        except ValueError as exc:
            raise BundleError("a consistency-proof hash is not canonical base64") from exc
        return cls(_int(value, "entry"), _int(value, "checkpoint"), nodes)


@dataclass(frozen=True, slots=True)
class ExhibitRecord:
    number: int
    path: str  # the payload file, e.g. "data/001-IMG_0001.jpg"
    filename: str | None  # the name it was uploaded under (sanitised), if any
    kind: str  # ORIGINAL or SHARING_COPY
    sha256: str
    sha512: str
    size: int
    media_type: str
    entries: tuple[int, ...]  # every log entry about it, in log order (receipts in the bag)
    collected: Collection
    copy_of: CopyOrigin | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "exhibit": self.number,
            "path": self.path,
            "filename": self.filename,
            "kind": self.kind,
            "sha256": self.sha256,
            "sha512": self.sha512,
            "size": self.size,
            "media_type": self.media_type,
            "entries": list(self.entries),
            "collected": self.collected.to_json(),
        }
        if self.copy_of is not None:
            out["copy_of"] = self.copy_of.to_json()
        return out

    @classmethod
    def from_json(cls, value: Any) -> ExhibitRecord:
        kind = _field(value, "kind", str)
        if kind not in (ORIGINAL, SHARING_COPY):
            raise BundleError(f"exhibit kind {kind!r} is neither {ORIGINAL} nor {SHARING_COPY}")
        filename = value.get("filename") if isinstance(value, dict) else None
        if filename is not None and not isinstance(filename, str):
            raise BundleError("an exhibit's filename is a string or null")
        entries = _field(value, "entries", list)
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in entries):
            raise BundleError("an exhibit's entries are log indices (integers)")
        copy_of = value.get("copy_of")
        return cls(
            number=_int(value, "exhibit"),
            path=_field(value, "path", str),
            filename=filename,
            kind=kind,
            sha256=_field(value, "sha256", str),
            sha512=_field(value, "sha512", str),
            size=_int(value, "size"),
            media_type=_field(value, "media_type", str),
            entries=tuple(entries),
            collected=Collection.from_json(_field(value, "collected", dict)),
            copy_of=None if copy_of is None else CopyOrigin.from_json(copy_of),
        )


@dataclass(frozen=True, slots=True)
class BundleInfo:
    """custody/bundle.json: which export this is and the one checkpoint everything is under."""

    export_id: str
    case_id: str
    case_title: str
    organisation: str
    purpose: str
    # Hex key under which the `exported` entries commit to `purpose` (custody.purpose);
    # None in bags made before keyed commitments, whose entries hold a plain SHA-256.
    purpose_key: str | None
    created: str  # RFC 3339, the server's clock when the bag was made
    log_origin: str
    checkpoint: int  # the size of the checkpoint every entry is proven against
    manifest_sha256: str  # SHA-256 of manifest-sha256.txt, as the `exported` entries carry
    exhibits: int
    timestamps_pending: dict[int, tuple[str, ...]]  # checkpoint size -> TSAs without a token

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "export_id": self.export_id,
            "case_id": self.case_id,
            "case_title": self.case_title,
            "organisation": self.organisation,
            "purpose": self.purpose,
            **({"purpose_key": self.purpose_key} if self.purpose_key is not None else {}),
            "created": self.created,
            "log": {"origin": self.log_origin, "checkpoint": self.checkpoint},
            "manifest_sha256": self.manifest_sha256,
            "exhibits": self.exhibits,
            "timestamps_pending": {
                str(size): list(names) for size, names in sorted(self.timestamps_pending.items())
            },
        }

    @classmethod
    def from_json(cls, value: Any) -> BundleInfo:
        if _field(value, "format", str) != FORMAT:
            raise BundleError(f"custody/bundle.json is not {FORMAT}")
        log = _field(value, "log", dict)
        pending = _field(value, "timestamps_pending", dict)
        try:
            timestamps_pending = {
                int(size): tuple(_strings(names, "timestamps_pending"))
                for size, names in pending.items()
            }
        except (ValueError, TypeError) as exc:
            raise BundleError("timestamps_pending maps checkpoint sizes to TSA names") from exc
        return cls(
            export_id=_field(value, "export_id", str),
            case_id=_field(value, "case_id", str),
            case_title=_field(value, "case_title", str),
            organisation=_field(value, "organisation", str),
            purpose=_field(value, "purpose", str),
            purpose_key=_optional_field(value, "purpose_key", str),
            created=_field(value, "created", str),
            log_origin=_field(log, "origin", str),
            checkpoint=_int(log, "checkpoint"),
            manifest_sha256=_field(value, "manifest_sha256", str),
            exhibits=_int(value, "exhibits"),
            timestamps_pending=timestamps_pending,
        )


@dataclass(frozen=True, slots=True)
class Contents:
    """Everything the documents of a bag (exhibits.csv, VERIFY.md, the certificate) say."""

    root: str  # the bag's directory name (and the zip's name without ".zip")
    info: BundleInfo
    exhibits: tuple[ExhibitRecord, ...]
    entries: Mapping[int, dict[str, Any]]  # every entry any exhibit names, decoded
    trusted_times: Mapping[int, datetime | None]  # checkpoint size -> earliest token time
    tokens: Mapping[int, tuple[int, ...]]  # checkpoint size -> TSA slots with a token in the bag
    vkey: str  # the log's verifier key, C2SP note form

    def collected_time(self, record: ExhibitRecord) -> datetime | None:
        """The trusted (RFC 3161) time by which the exhibit had been collected."""
        return self.trusted_times.get(record.collected.checkpoint)


def _field(value: Any, name: str, kind: type) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get(name), kind):
        raise BundleError(f"field {name!r} is missing or not a {kind.__name__}")
    return value[name]


def _optional_field(value: Any, name: str, kind: type) -> Any:
    """The field, or None where the object has none (a bag of an earlier version)."""
    return None if isinstance(value, dict) and name not in value else _field(value, name, kind)


def _int(value: Any, name: str) -> int:
    number = _field(value, name, int)
    if isinstance(number, bool) or number < 0:
        raise BundleError(f"field {name!r} is not a non-negative integer")
    return int(number)


def _strings(values: Any, name: str) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise BundleError(f"field {name!r} is not a list of strings")
    return values
