"""The bag's certificate.pdf: integrity and chain of custody of each exhibit, for a court."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import TTFFont

from custody.bundle.documents import SERVER_TIME_NOTE, narrative, server_time
from custody.bundle.layout import VERIFY_MD
from custody.bundle.model import ORIGINAL, Contents, CopyOrigin, ExhibitRecord
from custody.errors import BundleError

DEFAULT_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
TITLE = "Certificate of integrity and chain of custody"
LABEL_WIDTH = 40  # mm; an A4 page less 15 mm margins leaves 180 mm
LINE = 4.6  # mm, at 9 pt
HASH_PT = 8  # a 64-character SHA-256 in a monospace font at 8 pt is 109 mm: one line


@dataclass(frozen=True, slots=True)
class _Fonts:
    sans: str
    mono: str
    printable: Callable[[str], bool]  # whether the fonts can draw a character

    def text(self, value: str) -> str:
        return "".join(c if self.printable(c) else "?" for c in value)


def render_certificate(contents: Contents, *, font_dir: Path | None = None) -> bytes:
    """The certificate as PDF bytes, the same bytes for the same contents.

    Text is set in DejaVu Sans and DejaVu Sans Mono from `font_dir` (by default the system's
    DejaVu directory), so Cyrillic, Greek, Arabic and accented filenames print. Without
    those fonts it falls back to the PDF core fonts (Helvetica, Courier), which cover
    Latin-1 only: any other character prints as "?", as does a character DejaVu lacks.
    A line with right-to-left or combining characters (an Arabic or Hebrew filename) is
    shaped by HarfBuzz: Arabic letters join, and the Unicode bidirectional algorithm orders
    the line. Other lines are not shaped: shaping every line made a certificate of a
    thousand exhibits ten times slower and six times larger.
    """
    pdf = _Certificate(_creation_date(contents.info.created), contents.root)
    fonts = _load_fonts(pdf, font_dir)
    pdf.fonts_in_use = fonts
    pdf.can_shape = fonts.sans != "Helvetica"  # HarfBuzz shapes TrueType fonts only
    pdf.set_title(TITLE)
    pdf.set_author(fonts.text(contents.info.organisation))
    pdf.set_subject(fonts.text(f"Case {contents.info.case_id}, export {contents.info.export_id}"))
    pdf.add_page()
    _header(pdf, contents)
    for record in contents.exhibits:
        _exhibit(pdf, contents, record)
    _how_to_verify(pdf, contents)
    return bytes(pdf.output())


class _Certificate(FPDF):
    def __init__(self, created: datetime, root: str) -> None:
        super().__init__(format="A4")
        self.set_creation_date(created)  # not the clock: the same bag, the same bytes
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(auto=True, margin=18)
        self.bundle_name = root
        self.fonts_in_use = _Fonts("Helvetica", "Courier", _latin1)
        self.can_shape = False  # set once TrueType fonts are in use
        self._shaping = False

    # Every line is measured and drawn through these two: each turns shaping on for text
    # that needs it, and off again for the rest.
    def cell(
        self,
        w: float | None = None,
        h: float | None = None,
        text: str = "",
        *args: Any,
        **kwargs: Any,
    ) -> bool:
        self._shape_if_needed(text)
        return bool(super().cell(w, h, text, *args, **kwargs))

    def get_string_width(self, s: str, normalized: bool = False, markdown: bool = False) -> float:
        self._shape_if_needed(s)
        return float(super().get_string_width(s, normalized, markdown))

    def _shape_if_needed(self, text: str) -> None:
        wanted = self.can_shape and _needs_shaping(text)
        if wanted != self._shaping:
            self.set_text_shaping(wanted)
            self._shaping = wanted

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(self.fonts_in_use.sans, size=7)
        self.set_text_color(90)
        text = (
            f"To verify: unzip {self.bundle_name}.zip and follow {VERIFY_MD} inside it "
            f"(sha256sum, openssl, custody verify-bundle).   Page {self.page_no()}/{{nb}}"
        )
        self.cell(0, 4, self.fonts_in_use.text(text), align="C")
        self.set_text_color(0)


def _creation_date(created: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(created)
    except ValueError as exc:
        raise BundleError(f"the bundle's date {created!r} is not RFC 3339") from exc
    if parsed.tzinfo is None:
        raise BundleError(f"the bundle's date {created!r} has no time zone")
    return parsed.astimezone(UTC)


def _needs_shaping(text: str) -> bool:
    """Right-to-left letters (Arabic, Hebrew, Syriac...) or combining marks."""
    return not text.isascii() and any(
        unicodedata.bidirectional(c) in _SHAPED_BIDI or unicodedata.combining(c) for c in text
    )


_SHAPED_BIDI = frozenset({"R", "AL", "AN"})


def _latin1(char: str) -> bool:
    return 0x20 <= ord(char) < 0x7F or 0xA0 <= ord(char) <= 0xFF


def _load_fonts(pdf: FPDF, font_dir: Path | None) -> _Fonts:
    directory = font_dir if font_dir is not None else DEFAULT_FONT_DIR
    sans, bold, mono = (
        directory / name for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf")
    )
    if not (sans.is_file() and mono.is_file()):
        return _Fonts("Helvetica", "Courier", _latin1)
    pdf.add_font("DejaVuSans", "", sans)
    pdf.add_font("DejaVuSans", "B", bold if bold.is_file() else sans)
    pdf.add_font("DejaVuSansMono", "", mono)
    covered = _characters(pdf, "dejavusans") & _characters(pdf, "dejavusansmono")
    return _Fonts("DejaVuSans", "DejaVuSansMono", lambda c: c.isprintable() and ord(c) in covered)


def _characters(pdf: FPDF, key: str) -> set[int]:
    font = pdf.fonts[key]
    return set(font.cmap) if isinstance(font, TTFFont) else set()


def _row(pdf: _Certificate, label: str, value: str, *, mono: bool = False) -> None:
    """A label and its value; a monospace value stays on one line (a hash must not break)."""
    fonts = pdf.fonts_in_use
    pdf.set_font(fonts.sans, size=9)
    pdf.cell(LABEL_WIDTH, LINE, fonts.text(label))
    if mono:
        pdf.set_font(fonts.mono, size=HASH_PT)
        pdf.cell(0, LINE, fonts.text(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    else:
        _write(pdf, value, height=LINE, indent=LABEL_WIDTH)


def _paragraph(pdf: _Certificate, text: str, *, size: float = 9, indent: float = 0) -> None:
    pdf.set_font(pdf.fonts_in_use.sans, size=size)
    _write(pdf, text, height=size * 0.5, indent=indent)


def _heading(pdf: _Certificate, text: str, *, size: float = 11) -> None:
    pdf.set_font(pdf.fonts_in_use.sans, "B", size=size)
    _write(pdf, text, height=size * 0.55)
    pdf.ln(1)


def _write(pdf: _Certificate, text: str, *, height: float, indent: float = 0) -> None:
    """Left-aligned lines in the current font, from the left margin plus `indent`.

    Not fpdf2's multi_cell: it re-measures the line for every character it adds, which
    made a thousand exhibits take a quarter of a minute.
    """
    width = pdf.epw - indent
    for line in _wrap(pdf, pdf.fonts_in_use.text(text), width):
        pdf.set_x(pdf.l_margin + indent)
        pdf.cell(width, height, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _wrap(pdf: FPDF, text: str, width: float) -> list[str]:
    if pdf.get_string_width(text) <= width:  # most rows: one measurement
        return [text]
    lines, line = [], ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if pdf.get_string_width(candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        *full, line = _pieces(pdf, word, width)
        lines += full
    return [*lines, line]


def _pieces(pdf: FPDF, word: str, width: float) -> list[str]:
    """A word, or the parts of a word too wide for a line (a long path, a key)."""
    if pdf.get_string_width(word) <= width:
        return [word]
    pieces, piece = [], ""
    for char in word:
        if piece and pdf.get_string_width(piece + char) > width:
            pieces.append(piece)
            piece = ""
        piece += char
    return [*pieces, piece]


def _header(pdf: _Certificate, contents: Contents) -> None:
    info = contents.info
    _heading(pdf, TITLE, size=16)
    _row(pdf, "Organisation", info.organisation)
    _row(pdf, "Case", f"{info.case_id}: {info.case_title}")
    _row(pdf, "Purpose", info.purpose)
    _row(pdf, "Date", server_time(info.created))
    _row(pdf, "Export", info.export_id)
    _row(pdf, "Exhibits", str(info.exhibits))
    _row(pdf, "Custody log", info.log_origin)
    _row(pdf, "Checkpoint", f"the log's first {info.checkpoint} entries, signed")
    _row(pdf, "Log verifier key", "")
    pdf.set_font(pdf.fonts_in_use.mono, size=7)
    _write(pdf, contents.vkey, height=3.6)
    _row(pdf, "Payload manifest", info.manifest_sha256, mono=True)
    for size, names in sorted(info.timestamps_pending.items()):
        _row(pdf, "Time-stamps pending", f"checkpoint {size}: {', '.join(names)}")
    pdf.ln(2)
    _paragraph(
        pdf,
        f"This certificate lists the {info.exhibits} exhibit(s) in this bundle, each by its "
        "SHA-256 digest, with its chain of custody from the custody log. Every statement below "
        "is taken from a log entry that the bundle proves is part of the signed log; the "
        "payload manifest's SHA-256 above is recorded in the log's export entries. "
        f"{SERVER_TIME_NOTE}",
    )
    pdf.ln(2)


def _exhibit(pdf: _Certificate, contents: Contents, record: ExhibitRecord) -> None:
    needs = 45 if record.copy_of is None else 85  # mm: start where its hashes fit
    if pdf.get_y() > pdf.page_break_trigger - needs:
        pdf.add_page()
    pdf.set_draw_color(160)
    pdf.line(pdf.l_margin, pdf.get_y(), pdf.w - pdf.r_margin, pdf.get_y())
    pdf.ln(1.5)
    kind = "original" if record.kind == ORIGINAL else "sharing copy"
    _heading(pdf, f"Exhibit {record.number}: {record.filename or record.path} ({kind})")
    _row(pdf, "File in the bundle", record.path)
    _row(pdf, "Media type", record.media_type)
    _row(pdf, "Size", f"{record.size:,} bytes")
    _row(pdf, "SHA-256", record.sha256, mono=True)
    _collection(pdf, contents, record)
    if record.copy_of is not None:
        _copy(pdf, record.copy_of)
    pdf.set_font(pdf.fonts_in_use.sans, "B", size=9)
    pdf.cell(0, LINE, "Chain of custody", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for line in narrative(record, contents):
        _paragraph(pdf, f"- {line}", size=8.5, indent=3)
    pdf.ln(2)


def _collection(pdf: _Certificate, contents: Contents, record: ExhibitRecord) -> None:
    entry = contents.entries.get(record.collected.entry, {})
    what = "Collected" if record.copy_of is None else "Original collected"
    trusted = contents.collected_time(record)
    when = f"{server_time(entry.get('time'))} by the server's clock; "
    if trusted is None:
        when += "no trusted timestamp yet"
    else:
        when += (
            f"no later than {trusted.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC by a trusted "
            f"time-stamp (RFC 3161) on log checkpoint {record.collected.checkpoint}"
        )
    _row(pdf, what, when)
    _row(pdf, f"{what} by", f"{entry.get('actor', 'unknown')} (a pseudonym)")


def _copy(pdf: _Certificate, origin: CopyOrigin) -> None:
    _row(pdf, "Original's SHA-256", origin.original_sha256, mono=True)
    _row(pdf, "Removed", "; ".join(origin.removed) or "nothing (no metadata found)")
    _row(pdf, "Made with", f"{origin.tool}, profile {origin.profile}")
    _row(pdf, "Content proof", origin.content_kind)
    _row(pdf, "", origin.content_sha256, mono=True)
    _paragraph(
        pdf,
        f"The content digest ({origin.content_kind}) covers what the file shows, not its "
        "metadata. The same digest computed over the original gives this value, which shows "
        "the copy shows the same content as the original (custody verify-bundle --original).",
        size=8,
        indent=LABEL_WIDTH,
    )


def _how_to_verify(pdf: _Certificate, contents: Contents) -> None:
    pdf.ln(3)
    _heading(pdf, "How to verify")
    _paragraph(
        pdf,
        f"Unzip {contents.root}.zip and follow {VERIFY_MD} inside it: sha256sum checks every "
        "exhibit against its SHA-256, openssl checks the organisation's signature and the "
        "trusted time-stamps, and custody verify-bundle checks the custody log's proofs. "
        "Obtain the log's verifier key, the organisation's key and the time-stamp "
        "authorities' root certificates independently (for example from the organisation's "
        "publication) to rely on them rather than on the copies in the bundle.",
    )
