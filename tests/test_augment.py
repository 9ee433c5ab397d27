"""Tests of the augmentation: random topological orders of a cell, the cell relabelled by one, and fits with it."""
import itertools

import numpy as np
import pytest
import torch

import crossval
import engine
from dataset import graph_tensors, relabelled, topological_orders
from nb101 import search_space
from recipes import Recipe


def _order_by_loops(adjacency, n, priorities):
    """topological_orders of one cell of n vertices: place, of the vertices whose predecessors are all placed, the
    one of highest priority; then the padding."""
    order = []
    while len(order) < n:
        ready = [v for v in range(n) if v not in order and all(u in order for u in range(n) if adjacency[u][v])]
        order.append(max(ready, key=lambda v: priorities[v]))
    return order + list(range(n, len(adjacency)))


@pytest.fixture(scope="module")
def cells(space):
    rows = np.random.RandomState(2).choice(len(space), 300, replace=False)
    rows = np.concatenate([rows, np.flatnonzero(space.num_vertices <= 3)])  # the smallest cells too
    return rows, graph_tensors(space.adjacency[rows], space.operations[rows], space.num_vertices[rows])


def test_orders_equal_a_loop_over_each_cell(space, cells):
    rows, graphs = cells
    priorities = torch.rand(len(rows), 7, generator=torch.Generator().manual_seed(0))
    orders = topological_orders(graphs["adjacency"], graphs["mask"], priorities)
    expected = [_order_by_loops(space.adjacency[r], int(space.num_vertices[r]), priorities[i].tolist())
                for i, r in enumerate(rows)]
    assert orders.tolist() == expected


def test_relabelled_cells_are_the_same_networks(space, cells):
    """Upper triangular, the same vertices, and the official hash of the cell they came from; and they are
    relabelled: most cells with a choice of order come out in another."""
    rows, graphs = cells
    priorities = torch.rand(len(rows), 7, generator=torch.Generator().manual_seed(1))
    renumbered = relabelled(graphs, topological_orders(graphs["adjacency"], graphs["mask"], priorities))
    assert torch.equal(renumbered["adjacency"], renumbered["adjacency"].triu(1))
    assert torch.equal(renumbered["mask"], graphs["mask"])
    changed = 0
    for i, r in enumerate(rows):
        n = int(space.num_vertices[r])
        matrix = renumbered["adjacency"][i, :n, :n].int().numpy()
        types = renumbered["operations"][i, :n].argmax(-1)  # VERTEX_TYPES: input, output, the three ops
        codes = torch.where(types < 2, -1 - types, types - 2)
        assert search_space.spec_hash(matrix, search_space.codes_to_ops(codes)) == space.hashes[r].decode()
        changed += not torch.equal(renumbered["adjacency"][i], graphs["adjacency"][i])
    assert changed > len(rows) / 5


def test_every_topological_order_can_come_out():
    """A 7-vertex cell: over many random priorities, the orders drawn are exactly its topological orders,
    found by trying every permutation of its interior vertices (40 of 120 here)."""
    adjacency = np.zeros((7, 7), dtype=np.int8)
    for x, y in [(0, 1), (0, 2), (0, 3), (0, 4), (1, 6), (2, 6), (3, 5), (4, 5), (5, 6)]:
        adjacency[x, y] = 1
    valid = {(0, *p, 6) for p in itertools.permutations(range(1, 6))
             if not np.tril(adjacency[np.ix_((0, *p, 6), (0, *p, 6))]).any()}
    graphs = graph_tensors(np.repeat(adjacency[None], 2000, 0), np.tile([-1, 0, 1, 2, 0, 1, -2], (2000, 1)),
                           np.full(2000, 7))
    priorities = torch.rand(2000, 7, generator=torch.Generator().manual_seed(2))
    drawn = {tuple(order) for order in topological_orders(graphs["adjacency"], graphs["mask"], priorities).tolist()}
    assert len(valid) == 40 and drawn == valid


@pytest.fixture(scope="module")
def few_graphs(sample):
    targets = torch.randn(60, generator=torch.Generator().manual_seed(0))
    return sample, targets


@pytest.mark.parametrize("predictor", ["mlp", "transformer"])
def test_augmented_fit_is_seeded_per_model_and_changes_the_training(few_graphs, predictor):
    graphs, targets = few_graphs
    stack = engine.fit(graphs, [(np.arange(60), targets), (np.arange(40), targets[:40])], predictor=predictor,
                       epochs=3, augment=True, seed=4)
    alone = engine.fit(graphs, [(np.arange(40), targets[:40])], predictor=predictor, epochs=3, augment=True, seed=5)
    again = engine.fit(graphs, [(np.arange(40), targets[:40])], predictor=predictor, epochs=3, augment=True, seed=5)
    plain = engine.fit(graphs, [(np.arange(40), targets[:40])], predictor=predictor, epochs=3, seed=5)
    torch.testing.assert_close(stack.vectors()[1], alone.vectors()[0], rtol=1e-5, atol=1e-6)
    assert torch.equal(alone.vectors(), again.vectors())
    assert (plain.vectors() - alone.vectors()).abs().max() > 1e-5  # 100 x the stack's rounding


def test_augmentation_is_refused_for_the_gcn(few_graphs):
    """(The command line's refusals are in tests/test_cli.py.)"""
    graphs, targets = few_graphs
    with pytest.raises(ValueError, match="does not depend on"):
        engine.fit(graphs, [(np.arange(40), targets[:40])], epochs=1, augment=True)
    with pytest.raises(ValueError, match="augment must be True or False"):
        Recipe(augment="on")


def test_crossval_tries_augmentation_off_and_on(labels_hdf5, tmp_path):
    path, splits = labels_hdf5
    out = tmp_path / "cv"
    assert crossval.main(["--data", path, "--splits", splits, "--sizes", "40", "--folds", "2", "--predictor", "mlp",
                          "--epochs", "2", "--lrs", "1e-3", "--augment", "off", "on", "--output_dir", str(out),
                          "--quiet"]) == 0
    table = (out / "crossval.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| faithful | mse |")]
    assert len(rows) == 2 and [row.split(" | ")[8] for row in rows] == ["off", "on"]
    assert rows[0].split(" | ")[9] != rows[1].split(" | ")[9]  # the two fits differ
