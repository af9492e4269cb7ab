"""Hypothesis strategies that damage a corpus file the way transfers and hostile uploads do."""

from __future__ import annotations

from hypothesis import strategies as st


@st.composite
def mutants(draw: st.DrawFn, seed: bytes) -> bytes:
    """`seed` with a few bit flips, a cut, an inserted run or a copied slice."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "repeat", "zero"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[draw(st.integers(0, len(data))) :]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 512))]
        elif kind == "zero":
            span = draw(st.integers(1, 16))
            data[at : at + span] = bytes(len(data[at : at + span]))
    return bytes(data)
