"""Rules for the XML parts of Office Open XML packages (ECMA-376 / ISO/IEC 29500, Part 1)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from custody.metadata.base import StripError
from custody.metadata.office_xml import Action, Name, Replace, Rules
from custody.metadata.paths import local_path

# Transitional and Strict (ISO/IEC 29500) namespaces of the same vocabularies.
W = frozenset(
    {
        "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
        "http://purl.oclc.org/ooxml/wordprocessingml/main",
    }
)
X = frozenset(
    {
        "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
        "http://purl.oclc.org/ooxml/spreadsheetml/main",
    }
)
R = frozenset(
    {
        "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
        "http://purl.oclc.org/ooxml/officeDocument/relationships",
    }
)
_W14 = "http://schemas.microsoft.com/office/word/2010/wordml"
_W15 = "http://schemas.microsoft.com/office/word/2012/wordml"
_X15AC = "http://schemas.microsoft.com/office/spreadsheetml/2010/11/ac"
_XR = "http://schemas.microsoft.com/office/spreadsheetml/2014/revision"
_VML_OFFICE = "urn:schemas-microsoft-com:office:office"  # ECMA-376 Part 4 (VML), prefix o
# Elements that only identify the machine, the account, the file's path or its history:
# revision save IDs, the attached template's path and mail merge sources (Part 1 document
# settings), document variables set by add-ins and document management systems, printer
# settings, Word's persistent document GUIDs ([MS-DOCX] w14/w15 docId), Excel's absolute
# path and revision pointer ([MS-XLSX] x15ac:absPath, xr:revisionPtr).
_DROPPED = frozenset(
    {(w, local) for w in W for local in ("rsids", "attachedTemplate", "mailMerge", "docVars")}
    | {(w, "printerSettings") for w in W}
    | {(_W14, "docId"), (_W15, "docId"), (_X15AC, "absPath"), (_XR, "revisionPtr")}
)
# Attributes that name a person: authors and initials of comments and revisions anywhere
# (Part 1 annotations); on the elements that describe people, their names and account IDs
# ([MS-DOCX] people, [MS-XLSX] persons, [MS-PPTX] authors, PresentationML cmAuthor),
# Excel's reservation user and pivot refresher. Blanked, not dropped: several are required.
# userId, providerId and userName name an account wherever they stand, so they are blanked on
# any element (an element renamed by damage or a later schema still names the person).
_PERSON = frozenset({"author", "initials", "userId", "providerId", "userName"})
_PERSON_ON: dict[str, frozenset[str]] = {
    "person": frozenset({"displayName", "userId", "providerId"}),
    "author": frozenset({"name", "initials", "userId", "providerId"}),
    "cmAuthor": frozenset({"name", "initials"}),
    "presenceInfo": frozenset({"userId", "providerId"}),
    "fileSharing": frozenset({"userName"}),
    "pivotCacheDefinition": frozenset({"refreshedBy"}),
}
# Times of comments, revisions and pivot refreshes, dropped. Those in _TIMES go from any
# element: Word's w16cex:commentExtensible dateUtc, and the created time of PowerPoint's
# modern comments, which each reply ([MS-PPTX] p188:reply, any later element) has as well.
_TIMES = frozenset({"dateUtc", "created"})
_TIMES_ON: dict[str, frozenset[str]] = {
    "threadedComment": frozenset({"dT"}),
    "cm": frozenset({"dt"}),
    "pivotCacheDefinition": frozenset({"refreshedDate", "refreshedDateIso"}),
}
_EMPTY: frozenset[str] = frozenset()
# Picture properties: DrawingML's docPr and cNvPr, VML's imagedata.
_PICTURES = frozenset({"docPr", "cNvPr", "imagedata"})
# Fields whose cached result prints the author's or another person's name into the text
# (Part 1 field definitions): removing it would change the text, so such documents are refused.
_PERSON_FIELDS = frozenset(
    {"AUTHOR", "LASTSAVEDBY", "USERNAME", "USERINITIALS", "USERADDRESS", "DOCPROPERTY", "INFO"}
)
# Fields that pull in another file by its path, or another program's data (DDE).
_FILE_FIELDS = frozenset({"INCLUDEPICTURE", "INCLUDETEXT", "LINK", "DDE", "DDEAUTO"})
# Fields that print the document's or its template's file name: with the \p switch, the
# whole path, which names the author's folders (Part 1 field definitions).
_NAME_FIELDS = frozenset({"FILENAME", "TEMPLATE"})
# Extended properties (Part 1, app.xml): every one goes, as the core and custom ones do.
# Even the statistics (pages, words, editing time) describe the author's copy, not the text.
_APP_KEPT: frozenset[str] = frozenset()


class CoreRules(Rules):
    """Core properties (Part 2, core.xml): every property goes, the empty root stays."""

    def element(self, path: Sequence[Name], attrs: Mapping[Name, str]) -> Action | Replace:
        return Action.DROP if len(path) == 2 else Action.KEEP

    def indentation(self, path: Sequence[Name]) -> bool:
        return False  # what indented the dropped properties


class AppRules(Rules):
    """Extended properties (Part 1, app.xml): every property goes, the empty root stays."""

    def element(self, path: Sequence[Name], attrs: Mapping[Name, str]) -> Action | Replace:
        if len(path) == 2 and path[-1][1] not in _APP_KEPT:
            return Action.DROP
        return Action.KEEP

    def indentation(self, path: Sequence[Name]) -> bool:
        return len(path) > 1


class PartRules(Rules):
    """Any other XML part: people blanked, times, revision IDs and dropped links removed."""

    def __init__(self, dropped_ids: frozenset[str]) -> None:
        self._dropped_ids = dropped_ids  # relationship IDs this part may no longer use
        self._fields: list[list[str]] = []  # instruction text of the open complex fields

    def element(self, path: Sequence[Name], attrs: Mapping[Name, str]) -> Action | Replace:
        name = path[-1]
        if name in _DROPPED:
            return Action.DROP
        if name[0] in X and name[1] == "author" and len(path) > 1 and path[-2][1] == "authors":
            return Action.EMPTY  # legacy comment authors, listed by name
        if name[1] == "dataBinding" and (name[0] in W or name[0] == _W15):
            # Part 1 structured document tags, [MS-DOCX] w15: the control shows a node of a
            # custom XML part (often the core properties' creator); the text is its cache.
            raise StripError("a content control bound to custom XML data (w:dataBinding)")
        if name[0] in W:
            self._field(name[1], name[0], attrs)
        return Action.KEEP

    def attribute(self, element: Name, name: Name, value: str) -> str | None:
        local = name[1]
        if local in _PERSON or local in _PERSON_ON.get(element[1], _EMPTY):
            return ""
        if self._dropped(element, name, value):
            return None
        if element[1] in _PICTURES and local in ("descr", "title", "name") and local_path(value):
            return ""  # Word 2007-2010 named an inserted picture by its file's full path
        return value

    def _dropped(self, element: Name, name: Name, value: str) -> bool:
        namespace, local = name
        return (
            local in _TIMES
            or local in _TIMES_ON.get(element[1], _EMPTY)
            # Revision times (optional), revision save IDs, and the user a range may be
            # edited by (permStart's w:ed).
            or (namespace in W and (local in ("date", "ed") or local.startswith("rsid")))
            or (namespace in R and value in self._dropped_ids)
            # A base64 ZIP of a VML shape as DrawingML, with its own metadata parts; Word
            # regenerates it from the VML and the DrawingML beside it.
            or (namespace == _VML_OFFICE and local == "gfxdata")
        )

    def text(self, path: Sequence[Name], data: str) -> None:
        if path[-1][0] in W and path[-1][1] == "instrText":
            if self._fields:
                self._fields[-1].append(data)
            else:
                _check_field(data)

    def _field(self, local: str, namespace: str, attrs: Mapping[Name, str]) -> None:
        if local == "fldSimple":
            _check_field(attrs.get((namespace, "instr"), ""))
        elif local == "fldChar":
            kind = attrs.get((namespace, "fldCharType"))
            if kind == "begin":
                self._fields.append([])
            elif kind in ("separate", "end") and self._fields:
                _check_field("".join(self._fields[-1]))
                if kind == "end":
                    self._fields.pop()


# The attributes a part that lists people keeps: what links its entries to the comments that
# cite them and their display order, and markup-compatibility processing (ECMA-376 Part 3).
_PEOPLE_KEPT = frozenset({"id", "uri", "lastIdx", "clrIdx"})
_MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"


class PeopleRules(PartRules):
    """A part that lists people ([MS-XLSX] persons, [MS-PPTX] authors, PresentationML
    comment authors): every attribute is blanked but those in `_PEOPLE_KEPT`, on any element,
    known or not. The part exists to name people: what it holds beyond links is theirs."""

    def attribute(self, element: Name, name: Name, value: str) -> str | None:
        kept = super().attribute(element, name, value)
        if kept and name[1] not in _PEOPLE_KEPT and name[0] != _MC:
            return ""
        return kept


def _check_field(instruction: str) -> None:
    words = instruction.split()
    field = words[0].upper() if words else ""
    if field in _PERSON_FIELDS:
        raise StripError(f"a {field} field prints metadata into the text")
    if field in _FILE_FIELDS:
        raise StripError(f"a {field} field links a file")
    if field in _NAME_FIELDS and any(word.lower() == "\\p" for word in words[1:]):
        raise StripError(f"a {field} field prints the file's path into the text")
    if field == "HYPERLINK" and local_path(" ".join(words[1:]).strip('"')):
        raise StripError("a HYPERLINK field to a local file (its path names folders)")
