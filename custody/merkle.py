"""RFC 6962 / RFC 9162 §2.1 Merkle tree hashes, inclusion and consistency proofs, and checks."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from custody.errors import ConsistencyProofError, InclusionProofError, ProofError

HASH_SIZE = 32  # bytes: SHA-256, the hash RFC 6962 §2.1 and tlog-tiles fix
_LEAF_PREFIX = b"\x00"  # RFC 6962 §2.1: second-preimage resistance between leaves and nodes
_NODE_PREFIX = b"\x01"

# (level, index) -> MTH of the complete subtree of 2**level leaves starting at index * 2**level.
HashReader = Callable[[int, int], bytes]


def leaf_hash(entry: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d) (RFC 6962 §2.1)."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || MTH(left) || MTH(right)) (RFC 6962 §2.1)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def empty_root() -> bytes:
    """MTH({}) = SHA-256() (RFC 6962 §2.1): the root of the empty tree."""
    return hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    """k, the largest power of two smaller than n (n > 1) (RFC 6962 §2.1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of the leaves whose hashes are given (RFC 6962 §2.1)."""
    return MerkleFrontier.empty().append(hashes).root()


def subtree_hash(start: int, end: int, read: HashReader) -> bytes:
    """MTH(D[start:end]), built from the complete subtrees `read` serves."""
    if not 0 <= start < end:
        raise ValueError(f"no subtree covers leaves [{start}, {end})")
    n = end - start
    if _is_power_of_two(n) and start % n == 0:
        level = n.bit_length() - 1
        return read(level, start >> level)
    k = _split(n)
    return node_hash(subtree_hash(start, start + k, read), subtree_hash(start + k, end, read))


def inclusion_proof(index: int, size: int, read: HashReader) -> list[bytes]:
    """PATH(index, D[size]) (RFC 6962 §2.1.1), from the leaf's sibling up to the root's."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    return _path(index, 0, size, read)


def _path(m: int, start: int, end: int, read: HashReader) -> list[bytes]:
    if end - start == 1:
        return []
    mid = start + _split(end - start)
    if m < mid:
        return [*_path(m, start, mid, read), subtree_hash(mid, end, read)]
    return [*_path(m, mid, end, read), subtree_hash(start, mid, read)]


def consistency_proof(old_size: int, new_size: int, read: HashReader) -> list[bytes]:
    """PROOF(old_size, D[new_size]) (RFC 6962 §2.1.2).

    Empty when old_size is 0 or equal to new_size: there is nothing to prove (RFC 9162
    §2.1.4 defines proofs for 0 < old_size < new_size only).
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    return _subproof(old_size, 0, new_size, read, complete=True)


def _subproof(m: int, start: int, end: int, read: HashReader, *, complete: bool) -> list[bytes]:
    """SUBPROOF(m, D[start:end], b) with m counted from start (RFC 6962 §2.1.2)."""
    if m == end - start:
        # The old tree's root is known to the verifier only when it is the whole old tree.
        return [] if complete else [subtree_hash(start, end, read)]
    mid = start + _split(end - start)
    if m <= mid - start:
        return [*_subproof(m, start, mid, read, complete=complete), subtree_hash(mid, end, read)]
    rest = _subproof(m - (mid - start), mid, end, read, complete=False)
    return [*rest, subtree_hash(start, mid, read)]


def _check_hash(what: str, value: bytes, error: type[ProofError]) -> None:
    if len(value) != HASH_SIZE:
        raise error(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def verify_inclusion(
    *, index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `proof` shows leaf `index` of the tree of `size` with `root` (RFC 9162 §2.1.3.2).

    Raises InclusionProofError naming what is wrong.
    """
    if not 0 <= index < size:  # §2.1.3.2 step 1
        raise InclusionProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash("the leaf hash", leaf_hash, InclusionProofError)
    _check_hash("the root", root, InclusionProofError)
    # Exact length, so extra or missing hashes are named as such (the loop would fail too).
    inner = (index ^ (size - 1)).bit_length()
    want = inner + (index >> inner).bit_count()
    if len(proof) != want:
        raise InclusionProofError(
            f"the proof has {len(proof)} hashes; leaf {index} of a tree of size {size} needs {want}"
        )
    for i, p in enumerate(proof):
        _check_hash(f"proof hash {i}", p, InclusionProofError)
    fn, sn, r = index, size - 1, leaf_hash  # steps 2-3
    for p in proof:  # step 4
        if sn == 0:
            raise InclusionProofError("the proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:  # step 5
        raise InclusionProofError("the proof is shorter than the path to the root")
    if r != root:
        raise InclusionProofError(
            f"the proof leads to root {r.hex()}, not {root.hex()} (leaf {index}, size {size})"
        )


def verify_consistency(
    *,
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """Check that the tree (new_size, new_root) extends (old_size, old_root) (RFC 9162 §2.1.4.2).

    Raises ConsistencyProofError naming what is wrong. As in the transparency-dev/merkle
    vectors, size 0 is rejected (a proof from the empty tree shows nothing), and equal sizes
    need an empty proof and equal roots.
    """
    if old_size < 1:
        raise ConsistencyProofError(f"a proof from size {old_size} shows nothing")
    if new_size < old_size:
        raise ConsistencyProofError(f"the new size {new_size} is below the old size {old_size}")
    if old_size == new_size:
        if proof:
            raise ConsistencyProofError(
                f"the sizes are equal but the proof has {len(proof)} hashes, not none"
            )
        if old_root != new_root:
            raise ConsistencyProofError(
                f"the sizes are equal ({old_size}) but the roots differ: "
                f"{old_root.hex()} and {new_root.hex()}"
            )
        return
    _check_hash("the old root", old_root, ConsistencyProofError)
    _check_hash("the new root", new_root, ConsistencyProofError)
    want = _consistency_proof_length(old_size, new_size)
    if len(proof) != want:
        raise ConsistencyProofError(
            f"the proof has {len(proof)} hashes; sizes {old_size} to {new_size} need {want}"
        )
    for i, p in enumerate(proof):
        _check_hash(f"proof hash {i}", p, ConsistencyProofError)
    old, new = _roots_from_consistency_proof(old_size, new_size, old_root, proof)
    if old != old_root:
        raise ConsistencyProofError(
            f"the proof leads to old root {old.hex()}, not {old_root.hex()} (size {old_size})"
        )
    if new != new_root:
        raise ConsistencyProofError(
            f"the proof leads to new root {new.hex()}, not {new_root.hex()} (size {new_size})"
        )


def _consistency_proof_length(old_size: int, new_size: int) -> int:
    """len(PROOF(old_size, D[new_size])) for 0 < old_size < new_size."""
    # The path of leaf old_size - 1, less the levels inside the old tree's largest right
    # subtree (of 2**shift leaves), whose root is one hash: proof[0], or the old root itself.
    inner = ((old_size - 1) ^ (new_size - 1)).bit_length()
    border = ((old_size - 1) >> inner).bit_count()
    shift = (old_size & -old_size).bit_length() - 1
    seed = 0 if _is_power_of_two(old_size) else 1
    return seed + inner - shift + border


def _roots_from_consistency_proof(
    old_size: int, new_size: int, old_root: bytes, proof: Sequence[bytes]
) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 2-6: the old and new roots the proof leads to."""
    path = list(proof)
    if _is_power_of_two(old_size):  # step 2
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            raise ConsistencyProofError("the proof is longer than the path to the new root")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:  # step 7
        raise ConsistencyProofError("the proof is shorter than the path to the new root")
    return fr, sr


@dataclass(frozen=True, slots=True)
class MerkleFrontier:
    """The right edge of a tree: the roots of its complete subtrees, largest first.

    One hash per set bit of `size` (a "compact range" of [0, size)): enough to append
    leaves and compute the root without the rest of the tree.
    """

    size: int = 0
    hashes: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if self.size < 0 or len(self.hashes) != self.size.bit_count():
            raise ValueError(
                f"a tree of size {self.size} has {max(self.size, 0).bit_count()} right-edge "
                f"subtrees, not {len(self.hashes)}"
            )

    @classmethod
    def empty(cls) -> MerkleFrontier:
        return cls()

    @classmethod
    def from_reader(cls, size: int, read: HashReader) -> MerkleFrontier:
        """The frontier of the tree of `size` whose complete subtrees `read` serves."""
        if size < 0:
            raise ValueError(f"no tree has size {size}")
        hashes: list[bytes] = []
        start = 0
        for level in reversed(range(size.bit_length())):
            if size >> level & 1:
                hashes.append(read(level, start >> level))
                start += 1 << level
        return cls(size, tuple(hashes))

    def append(self, leaf_hashes: Iterable[bytes]) -> MerkleFrontier:
        """The frontier after appending leaves with these hashes."""
        stack, size = list(self.hashes), self.size
        for h in leaf_hashes:
            stack.append(h)
            # Each trailing 1 bit of the old size is a subtree of the new leaf's height.
            n = size
            while n & 1:
                right = stack.pop()
                stack.append(node_hash(stack.pop(), right))
                n >>= 1
            size += 1
        return MerkleFrontier(size, tuple(stack))

    def root(self) -> bytes:
        """MTH(D[size]): the subtrees hashed right to left (RFC 6962 §2.1)."""
        if not self.hashes:
            return empty_root()
        root = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            root = node_hash(h, root)
        return root
