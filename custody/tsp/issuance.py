"""The built-in TSA's answers (RFC 3161 §2.4.2): tokens as CMS SignedData (RFC 5652), refusals."""

from __future__ import annotations

from datetime import datetime

from asn1crypto import cms, core, tsp
from cryptography.hazmat.primitives.asymmetric import ec

from custody.errors import TimestampRequestError
from custody.tsp.der import tlv
from custody.tsp.identity import SignerParts, TsaIdentity
from custody.tsp.protocol import (
    FAILURE_BITS,
    GRANTED_STATUS,
    HASHES,
    TimestampRequest,
    TimeStampResp,
    digest_of,
    imprint_of,
)

_VERSION_1 = core.Integer(1).dump()
_VERSION_3 = core.Integer(3).dump()
_ID_SIGNED_DATA = core.ObjectIdentifier("1.2.840.113549.1.7.2").dump()  # RFC 5652 §5.1
_ID_CT_TST_INFO = core.ObjectIdentifier("1.2.840.113549.1.9.16.1.4").dump()  # RFC 3161 §2.4.2


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
    return tlv(0x30, GRANTED_STATUS, token)


def rejection_response(failure_info: str, text: str) -> bytes:
    """A TimeStampResp refusing a request: status rejection, one failure bit, and `text`."""
    if failure_info not in FAILURE_BITS:
        raise ValueError(f"unknown PKIFailureInfo {failure_info!r}")
    status = {"status": "rejection", "status_string": [text], "fail_info": {failure_info}}
    return bytes(TimeStampResp({"status": status}).dump())


def _tst_info(
    request: TimestampRequest,
    parts: SignerParts,
    serial: int,
    policy: str,
    gen_time: datetime,
    accuracy_ms: int | None,
) -> bytes:
    """TSTInfo (RFC 3161 §2.4.2): its fields in schema order, ordering left at its default."""
    fields = [
        _VERSION_1,
        core.ObjectIdentifier(policy).dump(),
        tsp.MessageImprint(imprint_of(request)).dump(),
        core.Integer(serial).dump(),
        core.GeneralizedTime(gen_time).dump(),
    ]
    if accuracy_ms is not None:
        fields.append(tsp.Accuracy(_accuracy(accuracy_ms)).dump())
    if request.nonce is not None:
        fields.append(core.Integer(request.nonce).dump())
    fields.append(tlv(0xA0, parts.tsa_name))  # tsa [0] EXPLICIT GeneralName
    return tlv(0x30, *fields)


def _sign(
    tst_info: bytes,
    key: ec.EllipticCurvePrivateKey,
    parts: SignerParts,
    *,
    with_certificates: bool,
) -> bytes:
    """The TimeStampToken: a ContentInfo holding SignedData v3 over the TSTInfo (RFC 5652 §5).

    Assembled from DER the TSA encoded once: building it with asn1crypto re-encodes the
    certificates for every token and is some fifty times slower.
    """
    algorithm = parts.hash_algorithm
    digest = {"type": "message_digest", "values": [digest_of(algorithm, tst_info)]}
    # X.690 §11.6: a DER SET OF lists its elements in the order of their encodings.
    attributes = b"".join(sorted((*parts.attributes, cms.CMSAttribute(digest).dump())))
    # RFC 5652 §5.4: the signature covers the attributes tagged as a SET OF, not as [0].
    signature = key.sign(tlv(0x31, attributes), ec.ECDSA(HASHES[algorithm]()))
    signer_info = tlv(
        0x30,
        _VERSION_1,
        parts.sid,
        parts.digest_algorithm,
        tlv(0xA0, attributes),  # signedAttrs [0] IMPLICIT
        parts.signature_algorithm,
        tlv(0x04, signature),
    )
    content = tlv(0x30, _ID_CT_TST_INFO, tlv(0xA0, tlv(0x04, tst_info)))
    signed_data = tlv(
        0x30,
        _VERSION_3,
        tlv(0x31, parts.digest_algorithm),
        content,
        tlv(0xA0, parts.certificates) if with_certificates else b"",  # [0] IMPLICIT
        tlv(0x31, signer_info),
    )
    return tlv(0x30, _ID_SIGNED_DATA, tlv(0xA0, signed_data))


def _accuracy(milliseconds: int) -> dict[str, int]:
    if milliseconds <= 0:
        raise ValueError("accuracy must be a positive number of milliseconds")
    seconds, millis = divmod(milliseconds, 1000)
    return {k: v for k, v in (("seconds", seconds), ("millis", millis)) if v}
