"""Member treatments and the document-family interface of the office stripper (OPC, ODF)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from custody.metadata.office_xml import Rules
from custody.metadata.office_zip import Package


class Kind(Enum):
    XML = "xml"  # rewritten under the family's rules
    MEDIA = "media"  # an image, copied through its own stripper
    MIMETYPE = "mimetype"  # ODF's type declaration: first, stored, unchanged
    DROP = "drop"  # left out of the copy, recorded
    DIRECTORY = "directory"  # a ZIP folder entry: not a part, left out
    REFUSE = "refuse"  # the package cannot be copied safely


@dataclass(frozen=True, slots=True)
class Treatment:
    kind: Kind
    why: str = ""  # for DROP and REFUSE: what the member is


XML = Treatment(Kind.XML)
MEDIA = Treatment(Kind.MEDIA)
DIRECTORY = Treatment(Kind.DIRECTORY)


def drop(why: str) -> Treatment:
    return Treatment(Kind.DROP, why)


def refuse(why: str) -> Treatment:
    return Treatment(Kind.REFUSE, why)


class Family(Protocol):
    """OOXML or ODF: which members a package may have and the rules for its XML parts.

    A family object serves one strip: `prepare` sees the whole package before any part is
    rewritten (OPC relationships to dropped parts must go from the parts that use them).
    """

    def classify(self, name: str) -> Treatment:
        """What to do with the member called `name`."""
        ...

    def prepare(self, package: Package, dropped: frozenset[str]) -> None:
        """Check the package as a whole; `dropped` has the casefolded names left out."""
        ...

    def rules(self, name: str) -> Rules:
        """Fresh rules for the XML part called `name`."""
        ...

    def counted(self, name: str) -> bool:
        """Whether the part's character data is document text (goes to the digest)."""
        ...

    def root(self, name: str) -> str:
        """The local name of the XML part's root element, as its name implies."""
        ...
