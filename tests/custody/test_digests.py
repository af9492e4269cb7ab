"""Tests for custody.digests: RFC 9530 digest fields and streaming hashing."""

from __future__ import annotations

import base64
import hashlib

import pytest

from custody.digests import (
    EXTRA_ALGORITHMS,
    DeclaredDigest,
    MultiHasher,
    algorithms_needed,
    check_declared,
    format_digest_field,
    parse_digest_field,
)
from custody.errors import DigestHeaderError, DigestMismatchError, UnsupportedAlgorithmError

# RFC 9530 §3 and Appendix B: the representation `{"hello": "world"}` (checked with hashlib in
# test_rfc_9530_example_values_are_the_digests_of_the_example_body).
RFC_BODY = b'{"hello": "world"}'
RFC_SHA256 = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
RFC_SHA512 = (
    "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgB"
    "WnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
)
HEADER = "Repr-Digest"


def field(algorithm: str, digest: bytes) -> str:
    return f"{algorithm}=:{base64.b64encode(digest).decode()}:"


def test_rfc_9530_example_values_are_the_digests_of_the_example_body() -> None:
    assert field("sha-256", hashlib.sha256(RFC_BODY).digest()) == RFC_SHA256
    assert field("sha-512", hashlib.sha512(RFC_BODY).digest()) == RFC_SHA512


def test_parse_sha256() -> None:
    assert parse_digest_field(HEADER, RFC_SHA256) == [
        DeclaredDigest("sha256", hashlib.sha256(RFC_BODY).hexdigest(), HEADER)
    ]


def test_parse_sha512() -> None:
    assert parse_digest_field("Content-Digest", RFC_SHA512) == [
        DeclaredDigest("sha512", hashlib.sha512(RFC_BODY).hexdigest(), "Content-Digest")
    ]


def test_parse_several_members_in_order() -> None:
    parsed = parse_digest_field(HEADER, f"{RFC_SHA512}, {RFC_SHA256}")
    assert [(d.algorithm, d.hex) for d in parsed] == [
        ("sha512", hashlib.sha512(RFC_BODY).hexdigest()),
        ("sha256", hashlib.sha256(RFC_BODY).hexdigest()),
    ]


@pytest.mark.parametrize(
    "value",
    [
        f"unixsum=:AAAA:, {RFC_SHA256}",
        f"md5=:{base64.b64encode(hashlib.md5(RFC_BODY).digest()).decode()}:, {RFC_SHA256}",
        f"{RFC_SHA256},id-sha-256=:AAECAw==:",
        f"sha=:AAAA:,{RFC_SHA256},sha3-256=:AAAA:",
    ],
)
def test_unknown_algorithms_are_ignored(value: str) -> None:
    parsed = parse_digest_field(HEADER, value)
    assert [d.algorithm for d in parsed] == ["sha256"]


def test_only_unknown_algorithms_give_nothing_to_check() -> None:
    assert parse_digest_field(HEADER, "unixsum=:AAAA:") == []


@pytest.mark.parametrize(
    "value",
    [f"{RFC_SHA256};foo=bar", f"{RFC_SHA256};a=1;b=?0", f"  {RFC_SHA256} ;x  "],
)
def test_parameters_and_surrounding_whitespace_are_ignored(value: str) -> None:
    assert parse_digest_field(HEADER, value) == parse_digest_field(HEADER, RFC_SHA256)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty value"),
        pytest.param("   ", id="blank value"),
        pytest.param(f"{RFC_SHA256},", id="trailing comma"),
        pytest.param(f",{RFC_SHA256}", id="leading comma"),
        pytest.param(f"{RFC_SHA256},,{RFC_SHA512}", id="empty member"),
        pytest.param("sha-256", id="no equals sign"),
        pytest.param(RFC_SHA256.replace(":", ""), id="no colons"),
        pytest.param(RFC_SHA256.rstrip(":"), id="no closing colon"),
        pytest.param("sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=", id="token not bytes"),
        pytest.param("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE!:", id="bad alphabet"),
        pytest.param("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE:", id="bad padding"),
        pytest.param("sha-256=:X48E9qOokqqr vdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:", id="inner space"),
        pytest.param(field("sha-256", bytes(16)), id="sha-256 too short"),
        pytest.param(field("sha-256", bytes(33)), id="sha-256 too long"),
        pytest.param(field("sha-512", bytes(32)), id="sha-512 of sha-256 length"),
        pytest.param("sha-256=::", id="empty byte sequence"),
        pytest.param(RFC_SHA256.upper(), id="uppercase key"),
        pytest.param(f"=:{RFC_SHA256.split(':')[1]}:", id="no key"),
        pytest.param(f"unixsum=1, {RFC_SHA256}", id="unknown member not bytes"),
    ],
)
def test_malformed_fields_are_rejected(value: str) -> None:
    with pytest.raises(DigestHeaderError) as caught:
        parse_digest_field("Content-Digest", value)
    assert caught.value.header == "Content-Digest"
    assert "Content-Digest" in str(caught.value)


@pytest.mark.parametrize(("algorithm", "body"), [("sha256", b"hello world"), ("sha512", b"")])
def test_format_digest_field_round_trips(algorithm: str, body: bytes) -> None:
    hex_value = hashlib.new(algorithm, body).hexdigest()
    value = format_digest_field(algorithm, hex_value)
    assert parse_digest_field(HEADER, value) == [DeclaredDigest(algorithm, hex_value, HEADER)]


def test_format_digest_field_gives_the_rfc_9530_form() -> None:
    assert format_digest_field("sha256", hashlib.sha256(RFC_BODY).hexdigest()) == RFC_SHA256
    assert format_digest_field("sha512", hashlib.sha512(RFC_BODY).hexdigest()) == RFC_SHA512


@pytest.mark.parametrize("algorithm", ["md5", "sha3_256", "sha-256", "SHA256"])
def test_format_digest_field_rejects_algorithms_without_an_http_name(algorithm: str) -> None:
    with pytest.raises(UnsupportedAlgorithmError) as caught:
        format_digest_field(algorithm, "00" * 32)
    assert caught.value.algorithm == algorithm


def test_multihasher_computes_sha256_and_size_over_chunks() -> None:
    hasher = MultiHasher()
    for chunk in (b"hello", memoryview(b" "), b"world"):
        hasher.update(chunk)
    assert hasher.hexdigests() == {"sha256": hashlib.sha256(b"hello world").hexdigest()}
    assert hasher.size == 11


def test_multihasher_of_nothing() -> None:
    hasher = MultiHasher()
    assert hasher.hexdigests() == {"sha256": hashlib.sha256(b"").hexdigest()}
    assert hasher.size == 0


@pytest.mark.parametrize("algorithm", sorted(EXTRA_ALGORITHMS))
def test_multihasher_extra_algorithm_matches_hashlib(algorithm: str) -> None:
    body = bytes(range(256)) * 1000
    hasher = MultiHasher([algorithm])
    hasher.update(body[:1000])
    hasher.update(body[1000:])
    assert hasher.hexdigests() == {
        "sha256": hashlib.sha256(body).hexdigest(),
        algorithm: hashlib.new(algorithm, body).hexdigest(),
    }


def test_multihasher_with_every_extra_algorithm_and_sha256_named_twice() -> None:
    hasher = MultiHasher(["sha256", *EXTRA_ALGORITHMS])
    hasher.update(b"abc")
    digests = hasher.hexdigests()
    assert set(digests) == {"sha256", *EXTRA_ALGORITHMS}
    assert all(value == hashlib.new(name, b"abc").hexdigest() for name, value in digests.items())


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha-512", "crc32"])
def test_multihasher_rejects_unsupported_algorithms(algorithm: str) -> None:
    with pytest.raises(UnsupportedAlgorithmError) as caught:
        MultiHasher(["sha512", algorithm])
    assert caught.value.algorithm == algorithm


def test_check_declared_accepts_matching_digests() -> None:
    declared = parse_digest_field(HEADER, f"{RFC_SHA256}, {RFC_SHA512}")
    hasher = MultiHasher(algorithms_needed(declared))
    hasher.update(RFC_BODY)
    check_declared(declared, hasher.hexdigests())


def test_check_declared_raises_on_mismatch_with_both_values() -> None:
    declared = parse_digest_field(HEADER, RFC_SHA256)
    computed = {"sha256": hashlib.sha256(b"tampered").hexdigest()}
    with pytest.raises(DigestMismatchError) as caught:
        check_declared(declared, computed)
    assert caught.value.algorithm == "sha256"
    assert caught.value.declared == hashlib.sha256(RFC_BODY).hexdigest()
    assert caught.value.computed == computed["sha256"]


def test_check_declared_catches_a_mismatch_in_a_later_member() -> None:
    declared = parse_digest_field(HEADER, f"{RFC_SHA256}, {RFC_SHA512}")
    computed = {
        "sha256": hashlib.sha256(RFC_BODY).hexdigest(),
        "sha512": hashlib.sha512(b"other").hexdigest(),
    }
    with pytest.raises(DigestMismatchError) as caught:
        check_declared(declared, computed)
    assert caught.value.algorithm == "sha512"


def test_algorithms_needed_names_each_declared_algorithm_once() -> None:
    declared = parse_digest_field(HEADER, f"{RFC_SHA512}, {RFC_SHA256}, {RFC_SHA512}")
    assert algorithms_needed(declared) == {"sha256", "sha512"}
