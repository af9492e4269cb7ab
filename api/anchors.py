"""Trust anchors for RFC 3161 tokens: root certificates from PEM files (light to import, so
the offline verifiers of the CLI share it without loading the service)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cryptography import x509


class TsaConfigError(Exception):
    """The TSA configuration cannot be used (unreadable key, bad URL list, bad anchors)."""


def load_anchors(paths: Sequence[Path]) -> list[x509.Certificate]:
    """Root certificates from PEM files."""
    anchors: list[x509.Certificate] = []
    for path in paths:
        try:
            anchors.extend(x509.load_pem_x509_certificates(path.read_bytes()))
        except (OSError, ValueError) as exc:
            raise TsaConfigError(f"cannot read TSA trust anchors from {path}: {exc}") from exc
    return anchors
