"""RFC 3161 Time-Stamp Protocol, both sides: requests, a built-in TSA, and token verification.

Tokens are CMS SignedData (RFC 5652) over a TSTInfo, with the signing certificate named by
ESSCertIDv2 (RFC 5816); `openssl ts -verify` accepts what `issue_response` makes. Pure: bytes
in, values out; time is a parameter, and transport and key storage belong to the caller.

Verification checks certificates at the token's genTime, not at "now": a token issued while
the TSA certificate was valid keeps verifying after that certificate expires, which is what
lets a timestamp serve as evidence years later. Revocation (CRL, OCSP) is not checked here.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from custody.errors import (
    CustodyError,
    TimestampError,
    TimestampRequestError,
    UnsupportedAlgorithmError,
)

HASH_ALGORITHMS = {"sha256": 32, "sha384": 48, "sha512": 64}  # name: digest size in bytes
ID_KP_TIME_STAMPING = "1.3.6.1.5.5.7.3.8"  # RFC 5280 §4.2.1.12
# ITU-T X.667: "2.25." and a UUID's integer value is an OID that needs no registration.
DEFAULT_POLICY = "2.25.271627974244485204201126569748471419464"

_GRANTED = ("granted", "granted_with_mods")  # RFC 3161 §2.4.2: the statuses that carry a token
# RFC 3161 §2.4.2 PKIFailureInfo: name -> bit number.
_FAILURE_BITS = {
    "bad_alg": 0,
    "bad_request": 2,
    "bad_data_format": 5,
    "time_not_available": 14,
    "unaccepted_policy": 15,
    "unaccepted_extension": 16,
    "add_info_not_available": 17,
    "system_failure": 25,
}
_CURVE_HASHES = {"secp256r1": "sha256", "secp384r1": "sha384", "secp521r1": "sha512"}
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_VERSION_1 = core.Integer(1).dump()
_VERSION_3 = core.Integer(3).dump()
_ID_SIGNED_DATA = core.ObjectIdentifier("1.2.840.113549.1.7.2").dump()  # RFC 5652 §5.1
_ID_CT_TST_INFO = core.ObjectIdentifier("1.2.840.113549.1.9.16.1.4").dump()  # RFC 3161 §2.4.2
# RFC 5280 Appendix A upper bounds that cryptography checks (with a warning) on names.
_NAME_BOUNDS = {"2.5.4.3": (1, 64), "2.5.4.6": (2, 2), "1.3.6.1.4.1.311.60.2.1.3": (2, 2)}
_MAX_PATH = 8  # certificates in a TSA's path; bounds the search on hostile input
# What asn1crypto and cryptography raise on malformed input; converted at this boundary.
_LIBRARY_ERRORS = (
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    OverflowError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
)


class _FailureInfo(core.BitString):  # type: ignore[misc]
    _map = {bit: name for name, bit in _FAILURE_BITS.items()}  # noqa: RUF012  (asn1crypto's schema)


class _StatusInfo(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012  (asn1crypto's schema)
        ("status", tsp.PKIStatus),
        ("status_string", tsp.PKIFreeText, {"optional": True}),
        ("fail_info", _FailureInfo, {"optional": True}),
    ]


class _TimeStampResp(core.Sequence):  # type: ignore[misc]
    # asn1crypto 1.5 makes the token mandatory; RFC 3161 §2.4.2 has it OPTIONAL.
    _fields = [  # noqa: RUF012  (asn1crypto's schema)
        ("status", _StatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


_GRANTED_STATUS = _StatusInfo({"status": "granted"}).dump()


# ---------------------------------------------------------------------------------------
# Requests (RFC 3161 §2.4.1)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimestampRequest:
    hash_algorithm: str
    message_imprint: bytes
    nonce: int | None
    cert_req: bool
    policy: str | None

    def __post_init__(self) -> None:
        size = HASH_ALGORITHMS.get(self.hash_algorithm)
        if size is None:
            accepted = ", ".join(HASH_ALGORITHMS)
            raise TimestampRequestError(
                "bad_alg",
                f"unsupported hash algorithm {self.hash_algorithm} (accepted: {accepted})",
            )
        if len(self.message_imprint) != size:
            raise TimestampRequestError(
                "bad_data_format",
                f"the {self.hash_algorithm} message imprint is {len(self.message_imprint)} bytes,"
                f" not {size}",
            )


def new_nonce() -> int:
    """A positive 64-bit nonce, as `openssl ts -query` sends."""
    return secrets.randbelow(2**64 - 1) + 1


def make_request(
    message: bytes,
    *,
    nonce: int,
    hash_algorithm: str = "sha256",
    cert_req: bool = True,
    policy: str | None = None,
) -> bytes:
    """A DER TimeStampReq for `message`, hashed with `hash_algorithm`."""
    if hash_algorithm not in HASH_ALGORITHMS:
        raise UnsupportedAlgorithmError(hash_algorithm)
    request = TimestampRequest(
        hash_algorithm, _digest(hash_algorithm, message), nonce, cert_req, policy
    )
    fields: dict[str, Any] = {
        "version": "v1",
        "message_imprint": _imprint(request),
        "nonce": nonce,
        "cert_req": cert_req,
    }
    if policy is not None:
        fields["req_policy"] = policy
    return bytes(tsp.TimeStampReq(fields).dump())


def parse_request(der: bytes) -> TimestampRequest:
    """Parse a TimeStampReq strictly; every refusal is a TimestampRequestError.

    DER only (one encoding per request), version 1, a SHA-2 imprint of the right length, and
    no extensions: we know none, and RFC 3161 §2.4.1 says to reject what we do not know.
    """
    with _converting(
        lambda reason: TimestampRequestError("bad_data_format", reason), "malformed TimeStampReq"
    ):
        _check_der(der)
        request = tsp.TimeStampReq.load(der, strict=True)
        request.native  # noqa: B018  (parses every field, so malformed ones fail here)
        if request.dump(force=True) != der:
            raise ValueError("not DER: a field holds its default value")
        if request["version"].native != "v1":
            raise TimestampRequestError(
                "bad_request", f"TimeStampReq version {request['version'].native}, not 1"
            )
        algorithm = request["message_imprint"]["hash_algorithm"]
        name = str(algorithm["algorithm"].native)
        if algorithm["parameters"].native is not None:  # RFC 5754 §2: absent or NULL
            raise TimestampRequestError("bad_alg", f"{name} with parameters other than NULL")
        if _present(request["extensions"]):
            oids = ", ".join(ext["extn_id"].dotted for ext in request["extensions"])
            raise TimestampRequestError("unaccepted_extension", f"unsupported extensions: {oids}")
        policy = request["req_policy"]
        return TimestampRequest(
            hash_algorithm=name,
            message_imprint=bytes(request["message_imprint"]["hashed_message"].native),
            nonce=request["nonce"].native,
            cert_req=bool(request["cert_req"].native),
            policy=policy.dotted if _present(policy) else None,
        )


# ---------------------------------------------------------------------------------------
# The TSA's identity
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SignerParts:
    """The DER that every token of one TSA repeats, encoded once rather than per token."""

    hash_algorithm: str
    digest_algorithm: bytes  # AlgorithmIdentifier of the hash; RFC 5754 §2: no parameters
    signature_algorithm: bytes  # ecdsa-with-SHA*; RFC 5758 §3.2: no parameters
    tsa_name: bytes  # GeneralName: directoryName of the TSA certificate's subject
    sid: bytes  # IssuerAndSerialNumber of the TSA certificate
    attributes: tuple[bytes, ...]  # content-type TSTInfo and signing-certificate-v2 (RFC 5816)
    certificates: bytes  # the TSA certificate and its chain, in DER SET OF order

    @classmethod
    def of(cls, certificates: Sequence[x509.Certificate], curve: str) -> _SignerParts:
        if curve not in _CURVE_HASHES:
            raise TimestampError(f"unsupported TSA key curve {curve}")
        algorithm = _CURVE_HASHES[curve]
        ders = [c.public_bytes(serialization.Encoding.DER) for c in certificates]
        parsed = asn1_x509.Certificate.load(ders[0])
        cert_id = {
            "cert_hash": hashlib.sha256(ders[0]).digest(),
            "issuer_serial": {
                "issuer": [asn1_x509.GeneralName({"directory_name": parsed.issuer})],
                "serial_number": parsed.serial_number,
            },
        }
        attributes = cms.CMSAttributes(
            [
                {"type": "content_type", "values": ["tst_info"]},
                {"type": "signing_certificate_v2", "values": [{"certs": [cert_id]}]},
            ]
        )
        sid = {"issuer": parsed.issuer, "serial_number": parsed.serial_number}
        return cls(
            hash_algorithm=algorithm,
            digest_algorithm=algos.DigestAlgorithm(
                {"algorithm": algorithm, "parameters": None}
            ).dump(),
            signature_algorithm=algos.SignedDigestAlgorithm(
                {"algorithm": f"{algorithm}_ecdsa"}
            ).dump(),
            tsa_name=asn1_x509.GeneralName({"directory_name": parsed.subject}).dump(),
            sid=cms.IssuerAndSerialNumber(sid).dump(),
            attributes=tuple(attribute.dump() for attribute in attributes),
            certificates=b"".join(sorted(ders)),
        )


@dataclass(frozen=True, slots=True)
class TsaIdentity:
    """A TSA's signing key, its certificate, and the issuers up to the root (nearest first)."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    _parts: _SignerParts = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = _SignerParts.of((self.certificate, *self.chain), self.key.curve.name)
        object.__setattr__(self, "_parts", parts)

    def chain_pem(self) -> str:
        """The TSA certificate, then its issuers, in PEM."""
        pems = (c.public_bytes(serialization.Encoding.PEM) for c in (self.certificate, *self.chain))
        return b"".join(pems).decode("ascii")


def generate_tsa(
    common_name: str,
    *,
    now: datetime,
    root_days: int = 7300,
    tsa_days: int = 3650,
    organization: str | None = None,
) -> TsaIdentity:
    """A fresh root CA and the TSA certificate it issues, both ECDSA P-256.

    The root's key signs once and is dropped: nobody can issue a second TSA certificate
    under it, so the root certificate is a trust anchor for this TSA alone.
    """
    root_key = ec.generate_private_key(ec.SECP256R1())
    tsa_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(f"{common_name} Root", organization)
    root_until = now + timedelta(days=root_days)
    root = (
        _builder(root_name, root_name, root_key.public_key(), now, root_until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    tsa_until = min(now + timedelta(days=tsa_days), root_until)
    certificate = (
        _builder(_name(common_name, organization), root_name, tsa_key.public_key(), now, tsa_until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, content_commitment=True), critical=True)
        # RFC 3161 §2.3: critical, and id-kp-timeStamping only.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )
    return TsaIdentity(tsa_key, certificate, (root,))


def load_tsa(key_pem: bytes, chain_pem: bytes) -> TsaIdentity:
    """A TSA from its PEM key and PEM certificates (the TSA certificate first, then issuers)."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
        certificate, *chain = x509.load_pem_x509_certificates(chain_pem)
    except _LIBRARY_ERRORS as exc:
        raise TimestampError(f"unreadable TSA key or certificates: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TimestampError(f"the TSA key is {type(key).__name__}, not an elliptic-curve key")
    if _public_der(key.public_key()) != _public_der(certificate.public_key()):
        raise TimestampError(
            f"the TSA key does not belong to the certificate {_subject(certificate)}"
        )
    _check_tsa_certificate(certificate)
    for child, issuer in zip((certificate, *chain), chain, strict=False):
        if not _issued_by(child, issuer):
            raise TimestampError(
                f"{_subject(child)} is not issued by the next certificate, {_subject(issuer)}"
            )
    return TsaIdentity(key, certificate, tuple(chain))


def dump_tsa_key(identity: TsaIdentity) -> bytes:
    """The TSA's private key as unencrypted PKCS #8 PEM."""
    return identity.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# ---------------------------------------------------------------------------------------
# Responses (RFC 3161 §2.4.2)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimestampReply:
    status: str
    token: bytes | None  # the TimeStampToken (a DER ContentInfo) when granted
    text: str  # the statusString lines and the failure info names


def issue_response(
    request: TimestampRequest,
    *,
    tsa: TsaIdentity,
    serial: int,
    policy: str,
    gen_time: datetime,
    accuracy_ms: int | None = None,
) -> bytes:
    """A granted TimeStampResp whose token stamps `request` at `gen_time` (timezone-aware)."""
    if request.policy is not None and request.policy != policy:
        raise TimestampRequestError(
            "unaccepted_policy", f"policy {request.policy} is not this TSA's policy {policy}"
        )
    if gen_time.tzinfo is None:
        raise ValueError("gen_time must be timezone-aware")
    tst_info = _tst_info(request, tsa._parts, serial, policy, gen_time, accuracy_ms)
    token = _sign(tst_info, tsa.key, tsa._parts, with_certificates=request.cert_req)
    return _tlv(0x30, _GRANTED_STATUS, token)


def rejection_response(failure_info: str, text: str) -> bytes:
    """A TimeStampResp refusing a request: status rejection, one failure bit, and `text`."""
    if failure_info not in _FAILURE_BITS:
        raise ValueError(f"unknown PKIFailureInfo {failure_info!r}")
    status = {"status": "rejection", "status_string": [text], "fail_info": {failure_info}}
    return bytes(_TimeStampResp({"status": status}).dump())


def parse_response(der: bytes) -> TimestampReply:
    """Parse a TimeStampResp; its token, if any, is not verified here (see verify_token)."""
    with _converting(TimestampError, "malformed TimeStampResp"):
        _check_der(der)
        response = _TimeStampResp.load(der, strict=True)
        info = response["status"]
        status = info["status"].native
        lines = [str(line) for line in info["status_string"].native or ()]
        failures = sorted(str(bit) for bit in info["fail_info"].native or ())
        token = response["time_stamp_token"]
        token_der = bytes(token.dump()) if _present(token) else None
    if not isinstance(status, str):
        raise TimestampError(f"unknown PKIStatus {status}")
    if failures:
        lines.append(f"failure info: {', '.join(failures)}")
    if status in _GRANTED and token_der is None:
        raise TimestampError(f"the TSA answered {status} but sent no token")
    return TimestampReply(status, token_der if status in _GRANTED else None, "; ".join(lines))


def _tst_info(
    request: TimestampRequest,
    parts: _SignerParts,
    serial: int,
    policy: str,
    gen_time: datetime,
    accuracy_ms: int | None,
) -> bytes:
    """TSTInfo (RFC 3161 §2.4.2): its fields in schema order, ordering left at its default."""
    fields = [
        _VERSION_1,
        core.ObjectIdentifier(policy).dump(),
        tsp.MessageImprint(_imprint(request)).dump(),
        core.Integer(serial).dump(),
        core.GeneralizedTime(gen_time).dump(),
    ]
    if accuracy_ms is not None:
        fields.append(tsp.Accuracy(_accuracy(accuracy_ms)).dump())
    if request.nonce is not None:
        fields.append(core.Integer(request.nonce).dump())
    fields.append(_tlv(0xA0, parts.tsa_name))  # tsa [0] EXPLICIT GeneralName
    return _tlv(0x30, *fields)


def _sign(
    tst_info: bytes,
    key: ec.EllipticCurvePrivateKey,
    parts: _SignerParts,
    *,
    with_certificates: bool,
) -> bytes:
    """The TimeStampToken: a ContentInfo holding SignedData v3 over the TSTInfo (RFC 5652 §5).

    Assembled from DER the TSA encoded once: building it with asn1crypto re-encodes the
    certificates for every token and is some fifty times slower.
    """
    algorithm = parts.hash_algorithm
    digest = {"type": "message_digest", "values": [_digest(algorithm, tst_info)]}
    # X.690 §11.6: a DER SET OF lists its elements in the order of their encodings.
    attributes = b"".join(sorted((*parts.attributes, cms.CMSAttribute(digest).dump())))
    # RFC 5652 §5.4: the signature covers the attributes tagged as a SET OF, not as [0].
    signature = key.sign(_tlv(0x31, attributes), ec.ECDSA(_HASHES[algorithm]()))
    signer_info = _tlv(
        0x30,
        _VERSION_1,
        parts.sid,
        parts.digest_algorithm,
        _tlv(0xA0, attributes),  # signedAttrs [0] IMPLICIT
        parts.signature_algorithm,
        _tlv(0x04, signature),
    )
    content = _tlv(0x30, _ID_CT_TST_INFO, _tlv(0xA0, _tlv(0x04, tst_info)))
    signed_data = _tlv(
        0x30,
        _VERSION_3,
        _tlv(0x31, parts.digest_algorithm),
        content,
        _tlv(0xA0, parts.certificates) if with_certificates else b"",  # [0] IMPLICIT
        _tlv(0x31, signer_info),
    )
    return _tlv(0x30, _ID_SIGNED_DATA, _tlv(0xA0, signed_data))


def _tlv(tag: int, *contents: bytes) -> bytes:
    """A DER value from its one-byte tag and its contents (X.690 §8.1.3, §10.1)."""
    body = b"".join(contents)
    size = len(body)
    if size < 0x80:
        return bytes((tag, size)) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + body


# ---------------------------------------------------------------------------------------
# Verification (RFC 3161 §2.4.2, RFC 5652 §5.6, RFC 5816)
# ---------------------------------------------------------------------------------------


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
) -> VerifiedToken:
    """Check a TimeStampToken over `message`; an untrusted TSA is a result, not an error.

    The signature, the signed attributes and the TSA certificate's EKU must hold, and a
    certificate path from the TSA certificate must reach a self-signed root or an anchor,
    every certificate valid at the token's genTime.
    """
    with _converting(TimestampError, "malformed time-stamp token"):
        parsed = _open_token(token)
        pool = [*parsed.certificates, *extra_certs]
        signer = _find_signer(parsed.signer_info, pool)
        attributes = _signed_attributes(parsed.signer_info, parsed.econtent)
        _check_signing_certificate(attributes, signer)
        _check_signature(parsed.signer_info, parsed.signed_attributes, signer)
        _check_tsa_certificate(signer)
        stamp = parsed.stamp
        expected = _digest(stamp.hash_algorithm, message)
        if stamp.imprint != expected:
            raise TimestampError(
                f"message imprint mismatch: the token stamps {stamp.hash_algorithm}"
                f" {stamp.imprint.hex()}, the message's is {expected.hex()}"
            )
        if nonce is not None and stamp.nonce != nonce:
            raise TimestampError(f"nonce mismatch: expected {nonce}, found {stamp.nonce}")
        path, trusted = _build_path(signer, pool, trust_anchors, stamp.gen_time)
        return VerifiedToken(
            gen_time=stamp.gen_time,
            serial=stamp.serial,
            policy=stamp.policy,
            nonce=stamp.nonce,
            hash_algorithm=stamp.hash_algorithm,
            tsa_certificate=signer,
            chain=tuple(path),
            trusted=trusted,
            tsa_name=_subject(signer),
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
    )
    return reply.token, verified


def _open_token(token: bytes) -> _Token:
    _check_der(token)
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
    if not _present(encapsulated["content"]):
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
            _load_certificate(choice.chosen)
            for choice in (certificates if _present(certificates) else ())
            if choice.name == "certificate"
        ],
        stamp=_read_tst_info(econtent),
    )


def _read_tst_info(econtent: bytes) -> _Stamp:
    _check_der(econtent)
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


def _load_certificate(certificate: Any) -> x509.Certificate:
    """A token's certificate, refused where cryptography would only warn: warnings are no errors.

    RFC 5280 §4.1.2.2 wants a positive serial, and Appendix A bounds some name attributes.
    """
    tbs = certificate["tbs_certificate"]
    if tbs["serial_number"].native <= 0:
        raise TimestampError("a certificate in the token has a serial number that is not positive")
    for rdn in (*tbs["issuer"].chosen, *tbs["subject"].chosen):
        for attribute in rdn:
            low, high = _NAME_BOUNDS.get(attribute["type"].dotted, (0, 2**31))
            if not low <= len(str(attribute["value"].native).encode()) <= high:
                raise TimestampError(
                    f"a certificate in the token has a {attribute['type'].native} that breaks"
                    f" the RFC 5280 bounds of {low} to {high} bytes"
                )
    return x509.load_der_x509_certificate(certificate.dump())


def _find_signer(signer_info: Any, candidates: Sequence[x509.Certificate]) -> x509.Certificate:
    sid = signer_info["sid"]
    for certificate in candidates:
        if sid.name == "issuer_and_serial_number":
            chosen = sid.chosen
            if (
                chosen["serial_number"].native == certificate.serial_number
                and chosen["issuer"].dump() == certificate.issuer.public_bytes()
            ):
                return certificate
        elif sid.chosen.native == _key_identifier(certificate):
            return certificate
    raise TimestampError(
        "the TSA certificate that signed the token is neither in the token nor among the extra"
        " certificates"
    )


def _signed_attributes(signer_info: Any, econtent: bytes) -> dict[str, Any]:
    """The signed attributes by name, once content-type and message-digest are checked."""
    if not _present(signer_info["signed_attrs"]):
        raise TimestampError("the token has no signed attributes (RFC 3161 §2.4.1 needs them)")
    attributes: dict[str, Any] = {}
    for attribute in signer_info["signed_attrs"]:
        name = attribute["type"].native
        values = attribute["values"]
        if name in attributes or len(values) != 1:
            raise TimestampError(f"signed attribute {name} must occur once, with one value")
        attributes[name] = values[0]
    for name in ("content_type", "message_digest"):
        if name not in attributes:
            raise TimestampError(f"the token has no {name.replace('_', '-')} signed attribute")
    if attributes["content_type"].native != "tst_info":
        raise TimestampError("the content-type signed attribute is not id-ct-TSTInfo")
    algorithm = _signer_digest(signer_info)
    if attributes["message_digest"].native != _digest(algorithm, econtent):
        raise TimestampError("the message-digest signed attribute does not match the TSTInfo")
    return attributes


def _check_signing_certificate(attributes: dict[str, Any], signer: x509.Certificate) -> None:
    """RFC 3161 §2.4.1 (ESS, RFC 2634 / RFC 5035): the first certificate ID names the signer."""
    der = signer.public_bytes(serialization.Encoding.DER)
    if "signing_certificate_v2" in attributes:
        cert_id = attributes["signing_certificate_v2"]["certs"][0]
        algorithm = str(cert_id["hash_algorithm"]["algorithm"].native)
        if algorithm not in HASH_ALGORITHMS:
            raise TimestampError(f"unsupported ESSCertIDv2 hash algorithm {algorithm}")
        expected = _digest(algorithm, der)
    elif "signing_certificate" in attributes:
        cert_id = attributes["signing_certificate"]["certs"][0]
        # RFC 2634 §5.4.1 fixes SHA-1 here; the hash names the certificate, the signature binds it.
        expected = hashlib.sha1(der).digest()  # noqa: S324
    else:
        raise TimestampError("the token has no signing-certificate(-v2) signed attribute")
    if cert_id["cert_hash"].native != expected:
        raise TimestampError(
            f"the signing-certificate attribute names another certificate than {_subject(signer)}"
        )
    issuer_serial = cert_id["issuer_serial"]
    if _present(issuer_serial) and (
        issuer_serial["serial_number"].native != signer.serial_number
        or [n.chosen for n in issuer_serial["issuer"]] != [_asn1_name(signer.issuer)]
    ):
        raise TimestampError("the signing-certificate attribute's issuer and serial are another's")


def _check_signature(signer_info: Any, signed_attributes: bytes, signer: x509.Certificate) -> None:
    # RFC 5652 §5.4: the signed attributes are signed with their SET OF tag, not [0].
    signed = b"\x31" + signed_attributes[1:]
    signature = bytes(signer_info["signature"].native)
    algorithm = signer_info["signature_algorithm"]
    scheme = algorithm.signature_algo
    digest = _signer_digest(signer_info)
    try:
        named = algorithm.hash_algo  # ecdsa-with-SHA256, RSASSA-PSS parameters
    except ValueError:
        named = digest  # rsaEncryption: the SignerInfo's digest algorithm alone decides
    if scheme != "ed25519" and named != digest:
        raise TimestampError(f"signature algorithm {algorithm['algorithm'].native} is not {digest}")
    key = signer.public_key()
    try:
        if scheme == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, signed, ec.ECDSA(_HASHES[digest]()))
        elif scheme == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), _HASHES[digest]())
        elif scheme == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, _pss(algorithm["parameters"]), _HASHES[digest]())
        elif scheme == "ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, signed)
        else:
            raise TimestampError(
                f"unsupported signature algorithm {algorithm['algorithm'].native}"
                f" for the TSA's {type(key).__name__}"
            )
    except InvalidSignature as exc:
        raise TimestampError(
            f"the token's signature does not verify with the key of {_subject(signer)}"
        ) from exc


def _pss(parameters: Any) -> padding.PSS:
    mgf = parameters["mask_gen_algorithm"]
    if mgf["algorithm"].native != "mgf1":
        raise TimestampError(f"unsupported RSASSA-PSS mask generation {mgf['algorithm'].native}")
    mgf_hash = str(mgf["parameters"]["algorithm"].native)
    if mgf_hash not in _HASHES:
        raise TimestampError(f"unsupported RSASSA-PSS MGF1 hash {mgf_hash}")
    return padding.PSS(padding.MGF1(_HASHES[mgf_hash]()), int(parameters["salt_length"].native))


def _check_tsa_certificate(certificate: x509.Certificate) -> None:
    """RFC 3161 §2.3, as OpenSSL's timestamp-sign purpose checks it."""
    name = _subject(certificate)
    extensions = certificate.extensions
    try:
        eku = extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        raise TimestampError(
            f"the TSA certificate {name} has no extendedKeyUsage (RFC 3161 §2.3)"
        ) from None
    if not eku.critical:
        raise TimestampError(f"the TSA certificate {name} has a non-critical extendedKeyUsage")
    purposes = [oid.dotted_string for oid in eku.value]
    if purposes != [ID_KP_TIME_STAMPING]:
        raise TimestampError(
            f"the TSA certificate {name} has extendedKeyUsage {', '.join(purposes)},"
            f" not id-kp-timeStamping alone"
        )
    try:
        usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    others = (usage.key_encipherment, usage.data_encipherment, usage.key_agreement)
    if any(others) or usage.key_cert_sign or usage.crl_sign:
        raise TimestampError(f"the TSA certificate {name} has key usages beyond signing")
    if not (usage.digital_signature or usage.content_commitment):
        raise TimestampError(f"the TSA certificate {name}'s key usage does not allow signing")


def _build_path(
    signer: x509.Certificate,
    pool: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    at: datetime,
) -> tuple[list[x509.Certificate], bool]:
    """The path from the TSA certificate up to an anchor or a self-signed root, valid at `at`."""
    path = [signer]
    candidates = [*anchors, *pool]  # anchors first, so a path ends at one when it can
    while True:
        current = path[-1]
        _check_validity(current, at)
        if any(_same_certificate(current, anchor) for anchor in anchors):
            return path, True
        if current.subject == current.issuer and _issued_by(current, current):
            return path, False
        issuer = next((c for c in candidates if _issued_by(current, c)), None)
        if issuer is None:
            raise TimestampError(
                f"chain incomplete: {current.issuer.rfc4514_string()}, the issuer of"
                f" {_subject(current)}, is not among the token's, extra or trusted certificates"
            )
        if issuer in path or len(path) == _MAX_PATH:
            raise TimestampError(f"the certificate chain loops or passes {_MAX_PATH} certificates")
        _check_issuer(issuer, below=len(path) - 1)
        path.append(issuer)


def _check_issuer(issuer: x509.Certificate, *, below: int) -> None:
    """RFC 5280 §4.2.1.9, §4.2.1.3: a CA, allowed `below` CAs under it, allowed to sign."""
    name = _subject(issuer)
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise TimestampError(f"the issuing certificate {name} is not a CA")
    if constraints.path_length is not None and below > constraints.path_length:
        raise TimestampError(f"the CA {name} may not have {below} CAs below it")
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.key_cert_sign:
        raise TimestampError(f"the CA {name}'s key usage does not allow signing certificates")


def _check_validity(certificate: x509.Certificate, at: datetime) -> None:
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if not start <= at <= end:
        state = "expired" if at > end else "not yet valid"
        raise TimestampError(
            f"the certificate {_subject(certificate)} was {state} at the token's genTime"
            f" {at.isoformat()} (valid from {start.isoformat()} to {end.isoformat()})"
        )


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


@contextmanager
def _converting(error: Callable[[str], CustodyError], prefix: str = "") -> Iterator[None]:
    """Turn the libraries' errors on malformed input into ours (ours pass through)."""
    try:
        yield
    except _LIBRARY_ERRORS as exc:
        raise error(f"{prefix}: {exc}" if prefix else str(exc)) from exc


def _digest(algorithm: str, data: bytes) -> bytes:
    return hashlib.new(algorithm, data).digest()


def _signer_digest(signer_info: Any) -> str:
    algorithm = str(signer_info["digest_algorithm"]["algorithm"].native)
    if algorithm not in HASH_ALGORITHMS:
        raise TimestampError(f"unsupported SignerInfo digest algorithm {algorithm}")
    return algorithm


def _imprint(request: TimestampRequest) -> dict[str, Any]:
    # RFC 5754 §2: SHA-2 AlgorithmIdentifiers are generated with absent parameters.
    algorithm = {"algorithm": request.hash_algorithm, "parameters": None}
    return {"hash_algorithm": algorithm, "hashed_message": request.message_imprint}


def _accuracy(milliseconds: int) -> dict[str, int]:
    if milliseconds <= 0:
        raise ValueError("accuracy must be a positive number of milliseconds")
    seconds, millis = divmod(milliseconds, 1000)
    return {k: v for k, v in (("seconds", seconds), ("millis", millis)) if v}


def _present(value: Any) -> bool:
    return not isinstance(value, core.Void)


def _asn1_name(name: x509.Name) -> Any:
    return asn1_x509.Name.load(name.public_bytes())


def _subject(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string()


def _public_der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _key_identifier(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value.digest
    except x509.ExtensionNotFound:
        return None


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (*_LIBRARY_ERRORS, InvalidSignature):
        return False
    return True


def _same_certificate(a: x509.Certificate, b: x509.Certificate) -> bool:
    return a == b or (
        a.subject == b.subject and _public_der(a.public_key()) == _public_der(b.public_key())
    )


def _name(common_name: str, organization: str | None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(**granted: bool) -> x509.KeyUsage:
    usages = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{usage: granted.get(usage, False) for usage in usages})


# ---------------------------------------------------------------------------------------
# DER (X.690 §10-11): one encoding per value, so nothing hides in an alternative spelling
# ---------------------------------------------------------------------------------------


def _minimal_integer(c: bytes) -> bool:
    return len(c) == 1 or (
        len(c) > 1 and not (c[0] == 0 and c[1] < 0x80) and not (c[0] == 0xFF and c[1] >= 0x80)
    )


def _canonical_bits(c: bytes) -> bool:
    if not c or c[0] > 7 or (len(c) == 1 and c[0]):
        return False
    return len(c) == 1 or c[-1] & ((1 << c[0]) - 1) == 0


def _canonical_oid(c: bytes) -> bool:
    # Every subidentifier ends in a byte below 0x80 and none starts with the padding 0x80.
    return bool(c) and c[0] != 0x80 and c[-1] < 0x80 and _OID_PADDING.search(c) is None


_OID_PADDING = re.compile(rb"[\x00-\x7f]\x80")
_MAX_DEPTH = 32  # certificates nest about 10 deep; bounds recursion on hostile input
_SEQUENCE, _SET = 16, 17
_CONTENT_RULES: dict[int, tuple[str, Callable[[bytes], bool]]] = {
    1: ("BOOLEAN", lambda c: c in (b"\x00", b"\xff")),
    2: ("INTEGER", _minimal_integer),
    3: ("BIT STRING", _canonical_bits),
    5: ("NULL", lambda c: not c),
    6: ("OBJECT IDENTIFIER", _canonical_oid),
    10: ("ENUMERATED", _minimal_integer),
    23: ("UTCTime", lambda c: re.fullmatch(rb"\d{12}Z", c) is not None),
    24: ("GeneralizedTime", lambda c: re.fullmatch(rb"\d{14}(\.\d*[1-9])?Z", c) is not None),
}


def _check_der(data: bytes) -> None:
    """Raise ValueError unless `data` is exactly one DER value."""
    end = _check_value(data, 0, len(data), 0)
    if end != len(data):
        raise ValueError(f"{len(data) - end} bytes after the DER value")


def _check_value(data: bytes, start: int, limit: int, depth: int) -> int:
    """Check the value at `start`, which must end by `limit`; return where it ends."""
    if depth > _MAX_DEPTH:
        raise ValueError("DER nested too deeply")
    tag_class, constructed, number, pos = _read_tag(data, start, limit)
    length, pos = _read_length(data, pos, limit)
    end = pos + length
    if end > limit:
        raise ValueError("truncated DER value")
    if tag_class == 0:  # universal
        if number == 0 or constructed != (number in (_SEQUENCE, _SET)):
            raise ValueError(f"universal tag {number} in a form DER forbids")
        name, rule = _CONTENT_RULES.get(number, ("", lambda _: True))
        if not rule(data[pos:end]):
            raise ValueError(f"not a DER {name}")
    if constructed:
        children = []
        while pos < end:
            child_end = _check_value(data, pos, end, depth + 1)
            children.append(data[pos:child_end])
            pos = child_end
        if tag_class == 0 and number == _SET and children != sorted(children):
            raise ValueError("SET elements not in DER order")
    return end


def _read_tag(data: bytes, pos: int, limit: int) -> tuple[int, bool, int, int]:
    if pos >= limit:
        raise ValueError("truncated DER value")
    first = data[pos]
    pos += 1
    number = first & 0x1F
    if number == 0x1F:  # high tag number form, base 128
        number = 0
        while True:
            if pos >= limit or number > 2**21:
                raise ValueError("truncated or oversized DER tag")
            byte = data[pos]
            if number == 0 and byte == 0x80:
                raise ValueError("non-minimal DER tag")
            number = number << 7 | byte & 0x7F
            pos += 1
            if not byte & 0x80:
                break
        if number < 0x1F:
            raise ValueError("non-minimal DER tag")
    return first >> 6, bool(first & 0x20), number, pos


def _read_length(data: bytes, pos: int, limit: int) -> tuple[int, int]:
    if pos >= limit:
        raise ValueError("truncated DER value")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    size = first & 0x7F
    if size == 0:
        raise ValueError("indefinite length (BER, not DER)")
    if size > 4 or pos + size > limit:
        raise ValueError("truncated or oversized DER length")
    length = int.from_bytes(data[pos : pos + size], "big")
    if length < 0x80 or data[pos] == 0:
        raise ValueError("non-minimal DER length")
    return length, pos + size
