"""A token's SignerInfo: its signer, signed attributes (RFC 5652 §5.3, RFC 5816) and signature."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from custody.errors import TimestampError
from custody.tsp.certificates import key_identifier, subject_of
from custody.tsp.der import present, tlv
from custody.tsp.protocol import HASH_ALGORITHMS, HASHES, digest_of

_DIRECTORY_NAME = 0xA4  # GeneralName's directoryName: [4], constructed (RFC 5280 §4.2.1.6)


def find_signer(signer_info: Any, candidates: Sequence[x509.Certificate]) -> x509.Certificate:
    sid = signer_info["sid"]
    for certificate in candidates:
        if sid.name == "issuer_and_serial_number":
            chosen = sid.chosen
            if (
                chosen["serial_number"].native == certificate.serial_number
                and chosen["issuer"].dump() == certificate.issuer.public_bytes()
            ):
                return certificate
        elif sid.chosen.native == key_identifier(certificate):
            return certificate
    raise TimestampError(
        "the TSA certificate that signed the token is neither in the token nor among the extra"
        " certificates"
    )


def check_signer(
    signer_info: Any, signed_attributes: bytes, econtent: bytes, signer: x509.Certificate
) -> None:
    """The signed attributes name `econtent` and `signer`, and `signer`'s key signed them."""
    attributes = _signed_attributes(signer_info, econtent)
    _check_signing_certificate(attributes, signer)
    _check_signature(signer_info, signed_attributes, signer)


def _signed_attributes(signer_info: Any, econtent: bytes) -> dict[str, Any]:
    """The signed attributes by name, once content-type and message-digest are checked."""
    if not present(signer_info["signed_attrs"]):
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
    if attributes["message_digest"].native != digest_of(algorithm, econtent):
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
        expected = digest_of(algorithm, der)
    elif "signing_certificate" in attributes:
        cert_id = attributes["signing_certificate"]["certs"][0]
        # RFC 2634 §5.4.1 fixes SHA-1 here; the hash names the certificate, the signature binds it.
        expected = hashlib.sha1(der).digest()  # noqa: S324
    else:
        raise TimestampError("the token has no signing-certificate(-v2) signed attribute")
    if cert_id["cert_hash"].native != expected:
        raise TimestampError(
            f"the signing-certificate attribute names another certificate than {subject_of(signer)}"
        )
    issuer_serial = cert_id["issuer_serial"]
    if present(issuer_serial) and (
        issuer_serial["serial_number"].native != signer.serial_number
        or not _names_issuer(issuer_serial["issuer"], signer.issuer)
    ):
        raise TimestampError("the signing-certificate attribute's issuer and serial are another's")


def _names_issuer(general_names: Any, issuer: x509.Name) -> bool:
    """Whether the GeneralNames are exactly the one directory name `issuer`."""
    if len(general_names) != 1:
        return False
    # The same DER is the same name; only names encoded differently need RFC 5280's
    # comparison rules (asn1crypto's, which are costly).
    name = general_names[0]
    if name.dump() == tlv(_DIRECTORY_NAME, issuer.public_bytes()):
        return True
    return name.name == "directory_name" and bool(name.chosen == _asn1_name(issuer))


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
            key.verify(signature, signed, ec.ECDSA(HASHES[digest]()))
        elif scheme == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, padding.PKCS1v15(), HASHES[digest]())
        elif scheme == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signed, _pss(algorithm["parameters"]), HASHES[digest]())
        elif scheme == "ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, signed)
        else:
            raise TimestampError(
                f"unsupported signature algorithm {algorithm['algorithm'].native}"
                f" for the TSA's {type(key).__name__}"
            )
    except InvalidSignature as exc:
        raise TimestampError(
            f"the token's signature does not verify with the key of {subject_of(signer)}"
        ) from exc


def _pss(parameters: Any) -> padding.PSS:
    mgf = parameters["mask_gen_algorithm"]
    if mgf["algorithm"].native != "mgf1":
        raise TimestampError(f"unsupported RSASSA-PSS mask generation {mgf['algorithm'].native}")
    mgf_hash = str(mgf["parameters"]["algorithm"].native)
    if mgf_hash not in HASHES:
        raise TimestampError(f"unsupported RSASSA-PSS MGF1 hash {mgf_hash}")
    return padding.PSS(padding.MGF1(HASHES[mgf_hash]()), int(parameters["salt_length"].native))


def _signer_digest(signer_info: Any) -> str:
    algorithm = str(signer_info["digest_algorithm"]["algorithm"].native)
    if algorithm not in HASH_ALGORITHMS:
        raise TimestampError(f"unsupported SignerInfo digest algorithm {algorithm}")
    return algorithm


def _asn1_name(name: x509.Name) -> Any:
    return asn1_x509.Name.load(name.public_bytes())
