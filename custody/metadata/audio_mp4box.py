"""Rebuilding an MP4/M4A 'moov' box (ISO/IEC 14496-12 §8) from an allowlist of its boxes."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from custody.metadata.audio_common import printable
from custody.metadata.base import StripError


@dataclass
class Context:
    remap: Callable[[int], int]  # a chunk's old file offset -> its offset in the copy
    removed: list[str] = field(default_factory=list)


# A box's payload (a view: nested boxes are not copied), the context, the box's path -> the
# new payload.
Rule = Callable[[memoryview, Context, str], bytes]

# Boxes that go wherever they are: user data and metadata (iTunes 'ilst', QuickTime 'keys'
# with ISO 6709 locations, Nero 'chpl' chapter names), XMP and other 'uuid' boxes, and the
# padding boxes, which keep stale bytes of tags that were rewritten.
DROPPED = frozenset({b"udta", b"meta", b"uuid", b"free", b"skip", b"wide", b"pdin"})


def box(kind: bytes, payload: bytes) -> bytes:
    """A box with a 32-bit size, or a 64-bit largesize when it needs one (§4.2)."""
    if len(payload) + 8 <= 0xFFFFFFFF:
        return (len(payload) + 8).to_bytes(4, "big") + kind + payload
    return b"\0\0\0\1" + kind + (len(payload) + 16).to_bytes(8, "big") + payload


def children(payload: memoryview, path: str) -> Iterator[tuple[bytes, memoryview]]:
    """Type and payload of each box filling `payload` (§4.2: size, type, largesize)."""
    at = 0
    while len(payload) - at >= 8:
        size, header = int.from_bytes(payload[at : at + 4], "big"), 8
        kind = bytes(payload[at + 4 : at + 8])
        if size == 1:
            size, header = int.from_bytes(payload[at + 8 : at + 16], "big"), 16
        elif size == 0:  # runs to the end of its container
            size = len(payload) - at
        if size < header or at + size > len(payload):
            raise StripError(f"box {path}/{printable(kind)} has a size that does not fit")
        yield kind, payload[at + header : at + size]
        at += size
    if any(payload[at:]):  # QuickTime ends some lists with a zero 32-bit terminator
        raise StripError(f"stray bytes at the end of {path}")


def rebuild(payload: memoryview, rules: Mapping[bytes, Rule], context: Context, path: str) -> bytes:
    """The container's children that `rules` keep, rewritten; DROPPED ones are left out."""
    kept = []
    for kind, body in children(payload, path):
        name = f"{path}/{printable(kind)}"
        if kind in rules:
            kept.append(box(kind, rules[kind](body, context, name)))
        elif kind in DROPPED:
            context.removed.append(name)
        else:
            raise StripError(f"unexpected box {name} (kept boxes are an allowlist)")
    return b"".join(kept)


def container(rules: Mapping[bytes, Rule]) -> Rule:
    def rule(payload: memoryview, context: Context, path: str) -> bytes:
        return rebuild(payload, rules, context, path)

    return rule


def verbatim(payload: memoryview, context: Context, path: str) -> bytes:
    return bytes(payload)


def zero_times(payload: memoryview, context: Context, path: str) -> bytes:
    """mvhd, tkhd, mdhd (§8.2.2, §8.3.2, §8.4.2): creation and modification times become 0."""
    width = 8 if payload[0] == 1 else 4  # version 1 has 64-bit times
    if len(payload) < 4 + 2 * width + 4:
        raise StripError(f"{path} is too short")
    times = payload[4 : 4 + 2 * width]
    for index, what in enumerate(("creation_time", "modification_time")):
        if any(times[index * width : (index + 1) * width]):
            context.removed.append(f"{path}.{what}")
    return bytes(payload[:4]) + bytes(2 * width) + bytes(payload[4 + 2 * width :])


def blank_name(payload: memoryview, context: Context, path: str) -> bytes:
    """hdlr (§8.4.3): the free-text name goes (one zero byte is an empty C or Pascal string)."""
    if len(payload) < 24:
        raise StripError(f"{path} is too short")
    if any(payload[24:]):
        context.removed.append(f"{path}.name")
    return bytes(payload[:24]) + b"\0"


def self_contained_refs(payload: memoryview, context: Context, path: str) -> bytes:
    """dref (§8.7.2): only "in this file" entries (flag 1), rewritten without any location."""
    if len(payload) < 8:
        raise StripError(f"{path} is too short")
    entries = list(children(payload[8:], path))
    if len(entries) != int.from_bytes(payload[4:8], "big"):
        raise StripError(f"{path} entry count does not match its entries")
    out = bytes(payload[:8])
    for kind, body in entries:
        if len(body) < 4 or not body[3] & 1:
            raise StripError(f"{path} names media outside the file (not supported)")
        out += box(kind, bytes(body[:4]))
    return out


def _offsets(code: str, width: int) -> Rule:
    def rule(payload: memoryview, context: Context, path: str) -> bytes:
        """stco and co64 (§8.7.5): chunk offsets moved to where the chunks are in the copy."""
        count = int.from_bytes(payload[4:8], "big") if len(payload) >= 8 else -1
        if count < 0 or len(payload) != 8 + count * width:
            raise StripError(f"{path} table size does not match its entry count")
        offsets = struct.unpack(f">{count}{code}", payload[8:])
        moved = [context.remap(offset) for offset in offsets]
        if code == "I" and any(offset > 0xFFFFFFFF for offset in moved):
            raise StripError(f"{path} offset no longer fits 32 bits")
        return bytes(payload[:8]) + struct.pack(f">{count}{code}", *moved)

    return rule


chunk_offsets = _offsets("I", 4)
chunk_offsets64 = _offsets("Q", 8)
