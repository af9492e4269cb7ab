"""Tests for custody.bundle.documents: the narrative, exhibits.csv and VERIFY.md (run for real)."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
import shutil
import subprocess
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from custody.bundle import layout, organisation
from custody.bundle.bagit import BAGIT_DECLARATION
from custody.bundle.documents import CSV_COLUMNS, exhibits_csv, narrative, verify_md
from custody.bundle.model import (
    ORIGINAL,
    SHARING_COPY,
    BundleInfo,
    Collection,
    Contents,
    CopyOrigin,
    ExhibitRecord,
)
from custody.bundle.writer import BagWriter
from custody.errors import BundleError
from custody.events import (
    Access,
    CustodyEvent,
    Derivation,
    Export,
    Subject,
    accessed,
    decode_entry,
    derived,
    encode_entry,
    exported,
    ingested,
)
from custody.purpose import commit_purpose
from custody.tsp.identity import generate_tsa
from custody.tsp.issuance import issue_response
from custody.tsp.protocol import make_request, new_nonce, parse_request

TIME = datetime(2026, 11, 28, 21, 40, tzinfo=UTC)
TRUSTED = datetime(2026, 11, 28, 22, 5, 30, tzinfo=UTC)
CASE, EXPORT_ID = "c_123", "x_court1"
COLLECTOR, READER, EXPORTER, STRIPPER = "p_abc", "p_reader", "p_export", "p_strip"
PURPOSE = "Submission to the District Court, case 4-117/2026"
PURPOSE_KEY = bytes(range(32))
REMOVED = ("APP1 Exif", "APP13 IPTC")
VKEY = "custody.example.org/log+a1b2c3d4+AcnJ9ZxTmXgkqEyM0U4yGvVf3qdDuQ1x8TZqWBd7bUkE"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def logged(event: CustodyEvent) -> dict[str, Any]:
    """What a bag carries of an event: its entry, encoded and decoded as the log does."""
    return decode_entry(encode_entry(event))


def subject_of(data: bytes, media_type: str = "image/jpeg") -> Subject:
    return Subject(sha256(data), len(data), media_type)


@dataclass
class Bag:
    """Contents under construction, and the payload bytes each exhibit path holds."""

    records: list[ExhibitRecord]
    entries: dict[int, dict[str, Any]]
    payload: dict[str, bytes]

    def log(self, event: CustodyEvent) -> int:
        self.entries[len(self.entries)] = logged(event)
        return len(self.entries) - 1


def make_bag(files: Sequence[tuple[str | None, bytes]], *, copy_of_first: bool = False) -> Bag:
    """Originals ingested a minute apart, the first read with a stated purpose, and (if
    asked) a sharing copy of the first; exported entries are added by `make_contents`."""
    bag = Bag([], {}, {})
    count = len(files) + copy_of_first
    width = layout.number_width(count)
    for number, (filename, data) in enumerate(files, start=1):
        at = TIME + timedelta(minutes=number - 1)
        entry = bag.log(
            ingested(event_id=f"e{number}", time=at, actor=COLLECTOR, case=CASE,
                     subject=subject_of(data))
        )  # fmt: skip
        indices = [entry]
        if number == 1:
            access = Access("original", commit_purpose(PURPOSE, PURPOSE_KEY))
            indices.append(
                bag.log(accessed(event_id="r1", time=at + timedelta(hours=2), actor=READER,
                                 case=CASE, subject=subject_of(data), access=access))
            )  # fmt: skip
        path = layout.payload_name(number, width, filename, ".jpg")
        bag.payload[path] = data
        bag.records.append(
            ExhibitRecord(number, path, filename, ORIGINAL, sha256(data),
                          hashlib.sha512(data).hexdigest(), len(data), "image/jpeg",
                          tuple(indices), Collection(entry, 10, ()))
        )  # fmt: skip
    if copy_of_first:
        add_copy(bag, width)
    return bag


def add_copy(bag: Bag, width: int) -> None:
    original = bag.records[0]
    data = bag.payload[original.path][:-4] + b"copy"
    content = sha256(b"frames of " + bag.payload[original.path])
    derivation = Derivation(original.sha256, "share/1", "jpeg/1", REMOVED, "jpeg-scans", content)
    entry = bag.log(
        derived(event_id="d1", time=TIME + timedelta(days=1), actor=STRIPPER, case=CASE,
                subject=subject_of(data), derivation=derivation)
    )  # fmt: skip
    number = len(bag.records) + 1
    path = layout.payload_name(number, width, layout.shared_filename(original.filename), ".jpg")
    bag.payload[path] = data
    origin = CopyOrigin(original.sha256, "share/1", "jpeg/1", REMOVED, "jpeg-scans", content)
    bag.records.append(
        ExhibitRecord(number, path, layout.shared_filename(original.filename), SHARING_COPY,
                      sha256(data), hashlib.sha512(data).hexdigest(), len(data), "image/jpeg",
                      (original.collected.entry, entry), original.collected, origin)
    )  # fmt: skip


def make_contents(
    bag: Bag,
    *,
    manifest_sha256: str = "ab" * 32,
    trusted: bool = True,
    tokens: tuple[int, ...] = (0, 1),
    root: str = "case-c_123-exhibits",
) -> Contents:
    """Export every record as this bundle's exhibits and wrap it all up as a bag's contents."""
    records, total = [], len(bag.records)
    for record in bag.records:
        committed = commit_purpose(PURPOSE, PURPOSE_KEY)
        export = Export(EXPORT_ID, record.number, total, manifest_sha256, committed)
        entry = bag.log(
            exported(event_id=f"x{record.number}", time=TIME + timedelta(days=3), actor=EXPORTER,
                     case=CASE, subject=Subject(record.sha256, record.size, "image/jpeg"),
                     export=export)
        )  # fmt: skip
        records.append(replace(record, entries=(*record.entries, entry)))
    checkpoint = len(bag.entries)
    pending = {} if tokens else {checkpoint: ("tsa-b",)}
    info = BundleInfo(EXPORT_ID, CASE, "Detentions in the north", "Médecins du Droit", PURPOSE,
                      PURPOSE_KEY.hex(), "2026-12-01T09:30:00.000000Z", "custody.example.org/log",
                      checkpoint, manifest_sha256, total, pending)  # fmt: skip
    return Contents(
        root=root,
        info=info,
        exhibits=tuple(records),
        entries=dict(bag.entries),
        trusted_times={10: TRUSTED if trusted else None},
        tokens={checkpoint: tokens},
        vkey=VKEY,
    )


# --- the narrative ---------------------------------------------------------------------


def test_narrative_tells_an_originals_custody_in_log_order() -> None:
    contents = make_contents(make_bag([("IMG_0001.jpg", b"photo one")]))
    purpose = commit_purpose(PURPOSE, PURPOSE_KEY)
    assert narrative(contents.exhibits[0], contents) == [
        "2026-11-28 21:40:00 UTC: collected into case c_123 by p_abc (log entry 0)",
        "2026-11-28 23:40:00 UTC: the original was read (stated purpose recorded, its keyed "
        f"hash (HMAC-SHA256) {purpose}) by p_reader (log entry 1)",
        "2026-12-01 21:40:00 UTC: exported as exhibit 1 of 1 in export x_court1 (this bundle) "
        "by p_export (log entry 2)",
    ]


def test_narrative_of_a_sharing_copy_starts_with_its_originals_collection() -> None:
    contents = make_contents(make_bag([("IMG_0001.jpg", b"photo one")], copy_of_first=True))
    lines = narrative(contents.exhibits[1], contents)
    assert lines == [
        "2026-11-28 21:40:00 UTC: the original was collected into case c_123 by p_abc "
        "(log entry 0)",
        "2026-11-29 21:40:00 UTC: this sharing copy was made from the original (metadata "
        "removed: APP1 Exif, APP13 IPTC; tool jpeg/1) by p_strip (log entry 2)",
        "2026-12-01 21:40:00 UTC: exported as exhibit 2 of 2 in export x_court1 (this bundle) "
        "by p_export (log entry 4)",
    ]


def test_narrative_of_an_original_names_a_copy_made_from_it_and_another_export() -> None:
    bag = make_bag([("a.jpg", b"photo one")], copy_of_first=True)
    original = bag.records[0]
    copy_sha256 = bag.records[1].sha256
    earlier = Export("x_earlier", 4, 9, "cd" * 32, "ef" * 32)
    unread = Access("original")
    extra = [
        bag.log(exported(event_id="old", time=TIME, actor=EXPORTER, case=CASE,
                         subject=subject_of(b"photo one"), export=earlier)),
        bag.log(accessed(event_id="r2", time=TIME, actor=READER, case=CASE,
                         subject=subject_of(b"photo one"), access=unread)),
    ]  # fmt: skip
    bag.records[0] = replace(original, entries=(*original.entries, 2, *extra))
    lines = narrative(bag.records[0], make_contents(bag))
    assert lines[2] == (
        f"2026-11-29 21:40:00 UTC: a sharing copy (SHA-256 {copy_sha256}) was made from it "
        "(metadata removed: APP1 Exif, APP13 IPTC; tool jpeg/1) by p_strip (log entry 2)"
    )
    assert lines[3].endswith(
        "exported as exhibit 4 of 9 in export x_earlier by p_export (log entry 3)"
    )
    assert lines[4].endswith("the original was read (no stated purpose) by p_reader (log entry 4)")


def test_narrative_has_a_sentence_for_other_and_unknown_event_types() -> None:
    bag = make_bag([("a.jpg", b"photo one")])
    checked = CustodyEvent("fixity-checked", "f1", TIME, "p_auditor", case=CASE,
                           subject=subject_of(b"photo one"))  # fmt: skip
    fixity = bag.log(checked)
    bag.entries[len(bag.entries)] = {"type": "teleported", "time": "2027-01-02T03:04:05Z",
                                     "actor": "p_future", "v": 2}  # fmt: skip
    bag.records[0] = replace(bag.records[0], entries=(fixity, len(bag.entries) - 1))
    contents = make_contents(bag)
    assert narrative(contents.exhibits[0], contents)[:2] == [
        "2026-11-28 21:40:00 UTC: a fixity check of the stored bytes was recorded concerning "
        "the original by p_auditor (log entry 2)",
        "2027-01-02 03:04:05 UTC: an event of type 'teleported' was recorded by p_future "
        "(log entry 3)",
    ]


def test_narrative_refuses_an_entry_the_bundle_does_not_carry() -> None:
    contents = make_contents(make_bag([("a.jpg", b"photo one")]))
    record = replace(contents.exhibits[0], entries=(0, 99))
    with pytest.raises(BundleError, match="log entry 99"):
        narrative(record, contents)


# --- exhibits.csv ------------------------------------------------------------------------


def read_csv(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_exhibits_csv_has_a_row_per_exhibit_with_the_payload_hashes() -> None:
    files = [("Протокол допроса, стр. 1.jpg", b"photo one"), (None, b"photo two")]
    contents = make_contents(make_bag(files, copy_of_first=True))
    data = exhibits_csv(contents)
    assert data.startswith(codecs.BOM_UTF8)
    assert data.splitlines()[0].decode("utf-8-sig").split(",") == list(CSV_COLUMNS)
    rows = read_csv(data)
    copy_bytes = b"photo" + b"copy"
    assert [row["sha256"] for row in rows] == [
        sha256(b"photo one"),
        sha256(b"photo two"),
        sha256(copy_bytes),
    ]
    assert rows[1]["sha512"] == hashlib.sha512(b"photo two").hexdigest()
    assert rows[0]["filename"] == "Протокол допроса, стр. 1.jpg"
    assert rows[0]["path"] == "data/001-Протокол допроса, стр. 1.jpg"
    assert rows[1]["filename"] == ""
    assert rows[0]["collected_by"] == COLLECTOR
    assert rows[1]["collected_at"] == "2026-11-28T21:41:00.000000Z"
    assert rows[0]["trusted_time"] == "2026-11-28T22:05:30Z"
    assert rows[0]["entries"] == "0 1 4"
    assert rows[0]["original_sha256"] == rows[0]["removed"] == ""


def test_exhibits_csv_describes_a_sharing_copy() -> None:
    contents = make_contents(make_bag([("a.jpg", b"photo one")], copy_of_first=True),
                             trusted=False)  # fmt: skip
    copy = read_csv(exhibits_csv(contents))[1]
    assert copy["kind"] == SHARING_COPY
    assert copy["original_sha256"] == sha256(b"photo one")
    assert copy["removed"] == "APP1 Exif; APP13 IPTC"
    assert copy["content_kind"] == "jpeg-scans"
    assert copy["content_sha256"] == sha256(b"frames of photo one")
    assert copy["collected_at"] == "2026-11-28T21:40:00.000000Z"  # the original's ingest
    assert copy["trusted_time"] == ""
    assert copy["entries"] == "0 2 4"


# --- VERIFY.md ---------------------------------------------------------------------------


def shell_block(markdown: bytes) -> str:
    blocks = re.findall(r"```sh\n(.*?)```", markdown.decode("utf-8"), re.DOTALL)
    assert len(blocks) == 1
    return str(blocks[0])


def test_verify_md_names_the_bags_files_and_every_token() -> None:
    contents = make_contents(make_bag([("a.jpg", b"photo one")]), root="bundle-7")
    text = verify_md(contents)
    commands = shell_block(text).splitlines()
    n = contents.info.checkpoint
    assert commands[:2] == ["unzip -q bundle-7.zip", "cd bundle-7"]
    assert "sha256sum -c manifest-sha256.txt" in commands
    assert "sha256sum -c tagmanifest-sha256.txt" in commands
    assert (
        "openssl pkeyutl -verify -pubin -inkey custody/organisation.pem -rawin "
        "-in tagmanifest-sha512.txt -sigfile tagmanifest-sha512.txt.sig"
    ) in commands
    assert [c for c in commands if c.startswith("openssl ts")] == [
        f"openssl ts -verify -in custody/checkpoints/{n}/tsa{k}.tsr -data "
        f"custody/checkpoints/{n}/checkpoint -CAfile custody/checkpoints/{n}/tsa{k}.pem"
        for k in (0, 1)
    ]
    assert commands[-2:] == ["cd ..", f"custody verify-bundle bundle-7.zip --vkey '{VKEY}'"]
    for option in (b"--vkey", b"--tsa-ca", b"--org-key", b"--original FILE"):
        assert option in text
    assert len(text.splitlines()) <= 120


def test_verify_md_without_tokens_says_so_and_runs_no_openssl_ts() -> None:
    contents = make_contents(make_bag([("a.jpg", b"photo one")]), tokens=())
    text = verify_md(contents)
    assert "openssl ts" not in shell_block(text)
    n = contents.info.checkpoint
    assert f"No time-stamp over checkpoint {n} is in the bundle yet".encode() in text
    assert b"Still pending from: tsa-b." in text


TOOLS = ("unzip", "sha256sum", "openssl", "sh")


def write_bag(directory: Path, bag: Bag, *, root: str) -> Contents:
    """A real zipped bag: payload, manifests, organisation signature, two TSAs' tokens."""
    key = organisation.generate_key()
    sink = (directory / f"{root}.zip").open("wb")
    writer = BagWriter(sink, root, time=TIME)
    for path, data in bag.payload.items():
        writer.add_payload(path, io.BytesIO(data), size=len(data))
    contents = make_contents(bag, manifest_sha256=sha256(writer.payload_manifests()), root=root)
    n = contents.info.checkpoint
    note = f"custody.example.org/log\n{n}\n{'A' * 43}=\n\n— custody.example.org/log sig\n"
    writer.add_tag(layout.BAGIT_TXT, BAGIT_DECLARATION)
    writer.add_tag(layout.VERIFY_MD, verify_md(contents))
    writer.add_tag(layout.EXHIBITS_CSV, exhibits_csv(contents))
    writer.add_tag(layout.ORGANISATION_KEY, organisation.public_pem(key))
    writer.add_tag(layout.checkpoint_path(n), note.encode())
    for slot in contents.tokens[n]:
        tsa = generate_tsa(f"TSA {slot}", now=TIME)
        request = parse_request(make_request(note.encode(), nonce=new_nonce()))
        reply = issue_response(request, tsa=tsa, serial=1, policy="1.3.6.1.4.1.4146.2.3",
                               gen_time=TRUSTED)  # fmt: skip
        writer.add_tag(layout.token_path(n, slot), reply)
        writer.add_tag(layout.chain_path(n, slot), tsa.chain_pem().encode())
    writer.finish(lambda data: organisation.sign(key, data))
    sink.close()
    return contents


def run_verify_md(directory: Path, contents: Contents) -> subprocess.CompletedProcess[str]:
    """Run VERIFY.md's commands as written, with a stand-in `custody` that logs its call."""
    script = directory / "verify.sh"
    script.write_text(shell_block(verify_md(contents)))
    stub = directory / "bin" / "custody"
    stub.parent.mkdir()
    stub.write_text(f'#!/bin/sh\necho "$PWD" "$@" > {directory / "custody.called"}\n')
    stub.chmod(0o755)
    env = {"PATH": f"{stub.parent}:/usr/local/bin:/usr/bin:/bin", "LC_ALL": "C.UTF-8"}
    return subprocess.run(["sh", "-e", str(script)], cwd=directory, env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


needs_tools = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in TOOLS), reason=f"needs {', '.join(TOOLS)}"
)


@needs_tools
def test_verify_md_commands_succeed_on_an_untampered_bag(tmp_path: Path) -> None:
    bag = make_bag([("Свидетель.jpg", b"photo one"), ("صورة 2.jpg", b"photo two")],
                   copy_of_first=True)  # fmt: skip
    contents = write_bag(tmp_path, bag, root="case-c_123")
    result = run_verify_md(tmp_path, contents)
    assert result.returncode == 0, result.stdout + result.stderr
    checked = [line.removesuffix(": OK") for line in result.stdout.splitlines()]
    # The manifest's own hash, 3 payload files, 11 tag files (4 of them the TSAs'), 2 tokens.
    files = [
        line for line in checked if line not in ("Signature Verified Successfully", "Verification")
    ]
    assert len(files) == 1 + 3 + 11
    assert "data/002-صورة 2.jpg" in checked
    assert checked.count("Signature Verified Successfully") == 2
    assert checked.count("Verification") == 2
    called = (tmp_path / "custody.called").read_text().split()
    assert called == [str(tmp_path), "verify-bundle", "case-c_123.zip", "--vkey", VKEY]


def rewrite_zip(path: Path, name: str, change: bytes) -> None:
    with zipfile.ZipFile(path) as old:
        members = [(info, old.read(info)) for info in old.infolist()]
    with zipfile.ZipFile(path, "w") as new:
        for info, data in members:
            new.writestr(info, data + change if info.filename.endswith(name) else data)


@needs_tools
@pytest.mark.parametrize("name", ["-Свидетель.jpg", "tagmanifest-sha512.txt", "tsa1.tsr"])
def test_verify_md_commands_fail_on_a_tampered_bag(tmp_path: Path, name: str) -> None:
    bag = make_bag([("Свидетель.jpg", b"photo one")])
    contents = write_bag(tmp_path, bag, root="case-c_123")
    rewrite_zip(tmp_path / "case-c_123.zip", name, b"\x00")
    result = run_verify_md(tmp_path, contents)
    assert result.returncode != 0
    assert not (tmp_path / "custody.called").exists()
