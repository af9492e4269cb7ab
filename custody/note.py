"""C2SP signed-note (c2sp.org/signed-note) with Ed25519 keys, byte-compatible with Go's sumdb/note.

Keys use Go's text forms, so they work with Go's `note.NewVerifier` / `note.NewSigner` and
with every tool built on them:

    vkey  name+hexkeyid+base64(0x01 || 32-byte public key)
    skey  PRIVATE+KEY+name+hexkeyid+base64(0x01 || 32-byte seed)

Deliberate differences from Go's `note.Open`, all stricter: every signature line from a known
key is verified (the spec: "verifiers MUST verify the signature"), where Go skips repeats of a
key; base64 must be canonical, so no signature line has two spellings; and two different keys
with one name and id are refused when the verifiers are given, not only when one is used.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from custody.errors import NoteError, SignatureError, UnknownKeyError

ED25519 = 0x01  # signed-note "Signature types": 0x01 is Ed25519
SIGNATURE_PREFIX = "\u2014 "  # signed-note "Format": em dash U+2014, then a space
MAX_SIGNATURES = 100  # Go's note.Open limit; the spec requires accepting at least 16
_PRIVATE_PREFIX = "PRIVATE+KEY+"  # Go note.NewSigner's private-key format
_HEX_ID = re.compile(r"[0-9a-fA-F]{8}")  # Go parses the id with strconv.ParseUint(s, 16, 32)
# signed-note "Format": no ASCII control characters (below U+0020) other than newline.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
# Unicode White_Space (the set Go's unicode.IsSpace tests): key names must not contain any.
_SPACES = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def decode_base64(text: str) -> bytes:
    """Standard base64 (RFC 4648 §4), rejecting any spelling but the canonical one.

    Go's decoder also accepts non-zero padding bits; refusing them means a changed character
    always changes the decoded bytes, so tampering cannot hide in an alternative spelling.
    """
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("base64 is not in canonical form")
    return raw


def encode_base64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def key_id(name: str, public_key: bytes) -> int:
    """signed-note "Ed25519 signatures": SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()
    (value,) = struct.unpack(">I", digest[:4])
    return int(value)


def is_valid_name(name: str) -> bool:
    """signed-note "Format": non-empty, no Unicode spaces, no "+" (and no control characters)."""
    return (
        bool(name)
        and "+" not in name
        and not any(c in _SPACES or c < " " for c in name)
        and _is_utf8(name)
    )


@dataclass(frozen=True, slots=True)
class Verifier:
    """A named Ed25519 public key that notes may be signed by."""

    name: str
    public_key: bytes  # 32 bytes, RFC 8032 encoding

    def __post_init__(self) -> None:
        if not is_valid_name(self.name):
            raise NoteError(f"invalid key name {self.name!r}")
        if len(self.public_key) != 32:
            raise NoteError(f"an Ed25519 public key is 32 bytes, not {len(self.public_key)}")

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True, slots=True)
class Signer:
    """A named Ed25519 private key."""

    name: str
    private_key: Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        if not is_valid_name(self.name):
            raise NoteError(f"invalid key name {self.name!r}")

    @property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> int:
        return key_id(self.name, self.public_key)

    def verifier(self) -> Verifier:
        return Verifier(self.name, self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature line: the key's name and id, and the signature bytes after the id."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        sig = struct.pack(">I", self.key_id) + self.signature
        return f"{SIGNATURE_PREFIX}{self.name} {encode_base64(sig)}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """An opened note: its text, the signatures that verified, and those from unknown keys."""

    text: str
    signatures: tuple[Signature, ...]
    unverified: tuple[Signature, ...] = ()


def generate_signer(name: str) -> Signer:
    return Signer(name, Ed25519PrivateKey.generate())


def format_vkey(verifier: Verifier) -> str:
    """Go's verifier key: name+hexkeyid+base64(0x01 || public key)."""
    key = encode_base64(bytes([ED25519]) + verifier.public_key)
    return f"{verifier.name}+{verifier.key_id:08x}+{key}"


def parse_vkey(vkey: str) -> Verifier:
    name, hex_id, key = _parse_key_text(vkey, what="verifier key")
    verifier = Verifier(name, key)
    _check_key_id(hex_id, verifier.key_id, what="verifier key")
    return verifier


def format_signer(signer: Signer) -> str:
    """Go's private key: PRIVATE+KEY+name+hexkeyid+base64(0x01 || seed). Keep it secret."""
    seed = encode_base64(bytes([ED25519]) + signer.private_key.private_bytes_raw())
    return f"{_PRIVATE_PREFIX}{signer.name}+{signer.key_id:08x}+{seed}"


def parse_signer(skey: str) -> Signer:
    if not skey.startswith(_PRIVATE_PREFIX):
        raise NoteError("a private key starts with PRIVATE+KEY+")
    name, hex_id, seed = _parse_key_text(skey.removeprefix(_PRIVATE_PREFIX), what="private key")
    signer = Signer(name, Ed25519PrivateKey.from_private_bytes(seed))
    # The id names the public key, so it can only be checked after deriving it (as Go does).
    _check_key_id(hex_id, signer.key_id, what="private key")
    return signer


def sign_note(text: str, signers: Sequence[Signer]) -> bytes:
    """The signed note: text, a blank line, then one signature line per signer."""
    if not signers:
        raise NoteError("a note needs at least one signature")
    _check_text(text)
    message = text.encode()
    lines = (Signature(s.name, s.key_id, s.sign(message)).line() for s in signers)
    return message + b"\n" + "".join(lines).encode()


def open_note(data: bytes, verifiers: Iterable[Verifier]) -> Note:
    """Verify `data` against the known keys and return its text and signatures.

    Per signed-note "Signatures": lines from unknown keys are ignored, a known key whose
    signature fails rejects the note, and at least one known key must have signed.
    """
    known = _index(verifiers)
    text, lines = _split(data)
    message = text.encode()
    verified: dict[Signature, None] = {}
    unknown: dict[Signature, None] = {}
    for line in lines:
        sig = _parse_signature_line(line)
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            unknown[sig] = None
        elif verifier.verify(message, sig.signature):
            verified[sig] = None
        else:
            raise SignatureError(sig.name, sig.key_id)
    if not verified:
        raise UnknownKeyError(tuple(f"{s.name}+{s.key_id:08x}" for s in unknown))
    return Note(text, tuple(verified), tuple(unknown))


def _index(verifiers: Iterable[Verifier]) -> dict[tuple[str, int], Verifier]:
    known: dict[tuple[str, int], Verifier] = {}
    for verifier in verifiers:
        slot = (verifier.name, verifier.key_id)
        if known.setdefault(slot, verifier) != verifier:
            raise NoteError(f"ambiguous key {verifier.name}+{verifier.key_id:08x}")
    return known


def _split(data: bytes) -> tuple[str, list[str]]:
    """signed-note "Format": the text runs to the last blank line; signature lines follow."""
    try:
        note = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError("a note must be valid UTF-8") from exc
    if _CONTROL.search(note):
        raise NoteError("a note must not contain control characters other than newline")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("a note needs a blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("a note must end with a signature line and a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"a note may carry at most {MAX_SIGNATURES} signatures")
    return text, lines


def _parse_signature_line(line: str) -> Signature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError(f"not a signature line: {line[:80]!r}")
    name, _, b64 = line.removeprefix(SIGNATURE_PREFIX).partition(" ")
    try:
        raw = decode_base64(b64)
    except ValueError as exc:
        raise NoteError(f"signature by {name!r} is not base64") from exc
    if not is_valid_name(name) or len(raw) < 5:
        raise NoteError(f"malformed signature line for {name!r}")
    (kid,) = struct.unpack(">I", raw[:4])
    return Signature(name, int(kid), raw[4:])


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if _CONTROL.search(text) or not _is_utf8(text):
        raise NoteError("note text must be UTF-8 without control characters but newline")


def _parse_key_text(text: str, *, what: str) -> tuple[str, str, bytes]:
    """Split name+hexkeyid+base64(0x01 || key) into the name, the id and the 32 key bytes."""
    parts = text.split("+", 2)  # base64 may itself contain "+", as in Go's chop
    if len(parts) != 3 or not _HEX_ID.fullmatch(parts[1]):
        raise NoteError(f"a {what} is name+keyid+key, with an 8-hex-digit key id")
    try:
        key = decode_base64(parts[2])
    except ValueError as exc:
        raise NoteError(f"the {what} is not base64") from exc
    if len(key) != 33 or key[0] != ED25519:
        raise NoteError(f"the {what} is not an Ed25519 key (0x01 and 32 bytes)")
    return parts[0], parts[1], key[1:]


def _check_key_id(hex_id: str, expected: int, *, what: str) -> None:
    if int(hex_id, 16) != expected:
        raise NoteError(f"the {what}'s id {hex_id} does not match its key ({expected:08x})")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True
