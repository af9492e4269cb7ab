"""Verification of a TimeStampToken (RFC 3161 §2.4.2), its certificates checked at genTime."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asn1crypto import cms, tsp
from cryptography import x509

from custody.errors import TimestampError
from custody.tsp.certificates import (
    build_path,
    check_tsa_certificate,
    load_certificate,
    subject_of,
)
from custody.tsp.der import check_der, converting, present
from custody.tsp.protocol import HASH_ALGORITHMS, digest_of, parse_response
from custody.tsp.signer import check_signer, find_signer


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    gen_time: datetime  # aware, UTC
    serial: int
    policy: str
    nonce: int | None
    hash_algorithm: str
    tsa_certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # the TSA certificate first, up to a root or an anchor
    trusted: bool  # the chain ends at one of the trust anchors
    tsa_name: str  # the TSA certificate's subject, RFC 4514


@dataclass(frozen=True, slots=True)
class _Token:
    signer_info: Any
    signed_attributes: bytes  # as received: a re-encoding could differ from what was signed
    econtent: bytes  # the TSTInfo's DER, as signed
    certificates: list[x509.Certificate]
    stamp: _Stamp


@dataclass(frozen=True, slots=True)
class _Stamp:
    """What the TSTInfo says."""

    gen_time: datetime
    serial: int
    policy: str
    nonce: int | None
    hash_algorithm: str
    imprint: bytes


def verify_token(
    token: bytes,
    *,
    message: bytes,
    nonce: int | None = None,
    trust_anchors: Sequence[x509.Certificate] = (),
    extra_certs: Sequence[x509.Certificate] = (),
    der_checked: bool = False,
) -> VerifiedToken:
    """Check a TimeStampToken over `message`; an untrusted TSA is a result, not an error.

    The signature, the signed attributes and the TSA certificate's EKU must hold, and a
    certificate path from the TSA certificate must reach a self-signed root or an anchor,
    every certificate valid at the token's genTime. `der_checked`: the token is the one
    `parse_response` returned, which checked its DER with the whole reply's.
    """
    with converting(TimestampError, "malformed time-stamp token"):
        parsed = _open_token(token, der_checked=der_checked)
        pool = [*parsed.certificates, *extra_certs]
        signer = find_signer(parsed.signer_info, pool)
        check_signer(parsed.signer_info, parsed.signed_attributes, parsed.econtent, signer)
        check_tsa_certificate(signer)
        stamp = parsed.stamp
        _check_stamp(stamp, message, nonce)
        path, trusted = build_path(signer, pool, trust_anchors, stamp.gen_time)
        return VerifiedToken(
            gen_time=stamp.gen_time,
            serial=stamp.serial,
            policy=stamp.policy,
            nonce=stamp.nonce,
            hash_algorithm=stamp.hash_algorithm,
            tsa_certificate=signer,
            chain=tuple(path),
            trusted=trusted,
            tsa_name=subject_of(signer),
        )


def verify_reply(
    reply_der: bytes,
    *,
    message: bytes,
    nonce: int,
    trust_anchors: Sequence[x509.Certificate] = (),
    extra_certs: Sequence[x509.Certificate] = (),
) -> tuple[bytes, VerifiedToken]:
    """Check a TSA's TimeStampResp to our request; return the token and what it says."""
    reply = parse_response(reply_der)
    if reply.token is None:
        raise TimestampError(f"the TSA answered {reply.status}: {reply.text or 'no reason given'}")
    verified = verify_token(
        reply.token,
        message=message,
        nonce=nonce,
        trust_anchors=trust_anchors,
        extra_certs=extra_certs,
        der_checked=True,
    )
    return reply.token, verified


def _check_stamp(stamp: _Stamp, message: bytes, nonce: int | None) -> None:
    """The token stamps `message`, and answers `nonce` when one was sent."""
    expected = digest_of(stamp.hash_algorithm, message)
    if stamp.imprint != expected:
        raise TimestampError(
            f"message imprint mismatch: the token stamps {stamp.hash_algorithm}"
            f" {stamp.imprint.hex()}, the message's is {expected.hex()}"
        )
    if nonce is not None and stamp.nonce != nonce:
        raise TimestampError(f"nonce mismatch: expected {nonce}, found {stamp.nonce}")


def _open_token(token: bytes, *, der_checked: bool) -> _Token:
    if not der_checked:
        check_der(token)
    content_info = cms.ContentInfo.load(token, strict=True)
    content_type = content_info["content_type"].native
    if content_type != "signed_data":
        raise TimestampError(f"the token is CMS {content_type}, not signed-data")
    signed_data = content_info["content"]
    encapsulated = signed_data["encap_content_info"]
    if encapsulated["content_type"].native != "tst_info":
        raise TimestampError(
            f"the token signs {encapsulated['content_type'].native}, not id-ct-TSTInfo"
        )
    if not present(encapsulated["content"]):
        raise TimestampError("the token carries no TSTInfo")
    # RFC 5652 §5.1: version 3 at least when the content is not id-data.
    if signed_data["version"].native not in ("v3", "v4", "v5"):
        raise TimestampError(f"SignedData version {signed_data['version'].native}, not 3")
    signer_infos = signed_data["signer_infos"]
    if len(signer_infos) != 1:
        raise TimestampError(f"the token has {len(signer_infos)} SignerInfos, not exactly one")
    signer_info = signer_infos[0]
    # RFC 5652 §5.3: version 1 names the signer by issuer and serial, version 3 by key id.
    by_key_id = signer_info["sid"].name == "subject_key_identifier"
    if signer_info["version"].native != ("v3" if by_key_id else "v1"):
        raise TimestampError(f"SignerInfo version {signer_info['version'].native} for its sid")
    econtent = bytes(encapsulated["content"].contents)
    certificates = signed_data["certificates"]
    return _Token(
        signer_info=signer_info,
        signed_attributes=bytes(signer_info["signed_attrs"].dump()),
        econtent=econtent,
        certificates=[
            load_certificate(choice.chosen)
            for choice in (certificates if present(certificates) else ())
            if choice.name == "certificate"
        ],
        stamp=_read_tst_info(econtent),
    )


def _read_tst_info(econtent: bytes) -> _Stamp:
    check_der(econtent)
    tst_info = tsp.TSTInfo.load(econtent, strict=True)
    fields = tst_info.native  # parses every field, so a malformed one fails here
    if fields["version"] != "v1":
        raise TimestampError(f"TSTInfo version {fields['version']}, not 1")
    if any(extension["critical"] for extension in fields["extensions"] or ()):
        raise TimestampError("the TSTInfo has critical extensions this verifier does not know")
    imprint = fields["message_imprint"]
    algorithm = str(imprint["hash_algorithm"]["algorithm"])
    if algorithm not in HASH_ALGORITHMS:
        raise TimestampError(f"unsupported message imprint algorithm {algorithm}")
    if not isinstance(fields["gen_time"], datetime):
        raise TimestampError(f"genTime {fields['gen_time']} is out of range")
    return _Stamp(
        gen_time=fields["gen_time"].astimezone(UTC),
        serial=int(fields["serial_number"]),
        policy=str(tst_info["policy"].dotted),
        nonce=fields["nonce"],
        hash_algorithm=algorithm,
        imprint=bytes(imprint["hashed_message"]),
    )
