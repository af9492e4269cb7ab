"""RFC 3161 test material: TSAs with chosen flaws, and tokens built without `custody.tsp`.

`sign_token` and `make_tst_info` encode with asn1crypto's own SignedData and TSTInfo, not
with the DER that `custody.tsp` assembles, so a test that uses them checks the verifier
against a second implementation rather than against itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from custody.tsp import (
    DEFAULT_POLICY,
    TsaIdentity,
    issue_response,
    make_request,
    parse_request,
)

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
_HASHES = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}


@dataclass(frozen=True)
class Authority:
    key: SigningKey
    certificate: x509.Certificate


def make_root(
    *, now: datetime, name: str = "Test Root", days: int = 3650, ca: bool = True
) -> Authority:
    """A self-signed ECDSA root; `ca=False` makes one that must not issue certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(name)
    certificate = (
        _builder(subject, subject, key.public_key(), now, now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, certificate)


def make_tsa_certificate(
    root: Authority,
    public_key: PublicKey,
    *,
    now: datetime,
    days: int = 365,
    name: str = "Test TSA",
    purposes: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.TIME_STAMPING,),
    eku_critical: bool = True,
    serial: int | None = None,
) -> x509.Certificate:
    """A TSA certificate from `root`; `purposes=None` leaves the extendedKeyUsage out."""
    builder = _builder(
        _name(name), root.certificate.subject, public_key, now, now + timedelta(days=days), serial
    )
    if purposes is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(purposes)), critical=eku_critical
        )
    return builder.sign(root.key, hashes.SHA256())


def make_tsa(
    root: Authority,
    *,
    now: datetime,
    days: int = 365,
    purposes: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.TIME_STAMPING,),
    eku_critical: bool = True,
    serial: int | None = None,
) -> TsaIdentity:
    """An ECDSA TSA under `root`, its certificate flawed as the options say."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = make_tsa_certificate(
        root,
        key.public_key(),
        now=now,
        days=days,
        purposes=purposes,
        eku_critical=eku_critical,
        serial=serial,
    )
    return TsaIdentity(key, certificate, (root.certificate,))


def issue(
    tsa: TsaIdentity,
    message: bytes,
    *,
    gen_time: datetime,
    nonce: int = 42,
    serial: int = 1,
    cert_req: bool = True,
) -> bytes:
    """The TSA's TimeStampResp to a request for `message`, through the wire format."""
    request = parse_request(make_request(message, nonce=nonce, cert_req=cert_req))
    return issue_response(request, tsa=tsa, serial=serial, policy=DEFAULT_POLICY, gen_time=gen_time)


def make_tst_info(
    message: bytes, *, gen_time: datetime, serial: int = 1, nonce: int | None = None
) -> bytes:
    fields = {
        "version": "v1",
        "policy": "1.2.3.4.1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": "sha256"},
            "hashed_message": hashlib.sha256(message).digest(),
        },
        "serial_number": serial,
        "gen_time": gen_time,
        "nonce": nonce,
    }
    return bytes(tsp.TSTInfo(fields).dump())


def sign_token(
    tst_info: bytes,
    *,
    key: SigningKey,
    certificate: x509.Certificate,
    certificates: Sequence[x509.Certificate] = (),
    digest: str = "sha256",
    ess: str | None = "v2",
    ess_certificate: x509.Certificate | None = None,
    ess_issuer: x509.Name | None = None,
) -> bytes:
    """A TimeStampToken over `tst_info` signed by `key`, with asn1crypto's CMS encoder.

    `ess` picks the signing-certificate attribute (RFC 5816 "v2", RFC 2634 "v1", or none)
    and `ess_certificate` the certificate it names (by default the signer's); with
    `ess_issuer`, a "v2" attribute also names it by issuer (that name) and serial.
    """
    attributes = cms.CMSAttributes(
        [
            {"type": "content_type", "values": ["tst_info"]},
            {"type": "message_digest", "values": [hashlib.new(digest, tst_info).digest()]},
            *_ess_attribute(ess, ess_certificate or certificate, ess_issuer),
        ]
    )
    signature, algorithm = _signature(key, attributes.dump(), digest)
    parsed = asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))
    signer_info = {
        "version": "v1",
        "sid": {
            "issuer_and_serial_number": {
                "issuer": parsed.issuer,
                "serial_number": parsed.serial_number,
            }
        },
        "digest_algorithm": {"algorithm": digest},
        "signed_attrs": attributes,
        "signature_algorithm": {"algorithm": algorithm},
        "signature": signature,
    }
    signed_data = {
        "version": "v3",
        "digest_algorithms": [{"algorithm": digest}],
        "encap_content_info": {
            "content_type": "tst_info",
            "content": core.ParsableOctetString(tst_info),
        },
        "certificates": [
            asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in certificates
        ],
        "signer_infos": [signer_info],
    }
    return bytes(
        cms.ContentInfo(
            {"content_type": "signed_data", "content": cms.SignedData(signed_data)}
        ).dump()
    )


def _ess_attribute(
    ess: str | None, certificate: x509.Certificate, issuer: x509.Name | None = None
) -> list[dict[str, object]]:
    der = certificate.public_bytes(Encoding.DER)
    if ess == "v2":
        cert_id: dict[str, object] = {"cert_hash": hashlib.sha256(der).digest()}
        if issuer is not None:
            name = asn1_x509.Name.load(issuer.public_bytes())
            cert_id["issuer_serial"] = {
                "issuer": [asn1_x509.GeneralName(name="directory_name", value=name)],
                "serial_number": certificate.serial_number,
            }
        return [{"type": "signing_certificate_v2", "values": [{"certs": [cert_id]}]}]
    if ess == "v1":
        return [
            {
                "type": "signing_certificate",
                "values": [{"certs": [{"cert_hash": hashlib.sha1(der).digest()}]}],
            }
        ]
    return []


def _signature(key: SigningKey, data: bytes, digest: str) -> tuple[bytes, str]:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data), "ed25519"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(_HASHES[digest])), f"{digest}_ecdsa"
    return key.sign(data, padding.PKCS1v15(), _HASHES[digest]), f"{digest}_rsa"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: PublicKey,
    not_before: datetime,
    not_after: datetime,
    serial: int | None = None,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
