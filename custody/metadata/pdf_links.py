"""PDF links and file specifications into a file system (ISO 32000-2 §7.11, §12.6.4): refused."""

from __future__ import annotations

from pikepdf import Dictionary, Name, Stream, String

from custody.metadata.base import StripError
from custody.metadata.paths import local_path

# A file specification's file names, one per platform (§7.11.3 Table 43), or a file given as
# a string: an action's target (§12.6.4), a stream's data kept elsewhere (§7.3.8.2 /F).
# A URI action's target (§12.6.4.8) and the base of relative ones (the catalog's /URI).
_PATH_KEYS = ("/F", "/UF", "/DOS", "/Mac", "/Unix", "/URI", "/Base")
_LAUNCH = Name("/Launch")


def refuse_local_links(obj: Dictionary | Stream, keys: set[str]) -> None:
    """Refuse a Launch action, and a link or file name that is a path on someone's machine
    (a drive, UNC or home path, a file: URL, a path climbing out of the document's folder):
    the folder names are often the user's and the machine's. Files beside the document
    ("annex.pdf") and web links stay."""
    if "/S" in keys and obj.get("/S") == _LAUNCH:
        # §12.6.4.6: opens a file or runs a program, named by its path on the author's system.
        raise StripError("PDF has a Launch action (it opens a file or runs a program)")
    for key in _PATH_KEYS:
        if key in keys:
            value = obj.get(key)
            if isinstance(value, String) and local_path(str(value)):
                raise StripError(f"PDF {key} names a local file (a path on someone's machine)")
