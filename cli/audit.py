"""`custody audit` and `custody verify-receipt`: the auditor's commands, offline where possible."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from contextlib import closing, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from cryptography import x509

from cli.keys import load_tsa_anchors, load_vkey
from cli.read_ahead import ReadAhead
from cli.sources import open_source
from custody.audit import AuditReport, SeenCheckpoint, TimestampPolicy, audit_log, iter_failures
from custody.errors import CustodyError, ReceiptError
from custody.note import Verifier
from custody.receipt import parse_receipt, verify_receipt
from custody.tsp import verify_token


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
    check_timestamps: bool = True,
    tsa_ca: list[Path] | None = None,
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
    policy = TimestampPolicy(tuple(load_tsa_anchors(tsa_ca or []))) if check_timestamps else None
    # A local store answers at once; S3 and HTTP answer a round trip later, so the log's
    # objects are fetched ahead there, several at a time.
    with closing(log), ReadAhead(log) if log.remote else nullcontext(log) as read:
        report = audit_log(
            read,
            verifier,
            seen=seen,
            open_sealed=read.open_sealed if check_originals else None,
            sealed_kinds=read.sealed_kinds,
            each=read.map_ahead if isinstance(read, ReadAhead) else map,
            timestamps=policy,
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
        "sidecars": report.sidecars,
        "copies": report.copies,
        "unchecked": report.unchecked,
        "not_visible": report.not_visible,
        "timestamps": {
            "checked": report.timestamps_checked,
            "valid": report.timestamps,
            "untrusted": report.timestamps_untrusted,
            "checkpoints_missing": report.timestamps_missing,
        },
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
        f"{report.originals} originals, {report.sidecars} metadata sidecars, "
        f"{report.copies} sharing copies."
    )
    if report.not_visible:
        counts = ", ".join(f"{n} {kind}(s)" for kind, n in sorted(report.not_visible.items()))
        lines.append(
            f"Not re-hashed, not shown to this token: {counts} (audit the object store itself,"
            " or use a token of a member of their cases)."
        )
    if report.unchecked:
        lines.append(
            f"Not re-hashed, this source cannot read them as stored: {', '.join(report.unchecked)}"
            " (audit the object store itself for those)."
        )
    if report.timestamps_checked:
        lines.append(
            f"Timestamps: {report.timestamps} valid RFC 3161 token(s), of which "
            f"{report.timestamps_untrusted} from a TSA outside the trust anchors given"
            + ("" if report.timestamps_untrusted == 0 else " (pass --tsa-ca to check trust)")
            + "."
        )
        if report.timestamps_missing:
            lines.append(
                "MISSING timestamps for checkpoint size(s): "
                + ", ".join(str(size) for size in report.timestamps_missing)
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


def run_verify_receipt(
    receipt_path: Path, file: Path | None, *, vkey: str, tsa_ca: list[Path] | None = None
) -> dict[str, Any]:
    """Verify a receipt offline; with FILE, also that it is the file the receipt names.

    RECEIPT is the tlog-proof text, or the JSON the service answers (an ingest response or
    `GET /v1/log/entries/N/receipt` with `Accept: application/json`), whose RFC 3161 tokens
    over the receipt's checkpoint are then verified too.
    """
    verifier = load_vkey(vkey)
    anchors = load_tsa_anchors(tsa_ca or [])
    text, stamps = _read_receipt(receipt_path)
    receipt = parse_receipt(text)
    file_sha256 = _sha256_file(file) if file is not None else None
    verified = verify_receipt(receipt, verifier, file_sha256=file_sha256)
    checked = [_check_token(item, receipt.checkpoint, anchors) for item in stamps]
    valid = [c for c in checked if c["token_valid"]]
    trusted = [c for c in valid if c["tsa_trusted"]]
    return {
        "ok": len(valid) == len(checked),
        "index": verified.index,
        "log": verified.checkpoint.origin,
        "checkpoint_size": verified.checkpoint.size,
        "checkpoint_root": verified.checkpoint.root.hex(),
        "file_checked": file_sha256 is not None,
        "event": verified.event,
        "timestamps": checked,
        # Each token is over the receipt's checkpoint, which includes the entry: the entry
        # existed no later than the token's time.
        "trusted_time": min((c["time"] for c in trusted), default=None),
        "earliest_token_time": min((c["time"] for c in valid), default=None),
        "tsa_trust_anchors_given": len(anchors),
    }


def _read_receipt(path: Path) -> tuple[bytes, list[dict[str, Any]]]:
    data = path.read_bytes()
    if not data.lstrip().startswith(b"{"):
        return data, []
    try:
        document = json.loads(data)
        text = document["receipt"]
        stamps = document.get("timestamps") or []
        if not isinstance(text, str) or not isinstance(stamps, list):
            raise TypeError("receipt must be text and timestamps a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise ReceiptError(f"{path} is JSON but not a receipt with timestamps: {exc}") from exc
    return text.encode("utf-8"), stamps


def _check_token(
    item: dict[str, Any], checkpoint: bytes, anchors: list[x509.Certificate]
) -> dict[str, Any]:
    name = str(item.get("tsa", "?"))
    try:
        token = base64.b64decode(str(item["token"]), validate=True)
        chain = x509.load_pem_x509_certificates(str(item.get("chain_pem", "")).encode())
    except (KeyError, ValueError) as exc:
        return {"tsa": name, "token_valid": False, "reason": f"unreadable: {exc}"}
    try:
        verified = verify_token(token, message=checkpoint, trust_anchors=anchors, extra_certs=chain)
    except CustodyError as exc:
        return {"tsa": name, "token_valid": False, "reason": str(exc)}
    return {
        "tsa": name,
        "token_valid": True,
        "time": verified.gen_time.isoformat(),
        "serial": verified.serial,
        "policy": verified.policy,
        "tsa_name": verified.tsa_name,
        "tsa_trusted": verified.trusted,
        "root": verified.chain[-1].subject.rfc4514_string(),
    }


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()
