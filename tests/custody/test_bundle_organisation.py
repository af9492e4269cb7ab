"""The organisation's detached signature: raw Ed25519, checkable with openssl alone."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from custody.bundle import organisation
from custody.errors import BundleError


def test_sign_verify_and_keys_round_trip() -> None:
    key = organisation.generate_key()
    again = organisation.load_private_key(organisation.dump_private_key(key))
    public = organisation.load_public_key(organisation.public_pem(again))
    signature = organisation.sign(key, b"tag manifest")
    assert len(signature) == organisation.SIGNATURE_SIZE
    assert organisation.verify(public, b"tag manifest", signature)
    assert not organisation.verify(public, b"tag manifest!", signature)
    assert not organisation.verify(public, b"tag manifest", signature[:-1])
    other = organisation.load_public_key(organisation.public_pem(organisation.generate_key()))
    assert not organisation.verify(other, b"tag manifest", signature)


def test_wrong_keys_are_refused() -> None:
    with pytest.raises(BundleError, match="PEM"):
        organisation.load_private_key(b"not a key")
    with pytest.raises(BundleError, match="PEM public key"):
        organisation.load_public_key(
            b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
        )


def test_openssl_verifies_the_signature(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    key = organisation.generate_key()
    data = tmp_path / "tagmanifest-sha256.txt"
    data.write_bytes(b"ab  bagit.txt\n")
    (tmp_path / "org.pem").write_bytes(organisation.public_pem(key))
    (tmp_path / "sig").write_bytes(organisation.sign(key, data.read_bytes()))
    command = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "org.pem", "-rawin"]
    good = subprocess.run(
        [*command, "-in", data.name, "-sigfile", "sig"],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
    )
    assert good.returncode == 0, good.stderr
    assert "Signature Verified Successfully" in good.stdout
    data.write_bytes(b"ab  bagit.txt\nextra\n")
    bad = subprocess.run(
        [*command, "-in", data.name, "-sigfile", "sig"],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0
