"""The NAS-Bench-101 network a cell builds: each vertex's channels and the trainable parameters, as the official
model builder computes them (REFERENCE.md: a 3 x 3 stem of 128 channels, 3 stacks of 3 cells, channels doubled
after each 2 x 2 max-pool, global average pool, a dense layer of 10 classes).

    python -m nb101.network        # the parameters of two small cells' networks

A cell's trainable_parameters can be computed, not only looked up: every one of the 20,001 shipped records
agrees with `trainable_parameters` (tests/test_network.py).
"""
import numpy as np

STEM_CHANNELS = 128
NUM_STACKS = 3
CELLS_PER_STACK = 3
NUM_CLASSES = 10
IMAGE_CHANNELS = 3
CONV_KERNELS = {0: 3, 1: 1}  # operation code -> kernel size: conv3x3-bn-relu, conv1x1-bn-relu; maxpool 3x3 has none


def vertex_channels(matrix, input_channels, output_channels):
    """Channels of each vertex of a pruned cell (n x n upper-triangular 0/1 matrix, output at n - 1).

    The output's channels are split evenly over the vertices that feed it (the first ones get one more when
    they do not divide); any other interior vertex takes the most channels of its successors.
    """
    matrix = np.asarray(matrix)
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[n - 1] = input_channels, output_channels
    if n == 2:
        return channels
    feeding_output = int(matrix[1:, n - 1].sum())  # the input's edge to the output is a projection, not a share
    share, extra = divmod(output_channels, feeding_output)
    for v in range(1, n - 1):
        if matrix[v, n - 1]:
            channels[v] = share + (1 if extra else 0)
            extra -= 1 if extra else 0
    for v in range(n - 3, 0, -1):
        if not matrix[v, n - 1]:
            channels[v] = max(channels[dst] for dst in range(v + 1, n - 1) if matrix[v, dst])
    return channels


def conv_bn_parameters(kernel, input_channels, output_channels):
    """A convolution without bias followed by batch normalisation (trainable scale and offset)."""
    return kernel * kernel * input_channels * output_channels + 2 * output_channels


def cell_parameters(matrix, operations, input_channels, output_channels):
    """Trainable parameters of one cell: a 1 x 1 projection of the input for each of its out-edges, and each
    convolution vertex's own (operations: codes, 0 conv3x3, 1 conv1x1, 2 maxpool; the ends' codes are ignored).
    """
    matrix = np.asarray(matrix)
    n = len(matrix)
    channels = vertex_channels(matrix, input_channels, output_channels)
    total = sum(conv_bn_parameters(1, input_channels, channels[v]) for v in range(1, n) if matrix[0, v])
    for v in range(1, n - 1):
        kernel = CONV_KERNELS.get(int(operations[v]))
        if kernel:
            total += conv_bn_parameters(kernel, channels[v], channels[v])
    return total


def trainable_parameters(matrix, operations):
    """Trainable parameters of the whole network built from one pruned cell: the number NAS-Bench-101 records.

    Args:
      matrix: the pruned cell's n x n upper-triangular 0/1 adjacency, output at n - 1.
      operations: n operation codes (HDF5 codes: 0 conv3x3, 1 conv1x1, 2 maxpool at the interior vertices).

    Returns:
      an int.
    """
    total = conv_bn_parameters(3, IMAGE_CHANNELS, STEM_CHANNELS)
    channels = STEM_CHANNELS
    for stack in range(NUM_STACKS):
        input_channels = channels
        if stack > 0:  # down-sampling by max-pool, then twice the channels
            channels *= 2
        for _ in range(CELLS_PER_STACK):
            total += cell_parameters(matrix, operations, input_channels, channels)
            input_channels = channels
    return total + channels * NUM_CLASSES + NUM_CLASSES


def longest_paths(adjacency):
    """(B, 7, 7) upper-triangular 0/1 adjacency -> (B, 7) edges on the longest path from vertex 0 to each vertex,
    -1 where none leads there."""
    adjacency = np.asarray(adjacency) > 0
    unreachable = -(adjacency.shape[-1] + 1)
    depth = np.full(adjacency.shape[:2], unreachable, dtype=np.int64)
    depth[:, 0] = 0
    for v in range(1, adjacency.shape[-1]):
        depth[:, v] = np.where(adjacency[:, :v, v], depth[:, :v] + 1, unreachable).max(1)
    return np.maximum(depth, -1)


if __name__ == "__main__":
    for name, matrix, operations in [("input -> output", [[0, 1], [0, 0]], [-1, -2]),
                                     ("input -> conv3x3 -> output", [[0, 1, 0], [0, 0, 1], [0, 0, 0]], [-1, 0, -2])]:
        print(f"{name}: {trainable_parameters(matrix, operations):,} trainable parameters")
