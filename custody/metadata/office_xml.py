"""XML parts of office packages rewritten token by token (XML 1.0, Namespaces in XML 1.0)."""

from __future__ import annotations

import functools
import re
import xml.sax
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.expatreader import create_parser

from custody.metadata.base import StripError

Name = tuple[str, str]  # (namespace URI, local name); "" for no namespace
XML_NS = "http://www.w3.org/XML/1998/namespace"
DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_NOT_URI = re.compile(r'[\s{}<>"\\^`|]')
# XML 1.0 (fifth edition) §2.3 NameStartChar and NameChar, without the colon: an NCName.
_NAME_START = (
    "A-Z_a-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_NCNAME = re.compile(f"[{_NAME_START}][{_NAME_START}\\-.0-9\u00b7\u0300-\u036f\u203f\u2040]*")
_LEXICAL_HANDLER = "http://xml.org/sax/properties/lexical-handler"
# Character references keep what the parser would otherwise normalise: CR in text, and
# tab, CR and LF in attribute values (XML 1.0 §2.11, §3.3.3), so a second pass reads the
# same characters back.
_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"})
_ATTR = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "\t": "&#9;",
        "\n": "&#10;",
        "\r": "&#13;",
    }
)


class Action(Enum):
    KEEP = "keep"
    DROP = "drop"  # the element and everything in it
    EMPTY = "empty"  # the element stays, its content goes


@dataclass(frozen=True, slots=True)
class Replace:
    """The element stays, its content becomes `text`."""

    text: str


class Rules:
    """Decisions for one XML part; the base keeps everything. One instance per part."""

    def element(self, path: Sequence[Name], attrs: Mapping[Name, str]) -> Action | Replace:
        """What to do with the element ending `path`; may raise StripError to refuse."""
        return Action.KEEP

    def attribute(self, element: Name, name: Name, value: str) -> str | None:
        """The value to write, or None to drop the attribute."""
        return value

    def text(self, path: Sequence[Name], data: str) -> None:
        """Character data kept inside the element ending `path` (for checks)."""

    def indentation(self, path: Sequence[Name]) -> bool:
        """Whether whitespace-only character data directly inside `path` is kept."""
        return True

    def character_data(self, path: Sequence[Name]) -> bool:
        """Whether character data directly inside `path` is kept at all."""
        return True

    def end(self, path: Sequence[Name]) -> None:
        """The element ending `path` closes."""


@dataclass(frozen=True, slots=True)
class Rewritten:
    data: bytes
    removed: tuple[str, ...]


@dataclass
class _Frame:
    qname: str
    namespaces: dict[str, str]
    mute: bool  # content dropped (EMPTY, Replace)
    counted: bool  # character data goes to the digest


# The parser runs without namespace processing, so every element and attribute is written
# back under the prefix it had: ElementTree would rename prefixes to ns0, ns1..., which breaks
# mc:Ignorable (ECMA-376 Part 3 §10.2.1 lists prefixes, not namespaces). Rules see names
# resolved to (namespace, local name), so an unusual prefix cannot slip past them. DTDs,
# entities and external references are refused (defusedxml): package XML never has them,
# and they carry entity-expansion and file-disclosure attacks.
@dataclass
class _Writer(xml.sax.handler.ContentHandler):
    part: str
    rules: Rules
    root: str  # the local name the root element must have
    on_text: Callable[[str], object] | None
    out: list[str] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)
    frames: list[_Frame] = field(default_factory=list)
    path: list[Name] = field(default_factory=list)
    skip: int = 0  # depth inside a dropped element
    open_tag: bool = False  # a start tag awaits its ">" or "/>"

    def __post_init__(self) -> None:
        super().__init__()

    def startElement(self, qname: str, attrs: Any) -> None:  # noqa: N802 (SAX API)
        if self.skip or (self.frames and self.frames[-1].mute):
            self._drop(qname)
            return
        # One pass over the attributes (most elements have none): (qname, value, xmlns?).
        items = [(key, value, _is_xmlns(key)) for key, value in attrs.items()] if attrs else []
        namespaces = self._declare([(key, uri) for key, uri, xmlns in items if xmlns])
        self.path.append(_resolve(qname, namespaces, element=True))
        if len(self.path) == 1 and self.path[0][1].casefold() != self.root.casefold():
            raise StripError(f"the root element is {qname!r}, not {self.root!r}")
        names: list[Name] = []
        values: dict[Name, str] = {}
        if items:
            names = [_resolve(key, namespaces) for key, _, xmlns in items if not xmlns]
            values = dict(zip(names, (v for _, v, xmlns in items if not xmlns), strict=True))
            if len(values) != len(names):  # Namespaces in XML 1.0 §6.3
                raise StripError(f"{qname!r} has one attribute twice under two prefixes")
        action = self.rules.element(self.path, values)
        if action is Action.DROP:
            self.path.pop()
            self._drop(qname)
            return
        self._close_tag()
        self.out.append(f"<{qname}{self._attributes(items, names)}" if items else f"<{qname}")
        self.open_tag = True
        counted = action is Action.KEEP and (not self.frames or self.frames[-1].counted)
        self.frames.append(_Frame(qname, namespaces, action is not Action.KEEP, counted))
        if isinstance(action, Replace):
            self._close_tag()
            self.out.append(action.text.translate(_TEXT))
            self.removed.add(f"{self.part} {qname} (value)")

    def endElement(self, qname: str) -> None:  # noqa: N802 (SAX API)
        if self.skip:
            self.skip -= 1
            return
        self.rules.end(self.path)
        self.out.append("/>" if self.open_tag else f"</{qname}>")
        self.open_tag = False
        self.frames.pop()
        self.path.pop()

    def characters(self, content: str) -> None:
        if self.skip or not content:
            return
        frame = self.frames[-1]
        if frame.mute:
            self.removed.add(f"{self.part} {frame.qname} (value)")
            return
        if not self.rules.character_data(self.path):
            if not content.isspace():
                self.removed.add(f"{self.part} {frame.qname} (text)")
            return
        if content.isspace() and not self.rules.indentation(self.path):
            return
        self.rules.text(self.path, content)
        self._close_tag()
        self.out.append(content.translate(_TEXT))
        if frame.counted and self.on_text is not None:
            self.on_text(content)

    def processingInstruction(self, target: str, data: str) -> None:  # noqa: N802 (SAX API)
        # No reader needs them in package parts, and they can carry any text.
        self.removed.add(f"{self.part} processing instruction")

    def comment(self, content: str) -> None:  # lexical handler: comments can carry any text
        self.removed.add(f"{self.part} XML comment")

    def startCDATA(self) -> None:  # noqa: N802 (lexical handler API); text is written escaped
        pass

    def endCDATA(self) -> None:  # noqa: N802
        pass

    def startDTD(self, name: str, public_id: str, system_id: str) -> None:  # noqa: N802
        raise StripError(f"{self.part} has a DTD")  # defusedxml refuses first; kept closed

    def endDTD(self) -> None:  # noqa: N802
        pass

    def _drop(self, qname: str) -> None:
        if not self.skip:
            self.removed.add(f"{self.part} {qname}")
        self.skip += 1

    def _close_tag(self) -> None:
        if self.open_tag:
            self.out.append(">")
            self.open_tag = False

    def _declare(self, declared: list[tuple[str, str]]) -> dict[str, str]:
        namespaces = self.frames[-1].namespaces if self.frames else {"xml": XML_NS}
        if not declared:
            return namespaces
        scope = dict(namespaces)
        for key, uri in declared:
            _check_name(key)
            prefix = key[6:] if key.startswith("xmlns:") else ""
            # Namespaces in XML 1.0 §3: names are URI references (RFC 3986 has no braces or
            # spaces; ElementTree-based readers, the extractors among them, choke on them),
            # and a prefix cannot be undeclared.
            if _NOT_URI.search(uri) or (prefix and not uri):
                raise StripError(f"an invalid namespace name for prefix {prefix!r}")
            scope[prefix] = uri
        return scope

    def _attributes(self, items: list[tuple[str, str, bool]], names: list[Name]) -> str:
        """The attributes as written, in their order; `names` resolves those not xmlns."""
        element = self.path[-1]
        resolved = iter(names)
        parts = []
        for qname, value, xmlns in items:
            kept: str | None = value
            if not xmlns:
                kept = self.rules.attribute(element, next(resolved), value)
                if kept != value and (kept is not None or value):
                    self.removed.add(f"{self.part} @{qname}")
            if kept is not None:
                parts.append(f' {qname}="{kept.translate(_ATTR)}"')
        return "".join(parts)


def _is_xmlns(qname: str) -> bool:
    return qname == "xmlns" or qname.startswith("xmlns:")


def _resolve(qname: str, namespaces: Mapping[str, str], *, element: bool = False) -> Name:
    _check_name(qname)
    prefix, colon, local = qname.rpartition(":")
    if not colon:
        # Namespaces in XML §6.2: unprefixed attributes are in no namespace.
        return (namespaces.get("", "") if element else "", local)
    if prefix not in namespaces:
        raise StripError(f"undeclared namespace prefix {prefix!r}")
    return (namespaces[prefix], local)


def _check_name(qname: str) -> None:
    """Refuse a name that is an XML 1.0 Name but no QName (Namespaces in XML 1.0 §4): "w:",
    "w:1", "a:b:c". Expat, without namespace processing, accepts them; readers do not."""
    if not _qname(qname):
        raise StripError(f"{qname!r} is not a valid XML name (Namespaces in XML 1.0 §4)")


@functools.lru_cache(maxsize=4096)  # a part uses a few hundred names, many thousand times
def _qname(qname: str) -> bool:
    parts = qname.split(":")
    return len(parts) <= 2 and all(_NCNAME.fullmatch(part) for part in parts)


def rewrite(
    part: str,
    data: bytes,
    rules: Rules,
    *,
    root: str,
    on_text: Callable[[str], object] | None = None,
) -> Rewritten:
    """`data` re-serialised under `rules`; the kept character data goes to `on_text`.

    The root element must have the local name `root`: a part is what its name says.
    Character data inside elements the rules drop, empty or replace never reaches
    `on_text`, so the text digest of an original and of its copy agree.
    """
    writer = _Writer(part, rules, root, on_text)
    parser = create_parser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    parser.setContentHandler(writer)
    parser.setProperty(_LEXICAL_HANDLER, writer)
    try:
        parser.feed(data)
        parser.close()
    except (xml.sax.SAXException, LookupError, UnicodeError) as exc:
        # LookupError: an XML declaration naming an unknown encoding (e.g. "UUF-8").
        raise StripError(f"{part} is not well-formed XML: {exc}", found=(part,)) from exc
    except DefusedXmlException as exc:
        raise StripError(
            f"{part} has a DTD or entities: {type(exc).__name__}", found=(part,)
        ) from exc
    except StripError as exc:
        raise StripError(f"{part}: {exc.reason}", found=(part, *exc.found)) from exc
    return Rewritten((DECLARATION + "".join(writer.out)).encode("utf-8"), tuple(writer.removed))
