"""Tests for custody.tiles: C2SP tlog-tiles paths, encodings, tile reads and integration."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custody.errors import CustodyError, TileError
from custody.merkle import (
    MerkleFrontier,
    consistency_proof,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from custody.tiles import (
    MAX_ENTRY_SIZE,
    TILE_HEIGHT,
    TILE_WIDTH,
    Bundle,
    Integration,
    Tile,
    bundle_path,
    bundles_for_size,
    decode_bundle,
    decode_tile,
    encode_bundle,
    encode_tile,
    integrate,
    parse_path,
    read_hash_from_tiles,
    tile_path,
    tiles_for_size,
)
from tests.custody.test_merkle import mth, sha256  # the independent RFC 6962 model

VECTORS = Path(__file__).resolve().parents[2].parent / "shared" / "vectors" / "merkle"
NO_VECTORS = f"the RFC 6962 vectors are not at {VECTORS} (a checkout outside the workspace)"
MAX_ENTRIES = 6000
PROPERTY = settings(max_examples=40, deadline=None)


# --- an independent model: the spec's formulas, computed naively --------------------------


@functools.cache
def entries() -> tuple[bytes, ...]:
    return tuple(f"entry {i}".encode() for i in range(70_000))


@functools.cache
def leaves() -> tuple[bytes, ...]:
    return tuple(sha256(b"\x00" + e) for e in entries())


def spec_tile(tile: Tile) -> bytes:
    """tlog-tiles: hash i of tile n at level l is MTH(D[(n*256+i)*256**l : (n*256+i+1)*256**l])."""
    span = TILE_WIDTH**tile.level
    first = tile.index * TILE_WIDTH
    return b"".join(
        mth(leaves()[(first + i) * span : (first + i + 1) * span]) for i in range(tile.width)
    )


class Store:
    """An in-memory log store that counts reads, keyed by tlog-tiles path."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.reads: list[str] = []

    def read_tile(self, tile: Tile) -> bytes:
        self.reads.append(tile_path(tile))
        return self.objects[tile_path(tile)]

    def read_bundle(self, bundle: Bundle) -> bytes:
        self.reads.append(bundle_path(bundle))
        return self.objects[bundle_path(bundle)]

    def append(self, size: int, new: Sequence[bytes]) -> Integration:
        self.reads.clear()
        result = integrate(
            old_size=size,
            new_entries=new,
            read_tile=self.read_tile,
            read_bundle=self.read_bundle,
        )
        self.objects.update({tile_path(t): data for t, data in result.tiles.items()})
        self.objects.update({bundle_path(b): data for b, data in result.bundles.items()})
        return result


def store_of(size: int) -> Store:
    store = Store()
    store.append(0, entries()[:size])
    return store


# --- paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "path"),
    [
        (Tile(0, 1234067, 256), "tile/0/x001/x234/067"),  # the spec's example
        (Tile(0, 1234067, 5), "tile/0/x001/x234/067.p/5"),
        (Tile(1, 0, 1), "tile/1/000.p/1"),
        (Tile(2, 999, 255), "tile/2/999.p/255"),
        (Tile(63, 1000, 256), "tile/63/x001/000"),
        (Tile(0, 1_000_000, 256), "tile/0/x001/x000/000"),
        (Bundle(0, 256), "tile/entries/000"),
        (Bundle(123456, 17), "tile/entries/x123/456.p/17"),
    ],
)
def test_paths_are_the_specs(obj: Tile | Bundle, path: str) -> None:
    assert (bundle_path(obj) if isinstance(obj, Bundle) else tile_path(obj)) == path
    assert parse_path(path) == obj


@PROPERTY
@given(st.integers(0, 63), st.integers(0, 10**15), st.integers(1, 256), st.booleans())
def test_paths_round_trip(level: int, index: int, width: int, bundle: bool) -> None:
    obj: Tile | Bundle = Bundle(index, width) if bundle else Tile(level, index, width)
    path = bundle_path(obj) if isinstance(obj, Bundle) else tile_path(obj)
    assert parse_path(path) == obj
    assert path.endswith(f".p/{width}") == (width < TILE_WIDTH)


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/1",  # groups are three digits
        "tile/0/0001",
        "tile/0/x000/001",  # a leading zero group: not canonical
        "tile/0/x001",  # the last group has no x
        "tile/0/001/002",  # only the last group lacks the x
        "tile/0/X001/000",
        "tile/0/x01/000",
        "tile/00/000",  # no leading zeroes in <L>
        "tile/01/000",
        "tile/64/000",  # <L> is at most 63
        "tile/-1/000",
        "tile/0/000.p/256",  # a full tile has no suffix
        "tile/0/000.p/0",  # empty tiles do not exist
        "tile/0/000.p/05",
        "tile/0/000.p/",
        "tile/0/000.p/1000",
        "tile/0/000.p",
        "tile/0/000/",
        "tile/entries/000.p/256",
        "tile/entries/x000/000",
        "tile/data/000",  # Go sumdb's name for entry tiles
        "tile/8/0/000",  # Go sumdb's paths carry the tile height
        "/tile/0/000",
        "log/tile/0/000",  # the caller strips its prefix
        "tile/0/000\n",
        "tile/0/\u0660\u0660\u0660",  # Arabic-Indic digits are digits to str.isdigit
        "tile/0/000.p/\uff11",
        "",
    ],
)
def test_non_canonical_paths_are_rejected(path: str) -> None:
    with pytest.raises(TileError):
        parse_path(path)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="tile/entrsx0123456789.p", max_size=30))
def test_a_path_parses_only_if_it_is_canonical(path: str) -> None:
    try:
        obj = parse_path(path)
    except TileError:
        return
    assert (bundle_path(obj) if isinstance(obj, Bundle) else tile_path(obj)) == path


@pytest.mark.parametrize(
    "make",
    [
        lambda: Tile(-1, 0, 1),
        lambda: Tile(64, 0, 1),
        lambda: Tile(0, -1, 1),
        lambda: Tile(0, 0, 0),
        lambda: Tile(0, 0, 257),
        lambda: Bundle(-1, 1),
        lambda: Bundle(0, 0),
        lambda: Bundle(0, 257),
    ],
)
def test_impossible_tiles_and_bundles_are_rejected(make: Callable[[], object]) -> None:
    with pytest.raises(TileError):
        make()


def test_tile_error_is_a_custody_error() -> None:
    assert issubclass(TileError, CustodyError)
    assert Tile(0, 0, 256).is_full
    assert not Bundle(0, 255).is_full


# --- encodings ----------------------------------------------------------------------------


def test_bundle_encoding_is_uint16_length_prefixed() -> None:
    assert encode_bundle([b"", b"ab", b"\x00" * 300]) == (
        b"\x00\x00" + b"\x00\x02ab" + b"\x01\x2c" + b"\x00" * 300
    )
    assert decode_bundle(b"") == []
    with pytest.raises(TileError, match="truncated in the length of entry 1"):
        decode_bundle(b"\x00\x00\x00")
    assert decode_bundle(encode_bundle([b"x" * MAX_ENTRY_SIZE])) == [b"x" * MAX_ENTRY_SIZE]
    with pytest.raises(TileError, match="entry 1 is 65536 bytes"):
        encode_bundle([b"", b"x" * (MAX_ENTRY_SIZE + 1)])


@PROPERTY
@given(st.lists(st.binary(max_size=600), max_size=20))
def test_bundles_round_trip_and_every_truncation_is_rejected(items: list[bytes]) -> None:
    data = encode_bundle(items)
    assert decode_bundle(data) == items
    boundaries, at = {0}, 0
    for item in items:
        at += 2 + len(item)
        boundaries.add(at)
    for cut in range(len(data)):
        if cut in boundaries:
            assert decode_bundle(data[:cut]) == items[: sorted(boundaries).index(cut)]
        else:
            with pytest.raises(TileError, match="truncated"):
                decode_bundle(data[:cut])


@PROPERTY
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=256))
def test_tiles_round_trip(hashes: list[bytes]) -> None:
    data = encode_tile(hashes)
    assert data == b"".join(hashes)
    assert decode_tile(data, len(hashes)) == hashes
    for width in {len(hashes) - 1, len(hashes) + 1} - {0, 257}:
        with pytest.raises(TileError, match=f"width {width}"):
            decode_tile(data, width)


@pytest.mark.parametrize(
    "call",
    [
        lambda: encode_tile([]),
        lambda: encode_tile([b"h" * 32] * 257),
        lambda: encode_tile([b"h" * 32, b"h" * 31]),
        lambda: decode_tile(b"", 0),
        lambda: decode_tile(b"h" * 32 * 257, 257),
        lambda: decode_tile(b"h" * 33, 1),
    ],
)
def test_malformed_tiles_are_rejected(call: Callable[[], object]) -> None:
    with pytest.raises(TileError):
        call()


# --- which tiles exist --------------------------------------------------------------------


def test_tiles_for_size_follow_the_specs_examples() -> None:
    # tlog-tiles: "a tree of size 70,000 will be represented by 273 full level 0 tiles, one
    # partial level 0 tile of width 112, one full level 1 tile, one partial level 1 tile of
    # width 17, and one partial level 2 tile of width 1."
    assert tiles_for_size(70_000) == [
        *(Tile(0, n, 256) for n in range(273)),
        Tile(0, 273, 112),
        Tile(1, 0, 256),
        Tile(1, 1, 17),
        Tile(2, 0, 1),
    ]
    # "a tree of size 256 will be represented by a full level 0 tile and a partial level 1
    # tile of width 1."
    assert tiles_for_size(256) == [Tile(0, 0, 256), Tile(1, 0, 1)]
    assert tiles_for_size(0) == []
    assert tiles_for_size(1) == [Tile(0, 0, 1)]
    assert tiles_for_size(2**16) == [
        *(Tile(0, n, 256) for n in range(256)),
        Tile(1, 0, 256),
        Tile(2, 0, 1),
    ]
    assert bundles_for_size(70_000) == [*(Bundle(n, 256) for n in range(273)), Bundle(273, 112)]
    assert bundles_for_size(0) == []


# --- integration: known answers -----------------------------------------------------------


@pytest.mark.skipif(not VECTORS.is_dir(), reason=NO_VECTORS)
def test_integrating_the_reference_tree_gives_its_roots() -> None:
    reference = json.loads((VECTORS / "reference-tree.json").read_text())
    items = [bytes.fromhex(x) for x in reference["leaves_hex"]]
    hashes = [sha256(b"\x00" + e) for e in items]
    store = Store()
    assert store.append(0, []).root.hex() == reference["roots_by_size_hex"][0]
    for size, root in enumerate(reference["roots_by_size_hex"][1:], start=1):
        result = store.append(size - 1, items[size - 1 : size])
        assert (result.new_size, result.root.hex()) == (size, root)
        assert result.tiles == {Tile(0, 0, size): b"".join(hashes[:size])}
        assert result.bundles == {Bundle(0, size): encode_bundle(items[:size])}


@pytest.mark.parametrize(
    ("size", "tiles", "bundles"),
    [
        (1, {"tile/0/000.p/1": (0, 1)}, {"tile/entries/000.p/1": (0, 1)}),
        (2, {"tile/0/000.p/2": (0, 2)}, {"tile/entries/000.p/2": (0, 2)}),
        (3, {"tile/0/000.p/3": (0, 3)}, {"tile/entries/000.p/3": (0, 3)}),
        (256, {"tile/0/000": (0, 256), "tile/1/000.p/1": None}, {"tile/entries/000": (0, 256)}),
        (
            257,
            {"tile/0/000": (0, 256), "tile/0/001.p/1": (256, 257), "tile/1/000.p/1": None},
            {"tile/entries/000": (0, 256), "tile/entries/001.p/1": (256, 257)},
        ),
    ],
)
def test_small_trees_have_exactly_these_tiles(
    size: int,
    tiles: dict[str, tuple[int, int] | None],
    bundles: dict[str, tuple[int, int]],
) -> None:
    result = store_of(0).append(0, entries()[:size])
    level_1 = mth(leaves()[:256])  # the one hash of tile/1/000.p/1: MTH of the first 256
    assert {tile_path(t): d for t, d in result.tiles.items()} == {
        path: level_1 if span is None else b"".join(leaves()[span[0] : span[1]])
        for path, span in tiles.items()
    }
    assert {bundle_path(b): d for b, d in result.bundles.items()} == {
        path: encode_bundle(entries()[a:b]) for path, (a, b) in bundles.items()
    }
    assert result.root == mth(leaves()[:size])


def test_a_tree_of_70000_has_the_specs_tiles_with_the_specs_hashes() -> None:
    store = Store()
    size = 0
    for batch in (1, 255, 1, 65_279, 1, 4_463):  # across full tiles at levels 0, 1 and 2
        result = store.append(size, entries()[size : size + batch])
        size += batch
        assert result.root == mth(leaves()[:size])
    assert size == 70_000
    for tile in tiles_for_size(size):
        assert store.objects[tile_path(tile)] == spec_tile(tile), tile_path(tile)
    assert store_of(size).objects.keys() <= store.objects.keys()


# --- integration: properties --------------------------------------------------------------


@PROPERTY
@given(st.lists(st.integers(0, 3000), min_size=1, max_size=6))
def test_repeated_integration_equals_one_shot(batches: list[int]) -> None:
    store, size = Store(), 0
    for batch in batches:
        new = entries()[size : size + batch]
        result = store.append(size, new)
        _check_reads(store.reads, size, batch)
        size += batch
        assert result.new_size == size
        assert result.root == mth(leaves()[:size])
        # Exactly the objects that are new or have a new width at this size.
        assert set(result.tiles) == set(tiles_for_size(size)) - set(tiles_for_size(size - batch))
        assert set(result.bundles) == set(bundles_for_size(size)) - set(
            bundles_for_size(size - batch)
        )
        _check_describes(store, size, result.root)
    one_shot = store_of(size)
    wanted = [tile_path(t) for t in tiles_for_size(size)]
    wanted += [bundle_path(b) for b in bundles_for_size(size)]
    assert {p: store.objects[p] for p in wanted} == one_shot.objects
    assert [
        e for b in bundles_for_size(size) for e in decode_bundle(store.objects[bundle_path(b)])
    ] == list(entries()[:size])


def _check_reads(reads: list[str], old: int, batch: int) -> None:
    """Only the old right edge is read: partial objects, at most one per level and the bundle."""
    assert all(".p/" in path for path in reads), reads
    assert len(reads) == len(set(reads)), reads
    levels = len({t.level for t in tiles_for_size(old + batch)})
    assert len(reads) <= levels + 1, reads


def _check_describes(store: Store, size: int, root: bytes) -> None:
    """The store now serves the tree of `size`: every object exists; proofs verify."""
    for tile in tiles_for_size(size):
        assert len(store.objects[tile_path(tile)]) == 32 * tile.width
    assert (
        sum(len(decode_bundle(store.objects[bundle_path(b)])) for b in bundles_for_size(size))
        == size
    )
    if size:
        read = read_hash_from_tiles(size, store.read_tile)
        assert MerkleFrontier.from_reader(size, read).root() == root
        for index in {0, size // 3, size - 1}:
            proof = inclusion_proof(index, size, read)
            verify_inclusion(
                index=index, size=size, leaf_hash=leaves()[index], proof=proof, root=root
            )


@PROPERTY
@given(st.integers(1, MAX_ENTRIES), st.data())
def test_tiles_serve_every_complete_subtree_and_proofs_from_them_verify(
    size: int, data: st.DataObject
) -> None:
    store = store_of(size)
    read = read_hash_from_tiles(size, store.read_tile)
    level = data.draw(st.integers(0, size.bit_length() - 1))
    index = data.draw(st.integers(0, (size >> level) - 1))
    assert read(level, index) == mth(leaves()[index << level : (index + 1) << level])
    root = mth(leaves()[:size])
    leaf = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(leaf, size, read)
    verify_inclusion(index=leaf, size=size, leaf_hash=leaves()[leaf], proof=proof, root=root)
    old = data.draw(st.integers(1, size))
    # Each reader serves one tree size: the one in its checkpoint. A reader for the new size
    # makes the proof; the old size's partial tiles need not exist any more.
    proof = consistency_proof(old, size, read)
    verify_consistency(
        old_size=old, new_size=size, old_root=mth(leaves()[:old]), new_root=root, proof=proof
    )


@pytest.mark.parametrize(("level", "index"), [(0, 300), (1, 150), (8, 1), (9, 0), (-1, 0), (0, -1)])
def test_a_subtree_outside_the_tree_is_refused(level: int, index: int) -> None:
    read = read_hash_from_tiles(300, store_of(300).read_tile)
    with pytest.raises(TileError, match=f"no complete subtree at level {level}, index {index}"):
        read(level, index)


def test_all_of_a_tiles_hashes_come_from_one_read() -> None:
    store = store_of(1000)
    read = read_hash_from_tiles(1000, store.read_tile)
    store.reads.clear()
    for index in range(256):
        read(0, index)
    read(8, 0)  # from tile/1/000.p/3, not from the 256 leaves
    read(7, 1)  # within tile/0/000
    assert store.reads == ["tile/0/000", "tile/1/000.p/3"]


def test_a_short_tile_is_named() -> None:
    store = store_of(300)
    store.objects["tile/0/001.p/44"] = store.objects["tile/0/001.p/44"][:-1]
    read = read_hash_from_tiles(300, store.read_tile)
    with pytest.raises(TileError, match=r"tile/0/001\.p/44: a tile of width 44 is 1408 bytes"):
        read(0, 299)


def test_integrating_nothing_changes_nothing() -> None:
    assert integrate(old_size=0, new_entries=[], read_tile=_no_read, read_bundle=_no_read) == (
        Integration(0, sha256(b""), {}, {})
    )
    store = store_of(1000)
    result = store.append(1000, [])
    assert (result.new_size, result.root, result.tiles, result.bundles) == (
        1000,
        mth(leaves()[:1000]),
        {},
        {},
    )
    assert all(".p/" in path for path in store.reads)


def _no_read(_: object) -> bytes:
    raise AssertionError("read")


def test_a_partial_bundle_that_disagrees_with_its_tile_is_refused() -> None:
    store = store_of(300)
    store.objects["tile/entries/001.p/44"] = encode_bundle([b"forged", *entries()[257:300]])
    with pytest.raises(TileError, match=r"tile/entries/001\.p/44 does not hash to its tile"):
        store.append(300, [b"next"])


def test_a_partial_bundle_with_the_wrong_count_is_refused() -> None:
    store = store_of(300)
    store.objects["tile/entries/001.p/44"] = encode_bundle(entries()[256:299])
    with pytest.raises(TileError, match=r"tile/entries/001\.p/44 holds 43 entries, not 44"):
        store.append(300, [b"next"])


def test_an_oversized_entry_is_refused() -> None:
    with pytest.raises(TileError, match="65536 bytes"):
        integrate(
            old_size=0,
            new_entries=[b"x" * (MAX_ENTRY_SIZE + 1)],
            read_tile=_no_read,
            read_bundle=_no_read,
        )


def test_tile_geometry_constants() -> None:
    assert TILE_WIDTH == 2**TILE_HEIGHT == 256
