"""The tag files of an exhibit bundle, from the log material the service gathered."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from custody.bundle.bagit import BAGIT_DECLARATION, format_bag_info
from custody.bundle.certificate import render_certificate
from custody.bundle.documents import exhibits_csv, verify_md
from custody.bundle.layout import (
    BAG_INFO,
    BAGIT_TXT,
    BUNDLE_JSON,
    CERTIFICATE,
    EXHIBITS_CSV,
    LOG_VKEY,
    ORGANISATION_KEY,
    VERIFY_MD,
    chain_path,
    checkpoint_path,
    exhibit_path,
    number_width,
    receipt_path,
    token_path,
)
from custody.bundle.model import Contents
from custody.bundle.writer import BagWriter


@dataclass(frozen=True, slots=True)
class TokenFile:
    """One TSA's reply over one checkpoint, as the log stored it, with the TSA's chain."""

    size: int
    slot: int
    reply: bytes  # DER TimeStampResp
    chain_pem: str


@dataclass(frozen=True, slots=True)
class LogMaterial:
    checkpoints: Mapping[int, bytes]  # size -> the signed note, verbatim
    receipts: Mapping[int, bytes]  # entry index -> tlog-proof against the bundle's checkpoint
    tokens: Sequence[TokenFile]


def bag_info(contents: Contents, *, oxum: str) -> list[tuple[str, str]]:
    """bag-info.txt: RFC 8493 §2.2.2's reserved labels where they fit, ours after."""
    info = contents.info
    return [
        ("Source-Organization", info.organisation),
        ("Bagging-Date", info.created[:10]),
        ("External-Identifier", info.export_id),
        ("External-Description", info.purpose),
        ("Internal-Sender-Identifier", info.case_id),
        ("Internal-Sender-Description", info.case_title),
        ("Payload-Oxum", oxum),
        ("Custody-Exhibit-Count", str(info.exhibits)),
        ("Custody-Log-Origin", info.log_origin),
        ("Custody-Checkpoint", str(info.checkpoint)),
        ("Custody-Manifest-SHA256", info.manifest_sha256),
    ]


def write_tags(
    writer: BagWriter,
    contents: Contents,
    material: LogMaterial,
    *,
    organisation_pem: bytes,
    font_dir: Path | None = None,
) -> None:
    """Every tag file but the tag manifests: BagIt's, the custody evidence, the documents."""
    writer.add_tag(BAGIT_TXT, BAGIT_DECLARATION)
    writer.add_tag(BAG_INFO, format_bag_info(bag_info(contents, oxum=writer.oxum)))
    writer.add_tag(BUNDLE_JSON, _json(contents.info.to_json()))
    writer.add_tag(LOG_VKEY, f"{contents.vkey}\n".encode())
    writer.add_tag(ORGANISATION_KEY, organisation_pem)
    for size, note in sorted(material.checkpoints.items()):
        writer.add_tag(checkpoint_path(size), note)
    for token in material.tokens:
        writer.add_tag(token_path(token.size, token.slot), token.reply)
        writer.add_tag(chain_path(token.size, token.slot), token.chain_pem.encode("ascii"))
    for index, receipt in sorted(material.receipts.items()):
        writer.add_tag(receipt_path(index), receipt)
    width = number_width(len(contents.exhibits))
    for record in contents.exhibits:
        writer.add_tag(exhibit_path(record.number, width), _json(record.to_json()))
    writer.add_tag(EXHIBITS_CSV, exhibits_csv(contents))
    writer.add_tag(VERIFY_MD, verify_md(contents))
    writer.add_tag(CERTIFICATE, render_certificate(contents, font_dir=font_dir))


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
