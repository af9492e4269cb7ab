"""Filenames as clients send them: reduced to a safe display name, never used as a path."""

from __future__ import annotations

import unicodedata

MAX_FILENAME_CHARS = 255


def sanitize_filename(name: str | None) -> str | None:
    """A display name for `name`: its last path component, without controls, or None.

    Filenames are kept only as a label in the database: storage keys are content addresses,
    so `../../etc/passwd` can never reach the filesystem. This keeps the label harmless too
    (no directories, no control or bidi-override characters that disguise an extension).
    """
    if name is None:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    if cleaned in ("", ".", ".."):
        return None
    return unicodedata.normalize("NFC", cleaned)[:MAX_FILENAME_CHARS]
