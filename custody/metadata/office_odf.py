"""The members an ODF package may hold, and the rules for each (ODF 1.3 / ISO/IEC 26300)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from custody.metadata.base import StripError
from custody.metadata.office_package import (
    DIRECTORY,
    MEDIA,
    XML,
    Kind,
    Treatment,
    drop,
    refuse,
)
from custody.metadata.office_xml import Action, Name, Replace, Rules
from custody.metadata.office_zip import Package
from custody.metadata.paths import local_path

ODF_TYPES = frozenset(
    {
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
        "application/vnd.oasis.opendocument.graphics",
    }
)
FIXED_DATE = "1980-01-01T00:00:00"  # the copy's ZIP time, for dates the schema requires
_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_META = "urn:oasis:names:tc:opendocument:xmlns:meta:1.0"
_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_CONFIG = "urn:oasis:names:tc:opendocument:xmlns:config:1.0"
_MANIFEST = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
_DC = "http://purl.org/dc/elements/1.1/"
_XLINK = "http://www.w3.org/1999/xlink"
_OFFICEOOO = "http://openoffice.org/2009/office"  # LibreOffice's extensions
_LOEXT = "urn:org:documentfoundation:names:experimental:office:xmlns:loext:1.0"
_MEMBERS: tuple[tuple[re.Pattern[str], Treatment], ...] = tuple(
    (re.compile(pattern), treatment)
    for pattern, treatment in (
        (r"^mimetype$", Treatment(Kind.MIMETYPE)),
        (r"^(?:content|styles|meta|settings)\.xml$|^META-INF/manifest\.xml$", XML),
        (r"^META-INF/(?:documentsignatures|macrosignatures)\.xml$", drop("digital signature")),
        (r"^Thumbnails/", drop("thumbnail")),
        (r"^Configurations2/", drop("user interface configuration")),
        (r"^layout-cache$", drop("layout cache")),
        (r"^manifest\.rdf$", drop("RDF metadata")),  # metadata manifest: any RDF at all
        (r"^Pictures/[^/]+$", MEDIA),
        (r"^(?:Object \d+|ObjectReplacements)/", refuse("embedded object")),
        (r"^(?:Basic|Scripts)/", refuse("macros")),
        (r"/$", DIRECTORY),
    )
)
# The root element each XML member must have (Part 3, document structure).
_ROOTS = {
    "content.xml": "document-content",
    "styles.xml": "document-styles",
    "meta.xml": "document-meta",
    "settings.xml": "document-settings",
    "META-INF/manifest.xml": "manifest",
}
# Part 3 text fields (sender, author, creator, printed-by) whose text is a person's name,
# from the user profile or meta.xml. Emptying them would change the text.
_PERSON_FIELDS = re.compile(
    r"^(?:author-name|author-initials|sender-.+|initial-creator|creator|printed-by)$"
)
# Part 3: elements that embed what their xlink:href points at (images, objects, sources).
_EMBEDS = frozenset({"image", "object", "object-ole", "plugin", "applet", "floating-frame"})
_EXTERNAL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:|/|\.\./)")
# meta.xml's kept elements, root first (Part 3, office:document-meta), and the counts kept on
# the last (Part 3, the *-count attributes of meta:document-statistic).
_META_PATH = ((_OFFICE, "document-meta"), (_OFFICE, "meta"), (_META, "document-statistic"))
_STATISTICS = frozenset(
    f"{kind}-count"
    for kind in (
        "cell", "character", "draw", "frame", "image", "non-whitespace-character", "object",
        "ole-object", "page", "paragraph", "row", "sentence", "syllable", "table", "word",
    )
)  # fmt: skip
# settings.xml free-text items kept: view names, units, locale and layers.
_SETTINGS_TEXT = frozenset(
    {
        "ViewId", "PrinterIndependentLayout", "ActiveTable", "Language", "Country", "Variant",
        "unit", "VisibleLayers", "PrintableLayers", "LockedLayers",
    }
)  # fmt: skip


class OdfFamily:
    """The ODF side of the office stripper; one instance per strip.

    meta.xml keeps only the document statistics. In content.xml and styles.xml the authors
    and times of annotations and tracked changes go (a change's required date becomes a fixed
    one), as do LibreOffice's revision session IDs; fields that print a person's name and
    links to local files are refused. settings.xml loses its free-text items (printer, data
    sources, palettes). Thumbnails, signatures, UI configuration, layout caches and
    manifest.rdf are dropped with their manifest entries; embedded objects, macros and
    unknown members are refused.
    """

    def __init__(self) -> None:
        self._kept: frozenset[str] = frozenset()

    def classify(self, name: str) -> Treatment:
        for pattern, treatment in _MEMBERS:
            if pattern.search(name):
                return treatment
        return refuse("unknown package member")

    def prepare(self, package: Package, dropped: frozenset[str]) -> None:
        present = {name for key, name in package.names.items() if key not in dropped}
        for required in ("mimetype", "content.xml", "META-INF/manifest.xml"):
            if required not in present:
                raise StripError(f"not an ODF package: no {required}")
        mimetype = next(info for info in package.members if info.filename == "mimetype")
        if package.read(mimetype).decode("ascii", "replace") not in ODF_TYPES:
            raise StripError(
                "an ODF package of a type other than text, spreadsheet, slides, drawing"
            )
        self._kept = frozenset(
            info.filename for info in package.members if info.filename.casefold() not in dropped
        )

    def rules(self, name: str) -> Rules:
        if name == "meta.xml":
            return _Meta()
        if name == "settings.xml":
            return _Settings()
        if name == "META-INF/manifest.xml":
            return _Manifest(self._kept)
        return _Content()

    def counted(self, name: str) -> bool:
        return name in ("content.xml", "styles.xml")

    def root(self, name: str) -> str:
        return _ROOTS[name]


class _Meta(Rules):
    """meta.xml, an allowlist: the root, office:meta and its meta:document-statistic with the
    counts in _STATISTICS stay; every other element, attribute and character data goes,
    whatever its namespace (a property a later schema or another application adds may name
    anyone)."""

    def element(self, path: Sequence[Name], attrs: Mapping[Name, str]) -> Action | Replace:
        if len(path) == 1:
            if path[0] != _META_PATH[0]:
                raise StripError("the root element is not office:document-meta")
            return Action.KEEP
        kept = len(path) <= len(_META_PATH) and path[-1] == _META_PATH[len(path) - 1]
        return Action.KEEP if kept else Action.DROP

    def attribute(self, element: Name, name: Name, value: str) -> str | None:
        if element == _META_PATH[0] and name == (_OFFICE, "version"):
            return value
        if element == _META_PATH[2] and name[0] == _META and name[1] in _STATISTICS:
            return value if value.isascii() and value.strip().isdigit() else None
        return None

    def character_data(self, path: Sequence[Name]) -> bool:
        return False  # the kept elements hold attributes only


class _Content(Rules):
    """content.xml and styles.xml: people and times of annotations and changes."""

    def element(self, path: Sequence[Name], attrs: Mapping[Name, str]) -> Action | Replace:
        namespace, local = path[-1]
        if namespace == _DC and local == "creator":
            return Action.EMPTY  # required in office:change-info
        if namespace == _DC and local == "date":
            if len(path) > 1 and path[-2] == (_OFFICE, "change-info"):
                return Replace(FIXED_DATE)  # required there, as an xsd:dateTime
            return Action.DROP
        if namespace == _META and local in ("date-string", "creator-initials"):
            return Action.DROP
        if namespace == _OFFICE and local == "binary-data":
            # Part 3, office:binary-data: an image or object inline, in base64; its own metadata (a
            # photo's Exif) cannot be stripped in place, and the Pictures/ path is bypassed.
            raise StripError("an office:binary-data element embeds a file in the XML")
        if namespace == _LOEXT and local == "sender-initials":
            return Action.DROP  # LibreOffice's comment author initials before ODF 1.3's
        if namespace == _TEXT:
            _check_field(local, attrs)
        href = attrs.get((_XLINK, "href"), "")
        embeds = local in _EMBEDS or attrs.get((_XLINK, "show")) == "embed"
        if embeds and _EXTERNAL.match(href):
            raise StripError(f"a {local} linked to a file outside the package")
        if local_path(href):
            raise StripError(f"a {local} links a local file (its path names folders)")
        return Action.KEEP

    def attribute(self, element: Name, name: Name, value: str) -> str | None:
        if name[0] == _OFFICEOOO and name[1] in ("rsid", "paragraph-rsid"):
            return None  # revision session IDs tie the text to editing sessions
        return value


def _check_field(local: str, attrs: Mapping[Name, str]) -> None:
    """Refuse a text field whose cached value, in the text, is metadata of the author's."""
    if _PERSON_FIELDS.match(local):
        raise StripError(f"a text:{local} field prints a person's name into the text")
    if local == "user-defined":
        # Part 3 metadata fields: the value of a meta:user-defined property (which meta.xml loses),
        # cached in the text; a custom property often holds a client's or author's name.
        raise StripError("a text:user-defined field prints a document property into the text")
    # Part 3 document fields: text:display defaults to "full", the whole path.
    display = attrs.get((_TEXT, "display"), "full")
    if local in ("file-name", "template-name") and display in ("full", "path"):
        raise StripError(f"a text:{local} field prints the file's path into the text")


class _Settings(Rules):
    """settings.xml: free-text config items go unless listed in _SETTINGS_TEXT."""

    def element(self, path: Sequence[Name], attrs: Mapping[Name, str]) -> Action | Replace:
        if path[-1] == (_CONFIG, "config-item"):
            kind = attrs.get((_CONFIG, "type"))
            if kind in ("string", "base64Binary"):
                keep = attrs.get((_CONFIG, "name")) in _SETTINGS_TEXT
                return Action.KEEP if keep else Action.DROP
        return Action.KEEP


class _Manifest(Rules):
    """The package manifest (Part 2): entries for members not in the copy go; no encryption."""

    def __init__(self, kept: frozenset[str]) -> None:
        self._kept = kept

    def element(self, path: Sequence[Name], attrs: Mapping[Name, str]) -> Action | Replace:
        if path[-1] == (_MANIFEST, "encryption-data"):
            raise StripError("an encrypted ODF package")
        if path[-1] == (_MANIFEST, "file-entry"):
            entry = attrs.get((_MANIFEST, "full-path"), "")
            if entry != "/" and entry not in self._kept:
                return Action.DROP
        return Action.KEEP
