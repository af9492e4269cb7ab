"""Tests for custody.merkle: RFC 6962 / RFC 9162 hashes, proofs and their verification."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.errors import ConsistencyProofError, CustodyError, InclusionProofError, ProofError
from custody.merkle import (
    HASH_SIZE,
    HashReader,
    MerkleFrontier,
    consistency_proof,
    empty_root,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    subtree_hash,
    verify_consistency,
    verify_inclusion,
)

# transparency-dev/merkle testdata and testonly/constants.go (see its README.md).
VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "merkle"
NO_VECTORS = f"the RFC 6962 vectors are not at {VECTORS} (a checkout outside the workspace)"
INCLUSION_VECTORS = 98  # files in inclusion/, so a bad glob cannot pass with no cases
CONSISTENCY_VECTORS = 98
MAX_SIZE = 3000
PROPERTY = settings(max_examples=60, deadline=None)


# --- an independent model: RFC 6962 §2.1 written as recursion over lists -------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def mth(hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) from leaf hashes, as RFC 6962 §2.1 defines it."""
    if not hashes:
        return sha256(b"")
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return sha256(b"\x01" + mth(hashes[:k]) + mth(hashes[k:]))


def path(m: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]) (RFC 6962 §2.1.1)."""
    if len(hashes) == 1:
        return []
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    if m < k:
        return [*path(m, hashes[:k]), mth(hashes[k:])]
    return [*path(m - k, hashes[k:]), mth(hashes[:k])]


def subproof(m: int, hashes: Sequence[bytes], complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b) (RFC 6962 §2.1.2)."""
    if m == len(hashes):
        return [] if complete else [mth(hashes)]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    if m <= k:
        return [*subproof(m, hashes[:k], complete), mth(hashes[k:])]
    return [*subproof(m - k, hashes[k:], False), mth(hashes[:k])]


def reference_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes | None:
    """The root a proof leads to, checked recursively as RFC 6962 §2.1.1 builds it (None: bad)."""

    def run(p: list[bytes], lo: int, hi: int) -> bytes | None:
        if hi - lo == 1:
            return None if p else leaf
        if not p:
            return None
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        if index < lo + k:
            inner = run(p[:-1], lo, lo + k)
            return None if inner is None else sha256(b"\x01" + inner + p[-1])
        inner = run(p[:-1], lo + k, hi)
        return None if inner is None else sha256(b"\x01" + p[-1] + inner)

    if not 0 <= index < size or any(len(h) != HASH_SIZE for h in [leaf, *proof]):
        return None
    return run(proof, 0, size)


def reference_consistency(m: int, n: int, old: bytes, new: bytes, proof: list[bytes]) -> bool:
    """Whether a consistency proof holds, checked recursively as RFC 6962 §2.1.2 builds it."""

    def run(p: list[bytes], lo: int, hi: int) -> tuple[bytes, bytes] | None:
        if m == hi:
            if lo == 0:
                return None if p else (old, old)
            return (p[0], p[0]) if len(p) == 1 else None
        if not p:
            return None
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        if m <= lo + k:
            inner = run(p[:-1], lo, lo + k)
            return None if inner is None else (inner[0], sha256(b"\x01" + inner[1] + p[-1]))
        inner = run(p[:-1], lo + k, hi)
        if inner is None:
            return None
        return sha256(b"\x01" + p[-1] + inner[0]), sha256(b"\x01" + p[-1] + inner[1])

    if m < 1 or n < m:  # the vectors' rules: size 0 proves nothing
        return False
    if m == n:
        return not proof and old == new
    if any(len(h) != HASH_SIZE for h in [old, new, *proof]):
        return False
    roots = run(proof, 0, n)
    return roots == (old, new)


@functools.cache
def tree_leaves() -> tuple[bytes, ...]:
    return tuple(sha256(b"\x00" + f"entry {i}".encode()) for i in range(MAX_SIZE))


@functools.cache
def tree_levels() -> tuple[tuple[bytes, ...], ...]:
    """Every complete subtree hash of the tree of MAX_SIZE leaves, by level (a naive store)."""
    levels = [tree_leaves()]
    while len(levels[-1]) > 1:
        row = levels[-1]
        levels.append(
            tuple(sha256(b"\x01" + row[i] + row[i + 1]) for i in range(0, len(row) - 1, 2))
        )
    return tuple(levels)


def reader(size: int, levels: Sequence[Sequence[bytes]] | None = None) -> HashReader:
    """A HashReader for the tree of `size` that refuses subtrees outside it."""
    rows = tree_levels() if levels is None else levels

    def read(level: int, index: int) -> bytes:
        assert (index + 1) << level <= size, f"read ({level}, {index}) outside size {size}"
        return rows[level][index]

    return read


def levels_of(hashes: Sequence[bytes]) -> list[list[bytes]]:
    levels = [list(hashes)]
    while len(levels[-1]) > 1:
        row = levels[-1]
        levels.append([node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)])
    return levels


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


# --- the official vectors -----------------------------------------------------------------


def _vector_files(kind: str) -> list[Any]:
    if not VECTORS.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_VECTORS))]
    files = sorted((VECTORS / kind).rglob("*.json"))
    return [pytest.param(f, id=str(f.relative_to(VECTORS / kind))) for f in files]


def _load(file: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(file.read_text())
    return data


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _proof(vector: dict[str, Any]) -> list[bytes]:
    return [_b64(p) for p in vector["proof"] or []]  # Go writes an empty proof as null


@functools.cache
def _reference_tree() -> tuple[list[bytes], list[str]]:
    data = _load(VECTORS / "reference-tree.json")
    return [bytes.fromhex(x) for x in data["leaves_hex"]], data["roots_by_size_hex"]


def _reference_reader(size: int) -> HashReader:
    leaves, _ = _reference_tree()
    return reader(size, levels_of([leaf_hash(e) for e in leaves]))


@pytest.mark.skipif(not VECTORS.is_dir(), reason=NO_VECTORS)
def test_every_vector_is_found() -> None:
    assert len(_vector_files("inclusion")) == INCLUSION_VECTORS
    assert len(_vector_files("consistency")) == CONSISTENCY_VECTORS


@pytest.mark.parametrize("file", _vector_files("inclusion"))
def test_inclusion_vector(file: Path) -> None:
    vector = _load(file)
    check = functools.partial(
        verify_inclusion,
        index=vector["leafIdx"],
        size=vector["treeSize"],
        leaf_hash=_b64(vector["leafHash"]),
        proof=_proof(vector),
        root=_b64(vector["root"]),
    )
    if vector["wantErr"]:
        with pytest.raises(InclusionProofError):
            check()
    else:
        check()


@pytest.mark.parametrize("file", _vector_files("consistency"))
def test_consistency_vector(file: Path) -> None:
    vector = _load(file)
    check = functools.partial(
        verify_consistency,
        old_size=vector["size1"],
        new_size=vector["size2"],
        old_root=_b64(vector["root1"]),
        new_root=_b64(vector["root2"]),
        proof=_proof(vector),
    )
    if vector["wantErr"]:
        with pytest.raises(ConsistencyProofError):
            check()
    else:
        check()


@pytest.mark.skipif(not VECTORS.is_dir(), reason=NO_VECTORS)
def test_reference_tree_roots() -> None:
    leaves, roots = _reference_tree()
    hashes = [leaf_hash(e) for e in leaves]
    assert len(roots) == len(leaves) + 1 == 9
    for size, want in enumerate(roots):
        assert root_from_leaf_hashes(hashes[:size]).hex() == want
        assert MerkleFrontier.empty().append(hashes[:size]).root().hex() == want
        if size:
            assert subtree_hash(0, size, _reference_reader(size)).hex() == want


@pytest.mark.skipif(not VECTORS.is_dir(), reason=NO_VECTORS)
def test_happy_path_proofs_are_the_ones_generated() -> None:
    leaves, roots = _reference_tree()
    found = 0
    for file in sorted(VECTORS.glob("inclusion/*/happy-path.json")):
        v = _load(file)
        assert _b64(v["root"]).hex() == roots[v["treeSize"]], file
        assert _b64(v["leafHash"]) == leaf_hash(leaves[v["leafIdx"]]), file
        got = inclusion_proof(v["leafIdx"], v["treeSize"], _reference_reader(v["treeSize"]))
        assert got == _proof(v), file
        found += 1
    for file in sorted(VECTORS.glob("consistency/*/happy-path.json")):
        v = _load(file)
        got = consistency_proof(v["size1"], v["size2"], _reference_reader(v["size2"]))
        assert got == _proof(v), file
        found += 1
    assert found == 10


# --- hashes -------------------------------------------------------------------------------


def test_hashes_are_the_rfc_6962_ones() -> None:
    assert HASH_SIZE == 32
    assert leaf_hash(b"abc") == sha256(b"\x00abc")
    assert node_hash(b"L" * 32, b"R" * 32) == sha256(b"\x01" + b"L" * 32 + b"R" * 32)
    assert empty_root().hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert root_from_leaf_hashes([]) == empty_root()


def test_proof_errors_are_custody_errors() -> None:
    assert issubclass(InclusionProofError, ProofError)
    assert issubclass(ConsistencyProofError, ProofError)
    assert issubclass(ProofError, CustodyError)


@PROPERTY
@given(st.integers(1, MAX_SIZE), st.data())
def test_subtree_hash_and_frontier_match_the_definition(size: int, data: st.DataObject) -> None:
    hashes = tree_leaves()[:size]
    start = data.draw(st.integers(0, size - 1))
    end = data.draw(st.integers(start + 1, size))
    assert subtree_hash(start, end, reader(size)) == mth(hashes[start:end])
    frontier = MerkleFrontier.from_reader(size, reader(size))
    assert frontier.root() == mth(hashes) == root_from_leaf_hashes(hashes)
    split = data.draw(st.integers(0, size))
    assert MerkleFrontier.empty().append(hashes[:split]).append(hashes[split:]) == frontier
    assert len(frontier.hashes) == size.bit_count()


def test_frontier_rejects_a_wrong_number_of_hashes() -> None:
    with pytest.raises(ValueError, match="right-edge"):
        MerkleFrontier(3, (b"x" * 32,))
    with pytest.raises(ValueError, match="right-edge"):
        MerkleFrontier(-1, ())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: inclusion_proof(3, 3, reader(3)), "not in a tree of size 3"),
        (lambda: inclusion_proof(-1, 3, reader(3)), "not in a tree"),
        (lambda: consistency_proof(4, 3, reader(3)), "from size 4 to size 3"),
        (lambda: subtree_hash(2, 2, reader(3)), r"\[2, 2\)"),
    ],
)
def test_proof_generation_rejects_impossible_requests(
    call: Callable[[], object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_consistency_proof_from_nothing_or_to_the_same_size_is_empty() -> None:
    assert consistency_proof(0, 5, reader(5)) == []
    assert consistency_proof(5, 5, reader(5)) == []
    assert consistency_proof(0, 0, reader(0)) == []


# --- inclusion: generation equals the definition; verification accepts exactly the right ---


@PROPERTY
@given(st.integers(1, MAX_SIZE), st.data())
def test_inclusion_proofs_verify_and_any_change_fails(size: int, data: st.DataObject) -> None:
    hashes = tree_leaves()[:size]
    index = data.draw(st.integers(0, size - 1))
    root = mth(hashes)
    proof = inclusion_proof(index, size, reader(size))
    assert proof == path(index, hashes)
    verify_inclusion(index=index, size=size, leaf_hash=hashes[index], proof=proof, root=root)

    def fails(**change: Any) -> None:
        args = {"index": index, "size": size, "leaf_hash": hashes[index], "proof": proof}
        with pytest.raises(InclusionProofError):
            verify_inclusion(**{**args, "root": root, **change})

    bit = data.draw(st.integers(0, 255))
    fails(root=flip(root, bit))
    fails(leaf_hash=flip(hashes[index], bit))
    for i in range(len(proof)):
        fails(proof=[*proof[:i], flip(proof[i], bit), *proof[i + 1 :]])
    fails(proof=[*proof, root])
    fails(proof=[root, *proof])
    if proof:
        fails(proof=proof[:-1])
        fails(proof=proof[1:])
    if size > 1:  # the leaves are distinct, so no other index may verify
        other = (index + data.draw(st.integers(1, size - 1))) % size
        fails(index=other)
    fails(index=size)
    fails(size=index)


@PROPERTY
@given(st.integers(1, MAX_SIZE), st.data())
def test_inclusion_with_another_size_verifies_exactly_when_the_proof_fits_it(
    size: int, data: st.DataObject
) -> None:
    # A proof does not bind the size: a size whose path has the same shape verifies (the
    # signed checkpoint binds it). Agreement with the recursive RFC 6962 check is the spec.
    hashes = tree_leaves()[:size]
    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(index, size, reader(size))
    root = mth(hashes)
    other = data.draw(st.integers(1, 2 * MAX_SIZE))
    expected = reference_inclusion(index, other, hashes[index], proof) == root
    try:
        verify_inclusion(index=index, size=other, leaf_hash=hashes[index], proof=proof, root=root)
    except InclusionProofError:
        assert not expected
    else:
        assert expected


# --- consistency --------------------------------------------------------------------------


@PROPERTY
@given(st.integers(2, MAX_SIZE), st.data())
def test_consistency_proofs_verify_and_any_change_fails(size: int, data: st.DataObject) -> None:
    hashes = tree_leaves()[:size]
    old_size = data.draw(st.integers(1, size - 1))
    old_root, new_root = mth(hashes[:old_size]), mth(hashes)
    proof = consistency_proof(old_size, size, reader(size))
    assert proof == subproof(old_size, hashes, True)
    args: dict[str, Any] = {
        "old_size": old_size,
        "new_size": size,
        "old_root": old_root,
        "new_root": new_root,
    }
    verify_consistency(**args, proof=proof)

    def fails(**change: Any) -> None:
        with pytest.raises(ConsistencyProofError):
            verify_consistency(**{**args, "proof": proof, **change})

    bit = data.draw(st.integers(0, 255))
    fails(old_root=flip(old_root, bit))
    fails(new_root=flip(new_root, bit))
    for i in range(len(proof)):
        fails(proof=[*proof[:i], flip(proof[i], bit), *proof[i + 1 :]])
    fails(proof=[*proof, new_root])
    fails(proof=[old_root, *proof])
    fails(proof=proof[:-1])
    fails(proof=proof[1:])
    fails(old_root=new_root, new_root=old_root)
    fails(old_size=size, new_size=old_size)
    fails(old_size=0)


@PROPERTY
@given(st.integers(2, MAX_SIZE), st.data())
def test_consistency_with_other_sizes_agrees_with_the_recursive_check(
    size: int, data: st.DataObject
) -> None:
    hashes = tree_leaves()[:size]
    old_size = data.draw(st.integers(1, size - 1))
    old_root, new_root = mth(hashes[:old_size]), mth(hashes)
    proof = consistency_proof(old_size, size, reader(size))
    other_old = data.draw(st.integers(0, size))
    other_new = data.draw(st.integers(0, 2 * MAX_SIZE))
    _check_agreement(other_old, other_new, old_root, new_root, proof)


def _check_agreement(m: int, n: int, old: bytes, new: bytes, proof: list[bytes]) -> None:
    expected = reference_consistency(m, n, old, new, proof)
    try:
        verify_consistency(old_size=m, new_size=n, old_root=old, new_root=new, proof=proof)
    except ConsistencyProofError:
        assert not expected, (m, n)
    else:
        assert expected, (m, n)


def test_every_small_proof_agrees_with_the_recursive_checks_at_every_size() -> None:
    # Exhaustive below 17 leaves: each proof against every (old, new) and (index, size) pair.
    sizes = range(17)
    roots = [mth(tree_leaves()[:n]) for n in sizes]
    for n in range(1, 17):
        for m in range(1, n):
            proof = consistency_proof(m, n, reader(n))
            for m2 in sizes:
                for n2 in sizes:
                    _check_agreement(m2, n2, roots[m], roots[n], proof)
        for index in range(n):
            proof = inclusion_proof(index, n, reader(n))
            for size in sizes:
                leaf = tree_leaves()[index]
                expected = reference_inclusion(index, size, leaf, proof) == roots[n]
                try:
                    verify_inclusion(
                        index=index, size=size, leaf_hash=leaf, proof=proof, root=roots[n]
                    )
                except InclusionProofError:
                    assert not expected, (index, n, size)
                else:
                    assert expected, (index, n, size)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"index": 8}, "not in a tree of size 8"),
        ({"index": -1}, "leaf index -1 is not in a tree of size 8"),
        ({"leaf_hash": b"short"}, "leaf hash is 5 bytes"),
        ({"root": b""}, "root is 0 bytes"),
        ({"proof": []}, "has 0 hashes; leaf 2 of a tree of size 8 needs 3"),
        ({"proof": [b"x" * 31] * 3}, "proof hash 0 is 31 bytes"),
        ({"root": b"\x00" * 32}, "leads to root"),
    ],
)
def test_inclusion_errors_say_what_is_wrong(change: dict[str, Any], message: str) -> None:
    args = {
        "index": 2,
        "size": 8,
        "leaf_hash": tree_leaves()[2],
        "proof": inclusion_proof(2, 8, reader(8)),
        "root": mth(tree_leaves()[:8]),
    }
    with pytest.raises(InclusionProofError, match=message):
        verify_inclusion(**{**args, **change})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"old_size": 0}, "from size 0 shows nothing"),
        ({"new_size": 2}, "new size 2 is below the old size 3"),
        ({"new_size": 3}, "sizes are equal but the proof has"),
        ({"new_size": 3, "proof": []}, "sizes are equal .3. but the roots differ"),
        ({"old_root": b"x"}, "old root is 1 bytes"),
        ({"proof": []}, "has 0 hashes; sizes 3 to 8 need"),
        ({"proof": [b"x" * 32, b"x" * 33, b"x" * 32, b"x" * 32]}, "proof hash 1 is 33 bytes"),
        ({"old_root": b"\x00" * 32}, "leads to old root"),
        ({"new_root": b"\x00" * 32}, "leads to new root"),
    ],
)
def test_consistency_errors_say_what_is_wrong(change: dict[str, Any], message: str) -> None:
    args = {
        "old_size": 3,
        "new_size": 8,
        "old_root": mth(tree_leaves()[:3]),
        "new_root": mth(tree_leaves()[:8]),
        "proof": consistency_proof(3, 8, reader(8)),
    }
    with pytest.raises(ConsistencyProofError, match=message):
        verify_consistency(**{**args, **change})
