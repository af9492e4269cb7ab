"""Names known to exist: remembered, and bounded."""

from __future__ import annotations

from api.known import KnownNames


def test_remembers_the_newest_names_up_to_its_size() -> None:
    known = KnownNames(size=2)
    assert "a" not in known
    for name in ("a", "b", "a", "c"):
        known.add(name)
    assert ("a" in known, "b" in known, "c" in known) == (True, False, True)
