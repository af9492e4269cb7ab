"""The keys an offline check is given: the log's vkey and TSA roots, as usage errors if bad."""

from __future__ import annotations

from pathlib import Path

import typer
from cryptography import x509

from api.anchors import TsaConfigError, load_anchors
from custody.errors import CustodyError
from custody.note import Verifier, parse_vkey


def load_vkey(value: str) -> Verifier:
    """A vkey given inline (name+id+key) or as a file holding one; else a usage error."""
    path = Path(value)
    try:
        text = path.read_text().strip() if "+" not in value and path.is_file() else value.strip()
        return parse_vkey(text)
    except (CustodyError, OSError, ValueError) as exc:
        raise typer.BadParameter(
            f"not a verifier key (name+id+key) nor a file holding one: {exc}", param_hint="--vkey"
        ) from exc


def load_tsa_anchors(paths: list[Path]) -> list[x509.Certificate]:
    try:
        return load_anchors(paths)
    except TsaConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--tsa-ca") from exc
