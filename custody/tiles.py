"""C2SP tlog-tiles: tile and entry-bundle paths and encodings, and the integrator's append step.

Paths carry no prefix (the caller adds one, e.g. "log/"). Entry bundles are their own type,
`Bundle`, rather than a tile at a sentinel level: they hold entries, not hashes, and a
`Tile` is always a row of Merkle tree hashes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from custody.errors import TileError
from custody.merkle import HASH_SIZE, HashReader, MerkleFrontier, leaf_hash, root_from_leaf_hashes

TILE_HEIGHT = 8  # tlog-tiles: a tile is a subtree of height 8 ...
TILE_WIDTH = 256  # ... so a full tile is 2**8 hashes, 8,192 bytes
MAX_LEVEL = 63  # tlog-tiles: <L> is between 0 and 63
MAX_ENTRY_SIZE = 0xFFFF  # tlog-tiles: entries in a bundle have a big-endian uint16 length
_LENGTH_SIZE = 2

# tlog-tiles: tile/<L>/<N>[.p/<W>] and tile/entries/<N>[.p/<W>]; <L> and <W> decimal with no
# leading zeroes, <N> in 3-digit groups, all but the last prefixed with "x".
_PATH = re.compile(
    r"tile/(?P<level>entries|0|[1-9][0-9]?)/(?P<index>(?:x[0-9]{3}/)*[0-9]{3})"
    r"(?:\.p/(?P<width>[1-9][0-9]{0,2}))?"
)


@dataclass(frozen=True, slots=True)
class Tile:
    """The `index`-th tile at `level`: `width` hashes of subtrees of height 8 * level."""

    level: int
    index: int
    width: int

    def __post_init__(self) -> None:
        if not 0 <= self.level <= MAX_LEVEL:
            raise TileError(f"tile level {self.level} is not in [0, {MAX_LEVEL}]")
        _check_position("tile", self.index, self.width)

    @property
    def is_full(self) -> bool:
        return self.width == TILE_WIDTH


@dataclass(frozen=True, slots=True)
class Bundle:
    """The `index`-th entry bundle: `width` entries from index * 256 on."""

    index: int
    width: int

    def __post_init__(self) -> None:
        _check_position("entry bundle", self.index, self.width)

    @property
    def is_full(self) -> bool:
        return self.width == TILE_WIDTH


def _check_position(what: str, index: int, width: int) -> None:
    if index < 0:
        raise TileError(f"{what} index {index} is negative")
    if not 1 <= width <= TILE_WIDTH:  # tlog-tiles: empty tiles MUST NOT be served
        raise TileError(f"{what} width {width} is not in [1, {TILE_WIDTH}]")


@dataclass(frozen=True, slots=True)
class Integration:
    """The tree after an append: its size and root, and every tile and bundle new or changed.

    Writing all of them makes the store describe the tree of `new_size`; the checkpoint
    must be written after them. Both dicts are ordered from level 0 up.
    """

    new_size: int
    root: bytes
    tiles: dict[Tile, bytes]
    bundles: dict[Bundle, bytes]


def _encode_index(index: int) -> str:
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def _suffix(width: int) -> str:
    return "" if width == TILE_WIDTH else f".p/{width}"  # tlog-tiles: only partial tiles


def tile_path(tile: Tile) -> str:
    """tile/<L>/<N>[.p/<W>] (tlog-tiles "Merkle Tree")."""
    return f"tile/{tile.level}/{_encode_index(tile.index)}{_suffix(tile.width)}"


def bundle_path(bundle: Bundle) -> str:
    """tile/entries/<N>[.p/<W>] (tlog-tiles "Log entries")."""
    return f"tile/entries/{_encode_index(bundle.index)}{_suffix(bundle.width)}"


def parse_path(path: str) -> Tile | Bundle:
    """The tile or bundle at a canonical tlog-tiles path; TileError for any other string."""
    match = _PATH.fullmatch(path)
    if match is None:
        raise TileError(f"not a tlog-tiles tile or entry bundle path: {path!r}")
    index = int(match["index"].replace("x", "").replace("/", ""))
    width = int(match["width"] or TILE_WIDTH)
    try:
        level = match["level"]
        parsed = Bundle(index, width) if level == "entries" else Tile(int(level), index, width)
    except TileError as e:  # a level above 63 or a width above 256
        raise TileError(f"{e}: {path!r}") from e
    # One path per tile: rejects a leading x000 group, a .p/256 suffix, and any other
    # second spelling of a path.
    canonical = bundle_path(parsed) if isinstance(parsed, Bundle) else tile_path(parsed)
    if canonical != path:
        raise TileError(f"not the canonical path {canonical!r}: {path!r}")
    return parsed


def encode_bundle(entries: Iterable[bytes]) -> bytes:
    """Entries, each after its big-endian uint16 length (tlog-tiles "Log entries")."""
    out = bytearray()
    for i, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_SIZE:
            raise TileError(
                f"entry {i} is {len(entry)} bytes; a bundle holds entries of <= {MAX_ENTRY_SIZE}"
            )
        out += len(entry).to_bytes(_LENGTH_SIZE, "big")
        out += entry
    return bytes(out)


def decode_bundle(data: bytes) -> list[bytes]:
    """The entries of an entry bundle; TileError if it is truncated."""
    entries: list[bytes] = []
    at = 0
    while at < len(data):
        if len(data) - at < _LENGTH_SIZE:
            raise TileError(f"entry bundle truncated in the length of entry {len(entries)}")
        size = int.from_bytes(data[at : at + _LENGTH_SIZE], "big")
        at += _LENGTH_SIZE
        if len(data) - at < size:
            raise TileError(
                f"entry bundle truncated: entry {len(entries)} has {len(data) - at} of {size} bytes"
            )
        entries.append(data[at : at + size])
        at += size
    return entries


def encode_tile(hashes: Sequence[bytes]) -> bytes:
    """A tile's bytes: its 1 to 256 hashes, concatenated (tlog-tiles "Merkle Tree")."""
    if not 1 <= len(hashes) <= TILE_WIDTH:
        raise TileError(f"a tile holds 1 to {TILE_WIDTH} hashes, not {len(hashes)}")
    for i, h in enumerate(hashes):
        if len(h) != HASH_SIZE:
            raise TileError(f"tile hash {i} is {len(h)} bytes, not {HASH_SIZE}")
    return b"".join(hashes)


def decode_tile(data: bytes, width: int) -> list[bytes]:
    """The `width` hashes of a tile's bytes; TileError if it is not exactly that long."""
    if not 1 <= width <= TILE_WIDTH:
        raise TileError(f"tile width {width} is not in [1, {TILE_WIDTH}]")
    if len(data) != width * HASH_SIZE:
        raise TileError(f"a tile of width {width} is {width * HASH_SIZE} bytes, not {len(data)}")
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def _row(size: int, level: int) -> list[tuple[int, int]]:
    """(index, width) of each tile at `level` of the tree of `size` (tlog-tiles "Partial Tiles")."""
    count = size >> (TILE_HEIGHT * level)  # hashes at this level: complete 256**level subtrees
    full, rest = divmod(count, TILE_WIDTH)
    return [(i, TILE_WIDTH) for i in range(full)] + ([(full, rest)] if rest else [])


def tiles_for_size(size: int) -> list[Tile]:
    """Every tile of the tree of `size`, level 0 first, with the width it has at that size."""
    tiles: list[Tile] = []
    level = 0
    while size >> (TILE_HEIGHT * level):
        tiles += [Tile(level, index, width) for index, width in _row(size, level)]
        level += 1
    return tiles


def bundles_for_size(size: int) -> list[Bundle]:
    """Every entry bundle of the tree of `size`, with the width it has at that size."""
    return [Bundle(index, width) for index, width in _row(size, 0)]


def _tile_at(size: int, level: int, index: int) -> Tile:
    count = size >> (TILE_HEIGHT * level)
    return Tile(level, index, min(TILE_WIDTH, count - index * TILE_WIDTH))


def _read_hashes(tile: Tile, read_tile: Callable[[Tile], bytes]) -> list[bytes]:
    try:
        return decode_tile(read_tile(tile), tile.width)
    except TileError as e:
        raise TileError(f"{tile_path(tile)}: {e}") from e


def read_hash_from_tiles(size: int, read_tile: Callable[[Tile], bytes]) -> HashReader:
    """A HashReader serving the complete subtrees of the tree of `size` from its tiles.

    Heights between tile levels are rebuilt from the tile below, as tlog-tiles says: "The
    Merkle Tree levels between those expressed by the tile hashes are reconstructed by
    hashing the leaves". Tiles are read once per reader.
    """
    cache: dict[Tile, list[bytes]] = {}

    def read(level: int, index: int) -> bytes:
        if level < 0 or index < 0 or (index + 1) << level > size:
            raise TileError(
                f"the tree of size {size} has no complete subtree at level {level}, index {index}"
            )
        tile_level, height = divmod(level, TILE_HEIGHT)
        first = index << height  # the subtree's first hash in the tile level below it
        tile = _tile_at(size, tile_level, first // TILE_WIDTH)
        if tile not in cache:
            cache[tile] = _read_hashes(tile, read_tile)
        offset = first % TILE_WIDTH
        return root_from_leaf_hashes(cache[tile][offset : offset + (1 << height)])

    return read


def _read_partial(
    size: int, level: int, read_tile: Callable[[Tile], bytes]
) -> tuple[int, list[bytes]]:
    """The index of the last tile at `level` that is not full at `size`, and its hashes."""
    index, width = divmod(size >> (TILE_HEIGHT * level), TILE_WIDTH)
    return index, _read_hashes(Tile(level, index, width), read_tile) if width else []


def _read_partial_bundle(size: int, read_bundle: Callable[[Bundle], bytes]) -> list[bytes]:
    index, width = divmod(size, TILE_WIDTH)
    if not width:
        return []
    bundle = Bundle(index, width)
    entries = decode_bundle(read_bundle(bundle))
    if len(entries) != width:
        raise TileError(f"{bundle_path(bundle)} holds {len(entries)} entries, not {width}")
    return entries


def _chunks(items: Sequence[bytes]) -> list[Sequence[bytes]]:
    return [items[i : i + TILE_WIDTH] for i in range(0, len(items), TILE_WIDTH)]


def integrate(
    *,
    old_size: int,
    new_entries: Sequence[bytes],
    read_tile: Callable[[Tile], bytes],
    read_bundle: Callable[[Bundle], bytes],
) -> Integration:
    """Append `new_entries` to the stored tree of `old_size`: the objects to write, the root.

    Reads only the right edge: the partial bundle and the partial tile of each level.
    """
    if old_size < 0:
        raise TileError(f"no tree has size {old_size}")
    new_size = old_size + len(new_entries)
    tiles: dict[Tile, bytes] = {}
    bundles: dict[Bundle, bytes] = {}
    if new_entries:
        old_entries = _read_partial_bundle(old_size, read_bundle)
        _, row = _read_partial(old_size, 0, read_tile)
        first = old_size // TILE_WIDTH
        if row != [leaf_hash(e) for e in old_entries]:
            raise TileError(f"{bundle_path(Bundle(first, len(row)))} does not hash to its tile")
        for i, chunk in enumerate(_chunks([*old_entries, *new_entries])):
            bundles[Bundle(first + i, len(chunk))] = encode_bundle(chunk)
        _append_hashes(old_size, [*row, *map(leaf_hash, new_entries)], tiles, read_tile)

    def read_new(tile: Tile) -> bytes:
        return tiles[tile] if tile in tiles else read_tile(tile)

    root = MerkleFrontier.from_reader(new_size, read_hash_from_tiles(new_size, read_new)).root()
    return Integration(new_size, root, tiles, bundles)


def _append_hashes(
    old_size: int, row: list[bytes], tiles: dict[Tile, bytes], read_tile: Callable[[Tile], bytes]
) -> None:
    """Add to `tiles` each tile changed at every level, given level 0 from its partial tile on."""
    level, first = 0, old_size // TILE_WIDTH
    while True:
        above = []
        for i, chunk in enumerate(_chunks(row)):
            tiles[Tile(level, first + i, len(chunk))] = encode_tile(chunk)
            if len(chunk) == TILE_WIDTH:
                # tlog-tiles: a hash at level l + 1 is the MTH of a full tile at level l.
                above.append(root_from_leaf_hashes(chunk))
        if not above:
            return
        level += 1
        first, row = _read_partial(old_size, level, read_tile)
        row += above
