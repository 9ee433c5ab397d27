"""NAS-Bench-101 search space: pruning, validity, the official module hash, enumeration.

    python -m nb101.search_space    # enumerate the space (or load its cache) and print counts

A cell is a DAG of at most 7 vertices (first = input, last = output) and at most 9
edges, given as an upper-triangular 0/1 adjacency matrix and a list of op names.
`enumerate_space()` lists every one of the 423,624 unique architectures, each as
the first generated graph of its isomorphism class, with its official hash, and
builds a table that maps any labelled graph to its class (used by
`Space.lookup` to find a mutated spec in the space without hashing it).
"""
import hashlib
import itertools
import os
import sys
import time
import zipfile
from dataclasses import dataclass

import numpy as np

from .files import atomic_output

INPUT, OUTPUT = "input", "output"
OPS = ["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"]
MAX_VERTICES, MAX_EDGES = 7, 9
NUM_EDGES = MAX_VERTICES * (MAX_VERTICES - 1) // 2  # entries of the upper triangle: 21 possible edges
VERTEX_TYPES = (INPUT, OUTPUT, *OPS)  # the predictors' one-hot vertex types, in their column order
OP_SPOTS = MAX_VERTICES - 2  # interior vertices of a 7-vertex spec
MUTATION_DRAWS = NUM_EDGES + 2 * OP_SPOTS  # uniforms per mutation: edge flips, op changes, new op choice
# integer codes used by the HDF5 file and the module hash
INPUT_CODE, OUTPUT_CODE = -1, -2
UNIQUE_COUNTS = {2: 1, 3: 6, 4: 84, 5: 2441, 6: 62010, 7: 359082}
NUM_ARCHITECTURES = sum(UNIQUE_COUNTS.values())  # 423,624
CACHE_VERSION = 1
CACHE_DIR_VARIABLE = "NB101_CACHE_DIR"


def cache_dir():
    """Where nb101 keeps what it builds once (the enumerated space, HDF5 copies of TFRecord files):
    $NB101_CACHE_DIR if set, else $XDG_CACHE_HOME/nb101, else ~/.cache/nb101."""
    if os.environ.get(CACHE_DIR_VARIABLE):
        return os.environ[CACHE_DIR_VARIABLE]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "nb101")


def default_space_cache():
    """The enumerated space's cache file: space.npz in cache_dir()."""
    return os.path.join(cache_dir(), "space.npz")


# ---------------------------------------------------------------------------
# single specs


def ops_to_codes(ops):
    """Op names -> integer codes: input -1, output -2, interior op index in OPS."""
    table = {INPUT: INPUT_CODE, OUTPUT: OUTPUT_CODE, **{op: i for i, op in enumerate(OPS)}}
    try:
        return [table[op] for op in ops]
    except KeyError as e:
        raise ValueError(f"unknown operation {e.args[0]!r}; expected one of {[INPUT, OUTPUT] + OPS}") from None


def codes_to_ops(codes):
    """Integer codes -> op names (inverse of ops_to_codes)."""
    names = {INPUT_CODE: INPUT, OUTPUT_CODE: OUTPUT, **dict(enumerate(OPS))}
    return [names[int(c)] for c in codes]


def prune(matrix, ops):
    """Remove vertices that are not on a path from input to output.

    Returns (matrix, ops) of the pruned spec, or None when output is not reachable
    from input. Vertex order is kept.
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    keep = on_input_output_paths(matrix)
    if not (keep[0] and keep[-1]):
        return None
    keep = np.flatnonzero(keep)
    return matrix[np.ix_(keep, keep)], [ops[v] for v in keep]


def on_input_output_paths(matrix):
    """(n,) True for each vertex on a path from the input (vertex 0) to the output (vertex n-1); an entry that is
    not zero is an edge."""
    edges = np.asarray(matrix) != 0
    return _reachable(edges, 0) & _reachable(edges.T, len(edges) - 1)


def _reachable(matrix, start):
    seen = np.zeros(matrix.shape[0], dtype=bool)
    seen[start] = True
    frontier = [start]
    while frontier:
        v = frontier.pop()
        for w in np.flatnonzero(matrix[v]):
            if not seen[w]:
                seen[w] = True
                frontier.append(w)
    return seen


def check_spec(matrix, ops):
    """Return (matrix, ops) pruned, or raise ValueError saying why the spec is invalid."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"adjacency must be a square matrix, got shape {matrix.shape}")
    if len(ops) != matrix.shape[0]:
        raise ValueError(f"{len(ops)} operations for a {matrix.shape[0]}-vertex adjacency")
    if matrix.shape[0] < 2:
        raise ValueError("a cell needs at least an input and an output vertex")
    if not np.isin(matrix, (0, 1)).all():
        raise ValueError("adjacency entries must be 0 or 1")
    if np.tril(matrix).any():
        raise ValueError("adjacency must be strictly upper triangular")
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise ValueError("first operation must be 'input' and last 'output'")
    codes = ops_to_codes(ops)
    if INPUT_CODE in codes[1:] or OUTPUT_CODE in codes[:-1]:
        raise ValueError("'input' and 'output' may only be the first and last operations")
    pruned = prune(matrix, ops)
    if pruned is None:
        raise ValueError("output is not reachable from input")
    if pruned[0].shape[0] > MAX_VERTICES:
        raise ValueError(f"{pruned[0].shape[0]} vertices after pruning, at most {MAX_VERTICES} allowed")
    if pruned[0].sum() > MAX_EDGES:
        raise ValueError(f"{int(pruned[0].sum())} edges after pruning, at most {MAX_EDGES} allowed")
    return pruned


def is_valid(matrix, ops):
    """True when the spec is a valid NAS-Bench-101 cell (after pruning)."""
    try:
        check_spec(matrix, ops)
    except ValueError:
        return False
    return True


def malformed_graphs(adjacency, operations, num_vertices):
    """True for each padded graph that is not a pruned cell in the official form.

    Official form: strictly upper triangular, input first and output at vertex n-1, interior
    ops 0..2, every vertex but the output has an outgoing edge and every vertex but the
    input an incoming one (in a DAG that is the same as: every vertex is on an input-output
    path, i.e. nothing is left to prune). Vectorised on each adjacency row packed into one
    byte (bit j: an edge to vertex j), so that the whole space takes milliseconds.
    """
    n = np.asarray(num_vertices).astype(np.int64)
    out_bits = np.packbits(np.asarray(adjacency) != 0, axis=2, bitorder="little")[:, :, 0]  # (N, 7) uint8
    vertex = np.arange(MAX_VERTICES)
    ops = np.asarray(operations)
    interior = (vertex > 0) & (vertex < n[:, None] - 1)
    return ((out_bits & ~_ALLOWED_EDGES[n]).any(axis=1)
            | ((vertex < n[:, None] - 1) & (out_bits == 0)).any(axis=1)
            | ((np.bitwise_or.reduce(out_bits, axis=1) & _NEEDS_INPUT[n]) != _NEEDS_INPUT[n])
            | (ops[:, 0] != INPUT_CODE)
            | (ops[np.arange(len(n)), n - 1] != OUTPUT_CODE)
            | (interior & ((ops < 0) | (ops > 2))).any(axis=1))


# by vertex count n: the bits that row v of a cell may have (edges v -> v+1 .. n-1), and the vertices that must
# have an incoming edge (all but the input)
_ALLOWED_EDGES = np.array([[sum(1 << w for w in range(v + 1, n)) for v in range(MAX_VERTICES)]
                           for n in range(MAX_VERTICES + 1)], dtype=np.uint8)
_NEEDS_INPUT = np.array([(1 << n) - 2 if n else 0 for n in range(MAX_VERTICES + 1)], dtype=np.uint8)


def hash_module(matrix, labels):
    """The official module hash of an already pruned graph with integer labels.

    Each vertex starts as the MD5 of str((out_degree, in_degree, label)) in plain ints; then,
    once per vertex, becomes the MD5 of its in-neighbours' hashes sorted, '|', its
    out-neighbours' hashes sorted, '|', its own; the key is the MD5 of str(sorted hashes).
    """
    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    in_degree = [int(x) for x in matrix.sum(axis=0)]
    out_degree = [int(x) for x in matrix.sum(axis=1)]
    edges = matrix.tolist()  # plain lists: indexing numpy arrays inside these loops would cost most of the time
    in_neighbours = [[w for w in range(n) if edges[w][v]] for v in range(n)]
    out_neighbours = [[w for w in range(n) if edges[v][w]] for v in range(n)]
    hashes = [_md5(str((out_degree[v], in_degree[v], int(labels[v])))) for v in range(n)]
    for _ in range(n):
        hashes = [
            _md5("".join(sorted(hashes[w] for w in in_neighbours[v]))
                 + "|" + "".join(sorted(hashes[w] for w in out_neighbours[v]))
                 + "|" + hashes[v])
            for v in range(n)
        ]
    return _md5(str(sorted(hashes)))


def spec_hash(matrix, ops):
    """Prune a spec, check it, and return its official module hash."""
    matrix, ops = check_spec(matrix, ops)
    return hash_module(matrix, ops_to_codes(ops))


def _md5(text):
    return hashlib.md5(text.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------
# enumeration


def _edge_pairs(n):
    """Upper-triangle pairs (x, y) of an n-vertex graph in bit order x + y(y-1)/2."""
    return [(x, y) for y in range(n) for x in range(y)]


def _valid_masks(n):
    """Edge bitmasks (ascending) of n-vertex cells whose every vertex is on an input-output path."""
    pairs = _edge_pairs(n)
    masks = np.arange(1 << len(pairs), dtype=np.int64)
    bits = ((masks[:, None] >> np.arange(len(pairs))) & 1).astype(bool)
    keep = bits.sum(axis=1) <= MAX_EDGES
    src = np.array([x for x, _ in pairs])
    dst = np.array([y for _, y in pairs])
    for v in range(n):
        if v != n - 1:  # every vertex but the output has an outgoing edge
            keep &= bits[:, src == v].any(axis=1)
        if v != 0:  # every vertex but the input has an incoming edge
            keep &= bits[:, dst == v].any(axis=1)
    return masks[keep], bits[keep]


def _label_digits(n):
    """All interior labellings of an n-vertex cell, lexicographic, first vertex most significant."""
    k = n - 2
    codes = np.arange(3 ** k)
    if k == 0:
        return np.zeros((1, 0), dtype=np.int64)
    return np.stack([(codes // 3 ** (k - 1 - i)) % 3 for i in range(k)], axis=1).reshape(3 ** k, k)


def _classes_for_size(n):
    """Enumerate n-vertex labelled cells and group them into isomorphism classes.

    Returns (masks, class_code): masks (K,) ascending edge bitmasks; class_code (K, 3^(n-2))
    the generation code (mask index * 3^(n-2) + labelling code) of the first generated
    member of each labelled graph's class.
    """
    masks, bits = _valid_masks(n)
    pairs = _edge_pairs(n)
    k = n - 2
    num_labels = 3 ** k
    digits = _label_digits(n)
    weights = 3 ** np.arange(k - 1, -1, -1)
    own = np.arange(len(masks))[:, None] * num_labels + np.arange(num_labels)[None, :]
    best = own.copy()
    for perm in itertools.permutations(range(1, n - 1)):
        relabel = np.array([0, *perm, n - 1])  # vertex v becomes relabel[v]
        new_bit = np.array([_bit(relabel[x], relabel[y]) for x, y in pairs])
        upper = np.array([relabel[x] < relabel[y] for x, y in pairs])
        # a permuted graph stays in the list iff all its edges still point forward
        ok = ~(bits[:, ~upper].any(axis=1))
        new_masks = (bits[:, upper] * (1 << new_bit[upper])).sum(axis=1)
        index = np.searchsorted(masks, new_masks)
        new_digits = np.empty_like(digits)
        new_digits[:, relabel[1:-1] - 1] = digits
        new_codes = new_digits @ weights
        candidate = index[:, None] * num_labels + new_codes[None, :]
        np.minimum(best, np.where(ok[:, None], candidate, best), out=best)
    return masks, best


def _bit(x, y):
    return x + y * (y - 1) // 2 if x < y else -1


def _mask_to_matrix(masks, n):
    pairs = _edge_pairs(n)
    matrix = np.zeros((len(masks), MAX_VERTICES, MAX_VERTICES), dtype=np.int8)
    for b, (x, y) in enumerate(pairs):
        matrix[:, x, y] = (masks >> b) & 1
    return matrix


def hash_graphs(adjacency, labels, num_vertices):
    """Official hashes of many pruned graphs (padded to 7) as an (N,) S32 array.

    Same result as `hash_module` on each graph, vectorised: all strings of a round are
    built at once as rows of bytes, and only MD5 itself runs per string.
    """
    adjacency, labels = np.asarray(adjacency).astype(bool), np.asarray(labels)
    out = np.empty(len(adjacency), dtype="S32")
    for n in np.unique(num_vertices):
        rows = np.flatnonzero(num_vertices == n)
        for chunk in range(0, len(rows), _CHUNK_GRAPHS):  # chunks bound the memory of a round's strings
            part = rows[chunk:chunk + _CHUNK_GRAPHS]
            out[part] = _hash_same_size(adjacency[part][:, :n, :n], labels[part][:, :n], int(n))
    return out


_CHUNK_GRAPHS = 100000


def _md5_rows(parts):
    """MD5 of each row of the row-wise concatenation of uint8 matrices `parts`: (hex (K, 32) uint8, the first 8
    digest bytes as uint64, which order like the hex strings)."""
    text = np.ascontiguousarray(np.concatenate(parts, axis=1))
    length, view, md5 = text.shape[1], memoryview(text).cast("B"), hashlib.md5
    raw = np.frombuffer(b"".join([md5(view[i:i + length]).digest() for i in range(0, text.size, length)]),
                        dtype=np.uint8).reshape(-1, 16)
    hexed = np.empty((len(raw), 32), dtype=np.uint8)
    hexed[:, 0::2] = _HEX_DIGITS[raw >> 4]
    hexed[:, 1::2] = _HEX_DIGITS[raw & 15]
    return hexed, raw[:, :8].copy().view(">u8").reshape(-1).astype(np.uint64)


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _hash_same_size(adj, labels, n):
    """Hash g pruned n-vertex graphs; each vertex hash is a row of 32 uint8 hex characters."""
    g = len(adj)
    out_degree, in_degree = adj.sum(axis=2), adj.sum(axis=1)
    start = {}
    for key in zip(out_degree.ravel().tolist(), in_degree.ravel().tolist(), labels.ravel().tolist()):
        if key not in start:
            start[key] = np.frombuffer(_md5(str(key)).encode(), np.uint8)
    keys = np.stack([out_degree, in_degree, labels], axis=2)
    cur = np.empty((g * n, 32), dtype=np.uint8)  # vertex v of graph i is row i*n + v
    for key, digest in start.items():
        cur[(keys == key).all(axis=2).ravel()] = digest
    prefix = _hex_prefix(cur)
    degrees = (in_degree * (n + 1) + out_degree).ravel()
    groups = [(divmod(int(d), n + 1), np.flatnonzero(degrees == d)) for d in np.unique(degrees)]
    in_start = np.concatenate([[0], np.cumsum(in_degree.ravel())[:-1]])
    out_start = np.concatenate([[0], np.cumsum(out_degree.ravel())[:-1]])
    rows = np.arange(g)
    for _ in range(n):
        order = _sorted_vertices(prefix.reshape(g, n), cur.reshape(g, n, 32))
        # edges grouped by (graph, vertex), each vertex's neighbours in hash order, as row ids of cur
        in_g, _, in_pos = np.nonzero(adj[rows[:, None, None], order[:, :, None], np.arange(n)].transpose(0, 2, 1))
        out_g, _, out_pos = np.nonzero(adj[rows[:, None, None], np.arange(n)[:, None], order[:, None, :]])
        in_neighbours = in_g * n + order[in_g, in_pos]
        out_neighbours = out_g * n + order[out_g, out_pos]
        words = cur.view(np.uint64)  # (g*n, 4): gathering 8-byte words is much faster than bytes

        new, new_prefix = np.empty_like(cur), np.empty_like(prefix)
        for (a, b), sel in groups:  # vertices of equal degrees: their strings have one length
            k = len(sel)
            ins = np.take(words, in_neighbours[in_start[sel][:, None] + np.arange(a)].ravel(), axis=0)
            outs = np.take(words, out_neighbours[out_start[sel][:, None] + np.arange(b)].ravel(), axis=0)
            new[sel], new_prefix[sel] = _md5_rows([ins.view(np.uint8).reshape(k, -1), _column(b"|", k),
                                                   outs.view(np.uint8).reshape(k, -1), _column(b"|", k), cur[sel]])
        cur, prefix = new, new_prefix
    # fingerprint: md5 of str(sorted list of vertex hashes), e.g. "['ab..', 'cd..']"
    hashes = cur.reshape(g, n, 32)[rows[:, None], _sorted_vertices(prefix.reshape(g, n), cur.reshape(g, n, 32))]
    pieces = []
    for v in range(n):
        pieces += [_column(b"['" if v == 0 else b", '", g), hashes[:, v], _column(b"'", g)]
    pieces.append(_column(b"]", g))
    return _md5_rows(pieces)[0].view("S32").reshape(-1)


def _column(text, rows):
    return np.broadcast_to(np.frombuffer(text, np.uint8), (rows, len(text)))


_NIBBLE = np.zeros(256, dtype=np.uint64)
_NIBBLE[np.frombuffer(b"0123456789abcdef", np.uint8)] = np.arange(16, dtype=np.uint64)


def _hex_prefix(strings):
    """The first 16 hex digits of (K, 32) hex rows as uint64: they order like the strings."""
    prefix = np.zeros(len(strings), dtype=np.uint64)
    for i in range(16):
        prefix = (prefix << np.uint64(4)) | _NIBBLE[strings[:, i]]
    return prefix


def _sorted_vertices(prefix, strings):
    """(g, n) vertex indices of each graph sorted by their hex strings, given 64-bit prefixes."""
    g = len(prefix)
    order = np.argsort(prefix, axis=1, kind="stable")
    sorted_prefix = np.take_along_axis(prefix, order, axis=1)
    tie = sorted_prefix[:, 1:] == sorted_prefix[:, :-1]
    if tie.any():  # equal prefixes: fine if the strings are equal too, else sort those graphs fully
        sorted_strings = strings[np.arange(g)[:, None], order]
        unequal = (tie & (sorted_strings[:, 1:] != sorted_strings[:, :-1]).any(axis=2)).any(axis=1)
        for graph in np.flatnonzero(unequal):
            order[graph] = np.argsort(strings[graph].view("S32").reshape(-1), kind="stable")
    return order


@dataclass
class Space:
    """Every unique architecture, in generation order, plus the labelled-graph -> class table."""

    hashes: np.ndarray  # (N,) S32
    num_vertices: np.ndarray  # (N,) int8
    adjacency: np.ndarray  # (N, 7, 7) int8, padded
    operations: np.ndarray  # (N, 7) int8, -1 input, -2 output, 0..2 interior, 0 padding
    masks: dict  # n -> (K,) int64 ascending edge bitmasks
    class_index: dict  # n -> (K, 3^(n-2)) int32 architecture index of each labelled graph

    def __len__(self):
        return len(self.hashes)

    def index_of(self, matrix, labels):
        """Architecture index of one pruned cell (n x n 0/1 matrix, output at n-1, integer labels as for
        hash_module), or -1 when it is not in the space. The same answer as finding hash_module's hash
        in `hashes`, read from the class table instead: no MD5, a few microseconds."""
        n = len(labels)
        if not 2 <= n <= MAX_VERTICES:
            return -1
        edges = np.asarray(matrix).tolist()
        mask = sum(1 << (x + y * (y - 1) // 2) for y in range(n) for x in range(y) if edges[x][y])
        code = 0
        for label in labels[1:-1]:
            code = code * 3 + int(label)
        position = self._mask_positions(n).get(mask)
        return -1 if position is None else int(self.class_index[n][position, code])

    def _mask_positions(self, n):
        if not hasattr(self, "_positions"):
            self._positions = {size: dict(zip(masks.tolist(), range(len(masks)))) for size, masks in self.masks.items()}
        return self._positions[n]

    def lookup(self, adjacency, operations):
        """Architecture index of each spec in a batch, -1 where a spec is invalid.

        adjacency (B, 7, 7) 0/1 with the output at vertex 6, operations (B, 7) codes.
        Vectorised: prunes, then reads the class table; no hashing.
        """
        adj, ops, n, ok = prune_batch(adjacency, operations)
        result = np.full(len(adj), -1, dtype=np.int64)
        edges = adj.sum(axis=(1, 2))
        ok &= edges <= MAX_EDGES
        for size in range(2, MAX_VERTICES + 1):
            rows = np.flatnonzero(ok & (n == size))
            if len(rows) == 0:
                continue
            mask = np.zeros(len(rows), dtype=np.int64)
            for b, (x, y) in enumerate(_edge_pairs(size)):
                mask |= adj[rows, x, y].astype(np.int64) << b
            code = np.zeros(len(rows), dtype=np.int64)
            for v in range(1, size - 1):
                code = code * 3 + ops[rows, v]
            pos = np.searchsorted(self.masks[size], mask)
            pos = np.minimum(pos, len(self.masks[size]) - 1)
            found = self.masks[size][pos] == mask
            result[rows[found]] = self.class_index[size][pos[found], code[found]]
        return result


def prune_batch(adjacency, operations):
    """Prune a batch of 7-vertex specs (output at vertex 6) without Python loops over specs.

    Returns (adjacency, operations, num_vertices, ok): pruned graphs padded to 7 with the
    output moved to vertex num_vertices-1, and ok False where output is unreachable.
    """
    adj = np.asarray(adjacency).astype(bool)
    ops = np.asarray(operations).astype(np.int64)
    b, v = adj.shape[0], adj.shape[1]
    reach = adj | np.eye(v, dtype=bool)
    reach = reach.astype(np.float32)
    for _ in range(3):  # transitive closure of paths up to length 8 (a float matmul is the fast way here)
        reach = np.minimum(reach @ reach, 1.0)
    reach = reach > 0
    keep = reach[:, 0, :] & reach[:, :, v - 1]
    ok = keep[:, 0] & keep[:, v - 1]
    # stable order: kept vertices first, in their original order
    order = np.argsort(~keep, axis=1, kind="stable")
    rows = np.arange(b)[:, None]
    adj = adj[rows[:, :, None], order[:, :, None], order[:, None, :]]
    ops = ops[rows, order]
    n = keep.sum(axis=1)
    real = np.arange(v)[None, :] < n[:, None]
    adj &= real[:, :, None] & real[:, None, :]
    ops = np.where(real, ops, 0)
    return adj.astype(np.int8), ops, n, ok


def build_space(progress=True):
    """Enumerate the space from scratch (about 20-30 s on 2 cores)."""
    sizes, adjacency, operations, masks_by_n, class_by_n = [], [], [], {}, {}
    offset = 0
    for n in range(2, MAX_VERTICES + 1):
        t0 = time.time()
        masks, best = _classes_for_size(n)
        num_labels = best.shape[1]
        own = np.arange(best.size).reshape(best.shape)
        firsts = np.flatnonzero(best.ravel() == own.ravel())  # ascending generation codes
        # architecture index of every labelled graph = offset + rank of its class's first member
        class_index = (offset + np.searchsorted(firsts, best)).astype(np.int32)
        mask_index, label_code = np.divmod(firsts, num_labels)
        matrix = _mask_to_matrix(masks[mask_index], n)
        digits = _label_digits(n)[label_code]
        ops = np.zeros((len(firsts), MAX_VERTICES), dtype=np.int8)
        ops[:, 0] = INPUT_CODE
        ops[:, 1:n - 1] = digits
        ops[:, n - 1] = OUTPUT_CODE
        sizes.append(np.full(len(firsts), n, dtype=np.int8))
        adjacency.append(matrix)
        operations.append(ops)
        masks_by_n[n], class_by_n[n] = masks, class_index
        offset += len(firsts)
        if progress:
            print(f"  {n} vertices: {len(firsts):,} architectures ({time.time() - t0:.1f}s)", file=sys.stderr)
    num_vertices = np.concatenate(sizes)
    adjacency = np.concatenate(adjacency)
    operations = np.concatenate(operations)
    t0 = time.time()
    hashes = hash_graphs(adjacency, operations, num_vertices)
    if progress:
        print(f"  hashed {len(hashes):,} architectures ({time.time() - t0:.1f}s)", file=sys.stderr)
    return Space(hashes, num_vertices, adjacency, operations, masks_by_n, class_by_n)


def _checksum(arrays):
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def _space_arrays(space):
    arrays = {"hashes": space.hashes, "num_vertices": space.num_vertices,
              "adjacency": space.adjacency, "operations": space.operations}
    for n in space.masks:
        arrays[f"masks_{n}"] = space.masks[n]
        arrays[f"class_index_{n}"] = space.class_index[n]
    return arrays


def save_space(space, path):
    """Write the cache atomically, with a version and a checksum of its contents."""
    arrays = _space_arrays(space)
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, version=np.int64(CACHE_VERSION), checksum=np.str_(_checksum(arrays.values())), **arrays)


def load_space_cache(path):
    """Load the cache; None when it is missing, stale or corrupt (never trust a bad one)."""
    try:
        with np.load(path) as f:
            if int(f["version"]) != CACHE_VERSION:
                return None
            arrays = {k: f[k] for k in f.files if k not in ("version", "checksum")}
            if str(f["checksum"]) != _checksum(arrays.values()):
                return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):  # BadZipFile: a truncated cache
        return None
    sizes = range(2, MAX_VERTICES + 1)
    try:
        space = Space(arrays["hashes"], arrays["num_vertices"], arrays["adjacency"], arrays["operations"],
                      {n: arrays[f"masks_{n}"] for n in sizes}, {n: arrays[f"class_index_{n}"] for n in sizes})
    except KeyError:
        return None
    counts = np.bincount(space.num_vertices, minlength=MAX_VERTICES + 1)
    if any(counts[n] != c for n, c in UNIQUE_COUNTS.items()):
        return None
    return space


def enumerate_space(cache_path=None, progress=True):
    """The whole search space, loaded from its cache or built (and cached) when the cache is not usable.

    Args:
      cache_path: the cache file; None for default_space_cache(), "" for no cache.
      progress: print what is being built to stderr.
    """
    if cache_path is None:
        cache_path = default_space_cache()
    if cache_path and os.path.exists(cache_path):
        space = load_space_cache(cache_path)
        if space is not None:
            return space
        if progress:
            print(f"space cache {cache_path} is stale or corrupt; rebuilding", file=sys.stderr)
    if progress:
        print("enumerating the NAS-Bench-101 space (once; cached afterwards)", file=sys.stderr)
    space = build_space(progress)
    if cache_path:
        save_space(space, cache_path)
    return space


if __name__ == "__main__":
    t0 = time.time()
    space = enumerate_space()
    counts = np.bincount(space.num_vertices, minlength=8)
    print(f"{len(space):,} architectures in {time.time() - t0:.1f}s; by vertex count:",
          {n: int(counts[n]) for n in range(2, 8)})


# ---------------------------------------------------------------------------
# mutation: the NAS-Bench-101 search rules on 7-vertex specs


def graphs_to_specs(adjacency, operations, num_vertices, filler_ops):
    """7-vertex specs of padded graphs: output moved to vertex 6, vertices n-1..5 dangling.

    The dangling vertices have no edges (pruning removes them) and take their ops from
    `filler_ops` (B, 7) so that mutation can later connect them.
    """
    n = np.asarray(num_vertices)[:, None]
    v = np.arange(MAX_VERTICES)[None, :]
    # old vertex v -> new position: interior vertices stay, the output goes last, padding shifts down
    position = np.where(v < n - 1, v, np.where(v == n - 1, MAX_VERTICES - 1, v - 1))
    b = np.arange(len(n))[:, None]
    adjacency_7 = np.zeros((len(n), MAX_VERTICES, MAX_VERTICES), dtype=np.int8)
    adjacency_7[b[:, :, None], position[:, :, None], position[:, None, :]] = adjacency
    operations_7 = np.zeros((len(n), MAX_VERTICES), dtype=np.int64)
    operations_7[b, position] = operations
    dangling = (v >= n - 1) & (v < MAX_VERTICES - 1)
    return adjacency_7, np.where(dangling, filler_ops, operations_7)


def mutate(adjacency, operations, draws, rate=1.0):
    """Mutated copies of 7-vertex specs, given (B, MUTATION_DRAWS) uniforms.

    The NAS-Bench-101 rule: each upper-triangle edge flips with probability rate/7,
    each interior op is replaced with probability rate/5 by one of the two other ops.
    """
    flip = draws[:, :NUM_EDGES] < rate / MAX_VERTICES
    change = draws[:, NUM_EDGES:NUM_EDGES + OP_SPOTS] < rate / OP_SPOTS
    shift = 1 + (draws[:, NUM_EDGES + OP_SPOTS:] < 0.5)  # 1 or 2 steps: a different op, uniformly
    upper = np.triu_indices(MAX_VERTICES, 1)
    child_adjacency = np.array(adjacency, dtype=np.int8)
    child_adjacency[:, upper[0], upper[1]] ^= flip.astype(np.int8)
    child_operations = np.array(operations, dtype=np.int64)
    interior = child_operations[:, 1:-1]
    child_operations[:, 1:-1] = np.where(change, (interior + shift) % len(OPS), interior)
    return child_adjacency, child_operations
