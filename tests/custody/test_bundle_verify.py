"""custody.bundle.verify: a real bag verifies; every tampering is named by file and check,
naive or with the manifests recomputed and re-signed; trust is reported apart."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import bagit
import pytest

from custody.bundle import organisation
from custody.bundle.verify import DirectoryBag, ZipBag, open_bag, verify_bundle
from custody.bundle.verify_report import (
    BAG_CHAIN_ONLY,
    BAG_ONLY,
    MISMATCH,
    SUPPLIED,
    TRUSTED,
    BundleReport,
)
from custody.errors import BundleError
from custody.note import decode_base64, encode_base64
from tests.custody.bundle_fixtures import (
    COPY,
    PENDING_TSA,
    STATEMENT_TEXT,
    BagKeys,
    flip_stored_byte,
    make_bag,
    photo_jpeg,
    reseal,
    unzip_bag,
)

ROOT = "custody-export-x-0001"
PHOTO_FILE = "data/001-IMG_0042.jpg"
STATEMENT_FILE = "data/003-statement W.txt"


@pytest.fixture(scope="module")
def keys() -> BagKeys:
    return BagKeys.generate()


@pytest.fixture(scope="module")
def good_zip(keys: BagKeys, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bag(tmp_path_factory.mktemp("bag"), keys=keys)


@pytest.fixture
def bag_dir(good_zip: Path, tmp_path: Path) -> Path:
    return unzip_bag(good_zip, tmp_path / "unzipped")


def verify(path: Path, **kwargs: object) -> BundleReport:
    options: dict[str, object] = {"vkey": None, "tsa_anchors": (), "organisation_key": None}
    options.update(kwargs)
    with open_bag(path) as source:
        return verify_bundle(source, **options)  # type: ignore[arg-type]


def named(report: BundleReport) -> set[tuple[str, str]]:
    return {(f.file, f.check) for f in report.failures}


# ---------------------------------------------------------------------------------------
# A good bag
# ---------------------------------------------------------------------------------------


def test_a_good_bag_verifies_and_summarises_each_exhibit(good_zip: Path) -> None:
    report = verify(good_zip)
    assert report.ok, report.failures
    assert report.warnings == ()
    assert (report.export_id, report.case_id, report.checkpoint) == ("x-0001", "case-7", 12)
    summary = {e.number: e for e in report.exhibits}
    assert [summary[n].kind for n in (1, 2, 3)] == ["original", "sharing-copy", "original"]
    photo = summary[1]
    assert photo.path == PHOTO_FILE
    assert photo.sha256 == hashlib.sha256(photo_jpeg()).hexdigest()
    assert photo.collected_by == "p-field-1"
    assert photo.collected_at == "2026-03-02T09:01:00.000000Z"
    assert photo.trusted_time is not None
    assert photo.trusted_time.isoformat() == "2026-03-02T09:04:30+00:00"  # the token over 4
    assert photo.entries == (1, 4, 6, 8)
    assert summary[3].sha256 == hashlib.sha256(STATEMENT_TEXT).hexdigest()
    assert summary[3].trusted_time is not None
    assert summary[3].trusted_time.isoformat() == "2026-03-02T09:08:30+00:00"  # over 8
    json.dumps(report.to_json())


def test_the_unzipped_bag_verifies_here_and_with_bagit_python(bag_dir: Path) -> None:
    report = verify(bag_dir)
    assert report.ok, report.failures
    assert report.files == len([p for p in bag_dir.rglob("*") if p.is_file()])
    bag = bagit.Bag(str(bag_dir))  # an independent BagIt implementation
    bag.validate()
    assert bag.is_valid()
    # The directory holding the bag directory (where `unzip` put it) is accepted too.
    assert verify(bag_dir.parent).ok


def test_a_trust_summary_without_supplied_keys_is_bag_only(good_zip: Path) -> None:
    trust = verify(good_zip).trust
    assert (trust.log_key, trust.organisation_key) == (BAG_ONLY, BAG_ONLY)
    assert [t.checkpoint for t in trust.tokens] == [4, 8, 12]
    assert {t.trust for t in trust.tokens} == {BAG_CHAIN_ONLY}


def test_supplied_keys_and_anchor_that_match_are_trusted(good_zip: Path, keys: BagKeys) -> None:
    report = verify(
        good_zip,
        vkey=keys.log.verifier(),
        tsa_anchors=[keys.tsa_root],
        organisation_key=keys.organisation.public_key(),
    )
    assert report.ok, report.failures
    assert (report.trust.log_key, report.trust.organisation_key) == (SUPPLIED, SUPPLIED)
    assert {t.trust for t in report.trust.tokens} == {TRUSTED}
    assert {e.trusted_time_trust for e in report.exhibits} == {TRUSTED}


def test_a_different_log_key_fails_and_the_checkpoints_do_not_open(good_zip: Path) -> None:
    other = BagKeys.generate()
    report = verify(good_zip, vkey=other.log.verifier())
    assert not report.ok
    assert report.trust.log_key == MISMATCH
    assert ("custody/log.vkey", "log key") in named(report)
    assert ("custody/checkpoints/12/checkpoint", "checkpoint") in named(report)
    assert ("custody/checkpoints/4/checkpoint", "checkpoint") in named(report)
    failure = next(f for f in report.failures if f.check == "log key")
    assert failure.expected == other.vkey


def test_a_different_organisation_key_fails(good_zip: Path) -> None:
    other = organisation.generate_key().public_key()
    report = verify(good_zip, organisation_key=other)
    assert report.trust.organisation_key == MISMATCH
    assert {
        ("custody/organisation.pem", "organisation key"),
        ("tagmanifest-sha256.txt.sig", "signature"),
        ("tagmanifest-sha512.txt.sig", "signature"),
    } <= named(report)


def test_an_anchor_that_is_not_the_tsa_root_leaves_tokens_untrusted(good_zip: Path) -> None:
    report = verify(good_zip, tsa_anchors=[BagKeys.generate().tsa_root])
    assert report.ok, report.failures
    assert {t.trust for t in report.trust.tokens} == {BAG_CHAIN_ONLY}


def test_a_sharing_copy_exported_alone_verifies(tmp_path: Path, keys: BagKeys) -> None:
    report = verify(make_bag(tmp_path, keys=keys, exhibits=(COPY,)))
    assert report.ok, report.failures
    (copy,) = report.exhibits
    assert (copy.number, copy.kind, copy.path) == (
        1,
        "sharing-copy",
        "data/001-IMG_0042.shared.jpg",
    )
    assert copy.collected_by == "p-field-1"  # its original's collector
    assert 1 in copy.entries  # the original's ingested entry


def test_a_large_exhibit_collected_under_the_bundle_checkpoint(tmp_path: Path) -> None:
    large = tmp_path / "recording.bin"
    large.write_bytes(bytes(range(256)) * (3 * 4096 + 7))  # ~3 MiB: several read chunks
    report = verify(make_bag(tmp_path, large=large, exhibits=()))
    assert report.ok, report.failures
    (exhibit,) = report.exhibits
    assert exhibit.sha256 == hashlib.sha256(large.read_bytes()).hexdigest()
    assert exhibit.trusted_time is not None  # its checkpoint S is N: an empty proof


def test_a_pending_timestamp_is_a_warning(tmp_path: Path) -> None:
    report = verify(make_bag(tmp_path, pending=True))
    assert report.ok, report.failures
    assert [(w.file, w.check) for w in report.warnings] == [
        ("custody/checkpoints/12/checkpoint", "timestamp")
    ]
    assert PENDING_TSA in report.warnings[0].detail


# ---------------------------------------------------------------------------------------
# Content proofs
# ---------------------------------------------------------------------------------------


def test_a_supplied_original_proves_its_copy(tmp_path: Path, keys: BagKeys) -> None:
    report = verify(
        make_bag(tmp_path, keys=keys, exhibits=(COPY,)), originals=[io.BytesIO(photo_jpeg())]
    )
    assert report.ok, report.failures
    assert report.warnings == ()
    (proof,) = report.content_proofs
    assert (proof.exhibit, proof.proven, proof.original) == (1, True, "original #1")
    assert proof.content_kind == "jpeg-frame-tables-scans"


def test_a_copy_whose_logged_content_digest_differs_fails(tmp_path: Path) -> None:
    original = tmp_path / "IMG_0042.jpg"
    original.write_bytes(photo_jpeg())
    report = verify(make_bag(tmp_path, exhibits=(COPY,), forge_content=True), originals=[original])
    assert named(report) == {("data/001-IMG_0042.shared.jpg", "content proof")}
    assert [p.proven for p in report.content_proofs] == [False]
    assert report.failures[0].expected == hashlib.sha256(b"forged").hexdigest()
    assert str(original) in report.failures[0].detail


def test_a_bag_from_before_keyed_purpose_commitments_verifies(tmp_path: Path) -> None:
    """Its `exported` entries hold the purpose's plain SHA-256, its bundle.json no key."""
    path = make_bag(tmp_path, plain_purpose=True)
    report = verify(path)
    assert report.ok, report.failures
    with zipfile.ZipFile(path) as bag:
        (name,) = [n for n in bag.namelist() if n.endswith("/custody/bundle.json")]
        info = json.loads(bag.read(name))
    assert "purpose_key" not in info


def test_an_original_of_no_copy_is_a_warning(good_zip: Path) -> None:
    report = verify(good_zip, originals=[io.BytesIO(STATEMENT_TEXT)])
    assert report.ok
    assert [(w.check, w.file) for w in report.warnings] == [("content proof", "original #1")]


# ---------------------------------------------------------------------------------------
# Tampering
# ---------------------------------------------------------------------------------------


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _change_receipt(bag: Path, index: int, change: Callable[[list[str]], None]) -> None:
    path = bag / f"custody/entries/{index}.tlog-proof"
    head, _, checkpoint = path.read_bytes().partition(b"\n\n")
    lines = head.decode().split("\n")
    change(lines)
    path.write_bytes("\n".join(lines).encode() + b"\n\n" + checkpoint)


def _forge_entry(lines: list[str]) -> None:
    entry = json.loads(decode_base64(lines[1].removeprefix("extra ")))
    entry["actor"] = "p-someone-else"
    encoded = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    lines[1] = "extra " + encode_base64(encoded)


def _forge_proof(lines: list[str]) -> None:
    node = bytearray(decode_base64(lines[3]))
    node[0] ^= 0x01
    lines[3] = encode_base64(bytes(node))


def _manifest_line(bag: Path) -> None:
    manifest = bag / "manifest-sha256.txt"
    forged = hashlib.sha256(b"forged").hexdigest()
    lines = manifest.read_text().splitlines(keepends=True)
    manifest.write_text(
        "".join(f"{forged}  {STATEMENT_FILE}\n" if STATEMENT_FILE in ln else ln for ln in lines)
    )


def _checkpoint(bag: Path) -> None:
    path = bag / "custody/checkpoints/4/checkpoint"
    origin, size, _root, rest = path.read_text().split("\n", 3)
    forged = encode_base64(hashlib.sha256(b"another tree").digest())
    path.write_text("\n".join([origin, size, forged, rest]))


def _record(name: str, change: Callable[[dict[str, object]], None]) -> Callable[[Path], None]:
    def mutate(bag: Path) -> None:
        path = bag / f"custody/exhibits/{name}.json"
        record = json.loads(path.read_text())
        change(record)
        path.write_text(json.dumps(record, indent=2) + "\n")

    return mutate


def _bundle(change: Callable[[dict[str, object]], None]) -> Callable[[Path], None]:
    def mutate(bag: Path) -> None:
        path = bag / "custody/bundle.json"
        info = json.loads(path.read_text())
        change(info)
        path.write_text(json.dumps(info, indent=2) + "\n")

    return mutate


def _restate_purpose(info: dict[str, object]) -> None:
    info["purpose"] = "Shared with the press"


def _other_purpose_key(info: dict[str, object]) -> None:
    info["purpose_key"] = "a1" * 32


# Every `exported` entry of the bag commits to its purpose: one per exhibit.
_EXPORTED = {(f"custody/entries/{index}.tlog-proof", "export") for index in (8, 9, 10)}


def _forge_copy_of(record: dict[str, object]) -> None:
    record["copy_of"]["removed"] = []  # type: ignore[index]


def _forge_collection(record: dict[str, object]) -> None:
    record["collected"]["checkpoint"] = 8  # type: ignore[index]


def _exhibit_and_record(bag: Path) -> None:
    """Change the statement and make its record claim the new hashes: only the log disagrees."""
    _flip(bag / STATEMENT_FILE, 5)
    data = (bag / STATEMENT_FILE).read_bytes()

    def claim(record: dict[str, object]) -> None:
        record["sha256"] = hashlib.sha256(data).hexdigest()
        record["sha512"] = hashlib.sha512(data).hexdigest()

    _record("003", claim)(bag)


@dataclass(frozen=True)
class Tamper:
    mutate: Callable[[Path], object]
    naive: set[tuple[str, str]]  # named with the manifests as they were
    resealed: set[tuple[str, str]]  # still named when the attacker recomputes and re-signs
    payload: bool = True  # the attacker recomputes the payload manifests too


TAMPERING = {
    "exhibit byte": Tamper(
        lambda bag: _flip(bag / STATEMENT_FILE, 5),
        {(STATEMENT_FILE, "fixity sha256"), (STATEMENT_FILE, "fixity sha512")},
        {
            (STATEMENT_FILE, "exhibit"),  # the record's (and the log's) hashes
            ("custody/bundle.json", "bundle"),  # manifest_sha256
            ("custody/entries/10.tlog-proof", "export"),  # the exported entry's manifest hash
        },
    ),
    "exhibit and its record": Tamper(
        _exhibit_and_record,
        {(STATEMENT_FILE, "fixity sha256"), ("custody/exhibits/003.json", "fixity sha256")},
        {
            ("custody/entries/5.tlog-proof", "entry"),  # the ingested entry is about other bytes
            ("custody/entries/10.tlog-proof", "entry"),
            ("custody/entries/5.tlog-proof", "collection"),
        },
    ),
    "manifest line": Tamper(
        _manifest_line,
        {(STATEMENT_FILE, "fixity sha256"), ("manifest-sha256.txt", "fixity sha256")},
        {(STATEMENT_FILE, "fixity sha256"), ("custody/bundle.json", "bundle")},
        payload=False,
    ),
    "custody entry": Tamper(
        lambda bag: _change_receipt(bag, 5, _forge_entry),
        {
            ("custody/entries/5.tlog-proof", "fixity sha256"),
            ("custody/entries/5.tlog-proof", "inclusion"),
        },
        {
            ("custody/entries/5.tlog-proof", "inclusion"),
            ("custody/entries/5.tlog-proof", "entries"),
        },
    ),
    "proof hash": Tamper(
        lambda bag: _change_receipt(bag, 1, _forge_proof),
        {
            ("custody/entries/1.tlog-proof", "fixity sha512"),
            ("custody/entries/1.tlog-proof", "inclusion"),
        },
        {("custody/entries/1.tlog-proof", "inclusion")},
    ),
    "checkpoint": Tamper(
        _checkpoint,
        {
            ("custody/checkpoints/4/checkpoint", "fixity sha256"),
            ("custody/checkpoints/4/checkpoint", "checkpoint"),
        },
        {
            ("custody/checkpoints/4/checkpoint", "checkpoint"),
            ("custody/checkpoints/4/tsa0.tsr", "timestamp"),
        },
    ),
    "token": Tamper(
        lambda bag: _flip(bag / "custody/checkpoints/8/tsa0.tsr", -3),
        {
            ("custody/checkpoints/8/tsa0.tsr", "fixity sha256"),
            ("custody/checkpoints/8/tsa0.tsr", "timestamp"),
        },
        {("custody/checkpoints/8/tsa0.tsr", "timestamp")},
    ),
    "removed file": Tamper(
        lambda bag: (bag / "custody/entries/7.tlog-proof").unlink(),
        {
            ("custody/entries/7.tlog-proof", "completeness"),
            ("custody/entries/7.tlog-proof", "entries"),
        },
        {("custody/entries/7.tlog-proof", "entries")},
    ),
    "added payload file": Tamper(
        lambda bag: (bag / "data/004-extra.jpg").write_bytes(photo_jpeg()),
        {
            ("data/004-extra.jpg", "completeness"),
            ("bag-info.txt", "Payload-Oxum"),
            ("data/004-extra.jpg", "exhibit"),
        },
        {("data/004-extra.jpg", "exhibit"), ("custody/bundle.json", "bundle")},
    ),
    "added tag file": Tamper(
        lambda bag: (bag / "custody/notes.txt").write_text("nothing to see\n"),
        {("custody/notes.txt", "completeness")},
        set(),  # only the signature can tell: see the trust tests
    ),
    "stated purpose": Tamper(
        _bundle(_restate_purpose),
        {("custody/bundle.json", "fixity sha256"), *_EXPORTED},
        _EXPORTED,
    ),
    "purpose key": Tamper(
        _bundle(_other_purpose_key),
        {("custody/bundle.json", "fixity sha256"), *_EXPORTED},
        _EXPORTED,
    ),
    "copy record": Tamper(
        _record("002", _forge_copy_of),
        {("custody/exhibits/002.json", "fixity sha256")},
        {("custody/entries/4.tlog-proof", "derivation")},
    ),
    "collection record": Tamper(
        _record("001", _forge_collection),
        {("custody/exhibits/001.json", "fixity sha256")},
        {("custody/exhibits/001.json", "consistency")},
    ),
}


@pytest.mark.parametrize("case", TAMPERING)
def test_naive_tampering_is_named(case: str, bag_dir: Path) -> None:
    TAMPERING[case].mutate(bag_dir)
    report = verify(bag_dir)
    assert not report.ok
    assert TAMPERING[case].naive <= named(report)


@pytest.mark.parametrize("case", TAMPERING)
def test_recomputed_manifests_break_the_organisation_signature(case: str, bag_dir: Path) -> None:
    TAMPERING[case].mutate(bag_dir)
    reseal(bag_dir, key=None, payload=TAMPERING[case].payload)
    report = verify(bag_dir)
    assert {
        ("tagmanifest-sha256.txt.sig", "signature"),
        ("tagmanifest-sha512.txt.sig", "signature"),
    } <= named(report)
    assert TAMPERING[case].resealed <= named(report)


@pytest.mark.parametrize("case", TAMPERING)
def test_a_resigned_bag_is_caught_by_the_proofs_or_the_supplied_key(
    case: str, bag_dir: Path, keys: BagKeys
) -> None:
    TAMPERING[case].mutate(bag_dir)
    attacker = organisation.generate_key()
    reseal(bag_dir, key=attacker, payload=TAMPERING[case].payload)
    report = verify(bag_dir)
    assert not any(f.check == "signature" for f in report.failures)  # the bag is self-consistent
    assert TAMPERING[case].resealed <= named(report)
    assert report.ok is not bool(TAMPERING[case].resealed)
    supplied = verify(bag_dir, organisation_key=keys.organisation.public_key())
    assert not supplied.ok
    assert ("custody/organisation.pem", "organisation key") in named(supplied)


def test_a_changed_byte_in_a_stored_zip_entry_is_named(good_zip: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bag.zip"
    shutil.copy(good_zip, copy)
    flip_stored_byte(copy, f"{ROOT}/{PHOTO_FILE}", offset=200)
    report = verify(copy)
    failure = next(f for f in report.failures if f.file == PHOTO_FILE)
    assert failure.check == "read"
    assert "CRC" in failure.found
    assert verify(good_zip).ok  # the fixture's zip was not touched


def test_a_zip_entry_outside_the_bag_directory_is_named(good_zip: Path, tmp_path: Path) -> None:
    copy = tmp_path / "bag.zip"
    shutil.copy(good_zip, copy)
    with zipfile.ZipFile(copy, "a") as archive:
        archive.writestr("README.txt", "unpack me")
        archive.writestr(f"{ROOT}/../escape.txt", "up")
    report = verify(copy)
    assert {("README.txt", "structure"), (f"{ROOT}/../escape.txt", "structure")} <= named(report)


def test_every_failure_names_file_check_expected_and_found(bag_dir: Path) -> None:
    _flip(bag_dir / STATEMENT_FILE, 0)
    report = verify(bag_dir)
    failure = next(f for f in report.failures if f.check == "fixity sha256")
    assert failure.file == STATEMENT_FILE
    assert failure.expected == hashlib.sha256(STATEMENT_TEXT).hexdigest()
    assert failure.found == hashlib.sha256((bag_dir / STATEMENT_FILE).read_bytes()).hexdigest()
    assert report.to_json()["failures"][0].keys() == {
        "file",
        "check",
        "expected",
        "found",
        "detail",
    }


def test_what_is_not_a_bag_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.zip"
    text.write_text("not a zip")
    with pytest.raises(BundleError, match="not a zip"):
        ZipBag(text)
    with pytest.raises(BundleError, match="holds no bag"):
        DirectoryBag(tmp_path)
    with pytest.raises(BundleError, match="no such file"):
        open_bag(tmp_path / "missing.zip")


def test_a_hash_in_the_report_is_what_sha256sum_prints(bag_dir: Path) -> None:
    report = verify(bag_dir)
    for exhibit in report.exhibits:
        data = (bag_dir / exhibit.path).read_bytes()
        assert exhibit.sha256 == hashlib.sha256(data).hexdigest()
