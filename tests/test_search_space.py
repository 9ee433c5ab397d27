"""Tests of search_space.py: the official hash, validity, the enumeration and its cache, against real data."""
import itertools
import json

import numpy as np
import pytest

from nb101 import search_space
from nb101.search_space import INPUT, OUTPUT, OPS


def _graph_rows(path):
    with open(path) as f:
        rows = [json.loads(line) for line in f]
    return [r for r in rows if "module_adjacency" in r]


@pytest.fixture(scope="module")
def official_graphs(complete_records_path, shared_labels_20k_path):
    """(hash, matrix, ops) of the 56 complete records and the 1,000 rows of the public export with a graph."""
    rows = _graph_rows(complete_records_path) + _graph_rows(shared_labels_20k_path)
    assert len(rows) == 1056
    return [(r["hash"], np.array(r["module_adjacency"]), r["module_operations"]) for r in rows]


def _random_topological_relabelling(matrix, rng):
    """A permutation of the interior vertices that keeps every edge pointing forward (new[v] = old[order[v]])."""
    n = len(matrix)
    order, placed = [0], {0}
    while len(order) < n - 1:
        ready = [v for v in range(1, n - 1)
                 if v not in placed and all(u in placed for u in np.flatnonzero(matrix[:, v]))]
        v = ready[rng.randint(len(ready))]
        order.append(v)
        placed.add(v)
    return np.array(order + [n - 1])


def test_spec_hash_reproduces_every_official_key(official_graphs):
    for key, matrix, ops in official_graphs:
        assert search_space.spec_hash(matrix, ops) == key


def test_hash_is_invariant_to_relabelling_interior_vertices(official_graphs):
    rng = np.random.RandomState(0)
    for key, matrix, ops in official_graphs[::8]:
        labels = np.array(search_space.ops_to_codes(ops))
        n = len(ops)
        any_order = np.r_[0, 1 + rng.permutation(n - 2), n - 1]  # edges may point backwards: hash_module allows it
        assert search_space.hash_module(matrix[np.ix_(any_order, any_order)], labels[any_order]) == key
        order = _random_topological_relabelling(matrix, rng)  # still a valid spec
        assert search_space.spec_hash(matrix[np.ix_(order, order)], [ops[v] for v in order]) == key


def _with_dangling_vertex(matrix, ops, kind):
    """Insert a vertex before the output that pruning removes: fed by the input but leading nowhere,
    or leading to the output but unreachable from the input."""
    n = len(ops)
    bigger = np.zeros((n + 1, n + 1), dtype=int)
    bigger[:n - 1, :n - 1] = matrix[:n - 1, :n - 1]
    bigger[:n - 1, n] = matrix[:n - 1, n - 1]
    if kind == "dead end":
        bigger[0, n - 1] = 1
    else:
        bigger[n - 1, n] = 1
    return bigger, ops[:-1] + ["maxpool3x3", OUTPUT]


@pytest.mark.parametrize("kind", ["dead end", "unreachable"])
def test_hash_is_invariant_to_dangling_vertices(official_graphs, kind):
    for key, matrix, ops in [g for g in official_graphs if len(g[2]) < 7][:100]:
        bigger, bigger_ops = _with_dangling_vertex(matrix, ops, kind)
        assert search_space.spec_hash(bigger, bigger_ops) == key
        pruned, pruned_ops = search_space.prune(bigger, bigger_ops)
        np.testing.assert_array_equal(pruned, matrix)
        assert pruned_ops == ops


def _chain(n):
    matrix = np.eye(n, k=1, dtype=int)
    return matrix, [INPUT] + [OPS[0]] * (n - 2) + [OUTPUT]


def test_validity_rules():
    matrix, ops = _chain(7)
    assert search_space.is_valid(matrix, ops)
    full = np.triu(np.ones((7, 7), dtype=int), k=1)  # 21 edges
    assert not search_space.is_valid(full, ops)
    nine = np.eye(7, k=1, dtype=int)
    nine[0, 2] = nine[0, 3] = nine[1, 3] = nine[0, 6] = 1
    assert nine.sum() == 10 and not search_space.is_valid(nine, ops)  # 10 edges, all on paths
    nine[0, 6] = 0
    assert search_space.is_valid(nine, ops)  # 9 edges
    cut = matrix.copy()
    cut[3, 4] = 0
    assert not search_space.is_valid(cut, ops)  # output unreachable
    lower = matrix.copy()
    lower[4, 2] = 1
    with pytest.raises(ValueError, match="upper triangular"):
        search_space.check_spec(lower, ops)
    assert not search_space.is_valid(matrix, [INPUT] + ["conv5x5"] * 5 + [OUTPUT])
    assert not search_space.is_valid(matrix, [OPS[0]] + [INPUT] + [OPS[0]] * 4 + [OUTPUT])
    assert not search_space.is_valid(matrix, ops[:-1])
    eight, eight_ops = _chain(8)
    assert not search_space.is_valid(eight, eight_ops)  # 8 vertices all on the path
    seven_plus_dangling, dangling_ops = _with_dangling_vertex(matrix, ops, "dead end")
    assert search_space.is_valid(seven_plus_dangling, dangling_ops)  # 7 after pruning


def test_ops_codes_round_trip():
    ops = [INPUT, *OPS, OUTPUT]
    assert search_space.ops_to_codes(ops) == [-1, 0, 1, 2, -2]
    assert search_space.codes_to_ops(search_space.ops_to_codes(ops)) == ops
    with pytest.raises(ValueError, match="conv5x5"):
        search_space.ops_to_codes([INPUT, "conv5x5", OUTPUT])


def test_space_counts(space):
    counts = np.bincount(space.num_vertices, minlength=8)
    assert {n: int(counts[n]) for n in range(2, 8)} == {2: 1, 3: 6, 4: 84, 5: 2441, 6: 62010, 7: 359082}
    assert len(space) == 423624 == len(np.unique(space.hashes))
    assert sum(table.size for table in space.class_index.values()) == 1293208  # labelled graphs


def test_every_labels_20k_hash_is_in_the_space(space, labels_20k_path):
    with open(labels_20k_path) as f:
        hashes = np.array([json.loads(line)["hash"] for line in f], dtype="S32")
    assert len(hashes) == 20001
    assert np.isin(hashes, space.hashes).all()


def _padded(graphs):
    adjacency = np.zeros((len(graphs), 7, 7), np.int8)
    operations = np.zeros((len(graphs), 7), np.int8)
    for i, (_, matrix, ops) in enumerate(graphs):
        adjacency[i, :len(ops), :len(ops)] = matrix
        operations[i, :len(ops)] = search_space.ops_to_codes(ops)
    return adjacency, operations


def test_stored_graph_is_the_official_one(space, official_graphs):
    """The official files store the first generated graph of each class; so must the space."""
    index = {h: i for i, h in enumerate(space.hashes.tolist())}
    rows = [index[key.encode()] for key, _, _ in official_graphs]
    adjacency, operations = _padded(official_graphs)
    np.testing.assert_array_equal(space.adjacency[rows], adjacency)
    np.testing.assert_array_equal(space.operations[rows], operations)
    assert space.num_vertices[rows].tolist() == [len(ops) for _, _, ops in official_graphs]


def test_small_cells_are_first_generated_members_in_generation_order(space):
    """Independent brute force for 2..5 vertices: every labelled cell in generation order, first of each hash."""
    graphs = []
    for n in range(2, 6):
        pairs = [(x, y) for y in range(n) for x in range(y)]  # bit x + y(y-1)/2
        for mask in range(1 << len(pairs)):
            matrix = np.zeros((n, n), dtype=int)
            for bit, (x, y) in enumerate(pairs):
                matrix[x, y] = mask >> bit & 1
            if matrix.sum() > 9 or not all(matrix[v].any() for v in range(n - 1)) \
                    or not all(matrix[:, v].any() for v in range(1, n)):
                continue
            for labels in itertools.product(range(3), repeat=n - 2):
                graphs.append((n, matrix, [-1, *labels, -2]))
    adjacency = np.zeros((len(graphs), 7, 7), np.int8)
    operations = np.zeros((len(graphs), 7), np.int8)
    for i, (n, matrix, labels) in enumerate(graphs):
        adjacency[i, :n, :n], operations[i, :n] = matrix, labels
    num_vertices = np.array([n for n, _, _ in graphs], np.int8)
    hashes = search_space.hash_graphs(adjacency, operations, num_vertices)
    _, first = np.unique(hashes, return_index=True)
    first = np.sort(first)
    small = np.flatnonzero(space.num_vertices <= 5)
    assert len(first) == len(small) == 1 + 6 + 84 + 2441
    np.testing.assert_array_equal(space.hashes[small], hashes[first])
    np.testing.assert_array_equal(space.adjacency[small], adjacency[first])
    np.testing.assert_array_equal(space.operations[small], operations[first])


def _as_seven_vertex_spec(matrix, ops, rng):
    """The graph relabelled in a random topological order, output moved to vertex 6, gap left dangling."""
    order = _random_topological_relabelling(matrix, rng)
    matrix, codes = matrix[np.ix_(order, order)], np.array(search_space.ops_to_codes(ops))[order]
    n = len(codes)
    slots = list(range(n - 1)) + [6]
    adjacency, operations = np.zeros((7, 7), np.int8), np.zeros(7, np.int8)
    adjacency[np.ix_(slots, slots)] = matrix
    operations[slots] = codes
    operations[n - 1:6] = rng.randint(0, 3, 7 - n)
    if n < 7:
        adjacency[0, n - 1] = 1  # a dead-end vertex that pruning removes
    return adjacency, operations


def test_space_lookup(space, official_graphs):
    rng = np.random.RandomState(0)
    specs = [_as_seven_vertex_spec(m, o, rng) for _, m, o in official_graphs]
    adjacency = np.stack([a for a, _ in specs])
    operations = np.stack([o for _, o in specs])
    index = space.lookup(adjacency, operations)
    assert (index >= 0).all()
    assert space.hashes[index].tolist() == [key.encode() for key, _, _ in official_graphs]
    cut = adjacency.copy()
    cut[:, :, 6] = 0  # output unreachable
    assert (space.lookup(cut, operations) == -1).all()
    dense = np.triu(np.ones((1, 7, 7), np.int8), k=1)
    assert space.lookup(dense, operations[:1]).tolist() == [-1]  # 21 edges


def test_hash_graphs_equals_hash_module_on_a_sample(space):
    rows = np.random.RandomState(1).choice(len(space), 300, replace=False)
    expected = []
    for i in rows:
        n = space.num_vertices[i]
        expected.append(search_space.hash_module(space.adjacency[i, :n, :n], space.operations[i, :n]).encode())
    assert space.hashes[rows].tolist() == expected
    hashed = search_space.hash_graphs(space.adjacency[rows], space.operations[rows], space.num_vertices[rows])
    assert hashed.tolist() == expected


@pytest.fixture(scope="module")
def saved_cache(space, tmp_path_factory):
    path = tmp_path_factory.mktemp("cache") / "space.npz"
    search_space.save_space(space, str(path))
    return path


def test_cache_round_trip(space, saved_cache):
    loaded = search_space.load_space_cache(str(saved_cache))
    assert loaded is not None
    np.testing.assert_array_equal(loaded.hashes, space.hashes)
    np.testing.assert_array_equal(loaded.adjacency, space.adjacency)
    np.testing.assert_array_equal(loaded.class_index[7], space.class_index[7])


def test_stale_cache_is_rejected(saved_cache, monkeypatch):
    monkeypatch.setattr(search_space, "CACHE_VERSION", search_space.CACHE_VERSION + 1)
    assert search_space.load_space_cache(str(saved_cache)) is None


def test_corrupt_cache_is_rejected(saved_cache, tmp_path):
    with np.load(saved_cache) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["adjacency"] = arrays["adjacency"].copy()
    arrays["adjacency"][1000, 0, 1] ^= 1  # one flipped edge, checksum kept
    np.savez(tmp_path / "edited.npz", **arrays)
    assert search_space.load_space_cache(str(tmp_path / "edited.npz")) is None
    data = saved_cache.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[:len(data) // 2])
    assert search_space.load_space_cache(str(tmp_path / "truncated.npz")) is None
    (tmp_path / "garbage.npz").write_bytes(b"not a cache")
    assert search_space.load_space_cache(str(tmp_path / "garbage.npz")) is None
    del arrays["masks_5"]
    np.savez(tmp_path / "incomplete.npz", **arrays)
    assert search_space.load_space_cache(str(tmp_path / "incomplete.npz")) is None
