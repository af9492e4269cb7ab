"""The built-in TSA's key, chain and serials, and the TSA list a deployment configures."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from api.anchors import load_anchors
from api.database import build_engine, migrate
from api.settings import Settings
from api.tsa import (
    TimestampAuthority,
    TsaConfigError,
    load_identity,
    next_epoch,
    parse_tsa_urls,
)
from custody.tsp import (
    dump_tsa_key,
    generate_tsa,
    make_request,
    parse_response,
    verify_token,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def test_first_start_generates_one_identity_that_later_starts_reuse(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    identities = []

    def load() -> None:
        identities.append(load_identity(settings, now=NOW))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Four starts at once agree on one key and certificate.
    assert len({identity.certificate for identity in identities}) == 1
    path = settings.resolved_tsa_key_file
    assert path.stat().st_mode & 0o777 == 0o600
    assert list(path.parent.glob(".tsa-*")) == []
    again = load_identity(settings, now=NOW)
    assert again.certificate == identities[0].certificate
    eku = again.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical
    assert list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    assert again.chain[-1].subject == again.chain[-1].issuer  # a root ends the chain
    assert "Custody TSA" in again.certificate.subject.rfc4514_string()


def test_configured_key_and_chain_are_used(tmp_path: Path) -> None:
    identity = generate_tsa("Org TSA", now=NOW)
    key, chain = tmp_path / "tsa.key", tmp_path / "chain.pem"
    key.write_bytes(dump_tsa_key(identity))
    chain.write_text(identity.chain_pem())
    settings = Settings(data_dir=tmp_path / "data", tsa_key_file=key, tsa_chain_file=chain)
    loaded = load_identity(settings, now=NOW)
    assert loaded.certificate == identity.certificate
    assert not (tmp_path / "data").exists(), "nothing generated when the key is configured"


def test_unusable_configured_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TsaConfigError, match="cannot read"):
        load_identity(Settings(tsa_key_file=tmp_path / "absent.pem"), now=NOW)
    mine, theirs = generate_tsa("Mine", now=NOW), generate_tsa("Theirs", now=NOW)
    key, chain = tmp_path / "tsa.key", tmp_path / "chain.pem"
    key.write_bytes(dump_tsa_key(mine))
    chain.write_text(theirs.chain_pem())
    with pytest.raises(TsaConfigError):
        load_identity(Settings(tsa_key_file=key, tsa_chain_file=chain), now=NOW)


def test_serial_epochs_never_repeat(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    epochs = [next_epoch(engine) for _ in range(3)]
    assert epochs == sorted(set(epochs))
    identity = generate_tsa("Serial TSA", now=NOW)
    serials = set()
    for epoch in epochs:
        authority = TimestampAuthority(identity, policy="1.2.3", epoch=epoch, clock=lambda: NOW)
        for _ in range(3):
            reply = parse_response(authority.respond(make_request(b"checkpoint", nonce=5)))
            assert reply.token is not None
            verified = verify_token(reply.token, message=b"checkpoint", nonce=5)
            serials.add(verified.serial)
    assert len(serials) == 9
    engine.dispose()


def test_authority_rejects_instead_of_raising() -> None:
    identity = generate_tsa("Strict TSA", now=NOW)
    authority = TimestampAuthority(identity, policy="1.2.3", epoch=1, clock=lambda: NOW)
    for query in (b"", b"\x00", make_request(b"x", nonce=1)[:-3], b"\x30" * 70000):
        reply = parse_response(authority.respond(query))
        assert reply.status == "rejection"
        assert reply.token is None
        assert reply.text
    other_policy = make_request(b"x", nonce=1, policy="1.2.4")
    reply = parse_response(authority.respond(other_policy))
    assert reply.status == "rejection"
    assert "1.2.3" in reply.text


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["builtin"], [("builtin", "builtin")]),
        (
            ["builtin", "https://tsa.example.org/tsr", "peer=http://127.0.0.1:9/tsa"],
            [
                ("builtin", "builtin"),
                ("tsa.example.org", "https://tsa.example.org/tsr"),
                ("peer", "http://127.0.0.1:9/tsa"),
            ],
        ),
        ([], []),
    ],
)
def test_tsa_urls(values: list[str], expected: list[tuple[str, str]]) -> None:
    assert parse_tsa_urls(values) == expected


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (["ftp://tsa.example.org"], "neither 'builtin' nor an http"),
        (["tsa.example.org"], "neither 'builtin' nor an http"),
        (["a=https://x.example", "a=https://y.example"], "appears twice"),
        ([f"{'n' * 65}=https://x.example"], "1 to 64 characters"),
    ],
)
def test_bad_tsa_urls_say_why(values: list[str], reason: str) -> None:
    with pytest.raises(TsaConfigError, match=reason):
        parse_tsa_urls(values)


def test_settings_split_comma_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTODY_TSA_URLS", "builtin, peer=https://peer.example/tsa")
    monkeypatch.setenv("CUSTODY_TSA_TRUST_ANCHORS", f"{tmp_path / 'a.pem'},{tmp_path / 'b.pem'}")
    settings = Settings()
    assert settings.tsa_urls == ["builtin", "peer=https://peer.example/tsa"]
    assert settings.tsa_trust_anchors == [tmp_path / "a.pem", tmp_path / "b.pem"]
    monkeypatch.setenv("CUSTODY_TSA_URLS", "")
    assert Settings().tsa_urls == []


def test_trust_anchors_load_or_say_which_file(tmp_path: Path) -> None:
    roots = [generate_tsa(f"R{i}", now=NOW).chain[-1] for i in range(2)]
    bundle = tmp_path / "roots.pem"
    bundle.write_bytes(b"".join(r.public_bytes(Encoding.PEM) for r in roots))
    assert load_anchors([bundle]) == roots
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    with pytest.raises(TsaConfigError, match=r"broken\.pem"):
        load_anchors([broken])
