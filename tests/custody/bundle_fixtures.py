"""Real exhibit bundles for tests, built the way the service builds them (api/bundler.py):
a small in-memory custody log with RFC 6962 proofs, signed checkpoints, receipts, RFC 3161
tokens from a built-in-style TSA, then BagWriter, assemble.write_tags and a signed finish.

`make_bag(directory)` writes `<root>.zip` and returns its path. The helpers after it tamper
with a bag: in its zip's bytes (naively), or unzipped with the manifests, tag manifests and
signatures recomputed (as an attacker who can write files but holds no log key would).
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding
from PIL import Image

from custody.bundle import organisation
from custody.bundle.assemble import LogMaterial, TokenFile, write_tags
from custody.bundle.bagit import format_manifest, payload_oxum
from custody.bundle.layout import (
    ALGORITHMS,
    BAG_INFO,
    ORGANISATION_KEY,
    PAYLOAD_DIR,
    manifest_name,
    number_width,
    payload_name,
    shared_filename,
    signature_name,
    tag_manifest_name,
    unlisted_tag_files,
)
from custody.bundle.model import (
    ORIGINAL,
    SHARING_COPY,
    BundleInfo,
    Collection,
    Contents,
    CopyOrigin,
    ExhibitRecord,
)
from custody.bundle.writer import BagWriter
from custody.checkpoint import Checkpoint, sign_checkpoint
from custody.events import (
    Access,
    CustodyEvent,
    Derivation,
    Export,
    Subject,
    accessed,
    administrative,
    decode_entry,
    derived,
    encode_entry,
    exported,
    format_time,
    ingested,
)
from custody.merkle import consistency_proof, inclusion_proof, leaf_hash, root_from_leaf_hashes
from custody.metadata.copies import PROFILE_VERSION, tool_version
from custody.metadata.jpeg import JpegStripper
from custody.note import Signer, format_vkey, generate_signer
from custody.purpose import commit_purpose
from custody.receipt import Receipt, format_receipt
from custody.tsp import (
    DEFAULT_POLICY,
    TsaIdentity,
    generate_tsa,
    issue_response,
    make_request,
    parse_request,
)

ORIGIN = "custody.example.org"
CASE = "case-7"
EXPORT_ID = "x-0001"
PURPOSE = "Submission to the district court, case 12-345; counsel for the defence."
PURPOSE_KEY = "5e" * 32  # hex: the key the bag's `exported` entries commit to PURPOSE under
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PENDING_TSA = "tsa.partner.example"
PHOTO, COPY, STATEMENT = "photo", "photo-copy", "statement"


@dataclass(frozen=True)
class BagKeys:
    """The log's key, the TSA, and the organisation's key a bag is made with."""

    log: Signer
    tsa: TsaIdentity
    organisation: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> BagKeys:
        tsa = generate_tsa("Custody TSA", now=START - timedelta(days=30), organization="Test")
        return cls(generate_signer(ORIGIN), tsa, organisation.generate_key())

    @property
    def vkey(self) -> str:
        return format_vkey(self.log.verifier())

    @property
    def tsa_root(self) -> x509.Certificate:
        return self.tsa.chain[-1]

    def write(self, directory: Path) -> dict[str, Path]:
        """vkey, tsa-root.pem and organisation.pem files, as a verifying person holds them."""
        directory.mkdir(parents=True, exist_ok=True)
        files = {
            "vkey": directory / "log.vkey",
            "tsa": directory / "tsa-root.pem",
            "org": directory / "organisation.pem",
        }
        files["vkey"].write_text(self.vkey + "\n")
        files["tsa"].write_bytes(self.tsa_root.public_bytes(Encoding.PEM))
        files["org"].write_bytes(organisation.public_pem(self.organisation))
        return files


def photo_jpeg() -> bytes:
    """A phone photo with Exif (make, artist, serial) and a comment: what a copy strips."""
    image = Image.new("RGB", (40, 24), (30, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "CustodyCam"
    exif[0x013B] = "Witness W."
    exif.get_ifd(0x8769)[0xA431] = "SN-0042-XYZ"
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"safehouse")
    return out.getvalue()


STATEMENT_TEXT = b"Statement of W., taken 1 March 2026.\nI saw the vehicle at 21:40.\n"


@dataclass
class _Item:
    key: str
    filename: str
    media_type: str
    data: bytes | Path
    kind: str = ORIGINAL
    copy_of: CopyOrigin | None = None
    sha256: str = ""

    def __post_init__(self) -> None:
        digest = hashlib.sha256()
        with _open(self.data) as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
        self.sha256 = digest.hexdigest()

    @property
    def size(self) -> int:
        return self.data.stat().st_size if isinstance(self.data, Path) else len(self.data)

    def subject(self) -> Subject:
        return Subject(self.sha256, self.size, self.media_type)


def _open(data: bytes | Path) -> BinaryIO:
    return data.open("rb") if isinstance(data, Path) else io.BytesIO(data)


@dataclass
class _Log:
    """An RFC 6962 log in memory, signed by `signer`."""

    signer: Signer
    entries: list[bytes] = field(default_factory=list)

    def append(self, event: CustodyEvent) -> int:
        self.entries.append(encode_entry(event))
        return len(self.entries) - 1

    def _read(self, level: int, index: int) -> bytes:
        leaves = self.entries[index << level : (index + 1) << level]
        return root_from_leaf_hashes([leaf_hash(e) for e in leaves])

    def checkpoint(self, size: int) -> bytes:
        root = root_from_leaf_hashes([leaf_hash(e) for e in self.entries[:size]])
        return sign_checkpoint(Checkpoint(ORIGIN, size, root), self.signer)

    def receipt(self, index: int, size: int) -> bytes:
        proof = tuple(inclusion_proof(index, size, self._read))
        return format_receipt(Receipt(self.entries[index], index, proof, self.checkpoint(size)))

    def consistency(self, old: int, new: int) -> tuple[bytes, ...]:
        return tuple(consistency_proof(old, new, self._read))


def _items(large: Path | None, *, forge_content: bool = False) -> dict[str, _Item]:
    photo = photo_jpeg()
    stripper = JpegStripper()
    out = io.BytesIO()
    report = stripper.strip(io.BytesIO(photo), out)
    copy_of = CopyOrigin(
        original_sha256=hashlib.sha256(photo).hexdigest(),
        profile=PROFILE_VERSION,
        tool=tool_version(stripper),
        removed=report.removed,
        content_kind=report.content_kind,
        content_sha256=hashlib.sha256(b"forged").hexdigest()
        if forge_content
        else report.content_digest,
    )
    items = {
        PHOTO: _Item(PHOTO, "IMG_0042.jpg", "image/jpeg", photo),
        COPY: _Item(
            COPY,
            shared_filename("IMG_0042.jpg") or "",
            "image/jpeg",
            out.getvalue(),
            SHARING_COPY,
            copy_of,
        ),
        STATEMENT: _Item(STATEMENT, "statement W.txt", "text/plain", STATEMENT_TEXT),
    }
    if large is not None:
        items["large"] = _Item("large", large.name, "application/octet-stream", large)
    return items


def _history(log: _Log, items: dict[str, _Item]) -> tuple[dict[str, list[int]], dict[str, int]]:
    """The log before the export: unrelated entries among each exhibit's ingest, its copy's
    derivation and accesses; checkpoints are archived at sizes 4 and 8."""
    photo, copy, statement = items[PHOTO], items[COPY], items[STATEMENT]
    origin = copy.copy_of
    assert origin is not None
    purpose = commit_purpose("review before the hearing", b"\x07" * 32)

    def at(minutes: int) -> dict[str, Any]:
        return {"event_id": f"e-{minutes:04d}", "time": START + timedelta(minutes=minutes)}

    log.append(administrative("case-created", **at(0), actor="p-admin", case=CASE))
    taken = log.append(ingested(**at(1), actor="p-field-1", case=CASE, subject=photo.subject()))
    log.append(
        administrative("token-created", **at(2), actor="p-admin", target="t-1", role="field")
    )
    other = Subject(hashlib.sha256(b"another case").hexdigest(), 12, "text/plain")
    log.append(ingested(**at(3), actor="p-field-3", case="case-9", subject=other))
    derivation = Derivation(
        origin.original_sha256,
        origin.profile,
        origin.tool,
        origin.removed,
        origin.content_kind,
        origin.content_sha256,
    )
    made = log.append(
        derived(
            **at(4), actor="p-lawyer-1", case=CASE, subject=copy.subject(), derivation=derivation
        )
    )
    stated = log.append(
        ingested(**at(5), actor="p-field-2", case=CASE, subject=statement.subject())
    )
    read = Access("original", purpose)
    seen = log.append(
        accessed(**at(6), actor="p-lawyer-1", case=CASE, subject=photo.subject(), access=read)
    )
    shared = log.append(
        accessed(
            **at(7), actor="p-lawyer-2", case=CASE, subject=copy.subject(), access=Access("copy")
        )
    )
    about = {PHOTO: [taken, made, seen], COPY: [made, shared], STATEMENT: [stated]}
    collected = {PHOTO: taken, COPY: taken, STATEMENT: stated}
    if "large" in items:
        big = items["large"]
        collected["large"] = log.append(
            ingested(**at(8), actor="p-field-1", case=CASE, subject=big.subject())
        )
        about["large"] = [collected["large"]]
    return about, collected


def make_bag(
    directory: Path,
    *,
    keys: BagKeys | None = None,
    exhibits: Sequence[str] = (PHOTO, COPY, STATEMENT),
    large: Path | None = None,
    pending: bool = False,
    purpose: str = PURPOSE,
    forge_content: bool = False,
    plain_purpose: bool = False,
) -> Path:
    """Write a bag of `exhibits` (and `large`, a file, as the last exhibit) to
    `directory/<root>.zip`, as the service would; return the zip's path. `forge_content`
    logs a wrong content digest for the copy (as a broken stripper would); `plain_purpose`
    makes the bag of a service from before keyed purpose commitments (the entries hold the
    purpose's plain SHA-256, bundle.json no key)."""
    keys = keys or BagKeys.generate()
    items = _items(large, forge_content=forge_content)
    chosen = [items[key] for key in exhibits] + ([items["large"]] if large else [])
    log = _Log(keys.log)
    about, collected = _history(log, items)
    root = f"custody-export-{EXPORT_ID}"
    path = directory / f"{root}.zip"
    width = number_width(len(chosen))
    names = {
        item.key: payload_name(n, width, item.filename, "") for n, item in enumerate(chosen, 1)
    }
    with path.open("wb") as sink:
        writer = BagWriter(sink, root, time=START + timedelta(hours=2))
        sha512s = {}
        for item in chosen:
            with _open(item.data) as stream:
                sha512s[item.key] = writer.add_payload(names[item.key], stream, size=item.size)[
                    "sha512"
                ]
        manifest_sha256 = hashlib.sha256(writer.payload_manifests()).hexdigest()
        purpose_key = None if plain_purpose else PURPOSE_KEY
        _log_exports(log, chosen, about, manifest_sha256, purpose, purpose_key)
        records = [
            _record(n, item, names[item.key], sha512s[item.key], about, collected, log)
            for n, item in enumerate(chosen, 1)
        ]
        info = BundleInfo(
            export_id=EXPORT_ID,
            case_id=CASE,
            case_title="W. v. State",
            organisation="Legal Aid Test",
            purpose=purpose,
            purpose_key=purpose_key,
            created=format_time(START + timedelta(hours=2)),
            log_origin=ORIGIN,
            checkpoint=len(log.entries),
            manifest_sha256=manifest_sha256,
            exhibits=len(records),
            timestamps_pending={len(log.entries): (PENDING_TSA,)} if pending else {},
        )
        contents, material = _gather(root, info, records, log, keys)
        write_tags(
            writer, contents, material, organisation_pem=organisation.public_pem(keys.organisation)
        )
        writer.finish(lambda data: organisation.sign(keys.organisation, data))
    return path


@dataclass(frozen=True, slots=True)
class _PlainPurposeExport(Export):
    """An `exported` entry's export as logged before keyed commitments: `purpose_sha256`."""

    def to_json(self) -> dict[str, Any]:
        out = Export.to_json(self)
        out["purpose_sha256"] = out.pop("purpose_hmac_sha256")
        return out


def _log_exports(
    log: _Log,
    chosen: list[_Item],
    about: dict[str, list[int]],
    manifest_sha256: str,
    purpose: str,
    purpose_key: str | None,
) -> None:
    """One `exported` entry per exhibit (as api/bundler.py logs them), then a later entry;
    without a key, as the service logged them before keyed purpose commitments."""
    for number, item in enumerate(chosen, 1):
        export: Export
        if purpose_key is None:
            plain = hashlib.sha256(purpose.encode()).hexdigest()
            export = _PlainPurposeExport(EXPORT_ID, number, len(chosen), manifest_sha256, plain)
        else:
            committed = commit_purpose(purpose, bytes.fromhex(purpose_key))
            export = Export(EXPORT_ID, number, len(chosen), manifest_sha256, committed)
        about[item.key].append(
            log.append(
                exported(
                    event_id=f"x-{number:04d}",
                    time=START + timedelta(hours=1),
                    actor="p-lawyer-1",
                    case=CASE,
                    subject=item.subject(),
                    export=export,
                )
            )
        )
    log.append(
        administrative(
            "token-revoked",
            event_id="e-late",
            time=START + timedelta(hours=1, minutes=5),
            actor="p-admin",
            target="t-1",
        )
    )


def _record(
    number: int,
    item: _Item,
    path: str,
    sha512: str,
    about: dict[str, list[int]],
    collected: dict[str, int],
    log: _Log,
) -> ExhibitRecord:
    size = len(log.entries)
    entry = collected[item.key]
    checkpoint = next(s for s in (4, 8, size) if s > entry)  # the first archived after it
    proof = log.consistency(checkpoint, size) if checkpoint < size else ()
    return ExhibitRecord(
        number=number,
        path=path,
        filename=item.filename,
        kind=item.kind,
        sha256=item.sha256,
        sha512=sha512,
        size=item.size,
        media_type=item.media_type,
        entries=tuple(sorted({*about[item.key], entry})),
        collected=Collection(entry, checkpoint, proof),
        copy_of=item.copy_of,
    )


def _gather(
    root: str, info: BundleInfo, records: list[ExhibitRecord], log: _Log, keys: BagKeys
) -> tuple[Contents, LogMaterial]:
    size = info.checkpoint
    sizes = sorted({size, *(r.collected.checkpoint for r in records)})
    checkpoints = {s: log.checkpoint(s) for s in sizes}
    stamped = {s: START + timedelta(minutes=s, seconds=30) for s in sizes}
    tokens = [
        TokenFile(s, 0, _token(keys.tsa, checkpoints[s], s, stamped[s]), keys.tsa.chain_pem())
        for s in sizes
    ]
    indices = sorted({i for r in records for i in r.entries})
    receipts = {i: log.receipt(i, size) for i in indices}
    contents = Contents(
        root=root,
        info=info,
        exhibits=tuple(records),
        entries={i: decode_entry(log.entries[i]) for i in indices},
        trusted_times=dict(stamped),
        tokens=dict.fromkeys(sizes, (0,)),
        vkey=keys.vkey,
    )
    return contents, LogMaterial(checkpoints, receipts, tokens)


def _token(tsa: TsaIdentity, checkpoint: bytes, serial: int, time: datetime) -> bytes:
    """The TimeStampResp a built-in TSA answers to the log's request over `checkpoint`."""
    request = parse_request(make_request(checkpoint, nonce=serial + 1000))
    return issue_response(request, tsa=tsa, serial=serial, policy=DEFAULT_POLICY, gen_time=time)


# ---------------------------------------------------------------------------------------
# Tampering
# ---------------------------------------------------------------------------------------


def unzip_bag(zip_path: Path, directory: Path) -> Path:
    """Extract the zip into `directory`; the bag's own directory."""
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(directory)
        root = archive.namelist()[0].split("/", 1)[0]
    return directory / root


def zip_bag(bag: Path, zip_path: Path) -> Path:
    """Zip a bag directory back (one top-level directory, stored entries)."""
    with zipfile.ZipFile(zip_path, "w") as archive:
        for file in sorted(p for p in bag.rglob("*") if p.is_file()):
            archive.write(file, f"{bag.name}/{file.relative_to(bag).as_posix()}")
    return zip_path


def flip_stored_byte(zip_path: Path, member: str, offset: int = 0) -> None:
    """Change one byte of a stored zip entry in place, leaving its CRC-32 as it was."""
    with zipfile.ZipFile(zip_path) as archive:
        info = archive.getinfo(member)
        assert info.compress_type == zipfile.ZIP_STORED
    with zip_path.open("r+b") as stream:
        stream.seek(info.header_offset)
        header = stream.read(30)  # the local file header (APPNOTE 4.3.7)
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        position = info.header_offset + 30 + name_length + extra_length + offset
        stream.seek(position)
        byte = stream.read(1)
        stream.seek(position)
        stream.write(bytes([byte[0] ^ 0x01]))


def reseal(bag: Path, *, key: Ed25519PrivateKey | None, payload: bool = True) -> None:
    """Recompute the tag manifests of a changed bag as an attacker would, and first (unless
    `payload` is False) the payload manifests and Payload-Oxum; with `key`, also replace the
    organisation's key by its own and re-sign."""
    if payload:
        _reseal_payload(bag)
    if key is not None:
        (bag / ORGANISATION_KEY).write_bytes(organisation.public_pem(key))
    skip = unlisted_tag_files()
    tags = sorted(
        p
        for p in bag.rglob("*")
        if p.is_file()
        and not _relative(bag, p).startswith(PAYLOAD_DIR)
        and _relative(bag, p) not in skip
    )
    for algorithm in ALGORITHMS:
        lines = [
            (_relative(bag, p), hashlib.new(algorithm, p.read_bytes()).hexdigest()) for p in tags
        ]
        text = format_manifest(lines)
        (bag / tag_manifest_name(algorithm)).write_bytes(text)
        if key is not None:
            (bag / signature_name(algorithm)).write_bytes(organisation.sign(key, text))


def _reseal_payload(bag: Path) -> None:
    files = sorted(
        p for p in bag.rglob("*") if p.is_file() and _relative(bag, p).startswith(PAYLOAD_DIR)
    )
    for algorithm in ALGORITHMS:
        lines = [
            (_relative(bag, p), hashlib.new(algorithm, p.read_bytes()).hexdigest()) for p in files
        ]
        (bag / manifest_name(algorithm)).write_bytes(format_manifest(lines))
    info = (bag / BAG_INFO).read_text()
    oxum = payload_oxum(sum(p.stat().st_size for p in files), len(files))
    info = "".join(
        f"Payload-Oxum: {oxum}\n" if line.startswith("Payload-Oxum:") else line
        for line in info.splitlines(keepends=True)
    )
    (bag / BAG_INFO).write_text(info)


def _relative(bag: Path, path: Path) -> str:
    return path.relative_to(bag).as_posix()
