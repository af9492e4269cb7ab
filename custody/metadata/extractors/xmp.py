"""XMP (ISO 16684-1) packets: found in a file's head and tail, parsed with defusedxml."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from typing import BinaryIO
from xml.etree.ElementTree import Element

from defusedxml import ElementTree

from custody.metadata.extractors.collector import Collector, LimitError

_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_XML = "{http://www.w3.org/XML/1998/namespace}"
_CONTAINERS = frozenset({f"{_RDF}Seq", f"{_RDF}Bag", f"{_RDF}Alt"})
_MAX_DEPTH = 16  # XMP structs nest a few levels; deeper input is hostile
_MAX_PACKETS = 16
# The prefixes of ISO 16684-1, the IPTC and common vendors' schemas, so that a field's name
# does not depend on the prefix a writer happened to declare.
_PREFIXES = {
    "http://purl.org/dc/elements/1.1/": "dc",
    "http://ns.adobe.com/xap/1.0/": "xmp",
    "http://ns.adobe.com/xap/1.0/rights/": "xmpRights",
    "http://ns.adobe.com/xap/1.0/mm/": "xmpMM",
    "http://ns.adobe.com/xap/1.0/g/img/": "xmpGImg",
    "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#": "stEvt",
    "http://ns.adobe.com/xap/1.0/sType/ResourceRef#": "stRef",
    "http://ns.adobe.com/exif/1.0/": "exif",
    "http://cipa.jp/exif/1.0/": "exifEX",
    "http://ns.adobe.com/tiff/1.0/": "tiff",
    "http://ns.adobe.com/exif/1.0/aux/": "aux",
    "http://ns.adobe.com/photoshop/1.0/": "photoshop",
    "http://ns.adobe.com/pdf/1.3/": "pdf",
    "http://ns.adobe.com/pdfx/1.3/": "pdfx",
    "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/": "Iptc4xmpCore",
    "http://iptc.org/std/Iptc4xmpExt/2008-02-29/": "Iptc4xmpExt",
    "http://ns.adobe.com/camera-raw-settings/1.0/": "crs",
    "http://ns.google.com/photos/1.0/panorama/": "GPano",
    "http://www.metadataworkinggroup.com/schemas/regions/": "mwg-rs",
    "http://www.dji.com/drone-dji/1.0/": "drone-dji",
}
# ISO 16684-1 §7.3: a packet is an x:xmpmeta element (x:xapmeta before 2002), or a bare
# rdf:RDF element in old files.
_WRAPPERS = ((b"<x:xmpmeta", b"</x:xmpmeta>"), (b"<x:xapmeta", b"</x:xapmeta>"))
_BARE = (b"<rdf:RDF", b"</rdf:RDF>")


def extract_xmp(fh: BinaryIO, out: Collector) -> None:
    """XMP packets anywhere in the first and last few MiB of the file."""
    head = fh.read(out.limits.xmp_head)
    packets = find_packets(head)
    size = fh.seek(0, io.SEEK_END)
    if size > len(head):
        fh.seek(max(len(head), size - out.limits.xmp_tail))
        packets += find_packets(fh.read(out.limits.xmp_tail))
    for packet in packets[:_MAX_PACKETS]:
        out.guard("xmp", functools.partial(parse_packet, packet, out))


def find_packets(data: bytes) -> list[bytes]:
    """Each complete XMP packet in `data` (bytes between the wrapper's start and end tags)."""
    packets: list[bytes] = []
    for start, end in _WRAPPERS:
        packets += _between(data, start, end)
    return packets or _between(data, *_BARE)


def _between(data: bytes, start: bytes, end: bytes) -> list[bytes]:
    found: list[bytes] = []
    at = data.find(start)
    while at >= 0 and len(found) < _MAX_PACKETS:
        stop = data.find(end, at)
        if stop < 0:
            break
        found.append(data[at : stop + len(end)])
        at = data.find(start, stop)
    return found


def parse_packet(packet: bytes, out: Collector, prefix: str = "XMP:") -> None:
    """Record every property of an XMP packet as "XMP:<prefix>:<name>[/<prefix>:<field>]"."""
    if len(packet) > out.limits.xmp_packet:
        raise LimitError(f"XMP packet of {len(packet)} bytes")
    declared: dict[str, str] = {}
    root: Element | None = None
    # DTDs are forbidden outright: XMP has none, and they carry entity-expansion attacks.
    for event, item in ElementTree.iterparse(
        io.BytesIO(packet), events=("start", "start-ns"), forbid_dtd=True
    ):
        if event == "start-ns":
            declared.setdefault(item[1], item[0])
        elif root is None:
            root = item
    if root is None:
        return
    names = functools.partial(_qname, declared)
    for rdf in root.iter(f"{_RDF}RDF"):
        for description in rdf.findall(f"{_RDF}Description"):
            _struct(description, prefix, names, out, 0)


def _qname(declared: dict[str, str], tag: str) -> str:
    uri, _, local = tag[1:].rpartition("}") if tag.startswith("{") else ("", "", tag)
    prefix = _PREFIXES.get(uri) or declared.get(uri) or "ns"
    return f"{prefix}:{local}"


def _struct(
    element: Element, path: str, names: Callable[[str], str], out: Collector, depth: int
) -> None:
    """The fields of an rdf:Description, or of a property with rdf:parseType="Resource"."""
    if depth > _MAX_DEPTH:
        raise LimitError("XMP nested too deeply")
    for attribute, value in element.attrib.items():
        if not attribute.startswith((_RDF, _XML)):
            out.add(path + names(attribute), value)
    for child in element:
        _property(child, path + names(child.tag), names, out, depth + 1)


def _property(
    element: Element, name: str, names: Callable[[str], str], out: Collector, depth: int
) -> None:
    resource = element.get(f"{_RDF}resource")
    if resource is not None:
        out.add(name, resource)
    if element.get(f"{_RDF}parseType") == "Resource" or any(
        not key.startswith((_RDF, _XML)) for key in element.attrib
    ):
        _struct(element, f"{name}/", names, out, depth)
        return
    children = list(element)
    for child in children:
        if child.tag in _CONTAINERS:  # arrays: every item under the property's name
            for item in child:
                _property(item, name, names, out, depth + 1)
        elif child.tag == f"{_RDF}Description":
            _struct(child, f"{name}/", names, out, depth + 1)
    text = (element.text or "").strip()
    if text and not children:
        out.add(name, text)
