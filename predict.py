"""Predict with a trained predictor (train.py's model.pt): a list of cells, a split of an HDF5, or the whole space.

    python predict.py --checkpoint results/train_172_all/model.pt --space --top 20 --output top20.csv
    python predict.py --checkpoint results/train_172_all/model.pt --data data/nasbench.hdf5 --splits data/train.npz \
        --split all --output all.csv
    python predict.py --checkpoint model.pt --cells cells.jsonl --output predicted.csv

--cells reads JSON lines, each a cell: {"module_adjacency": [[...]], "module_operations": [...]}
(or "matrix" / "ops"), or {"hash": "..."}, or a bare "hash" string. Writes a CSV ranked by
prediction, best first: rank, hash, adjacency (row-major 0/1 string, as the official
TFRecord writes it), operations (comma-separated), predicted_accuracy (a fraction) and, where
the data has one, true_accuracy (the label: the first non-blown run's 108-epoch validation
accuracy). Prints Kendall tau and MSE where labels exist. A bad input is refused before any
work, with exit 2, and nothing is written.
"""
import argparse
import csv
import json
import os
import sys

import numpy as np

import cli
from metrics import regression_metrics
from nb101 import nasbench_data, search_space
from nb101.nasbench_data import DEFAULT_HDF5, DEFAULT_SPLITS, DataError, atomic_output, check_output_file
from predictor import CheckpointError, NeuralPredictor


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="a model.pt written by train.py")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--cells", help="JSON lines of cells (matrix and ops, or hashes)")
    source.add_argument("--split", help="a split of --data, by --splits (all: every labelled architecture)")
    source.add_argument("--space", action="store_true", help="all 423,624 cells of the NAS-Bench-101 space")
    parser.add_argument("--data", default=DEFAULT_HDF5, help="with --split: the HDF5; with --space or --cells: "
                        "labels from it where it exists")
    parser.add_argument("--splits", default=DEFAULT_SPLITS, help="with --split: the split file")
    parser.add_argument("--output", required=True, help="the CSV to write")
    parser.add_argument("--top", type=cli.positive_int, default=None, help="write only the K best-predicted cells")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def read_cells(path):
    """Cells of a JSON-lines file, as NeuralPredictor takes them (hash strings or (matrix, ops) pairs)."""
    cells = []
    try:
        with open(path) as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    cells.append(_cell(json.loads(line), number))
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"--cells {path}: cannot read it ({e})") from None
    except (ValueError, RecursionError) as e:
        raise DataError(f"--cells {path}: {e}") from None
    if not cells:
        raise DataError(f"--cells {path} holds no cells")
    return cells


def _cell(row, number):
    if isinstance(row, str):
        return row
    if isinstance(row, dict):
        if "hash" in row and not ({"module_adjacency", "matrix"} & set(row)):
            return str(row["hash"])
        matrix, ops = row.get("module_adjacency", row.get("matrix")), row.get("module_operations", row.get("ops"))
        if matrix is not None and ops is not None:
            return matrix, ops
    raise ValueError(f"line {number}: expected a hash or an object with module_adjacency and module_operations")


def labels_by_hash(path):
    """{hash: label} of an HDF5, or {} when there is none at `path`."""
    if not os.path.exists(path):
        return {}
    data = nasbench_data.read_hdf5(path)
    labels = nasbench_data.validation_labels(data["metrics"])
    return dict(zip(data["hash"].tolist(), labels.tolist()))


def cells_and_labels(args):
    """(cells as arrays or a list, their hashes (S32), their labels (NaN where unknown))."""
    if args.split:
        data = nasbench_data.read_hdf5(args.data)
        labels = nasbench_data.validation_labels(data["metrics"])
        if args.split == "all":
            rows = np.flatnonzero(np.isfinite(labels))
        else:
            rows = nasbench_data.select_split(nasbench_data.read_splits(args.splits, data["hash"], args.data), args.split,
                                              args.splits)
        cells = {key: data[key][rows] for key in ("adjacency", "operations", "num_vertices")}
        return cells, data["hash"][rows], labels[rows]
    if args.space:
        space = search_space.enumerate_space(progress=not args.quiet)
        cells = {"adjacency": space.adjacency, "operations": space.operations, "num_vertices": space.num_vertices}
        hashes = space.hashes
    else:
        from predictor import cell_arrays
        try:
            cells = cell_arrays(read_cells(args.cells))
        except ValueError as e:
            raise DataError(f"--cells {args.cells}: {e}") from None
        hashes = np.array([search_space.hash_module(a[:n, :n], o[:n]) for a, o, n in
                           zip(cells["adjacency"], cells["operations"], cells["num_vertices"])], dtype="S32")
    known = labels_by_hash(args.data)
    return cells, hashes, np.array([known.get(h, np.nan) for h in hashes.tolist()])


def write_csv(path, order, hashes, cells, predicted, labels):
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["rank", "hash", "adjacency", "operations", "predicted_accuracy", "true_accuracy"])
            for rank, i in enumerate(order, start=1):
                n = int(cells["num_vertices"][i])
                writer.writerow([rank, hashes[i].decode(), "".join(map(str, cells["adjacency"][i, :n, :n].ravel())),
                                 ",".join(search_space.codes_to_ops(cells["operations"][i, :n])),
                                 f"{predicted[i]:.6f}", "" if np.isnan(labels[i]) else f"{labels[i]:.6f}"])


def main(argv=None):
    args = parse_args(argv)
    cli.plain_warnings()
    try:
        check_output_file(args.output, args.checkpoint, args.data)
        predictor = NeuralPredictor.load(args.checkpoint, device=args.device, progress=not args.quiet)
        cells, hashes, labels = cells_and_labels(args)
        rows = min(len(hashes), args.top or len(hashes))
        nasbench_data.require_free_space(args.output, 160 * rows, "the CSV")  # a row is under 160 bytes
        predicted = predictor.predict(cells)
    except (CheckpointError, DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    order = np.argsort(-predicted, kind="stable")[:args.top]
    write_csv(args.output, order, hashes, cells, predicted, labels)
    labelled = np.isfinite(labels)
    message = f"wrote {args.output}: {len(order):,} of {len(predicted):,} cells ranked by predicted accuracy"
    if labelled.sum() >= 2:
        m = regression_metrics(predicted[labelled], labels[labelled])
        message += f"; on the {int(labelled.sum()):,} with a label: MSE {m['mse']:.3f}, Kendall tau {m['kendall_tau']:.4f}"
    print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
