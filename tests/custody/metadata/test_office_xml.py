"""Tests for custody.metadata.office_xml: XML parts rewritten token by token."""

from __future__ import annotations

import pytest

from custody.metadata.base import StripError
from custody.metadata.office_xml import Rules, rewrite

_NS = 'xmlns:w="urn:example:w"'


@pytest.mark.parametrize(
    "document",
    [
        f"<w:r {_NS}><w:/></w:r>",  # an empty local name
        f"<w:r {_NS}><w:1/></w:r>",  # a local name that is no NCName
        f"<w:r {_NS}><w:-a/></w:r>",
        f"<w:r {_NS}><w:\u0300/></w:r>",
        f"<w:r {_NS}><:a/></w:r>",  # an empty prefix
        f"<w:r {_NS}><w:a:b/></w:r>",  # two colons
        f'<w:r {_NS}><w:a w:="1"/></w:r>',
        f'<w:r {_NS}><w:a w:b:c="1"/></w:r>',
        f'<w:r {_NS}><w:a xmlns:="urn:example:x"/></w:r>',  # a declaration of no prefix
        f'<w:r {_NS}><w:a xmlns:1="urn:example:x"/></w:r>',
    ],
)
def test_names_outside_namespaces_in_xml_are_refused(document: str) -> None:
    with pytest.raises(StripError, match=r"part\.xml: .* is not a valid XML name"):
        rewrite("part.xml", document.encode(), Rules(), root="r")


def test_names_of_any_script_are_kept() -> None:
    document = f'<w:r {_NS}><w:\u00e9t\u00e9 w:a\u00b7b="1"/><w:_x/></w:r>'
    assert (
        rewrite("part.xml", document.encode(), Rules(), root="r").data.decode().endswith(document)
    )
