"""Choose the predictor's hidden size, epochs and learning rate for each training-set size N by K-fold CV.

    python crossval.py                                   # N = 43, 86, 172, 334, 860, 3 folds, default grid
    python crossval.py --sizes 172 --hidden 72 144 --epochs 100 300 --lrs 1e-4 4e-4 --folds 5

For each N the training architectures are the split file's split named N where it
exists (172, 334, 860 from tools/split_train_val.py), else N labelled rows drawn with
--seed. Folds come from engine.kfold_positions (disjoint, together the whole set). For
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

import cli
import engine
import pretrain as pretraining
from recipes import FAITHFUL
from dataset import denormalise_accuracy, graph_tensors, normalise_accuracy, training_rows
from metrics import regression_metrics
from model import PREDICTORS, PROPAGATION_RULES, READOUT_INITS, REGRESSION_LOSSES
from nb101.nasbench_data import DEFAULT_HDF5, DEFAULT_SPLITS, atomic_outputs, write_json, read_hdf5, validation_labels

SIZES = (43, 86, 172, 334, 860)
# hidden size by N in one public replication (REFERENCE.md)
REFERENCE_HIDDEN = {43: 48, 86: 72, 129: 96, 172: 144, 334: 210, 860: 320}
METRICS = ("mse", "kendall_tau")


def summarise(per_fold):
    """Mean and standard deviation over folds of each metric."""
    summary = {}
    for key in METRICS:
        values = np.array([fold[key] for fold in per_fold])
        summary[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1))}
    return summary


def cross_validate_grid(graphs, accuracy, folds, lrs, seed=0, ensemble=1, **fit_kwargs):
    """K-fold CV for several learning rates at once: K x len(lrs) x ensemble models in one batched fit.

    graphs: graph_tensors of the N training architectures; accuracy (N,) their labels.
    Models (i * K + k) * ensemble + e train with lrs[i] on every fold but k and are validated
    on fold k (an ensemble averages its e models). Returns one summary per learning rate:
    {"lr", "mse", "kendall_tau" (mean ± std over folds), "pooled_tau" (Kendall tau of the N
    out-of-fold predictions together: steadier than a mean over folds of a few dozen), "per_fold"}.
    """
    accuracy = np.asarray(accuracy, dtype=np.float64)
    validation = engine.kfold_positions(len(accuracy), folds, seed)
    everything = torch.arange(len(accuracy))
    target = normalise_accuracy(torch.as_tensor(accuracy)).float()
    train_rows = [everything[~torch.isin(everything, fold)] for fold in validation]
    sets = [(rows, target[rows]) for _ in lrs for rows in train_rows for _ in range(ensemble)]
    model = engine.fit(graphs, sets, lr=[lr for lr in lrs for _ in validation for _ in range(ensemble)], seed=seed,
                      **fit_kwargs)
    output = engine.predict(model, graphs, backend=fit_kwargs.get("backend", "auto")).view(len(lrs), folds, ensemble, -1).mean(2)
    predicted = denormalise_accuracy(output).double().numpy()
    results = []
    for i, lr in enumerate(lrs):
        per_fold = [regression_metrics(predicted[i, k, fold.numpy()], accuracy[fold.numpy()])
                    for k, fold in enumerate(validation)]
        out_of_fold = np.empty(len(accuracy))
        for k, fold in enumerate(validation):
            out_of_fold[fold.numpy()] = predicted[i, k, fold.numpy()]
        pooled = regression_metrics(out_of_fold, accuracy)["kendall_tau"]
        results.append({"lr": lr, **summarise(per_fold), "pooled_tau": pooled, "per_fold": per_fold})
    return results


CRITERIA = {"lowest MSE": lambda r: r["mse"]["mean"], "highest Kendall tau": lambda r: -r["pooled_tau"]}
CONFIG_KEYS = ("propagation", "loss", "hidden", "layers", "epochs", "lr", "ensemble", "pretrain", "augment")


def best_config(results, criterion="lowest MSE"):
    """The grid entry that is best by mean validation MSE (default) or mean Kendall tau."""
    return min(results, key=CRITERIA[criterion])


def config_name(result):
    """One grid entry's configuration as table cells."""
    cells = {key: str(result[key]) for key in CONFIG_KEYS}
    cells.update(lr=f"{result['lr']:g}", augment="on" if result["augment"] else "off")
    return " | ".join(cells[key] for key in CONFIG_KEYS)


def markdown(by_size, folds):
    """crossval.md: the choice per N by each criterion, then the whole grid."""
    header = " | ".join(CONFIG_KEYS)
    lines = [f"## Chosen by {folds}-fold cross-validation on the training architectures\n",
             "Kendall tau: of the out-of-fold predictions of all N architectures together (pooled); MSE: mean ± std "
             "over folds.\n",
             f"| N | training set | chosen by | hidden (REFERENCE.md) | {header} | validation MSE | Kendall tau |",
             "|---|---|---|---|" + "---|" * len(CONFIG_KEYS) + "---|---|"]
    for (size, entry), criterion in itertools.product(by_size.items(), CRITERIA):
        best = best_config(entry["grid"], criterion)
        lines.append(f"| {size} | {entry['source']} | {criterion} | {REFERENCE_HIDDEN.get(size, '-')} | "
                     f"{config_name(best)} | {best['mse']['mean']:.3f} ± {best['mse']['std']:.3f} | "
                     f"{best['pooled_tau']:.3f} |")
    lines += ["", "## Whole grid: validation MSE / pooled Kendall tau\n"]
    configs = sorted({config_name(r) for e in by_size.values() for r in e["grid"]})
    lines.append(f"| {header} | " + " | ".join(f"N = {size}" for size in by_size) + " |")
    lines.append("|" + "---|" * (len(CONFIG_KEYS) + len(by_size)))
    for config in configs:
        cells = []
        for entry in by_size.values():
            match = [r for r in entry["grid"] if config_name(r) == config]
            cells.append(f"{match[0]['mse']['mean']:.3f} / {match[0]['pooled_tau']:.3f}" if match else "-")
        lines.append(f"| {config} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_HDF5, help="HDF5 made by tools/nasbench_tfrecord_converter.py")
    parser.add_argument("--splits", default=DEFAULT_SPLITS, help="split file made by tools/split_train_val.py")
    parser.add_argument("--sizes", type=cli.positive_int, nargs="+", action=cli.Distinct, default=list(SIZES),
                        help="training-set sizes N")
    parser.add_argument("--folds", type=cli.positive_int, default=3,
                        help="K (3 keeps the default grid near 10 minutes on CPU)")
    parser.add_argument("--predictor", choices=sorted(PREDICTORS), default="gcn", help="the predictor to cross-validate")
    parser.add_argument("--backend", choices=engine.BACKENDS, default="auto", help="as train.py's --backend")
    parser.add_argument("--hidden", type=cli.positive_int, nargs="+", action=cli.Distinct, default=None,
                        help="the GCN's hidden sizes (default: 48 144 for the GCN)")
    parser.add_argument("--layers", type=cli.positive_int, nargs="+", action=cli.Distinct, default=[FAITHFUL.layers],
                        help="the GCN's graph-convolution layers")
    parser.add_argument("--epochs", type=cli.positive_int, nargs="+", action=cli.Distinct, default=[100, 300],
                        help="training epochs to try")
    parser.add_argument("--lrs", type=cli.positive_float, nargs="+", action=cli.Distinct, default=[1e-4, 4e-4],
                        help="learning rates to try")
    parser.add_argument("--propagation", nargs="+", action=cli.Distinct, choices=PROPAGATION_RULES,
                        default=["faithful"])
    parser.add_argument("--losses", nargs="+", action=cli.Distinct, choices=REGRESSION_LOSSES, default=["mse"],
                        help="losses to try")
    parser.add_argument("--ensembles", type=cli.positive_int, nargs="+", action=cli.Distinct, default=[1],
                        help="ensemble sizes to try (each trains that many seeds per fold)")
    parser.add_argument("--pretrain", type=cli.non_negative_int, nargs="+", action=cli.Distinct, default=[0],
                        metavar="EPOCHS", help="pre-trainings to try (pretrain.py's epochs; 0: none)")
    parser.add_argument("--augment", type=cli.on_off, nargs="+", action=cli.Distinct, default=[False],
                        metavar="{off,on}", help="augmentation to try (train.py's --augment; off, on or both)")
    parser.add_argument("--readout_init", choices=READOUT_INITS, default=FAITHFUL.readout_init, help="as train.py's")
    parser.add_argument("--wd", type=cli.non_negative_float, default=FAITHFUL.wd, help="Adam's L2 weight decay")
    parser.add_argument("--dropout", type=cli.dropout_rate, default=FAITHFUL.dropout, help="dropout rate, in [0, 1)")
    parser.add_argument("--train_batch_size", type=cli.positive_int, default=FAITHFUL.batch_size,
                        help="architectures per training batch")
    cli.add_precision_argument(parser)
    cli.add_machine_arguments(parser, "results/crossval")
    args = parser.parse_args(argv)
    if args.hidden is None:  # a grid of the GCN's, one placeholder value for the other predictors
        args.hidden = [48, 144] if args.predictor == "gcn" else [FAITHFUL.hidden]
    if args.folds < 2:
        parser.error("--folds needs K >= 2")
    cli.check_backend(args, parser)
    if args.predictor != "gcn" and (len(args.hidden) > 1 or len(args.layers) > 1):
        parser.error(f"--hidden and --layers size the GCN; --predictor {args.predictor} keeps its own sizes: "
                     "give one value of each (or leave them out)")
    too_few = [n for n in args.sizes if n < args.folds]
    if too_few:
        parser.error(f"--sizes {too_few}: fewer architectures than --folds {args.folds}")
    too_small = [n for n in args.sizes if n * (args.folds - 1) // args.folds < args.train_batch_size]
    if too_small:
        parser.error(f"sizes {too_small} leave fewer than one batch of {args.train_batch_size} per training fold")
    return args


def crossval(args, device):
    start = time.time()
    data = read_hdf5(args.data)
    labels = validation_labels(data["metrics"])
    chosen = {size: training_rows(labels, data["hash"], size, args.splits, args.seed) for size in args.sizes}
    for propagation, hidden, layers, pretrain in itertools.product(args.propagation, args.hidden, args.layers,
                                                                   args.pretrain):
        if pretrain:  # made (and cached) before the grid, with its own progress bar
            pretraining.pretrained_weights(propagation, hidden, layers, pretrain, progress=not args.quiet)
    by_size = {}
    jobs = list(itertools.product(args.sizes, args.propagation, args.losses, args.hidden, args.layers, args.epochs,
                                  args.ensembles, args.pretrain, args.augment))
    for size, propagation, loss, hidden, layers, epochs, ensemble, pretrain, augment in tqdm(
            jobs, desc="cross-validation", disable=args.quiet):
        rows, source = chosen[size]
        graphs = graph_tensors(data["adjacency"][rows], data["operations"][rows], data["num_vertices"][rows], device,
                               propagation)
        results = cross_validate_grid(graphs, labels[rows], args.folds, args.lrs, args.seed, ensemble,
                                      predictor=args.predictor, backend=args.backend, loss=loss, hidden=hidden,
                                      layers=layers, epochs=epochs, wd=args.wd, batch_size=args.train_batch_size,
                                      dropout=args.dropout, readout_init=args.readout_init,
                                      precision=args.precision, pretrain=pretrain, propagation=propagation,
                                      augment=augment, device=device)
        entry = by_size.setdefault(size, {"source": source, "grid": []})
        entry["grid"] += [{"propagation": propagation, "loss": loss, "hidden": hidden, "layers": layers,
                           "epochs": epochs, "ensemble": ensemble, "pretrain": pretrain, "augment": augment, **r}
                          for r in results]
    table = markdown(by_size, args.folds)
    with atomic_outputs(os.path.join(args.output_dir, "crossval.json"),
                        os.path.join(args.output_dir, "crossval.md")) as (json_path, markdown_path):
        write_json(json_path, {"args": vars(args), "seconds": time.time() - start,
                               "sizes": {str(k): v for k, v in by_size.items()}})
        with open(markdown_path, "w") as f:
            f.write(table)
    print(table)
    print(f"{time.time() - start:.0f} s; wrote {args.output_dir}/crossval.md and crossval.json", file=sys.stderr)
    return 0


def main(argv=None):
    return cli.run(crossval, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
