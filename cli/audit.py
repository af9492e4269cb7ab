"""`custody audit` and `custody verify-receipt`: the auditor's commands, offline where possible."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer

from cli.sources import open_source
from custody.audit import AuditReport, SeenCheckpoint, audit_log, iter_failures
from custody.errors import CustodyError
from custody.note import Verifier, parse_vkey
from custody.receipt import parse_receipt, verify_receipt


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


def default_state_path(verifier: Verifier) -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in verifier.name)
    return base / "custody" / f"audit-{safe}-{verifier.key_id:08x}.json"


def run_audit(
    source: str,
    *,
    vkey: str,
    state: Path | None,
    log_prefix: str,
    endpoint_url: str | None,
    region: str,
    token: str | None,
    check_originals: bool,
) -> tuple[AuditReport, Path]:
    verifier = load_vkey(vkey)
    state_path = state or default_state_path(verifier)
    seen = _load_state(state_path)
    try:
        log = open_source(
            source, log_prefix=log_prefix, endpoint_url=endpoint_url, region=region, token=token
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="SOURCE") from exc
    report = audit_log(
        log, verifier, seen=seen, open_original=log.open_original if check_originals else None
    )
    if report.ok:
        _save_state(state_path, SeenCheckpoint(report.size, report.root))
    return report, state_path


def report_json(report: AuditReport, state_path: Path) -> str:
    data: dict[str, Any] = {
        "ok": report.ok,
        "size": report.size,
        "root": report.root.hex(),
        "entries": report.entries,
        "tiles": report.tiles,
        "checkpoints": report.checkpoints,
        "originals": report.originals,
        "failures": [asdict(f) for f in report.failures],
        "state_file": str(state_path),
    }
    return json.dumps(data, indent=2)


def report_text(report: AuditReport, state_path: Path) -> str:
    lines = [f"FAIL {line}" for line in iter_failures(report)]
    verdict = "OK" if report.ok else f"FAILED: {len(report.failures)} problem(s)"
    lines.append(
        f"{verdict}. Log size {report.size}, root {report.root.hex()}; checked {report.entries} "
        f"entries, {report.tiles} tiles, {report.checkpoints} archived checkpoints, "
        f"{report.originals} originals."
    )
    lines.append(f"State: {state_path}" + (" (updated)" if report.ok else " (unchanged)"))
    return "\n".join(lines)


def _load_state(path: Path) -> SeenCheckpoint | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        return SeenCheckpoint(int(data["size"]), bytes.fromhex(data["root"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # Auditing without it would silently forget what was seen: refuse, as a usage error.
        raise typer.BadParameter(
            f"{path} is not an audit state file: {exc!r}", param_hint="--state"
        ) from exc


def _save_state(path: Path, seen: SeenCheckpoint) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"size": seen.size, "root": seen.root.hex()}) + "\n")
    os.replace(tmp, path)


def run_verify_receipt(receipt_path: Path, file: Path | None, *, vkey: str) -> dict[str, Any]:
    """Verify a receipt offline; with FILE, also that it is the file the receipt names."""
    verifier = load_vkey(vkey)
    receipt = parse_receipt(receipt_path.read_bytes())
    file_sha256 = _sha256_file(file) if file is not None else None
    verified = verify_receipt(receipt, verifier, file_sha256=file_sha256)
    return {
        "ok": True,
        "index": verified.index,
        "log": verified.checkpoint.origin,
        "checkpoint_size": verified.checkpoint.size,
        "checkpoint_root": verified.checkpoint.root.hex(),
        "file_checked": file_sha256 is not None,
        "event": verified.event,
    }


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()
