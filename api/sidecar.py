"""Sealed metadata sidecars: what was read from an original, kept out of the log.

The log is read by auditors, so it carries only the sidecar's hash; the values (GPS
positions, names, serials) live in this object, sealed like the original it describes.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime
from typing import Any

from api.known import KnownNames
from custody.events import canonical_json
from custody.metadata.base import Metadata, Sensitive
from storage import ObjectStore

SIDECAR_VERSION = 1
EXTRACTOR = "custody-extract/1"


def sidecar_key(sha256: str) -> str:
    return f"metadata/sha256/{sha256[:2]}/{sha256}"


def sensitive_json(sensitive: Sensitive) -> dict[str, Any]:
    return {
        "any": sensitive.any,
        "gps": sensitive.gps,
        "device_serial": sensitive.device_serial,
        "names": sensitive.names,
        "thumbnail": sensitive.thumbnail,
        "dates": sensitive.dates,
        "other": list(sensitive.other),
        "fields": list(sensitive.fields),
    }


def sidecar_json(metadata: Metadata) -> dict[str, Any]:
    # No hash of the original inside: the `ingested` event binds the pair, and files with
    # the same (often empty) metadata then share one sealed object.
    return {
        "v": SIDECAR_VERSION,
        "extractor": EXTRACTOR,
        "media_type": metadata.media_type,
        "fields": dict(metadata.fields),
        "sensitive": sensitive_json(metadata.sensitive),
        "errors": list(metadata.errors),
    }


def seal_sidecar(
    store: ObjectStore,
    metadata: Metadata,
    *,
    retain_until: datetime,
    known: KnownNames | None = None,
) -> str:
    """Store the sidecar create-only and locked; return its SHA-256.

    `known`: hashes of sidecars already sealed (many files share one, e.g. "no metadata").
    """
    data = canonical_json(sidecar_json(metadata))
    sha256 = hashlib.sha256(data).hexdigest()
    if known is not None and sha256 in known:
        return sha256
    if store.stat(sidecar_key(sha256)) is None:
        store.put(
            sidecar_key(sha256),
            io.BytesIO(data),
            sha256=sha256,
            size=len(data),
            retain_until=retain_until,
        )
    # else create-only: the same bytes are already sealed
    if known is not None:
        known.add(sha256)
    return sha256


def read_sidecar(store: ObjectStore, sha256: str) -> dict[str, Any]:
    with store.open(sidecar_key(sha256)) as stream:
        data = stream.read()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"metadata sidecar {sha256} does not match its hash")
    value: dict[str, Any] = json.loads(data)
    return value
