"""Strict DER (X.690 §10-11) for RFC 3161: the checker every parser here runs first, and encoders.

DER has one encoding per value, so nothing hides in an alternative spelling. Malformed input
makes asn1crypto and cryptography raise their own errors; `converting` turns them into ours.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from asn1crypto import core
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from custody.errors import CustodyError

# What asn1crypto and cryptography raise on malformed input; converted at this boundary.
LIBRARY_ERRORS = (
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    OverflowError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
)


@contextmanager
def converting(error: Callable[[str], CustodyError], prefix: str = "") -> Iterator[None]:
    """Turn the libraries' errors on malformed input into ours (ours pass through)."""
    try:
        yield
    except LIBRARY_ERRORS as exc:
        raise error(f"{prefix}: {exc}" if prefix else str(exc)) from exc


def present(value: Any) -> bool:
    return not isinstance(value, core.Void)


def tlv(tag: int, *contents: bytes) -> bytes:
    """A DER value from its one-byte tag and its contents (X.690 §8.1.3, §10.1)."""
    body = b"".join(contents)
    size = len(body)
    if size < 0x80:
        return bytes((tag, size)) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + body


def _minimal_integer(c: bytes) -> bool:
    return len(c) == 1 or (
        len(c) > 1 and not (c[0] == 0 and c[1] < 0x80) and not (c[0] == 0xFF and c[1] >= 0x80)
    )


def _canonical_bits(c: bytes) -> bool:
    if not c or c[0] > 7 or (len(c) == 1 and c[0]):
        return False
    return len(c) == 1 or c[-1] & ((1 << c[0]) - 1) == 0


def _canonical_oid(c: bytes) -> bool:
    # Every subidentifier ends in a byte below 0x80 and none starts with the padding 0x80.
    return bool(c) and c[0] != 0x80 and c[-1] < 0x80 and _OID_PADDING.search(c) is None


_OID_PADDING = re.compile(rb"[\x00-\x7f]\x80")
_MAX_DEPTH = 32  # certificates nest about 10 deep; bounds recursion on hostile input
_SEQUENCE, _SET = 16, 17
_CONTENT_RULES: dict[int, tuple[str, Callable[[bytes], bool]]] = {
    1: ("BOOLEAN", lambda c: c in (b"\x00", b"\xff")),
    2: ("INTEGER", _minimal_integer),
    3: ("BIT STRING", _canonical_bits),
    5: ("NULL", lambda c: not c),
    6: ("OBJECT IDENTIFIER", _canonical_oid),
    10: ("ENUMERATED", _minimal_integer),
    23: ("UTCTime", lambda c: re.fullmatch(rb"\d{12}Z", c) is not None),
    24: ("GeneralizedTime", lambda c: re.fullmatch(rb"\d{14}(\.\d*[1-9])?Z", c) is not None),
}


def check_der(data: bytes) -> None:
    """Raise ValueError unless `data` is exactly one DER value."""
    end = _check_value(data, 0, len(data), 0)
    if end != len(data):
        raise ValueError(f"{len(data) - end} bytes after the DER value")


# Large constructed values found valid, by depth and exact bytes: every token of a TSA
# carries the same certificates, and an audit checks one token per checkpoint. Validity
# depends on nothing else (the depth bounds what may nest inside).
_KNOWN_GOOD: dict[tuple[int, bytes], None] = {}
# A smaller value costs as much to look up as to check. Larger ones are not kept, nor more
# than _KNOWN_GOOD_MAX (the set then starts again): at most 4 MiB.
_KNOWN_GOOD_BYTES = range(256, 16 * 1024)
_KNOWN_GOOD_MAX = 256


def _check_value(data: bytes, start: int, limit: int, depth: int) -> int:
    """Check the value at `start`, which must end by `limit`; return where it ends."""
    if depth > _MAX_DEPTH:
        raise ValueError("DER nested too deeply")
    tag_class, constructed, number, pos = _read_tag(data, start, limit)
    length, pos = _read_length(data, pos, limit)
    end = pos + length
    if end > limit:
        raise ValueError("truncated DER value")
    if constructed and length in _KNOWN_GOOD_BYTES:
        key = (depth, data[start:end])
        if key in _KNOWN_GOOD:
            return end
        _check_contents(data, tag_class, constructed, number, pos, end, depth)
        if len(_KNOWN_GOOD) >= _KNOWN_GOOD_MAX:
            _KNOWN_GOOD.clear()
        _KNOWN_GOOD[key] = None
        return end
    _check_contents(data, tag_class, constructed, number, pos, end, depth)
    return end


def _check_contents(
    data: bytes, tag_class: int, constructed: bool, number: int, pos: int, end: int, depth: int
) -> None:
    """Check the contents (`pos` to `end`) of a value with this tag."""
    universal = tag_class == 0
    if universal:
        if number == 0 or constructed != (number in (_SEQUENCE, _SET)):
            raise ValueError(f"universal tag {number} in a form DER forbids")
        known = _CONTENT_RULES.get(number)
        # Only primitive types have rules: a SEQUENCE's content (a whole certificate) is
        # never copied out to be checked.
        if known is not None and not known[1](data[pos:end]):
            raise ValueError(f"not a DER {known[0]}")
    if constructed:
        ordered = universal and number == _SET  # only a SET's elements are compared
        children = []
        while pos < end:
            child_end = _check_value(data, pos, end, depth + 1)
            if ordered:
                children.append(data[pos:child_end])
            pos = child_end
        if ordered and children != sorted(children):
            raise ValueError("SET elements not in DER order")


def _read_tag(data: bytes, pos: int, limit: int) -> tuple[int, bool, int, int]:
    if pos >= limit:
        raise ValueError("truncated DER value")
    first = data[pos]
    pos += 1
    number = first & 0x1F
    if number == 0x1F:  # high tag number form, base 128
        number = 0
        while True:
            if pos >= limit or number > 2**21:
                raise ValueError("truncated or oversized DER tag")
            byte = data[pos]
            if number == 0 and byte == 0x80:
                raise ValueError("non-minimal DER tag")
            number = number << 7 | byte & 0x7F
            pos += 1
            if not byte & 0x80:
                break
        if number < 0x1F:
            raise ValueError("non-minimal DER tag")
    return first >> 6, bool(first & 0x20), number, pos


def _read_length(data: bytes, pos: int, limit: int) -> tuple[int, int]:
    if pos >= limit:
        raise ValueError("truncated DER value")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    size = first & 0x7F
    if size == 0:
        raise ValueError("indefinite length (BER, not DER)")
    if size > 4 or pos + size > limit:
        raise ValueError("truncated or oversized DER length")
    length = int.from_bytes(data[pos : pos + size], "big")
    if length < 0x80 or data[pos] == 0:
        raise ValueError("non-minimal DER length")
    return length, pos + size
