"""Opaque random identifiers for users, cases, tokens and events."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """`prefix` + 128 random bits in URL-safe base64: unguessable and shape-free to clients."""
    return f"{prefix}_{secrets.token_urlsafe(16)}"
