"""The log's Ed25519 signing key: from configuration, or generated once in the data directory."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.settings import Settings
from custody.bundle.organisation import dump_private_key, generate_key, load_private_key
from custody.errors import BundleError
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
    signer = generate_signer(origin)
    if not _create_once(path, (format_signer(signer) + "\n").encode()):
        return parse_signer(path.read_text().strip())
    log.warning(
        "GENERATED A NEW LOG SIGNING KEY at %s. Every checkpoint is signed with it: back it up, "
        "keep it secret, and give auditors the verifier key (GET /v1/log/vkey). In production "
        "set CUSTODY_LOG_PRIVATE_KEY from a secret store instead.",
        path,
    )
    return signer


def load_organisation_key(settings: Settings) -> Ed25519PrivateKey:
    """The key that signs exhibit bundles; generated once in the data directory by default."""
    path = settings.resolved_organisation_key_file
    if not path.exists():
        if settings.organisation_key_file is not None:
            raise KeyConfigError(f"CUSTODY_ORGANISATION_KEY_FILE {path} does not exist")
        if _create_once(path, dump_private_key(generate_key())):
            log.warning(
                "GENERATED A NEW ORGANISATION KEY at %s. It signs every exhibit bundle: back it "
                "up, keep it secret, and publish its public key (in every bundle as "
                "custody/organisation.pem) where courts can find it independently.",
                path,
            )
    try:
        return load_private_key(path.read_bytes())
    except BundleError as exc:
        raise KeyConfigError(f"{path}: {exc}") from exc


def _create_once(path: Path, data: bytes) -> bool:
    """Write a new key file; False if it already exists. O_EXCL: two processes starting at
    once agree on one key, and the loser reads the winner's."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    return True
