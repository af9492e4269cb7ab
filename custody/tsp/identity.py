"""A TSA's identity: its ECDSA key and certificate chain, generated or loaded (RFC 3161 §2.3)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from custody.errors import TimestampError
from custody.tsp.certificates import check_tsa_certificate, issued_by, public_der, subject_of
from custody.tsp.der import LIBRARY_ERRORS

_CURVE_HASHES = {"secp256r1": "sha256", "secp384r1": "sha384", "secp521r1": "sha512"}


@dataclass(frozen=True, slots=True)
class SignerParts:
    """The DER that every token of one TSA repeats, encoded once rather than per token."""

    hash_algorithm: str
    digest_algorithm: bytes  # AlgorithmIdentifier of the hash; RFC 5754 §2: no parameters
    signature_algorithm: bytes  # ecdsa-with-SHA*; RFC 5758 §3.2: no parameters
    tsa_name: bytes  # GeneralName: directoryName of the TSA certificate's subject
    sid: bytes  # IssuerAndSerialNumber of the TSA certificate
    attributes: tuple[bytes, ...]  # content-type TSTInfo and signing-certificate-v2 (RFC 5816)
    certificates: bytes  # the TSA certificate and its chain, in DER SET OF order

    @classmethod
    def of(cls, certificates: Sequence[x509.Certificate], curve: str) -> SignerParts:
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
    _parts: SignerParts = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = SignerParts.of((self.certificate, *self.chain), self.key.curve.name)
        object.__setattr__(self, "_parts", parts)

    def chain_pem(self) -> str:
        """The TSA certificate, then its issuers, in PEM."""
        return certificates_pem((self.certificate, *self.chain))


def certificates_pem(certificates: Sequence[x509.Certificate]) -> str:
    """Certificates as one PEM text, in the order given."""
    pems = (c.public_bytes(serialization.Encoding.PEM) for c in certificates)
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
    except LIBRARY_ERRORS as exc:
        raise TimestampError(f"unreadable TSA key or certificates: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TimestampError(f"the TSA key is {type(key).__name__}, not an elliptic-curve key")
    if public_der(key.public_key()) != public_der(certificate.public_key()):
        raise TimestampError(
            f"the TSA key does not belong to the certificate {subject_of(certificate)}"
        )
    check_tsa_certificate(certificate)
    for child, issuer in zip((certificate, *chain), chain, strict=False):
        if not issued_by(child, issuer):
            raise TimestampError(
                f"{subject_of(child)} is not issued by the next certificate, {subject_of(issuer)}"
            )
    return TsaIdentity(key, certificate, tuple(chain))


def dump_tsa_key(identity: TsaIdentity) -> bytes:
    """The TSA's private key as unencrypted PKCS #8 PEM."""
    return identity.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
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
