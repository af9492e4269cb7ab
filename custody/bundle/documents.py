"""The bag's documents for people: each exhibit's custody narrative, exhibits.csv and VERIFY.md.

Pure functions of a bag's `Contents`; the verifier never reads them (it checks the log
entries and proofs they are written from), so they can be plain words rather than a format.
"""

from __future__ import annotations

import csv
import io
import shlex
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from custody.bundle.layout import (
    ORGANISATION_KEY,
    chain_path,
    checkpoint_path,
    manifest_name,
    signature_name,
    tag_manifest_name,
    token_path,
)
from custody.bundle.model import ORIGINAL, Contents, ExhibitRecord
from custody.errors import BundleError

SERVER_TIME_NOTE = (
    "Times in a chain of custody are the custody server's clock when each log entry was "
    "written. A trusted time comes from an independent time-stamp authority (RFC 3161)."
)


def narrative(record: ExhibitRecord, contents: Contents) -> list[str]:
    """One plain sentence per log entry about the exhibit, in log order, e.g.
    "2026-11-28 21:40:00 UTC: collected into case c_123 by p_abc (log entry 12)".

    The time is the entry's own (the server's clock, see SERVER_TIME_NOTE); the actor is
    the pseudonym the log records, never a name.
    """
    lines = []
    for index in record.entries:
        entry = _entry(contents, record, index)
        describe = _SENTENCES.get(str(entry.get("type")), _other)
        what = describe(entry, record, contents.info.export_id)
        actor = entry.get("actor") or "an unrecorded actor"
        lines.append(f"{server_time(entry.get('time'))}: {what} by {actor} (log entry {index})")
    return lines


def server_time(value: Any) -> str:
    """An entry's RFC 3339 time as people read it: "2026-11-28 21:40:00 UTC"."""
    if not isinstance(value, str):
        return "unknown time"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        return value
    return parsed.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_time(value: datetime | None) -> str:
    """A trusted time in ISO 8601 UTC ("2026-11-28T21:40:00Z"), or "" for none."""
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _entry(contents: Contents, record: ExhibitRecord, index: int) -> dict[str, Any]:
    entry = contents.entries.get(index)
    if entry is None:
        raise BundleError(
            f"exhibit {record.number} names log entry {index}, which the bundle does not carry"
        )
    return entry


def _field(entry: Mapping[str, Any], *path: str) -> Any:
    value: Any = entry
    for name in path:
        value = value.get(name) if isinstance(value, Mapping) else None
    return value


def _noun(entry: Mapping[str, Any], record: ExhibitRecord) -> str:
    """What the entry is about, as seen from this exhibit."""
    sha256 = _field(entry, "subject", "sha256")
    if sha256 == record.sha256:
        return "the original" if record.kind == ORIGINAL else "this sharing copy"
    if record.copy_of is not None and sha256 == record.copy_of.original_sha256:
        return "the original"
    return f"the file with SHA-256 {sha256}" if sha256 else "an unnamed file"


def _ingested(entry: Mapping[str, Any], record: ExhibitRecord, _export: str) -> str:
    where = f"collected into case {entry.get('case')}"
    if _field(entry, "subject", "sha256") == record.sha256:
        return where
    return f"{_noun(entry, record)} was {where}"


def _derived(entry: Mapping[str, Any], record: ExhibitRecord, _export: str) -> str:
    copy = _field(entry, "subject", "sha256")
    if copy == record.sha256:
        made = "this sharing copy was made from the original"
    elif _field(entry, "derived_from", "original") == record.sha256:
        made = f"a sharing copy (SHA-256 {copy}) was made from it"
    else:
        made = "a sharing copy was made"
    removed = _field(entry, "derived_from", "removed") or []
    what = f"metadata removed: {', '.join(removed)}" if removed else "no metadata to remove"
    tool = _field(entry, "derived_from", "tool")
    return f"{made} ({what}; tool {tool})" if tool else f"{made} ({what})"


_READS = {
    "metadata": "the sealed metadata of {noun} was read",
    "export": "{noun} was read for export",
}


def _accessed(entry: Mapping[str, Any], record: ExhibitRecord, _export: str) -> str:
    template = _READS.get(str(_field(entry, "access", "kind")), "{noun} was read")
    keyed = _field(entry, "access", "purpose_hmac_sha256")
    plain = _field(entry, "access", "purpose_sha256")
    if keyed:
        why = f"stated purpose recorded, its keyed hash (HMAC-SHA256) {keyed}"
    elif plain:
        why = f"stated purpose recorded, its SHA-256 {plain}"
    else:
        why = "no stated purpose"
    return f"{template.format(noun=_noun(entry, record))} ({why})"


def _exported(entry: Mapping[str, Any], record: ExhibitRecord, export_id: str) -> str:
    export = entry.get("export") or {}
    ident = export.get("id")
    this = " (this bundle)" if ident == export_id else ""
    where = f"exported as exhibit {export.get('exhibit')} of {export.get('exhibits')}"
    if _field(entry, "subject", "sha256") != record.sha256:
        where = f"{_noun(entry, record)} was {where}"
    return f"{where} in export {ident}{this}"


_RECORDED = {
    "transferred": "a transfer of custody was recorded",
    "fixity-checked": "a fixity check of the stored bytes was recorded",
    "annotated": "an annotation was recorded",
    "legal-hold": "a legal hold was recorded",
}


def _other(entry: Mapping[str, Any], record: ExhibitRecord, _export: str) -> str:
    kind = str(entry.get("type"))
    what = _RECORDED.get(kind, f"an event of type '{kind}' was recorded")
    if _field(entry, "subject", "sha256") is None:
        return what
    return f"{what} concerning {_noun(entry, record)}"


_Sentence = Callable[[Mapping[str, Any], ExhibitRecord, str], str]
_SENTENCES: dict[str, _Sentence] = {
    "ingested": _ingested,
    "derived": _derived,
    "accessed": _accessed,
    "exported": _exported,
}

CSV_COLUMNS = (
    "exhibit", "path", "filename", "kind", "media_type", "size", "sha256", "sha512",
    "collected_by", "collected_at", "trusted_time",
    "original_sha256", "removed", "content_kind", "content_sha256", "entries",
)  # fmt: skip


def exhibits_csv(contents: Contents) -> bytes:
    """exhibits.csv: a header row, then one row per exhibit (RFC 4180, CRLF line ends).

    UTF-8 with a byte-order mark, so spreadsheet programs show non-Latin filenames rather
    than guessing a legacy encoding; `csv` readers decode it with "utf-8-sig".
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for record in contents.exhibits:
        collected = _entry(contents, record, record.collected.entry)
        origin = record.copy_of
        copy = ("",) * 4
        if origin is not None:
            removed = "; ".join(origin.removed)
            copy = (origin.original_sha256, removed, origin.content_kind, origin.content_sha256)
        writer.writerow(
            (record.number, record.path, record.filename or "", record.kind, record.media_type,
             record.size, record.sha256, record.sha512, collected.get("actor", ""),
             collected.get("time", ""), iso_time(contents.collected_time(record)), *copy,
             " ".join(str(index) for index in record.entries))
        )  # fmt: skip
    return out.getvalue().encode("utf-8-sig")


def verify_md(contents: Contents) -> bytes:
    """VERIFY.md: how a lawyer or an expert checks the bag by hand with standard tools."""
    info = contents.info
    lines = [
        "# Checking this exhibit bundle",
        "",
        f"This bundle holds {info.exhibits} exhibit(s) for case {info.case_id}, exported by "
        f"{info.organisation} on {info.created} (export {info.export_id}). It is a BagIt bag "
        "(RFC 8493): the exhibits are in `data/`, their custody records, log entries and proofs "
        "in `custody/`; `certificate.pdf` and `exhibits.csv` describe them for people.",
        "",
        "You can check it yourself, offline, without the organisation's server. You need "
        "`unzip`, `sha256sum` and `openssl` (version 3), which every Linux system has (on "
        "macOS, `shasum -a 256 -c` does what `sha256sum -c` does, and OpenSSL 3 comes from "
        "Homebrew: the built-in LibreSSL cannot check the signature), and, for the last "
        "step, the `custody` command. Run these commands in the folder holding "
        f"`{contents.root}.zip`; each must succeed (`OK`, `Verified Successfully`).",
        "",
        "```sh",
        *_commands(contents),
        "```",
        "",
        *_steps(contents),
    ]
    return "\n".join(lines).encode("utf-8") + b"\n"


def _commands(contents: Contents) -> list[str]:
    info, root = contents.info, shlex.quote(contents.root)
    size = info.checkpoint
    commands = [
        f"unzip -q {root}.zip",
        f"cd {root}",
        f"echo '{info.manifest_sha256}  {manifest_name('sha256')}' | sha256sum -c",
        f"sha256sum -c {manifest_name('sha256')}",
        f"sha256sum -c {tag_manifest_name('sha256')}",
    ]
    for algorithm in ("sha256", "sha512"):
        commands.append(
            f"openssl pkeyutl -verify -pubin -inkey {ORGANISATION_KEY} -rawin "
            f"-in {tag_manifest_name(algorithm)} -sigfile {signature_name(algorithm)}"
        )
    for slot in contents.tokens.get(size, ()):
        # The log asks for the TSA's certificate in every token (RFC 3161 certReq), so
        # the chain file serves as trust anchors only and no -untrusted is needed.
        commands.append(
            f"openssl ts -verify -in {token_path(size, slot)} -data {checkpoint_path(size)} "
            f"-CAfile {chain_path(size, slot)}"
        )
    vkey = "'" + contents.vkey.replace("'", "'\"'\"'") + "'"
    commands += ["cd ..", f"custody verify-bundle {root}.zip --vkey {vkey}"]
    return commands


def _steps(contents: Contents) -> list[str]:
    info, size = contents.info, contents.info.checkpoint
    return [
        "## What each step proves, and what it does not",
        "",
        "1. `unzip`, `cd`: unpack the bundle. Nothing is proven yet.",
        f"2. The `echo` line: the list of exhibit files has the SHA-256 {info.manifest_sha256}, "
        "printed on the certificate and recorded in the custody log when the bundle was made.",
        "3. `sha256sum -c manifest-sha256.txt`: every exhibit file is, byte for byte, the file "
        "listed, and the certificate cites each by this SHA-256 (`sha512sum -c "
        "manifest-sha512.txt` checks SHA-512 too). It does not prove who made the list.",
        "4. `sha256sum -c tagmanifest-sha256.txt`: the records, log entries, proofs, "
        "certificate and lists are those the bundle was made with.",
        "5. `openssl pkeyutl`: the organisation whose key is in `custody/organisation.pem` "
        "signed those lists, and so everything above. It proves nothing about who holds that "
        "key (see below).",
        f"6. `openssl ts`: an independent time-stamp authority saw the custody log's checkpoint "
        f"{size} (the log's state covering every entry in this bundle) at the time the token "
        "states, so nothing in it can have been added later (`openssl ts -reply -text -in "
        "FILE.tsr` shows that time). It trusts the authority's root certificate in the "
        "bundle (see below).",
        *_checkpoint_notes(contents),
        "7. `custody verify-bundle`: checks all of the above, then that every log entry is "
        "in the signed log (Merkle inclusion and consistency proofs), that the exhibit records "
        "agree with the entries, and that the log recorded this very export. It "
        "names every file that fails.",
        "",
        *_trust(contents),
    ]


def _trust(contents: Contents) -> list[str]:
    return [
        "## Trust: obtain the keys independently",
        "",
        "The log's key (`--vkey`), the organisation's key (`custody/organisation.pem`) and "
        "the time-stamp authorities' roots (`custody/checkpoints/*/tsa*.pem`) travel inside "
        "the bundle, so on their own they only prove that the bundle is consistent: whoever "
        "altered it could have replaced them too. To rely on them, get them from a source "
        "you trust (the organisation's published keys, the authority's website) and give "
        "them to the verifier: `--vkey KEY`, `--org-key organisation.pem`, `--tsa-ca "
        "root.pem`.",
        "",
        "## Sharing copies",
        "",
        "A sharing copy is an original with identifying metadata (GPS position, device serial, "
        "author) removed; its record names the original's SHA-256, what was removed (names "
        "only) and a content digest that is the same for both. Whoever later holds the "
        "original can check that this copy shows the same content with "
        f"`custody verify-bundle {shlex.quote(contents.root)}.zip --original FILE`.",
        "",
        SERVER_TIME_NOTE,
    ]


def _checkpoint_notes(contents: Contents) -> list[str]:
    size = contents.info.checkpoint
    notes = []
    if not contents.tokens.get(size):
        notes.append(f"   No time-stamp over checkpoint {size} is in the bundle yet.")
    if pending := contents.info.timestamps_pending.get(size):
        notes.append(f"   Still pending from: {', '.join(pending)}.")
    if earlier := sorted(s for s, slots in contents.tokens.items() if slots and s != size):
        folders = ", ".join(str(s) for s in earlier[:10]) + (", ..." if len(earlier) > 10 else "")
        notes.append(
            "   The folders for earlier checkpoints (which date each exhibit's collection: "
            f"{folders}) are checked the same way, with their number in place of {size}."
        )
    return notes
