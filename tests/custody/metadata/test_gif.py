"""GIF sharing copies: comments and metadata extensions go, frames and timing stay."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from custody.metadata.base import StripError, Stripper
from custody.metadata.copies import make_copy
from custody.metadata.extract import extract_metadata
from custody.metadata.gif import GifStripper
from tests.custody.metadata.office_samples import docx, paragraph
from tests.custody.metadata.strip_checks import (
    apply_edits,
    check_mutant,
    digest_of,
    exiftool,
    fixed_point,
    leaks,
    random_edits,
    strip_bytes,
)

STRIPPER: Stripper = GifStripper()  # mypy checks the protocol
SECRETS = (b"Jane Witness", b"SN-0042-XYZ", b"Kyiv safehouse")
XMP = (
    b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator><rdf:Seq><rdf:li>Jane Witness'
    b'</rdf:li></rdf:Seq></dc:creator></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)


def frames(count: int = 2) -> list[Image.Image]:
    return [Image.new("P", (24, 16), color) for color in ((200, 10, 10), (10, 200, 10))[:count]]


def animation(*, comment: bytes = b"Kyiv safehouse", frames_count: int = 2) -> bytes:
    """An animated GIF as Pillow writes it (loop count, delays, transparency), with a
    comment; `with_metadata` adds XMP and IPTC application extensions and trailing bytes."""
    out = io.BytesIO()
    first, *rest = [f.convert("P") for f in frames(frames_count)]
    first.save(
        out,
        "GIF",
        save_all=bool(rest),
        append_images=rest,
        duration=120,
        loop=0,
        comment=comment,
        transparency=0,
    )
    return out.getvalue()


def application(ident: bytes, payload: bytes) -> bytes:
    blocks = b"".join(
        bytes([len(payload[i : i + 255])]) + payload[i : i + 255]
        for i in range(0, len(payload), 255)
    )
    return b"\x21\xff\x0b" + ident + blocks + b"\x00"


def xmp_extension(packet: bytes) -> bytes:
    """XMP as GIF carries it (XMP part 3 §1.1.2): the packet raw, then a 258-byte "magic
    trailer" that ends any walk through it as data sub-blocks."""
    return b"\x21\xff\x0bXMP DataXMP" + packet + b"\x01" + bytes(range(255, -1, -1)) + b"\x00"


def with_metadata(data: bytes) -> bytes:
    """XMP, IPTC and an unknown application extension before the first image, and bytes
    after the trailer."""
    first_block = data.index(b"\x21\xf9")  # the first graphic control extension
    extensions = (
        xmp_extension(XMP)
        + application(b"MGKIPTC0000", b"\x1c\x02\x50\x00\x0cJane Witness")
        + application(b"CAMERA01SN1", b"SN-0042-XYZ")
    )
    return data[:first_block] + extensions + data[first_block:] + b"SN-0042-XYZ trailing"


def test_a_shared_animation_keeps_frames_timing_and_loop_only() -> None:
    original = with_metadata(animation())
    copy, report = strip_bytes(STRIPPER, original)
    assert [secret for secret in SECRETS if secret in copy] == []
    assert set(report.removed) == {
        "comment",
        "application extension XMP",
        "application extension IPTC",
        "application extension CAMERA01SN1",
        "data after the trailer",
    }
    before, after = Image.open(io.BytesIO(original)), Image.open(io.BytesIO(copy))
    assert after.n_frames == before.n_frames == 2
    for index in range(2):
        before.seek(index)
        after.seek(index)
        assert after.convert("RGBA").tobytes() == before.convert("RGBA").tobytes()
        assert after.info.get("duration") == before.info.get("duration") == 120
    assert after.info.get("loop") == 0
    assert digest_of(STRIPPER, original) == report.content_digest == digest_of(STRIPPER, copy)
    fixed_point(STRIPPER, copy)


def test_the_digest_ignores_only_what_is_dropped() -> None:
    plain = animation(comment=b"")
    assert digest_of(STRIPPER, with_metadata(animation())) == digest_of(STRIPPER, plain)
    other = io.BytesIO()
    Image.new("P", (24, 16), (10, 10, 200)).save(other, "GIF")
    assert digest_of(STRIPPER, other.getvalue()) != digest_of(STRIPPER, plain)


def test_exiftool_finds_nothing_sensitive_in_the_copy(tmp_path: Path) -> None:
    original, copy = tmp_path / "original.gif", tmp_path / "copy.gif"
    original.write_bytes(with_metadata(animation()))
    copy.write_bytes(strip_bytes(STRIPPER, original.read_bytes())[0])
    tags = exiftool([original, copy])
    assert any("Jane Witness" in str(value) for value in tags[original].values())
    assert leaks(tags[copy]) == []
    assert not any("Jane" in str(value) or "Kyiv" in str(value) for value in tags[copy].values())


def test_make_copy_releases_it_after_the_checks(tmp_path: Path) -> None:
    original = tmp_path / "original.gif"
    original.write_bytes(with_metadata(animation()))
    metadata = extract_metadata(original, "image/gif")
    assert metadata.sensitive.names
    made = make_copy(
        original, "image/gif", tmp_path / "copy", original_metadata=metadata,
        extract=extract_metadata,
    )  # fmt: skip
    assert made.media_type == "image/gif"
    assert made.stripper == "gif/1"


def test_plain_text_is_refused() -> None:
    data = animation()
    first_image = data.index(b"\x2c\x00\x00")
    text = b"\x21\x01\x0c" + bytes(12) + b"\x05hello\x00"
    with pytest.raises(StripError, match="plain text"):
        strip_bytes(STRIPPER, data[:first_image] + text + data[first_image:])


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda data: data[:20], "cut short"),
        (lambda data: b"GIF90a" + data[6:], "not a GIF"),
        (lambda data: data.replace(b"\x21\xf9\x04", b"\x21\xf9\x05", 1), "graphic control"),
        (lambda data: data[: data.index(b"\x2c")] + b"\x3b", "without an image"),
        (lambda data: data[: data.index(b"\x2c")] + b"\x99", "introducer"),
    ],
)
def test_damage_is_refused_with_a_reason(damage: object, reason: str) -> None:
    with pytest.raises(StripError, match=reason):
        strip_bytes(STRIPPER, damage(animation()))  # type: ignore[operator]


def test_mutants_are_refused_or_copied_clean() -> None:
    rng = random.Random(20261205)
    seed = with_metadata(animation())
    copied = sum(
        check_mutant(STRIPPER, apply_edits(seed, random_edits(rng)), SECRETS) for _ in range(200)
    )
    assert copied, "no mutant was copied"


def test_a_gif_in_a_document_goes_through_its_stripper(tmp_path: Path) -> None:
    """GIFs inside DOCX and ODF files were refused for want of a stripper."""
    original = tmp_path / "report.docx"
    gif = {"word/media/image2.gif": with_metadata(animation())}
    original.write_bytes(docx(paragraph("The convoy at the gate."), parts=gif))
    metadata = extract_metadata(original, _DOCX)
    made = make_copy(
        original, _DOCX, tmp_path / "copy.docx", original_metadata=metadata,
        extract=extract_metadata,
    )  # fmt: skip
    assert any("image2.gif" in name for name in made.report.removed)
    assert b"Kyiv" not in (tmp_path / "copy.docx").read_bytes()


_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def test_an_icc_profile_survives_and_a_false_one_is_refused() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = animation(frames_count=1)
    first_image = data.index(b"\x2c\x00\x00")
    with_icc = data[:first_image] + application(b"ICCRGBG1012", icc) + data[first_image:]
    copy, report = strip_bytes(STRIPPER, with_icc)
    assert application(b"ICCRGBG1012", icc) in copy  # byte for byte
    assert "comment" in report.removed
    # An "ICC profile" that is something else (here, the bytes of an XMP packet) is refused.
    false = data[:first_image] + application(b"ICCRGBG1012", XMP) + data[first_image:]
    with pytest.raises(StripError, match="ICC"):
        strip_bytes(STRIPPER, false)


def test_a_loop_extension_with_more_in_it_is_refused() -> None:
    data = animation()
    loop = data.index(b"NETSCAPE2.0") + len(b"NETSCAPE2.0")
    assert data[loop : loop + 5] == b"\x03\x01\x00\x00\x00"
    # The terminator replaced by a sub-block: what follows would be read as the loop's.
    damaged = data[: loop + 4] + b"\x0cJane Witness\x00" + data[loop + 4 :]
    with pytest.raises(StripError, match="loop count"):
        strip_bytes(STRIPPER, damaged)


def test_extraction_names_the_comment_and_the_camera_extension_and_not_the_loop() -> None:
    metadata = extract_metadata(io.BytesIO(with_metadata(animation())), "image/gif")
    assert metadata.errors == ()
    assert metadata.fields["GIF:Comment"] == "Kyiv safehouse"
    assert "CAMERA01SN1" in metadata.fields.values()
    assert "NETSCAPE2.0" not in metadata.fields.values()  # a loop count is the format's own
    assert metadata.sensitive.names  # the XMP author
    copy, _ = strip_bytes(STRIPPER, with_metadata(animation()))
    again = extract_metadata(io.BytesIO(copy), "image/gif")
    assert again.fields == {}
    assert not again.sensitive.any
