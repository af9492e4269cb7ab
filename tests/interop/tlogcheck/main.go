// Command tlogcheck checks Custody's outputs with Go's own golang.org/x/mod/sumdb/note and
// sumdb/tlog packages, so byte compatibility is proven by code no one here wrote.
//
//	tlogcheck -vkey VKEY -root DIR [-prefix log/]   check a C2SP tlog-tiles log on disk
//	tlogcheck -vkey VKEY -verify-note FILE          open a signed note with note.Open
//	tlogcheck -skey SKEY -sign-note FILE            sign FILE's text with note.Sign
//
// It prints a one-line JSON summary and exits 1 on any failure.
package main

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const tileHeight = 8 // c2sp.org/tlog-tiles: tiles are 256 hashes wide

func main() {
	vkey := flag.String("vkey", "", "verifier key name+hexid+base64")
	skey := flag.String("skey", "", "private key PRIVATE+KEY+name+hexid+base64")
	root := flag.String("root", "", "directory holding the log")
	prefix := flag.String("prefix", "log/", "log prefix under -root")
	verifyNote := flag.String("verify-note", "", "signed note file to open")
	signNote := flag.String("sign-note", "", "note text file to sign")
	flag.Parse()

	var summary map[string]interface{}
	var err error
	switch {
	case *signNote != "":
		err = sign(*signNote, *skey)
	case *verifyNote != "":
		summary, err = openNote(*verifyNote, *vkey)
	case *root != "":
		summary, err = checkLog(filepath.Join(*root, *prefix), *vkey)
	default:
		err = errors.New("one of -root, -verify-note or -sign-note is required")
	}
	if err != nil {
		summary = map[string]interface{}{"ok": false, "error": err.Error()}
	} else if summary == nil {
		return
	} else {
		summary["ok"] = true
	}
	out, _ := json.Marshal(summary)
	fmt.Println(string(out))
	if err != nil {
		os.Exit(1)
	}
}

func sign(path, skey string) error {
	text, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return fmt.Errorf("note.NewSigner: %v", err)
	}
	msg, err := note.Sign(&note.Note{Text: string(text)}, signer)
	if err != nil {
		return fmt.Errorf("note.Sign: %v", err)
	}
	_, err = os.Stdout.Write(msg)
	return err
}

func openNote(path, vkey string) (map[string]interface{}, error) {
	msg, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	n, err := open(msg, vkey)
	if err != nil {
		return nil, err
	}
	return map[string]interface{}{
		"text": n.Text, "verified": len(n.Sigs), "unverified": len(n.UnverifiedSigs),
	}, nil
}

func open(msg []byte, vkey string) (*note.Note, error) {
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("note.NewVerifier: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		return nil, fmt.Errorf("note.Open: %v", err)
	}
	return n, nil
}

type checkpoint struct {
	origin string
	tree   tlog.Tree
}

// openCheckpoint verifies a signed checkpoint (c2sp.org/tlog-checkpoint) and parses its
// first three lines strictly. x/mod's tlog.ParseTree only reads go.sum's own header.
func openCheckpoint(path, vkey string) (checkpoint, error) {
	msg, err := os.ReadFile(path)
	if err != nil {
		return checkpoint{}, err
	}
	n, err := open(msg, vkey)
	if err != nil {
		return checkpoint{}, fmt.Errorf("%s: %v", path, err)
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 || lines[0] == "" {
		return checkpoint{}, fmt.Errorf("%s: malformed checkpoint text", path)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return checkpoint{}, fmt.Errorf("%s: malformed tree size %q", path, lines[1])
	}
	hash, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(hash) != tlog.HashSize {
		return checkpoint{}, fmt.Errorf("%s: malformed root hash %q", path, lines[2])
	}
	if verifier, _ := note.NewVerifier(vkey); lines[0] != verifier.Name() {
		return checkpoint{}, fmt.Errorf("%s: origin %q is not the key name", path, lines[0])
	}
	cp := checkpoint{origin: lines[0], tree: tlog.Tree{N: size}}
	copy(cp.tree.Hash[:], hash)
	return cp, nil
}

// tilePath is the C2SP tlog-tiles path tile/<L>/<N>[.p/<W>] (or tile/entries/...): unlike
// Go sumdb's Tile.Path there is no height element. <N> is split into 3-digit groups, all but
// the last prefixed with "x"; only partial tiles have the .p/<W> suffix.
func tilePath(level string, n int64, w int) string {
	nStr := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		nStr = fmt.Sprintf("x%03d/%s", n%1000, nStr)
	}
	if w != 1<<tileHeight {
		nStr += fmt.Sprintf(".p/%d", w)
	}
	return "tile/" + level + "/" + nStr
}

// readTile reads tile/<level>/<n>[.p/<w>] and checks its length. A log MUST serve the
// partial tiles of every size it signed a checkpoint for (tlog-tiles "Partial Tiles"), so
// there is no fallback to a wider tile: a missing one is a failure.
func readTile(dir, level string, n int64, w int) ([]byte, error) {
	return os.ReadFile(filepath.Join(dir, tilePath(level, n, w)))
}

// tileReader serves tiles from disk, each file read once (the tiles are immutable at a size).
type tileReader struct {
	dir   string
	cache map[tlog.Tile][]byte
}

func (r tileReader) Height() int { return tileHeight }

func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if t.H != tileHeight || t.L < 0 {
			return nil, fmt.Errorf("unexpected tile %+v", t)
		}
		data, ok := r.cache[t]
		if !ok {
			var err error
			if data, err = readTile(r.dir, strconv.Itoa(t.L), t.N, t.W); err != nil {
				return nil, err
			}
			r.cache[t] = data
		}
		if len(data) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("%s: %d bytes, want %d", tilePath(strconv.Itoa(t.L), t.N, t.W), len(data), t.W*tlog.HashSize)
		}
		out[i] = data
	}
	return out, nil
}

// readEntries decodes the entry bundles of a tree of size n: uint16 big-endian
// length-prefixed entries (tlog-tiles "Log entries").
func readEntries(dir string, n int64) ([][]byte, error) {
	var entries [][]byte
	for start := int64(0); start < n; start += 1 << tileHeight {
		w := int(n - start)
		if w > 1<<tileHeight {
			w = 1 << tileHeight
		}
		data, err := readTile(dir, "entries", start>>tileHeight, w)
		if err != nil {
			return nil, err
		}
		for got := 0; got < w; got++ {
			if len(data) < 2 || len(data) < 2+int(binary.BigEndian.Uint16(data)) {
				return nil, fmt.Errorf("bundle %d is truncated at entry %d", start>>tileHeight, got)
			}
			size := int(binary.BigEndian.Uint16(data))
			entries = append(entries, data[2:2+size])
			data = data[2+size:]
		}
		if len(data) != 0 {
			return nil, fmt.Errorf("bundle %d has bytes after its %d entries", start>>tileHeight, w)
		}
	}
	return entries, nil
}

func checkLog(dir, vkey string) (map[string]interface{}, error) {
	cp, err := openCheckpoint(filepath.Join(dir, "checkpoint"), vkey)
	if err != nil {
		return nil, err
	}
	size := cp.tree.N
	tiles := tileReader{dir, map[tlog.Tile][]byte{}}
	if err := checkRoot(size, cp.tree.Hash, tlog.TileHashReader(cp.tree, tiles)); err != nil {
		return nil, err
	}
	all, err := storedHashes(cp.tree, tiles)
	if err != nil {
		return nil, err
	}
	reader := memoryReader(all)
	if err := checkRoot(size, cp.tree.Hash, reader); err != nil {
		return nil, err
	}
	entries, err := readEntries(dir, size)
	if err != nil {
		return nil, err
	}
	for i, entry := range entries {
		if stored := all[tlog.StoredHashIndex(0, int64(i))]; tlog.RecordHash(entry) != stored {
			return nil, fmt.Errorf("entry %d: tlog.RecordHash is %v but its tile holds %v", i, tlog.RecordHash(entry), stored)
		}
		proof, err := tlog.ProveRecord(size, int64(i), reader)
		if err != nil {
			return nil, fmt.Errorf("tlog.ProveRecord(%d, %d): %v", size, i, err)
		}
		if err := tlog.CheckRecord(proof, size, cp.tree.Hash, int64(i), tlog.RecordHash(entry)); err != nil {
			return nil, fmt.Errorf("entry %d: tlog.CheckRecord: %v", i, err)
		}
	}
	archived, err := checkArchive(dir, vkey, cp.tree, reader)
	if err != nil {
		return nil, err
	}
	return map[string]interface{}{
		"origin": cp.origin, "size": size, "root": cp.tree.Hash.String(),
		"entries": len(entries), "checkpoints": archived,
	}, nil
}

// storedHashes reads every stored hash of the tree through tlog.TileHashReader, a batch at a
// time, so the per-entry proofs are computed from memory (through TileHashReader each would
// re-authenticate its tiles: about 500 SHA-256 per entry).
//
// TileHashReader is meant to authenticate every tile against the tree hash, but in x/mod
// (0.7.0 at least) its "authenticate full tiles against their parents" loop starts at
// len(stx), the number of tree-hash subtrees, rather than at the number of distinct tiles
// holding them; when those differ (e.g. size 300), the first tiles fetched for the requested
// indexes are never checked. So checkLinks checks every parent/child link itself.
func storedHashes(tree tlog.Tree, tiles tlog.TileReader) ([]tlog.Hash, error) {
	const batch = 1 << 14
	reader := tlog.TileHashReader(tree, tiles)
	count := tlog.StoredHashCount(tree.N)
	all := make([]tlog.Hash, 0, count)
	for start := int64(0); start < count; start += batch {
		indexes := []int64{}
		for i := start; i < count && i < start+batch; i++ {
			indexes = append(indexes, i)
		}
		hashes, err := reader.ReadHashes(indexes)
		if err != nil {
			return nil, fmt.Errorf("reading the tiles: %v", err)
		}
		all = append(all, hashes...)
	}
	return all, checkLinks(tree.N, all)
}

// checkLinks checks that each stored hash above level 0 is the node hash of its two
// children (RFC 6962 §2.1), so that with the root check every hash is tied to the root.
func checkLinks(n int64, all []tlog.Hash) error {
	for level := 1; int64(1)<<level <= n; level++ {
		for k := int64(0); (k+1)<<level <= n; k++ {
			left := all[tlog.StoredHashIndex(level-1, 2*k)]
			right := all[tlog.StoredHashIndex(level-1, 2*k+1)]
			if all[tlog.StoredHashIndex(level, k)] != tlog.NodeHash(left, right) {
				t := tlog.TileForIndex(tileHeight, tlog.StoredHashIndex(level-1, 2*k))
				return fmt.Errorf("tiles disagree: %s is not under its parent tile (level %d, hash %d)",
					tilePath(strconv.Itoa(t.L), t.N, 1<<tileHeight), level, k)
			}
		}
	}
	return nil
}

func memoryReader(all []tlog.Hash) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x < 0 || x >= int64(len(all)) {
				return nil, fmt.Errorf("stored hash %d is not in the tree", x)
			}
			out[i] = all[x]
		}
		return out, nil
	})
}

// checkRoot compares the checkpoint's root with tlog.TreeHash over the tiles. Go defines the
// empty tree's hash as all zeros; RFC 6962 §2.1 defines it as SHA-256 of the empty string.
func checkRoot(size int64, root tlog.Hash, reader tlog.HashReader) error {
	want := tlog.Hash(sha256.Sum256(nil))
	if size > 0 {
		var err error
		if want, err = tlog.TreeHash(size, reader); err != nil {
			return fmt.Errorf("tlog.TreeHash(%d): %v", size, err)
		}
	}
	if want != root {
		return fmt.Errorf("checkpoint root %v, but the tiles give %v", root, want)
	}
	return nil
}

// checkArchive verifies every checkpoints/<n> file and proves the current tree extends it.
func checkArchive(dir, vkey string, current tlog.Tree, reader tlog.HashReader) ([]int64, error) {
	files, err := os.ReadDir(filepath.Join(dir, "checkpoints"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	sizes := []int64{}
	for _, f := range files {
		old, err := openCheckpoint(filepath.Join(dir, "checkpoints", f.Name()), vkey)
		if err != nil {
			return nil, err
		}
		if strconv.FormatInt(old.tree.N, 10) != f.Name() {
			return nil, fmt.Errorf("checkpoints/%s holds size %d", f.Name(), old.tree.N)
		}
		if old.tree.N > current.N {
			return nil, fmt.Errorf("checkpoints/%s is larger than the checkpoint", f.Name())
		}
		if old.tree.N == 0 {
			if err := checkRoot(0, old.tree.Hash, reader); err != nil {
				return nil, fmt.Errorf("checkpoints/0: %v", err)
			}
		} else {
			proof, err := tlog.ProveTree(current.N, old.tree.N, reader)
			if err != nil {
				return nil, fmt.Errorf("tlog.ProveTree(%d, %d): %v", current.N, old.tree.N, err)
			}
			if err := tlog.CheckTree(proof, current.N, current.Hash, old.tree.N, old.tree.Hash); err != nil {
				return nil, fmt.Errorf("checkpoints/%s: tlog.CheckTree: %v", f.Name(), err)
			}
		}
		sizes = append(sizes, old.tree.N)
	}
	sort.Slice(sizes, func(i, j int) bool { return sizes[i] < sizes[j] })
	return sizes, nil
}
