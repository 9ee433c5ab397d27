"""The official NAS-Bench-101 example (google-research/nasbench example.py), with one import changed.

    python examples/nasbench_api.py                                  # the project's HDF5 (bash run.sh makes it)
    python examples/nasbench_api.py data/nasbench_only108.tfrecord   # an official file: converted once, cached

The cell below is in the shipped 20,001-architecture sample, so the example runs on it too;
the sample has one run and no test accuracy, which the API returns as None.
"""
import sys

from nb101 import api  # was: from nasbench import api

INPUT, OUTPUT = "input", "output"
CONV3X3, CONV1X1, MAXPOOL3X3 = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"

nasbench = api.NASBench(sys.argv[1] if len(sys.argv) > 1 else "data/nasbench.hdf5")

# Query a cell from the dataset.
cell = api.ModelSpec(
    matrix=[[0, 1, 0, 0, 1, 1, 0],    # input layer
            [0, 0, 1, 0, 0, 0, 0],    # 3x3 conv
            [0, 0, 0, 1, 0, 0, 1],    # 3x3 max-pool
            [0, 0, 0, 0, 0, 1, 0],    # 3x3 conv
            [0, 0, 0, 0, 0, 1, 0],    # 3x3 conv
            [0, 0, 0, 0, 0, 0, 1],    # 1x1 conv
            [0, 0, 0, 0, 0, 0, 0]],   # output layer
    ops=[INPUT, CONV3X3, MAXPOOL3X3, CONV3X3, CONV3X3, CONV1X1, OUTPUT])
data = nasbench.query(cell)
for k, v in data.items():
    print(f"{k}: {v}")
print(nasbench.get_budget_counters())

# All the data for this cell, every budget and run.
fixed_stats, computed_stats = nasbench.get_metrics_from_spec(cell)
print(fixed_stats)
for epochs in sorted(nasbench.valid_epochs):
    for repeat_index, run in enumerate(computed_stats[epochs]):
        print(f"Epochs trained {epochs}, repeat number: {repeat_index + 1}")
        print(run)

# Iterate through the unique models in the dataset.
for unique_hash in nasbench.hash_iterator():
    fixed_metrics, computed_metrics = nasbench.get_metrics_from_hash(unique_hash)
    print(fixed_metrics)
    break
