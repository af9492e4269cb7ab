"""Tests for custody.events: validated RFC 8785 canonical log entries."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.errors import EventError
from custody.events import (
    MAX_ENTRY_BYTES,
    CustodyEvent,
    Subject,
    canonical_json,
    decode_entry,
    encode_entry,
    format_time,
    ingested,
)

SHA256 = hashlib.sha256(b"evidence").hexdigest()
SHA512 = hashlib.sha512(b"evidence").hexdigest()
TIME = datetime(2026, 11, 28, 21, 40, 0, 123456, tzinfo=UTC)


def make_subject(**changes: Any) -> Subject:
    return dataclasses.replace(Subject(SHA256, 8, "image/jpeg"), **changes)


def make_ingested(**changes: Any) -> CustodyEvent:
    event = ingested(
        event_id="ev_01", time=TIME, actor="usr_7", case="case-42", subject=make_subject()
    )
    return dataclasses.replace(event, **changes)


def test_entry_is_the_exact_canonical_form() -> None:
    assert encode_entry(make_ingested()) == (
        b'{"actor":"usr_7","case":"case-42","id":"ev_01",'
        b'"subject":{"media_type":"image/jpeg","sha256":"' + SHA256.encode() + b'","size":8},'
        b'"time":"2026-11-28T21:40:00.123456Z","type":"ingested","v":1}'
    )


def test_entry_keys_are_sorted_at_every_level_without_whitespace() -> None:
    event = make_ingested(subject=make_subject(digests={"sha512": SHA512, "blake2b": "ab" * 64}))
    entry = encode_entry(event)
    value = json.loads(entry)
    assert list(value) == sorted(value)
    assert list(value["subject"]) == sorted(value["subject"])
    assert list(value["subject"]["digests"]) == ["blake2b", "sha512"]
    assert b" " not in entry
    assert b"\n" not in entry


def test_entry_of_an_event_without_case_or_subject() -> None:
    event = CustodyEvent("token-created", "ev_02", TIME, "usr_7")
    assert json.loads(encode_entry(event)) == {
        "v": 1,
        "type": "token-created",
        "id": "ev_02",
        "time": "2026-11-28T21:40:00.123456Z",
        "actor": "usr_7",
    }


def test_ingested_entry_has_only_the_documented_keys() -> None:
    event = make_ingested(subject=make_subject(digests={"sha512": SHA512}))
    entry = json.loads(encode_entry(event))
    assert set(entry) == {"v", "type", "id", "time", "actor", "case", "subject"}
    assert set(entry["subject"]) == {"sha256", "size", "media_type", "digests"}
    assert entry["v"] == 1
    assert entry["type"] == "ingested"
    assert entry["subject"]["digests"] == {"sha512": SHA512}


def test_empty_digests_are_left_out() -> None:
    assert "digests" not in json.loads(encode_entry(make_ingested()))["subject"]


@pytest.mark.parametrize(
    "event",
    [
        make_ingested(),
        make_ingested(subject=make_subject(digests={"sha512": SHA512}, size=0)),
        CustodyEvent("legal-hold", "ev_03", TIME, "usr_7", case="case-42"),
    ],
)
def test_decode_entry_round_trips(event: CustodyEvent) -> None:
    assert decode_entry(encode_entry(event)) == event.to_json()


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(b'{"a": 1}', id="space after colon"),
        pytest.param(b'{"a":1, "b":2}', id="space after comma"),
        pytest.param(b'{"b":1,"a":2}', id="unsorted keys"),
        pytest.param(b'{"a":1}\n', id="trailing newline"),
        pytest.param(b'{"a":1.0}', id="non-canonical number"),
        pytest.param(b'{"a":"\\u0041"}', id="needless escape"),
        pytest.param(b'{"a":1,"a":1}', id="duplicate key"),
        pytest.param(b"[1,2]", id="array, not object"),
        pytest.param(b'"text"', id="string, not object"),
        pytest.param(b"{", id="not JSON"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe{}", id="not UTF-8"),
    ],
)
def test_decode_entry_rejects_non_canonical_bytes(entry: bytes) -> None:
    with pytest.raises(EventError):
        decode_entry(entry)


def test_decode_entry_accepts_canonical_bytes_it_did_not_write() -> None:
    assert decode_entry(b'{"a":[1,"\xc3\xa9"],"b":null}') == {"a": [1, "\u00e9"], "b": None}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"type": "deleted"}, "unknown event type", id="unknown type"),
        pytest.param({"type": "Ingested"}, "unknown event type", id="type case"),
        pytest.param({"id": "a b"}, "not an opaque id", id="id with space"),
        pytest.param({"id": ""}, "not an opaque id", id="empty id"),
        pytest.param({"id": "x" * 65}, "not an opaque id", id="id too long"),
        pytest.param({"id": "ev_01\n"}, "not an opaque id", id="id with newline"),
        pytest.param({"actor": "usr_7\n"}, "not an opaque id", id="actor with newline"),
        pytest.param({"actor": "Jane Doe"}, "not an opaque id", id="actor is a name"),
        pytest.param({"actor": "j@example.org"}, "not an opaque id", id="actor is an email"),
        pytest.param({"case": "evidence/photo.jpg"}, "not an opaque id", id="case is a path"),
        pytest.param({"case": "IMG_0001.JPG"}, "not an opaque id", id="case is a filename"),
        pytest.param({"case": "caf\u00e9"}, "not an opaque id", id="case is not ASCII"),
    ],
)
def test_event_fields_are_validated(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(EventError, match=message):
        encode_entry(make_ingested(**changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"sha256": SHA256.upper()}, "sha256", id="uppercase sha256"),
        pytest.param({"sha256": SHA256[:-1]}, "sha256", id="short sha256"),
        pytest.param({"sha256": SHA256 + "0"}, "sha256", id="long sha256"),
        pytest.param({"sha256": "g" * 64}, "sha256", id="non-hex sha256"),
        pytest.param({"sha256": SHA256 + "\n"}, "sha256", id="sha256 with newline"),
        pytest.param({"size": -1}, "negative", id="negative size"),
        pytest.param({"media_type": "image"}, "malformed", id="no subtype"),
        pytest.param({"media_type": "Image/JPEG"}, "malformed", id="uppercase"),
        pytest.param({"media_type": "image/jpeg "}, "malformed", id="trailing space"),
        pytest.param({"media_type": "text/plain; name=a b"}, "malformed", id="bad parameter"),
        pytest.param({"media_type": "photo.jpg"}, "malformed", id="a filename"),
        pytest.param({"media_type": "image/jpeg\n"}, "malformed", id="trailing newline"),
        pytest.param({"digests": {"sha 512": SHA512}}, "digest", id="digest name"),
        pytest.param({"digests": {"sha512": SHA512.upper()}}, "digest", id="digest case"),
        pytest.param({"digests": {"sha512": "ab" * 15}}, "digest", id="digest too short"),
        pytest.param({"digests": {"sha512": "ab" * 129}}, "digest", id="digest too long"),
        pytest.param({"digests": {"sha512": SHA512 + "\n"}}, "digest", id="digest newline"),
        pytest.param({"digests": {"sha512\n": SHA512}}, "digest", id="digest name newline"),
    ],
)
def test_subject_fields_are_validated(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(EventError, match=message):
        encode_entry(make_ingested(subject=make_subject(**changes)))


@pytest.mark.parametrize(
    "media_type",
    ["image/jpeg", "audio/ogg; codecs=opus", "application/vnd.oasis.opendocument.text"],
)
def test_detected_media_types_are_accepted(media_type: str) -> None:
    entry = json.loads(encode_entry(make_ingested(subject=make_subject(media_type=media_type))))
    assert entry["subject"]["media_type"] == media_type


def test_naive_times_are_rejected() -> None:
    with pytest.raises(EventError, match="timezone-aware"):
        encode_entry(make_ingested(time=datetime(2026, 11, 28, 21, 40)))


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        (TIME, "2026-11-28T21:40:00.123456Z"),
        (datetime(2026, 11, 28, 21, 40, tzinfo=UTC), "2026-11-28T21:40:00.000000Z"),
        (
            datetime(2026, 11, 28, 23, 40, 0, 5, tzinfo=timezone(timedelta(hours=2))),
            "2026-11-28T21:40:00.000005Z",
        ),
        (
            datetime(2026, 12, 31, 20, 30, tzinfo=timezone(timedelta(hours=-5))),
            "2027-01-01T01:30:00.000000Z",
        ),
    ],
)
def test_times_are_utc_with_microseconds(time: datetime, expected: str) -> None:
    assert format_time(time) == expected
    assert json.loads(encode_entry(make_ingested(time=time)))["time"] == expected


def event_of_entry_size(size: int) -> CustodyEvent:
    """An ingested event whose entry is `size` bytes, padded with extra digests."""
    base = len(encode_entry(make_ingested(subject=make_subject(digests={"d000": "a" * 64}))))
    # Each further digest adds `,"dNNN":"<64 hex>"`: 74 bytes.
    count, rest = divmod(size - base, 74)
    digests = {f"d{i:03d}": "a" * 64 for i in range(count + 1)}
    digests["d000"] = "a" * (64 + rest)
    return make_ingested(subject=make_subject(digests=digests))


def test_entries_up_to_64_kib_are_accepted() -> None:
    assert MAX_ENTRY_BYTES == 0xFFFF  # a bundle prefixes each entry with a uint16 length
    assert len(encode_entry(event_of_entry_size(MAX_ENTRY_BYTES))) == MAX_ENTRY_BYTES


def test_entries_over_64_kib_are_rejected() -> None:
    event = event_of_entry_size(MAX_ENTRY_BYTES + 1)
    assert len(json.dumps(event.to_json(), separators=(",", ":"))) == MAX_ENTRY_BYTES + 1
    with pytest.raises(EventError, match=f"{MAX_ENTRY_BYTES + 1} bytes"):
        encode_entry(event)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@given(JSON_VALUES)
@settings(max_examples=400, deadline=None)
def test_canonical_json_is_rfc8785(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, ValueError, UnicodeError):
        return  # not representable (e.g. a lone surrogate): nothing to compare
    assert canonical_json(value) == expected


def test_canonical_json_control_characters_and_unicode() -> None:
    value = {"b": '\u0000\u001f\n\t"\\/\u007f\u2028é😀', "a": [1, -(2**53) + 1, True, None]}
    assert canonical_json(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [{"a": 1.5}, {"é": "x"}, {"c": [0.1, 1e21]}, {"d": -2.0}])
def test_decode_entry_accepts_canonical_entries_outside_the_fast_path(value: object) -> None:
    entry = rfc8785.dumps(value)
    assert decode_entry(entry) == json.loads(entry)
    with pytest.raises(EventError):
        decode_entry(entry + b" ")
