"""Checking a FLAC frame sequence (RFC 9639 §9): headers, numbering and the last frame's CRC."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO

from custody.metadata.audio_common import BLOCK, read_at
from custody.metadata.base import StripError

_SYNC = re.compile(rb"\xff[\xf8\xf9]")  # 15 sync bits and the blocking strategy bit (§9.1)
_MAX_HEADER = 16  # sync 2, codes 2, coded number up to 7, block size 2, rate 2, CRC-8 1
_MAX_FRAME = 16 << 20  # a frame of 65535 samples x 8 channels x 32 bits is under 2.1 MB


def _crc_table(poly: int, width: int) -> tuple[int, ...]:
    top, mask = 1 << (width - 1), (1 << width) - 1
    table = []
    for byte in range(256):
        crc = byte << (width - 8)
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & mask if crc & top else (crc << 1) & mask
        table.append(crc)
    return tuple(table)


_CRC8 = _crc_table(0x07, 8)  # §9.1.8: x^8 + x^2 + x + 1, initial value 0
_CRC16 = _crc_table(0x8005, 16)  # §9.3: x^16 + x^15 + x^2 + 1, initial value 0


def _crc8(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = _CRC8[crc ^ byte]
    return crc


def _crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[(crc >> 8) ^ byte]
    return crc


@dataclass(frozen=True, slots=True)
class FrameHeader:
    variable: bool  # blocking strategy: the coded number counts samples, not frames
    number: int
    block_size: int


def _coded_number(data: bytes, at: int) -> tuple[int, int]:
    """The UTF-8-like coded frame or sample number at `at` (§9.1.5), and where it ends."""
    first = data[at]
    length = next((n for n in range(7) if not first & (0x80 >> n)), 7)
    if length == 1 or (length == 7 and first != 0xFE) or at + max(length, 1) > len(data):
        raise ValueError("bad coded number")
    if length == 0:
        return first, at + 1
    value = first & (0x7F >> length)
    for byte in data[at + 1 : at + length]:
        if byte & 0xC0 != 0x80:
            raise ValueError("bad coded number")
        value = (value << 6) | (byte & 0x3F)
    return value, at + length


def _block_size(code: int, data: bytes, at: int) -> tuple[int, int]:
    if code == 1:
        return 192, at
    if 2 <= code <= 5:
        return 576 << (code - 2), at
    if code == 6:
        return data[at] + 1, at + 1
    if code == 7:
        return int.from_bytes(data[at : at + 2], "big") + 1, at + 2
    if code >= 8:
        return 256 << (code - 8), at
    raise ValueError("reserved block size")


def parse_frame_header(data: bytes) -> FrameHeader | None:
    """The frame header at the start of `data` (up to 16 bytes), or None if it is not one."""
    try:
        if len(data) < 6 or data[0] != 0xFF or data[1] not in (0xF8, 0xF9):
            return None
        rate_code, channels, depth = data[2] & 0x0F, data[3] >> 4, (data[3] >> 1) & 7
        if rate_code == 15 or channels > 10 or depth == 3 or data[3] & 1:
            return None
        number, at = _coded_number(data, 4)
        block_size, at = _block_size(data[2] >> 4, data, at)
        at += {12: 1, 13: 2, 14: 2}.get(rate_code, 0)  # rate given after the header
        if at >= len(data) or _crc8(data[:at]) != data[at]:
            return None
    except (ValueError, IndexError):
        return None
    return FrameHeader(data[1] == 0xF9, number, block_size)


def _next_number(previous: FrameHeader) -> int:
    return previous.number + (previous.block_size if previous.variable else 1)


def _coded(number: int) -> bytes:
    """`number` coded as in §9.1.5 (the inverse of _coded_number)."""
    if number < 0x80:
        return bytes([number])
    length = next((k for k in range(2, 7) if number < 1 << (5 * k + 1)), 7)
    first = ((0xFF << (8 - length)) & 0xFF) | (number >> (6 * (length - 1)))
    rest = (0x80 | ((number >> (6 * i)) & 0x3F) for i in range(length - 2, -1, -1))
    return bytes([first & 0xFF, *rest])


def check_frames(source: BinaryIO, start: int, end: int) -> int:
    """Check that [start, end) is a run of numbered frames ending in a whole one; its samples.

    A frame has no length field, so frames are found by sync code, header CRC-8 and the
    expected next number; the last frame's CRC-16 (§9.3) must hold up to `end`, which proves
    that no unknown trailer follows the audio.
    """
    header = parse_frame_header(read_at(source, start, min(_MAX_HEADER, end - start), "frame"))
    if header is None:
        raise StripError(f"no FLAC frame at offset {start}")
    last, samples, expected = start, header.block_size, _coded(_next_number(header))
    position = start
    while position < end:
        window = read_at(source, position, min(BLOCK, end - position), "FLAC frames")
        for match in _SYNC.finditer(window):
            at, here = position + match.start(), match.start()
            # Sync codes turn up in audio data too: the expected number sifts them cheaply.
            if at <= last or window[here + 4 : here + 4 + len(expected)] != expected:
                continue
            found = parse_frame_header(window[here : here + _MAX_HEADER])
            if found is not None and found.variable == header.variable:
                last, header, samples = at, found, samples + found.block_size
                expected = _coded(_next_number(header))
        # Overlap the windows so a header split between two is seen whole in the second.
        position += max(len(window) - _MAX_HEADER, 1) if position + len(window) < end else BLOCK
    _check_last_frame(source, last, end)
    return samples


def _check_last_frame(source: BinaryIO, start: int, end: int) -> None:
    if end - start > _MAX_FRAME:
        raise StripError(f"the last FLAC frame at offset {start} is too long to be one")
    frame = read_at(source, start, end - start, "FLAC frame")
    if len(frame) < 2 or _crc16(frame[:-2]) != int.from_bytes(frame[-2:], "big"):
        raise StripError(
            "the last FLAC frame's CRC-16 fails: truncated or followed by unknown data"
        )
