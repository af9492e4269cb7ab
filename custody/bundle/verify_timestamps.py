"""Trusted time in a bag: each TSA's RFC 3161 TimeStampResp over an archived checkpoint's
exact bytes, verified with that TSA's chain from the bag; trusted only when the chain
reaches an anchor the verifying person supplied."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from cryptography import x509

from custody.bundle.layout import chain_path, checkpoint_path
from custody.bundle.model import BundleInfo
from custody.bundle.verify_report import BAG_CHAIN_ONLY, TRUSTED, Findings, TokenTrust
from custody.errors import CustodyError
from custody.tsp import parse_response, verify_token

_TOKEN = re.compile(r"custody/checkpoints/(0|[1-9][0-9]*)/tsa(0|[1-9][0-9]*)\.tsr")


def check_tokens(
    tags: Mapping[str, bytes], anchors: Sequence[x509.Certificate], findings: Findings
) -> tuple[TokenTrust, ...]:
    """Every token in the bag; an invalid one is an integrity failure."""
    valid = []
    for path in sorted(tags):
        match = _TOKEN.fullmatch(path)
        if match is not None:
            size, slot = int(match.group(1)), int(match.group(2))
            token = _check_token(path, size, slot, tags, anchors, findings)
            if token is not None:
                valid.append(token)
    return tuple(sorted(valid, key=lambda t: (t.checkpoint, t.file)))


def _check_token(
    path: str,
    size: int,
    slot: int,
    tags: Mapping[str, bytes],
    anchors: Sequence[x509.Certificate],
    findings: Findings,
) -> TokenTrust | None:
    stamped = checkpoint_path(size)
    message = tags.get(stamped)
    if message is None:
        findings.fail(path, "timestamp", f"the checkpoint it stamps, {stamped}", "missing")
        return None
    try:
        reply = parse_response(tags[path])
        if reply.token is None:
            findings.fail(path, "timestamp", "a granted reply", reply.status, reply.text)
            return None
        verified = verify_token(
            reply.token,
            message=message,
            trust_anchors=anchors,
            extra_certs=_chain(tags, chain_path(size, slot), findings),
            der_checked=True,
        )
    except CustodyError as exc:
        expected = f"a valid RFC 3161 token over {stamped}"
        findings.fail(path, "timestamp", expected, "invalid", str(exc))
        return None
    trust = TRUSTED if verified.trusted else BAG_CHAIN_ONLY
    return TokenTrust(path, size, verified.tsa_name, verified.gen_time, trust)


def _chain(tags: Mapping[str, bytes], path: str, findings: Findings) -> list[x509.Certificate]:
    data = tags.get(path)
    if data is None:
        return []  # the token may carry its certificates; if not, it fails by itself
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        findings.fail(path, "timestamp", "the TSA's certificates in PEM", "malformed", str(exc))
        return []


def warn_pending(info: BundleInfo, findings: Findings) -> None:
    """A TSA that had not answered when the bag was made: not a failure, not a proof either."""
    for size, names in sorted(info.timestamps_pending.items()):
        for name in names:
            findings.warn(checkpoint_path(size), "timestamp", f"no token from {name} yet (pending)")


def collection_time(tokens: Sequence[TokenTrust], size: int) -> tuple[datetime | None, str | None]:
    """The earliest time a token over checkpoint `size` proves; a trusted TSA's first."""
    over = [t for t in tokens if t.checkpoint == size]
    for trust in (TRUSTED, BAG_CHAIN_ONLY):
        times = [t.time for t in over if t.trust == trust]
        if times:
            return min(times), trust
    return None, None
