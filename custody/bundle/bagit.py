"""BagIt text (RFC 8493 §2): bagit.txt, manifests and bag-info.txt, written and parsed."""

from __future__ import annotations

import re
from collections.abc import Iterable

from custody.errors import BundleError

BAGIT_DECLARATION = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"  # §2.1.1
_HEX = re.compile(r"[0-9a-f]+")
_LABEL = re.compile(r"[^:\s][^:\r\n]*")


def encode_path(path: str) -> str:
    """§2.1.3: a manifest filepath percent-encodes CR, LF and % (only those)."""
    return path.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def decode_path(text: str) -> str:
    return (
        text.replace("%0A", "\n")
        .replace("%0a", "\n")
        .replace("%0D", "\r")
        .replace("%0d", "\r")
        .replace("%25", "%")
    )


def format_manifest(lines: Iterable[tuple[str, str]]) -> bytes:
    """`<checksum>  <filepath>` per line (§2.1.3); two spaces, so `sha256sum -c` reads it."""
    return "".join(f"{digest}  {encode_path(path)}\n" for path, digest in lines).encode("utf-8")


def parse_manifest(data: bytes, *, name: str) -> dict[str, str]:
    """path -> lowercase hex checksum; a malformed or repeated line is a BundleError."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(f"{name} is not UTF-8") from exc
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, path = line.partition(" ")
        path = decode_path(path.lstrip(" \t").removeprefix("*"))
        if not _HEX.fullmatch(digest.lower()) or not path:
            raise BundleError(f"{name} line {number} is not '<checksum> <path>'")
        if path in entries:
            raise BundleError(f"{name} lists {path} twice")
        entries[path] = digest.lower()
    return entries


def format_bag_info(fields: Iterable[tuple[str, str]]) -> bytes:
    """`Label: value` lines (§2.2.2); a value's line breaks become indented continuations."""
    lines = []
    for label, value in fields:
        if not _LABEL.fullmatch(label):
            raise BundleError(f"bag-info label {label!r} is not a label")
        folded = "\n  ".join(part.strip() for part in value.splitlines() or [""])
        lines.append(f"{label}: {folded}\n")
    return "".join(lines).encode("utf-8")


def parse_bag_info(data: bytes) -> list[tuple[str, str]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError("bag-info.txt is not UTF-8") from exc
    fields: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and fields:
            label, value = fields[-1]
            fields[-1] = (label, f"{value}\n{line.strip()}")
            continue
        label, colon, value = line.partition(":")
        if not colon or not _LABEL.fullmatch(label):
            raise BundleError(f"bag-info.txt line {line[:40]!r} is not 'Label: value'")
        fields.append((label, value.strip()))
    return fields


def payload_oxum(octets: int, count: int) -> str:
    """§2.2.2 Payload-Oxum: `<octet count>.<stream count>` of the payload."""
    return f"{octets}.{count}"
