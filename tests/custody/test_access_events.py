"""Access and administrative custody events: what auditors may read about who did what."""

from __future__ import annotations

import hashlib
import json

import pytest

from custody.errors import EventError
from custody.events import (
    Access,
    Subject,
    accessed,
    administrative,
    decode_entry,
    encode_entry,
)
from custody.purpose import commit_purpose, purpose_opens
from tests.custody.test_events import SHA256, TIME

TEXT = "Disclosure to the defence, order of 3 March"
KEY = bytes(range(32))
PURPOSE = commit_purpose(TEXT, KEY)


def test_accessed_entry_commits_to_the_purpose_without_its_text() -> None:
    event = accessed(
        event_id="ev_9",
        time=TIME,
        actor="p_4f1c",
        case="c_1",
        subject=Subject(SHA256, 8, "image/jpeg"),
        access=Access("original", PURPOSE),
    )
    entry = decode_entry(encode_entry(event))
    assert entry["type"] == "accessed"
    assert entry["access"] == {"kind": "original", "purpose_hmac_sha256": PURPOSE}
    assert "defence" not in json.dumps(entry)
    # Nor its plain hash, which anyone could find by hashing the likely purposes.
    assert hashlib.sha256(TEXT.encode()).hexdigest() not in json.dumps(entry)
    assert set(entry) == {"v", "type", "id", "time", "actor", "case", "subject", "access"}
    assert purpose_opens(entry["access"], TEXT, KEY)


def test_access_without_purpose() -> None:
    event = accessed(
        event_id="ev_9",
        time=TIME,
        actor="p_4f1c",
        case="c_1",
        subject=Subject(SHA256, 8, "image/jpeg"),
        access=Access("metadata"),
    )
    assert decode_entry(encode_entry(event))["access"] == {"kind": "metadata"}


@pytest.mark.parametrize(
    ("access", "message"),
    [
        (Access("thumbnail"), "access kind"),
        (Access("copy", "not a hash"), "purpose HMAC-SHA256"),
        (Access("copy", PURPOSE.upper()), "purpose HMAC-SHA256"),
    ],
)
def test_access_fields_are_validated(access: Access, message: str) -> None:
    event = accessed(
        event_id="ev_9",
        time=TIME,
        actor="p_4f1c",
        case="c_1",
        subject=Subject(SHA256, 8, "image/jpeg"),
        access=access,
    )
    with pytest.raises(EventError, match=message):
        encode_entry(event)


@pytest.mark.parametrize(
    "kind",
    [
        "case-created",
        "member-added",
        "member-removed",
        "token-created",
        "token-revoked",
        "pseudonym-resolved",
    ],
)
def test_administrative_events_name_pseudonyms_only(kind: str) -> None:
    event = administrative(
        kind, event_id="ev_3", time=TIME, actor="p_admin", case="c_1", target="p_4f1c", role="field"
    )
    entry = decode_entry(encode_entry(event))
    assert entry["type"] == kind
    assert (entry["actor"], entry["target"], entry["role"]) == ("p_admin", "p_4f1c", "field")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target": "Jane Doe"}, "target"),
        ({"target": "jane@example.org"}, "target"),
        ({"role": "Chief Lawyer"}, "role"),
    ],
)
def test_administrative_fields_cannot_carry_names(changes: dict[str, str], message: str) -> None:
    event = administrative(
        "member-added", event_id="ev_3", time=TIME, actor="p_admin", case="c_1", **changes
    )
    with pytest.raises(EventError, match=message):
        encode_entry(event)


def test_only_administrative_kinds() -> None:
    with pytest.raises(EventError, match="not an administrative event"):
        administrative("ingested", event_id="ev_3", time=TIME, actor="p_admin")
