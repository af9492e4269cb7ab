"""The log's Ed25519 signing key: from configuration, or generated once in the data directory."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from api.settings import Settings
from custody.note import Signer, format_signer, generate_signer, parse_signer

log = logging.getLogger("custody.keys")


class KeyConfigError(Exception):
    """The configured key cannot be used (wrong name, unreadable file)."""


def load_signer(settings: Settings) -> Signer:
    """The signer for the configured origin; generate and store one on first start."""
    origin = settings.resolved_log_origin
    if settings.log_private_key is not None:
        signer = parse_signer(settings.log_private_key.get_secret_value().strip())
    else:
        signer = _from_file(settings.resolved_log_key_file, origin)
    if signer.name != origin:
        raise KeyConfigError(
            f"the log key is named {signer.name!r} but the origin is {origin!r}: a checkpoint's "
            "key name must be its origin (C2SP tlog-checkpoint). Set CUSTODY_LOG_ORIGIN to match."
        )
    return signer


def _from_file(path: Path, origin: str) -> Signer:
    if path.exists():
        return parse_signer(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    signer = generate_signer(origin)
    try:
        # O_EXCL: two processes starting at once agree on one key; the loser reads it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return parse_signer(path.read_text().strip())
    with os.fdopen(fd, "w") as file:
        file.write(format_signer(signer) + "\n")
        file.flush()
        os.fsync(file.fileno())
    log.warning(
        "GENERATED A NEW LOG SIGNING KEY at %s. Every checkpoint is signed with it: back it up, "
        "keep it secret, and give auditors the verifier key (GET /v1/log/vkey). In production "
        "set CUSTODY_LOG_PRIVATE_KEY from a secret store instead.",
        path,
    )
    return signer
