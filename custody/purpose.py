"""Commitments to stated purposes: HMAC-SHA256 (RFC 2104) under a random key kept with the text.

A read's or an export's purpose ("for the hearing", "Submission to the ICC") goes into the
public log only as a commitment. A plain SHA-256 of it would not hide it: anyone reading the
log could hash the likely purposes and the names of courts, journalists and organisations
and find which ones were logged. Under a 32-byte key drawn for each purpose, the commitment
says nothing without the key, which stays beside the text (the database, for the case's
readers; the exhibit bundle, for its recipient), and with both a court can check it.

Entries written before this scheme carry `purpose_sha256`, the plain SHA-256 of the text;
`purpose_opens` checks either.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from custody.errors import EventError

PURPOSE_KEY_BYTES = 32  # 256 bits: as long as the HMAC-SHA256 output, no guessing it


def commit_purpose(purpose: str, key: bytes) -> str:
    """The hex HMAC-SHA256 of the purpose's UTF-8 text under `key`."""
    if len(key) != PURPOSE_KEY_BYTES:
        raise EventError(f"a purpose key is {PURPOSE_KEY_BYTES} bytes, not {len(key)}")
    return hmac.new(key, purpose.encode("utf-8"), hashlib.sha256).hexdigest()


def purpose_opens(committed: Mapping[str, Any], purpose: str, key: bytes | None) -> bool:
    """Whether an entry's `access` or `export` object commits to `purpose` (with `key`, the
    one kept beside the text; entries from before keyed commitments need none)."""
    if "purpose_hmac_sha256" in committed:
        if key is None or len(key) != PURPOSE_KEY_BYTES:
            return False
        return hmac.compare_digest(
            str(committed["purpose_hmac_sha256"]), commit_purpose(purpose, key)
        )
    legacy = hashlib.sha256(purpose.encode("utf-8")).hexdigest()
    return hmac.compare_digest(str(committed.get("purpose_sha256", "")), legacy)
