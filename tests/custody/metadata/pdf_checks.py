"""PDF test helpers: synthetic witness documents, and checks written apart from the stripper."""

from __future__ import annotations

import contextlib
import io
import re
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream, String
from PIL import Image

# What a witness's tools write into a document; none of it may reach a copy.
AUTHOR = "Jane Witness"
SECRETS = (
    b"Jane Witness",  # Info /Author, XMP dc:creator, annotation authors, signer
    b"SN-0042-XYZ",  # camera serial in the embedded JPEG's Exif
    b"CustodyCam",  # camera make in the JPEG's Exif
    b"Kyiv safehouse",  # the Title and the JPEG comment
    b"uuid:7f1e0c55-witness",  # XMP DocumentID
    b"D:20240501",  # Info and annotation dates
    b"Witness laptop",  # PieceInfo private data
    b"alert(",  # JavaScript
)
TEXT = b"Statement of events"
# ExifTool tags a copy may show: file facts, the PDF's structure, and ICC profiles (kept
# verbatim, as for images). Anything else, Author, Creator, Producer, Title, Subject,
# Keywords, the dates, custom Info entries, any XMP group, is metadata.
ALLOWED_TAGS = re.compile(
    r"^(SourceFile|ExifTool:ExifToolVersion|System:\w+|File:\w+|ICC[-_]\w+:[\w-]+"
    r"|PDF:(PDFVersion|Linearized|PageCount|Language|PageMode|PageLayout|TaggedPDF|HasXFA))$"
)


def exif_jpeg() -> bytes:
    """A phone photo: Exif with make, artist and serial, an XMP packet and a comment."""
    image = Image.new("RGB", (48, 32), (200, 30, 90))
    exif = Image.Exif()
    exif[0x010F] = "CustodyCam"
    exif[0x013B] = AUTHOR
    exif.get_ifd(0x8769)[0xA431] = "SN-0042-XYZ"
    out = io.BytesIO()
    xmp = f"<x:xmpmeta><dc:creator>{AUTHOR}</dc:creator></x:xmpmeta>".encode()
    image.save(out, "JPEG", exif=exif, comment=b"Kyiv safehouse", xmp=xmp)
    return out.getvalue()


def xmp_packet(creator: str = AUTHOR) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/" '
        'xmpMM:DocumentID="uuid:7f1e0c55-witness">'
        f"<dc:creator><rdf:Seq><rdf:li>{creator}</rdf:li></rdf:Seq></dc:creator>"
        '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


def compressed(pdf: pikepdf.Pdf, data: bytes, **keys: Any) -> Stream:
    """A Flate stream: values hidden in compressed data must be found all the same."""
    stream = pikepdf.Stream(pdf, zlib.compress(data), **keys)
    stream.Filter = Name.FlateDecode
    return stream


def new_page(pdf: pikepdf.Pdf, content: bytes) -> Dictionary:
    font = Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica)
    page = pdf.add_blank_page(page_size=(300, 300))
    page.obj.Resources = Dictionary(Font=Dictionary(F1=font), XObject=Dictionary())
    page.obj.Contents = pdf.make_stream(content)
    return page.obj


def saved(pdf: pikepdf.Pdf) -> bytes:
    out = io.BytesIO()
    # XMP packets as written: pikepdf would otherwise re-serialise the catalog's in UTF-8.
    pdf.save(out, object_stream_mode=pikepdf.ObjectStreamMode.disable, fix_metadata_version=False)
    return out.getvalue()


def document(build: Callable[[pikepdf.Pdf], object], *, text: bytes = TEXT) -> bytes:
    """A one-page PDF showing `text`, changed by `build` before saving."""
    pdf = pikepdf.new()
    new_page(pdf, b"BT /F1 12 Tf 20 250 Td (" + text + b") Tj ET")
    build(pdf)
    return saved(pdf)


def witness_pdf() -> bytes:
    """A one-page statement carrying every kind of metadata the stripper removes."""
    pdf = pikepdf.new()
    page = new_page(
        pdf, b"BT /F1 12 Tf 20 250 Td (" + TEXT + b") Tj ET q 48 0 0 32 20 20 cm /Im1 Do Q"
    )
    page.Resources.XObject.Im1 = pdf.make_stream(
        exif_jpeg(), Type=Name.XObject, Subtype=Name.Image, Width=48, Height=32,
        ColorSpace=Name.DeviceRGB, BitsPerComponent=8, Filter=Name.DCTDecode,
    )  # fmt: skip
    page.PieceInfo = Dictionary(Witness=Dictionary(Private=String("Witness laptop")))
    page.LastModified = String("D:20240501120000Z")
    page.Thumb = pdf.make_stream(b"\x00" * 3, Width=1, Height=1, ColorSpace=Name.DeviceRGB)
    page.Metadata = compressed(pdf, xmp_packet(), Type=Name.Metadata, Subtype=Name.XML)
    note = pdf.make_indirect(
        Dictionary(
            Type=Name.Annot, Subtype=Name.Text, Rect=[10, 10, 30, 30], Contents=String("check"),
            T=String(AUTHOR), M=String("D:20240501120000Z"), NM=String("note-1"),
            CreationDate=String("D:20240501110000Z"),
        )
    )  # fmt: skip
    popup = pdf.make_indirect(
        Dictionary(Type=Name.Annot, Subtype=Name.Popup, Rect=[30, 30, 90, 90], Parent=note)
    )
    popup.T = String(AUTHOR)
    note.Popup = popup
    page.Annots = Array([note, popup])
    page.AA = Dictionary(O=Dictionary(S=Name.JavaScript, JS=String("app.alert(1)")))
    pdf.Root.OpenAction = Dictionary(S=Name.JavaScript, JS=String("app.alert('Jane Witness')"))
    script = Dictionary(S=Name.JavaScript, JS=String("app.alert(2)"))
    pdf.Root.Names = Dictionary(JavaScript=Dictionary(Names=Array([String("init"), script])))
    pdf.Root.Metadata = compressed(pdf, xmp_packet(), Type=Name.Metadata, Subtype=Name.XML)
    pdf.trailer.Info = pdf.make_indirect(
        Dictionary(
            Author=String(AUTHOR), Title=String("Kyiv safehouse report"),
            Creator=String("CustodyWriter 1.0"), Producer=String("CustodyPDF 2.0"),
            CreationDate=String("D:20240501100000Z"), Company=String("Witness Collective"),
        )
    )  # fmt: skip
    return saved(pdf)


def jp2(*extra_boxes: bytes) -> bytes:
    """A JPEG 2000 file from Pillow, with boxes inserted before its codestream."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 30)).save(out, "JPEG2000")
    data = out.getvalue()
    at = data.index(b"jp2c") - 4
    return data[:at] + b"".join(extra_boxes) + data[at:]


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def with_incremental_update(data: bytes, author: str) -> bytes:
    """Append a revision (ISO 32000-2 §7.5.6) whose new Info replaces the old one."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        number, root = int(pdf.trailer.Size), pdf.Root.objgen[0]
    previous = int(data[data.rindex(b"startxref") + 9 :].split()[0])
    body = f"{number} 0 obj\n<< /Author ({author}) >>\nendobj\n".encode()
    xref_at = len(data) + len(body)
    tail = (
        f"xref\n{number} 1\n{len(data):010d} 00000 n \ntrailer\n<< /Size {number + 1} "
        f"/Root {root} 0 R /Info {number} 0 R /Prev {previous} >>\nstartxref\n{xref_at}\n%%EOF\n"
    )
    return data + body + tail.encode()


# --- checks written apart from the stripper -----------------------------------------------


def forms(value: str) -> set[bytes]:
    """A value as UTF-8, UTF-16BE (with or without BOM) and PDFDocEncoding."""
    found = {value.encode(), value.encode("utf-16-be")}
    with contextlib.suppress(UnicodeEncodeError):  # not every value has a PDFDocEncoding
        found.add(value.encode("pdfdoc"))
    return found


def decoded(stream: Stream) -> bytes:
    try:
        return bytes(stream.read_bytes())
    except pikepdf.PdfError:  # image codecs qpdf does not undo at this level
        return bytes(stream.read_raw_bytes())


def content_streams(pdf: pikepdf.Pdf) -> set[tuple[int, int]]:
    """Page content streams and every form XObject in the pages' resources, recursively."""
    found: set[tuple[int, int]] = set()
    stack: list[object] = []
    for page in pdf.pages:
        contents = page.obj.get("/Contents")
        for stream in contents if isinstance(contents, Array) else [contents]:
            if isinstance(stream, Stream):
                found.add(stream.objgen)
        stack.append(page.obj.get("/Resources"))
    while stack:
        resources = stack.pop()
        xobjects = resources.get("/XObject") if isinstance(resources, Dictionary) else None
        for xobject in xobjects.values() if isinstance(xobjects, Dictionary) else []:
            if not isinstance(xobject, Stream) or xobject.get("/Subtype") != Name.Form:
                continue
            if xobject.objgen not in found:
                found.add(xobject.objgen)
                stack.append(xobject.get("/Resources"))
    return found


def strings(pdf: pikepdf.Pdf) -> Iterator[bytes]:
    """Every string in every object, direct ones included."""
    stack: list[object] = [pdf.trailer, *pdf.objects]
    while stack:
        obj = stack.pop()
        if isinstance(obj, String):
            yield bytes(obj)
        elif isinstance(obj, Array):
            stack.extend(item for item in obj if not getattr(item, "is_indirect", False))
        elif isinstance(obj, Dictionary | Stream):
            stack.extend(v for v in obj.values() if not getattr(v, "is_indirect", False))


def leftovers(copy: bytes, identities: Iterable[str], descriptions: Iterable[str]) -> list[str]:
    """Values found in a copy: identities anywhere but in page content; descriptions in any
    non-font, non-image stream, unless the page content shows them."""
    with pikepdf.open(io.BytesIO(copy)) as pdf:
        content = content_streams(pdf)
        streams = [obj for obj in pdf.objects if isinstance(obj, Stream)]
        shown = b"\n".join(decoded(obj) for obj in streams if obj.objgen in content)
        fonts = {
            font.objgen
            for obj in pdf.objects
            if isinstance(obj, Dictionary)
            for key in ("/FontFile", "/FontFile2", "/FontFile3")
            if isinstance(font := obj.get(key), Stream)
        }
        others = {
            obj.objgen: decoded(obj)
            for obj in streams
            if obj.objgen not in content and obj.get("/Subtype") != Name.Image
        }
        everywhere = [copy, b"\x00\x00\x00\x00".join(strings(pdf)), *others.values()]
    texts = [data for objgen, data in others.items() if objgen not in fonts]
    found = [v for v in identities if any(f in d for f in forms(v) for d in everywhere)]
    for value in descriptions:
        if not any(f in shown for f in forms(value)):
            found.extend(value for f in forms(value) if any(f in data for data in texts))
    return sorted(set(found))


# ExifTool tags whose values name someone or something (a leak anywhere outside page content)
# and tags that describe the document (a leak only in non-font streams the pages do not show).
IDENTITY_TAGS = (
    "PDF:Author", "PDF:Company", "XMP-dc:Creator", "XMP-pdf:Author", "XMP-xmpMM:DocumentID",
    "XMP-xmpMM:InstanceID",
)  # fmt: skip
DESCRIPTIVE_TAGS = (
    "PDF:Title", "PDF:Subject", "PDF:Keywords", "PDF:Creator", "PDF:Producer",
    "XMP-xmp:CreatorTool", "XMP-pdf:Producer", "XMP-dc:Title", "XMP-dc:Description",
)  # fmt: skip


def exiftool_values(record: dict[str, Any], tags: tuple[str, ...]) -> list[str]:
    """The values of `tags` that could not match by chance: 4 characters, a letter."""
    found = []
    for tag in tags:
        value = record.get(tag, [])
        for item in value if isinstance(value, list) else [value]:
            text = str(item).strip()
            if len(text) >= 4 and any(map(str.isalpha, text)) and text not in ("True", "False"):
                found.append(text)
    return found


def annotation_authors(data: bytes) -> list[str]:
    """/T of markup annotations (a widget's /T is its field name)."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return [
            str(annot.T).strip()
            for page in pdf.pages
            for annot in page.obj.get("/Annots", [])
            if isinstance(annot, Dictionary)
            and isinstance(annot.get("/T"), String)
            and annot.get("/Subtype") != Name.Widget
            and "/FT" not in annot
            and len(str(annot.T).strip()) >= 4
        ]


def full_rewrite_problems(copy: bytes) -> list[str]:
    """How a copy falls short of one revision holding only reachable objects."""
    problems = []
    if copy.count(b"%%EOF") != 1 or copy.count(b"startxref") != 1:
        problems.append("more than one revision")
    if len(re.findall(rb"(?m)^xref\r?$", copy)) + copy.count(b"/XRefStm") != 1:
        problems.append("more than one cross-reference section")
    if b"/Prev" in copy[copy.rindex(b"trailer") :]:
        problems.append("trailer points at an earlier revision")
    with pikepdf.open(io.BytesIO(copy), conversion_mode="explicit") as pdf:
        if {obj.objgen for obj in pdf.objects} != reachable_objects(pdf):
            problems.append("objects not reachable from the trailer")
    return problems


def reachable_objects(pdf: pikepdf.Pdf) -> set[tuple[int, int]]:
    """Indirect objects reachable from the trailer, scalars included."""
    seen: set[tuple[int, int]] = set()
    stack: list[object] = [pdf.trailer]
    while stack:
        obj = stack.pop()
        if getattr(obj, "is_indirect", False):
            if obj.objgen in seen:  # type: ignore[attr-defined]
                continue
            seen.add(obj.objgen)  # type: ignore[attr-defined]
        if isinstance(obj, Array):
            stack.extend(obj)
        elif isinstance(obj, Dictionary | Stream):
            stack.extend(obj.values())
    return seen


def exiftool_leaks(record: dict[str, Any]) -> list[str]:
    return [key for key in record if not ALLOWED_TAGS.match(key)]
