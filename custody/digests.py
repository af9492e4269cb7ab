"""Streaming multi-algorithm hashing and RFC 9530 digest fields (Repr-/Content-Digest)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from custody.errors import DigestHeaderError, DigestMismatchError, UnsupportedAlgorithmError

# RFC 9530 §5 / IANA "Hash Algorithms for HTTP Digest Fields": the active, secure ones.
# Keys are the HTTP names, values the hashlib names.
HTTP_ALGORITHMS: Mapping[str, str] = {"sha-256": "sha256", "sha-512": "sha512"}
# Algorithms the service can compute as extra digests of an original.
EXTRA_ALGORITHMS = frozenset({"sha512", "sha384", "sha3_256", "sha3_512", "blake2b"})

# RFC 8941 §3.2 dictionary member: key "=" byte sequence (":" base64 ":"), plus parameters.
_KEY = re.compile(r"^[a-z*][a-z0-9_\-.*]*$")
_BYTES = re.compile(r"^:([A-Za-z0-9+/=]*):$")


@dataclass(frozen=True, slots=True)
class DeclaredDigest:
    """One digest a client declared: hashlib algorithm name and lowercase hex value."""

    algorithm: str
    hex: str
    header: str


def parse_digest_field(header: str, value: str) -> list[DeclaredDigest]:
    """Parse an RFC 9530 digest field into the digests we can check.

    Members with algorithms we do not know are ignored (RFC 9530 §3: a recipient MAY ignore
    them); the whole field is rejected if it is not a well-formed RFC 8941 dictionary of
    byte sequences, or if a known algorithm's value has the wrong length.
    """
    digests: list[DeclaredDigest] = []
    for member in _split_members(header, value):
        key, sep, raw = member.partition("=")
        key = key.strip()
        raw = raw.split(";", 1)[0].strip()  # parameters carry nothing we use
        if not sep or not _KEY.match(key):
            raise DigestHeaderError(header, f"{member.strip()!r} is not 'algorithm=:base64:'")
        match = _BYTES.match(raw)
        if match is None:
            raise DigestHeaderError(header, f"the value of {key} is not a ':base64:' sequence")
        try:
            digest = base64.b64decode(match.group(1), validate=True)
        except binascii.Error as exc:
            raise DigestHeaderError(header, f"the value of {key} is not valid base64") from exc
        algorithm = HTTP_ALGORITHMS.get(key)
        if algorithm is None:
            continue
        if len(digest) != hashlib.new(algorithm).digest_size:
            raise DigestHeaderError(
                header, f"{key} must be {hashlib.new(algorithm).digest_size} bytes"
            )
        digests.append(DeclaredDigest(algorithm, digest.hex(), header))
    return digests


def _split_members(header: str, value: str) -> list[str]:
    members = list(value.split(","))
    if not value.strip() or any(not m.strip() for m in members):
        raise DigestHeaderError(header, "empty dictionary member")
    return members


def format_digest_field(algorithm: str, hex_value: str) -> str:
    """The RFC 9530 field value for one digest, e.g. `sha-256=:...:`."""
    names = {v: k for k, v in HTTP_ALGORITHMS.items()}
    if algorithm not in names:
        raise UnsupportedAlgorithmError(algorithm)
    return f"{names[algorithm]}=:{base64.b64encode(bytes.fromhex(hex_value)).decode()}:"


class MultiHasher:
    """SHA-256 plus any extra algorithms, updated together over one stream."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        names = ["sha256", *sorted(set(extra) - {"sha256"})]
        for name in names[1:]:
            if name not in EXTRA_ALGORITHMS:
                raise UnsupportedAlgorithmError(name)
        self._hashes = {name: hashlib.new(name) for name in names}
        self.size = 0

    def update(self, chunk: bytes | memoryview) -> None:
        for h in self._hashes.values():
            h.update(chunk)
        self.size += len(chunk)

    def hexdigests(self) -> dict[str, str]:
        return {name: h.hexdigest() for name, h in self._hashes.items()}


def check_declared(declared: Iterable[DeclaredDigest], computed: Mapping[str, str]) -> None:
    """Raise `DigestMismatchError` for the first declared digest the body does not match.

    A declared algorithm that was not computed is computed by the caller beforehand:
    `algorithms_needed` says which.
    """
    for d in declared:
        actual = computed[d.algorithm]
        if actual != d.hex:
            raise DigestMismatchError(d.algorithm, d.hex, actual)


def algorithms_needed(declared: Iterable[DeclaredDigest]) -> set[str]:
    return {d.algorithm for d in declared}
