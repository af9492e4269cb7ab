"""`custody verify-bundle`: a court exhibit bundle checked offline, integrity apart from trust.

Needs no data directory, no settings and no network: the bag, and what the verifying
person trusts independently of it (the log's vkey, TSA roots, the organisation's key).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cli.keys import load_tsa_anchors, load_vkey
from custody.bundle.model import SHARING_COPY
from custody.bundle.organisation import load_public_key
from custody.bundle.verify import open_bag, verify_bundle
from custody.bundle.verify_report import BAG_ONLY, MISMATCH, TRUSTED, BundleReport
from custody.errors import BundleError


def run_verify_bundle(
    bag: Path,
    *,
    vkey: str | None,
    tsa_ca: list[Path],
    org_key: Path | None,
    originals: list[Path],
) -> BundleReport:
    """Read what the person supplied (usage errors first), then verify the bag."""
    verifier = load_vkey(vkey) if vkey else None
    anchors = load_tsa_anchors(tsa_ca)
    organisation_key = _load_org_key(org_key) if org_key is not None else None
    for original in originals:
        if not original.is_file():
            raise typer.BadParameter(f"{original}: no such file", param_hint="--original")
    try:
        source = open_bag(bag)
    except BundleError as exc:
        raise typer.BadParameter(f"not an exhibit bundle: {exc}", param_hint="BAG") from exc
    with source:
        return verify_bundle(
            source,
            vkey=verifier,
            tsa_anchors=anchors,
            organisation_key=organisation_key,
            originals=originals,
        )


def _load_org_key(path: Path) -> Ed25519PublicKey:
    try:
        return load_public_key(path.read_bytes())
    except (OSError, BundleError) as exc:
        raise typer.BadParameter(
            f"{path}: not the organisation's Ed25519 public key (PEM): {exc}",
            param_hint="--org-key",
        ) from exc


def report_json(report: BundleReport) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False)


def report_text(report: BundleReport) -> str:
    return "\n".join(
        [
            *_heading(report),
            "",
            *_integrity(report),
            "",
            *_trust(report),
            "",
            *_exhibits(report),
            *_content_proofs(report),
        ]
    )


def _heading(report: BundleReport) -> list[str]:
    about = f"export {report.export_id}, case {report.case_id}" if report.export_id else "?"
    lines = [f"Exhibit bundle {report.root} ({about})"]
    if report.checkpoint is not None:
        lines.append(f"Every custody entry is proven against log checkpoint {report.checkpoint}.")
    return lines


def _integrity(report: BundleReport) -> list[str]:
    checked = f"{report.files} files, {report.octets:,} bytes hashed (SHA-256 and SHA-512)"
    if report.ok:
        lines = [f"INTEGRITY: OK. {checked}; every check passed."]
    else:
        lines = [f"INTEGRITY: FAILED, {len(report.failures)} problem(s). {checked}."]
    for failure in report.failures:
        lines.append(f"  FAIL {failure.file}: {failure.check}")
        lines.append(f"       expected: {failure.expected}")
        lines.append(f"       found:    {failure.found}")
        if failure.detail:
            lines.append(f"       ({failure.detail})")
    for warning in report.warnings:
        lines.append(f"  WARN {warning.file}: {warning.check}: {warning.detail}")
    return lines


def _trust(report: BundleReport) -> list[str]:
    trust = report.trust
    lines = ["TRUST (whose keys these results rest on):"]
    lines.append(f"  Log key: {_key_trust(trust.log_key, '--vkey')}: {trust.log_vkey or 'none'}")
    lines.append(
        f"  Organisation key: {_key_trust(trust.organisation_key, '--org-key')}: "
        f"{trust.organisation_fingerprint or 'none'}"
    )
    if not trust.tokens:
        lines.append("  Timestamps: no valid RFC 3161 token in the bag")
    for token in trust.tokens:
        hint = "" if token.trust == TRUSTED else " (pass --tsa-ca ROOT.pem to check the TSA)"
        lines.append(
            f"  Timestamp over checkpoint {token.checkpoint}: {token.time.isoformat()} by "
            f"{token.tsa}: {token.trust}{hint}"
        )
    return lines


def _key_trust(value: str, option: str) -> str:
    if value == BAG_ONLY:
        return f"bag only (pass {option} to check it against one you obtained yourself)"
    if value == MISMATCH:
        return f"MISMATCH: the bag's key is not the {option} given"
    return f"supplied ({option} matches the bag's)"


def _exhibits(report: BundleReport) -> list[str]:
    lines = [f"EXHIBITS ({len(report.exhibits)}):"]
    for exhibit in report.exhibits:
        lines.append(f"  {exhibit.number:03d}  {exhibit.path}  ({exhibit.kind})")
        lines.append(f"       sha256 {exhibit.sha256}")
        what = "its original collected" if exhibit.kind == SHARING_COPY else "collected"
        lines.append(
            f"       {what} by {exhibit.collected_by or '?'} at {exhibit.collected_at or '?'}"
            " (the custody server's clock)"
        )
        if exhibit.trusted_time is not None:
            lines.append(
                f"       collected no later than {exhibit.trusted_time.isoformat()}"
                f" (RFC 3161 token, {exhibit.trusted_time_trust})"
            )
        else:
            lines.append("       no RFC 3161 token dates its collection")
        lines.append(f"       custody entries: {', '.join(map(str, exhibit.entries))}")
    return lines


def _content_proofs(report: BundleReport) -> list[str]:
    if not report.content_proofs:
        return []
    lines = ["", "CONTENT PROOFS (originals you supplied):"]
    for proof in report.content_proofs:
        verdict = "proves" if proof.proven else "does NOT prove"
        lines.append(
            f"  {proof.original} {verdict} the content of exhibit {proof.exhibit:03d} "
            f"({proof.path}) unchanged: {proof.content_kind} sha256 {proof.content_sha256}"
        )
    return lines
