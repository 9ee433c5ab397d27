"""NAS-Bench-101 architectures as tensors for the GCN predictor.

    python dataset.py --split 172            # size and label statistics of one split
    python dataset.py --data data/nasbench.hdf5 --splits data/train.npz --split denoise-91

`Nb101Dataset` reads the HDF5 once and keeps the whole split as tensors: one-hot
operations, padded adjacency, vertex mask, the label and its normalised target.
Batches are taken by tensor indexing (`batch(idx)`), never item by item.
"""
import argparse
import os
import sys

import numpy as np
import torch

from model import propagation_matrices
from nb101.search_space import MAX_VERTICES, VERTEX_TYPES
from nb101.nasbench_data import (DEFAULT_HDF5, DEFAULT_SPLITS, LABEL_MEAN, LABEL_STD, SPLIT_HINT, DataError, read_hdf5,
                           read_splits, select_split, validation_labels)



def vertex_mask(num_vertices, device="cpu"):
    """(L, 7) float mask, 1.0 on the real vertices 0..n-1 of each graph."""
    n = torch.as_tensor(np.asarray(num_vertices), device=device).long()
    return (torch.arange(MAX_VERTICES, device=device) < n[:, None]).float()


def one_hot_operations(operations, num_vertices, device="cpu"):
    """(L, 7) HDF5 operation codes -> (L, 7, 5) one-hot over VERTEX_TYPES, zero rows for padding
    (HDF5 codes: -1 input, -2 output, 0..2 the interior ops)."""
    codes = torch.as_tensor(np.asarray(operations), device=device).long()
    type_index = torch.where(codes < 0, -codes - 1, codes + 2)  # -1 -> 0, -2 -> 1, op k -> k + 2
    one_hot = torch.nn.functional.one_hot(type_index, len(VERTEX_TYPES)).float()
    return one_hot * vertex_mask(num_vertices, device)[..., None]


def graph_tensors(adjacency, operations, num_vertices, device="cpu", propagation="faithful"):
    """Model inputs for L graphs given as HDF5/Space-style int8 arrays.

    Returns float tensors: `adjacency` (L, 7, 7), `operations` (L, 7, 5) one-hot,
    `mask` (L, 7), and `propagation` (L, 2, 7, 7), the GCN's two normalised
    propagation matrices by the rule `propagation` (model.propagation_matrices),
    computed here once per graph instead of once per step.
    """
    adjacency = torch.as_tensor(np.asarray(adjacency), device=device).float()
    return {
        "adjacency": adjacency,
        "operations": one_hot_operations(operations, num_vertices, device),
        "mask": vertex_mask(num_vertices, device),
        "propagation": propagation_matrices(adjacency, propagation),
    }


def topological_orders(adjacency, mask, priorities):
    """(..., 7) vertex orders of graphs (..., 7, 7) that keep every edge pointing forward: new vertex t is
    old vertex order[..., t].

    Step by step, the order places, of the real vertices whose predecessors are all placed, the
    one of highest priority (..., 7); the padding vertices follow in their own order. With
    random priorities every topological order of a cell can come out: the cell relabelled
    (`relabelled`) is the same network, with the same hash (HAAP's homogeneous architectures).
    """
    edges, real = adjacency.bool(), mask.bool()
    placed = torch.zeros_like(real)
    padding_score = 1 - torch.arange(MAX_VERTICES, device=adjacency.device) / MAX_VERTICES  # in (0, 1]
    order = []
    for _ in range(MAX_VERTICES):
        ready = real & ~placed & ~(edges & ~placed.unsqueeze(-1)).any(-2)  # no unplaced predecessor
        score = torch.where(ready, priorities + 2, torch.where(~real & ~placed, padding_score, -1.0))
        chosen = score.argmax(-1, keepdim=True)
        placed = placed.scatter(-1, chosen, True)
        order.append(chosen)
    return torch.cat(order, -1)


def relabelled(graphs, order):
    """`adjacency`, `operations` and `mask` of graphs with their vertices renumbered: new vertex t is old vertex
    order[..., t] (topological_orders)."""
    vertices = order.shape[-1]
    rows = order.unsqueeze(-1).expand(*order.shape, vertices)
    adjacency = graphs["adjacency"].gather(-2, rows).gather(-1, rows.transpose(-1, -2))
    operations = graphs["operations"].gather(-2, order.unsqueeze(-1).expand(*graphs["operations"].shape))
    return {"adjacency": adjacency, "operations": operations, "mask": graphs["mask"].gather(-1, order)}


def normalise_accuracy(accuracy):
    """Validation accuracy (fraction) -> the predictor's regression target."""
    return (accuracy - LABEL_MEAN) / LABEL_STD


def denormalise_accuracy(target):
    """Inverse of normalise_accuracy: regression output -> validation accuracy (fraction)."""
    return target * LABEL_STD + LABEL_MEAN


def split_rows(labels, hashes, split, splits_path, data_path=DEFAULT_HDF5):
    """HDF5 rows of `split`: rows with a label for None/"all", else the split file's index array."""
    if split is None or split == "all":
        return np.flatnonzero(np.isfinite(labels))
    rows = select_split(read_splits(splits_path, hashes, data_path), split, splits_path)
    unlabelled = np.count_nonzero(~np.isfinite(labels[rows]))
    if unlabelled:
        raise DataError(f"split {split!r} of {splits_path} has {unlabelled} rows without a label; "
                        f"re-create the split file for this HDF5")
    return rows


def training_rows(labels, hashes, size, splits_path, seed, data_path=DEFAULT_HDF5):
    """(HDF5 rows, source) of the N training architectures: split `N` of the split file, else a seeded draw."""
    if not os.path.exists(splits_path):
        raise DataError(f"split file {splits_path} not found; make it with:\n  {SPLIT_HINT} --data {data_path} "
                        f"--output {splits_path}")
    splits = read_splits(splits_path, hashes, data_path)
    if str(size) in splits:
        return select_split(splits, str(size), splits_path), f"split {size}"
    labelled = np.flatnonzero(np.isfinite(labels))
    if size > len(labelled):
        raise DataError(f"N = {size} exceeds the {len(labelled)} architectures with a label")
    rows = np.random.default_rng([seed, size]).choice(labelled, size, replace=False)
    return np.sort(rows), f"random draw (seed {seed})"



class Nb101Dataset(torch.utils.data.Dataset):
    """One split of the HDF5 as tensors: `.index`, `.graphs`, `.accuracy`, `.target`, `.num_vertices`, `.name`, and
    `.cells`, its graphs as the HDF5's arrays (what predictor.NeuralPredictor takes)."""

    def __init__(self, hdf5=DEFAULT_HDF5, split="all", splits=DEFAULT_SPLITS, device="cpu", propagation="faithful",
                 data=None):
        data = read_hdf5(hdf5) if data is None else data  # data: read_hdf5(hdf5) already read, for several splits
        labels = validation_labels(data["metrics"])
        rows = split_rows(labels, data["hash"], split, splits, hdf5)
        self.name = "all" if split is None else split
        self.index = torch.as_tensor(rows, dtype=torch.long)
        self.hashes = data["hash"]  # of every HDF5 row, for split files
        self.num_vertices = torch.as_tensor(data["num_vertices"][rows], dtype=torch.long, device=device)
        self.cells = {key: data[key][rows] for key in ("adjacency", "operations", "num_vertices")}  # as arrays
        self.device, self.propagation, self._graphs = device, propagation, None
        self.accuracy = torch.as_tensor(labels[rows], dtype=torch.float64, device=device)
        self.target = normalise_accuracy(self.accuracy).float()

    @property
    def graphs(self):
        """The model inputs of the split (graph_tensors), made when first asked for."""
        if self._graphs is None:
            self._graphs = graph_tensors(self.cells["adjacency"], self.cells["operations"], self.cells["num_vertices"],
                                         self.device, self.propagation)
        return self._graphs

    def __len__(self):
        return len(self.index)

    def batch(self, idx):
        """Graphs, label and target of positions `idx` (a LongTensor) by tensor indexing."""
        items = {key: value[idx] for key, value in self.graphs.items()}
        items.update(num_vertices=self.num_vertices[idx], accuracy=self.accuracy[idx], target=self.target[idx])
        return items

    def __getitem__(self, i):
        return self.batch(i)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_HDF5)
    parser.add_argument("--splits", default=DEFAULT_SPLITS)
    parser.add_argument("--split", default="all")
    args = parser.parse_args(argv)
    try:
        dataset = Nb101Dataset(args.data, args.split, args.splits)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    accuracy = dataset.accuracy.numpy()
    sizes = np.bincount(dataset.num_vertices.numpy(), minlength=MAX_VERTICES + 1)[2:]
    print(f"split {dataset.name!r} of {os.path.basename(args.data)}: {len(dataset):,} architectures; "
          f"validation accuracy mean {accuracy.mean():.4f}, std {accuracy.std():.4f}, max {accuracy.max():.4f}; "
          f"by vertex count 2..7: {sizes.tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
