"""Whether a link's target names a place in someone's file system (RFC 8089, RFC 3986, UNC)."""

from __future__ import annotations

import re

# file: and SMB/CIFS URLs (RFC 8089; the CIFS and NFS URL drafts) reach a machine's files.
_LOCAL_SCHEMES = frozenset({"file", "smb", "cifs", "nfs", "afp"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")  # RFC 3986 §3.1 (one letter: a drive)
# UNC and drive paths, rooted paths (\Users, /home, PDF's /C/Users), home directories,
# Windows environment variables, and relative paths that climb out of the document's folder:
# each spells out folder names, often the user's own.
_LOCAL_PATH = re.compile(
    r"^(?:[\\/]|~|[A-Za-z]:|%[A-Za-z_][A-Za-z0-9_]*%)|(?:^|[\\/])\.\.(?:[\\/]|$)"
)


def local_path(target: str) -> bool:
    """Whether `target` (a URL, a path, a PDF file specification) names a local file."""
    target = target.strip()
    scheme = _SCHEME.match(target)
    if scheme:
        return scheme.group(1).lower() in _LOCAL_SCHEMES
    return bool(_LOCAL_PATH.search(target))
