"""Choose the predictor's hidden size, epochs and learning rate for each training-set size N by K-fold CV.

    python crossval.py                                   # N = 43, 86, 172, 334, 860, 3 folds, default grid
    python crossval.py --sizes 172 --hidden 72 144 --epochs 100 300 --lrs 1e-4 4e-4 --folds 5

For each N the training architectures are the split file's split named N where it
exists (172, 334, 860 from tools/split_train_val.py), else N labelled rows drawn with
--seed. Folds come from train.kfold_positions (disjoint, together the whole set). For
each (hidden, epochs) the K folds x all learning rates train as one batched fit with
per-model learning rates. The configuration with the lowest mean validation MSE wins;
the one with the highest mean Kendall tau is shown too (MSE on a few dozen held-out
architectures is dominated by the rare failed trainings). Writes crossval.md (the choice next to the hidden sizes of
REFERENCE.md, and the whole grid) and crossval.json to --output_dir.
"""
import argparse
import itertools
import os
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

import train
from dataset import denormalise_accuracy, graph_tensors, normalise_accuracy
from nasbench_data import (DEFAULT_HDF5, DEFAULT_SPLITS, DataError, atomic_output, write_json, read_hdf5, read_splits,
                           select_split, validation_labels)

SIZES = (43, 86, 172, 334, 860)
# hidden size by N in one public replication (REFERENCE.md)
REFERENCE_HIDDEN = {43: 48, 86: 72, 129: 96, 172: 144, 334: 210, 860: 320}
METRICS = ("mse", "kendall_tau")


def training_rows(labels, hashes, size, splits_path, seed):
    """(HDF5 rows, source) of the N training architectures: split `N` of the split file, else a seeded draw."""
    if os.path.exists(splits_path):
        splits = read_splits(splits_path, hashes)
        if str(size) in splits:
            return select_split(splits, str(size), splits_path), f"split {size}"
    labelled = np.flatnonzero(np.isfinite(labels))
    if size > len(labelled):
        raise DataError(f"N = {size} exceeds the {len(labelled)} architectures with a label")
    rows = np.random.default_rng([seed, size]).choice(labelled, size, replace=False)
    return np.sort(rows), f"random draw (seed {seed})"


def summarise(per_fold):
    """Mean and standard deviation over folds of each metric."""
    summary = {}
    for key in METRICS:
        values = np.array([fold[key] for fold in per_fold])
        summary[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1))}
    return summary


def cross_validate_grid(graphs, accuracy, folds, lrs, seed=0, **fit_kwargs):
    """K-fold CV for several learning rates at once: K x len(lrs) models in one batched fit.

    graphs: graph_tensors of the N training architectures; accuracy (N,) their labels.
    Model i * K + k trains with lrs[i] on every fold but k and is validated on fold k.
    Returns one {"lr", "mse", "kendall_tau", "per_fold"} summary per learning rate.
    """
    accuracy = np.asarray(accuracy, dtype=np.float64)
    validation = train.kfold_positions(len(accuracy), folds, seed)
    everything = torch.arange(len(accuracy))
    target = normalise_accuracy(torch.as_tensor(accuracy)).float()
    train_rows = [everything[~torch.isin(everything, fold)] for fold in validation]
    sets = [(rows, target[rows]) for _ in lrs for rows in train_rows]
    model = train.fit(graphs, sets, lr=[lr for lr in lrs for _ in validation], seed=seed, **fit_kwargs)
    predicted = denormalise_accuracy(train.predict(model, graphs)).double().numpy()
    results = []
    for i, lr in enumerate(lrs):
        per_fold = [train.regression_metrics(predicted[i * folds + k, fold.numpy()], accuracy[fold.numpy()])
                    for k, fold in enumerate(validation)]
        results.append({"lr": lr, **summarise(per_fold), "per_fold": per_fold})
    return results


CRITERIA = {"lowest MSE": lambda r: r["mse"]["mean"], "highest Kendall tau": lambda r: -r["kendall_tau"]["mean"]}


def best_config(results, criterion="lowest MSE"):
    """The grid entry that is best by mean validation MSE (default) or mean Kendall tau."""
    return min(results, key=CRITERIA[criterion])


def markdown(by_size, folds):
    """crossval.md: the choice per N next to REFERENCE.md's hidden sizes, then the whole grid."""
    lines = [f"## Chosen by {folds}-fold cross-validation (mean ± std over folds)\n",
             "| N | training set | chosen by | hidden (REFERENCE.md) | hidden | epochs | lr | validation MSE "
             "| Kendall tau |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (size, entry), criterion in itertools.product(by_size.items(), CRITERIA):
        best = best_config(entry["grid"], criterion)
        lines.append(f"| {size} | {entry['source']} | {criterion} | {REFERENCE_HIDDEN.get(size, '-')} | "
                     f"{best['hidden']} | {best['epochs']} | {best['lr']:g} | "
                     f"{best['mse']['mean']:.3f} ± {best['mse']['std']:.3f} | "
                     f"{best['kendall_tau']['mean']:.3f} ± {best['kendall_tau']['std']:.3f} |")
    lines += ["", "## Whole grid: validation MSE / Kendall tau (mean over folds)\n"]
    configs = sorted({(r["hidden"], r["epochs"], r["lr"]) for e in by_size.values() for r in e["grid"]})
    lines.append("| hidden | epochs | lr | " + " | ".join(f"N = {size}" for size in by_size) + " |")
    lines.append("|---|---|---|" + "---|" * len(by_size))
    for hidden, epochs, lr in configs:
        cells = []
        for entry in by_size.values():
            match = [r for r in entry["grid"] if (r["hidden"], r["epochs"], r["lr"]) == (hidden, epochs, lr)]
            cells.append(f"{match[0]['mse']['mean']:.3f} / {match[0]['kendall_tau']['mean']:.3f}" if match else "-")
        lines.append(f"| {hidden} | {epochs} | {lr:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_HDF5)
    parser.add_argument("--splits", default=DEFAULT_SPLITS)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="training-set sizes N")
    parser.add_argument("--folds", type=int, default=3, help="K (3 keeps the default grid near 10 minutes on CPU)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[48, 144])
    parser.add_argument("--epochs", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-4, 4e-4])
    parser.add_argument("--wd", type=float, default=1e-3)
    parser.add_argument("--train_batch_size", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, ...")
    parser.add_argument("--output_dir", default="results/crossval")
    train.add_threads_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error("--folds needs K >= 2")
    too_small = [n for n in args.sizes if n * (args.folds - 1) // args.folds < args.train_batch_size]
    if too_small:
        parser.error(f"sizes {too_small} leave fewer than one batch of {args.train_batch_size} per training fold")
    return args


def main(argv=None):
    args = parse_args(argv)
    train.use_threads(args)
    start = time.time()
    try:
        device = train.resolve_device(args.device)
        data = read_hdf5(args.data)
        labels = validation_labels(data["metrics"])
        chosen = {size: training_rows(labels, data["hash"], size, args.splits, args.seed) for size in args.sizes}
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    by_size = {}
    jobs = list(itertools.product(args.sizes, args.hidden, args.epochs))
    for size, hidden, epochs in tqdm(jobs, desc="cross-validation", disable=args.quiet):
        rows, source = chosen[size]
        graphs = graph_tensors(data["adjacency"][rows], data["operations"][rows], data["num_vertices"][rows], device)
        results = cross_validate_grid(graphs, labels[rows], args.folds, args.lrs, args.seed, hidden=hidden,
                                      epochs=epochs, wd=args.wd, batch_size=args.train_batch_size, device=device)
        entry = by_size.setdefault(size, {"source": source, "grid": []})
        entry["grid"] += [{"hidden": hidden, "epochs": epochs, **r} for r in results]
    table = markdown(by_size, args.folds)
    os.makedirs(args.output_dir, exist_ok=True)
    with atomic_output(os.path.join(args.output_dir, "crossval.md")) as tmp:
        with open(tmp, "w") as f:
            f.write(table)
    write_json(os.path.join(args.output_dir, "crossval.json"),
               {"args": vars(args), "seconds": time.time() - start, "sizes": {str(k): v for k, v in by_size.items()}})
    print(table)
    print(f"{time.time() - start:.0f} s; wrote {args.output_dir}/crossval.md and crossval.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
