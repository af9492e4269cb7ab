"""Office packages as editors write them, with a witness's name in every place it can hide."""

from __future__ import annotations

import io
import zipfile

from PIL import Image

NAME = "Jane Witness"
COMPANY = "Kyiv Legal Aid"
SERIAL = "SN-0042-XYZ"
PATH = r"C:\Users\jwitness\AppData\Roaming\Microsoft\Templates\Normal.dotm"
SECRETS = (NAME.encode(), COMPANY.encode(), SERIAL.encode(), b"jwitness", b"2026-11-28")
TEXT = "The convoy passed the checkpoint at dawn."

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_ROOT_NS = (
    f'xmlns:w="{W}" xmlns:r="{R}" xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml"'
    ' xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" mc:Ignorable="w14"'
)


def zip_package(parts: dict[str, bytes], *, stored: tuple[str, ...] = ()) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in parts.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 11, 28, 9, 30, 0))
            info.compress_type = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            package.writestr(info, data)
        package.comment = NAME.encode()
    return out.getvalue()


def photo() -> bytes:
    """A JPEG with the camera owner, serial number and GPS position in its Exif."""
    exif = Image.Exif()
    exif[0x013B] = NAME
    exif.get_ifd(0x8769)[0xA431] = SERIAL
    exif.get_ifd(0x8825)[0x0002] = (50.0, 27.0, 0.0)
    out = io.BytesIO()
    Image.new("RGB", (16, 8), (200, 30, 90)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def _rels(*relationships: tuple[str, str, str]) -> bytes:
    items = "".join(
        f'<Relationship Id="{rid}" Type="{kind}" Target="{target}"'
        + (' TargetMode="External"/>' if "://" in target or ":\\" in target else "/>")
        for rid, kind, target in relationships
    )
    return f'<?xml version="1.0"?><Relationships xmlns="{_RELS}">{items}</Relationships>'.encode()


def paragraph(text: str, *, rsid: str = "00A1B2C3") -> str:
    return f'<w:p w:rsidR="{rsid}"><w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>'


def tracked(text: str) -> str:
    """A paragraph with a comment, an insertion and a deletion by the witness."""
    who = f'w:author="{NAME}" w:initials="JW" w:date="2026-11-28T09:30:00Z"'
    return (
        f'<w:p><w:commentRangeStart w:id="0"/><w:ins w:id="1" {who}><w:r><w:t>{text}</w:t></w:r>'
        f'</w:ins><w:del w:id="2" {who}><w:r><w:delText>gone</w:delText></w:r></w:del>'
        '<w:commentRangeEnd w:id="0"/><w:r><w:commentReference w:id="0"/></w:r></w:p>'
    )


def docx(*body: str, parts: dict[str, bytes] | None = None) -> bytes:
    """A DOCX with properties, a thumbnail, comments, people, settings and an Exif photo."""
    document = f"<w:document {_ROOT_NS}><w:body>{''.join(body)}<w:sectPr/></w:body></w:document>"
    comment = (
        f'<w:comment w:id="0" w:author="{NAME}" w:initials="JW" w:date="2026-11-28T09:31:00Z">'
    )
    package = {
        "[Content_Types].xml": _content_types(),
        "_rels/.rels": _rels(
            ("rId1", f"{_DOC_RELS}/officeDocument", "word/document.xml"),
            ("rId2", f"{_RELS}/metadata/core-properties", "docProps/core.xml"),
            ("rId3", f"{_DOC_RELS}/extended-properties", "docProps/app.xml"),
            ("rId4", f"{_DOC_RELS}/custom-properties", "docProps/custom.xml"),
            ("rId5", f"{_RELS}/metadata/thumbnail", "docProps/thumbnail.jpeg"),
        ),
        "docProps/core.xml": _core(),
        "docProps/app.xml": (
            '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-'
            f'properties"><Company>{COMPANY}</Company><Manager>{NAME}</Manager><Pages>1</Pages>'
            "<Application>Microsoft Office Word</Application><TotalTime>42</TotalTime></Properties>"
        ).encode(),
        "docProps/custom.xml": f"<Properties><property>{NAME}</property></Properties>".encode(),
        "docProps/thumbnail.jpeg": photo(),
        "word/document.xml": document.encode(),
        "word/_rels/document.xml.rels": _rels(
            ("rId1", f"{_DOC_RELS}/comments", "comments.xml"),
            ("rId2", "http://schemas.microsoft.com/office/2011/relationships/people", "people.xml"),
            ("rId3", f"{_DOC_RELS}/settings", "settings.xml"),
            ("rId4", f"{_DOC_RELS}/image", "media/image1.jpeg"),
            ("rId5", f"{_DOC_RELS}/hyperlink", "https://example.org/report"),
        ),
        "word/comments.xml": (
            f"<w:comments {_ROOT_NS}>{comment}{paragraph('Check the plates.')}</w:comment>"
            "</w:comments>"
        ).encode(),
        "word/people.xml": (
            '<w15:people xmlns:w15="http://schemas.microsoft.com/office/word/2012/wordml">'
            f'<w15:person w15:author="{NAME}"><w15:presenceInfo w15:providerId="AD" '
            'w15:userId="jwitness@example.org"/></w15:person></w15:people>'
        ).encode(),
        "word/settings.xml": _settings(),
        "word/_rels/settings.xml.rels": _rels(("rId9", f"{_DOC_RELS}/attachedTemplate", PATH)),
        "word/media/image1.jpeg": photo(),
    }
    return zip_package({**package, **(parts or {})})


def _content_types() -> bytes:
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    return (
        '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
        'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
        'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        '<Default Extension="jpeg" ContentType="image/jpeg"/>'
        f'<Override PartName="/word/document.xml" ContentType="{main}"/>'
        '<Override PartName="/docProps/custom.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.custom-properties+xml"/></Types>'
    ).encode()


def _core() -> bytes:
    return (
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
        'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:dcterms="http://purl.org/dc/terms/">'
        f"<dc:creator>{NAME}</dc:creator><cp:lastModifiedBy>{NAME}</cp:lastModifiedBy>"
        "<dc:title>Statement</dc:title><dcterms:created>2026-11-28T09:00:00Z</dcterms:created>"
        "</cp:coreProperties>"
    ).encode()


def _settings() -> bytes:
    return (
        f'<w:settings {_ROOT_NS}><w:attachedTemplate r:id="rId9"/><w:rsids><w:rsidRoot '
        'w:val="00A1B2C3"/><w:rsid w:val="00A1B2C3"/></w:rsids><w:docVars><w:docVar '
        f'w:name="dms" w:val="{NAME}"/></w:docVars><w14:docId w14:val="1A2B3C4D"/></w:settings>'
    ).encode()


ODF_TEXT = "application/vnd.oasis.opendocument.text"
ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xlink="http://www.w3.org/1999/xlink" '
    'xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" '
    'xmlns:config="urn:oasis:names:tc:opendocument:xmlns:config:1.0" '
    'xmlns:officeooo="http://openoffice.org/2009/office" office:version="1.3"'
)
ANNOTATED = (
    f"<text:p>{TEXT}<office:annotation><dc:creator>{NAME}</dc:creator>"
    "<dc:date>2026-11-28T09:30:00</dc:date><meta:creator-initials>JW</meta:creator-initials>"
    "<text:p>Check the plates.</text:p></office:annotation></text:p>"
)
CHANGES = (
    '<text:tracked-changes><text:changed-region xml:id="ct1" text:id="ct1"><text:insertion>'
    f"<office:change-info><dc:creator>{NAME}</dc:creator><dc:date>2026-11-28T09:31:00</dc:date>"
    "</office:change-info></text:insertion></text:changed-region></text:tracked-changes>"
)


def odt(*body: str, parts: dict[str, bytes] | None = None, mimetype_last: bool = False) -> bytes:
    """An ODT with meta.xml, settings, a thumbnail, annotations, changes and an Exif photo."""
    content = f"<office:document-content {ODF_NS}><office:body><office:text>{''.join(body)}"
    package = {
        "mimetype": ODF_TEXT.encode(),
        "content.xml": (
            content + "</office:text></office:body></office:document-content>"
        ).encode(),
        "styles.xml": f"<office:document-styles {ODF_NS}/>".encode(),
        "meta.xml": (
            f"<office:document-meta {ODF_NS}><office:meta><meta:initial-creator>{NAME}"
            f"</meta:initial-creator><dc:creator>{NAME}</dc:creator><meta:generator>LibreOffice"
            "</meta:generator><dc:date>2026-11-28T09:00:00</dc:date><meta:document-statistic "
            'meta:word-count="7"/></office:meta></office:document-meta>'
        ).encode(),
        "settings.xml": (
            f'<office:document-settings {ODF_NS}><config:config-item config:name="PrinterName" '
            f'config:type="string">{COMPANY} printer</config:config-item><config:config-item '
            'config:name="IsKernAsianPunctuation" config:type="boolean">false</config:config-item>'
            "</office:document-settings>"
        ).encode(),
        "Thumbnails/thumbnail.png": b"\x89PNG not really",
        "Pictures/photo.jpg": photo(),
        "META-INF/manifest.xml": _manifest(),
    }
    package = {**package, **(parts or {})}
    if mimetype_last:
        package["mimetype"] = package.pop("mimetype")
    return zip_package(package, stored=("mimetype",))


def _manifest() -> bytes:
    entries = "".join(
        f'<manifest:file-entry manifest:full-path="{path}" manifest:media-type="{kind}"/>'
        for path, kind in (
            ("/", ODF_TEXT),
            ("content.xml", "text/xml"),
            ("Thumbnails/thumbnail.png", "image/png"),
            ("Pictures/photo.jpg", "image/jpeg"),
        )
    )
    return (
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        f"{entries}</manifest:manifest>"
    ).encode()


_X = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_TC = "http://schemas.microsoft.com/office/spreadsheetml/2018/threadedcomments"
_P = "http://schemas.openxmlformats.org/presentationml/2006/main"
_PERSON_REL = "http://schemas.microsoft.com/office/2017/10/relationships"
_TYPES = (
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default '
    b'Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/></Types>'
)


def xlsx() -> bytes:
    """A workbook with a legacy comment, a threaded one, its person, a table and file paths."""
    person = f'displayName="{NAME}" id="{{P1}}" userId="jwitness@example.org" providerId="AD"'
    workbook = (
        f'<workbook xmlns="{_X}" xmlns:r="{R}" xmlns:mc="http://schemas.openxmlformats.org/'
        'markup-compatibility/2006" xmlns:x15ac="http://schemas.microsoft.com/office/'
        'spreadsheetml/2010/11/ac" mc:Ignorable="x15ac">'
        f'<fileSharing userName="{NAME}"/><mc:AlternateContent><mc:Choice Requires="x15ac">'
        r'<x15ac:absPath url="C:\Users\jwitness\Desktop\"/></mc:Choice></mc:AlternateContent>'
        '<sheets><sheet name="Log" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    return zip_package(
        {
            "[Content_Types].xml": _TYPES,
            "_rels/.rels": _rels(("rId1", f"{_DOC_RELS}/officeDocument", "xl/workbook.xml")),
            "xl/workbook.xml": workbook.encode(),
            "xl/_rels/workbook.xml.rels": _rels(
                ("rId1", f"{_DOC_RELS}/worksheet", "worksheets/sheet1.xml"),
                ("rId2", f"{_DOC_RELS}/sharedStrings", "sharedStrings.xml"),
                ("rId3", f"{_PERSON_REL}/person", "persons/person.xml"),
            ),
            "xl/sharedStrings.xml": f'<sst xmlns="{_X}"><si><t>{TEXT}</t></si></sst>'.encode(),
            "xl/worksheets/sheet1.xml": (
                f'<worksheet xmlns="{_X}"><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c>'
                "</row></sheetData></worksheet>"
            ).encode(),
            "xl/comments1.xml": (
                f'<comments xmlns="{_X}"><authors><author>{NAME}</author></authors><commentList>'
                '<comment ref="A1" authorId="0"><text><t>Check the plates.</t></text></comment>'
                "</commentList></comments>"
            ).encode(),
            "xl/persons/person.xml": (
                f'<personList xmlns="{_TC}"><person {person}/></personList>'.encode()
            ),
            "xl/threadedComments/threadedComment1.xml": (
                f'<ThreadedComments xmlns="{_TC}"><threadedComment ref="A1" '
                'dT="2026-11-28T09:30:00.00" personId="{P1}" id="{C1}"><text>Check</text>'
                "</threadedComment></ThreadedComments>"
            ).encode(),
            "xl/tables/table1.xml": (
                f'<table xmlns="{_X}" id="1" name="Evidence" displayName="Evidence" ref="A1:A2"/>'
            ).encode(),
        }
    )


def pptx() -> bytes:
    """A presentation with legacy and modern comment authors."""
    modern = "http://schemas.microsoft.com/office/powerpoint/2018/8/main"
    return zip_package(
        {
            "[Content_Types].xml": _TYPES,
            "_rels/.rels": _rels(("rId1", f"{_DOC_RELS}/officeDocument", "ppt/presentation.xml")),
            "ppt/presentation.xml": f'<p:presentation xmlns:p="{_P}"/>'.encode(),
            "ppt/slides/slide1.xml": (
                f'<p:sld xmlns:p="{_P}" xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/'
                f'main"><p:cSld><p:spTree><a:t>{TEXT}</a:t></p:spTree></p:cSld></p:sld>'
            ).encode(),
            "ppt/commentAuthors.xml": (
                f'<p:cmAuthorLst xmlns:p="{_P}"><p:cmAuthor id="0" name="{NAME}" initials="JW" '
                'lastIdx="1" clrIdx="0"/></p:cmAuthorLst>'
            ).encode(),
            "ppt/comments/comment1.xml": (
                f'<p:cmLst xmlns:p="{_P}"><p:cm authorId="0" dt="2026-11-28T09:30:00.000" '
                'idx="1"><p:text>Check</p:text></p:cm></p:cmLst>'
            ).encode(),
            "ppt/authors.xml": (
                f'<p188:authorLst xmlns:p188="{modern}"><p188:author id="{{A1}}" name="{NAME}" '
                'initials="JW" userId="jwitness@example.org" providerId="AD"/></p188:authorLst>'
            ).encode(),
        }
    )
