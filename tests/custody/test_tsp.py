"""RFC 3161: round trips, the real openssl on both sides, every refusal, and fuzzed input."""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.errors import TimestampError, TimestampRequestError, UnsupportedAlgorithmError
from custody.tsp import (
    DEFAULT_POLICY,
    HASH_ALGORITHMS,
    TimestampRequest,
    TsaIdentity,
    VerifiedToken,
    dump_tsa_key,
    generate_tsa,
    issue_response,
    load_tsa,
    make_request,
    new_nonce,
    parse_request,
    parse_response,
    rejection_response,
    verify_reply,
    verify_token,
)
from custody.tsp.certificates import issued_by
from custody.tsp.der import check_der, tlv
from custody.tsp.signer import _names_issuer
from tests.custody.tsa_fixtures import (
    Authority,
    issue,
    make_root,
    make_tsa,
    make_tsa_certificate,
    make_tst_info,
    sign_token,
)

MESSAGE = b"custody.example/log\n7\nq6bMRTpa4e0cMBlKbFbvQk0Ms1xZoV1EL4HlEFJz8sY=\n"
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl binary is not installed")
FAILURE_INFOS = ("bad_alg", "bad_request", "bad_data_format", "unaccepted_policy")


@pytest.fixture(scope="module")
def now() -> datetime:
    # The clock is read here, never in custody.tsp: openssl checks certificates at its "now".
    return datetime.now(UTC).replace(microsecond=250000)


@pytest.fixture(scope="module")
def tsa(now: datetime) -> TsaIdentity:
    return generate_tsa("Custody Test TSA", now=now, organization="Custody")


@pytest.fixture(scope="module")
def root(tsa: TsaIdentity) -> x509.Certificate:
    return tsa.chain[-1]


@pytest.fixture(scope="module")
def response(tsa: TsaIdentity, now: datetime) -> bytes:
    return issue(tsa, MESSAGE, gen_time=now, nonce=0x1234_5678_9ABC_DEF0, serial=2**100 + 7)


@pytest.fixture(scope="module")
def token(response: bytes) -> bytes:
    token = parse_response(response).token
    assert token is not None
    return token


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.PEM)


# ---------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------


def test_round_trip_is_trusted_and_echoes_the_request(
    response: bytes, token: bytes, tsa: TsaIdentity, root: x509.Certificate, now: datetime
) -> None:
    got_token, verified = verify_reply(
        response, message=MESSAGE, nonce=0x1234_5678_9ABC_DEF0, trust_anchors=[root]
    )
    assert got_token == token
    assert verified == VerifiedToken(
        gen_time=now,
        serial=2**100 + 7,
        policy=DEFAULT_POLICY,
        nonce=0x1234_5678_9ABC_DEF0,
        hash_algorithm="sha256",
        tsa_certificate=tsa.certificate,
        chain=(tsa.certificate, root),
        trusted=True,
        tsa_name="O=Custody,CN=Custody Test TSA",
    )


@pytest.mark.parametrize("algorithm", sorted(HASH_ALGORITHMS))
@pytest.mark.parametrize("serial", [0, 1, 2**63, 2**100 + 7, 2**159 - 1])
def test_algorithms_and_serials_round_trip(
    tsa: TsaIdentity, root: x509.Certificate, now: datetime, algorithm: str, serial: int
) -> None:
    request = parse_request(make_request(MESSAGE, nonce=7, hash_algorithm=algorithm))
    assert request == TimestampRequest(
        algorithm, hashlib.new(algorithm, MESSAGE).digest(), 7, True, None
    )
    reply = issue_response(request, tsa=tsa, serial=serial, policy=DEFAULT_POLICY, gen_time=now)
    _, verified = verify_reply(reply, message=MESSAGE, nonce=7, trust_anchors=[root])
    assert (verified.serial, verified.hash_algorithm) == (serial, algorithm)


@pytest.mark.parametrize(
    "gen_time",
    [
        datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2030, 1, 2, 3, 4, 5, 100, tzinfo=UTC),
        datetime(2030, 1, 2, 3, 4, 5, 999999, tzinfo=UTC),
        datetime(2030, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),  # stamped as UTC
    ],
)
def test_gen_time_keeps_its_instant_and_fraction(gen_time: datetime) -> None:
    tsa = generate_tsa("Time TSA", now=datetime(2030, 1, 1, tzinfo=UTC))
    reply = issue(tsa, MESSAGE, gen_time=gen_time)
    _, verified = verify_reply(reply, message=MESSAGE, nonce=42, trust_anchors=tsa.chain)
    assert verified.gen_time == gen_time
    assert verified.gen_time.tzinfo == UTC


def test_policy_the_request_names_is_kept_and_another_is_refused(
    tsa: TsaIdentity, now: datetime
) -> None:
    ours = parse_request(make_request(MESSAGE, nonce=1, policy=DEFAULT_POLICY))
    reply = issue_response(ours, tsa=tsa, serial=1, policy=DEFAULT_POLICY, gen_time=now)
    assert verify_reply(reply, message=MESSAGE, nonce=1)[1].policy == DEFAULT_POLICY
    other = parse_request(make_request(MESSAGE, nonce=1, policy="1.2.3.4"))
    with pytest.raises(TimestampRequestError, match=r"policy 1\.2\.3\.4 is not") as caught:
        issue_response(other, tsa=tsa, serial=1, policy=DEFAULT_POLICY, gen_time=now)
    assert caught.value.failure_info == "unaccepted_policy"


def test_without_cert_req_the_token_needs_the_certificates_given(
    tsa: TsaIdentity, root: x509.Certificate, now: datetime
) -> None:
    token = parse_response(issue(tsa, MESSAGE, gen_time=now, cert_req=False)).token
    assert token is not None
    with pytest.raises(TimestampError, match="neither in the token nor among the extra"):
        verify_token(token, message=MESSAGE, trust_anchors=[root])
    verified = verify_token(
        token, message=MESSAGE, trust_anchors=[root], extra_certs=[tsa.certificate]
    )
    assert verified.trusted
    with pytest.raises(
        TimestampError, match="chain incomplete: O=Custody,CN=Custody Test TSA Root, the issuer of"
    ):
        verify_token(token, message=MESSAGE, extra_certs=[tsa.certificate])


def test_issue_refuses_naive_times_and_empty_accuracy(tsa: TsaIdentity) -> None:
    request = parse_request(make_request(MESSAGE, nonce=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        issue_response(
            request, tsa=tsa, serial=1, policy=DEFAULT_POLICY, gen_time=datetime(2030, 1, 1)
        )
    with pytest.raises(ValueError, match="positive"):
        issue_response(
            request,
            tsa=tsa,
            serial=1,
            policy=DEFAULT_POLICY,
            gen_time=datetime.now(UTC),
            accuracy_ms=0,
        )


def test_new_nonce_is_a_positive_64_bit_integer() -> None:
    nonces = {new_nonce() for _ in range(64)}
    assert len(nonces) == 64
    assert all(0 < nonce < 2**64 for nonce in nonces)


# ---------------------------------------------------------------------------------------
# The TSA identity
# ---------------------------------------------------------------------------------------


def test_generated_tsa_certificate_is_what_rfc_3161_asks(
    tsa: TsaIdentity, root: x509.Certificate
) -> None:
    extensions = tsa.certificate.extensions
    eku = extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    assert not extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.content_commitment
    assert not usage.key_cert_sign
    root_constraints = root.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert (root_constraints.ca, root_constraints.path_length) == (True, 0)
    tsa.certificate.verify_directly_issued_by(root)
    assert tsa.certificate.not_valid_after_utc <= root.not_valid_after_utc


def test_dumped_identity_loads_and_signs(
    tsa: TsaIdentity, root: x509.Certificate, now: datetime
) -> None:
    loaded = load_tsa(dump_tsa_key(tsa), tsa.chain_pem().encode())
    assert (loaded.certificate, loaded.chain) == (tsa.certificate, tsa.chain)
    assert dump_tsa_key(tsa).startswith(b"-----BEGIN PRIVATE KEY-----")
    _, verified = verify_reply(
        issue(loaded, MESSAGE, gen_time=now), message=MESSAGE, nonce=42, trust_anchors=[root]
    )
    assert verified.trusted


def test_load_tsa_refuses_what_cannot_sign_tokens(tsa: TsaIdentity, now: datetime) -> None:
    other = generate_tsa("Other TSA", now=now)
    key = dump_tsa_key(tsa)
    chain = tsa.chain_pem().encode()
    with pytest.raises(TimestampError, match="does not belong to the certificate"):
        load_tsa(dump_tsa_key(other), chain)
    with pytest.raises(TimestampError, match="unreadable TSA key or certificates"):
        load_tsa(key, b"not a certificate")
    ed_key = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(TimestampError, match="not an elliptic-curve key"):
        load_tsa(ed_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()), chain)
    with pytest.raises(TimestampError, match="is not issued by the next certificate"):
        load_tsa(key, pem(tsa.certificate) + pem(other.chain[0]))
    root = make_root(now=now)
    no_eku = make_tsa(root, now=now, purposes=None)
    with pytest.raises(TimestampError, match="has no extendedKeyUsage"):
        load_tsa(dump_tsa_key(no_eku), no_eku.chain_pem().encode())


# ---------------------------------------------------------------------------------------
# The real openssl, on both sides
# ---------------------------------------------------------------------------------------

EXTENSIONS = """\
[ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[tsa]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""
TS_CONFIG = """\
[tsa]
default_tsa = tsa_config
[tsa_config]
serial = ./serial
default_policy = 1.2.3.4.1
digests = sha256
signer_digest = sha256
ess_cert_id_alg = {ess}
accuracy = secs:1
"""


def openssl(*args: str | Path, cwd: Path) -> str:
    assert OPENSSL is not None
    result = subprocess.run(
        [OPENSSL, *map(str, args)], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"openssl {' '.join(map(str, args))}:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def openssl_pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An openssl-made CA (ca.pem) with an ECDSA (ec.*) and an RSA (rsa.*) TSA under it."""
    if OPENSSL is None:
        pytest.skip("the openssl binary is not installed")
    pki = tmp_path_factory.mktemp("openssl-pki")
    (pki / "ext.cnf").write_text(EXTENSIONS)
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=OpenSSL Test CA", "-days", "2",
        "-config", "ext.cnf", "-extensions", "ca", cwd=pki,
    )  # fmt: skip
    for kind, options in (("ec", "ec_paramgen_curve:P-256"), ("rsa", "rsa_keygen_bits:2048")):
        algorithm = kind.upper()
        openssl(
            "genpkey", "-algorithm", algorithm, "-pkeyopt", options, "-out", f"{kind}.key", cwd=pki
        )
        openssl(
            "req", "-new", "-key", f"{kind}.key", "-subj", f"/CN=OpenSSL {kind} TSA",
            "-out", f"{kind}.csr", cwd=pki,
        )  # fmt: skip
        openssl(
            "x509", "-req", "-in", f"{kind}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "1", "-extfile", "ext.cnf", "-extensions", "tsa",
            "-out", f"{kind}.pem", cwd=pki,
        )  # fmt: skip
    return pki


@needs_openssl
def test_openssl_verifies_our_responses_and_tokens(
    tmp_path: Path, tsa: TsaIdentity, root: x509.Certificate, now: datetime
) -> None:
    nonce = new_nonce()
    request = make_request(MESSAGE, nonce=nonce)
    reply = issue_response(
        parse_request(request), tsa=tsa, serial=9, policy=DEFAULT_POLICY, gen_time=now
    )
    token = parse_response(reply).token
    assert token is not None
    for name, data in {
        "msg": MESSAGE, "other": MESSAGE + b"!", "q.tsq": request, "resp.tsr": reply,
        "token.der": token, "root.pem": pem(root), "tsa.pem": pem(tsa.certificate),
    }.items():  # fmt: skip
        (tmp_path / name).write_bytes(data)
    trust = ("-CAfile", "root.pem", "-untrusted", "tsa.pem")
    checks = [
        ("-data", "msg", "-in", "resp.tsr", *trust),
        ("-data", "msg", "-in", "token.der", "-token_in", *trust),
        ("-queryfile", "q.tsq", "-in", "resp.tsr", "-CAfile", "root.pem"),
    ]
    for check in checks:
        assert "Verification: OK" in openssl("ts", "-verify", *check, cwd=tmp_path)
    with pytest.raises(AssertionError, match="message imprint mismatch"):
        openssl("ts", "-verify", "-data", "other", "-in", "resp.tsr", *trust, cwd=tmp_path)


@needs_openssl
def test_openssl_reads_our_fields(tmp_path: Path, tsa: TsaIdentity, now: datetime) -> None:
    nonce = 0x0A1B_2C3D_4E5F
    request = parse_request(make_request(MESSAGE, nonce=nonce))
    reply = issue_response(
        request, tsa=tsa, serial=2**100 + 7, policy=DEFAULT_POLICY, gen_time=now, accuracy_ms=1500
    )
    (tmp_path / "resp.tsr").write_bytes(reply)
    text = openssl("ts", "-reply", "-in", "resp.tsr", "-text", cwd=tmp_path)
    assert "Status: Granted." in text
    assert f"Policy OID: {DEFAULT_POLICY}\n" in text
    assert "Hash Algorithm: sha256\n" in text
    dump = re.findall(r"^\s+[0-9a-f]{4} - ((?:[0-9a-f]{2}[ -]){15}[0-9a-f]{2})", text, re.M)
    assert bytes.fromhex("".join(dump).replace("-", " ")) == hashlib.sha256(MESSAGE).digest()
    assert _hex_field("Serial number", text) == 2**100 + 7
    assert _hex_field("Nonce", text) == nonce
    assert f"Time stamp: {now:%b} {now.day:2d} {now:%H:%M:%S}.25 {now.year} GMT\n" in text
    assert "Accuracy: 0x01 seconds, 0x01F4 millis, unspecified micros\n" in text
    assert "TSA: DirName:/CN=Custody Test TSA/O=Custody\n" in text


def _hex_field(name: str, text: str) -> int:
    match = re.search(rf"^{name}: 0x([0-9A-F]+)$", text, re.M)
    assert match, f"no {name} in\n{text}"
    return int(match[1], 16)


@needs_openssl
@pytest.mark.parametrize(
    ("options", "algorithm", "cert_req", "policy"),
    [
        (["-sha256", "-cert"], "sha256", True, None),
        (["-sha384"], "sha384", False, None),
        (["-sha512", "-no_nonce", "-tspolicy", "1.2.3.4.5"], "sha512", False, "1.2.3.4.5"),
    ],
)
def test_openssl_requests_parse(
    tmp_path: Path, options: list[str], algorithm: str, cert_req: bool, policy: str | None
) -> None:
    (tmp_path / "msg").write_bytes(MESSAGE)
    openssl("ts", "-query", "-data", "msg", *options, "-out", "q.tsq", cwd=tmp_path)
    request = parse_request((tmp_path / "q.tsq").read_bytes())
    assert request.hash_algorithm == algorithm
    assert request.message_imprint == hashlib.new(algorithm, MESSAGE).digest()
    assert (request.cert_req, request.policy) == (cert_req, policy)
    assert (request.nonce is None) == ("-no_nonce" in options)


@needs_openssl
@pytest.mark.parametrize(("kind", "ess"), [("ec", "sha256"), ("rsa", "sha1")])
def test_openssl_tsa_responses_verify(
    openssl_pki: Path, tmp_path: Path, kind: str, ess: str
) -> None:
    nonce = new_nonce()
    (tmp_path / "q.tsq").write_bytes(make_request(MESSAGE, nonce=nonce))
    (tmp_path / "ts.cnf").write_text(TS_CONFIG.format(ess=ess))
    (tmp_path / "serial").write_text("2A\n")
    openssl(
        "ts", "-reply", "-queryfile", "q.tsq", "-config", "ts.cnf", "-out", "resp.tsr",
        "-signer", openssl_pki / f"{kind}.pem", "-inkey", openssl_pki / f"{kind}.key",
        cwd=tmp_path,
    )  # fmt: skip
    ca = x509.load_pem_x509_certificate((openssl_pki / "ca.pem").read_bytes())
    reply = (tmp_path / "resp.tsr").read_bytes()
    token, verified = verify_reply(reply, message=MESSAGE, nonce=nonce, trust_anchors=[ca])
    assert verified.trusted
    assert verified.chain[-1] == ca
    # openssl's serial file holds the last serial used.
    assert (verified.serial, verified.policy, verified.nonce) == (0x2B, "1.2.3.4.1", nonce)
    assert verified.tsa_name == f"CN=OpenSSL {kind} TSA"
    assert abs(verified.gen_time - datetime.now(UTC)) < timedelta(minutes=5)
    # The two ESS attributes are both exercised: RFC 5816's v2 and RFC 2634's SHA-1 v1.
    expected = "signing_certificate_v2" if ess == "sha256" else "signing_certificate"
    assert expected in _signed_attribute_names(token)


@needs_openssl
def test_rsa_pss_token_from_openssl_cms_verifies(openssl_pki: Path, tmp_path: Path) -> None:
    (tmp_path / "tst.der").write_bytes(make_tst_info(MESSAGE, gen_time=datetime.now(UTC), nonce=5))
    openssl(
        "cms", "-sign", "-binary", "-nodetach", "-cades", "-in", "tst.der", "-outform", "DER",
        "-econtent_type", "1.2.840.113549.1.9.16.1.4", "-md", "sha256", "-out", "token.der",
        "-signer", openssl_pki / "rsa.pem", "-inkey", openssl_pki / "rsa.key",
        "-keyopt", "rsa_padding_mode:pss", cwd=tmp_path,
    )  # fmt: skip
    token = (tmp_path / "token.der").read_bytes()
    signer_info = cms.ContentInfo.load(token)["content"]["signer_infos"][0]
    assert signer_info["signature_algorithm"].signature_algo == "rsassa_pss"
    ca = x509.load_pem_x509_certificate((openssl_pki / "ca.pem").read_bytes())
    assert verify_token(token, message=MESSAGE, nonce=5, trust_anchors=[ca]).trusted


def test_ed25519_tokens_verify(now: datetime) -> None:
    authority = make_root(now=now)
    key = ed25519.Ed25519PrivateKey.generate()
    certificate = make_tsa_certificate(authority, key.public_key(), now=now)
    tst_info = make_tst_info(MESSAGE, gen_time=now)
    token = sign_token(
        tst_info, key=key, certificate=certificate, certificates=[certificate], digest="sha512"
    )
    verified = verify_token(token, message=MESSAGE, trust_anchors=[authority.certificate])
    assert verified.trusted
    assert verified.tsa_certificate == certificate


def _signed_attribute_names(token: bytes) -> set[str]:
    signer_info = cms.ContentInfo.load(token)["content"]["signer_infos"][0]
    return {attribute["type"].native for attribute in signer_info["signed_attrs"]}


# ---------------------------------------------------------------------------------------
# Tokens that do not verify, each for its own reason
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def authority(now: datetime) -> Authority:
    return make_root(now=now - timedelta(days=1))


def token_from(tsa: TsaIdentity, gen_time: datetime, **options: bool) -> bytes:
    token = parse_response(issue(tsa, MESSAGE, gen_time=gen_time, **options)).token
    assert token is not None
    return token


def test_another_message_is_refused_naming_both_digests(token: bytes) -> None:
    stamped = hashlib.sha256(MESSAGE).hexdigest()
    other = hashlib.sha256(b"other").hexdigest()
    expected = f"imprint mismatch: the token stamps sha256 {stamped}, the message's is {other}"
    with pytest.raises(TimestampError, match=re.escape(expected)):
        verify_token(token, message=b"other")


def test_another_nonce_is_refused(token: bytes) -> None:
    with pytest.raises(
        TimestampError, match=f"nonce mismatch: expected 1, found {0x1234_5678_9ABC_DEF0}"
    ):
        verify_token(token, message=MESSAGE, nonce=1)


@pytest.mark.parametrize(
    ("flaw", "reason"),
    [
        ({"purposes": None}, "has no extendedKeyUsage"),
        ({"eku_critical": False}, "has a non-critical extendedKeyUsage"),
        (
            {"purposes": (ExtendedKeyUsageOID.TIME_STAMPING, ExtendedKeyUsageOID.CODE_SIGNING)},
            "not id-kp-timeStamping alone",
        ),
    ],
)
def test_tsa_certificates_without_a_lone_critical_time_stamping_eku_are_refused(
    authority: Authority, now: datetime, flaw: dict[str, Any], reason: str
) -> None:
    tsa = make_tsa(authority, now=now, **flaw)
    with pytest.raises(TimestampError, match=reason):
        verify_token(token_from(tsa, now), message=MESSAGE, trust_anchors=[authority.certificate])


@pytest.mark.parametrize(
    ("offset", "state"), [(timedelta(days=2), "expired"), (-timedelta(hours=1), "not yet valid")]
)
def test_gen_time_outside_the_tsa_certificate_is_refused(
    authority: Authority, now: datetime, offset: timedelta, state: str
) -> None:
    tsa = make_tsa(authority, now=now, days=1)
    token = token_from(tsa, now + offset)
    with pytest.raises(TimestampError, match=f"CN=Test TSA was {state} at the token's genTime"):
        verify_token(token, message=MESSAGE, trust_anchors=[authority.certificate])


def test_tokens_outlive_the_tsa_certificate() -> None:
    """Long-term validity: a 2001 token verifies although its one-day certificate expired."""
    start = datetime(2001, 1, 1, tzinfo=UTC)
    authority = make_root(now=start, days=3650)
    tsa = make_tsa(authority, now=start, days=1)
    assert tsa.certificate.not_valid_after_utc < datetime.now(UTC)
    token = token_from(tsa, start + timedelta(hours=12))
    verified = verify_token(token, message=MESSAGE, trust_anchors=[authority.certificate])
    assert verified.trusted
    assert verified.gen_time == start + timedelta(hours=12)


def test_other_anchors_leave_a_valid_token_untrusted(
    token: bytes, tsa: TsaIdentity, now: datetime
) -> None:
    stranger = generate_tsa("Stranger TSA", now=now).chain[-1]
    for anchors in ([stranger], []):
        verified = verify_token(token, message=MESSAGE, trust_anchors=anchors)
        assert not verified.trusted
        assert verified.chain == (tsa.certificate, tsa.chain[-1])


def test_an_issuer_that_is_not_a_ca_is_refused(now: datetime) -> None:
    authority = make_root(now=now, name="Not A CA", ca=False)
    tsa = make_tsa(authority, now=now)
    with pytest.raises(TimestampError, match="the issuing certificate CN=Not A CA is not a CA"):
        verify_token(token_from(tsa, now), message=MESSAGE, trust_anchors=[authority.certificate])


def test_a_certificate_with_the_signers_issuer_and_serial_cannot_stand_in(
    authority: Authority, now: datetime
) -> None:
    """RFC 3161 §2.4.1: the signing-certificate attribute pins the certificate by its hash."""
    genuine = make_tsa(authority, now=now, serial=4242)
    impostor = make_tsa(authority, now=now, serial=4242)
    token = token_from(genuine, now, cert_req=False)
    with pytest.raises(TimestampError, match="signing-certificate attribute names another"):
        verify_token(token, message=MESSAGE, extra_certs=[impostor.certificate])


def test_a_token_without_a_signing_certificate_attribute_is_refused(
    authority: Authority, now: datetime
) -> None:
    tsa = make_tsa(authority, now=now)
    tst_info = make_tst_info(MESSAGE, gen_time=now)
    token = sign_token(
        tst_info, key=tsa.key, certificate=tsa.certificate, certificates=[tsa.certificate], ess=None
    )
    with pytest.raises(TimestampError, match=r"no signing-certificate\(-v2\) signed attribute"):
        verify_token(token, message=MESSAGE, trust_anchors=[authority.certificate])


def test_the_signing_certificate_attribute_must_name_the_signers_issuer(
    authority: Authority, now: datetime
) -> None:
    tsa = make_tsa(authority, now=now)
    tst_info = make_tst_info(MESSAGE, gen_time=now)

    def token_naming(issuer: x509.Name) -> bytes:
        return sign_token(
            tst_info,
            key=tsa.key,
            certificate=tsa.certificate,
            certificates=[tsa.certificate],
            ess_issuer=issuer,
        )

    right = token_naming(tsa.certificate.issuer)
    assert verify_token(right, message=MESSAGE, trust_anchors=[authority.certificate]).trusted
    other = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Another Root")])
    with pytest.raises(TimestampError, match="issuer and serial are another's"):
        verify_token(token_naming(other), message=MESSAGE, trust_anchors=[authority.certificate])


def test_a_tampered_signature_is_refused(token: bytes) -> None:
    def flip_signature(signed_data: cms.SignedData) -> None:
        signer_info = signed_data["signer_infos"][0]
        signature = bytearray(signer_info["signature"].native)
        signature[-1] ^= 0x01
        signer_info["signature"] = bytes(signature)

    with pytest.raises(TimestampError, match="signature does not verify with the key of O=Custody"):
        verify_token(tamper(token, flip_signature), message=MESSAGE)


def test_a_tampered_tst_info_is_refused(token: bytes) -> None:
    def bump_serial(signed_data: cms.SignedData) -> None:
        content = signed_data["encap_content_info"]
        tst_info = tsp.TSTInfo.load(content["content"].contents)
        tst_info["serial_number"] = tst_info["serial_number"].native + 1
        content["content"] = core.ParsableOctetString(tst_info.dump())

    with pytest.raises(TimestampError, match="message-digest signed attribute does not match"):
        verify_token(tamper(token, bump_serial), message=MESSAGE)


def flip_bit(token: bytes, inside: bytes) -> bytes:
    """`token` with the lowest bit of the first byte of `inside` flipped."""
    at = token.index(inside)
    return token[:at] + bytes([token[at] ^ 0x01]) + token[at + 1 :]


def tamper(token: bytes, change: Callable[[cms.SignedData], None]) -> bytes:
    info = cms.ContentInfo.load(token)
    change(info["content"])
    tampered = bytes(info.dump())
    assert tampered != token
    return tampered


@pytest.mark.parametrize(
    ("garble", "reason"),
    [
        (lambda t: t[:-1], "truncated DER value"),
        (lambda t: t[:40], "truncated DER value"),
        (lambda t: t + b"\x00", "1 bytes after the DER value"),
        (lambda t: b"\x31" + t[1:], "malformed time-stamp token"),
        (lambda t: b"\x30\x83\x00" + t[2:], "non-minimal DER length"),
        (lambda t: b"\x30\x80" + t[4:] + b"\x00\x00", r"indefinite length \(BER, not DER\)"),
        (lambda t: b"", "truncated DER value"),
        (lambda t: flip_bit(t, hashlib.sha256(MESSAGE).digest()), "message-digest signed attr"),
    ],
)
def test_garbled_tokens_are_refused(
    token: bytes, garble: Callable[[bytes], bytes], reason: str
) -> None:
    assert token[1] == 0x82  # a two-byte length, which the garbling above relies on
    with pytest.raises(TimestampError, match=reason):
        verify_token(garble(token), message=MESSAGE)


def test_a_token_of_another_content_type_is_refused() -> None:
    data = cms.ContentInfo({"content_type": "data", "content": b"not signed"}).dump()
    with pytest.raises(TimestampError, match="the token is CMS data, not signed-data"):
        verify_token(data, message=MESSAGE)


# ---------------------------------------------------------------------------------------
# Replies
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failure_info", [*FAILURE_INFOS, "unaccepted_extension", "system_failure", "time_not_available"]
)
def test_rejections_carry_their_reason(failure_info: str) -> None:
    reply = rejection_response(failure_info, "no time source")
    parsed = parse_response(reply)
    assert (parsed.status, parsed.token) == ("rejection", None)
    assert parsed.text == f"no time source; failure info: {failure_info}"
    with pytest.raises(
        TimestampError, match=f"answered rejection: no time source; failure info: {failure_info}"
    ):
        verify_reply(reply, message=MESSAGE, nonce=1)


def test_rejection_response_refuses_unknown_failure_infos() -> None:
    with pytest.raises(ValueError, match="unknown PKIFailureInfo"):
        rejection_response("out_of_coffee", "sorry")


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (bytes.fromhex("30063003020100"), "truncated DER value"),
        (bytes.fromhex("30053003020100"), "the TSA answered granted but sent no token"),
        (bytes.fromhex("30053003020109"), "unknown PKIStatus 9"),
        (bytes.fromhex("300530030201000000"), "2 bytes after the DER value"),
        (bytes.fromhex("3003020100"), "malformed TimeStampResp"),
    ],
)
def test_garbled_replies_are_refused(reply: bytes, reason: str) -> None:
    with pytest.raises(TimestampError, match=reason):
        parse_response(reply)


# ---------------------------------------------------------------------------------------
# Requests a TSA must refuse
# ---------------------------------------------------------------------------------------

VALID_REQUEST = make_request(MESSAGE, nonce=0x42)


def request_der(**fields: object) -> bytes:
    base: dict[str, object] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": {"algorithm": "sha256"},
            "hashed_message": hashlib.sha256(MESSAGE).digest(),
        },
        "nonce": 0x42,
    }
    return bytes(tsp.TimeStampReq({**base, **fields}).dump())


def test_make_request_refuses_unknown_algorithms() -> None:
    with pytest.raises(UnsupportedAlgorithmError, match="md5"):
        make_request(MESSAGE, nonce=1, hash_algorithm="md5")


@pytest.mark.parametrize(
    ("der", "failure_info", "reason"),
    [
        (
            request_der(
                message_imprint={
                    "hash_algorithm": {"algorithm": "sha1"},
                    "hashed_message": b"\0" * 20,
                }
            ),
            "bad_alg",
            "unsupported hash algorithm sha1",
        ),
        (
            request_der(
                message_imprint={
                    "hash_algorithm": {"algorithm": "sha256"},
                    "hashed_message": b"\0" * 31,
                }
            ),
            "bad_data_format",
            "the sha256 message imprint is 31 bytes, not 32",
        ),
        (request_der(version=2), "bad_request", "TimeStampReq version v2, not 1"),
        (
            request_der(extensions=[{"extn_id": "1.2.3.4", "extn_value": b"x"}]),
            "unaccepted_extension",
            "unsupported extensions: 1.2.3.4",
        ),
        (VALID_REQUEST[:-3], "bad_data_format", "truncated DER value"),
        (VALID_REQUEST + b"\xff", "bad_data_format", "1 bytes after the DER value"),
        (b"\x30\x80" + VALID_REQUEST[2:] + b"\x00\x00", "bad_data_format", "indefinite length"),
        (VALID_REQUEST[:-1] + b"\x01", "bad_data_format", "not a DER BOOLEAN"),
        (
            VALID_REQUEST[:-1] + b"\x00",
            "bad_data_format",
            "not DER: a field holds its default value",
        ),
        (b"", "bad_data_format", "truncated DER value"),
        (b"\x04\x00", "bad_data_format", "malformed TimeStampReq: Error parsing"),
    ],
)
def test_bad_requests_are_refused_with_their_failure_info(
    der: bytes, failure_info: str, reason: str
) -> None:
    with pytest.raises(TimestampRequestError, match=reason) as caught:
        parse_request(der)
    assert caught.value.failure_info == failure_info


def test_a_non_minimal_nonce_is_refused() -> None:
    nonce = bytes.fromhex("02020042")  # 0x42 with a superfluous leading zero
    body = bytes.fromhex("020101") + VALID_REQUEST[5 : 5 + 2 + VALID_REQUEST[6]] + nonce
    with pytest.raises(TimestampRequestError, match="not a DER INTEGER"):
        parse_request(bytes([0x30, len(body)]) + body)


# ---------------------------------------------------------------------------------------
# Fuzzing: any bytes end in our error, never in a library's
# ---------------------------------------------------------------------------------------

_edits = st.lists(st.tuples(st.integers(min_value=0), st.integers(0, 255)), min_size=1, max_size=4)


def mutations(data: bytes) -> st.SearchStrategy[bytes]:
    def apply(change: tuple[list[tuple[int, int]], int | None, bytes]) -> bytes:
        edits, cut, tail = change
        mutated = bytearray(data)
        for position, value in edits:
            mutated[position % len(mutated)] = value
        return bytes(mutated[:cut]) + tail

    edited = st.tuples(_edits, st.none() | st.integers(0, len(data)), st.binary(max_size=4))
    return edited.map(apply) | st.binary(max_size=300)


@settings(max_examples=500, deadline=None)
@given(der=mutations(VALID_REQUEST))
def test_parse_request_raises_only_timestamp_request_errors(der: bytes) -> None:
    try:
        request = parse_request(der)
    except TimestampRequestError as error:
        failure_info = error.failure_info
    else:
        failure_info = None
        assert len(request.message_imprint) == HASH_ALGORITHMS[request.hash_algorithm]
    assert failure_info in (None, *FAILURE_INFOS, "unaccepted_extension")


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_parse_response_and_verify_token_raise_only_timestamp_errors(
    data: st.DataObject, response: bytes, token: bytes, root: x509.Certificate
) -> None:
    reply = data.draw(mutations(response))
    with contextlib.suppress(TimestampError):
        parse_response(reply)
    garbled = data.draw(mutations(token))
    with contextlib.suppress(TimestampError):
        verify_token(garbled, message=MESSAGE, trust_anchors=[root])


def _general_names(name: Any) -> Any:
    return asn1_x509.GeneralNames([asn1_x509.GeneralName(name="directory_name", value=name)])


def test_the_signing_certificate_issuer_matches_by_der_or_by_rfc5280_comparison() -> None:
    issuer = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "Custody TSA Root")])
    same = asn1_x509.Name.load(issuer.public_bytes())
    # The same name as a PrintableString, with other case and spacing: other DER, equal
    # under RFC 5280 §7.1 (asn1crypto's comparison).
    respelled = asn1_x509.Name.build({"common_name": "custody  tsa root"}, use_printable=True)
    other = asn1_x509.Name.build({"common_name": "Another Root"})
    assert respelled.dump() != same.dump()
    assert _names_issuer(_general_names(same), issuer)
    assert _names_issuer(_general_names(respelled), issuer)
    assert not _names_issuer(_general_names(other), issuer)
    assert not _names_issuer(
        asn1_x509.GeneralNames([*_general_names(same), *_general_names(same)]), issuer
    )
    dns = asn1_x509.GeneralNames([asn1_x509.GeneralName(name="dns_name", value="tsa.example")])
    assert not _names_issuer(dns, issuer)


def test_a_look_alike_issuer_gets_its_own_signature_check(now: datetime) -> None:
    """Signature checks are remembered by the certificates' bytes: a look-alike root (same
    name, another key) is checked for itself, and fails, before and after the real one."""
    root, look_alike = make_root(now=now), make_root(now=now)
    assert root.certificate.subject == look_alike.certificate.subject
    child = make_tsa_certificate(
        root, ec.generate_private_key(ec.SECP256R1()).public_key(), now=now
    )
    assert not issued_by(child, look_alike.certificate)
    assert issued_by(child, root.certificate)
    assert not issued_by(child, look_alike.certificate)


def _nested(levels: int, inner: bytes) -> bytes:
    for _ in range(levels):
        inner = tlv(0x30, inner)
    return inner


def test_der_values_checked_before_are_judged_again_where_they_nest_deeper() -> None:
    """Large valid values are remembered by their bytes and depth: the same bytes deeper
    down, past the nesting bound, are refused all the same."""
    value = _nested(30, tlv(0x04, b"x" * 300))  # 31 levels deep: within the bound of 32
    check_der(value)
    check_der(value)  # remembered at depth 0
    with pytest.raises(ValueError, match="nested too deeply"):
        check_der(_nested(3, value))
    flipped = value[:-1] + b"\x00"
    check_der(flipped)
    bad_length = value[:2] + bytes([value[2] + 1]) + value[3:]
    with pytest.raises(ValueError, match="truncated DER value"):
        check_der(bad_length)
