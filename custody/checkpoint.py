"""C2SP tlog-checkpoint (c2sp.org/tlog-checkpoint): a log's signed tree head as a signed note."""

from __future__ import annotations

import re
from dataclasses import dataclass

from custody.errors import CheckpointError
from custody.note import (
    Signer,
    Verifier,
    decode_base64,
    encode_base64,
    open_note,
    sign_note,
)

HASH_SIZE = 32  # RFC 6962 with SHA-256, as tlog-tiles fixes
MAX_SIZE = 2**63 - 1  # Go's sumdb/tlog counts leaves in an int64
# tlog-checkpoint "Note text" 2: ASCII decimal, no leading zeroes unless the tree is empty.
_SIZE = re.compile(r"0|[1-9][0-9]*")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The origin, tree size and RFC 6962 root hash of a log, plus opaque extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # tlog-checkpoint "Note text": every line is non-empty and none may hold a newline.
        for line in (self.origin, *self.extensions):
            if not line or "\n" in line:
                raise CheckpointError(f"checkpoint line {line!r} is empty or holds a newline")
        if not 0 <= self.size <= MAX_SIZE:
            raise CheckpointError(f"tree size {self.size} is out of range")
        if len(self.root) != HASH_SIZE:
            raise CheckpointError(f"root hash is {len(self.root)} bytes, not {HASH_SIZE}")


def format_checkpoint(checkpoint: Checkpoint) -> str:
    """The note text: origin, decimal size, base64 root, extension lines; each ends in "\\n"."""
    lines = (
        checkpoint.origin,
        str(checkpoint.size),
        encode_base64(checkpoint.root),
        *checkpoint.extensions,
    )
    return "".join(f"{line}\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint's note text strictly, so it has exactly one spelling."""
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("a checkpoint has at least three lines: origin, size, root")
    origin, size, root, *extensions = lines
    if not _SIZE.fullmatch(size):
        raise CheckpointError(f"tree size {size!r} is not a decimal without leading zeroes")
    try:
        root_hash = decode_base64(root)
    except ValueError as exc:
        raise CheckpointError(f"root hash {root!r} is not canonical base64") from exc
    return Checkpoint(origin, int(size), root_hash, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer) -> bytes:
    """The signed checkpoint note, signed by the log's key (whose name is the origin)."""
    _check_origin(checkpoint, signer.name)
    return sign_note(format_checkpoint(checkpoint), [signer])


def open_checkpoint(data: bytes, verifier: Verifier) -> Checkpoint:
    """Verify a signed checkpoint from the log whose key is `verifier`, and parse it.

    tlog-checkpoint "Signatures": the log's key name SHOULD match the origin; we require
    it, so a key can never vouch for a tree head that claims to be another log's.
    Other signatures (witness cosignatures, rotated keys) are ignored, per signed-note.
    """
    note = open_note(data, [verifier])
    checkpoint = parse_checkpoint(note.text)
    _check_origin(checkpoint, verifier.name)
    return checkpoint


def _check_origin(checkpoint: Checkpoint, key_name: str) -> None:
    if checkpoint.origin != key_name:
        raise CheckpointError(
            f"checkpoint origin {checkpoint.origin!r} is not the key's name {key_name!r}"
        )
