"""The members an OOXML package may hold, and the rules for each (ECMA-376 Part 2, OPC)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from urllib.parse import unquote

from custody.metadata.base import StripError
from custody.metadata.office_ooxml_rules import AppRules, CoreRules, PartRules, PeopleRules
from custody.metadata.office_package import (
    DIRECTORY,
    MEDIA,
    XML,
    Kind,
    Treatment,
    drop,
    refuse,
)
from custody.metadata.office_xml import Action, Name, Replace, Rules, rewrite
from custody.metadata.office_zip import Package
from custody.metadata.paths import local_path

_PKG_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_CONTENT_TYPES = "http://schemas.openxmlformats.org/package/2006/content-types"
_DOC = r"(?:word|xl|ppt)"
_DROPPED: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), why)
    for pattern, why in (
        (r"^docProps/custom\.xml$", "custom properties"),
        (r"^docProps/thumbnail\.\w+$", "thumbnail"),
        (r"^customXml/", "custom XML data"),
        (rf"^{_DOC}/printerSettings/printerSettings\d+\.bin$", "printer settings"),
        (r"^word/people\.xml$", "people"),
        (r"^ppt/revisionInfo\.xml$", "revision information"),
        (r"^_xmlsignatures/", "digital signature"),  # OPC signatures name the signer
        (r"^docMetadata/LabelInfo\.xml$", "sensitivity label"),  # MS-OFFCRYPTO: the tenant
    )
)
_REFUSED: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), why)
    for pattern, why in (
        (r"/embeddings/", "embedded object"),
        (r"vbaProject\.bin$|vbaData\.xml$|/customizations\.xml$", "macros"),
        (r"/activeX/", "ActiveX control"),
        (r"/fonts/", "embedded font"),
        (r"/externalLinks/", "link to an external workbook"),
        (r"^xl/connections\.xml$|/queryTables/", "external data connection"),
    )
)
# Each known part (Part 1, [MS-DOCX], [MS-XLSX], [MS-PPTX]) and its root element's local
# name: a part whose root is another (app.xml renamed footnotes.xml) is refused.
_PARTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(f"^{pattern}$", re.IGNORECASE), root)
    for pattern, root in (
        (r"\[Content_Types\]\.xml", "Types"),
        (r"docProps/core\.xml", "coreProperties"),
        (r"docProps/app\.xml", "Properties"),
        (r"word/document\.xml", "document"),
        (r"word/glossary/document\.xml", "glossaryDocument"),
        (r"word/(?:glossary/)?(?:styles|stylesWithEffects)\.xml", "styles"),
        (r"word/(?:glossary/)?fontTable\.xml", "fonts"),
        (r"word/(?:glossary/)?commentsExtended\.xml", "commentsEx"),
        (r"word/(?:glossary/)?header\d+\.xml", "hdr"),
        (r"word/(?:glossary/)?footer\d+\.xml", "ftr"),
        (
            r"word/(?:glossary/)?(settings|webSettings|numbering|footnotes|endnotes|comments"
            r"|commentsIds|commentsExtensible)\.xml",
            "",  # the root is named as the part
        ),
        (r"(?:word|xl|ppt)/theme/theme\d+\.xml", "theme"),
        (r"(?:word|xl|ppt)/charts/chart\d+\.xml", "chartSpace"),
        (r"(?:word|xl|ppt)/charts/colors\d+\.xml", "colorStyle"),
        (r"(?:word|xl|ppt)/charts/style\d+\.xml", "chartStyle"),
        (r"(?:word|xl|ppt)/diagrams/data\d+\.xml", "dataModel"),
        (r"(?:word|xl|ppt)/diagrams/layout\d+\.xml", "layoutDef"),
        (r"(?:word|xl|ppt)/diagrams/quickStyle\d+\.xml", "styleDef"),
        (r"(?:word|xl|ppt)/diagrams/colors\d+\.xml", "colorsDef"),
        (r"(?:word|xl|ppt)/diagrams/drawing\d+\.xml", "drawing"),
        (r"xl/drawings/drawing\d+\.xml", "wsDr"),
        (r"(?:xl|ppt)/drawings/vmlDrawing\d+\.vml", "xml"),
        (r"xl/(workbook|calcChain|metadata)\.xml", ""),
        (r"xl/styles\.xml", "styleSheet"),
        (r"xl/sharedStrings\.xml", "sst"),
        (r"xl/worksheets/sheet\d+\.xml", "worksheet"),
        (r"xl/chartsheets/sheet\d+\.xml", "chartsheet"),
        (r"xl/dialogsheets/sheet\d+\.xml", "dialogsheet"),
        (r"xl/comments\d+\.xml", "comments"),
        (r"xl/threadedComments/threadedComment\d+\.xml", "ThreadedComments"),
        (r"xl/persons/person\d*\.xml", "personList"),
        (r"xl/tables/table\d+\.xml", "table"),
        (r"xl/pivotTables/pivotTable\d+\.xml", "pivotTableDefinition"),
        (r"xl/pivotCache/(pivotCacheDefinition|pivotCacheRecords)\d+\.xml", ""),
        (r"ppt/presentation\.xml", "presentation"),
        (r"ppt/presProps\.xml", "presentationPr"),
        (r"ppt/viewProps\.xml", "viewPr"),
        (r"ppt/tableStyles\.xml", "tblStyleLst"),
        (r"ppt/commentAuthors\.xml", "cmAuthorLst"),
        (r"ppt/authors\.xml", "authorLst"),
        (r"ppt/slides/slide\d+\.xml", "sld"),
        (r"ppt/slideLayouts/slideLayout\d+\.xml", "sldLayout"),
        (r"ppt/slideMasters/slideMaster\d+\.xml", "sldMaster"),
        (r"ppt/notesSlides/notesSlide\d+\.xml", "notes"),
        (r"ppt/notesMasters/notesMaster\d+\.xml", "notesMaster"),
        (r"ppt/handoutMasters/handoutMaster\d+\.xml", "handoutMaster"),
        (r"ppt/comments/(?:comment\d+|modernComment_\w+)\.xml", "cmLst"),
    )
)
_RELS = re.compile(r"^(?:(.*)/)?_rels/([^/]*)\.rels$", re.IGNORECASE)
# The kept parts that list people (their names and accounts): see PeopleRules.
_PEOPLE = re.compile(
    r"^(?:xl/persons/person\d*|ppt/authors|ppt/commentAuthors)\.xml$", re.IGNORECASE
)
_MEDIA = re.compile(rf"^{_DOC}/(?:glossary/)?media/[^/]+$", re.IGNORECASE)
# The parts whose character data is the document's text (the content digest).
_TEXT = re.compile(
    r"""^(?:word/(?:glossary/)?(?:document|header\d+|footer\d+|footnotes|endnotes|comments)\.xml
    |xl/(?:sharedStrings|worksheets/sheet\d+|comments\d+)\.xml
    |ppt/(?:slides/slide|notesSlides/notesSlide)\d+\.xml)$""",
    re.IGNORECASE | re.VERBOSE,
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # RFC 3986 §3.1: not a part name
_MAIN_PARTS = ("word/document.xml", "xl/workbook.xml", "ppt/presentation.xml")
# External relationships that only say where the author's template or mail-merge data lived
# (Part 1 document settings): dropped with the settings elements that use them.
_EXTERNAL_DROPPED = frozenset(
    {"attachedTemplate", "mailMergeSource", "mailMergeHeaderSource", "recipientData"}
)


class OoxmlFamily:
    """The OOXML side of the office stripper; one instance per strip.

    Every member must match an allowlist of part names, and its root element the name.
    Metadata parts (custom properties, thumbnails, people, custom XML, printer settings,
    signatures, labels) are dropped with the relationships and content-type overrides that
    name them; embedded objects, macros, ActiveX controls, embedded fonts, external data
    links, linked files and unknown members are refused.
    """

    def __init__(self) -> None:
        self._dropped: frozenset[str] = frozenset()
        self._dropped_ids: dict[str, set[str]] = {}  # source part -> relationship IDs

    def classify(self, name: str) -> Treatment:
        if name.endswith("/"):
            return DIRECTORY
        for pattern, why in _DROPPED:
            if pattern.search(name):
                return drop(why)
        for pattern, why in _REFUSED:
            if pattern.search(name):
                return refuse(why)
        rels = _RELS.match(name)
        if rels and _source(rels) and self.classify(_source(rels)).kind is Kind.DROP:
            return drop("relationships of a dropped part")
        if self.root(name):
            return XML
        return MEDIA if _MEDIA.match(name) else refuse("unknown package member")

    def prepare(self, package: Package, dropped: frozenset[str]) -> None:
        present = package.names.keys() - dropped
        for required in ("[Content_Types].xml", "_rels/.rels"):
            if required.casefold() not in present:
                raise StripError(f"not an OPC package: no {required}")
        if not any(main.casefold() in present for main in _MAIN_PARTS):
            raise StripError("no main document part (word/, xl/ or ppt/)")
        self._dropped = dropped
        for info in package.members:
            if _RELS.match(info.filename) and info.filename.casefold() not in dropped:
                data, rules = package.read(info), self.rules(info.filename)
                rewrite(info.filename, data, rules, root="Relationships")

    def rules(self, name: str) -> Rules:
        key = name.casefold()
        if key == "[content_types].xml":
            return _ContentTypes(self._dropped)
        rels = _RELS.match(name)
        if rels:
            source = _source(rels)
            return _Relationships(
                source, self._dropped, self._dropped_ids.setdefault(source, set())
            )
        if key == "docprops/core.xml":
            return CoreRules()
        if key == "docprops/app.xml":
            return AppRules()
        dropped_ids = frozenset(self._dropped_ids.get(key, ()))
        if _PEOPLE.match(name):
            return PeopleRules(dropped_ids)
        return PartRules(dropped_ids)

    def counted(self, name: str) -> bool:
        return bool(_TEXT.match(name))

    def root(self, name: str) -> str:
        if _RELS.match(name):
            return "Relationships"
        for pattern, root in _PARTS:
            found = pattern.match(name)
            if found:
                return root or found.group(1)
        return ""


def _source(rels: re.Match[str]) -> str:
    """The part whose _rels folder holds `rels`, casefolded; "" for the package root."""
    folder, name = rels.group(1), rels.group(2)
    return posixpath.join(folder or "", name).casefold() if name else ""


class _Relationships(Rules):
    """OPC relationships: those to dropped parts go; unknown external links are refused."""

    def __init__(self, source: str, dropped: frozenset[str], dropped_ids: set[str]) -> None:
        self._folder = posixpath.dirname(source)
        self._dropped = dropped
        self._dropped_ids = dropped_ids

    def element(self, path: Sequence[Name], attrs: Mapping[Name, str]) -> Action | Replace:
        if path[-1] != (_PKG_RELS, "Relationship"):
            return Action.KEEP
        kind = attrs.get(("", "Type"), "").rpartition("/")[2]
        target = attrs.get(("", "Target"), "")
        mode = attrs.get(("", "TargetMode"), "Internal")
        if mode not in ("Internal", "External"):
            raise StripError(f"a relationship with TargetMode {mode!r}")
        if mode == "Internal" and not _SCHEME.match(target):
            if _resolve(self._folder, target) not in self._dropped:
                return Action.KEEP
        elif kind not in _EXTERNAL_DROPPED:
            if kind != "hyperlink":
                raise StripError(f"an external {kind!r} relationship (a linked file)")
            if local_path(target):
                raise StripError("a hyperlink to a local file (its path names folders)")
            return Action.KEEP  # a link in the text is content
        self._dropped_ids.add(attrs.get(("", "Id"), ""))
        return Action.DROP


def _resolve(folder: str, target: str) -> str:
    path = unquote(target.partition("#")[0])
    joined = path.lstrip("/") if path.startswith("/") else posixpath.join(folder, path)
    return posixpath.normpath(joined).casefold()


class _ContentTypes(Rules):
    """The OPC content types stream: overrides for parts that are no longer in the package go."""

    def __init__(self, dropped: frozenset[str]) -> None:
        self._dropped = dropped

    def element(self, path: Sequence[Name], attrs: Mapping[Name, str]) -> Action | Replace:
        if path[-1] == (_CONTENT_TYPES, "Override"):
            part = unquote(attrs.get(("", "PartName"), "")).lstrip("/").casefold()
            if part in self._dropped:
                return Action.DROP
        return Action.KEEP
