"""BagIt checks of a bag (RFC 8493 §3): its structure, completeness against the payload and
tag manifests and Payload-Oxum, and the fixity of every file under both algorithms.

Each file is read once, in chunks, and both digests are fed from the same chunks, SHA-512
on a worker thread while the next chunk is read and SHA-256 is computed (hashlib releases
the GIL), so memory stays flat and a large exhibit takes about as long as its slower hash.
Tag files are small and kept in memory, so the later checks parse the very bytes hashed.
"""

from __future__ import annotations

import hashlib
import zipfile
import zlib
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO

from custody.bundle.bagit import parse_bag_info, parse_manifest, payload_oxum
from custody.bundle.layout import (
    ALGORITHMS,
    BAG_INFO,
    BAGIT_TXT,
    PAYLOAD_DIR,
    manifest_name,
    tag_manifest_name,
    unlisted_tag_files,
)
from custody.bundle.verify_report import Findings
from custody.bundle.verify_source import BagSource
from custody.errors import BundleError

CHUNK = 1024 * 1024
MAX_TAG_BYTES = 64 * 1024 * 1024  # tag files are text, keys, proofs and a PDF; bounds memory
BAGIT_VERSION = "1.0"  # RFC 8493 §2.1.1
# What reading a file can raise: a zip's CRC-32 mismatch (BadZipFile), a truncated or
# corrupt deflate stream, an encrypted or unsupported entry, an unreadable disk.
READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError)


@dataclass
class BagFiles:
    """What the BagIt checks learnt, for the checks after them."""

    sizes: Mapping[str, int]
    tags: dict[str, bytes] = field(default_factory=dict)  # tag file -> its bytes, as hashed
    digests: dict[str, dict[str, str]] = field(default_factory=dict)  # file -> alg -> hex
    payload: dict[str, dict[str, str]] = field(default_factory=dict)  # alg -> payload manifest
    octets: int = 0


def check_bag(source: BagSource, findings: Findings) -> BagFiles:
    """Structure, completeness and fixity (RFC 8493 §3), every failure named."""
    for name in source.stray:
        findings.fail(name, "structure", f"only the bag directory {source.root}/", "also this")
    bag = BagFiles(source.files())
    _hash_all(source, bag, findings)
    _check_declaration(bag, findings)
    payload_files = {p for p in bag.sizes if p.startswith(PAYLOAD_DIR)}
    tag_files = set(bag.sizes) - payload_files - unlisted_tag_files()
    for algorithm in ALGORITHMS:
        listed = _manifest(bag, manifest_name(algorithm), findings)
        bag.payload[algorithm] = listed
        _check_listing(manifest_name(algorithm), listed, payload_files, findings)
        _check_fixity(manifest_name(algorithm), algorithm, listed, bag, findings)
        tags = _manifest(bag, tag_manifest_name(algorithm), findings)
        _check_listing(tag_manifest_name(algorithm), tags, tag_files, findings)
        _check_fixity(tag_manifest_name(algorithm), algorithm, tags, bag, findings)
    _check_oxum(bag, payload_files, findings)
    return bag


def _hash_all(source: BagSource, bag: BagFiles, findings: Findings) -> None:
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha512") as pool:
        for path, size in bag.sizes.items():
            keep = not path.startswith(PAYLOAD_DIR)
            if keep and size > MAX_TAG_BYTES:
                findings.fail(
                    path, "structure", f"a tag file of at most {MAX_TAG_BYTES} bytes", size
                )
                keep = False
            try:
                with source.open(path) as stream:
                    digests, data = _hash_stream(stream, pool, keep=keep)
            except READ_ERRORS as exc:
                findings.fail(path, "read", "its bytes, as the manifests list them", repr(exc))
                continue
            bag.digests[path] = digests
            bag.octets += size
            if data is not None:
                bag.tags[path] = data


def _hash_stream(
    stream: IO[bytes], pool: ThreadPoolExecutor, *, keep: bool
) -> tuple[dict[str, str], bytes | None]:
    sha256, sha512 = hashlib.sha256(), hashlib.sha512()
    kept: list[bytes] | None = [] if keep else None
    pending: Future[None] | None = None
    while chunk := stream.read(CHUNK):
        if pending is not None:
            pending.result()
        pending = pool.submit(sha512.update, chunk)
        sha256.update(chunk)
        if kept is not None:
            kept.append(chunk)
    if pending is not None:
        pending.result()
    digests = {"sha256": sha256.hexdigest(), "sha512": sha512.hexdigest()}
    return digests, None if kept is None else b"".join(kept)


def _check_declaration(bag: BagFiles, findings: Findings) -> None:
    """§2.1.1: bagit.txt declares the version and the tag files' encoding."""
    data = bag.tags.get(BAGIT_TXT)
    if data is None:
        findings.fail(BAGIT_TXT, "structure", "the BagIt declaration", "missing")
        return
    try:
        fields = dict(parse_bag_info(data))
    except BundleError as exc:
        findings.fail(BAGIT_TXT, "structure", "'Label: value' lines", "malformed", str(exc))
        return
    version = fields.get("BagIt-Version")
    if version != BAGIT_VERSION:
        findings.fail(BAGIT_TXT, "structure", f"BagIt-Version {BAGIT_VERSION}", version)
    encoding = fields.get("Tag-File-Character-Encoding")
    if encoding is None or encoding.upper() != "UTF-8":
        findings.fail(BAGIT_TXT, "structure", "Tag-File-Character-Encoding UTF-8", encoding)


def _manifest(bag: BagFiles, name: str, findings: Findings) -> dict[str, str]:
    data = bag.tags.get(name)
    if data is None:
        if name not in bag.sizes:  # else its read failure is already named
            findings.fail(name, "completeness", "present", "missing")
        return {}
    try:
        return parse_manifest(data, name=name)
    except BundleError as exc:
        findings.fail(name, "structure", "'<checksum>  <path>' lines", "malformed", str(exc))
        return {}


def _check_listing(
    manifest: str, listed: Mapping[str, str], present: set[str], findings: Findings
) -> None:
    """§3: every file is listed, and every listed file is there."""
    for path in sorted(present - set(listed)):
        findings.fail(path, "completeness", f"listed in {manifest}", "not listed (an added file?)")
    for path in sorted(set(listed) - present):
        findings.fail(path, "completeness", "present", f"missing (listed in {manifest})")


def _check_fixity(
    manifest: str, algorithm: str, listed: Mapping[str, str], bag: BagFiles, findings: Findings
) -> None:
    for path, expected in listed.items():
        found = bag.digests.get(path, {}).get(algorithm)
        if found is not None and found != expected:
            findings.fail(path, f"fixity {algorithm}", expected, found, f"as {manifest} lists it")


def _check_oxum(bag: BagFiles, payload_files: set[str], findings: Findings) -> None:
    """§2.2.2: Payload-Oxum is the payload's octet count and file count."""
    data = bag.tags.get(BAG_INFO)
    if data is None:
        findings.fail(BAG_INFO, "completeness", "present", "missing")
        return
    try:
        fields = parse_bag_info(data)
    except BundleError as exc:
        findings.fail(BAG_INFO, "structure", "'Label: value' lines", "malformed", str(exc))
        return
    declared = [value for label, value in fields if label.lower() == "payload-oxum"]
    actual = payload_oxum(sum(bag.sizes[p] for p in payload_files), len(payload_files))
    if declared != [actual]:
        expected = ", ".join(declared) or "a Payload-Oxum"
        findings.fail(BAG_INFO, "Payload-Oxum", expected, actual, "<octets>.<files> of data/")
