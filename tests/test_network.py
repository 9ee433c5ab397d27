"""Tests of nb101/network.py: computed trainable parameters against the recorded ones, channels, longest paths."""
import json

import h5py
import numpy as np
import pytest

from nb101 import network
from nb101.search_space import ops_to_codes


@pytest.mark.slow
def test_trainable_parameters_equal_every_shipped_record(hdf5_20k):
    with h5py.File(hdf5_20k, "r") as f:
        adjacency, operations = f["adjacency"][:], f["operations"][:]
        num_vertices, recorded = f["num_vertices"][:], f["trainable_parameters"][:]
    computed = [network.trainable_parameters(adjacency[i, :n, :n], operations[i, :n])
                for i, n in enumerate(num_vertices)]
    assert len(computed) == 20001
    np.testing.assert_array_equal(computed, recorded)


def test_trainable_parameters_equal_the_complete_official_records(complete_records_path):
    with open(complete_records_path) as f:
        rows = [json.loads(line) for line in f]
    for row in rows:
        codes = ops_to_codes(row["module_operations"])
        assert network.trainable_parameters(row["module_adjacency"], codes) == row["trainable_parameters"], row["hash"]


def test_vertex_channels_split_the_output_and_follow_successors():
    # 0 -> 1 -> 2, and 2, 3, 4 feed the output (5): 128 = 43 + 43 + 42; vertex 1 takes its successor's 43
    matrix = np.zeros((6, 6), dtype=int)
    for x, y in [(0, 1), (1, 2), (0, 3), (0, 4), (2, 5), (3, 5), (4, 5), (0, 5)]:
        matrix[x, y] = 1
    assert network.vertex_channels(matrix, 64, 128) == [64, 43, 43, 43, 42, 128]
    assert network.vertex_channels([[0, 1], [0, 0]], 64, 128) == [64, 128]


def test_a_cell_of_one_convolution_counted_by_hand():
    # per cell: projection 1x1 of the input (c_in c + 2c), conv3x3 (9 c^2 + 2c); stem 3*3*3*128 + 256; dense 512*10 + 10
    def cell(c_in, c):
        return c_in * c + 2 * c + 9 * c * c + 2 * c
    expected = 3 * 3 * 3 * 128 + 256 + 512 * 10 + 10
    for c_in, c in [(128, 128), (128, 128), (128, 128), (128, 256), (256, 256), (256, 256), (256, 512), (512, 512),
                    (512, 512)]:
        expected += cell(c_in, c)
    assert network.trainable_parameters([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [-1, 0, -2]) == expected


def _longest_path_by_search(matrix, target):
    """Edges on the longest path from 0 to target, by trying every path (-1 without one)."""
    if target == 0:
        return 0
    lengths = [_longest_path_by_search(matrix, source) for source in range(target) if matrix[source][target]]
    lengths = [length + 1 for length in lengths if length >= 0]
    return max(lengths, default=-1)


def test_longest_paths_against_search(space):
    rows = np.random.RandomState(0).choice(len(space), 300, replace=False)
    depth = network.longest_paths(space.adjacency[rows])
    for row, computed in zip(rows, depth):
        assert [_longest_path_by_search(space.adjacency[row], v) for v in range(7)] == computed.tolist()
