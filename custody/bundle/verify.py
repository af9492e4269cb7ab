"""Verifies an exhibit bundle offline: integrity (BagIt fixity and completeness, the
organisation's signature, the log's proofs, each exhibit against its entries, RFC 3161
tokens, content proofs) reported apart from trust (whose keys and TSAs it rests on).

Pure: the bag comes through a `BagSource`, keys and anchors are parameters; no network,
clock or environment. Every check runs and reports; none stops at the first failure, and
each failure names the bag file, the check, and the expected and found values.

The modules: `verify_source` (zip or directory), `verify_bagit` (RFC 8493 §3),
`verify_log` (checkpoints and receipts), `verify_timestamps`, `verify_exhibits`,
`verify_content` (given originals), `verify_report` (the result).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from custody.bundle import organisation
from custody.bundle.bagit import parse_bag_info
from custody.bundle.layout import (
    ALGORITHMS,
    BAG_INFO,
    BUNDLE_JSON,
    ORGANISATION_KEY,
    manifest_name,
    signature_name,
    tag_manifest_name,
)
from custody.bundle.model import BundleInfo
from custody.bundle.verify_bagit import BagFiles, check_bag
from custody.bundle.verify_content import Original, check_originals
from custody.bundle.verify_exhibits import (
    Context,
    check_exhibit,
    check_unclaimed_payload,
    load_records,
)
from custody.bundle.verify_log import LogView, choose_log_key, open_log
from custody.bundle.verify_report import (
    BAG_ONLY,
    MISMATCH,
    SUPPLIED,
    BundleReport,
    ContentProof,
    ExhibitSummary,
    Findings,
    Trust,
)
from custody.bundle.verify_source import BagSource, DirectoryBag, ZipBag, open_bag
from custody.bundle.verify_timestamps import check_tokens, warn_pending
from custody.errors import BundleError
from custody.note import Verifier, format_vkey

__all__ = [
    "BagSource",
    "BundleReport",
    "DirectoryBag",
    "ZipBag",
    "open_bag",
    "verify_bundle",
]


def verify_bundle(
    source: BagSource,
    *,
    vkey: Verifier | None,
    tsa_anchors: Sequence[x509.Certificate],
    organisation_key: Ed25519PublicKey | None,
    originals: Sequence[Original] = (),
) -> BundleReport:
    """Check everything the bag claims; `vkey`, `tsa_anchors` and `organisation_key` are what
    the verifying person trusts independently of the bag (None or empty: the bag's own)."""
    findings = Findings()
    bag = check_bag(source, findings)
    org_trust, fingerprint = _check_signatures(bag, organisation_key, findings)
    verifier, key_trust = choose_log_key(bag.tags, vkey, findings)
    log = LogView(verifier, key_trust)
    tokens = check_tokens(bag.tags, tsa_anchors, findings)
    info = _load_info(bag, findings)
    exhibits: tuple[ExhibitSummary, ...] = ()
    proofs: tuple[ContentProof, ...] = ()
    if info is not None:
        ctx = Context(info, bag, log, tokens, findings)
        exhibits, proofs = _check_log_and_exhibits(ctx, originals)
    trust = Trust(
        log_key=key_trust,
        log_vkey=format_vkey(verifier) if verifier else None,
        organisation_key=org_trust,
        organisation_fingerprint=fingerprint,
        tokens=tokens,
    )
    return BundleReport(
        root=source.root,
        export_id=info.export_id if info else None,
        case_id=info.case_id if info else None,
        checkpoint=info.checkpoint if info else None,
        files=len(bag.digests),
        octets=bag.octets,
        failures=tuple(findings.failures),
        warnings=tuple(findings.warnings),
        trust=trust,
        exhibits=exhibits,
        content_proofs=proofs,
    )


def _check_log_and_exhibits(
    ctx: Context, originals: Sequence[Original]
) -> tuple[tuple[ExhibitSummary, ...], tuple[ContentProof, ...]]:
    open_log(ctx.bag.tags, ctx.info, ctx.log, ctx.findings)
    warn_pending(ctx.info, ctx.findings)
    records = load_records(ctx)
    exhibits = tuple(check_exhibit(path, record, ctx) for path, record in records)
    check_unclaimed_payload([r for _, r in records], ctx)
    proofs = check_originals(originals, [r for _, r in records], ctx.log, ctx.findings)
    return exhibits, proofs


def _check_signatures(
    bag: BagFiles, supplied: Ed25519PublicKey | None, findings: Findings
) -> tuple[str, str | None]:
    """The organisation's Ed25519 signature over each tag manifest (custody.bundle.organisation)."""
    bags = _bag_key(bag.tags, findings)
    key, trust = bags, BAG_ONLY
    if supplied is not None:
        key, trust = supplied, SUPPLIED
        if bags is None or _raw(bags) != _raw(supplied):
            found = _fingerprint(bags) if bags else "no usable key"
            findings.fail(ORGANISATION_KEY, "organisation key", _fingerprint(supplied), found)
            trust = MISMATCH
    if key is None:
        return trust, None
    for algorithm in ALGORITHMS:
        manifest, signature = tag_manifest_name(algorithm), signature_name(algorithm)
        data, sig = bag.tags.get(manifest), bag.tags.get(signature)
        if data is None or sig is None:
            findings.fail(signature, "signature", f"a signature over {manifest}", "missing")
        elif not organisation.verify(key, data, sig):
            expected = f"an Ed25519 signature over {manifest} by {_fingerprint(key)}"
            findings.fail(signature, "signature", expected, "invalid")
    return trust, _fingerprint(key)


def _bag_key(tags: Mapping[str, bytes], findings: Findings) -> Ed25519PublicKey | None:
    pem = tags.get(ORGANISATION_KEY)
    if pem is None:
        findings.fail(ORGANISATION_KEY, "organisation key", "present", "missing")
        return None
    try:
        return organisation.load_public_key(pem)
    except BundleError as exc:
        findings.fail(ORGANISATION_KEY, "organisation key", "an Ed25519 PEM key", "no", str(exc))
        return None


def _raw(key: Ed25519PublicKey) -> bytes:
    return organisation.public_raw(key)


def _fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw public key, as the certificate prints it."""
    return "SHA256:" + hashlib.sha256(_raw(key)).hexdigest()


def _load_info(bag: BagFiles, findings: Findings) -> BundleInfo | None:
    """custody/bundle.json, which must agree with bag-info.txt and the payload manifest."""
    data = bag.tags.get(BUNDLE_JSON)
    if data is None:
        findings.fail(BUNDLE_JSON, "bundle", "present", "missing", "the log checks cannot run")
        return None
    try:
        info = BundleInfo.from_json(json.loads(data))
    except (ValueError, BundleError) as exc:
        findings.fail(BUNDLE_JSON, "bundle", "a custody bundle description", "malformed", str(exc))
        return None
    manifest = bag.tags.get(manifest_name("sha256"), b"")
    actual = hashlib.sha256(manifest).hexdigest()
    if info.manifest_sha256 != actual:
        expected = f"manifest_sha256 {info.manifest_sha256}"
        findings.fail(
            BUNDLE_JSON, "bundle", expected, actual, f"SHA-256 of {manifest_name('sha256')}"
        )
    _check_bag_info(bag, info, findings)
    return info


def _check_bag_info(bag: BagFiles, info: BundleInfo, findings: Findings) -> None:
    try:
        fields = dict(parse_bag_info(bag.tags.get(BAG_INFO, b"")))
    except BundleError:
        return  # named by the BagIt checks
    expected = {
        "External-Identifier": info.export_id,
        "Custody-Log-Origin": info.log_origin,
        "Custody-Checkpoint": str(info.checkpoint),
        "Custody-Manifest-SHA256": info.manifest_sha256,
        "Custody-Exhibit-Count": str(info.exhibits),
    }
    for label, value in expected.items():
        if fields.get(label) != value:
            found = fields.get(label, "missing")
            findings.fail(BAG_INFO, "bag-info", f"{label}: {value} (as bundle.json)", found)
