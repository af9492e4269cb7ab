"""Certificates in RFC 3161: the TSA certificate's profile (§2.3) and RFC 5280 paths at genTime."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from custody.errors import TimestampError
from custody.tsp.der import LIBRARY_ERRORS

ID_KP_TIME_STAMPING = "1.3.6.1.5.5.7.3.8"  # RFC 5280 §4.2.1.12


# RFC 5280 Appendix A upper bounds that cryptography checks (with a warning) on names.
_NAME_BOUNDS = {"2.5.4.3": (1, 64), "2.5.4.6": (2, 2), "1.3.6.1.4.1.311.60.2.1.3": (2, 2)}
_MAX_PATH = 8  # certificates in a TSA's path; bounds the search on hostile input


def load_certificate(certificate: Any) -> x509.Certificate:
    """A token's certificate, refused where cryptography would only warn: warnings are no errors.

    RFC 5280 §4.1.2.2 wants a positive serial, and Appendix A bounds some name attributes.
    """
    return _load_der(certificate.dump())


@functools.lru_cache(maxsize=256)
def _load_der(der: bytes) -> x509.Certificate:
    # Keyed by the exact bytes, so a result is reused only for the same certificate: every
    # token of a TSA carries the same chain, and an audit checks one token per checkpoint.
    tbs = asn1_x509.Certificate.load(der, strict=True)["tbs_certificate"]
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
    return x509.load_der_x509_certificate(der)


def check_tsa_certificate(certificate: x509.Certificate) -> None:
    """RFC 3161 §2.3, as OpenSSL's timestamp-sign purpose checks it."""
    name = subject_of(certificate)
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


def build_path(
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
        if current.subject == current.issuer and issued_by(current, current):
            return path, False
        issuer = next((c for c in candidates if issued_by(current, c)), None)
        if issuer is None:
            raise TimestampError(
                f"chain incomplete: {current.issuer.rfc4514_string()}, the issuer of"
                f" {subject_of(current)}, is not among the token's, extra or trusted certificates"
            )
        if issuer in path or len(path) == _MAX_PATH:
            raise TimestampError(f"the certificate chain loops or passes {_MAX_PATH} certificates")
        _check_issuer(issuer, below=len(path) - 1)
        path.append(issuer)


def _check_issuer(issuer: x509.Certificate, *, below: int) -> None:
    """RFC 5280 §4.2.1.9, §4.2.1.3: a CA, allowed `below` CAs under it, allowed to sign."""
    name = subject_of(issuer)
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
            f"the certificate {subject_of(certificate)} was {state} at the token's genTime"
            f" {at.isoformat()} (valid from {start.isoformat()} to {end.isoformat()})"
        )


def subject_of(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string()


def public_der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def key_identifier(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_class(
            x509.SubjectKeyIdentifier
        ).value.digest
    except x509.ExtensionNotFound:
        return None


@functools.lru_cache(maxsize=1024)
def issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    # Certificates hash and compare by their DER: a result is reused only for the same two,
    # whose signature check cannot come out otherwise.
    try:
        child.verify_directly_issued_by(issuer)
    except (*LIBRARY_ERRORS, InvalidSignature):
        return False
    return True


def _same_certificate(a: x509.Certificate, b: x509.Certificate) -> bool:
    return a == b or (
        a.subject == b.subject and public_der(a.public_key()) == public_der(b.public_key())
    )
