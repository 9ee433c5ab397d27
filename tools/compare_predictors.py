"""The paper appendix's predictor comparison: MLP vs CNN vs GCN by training-set size, over several seeds.

    python tools/compare_predictors.py                               # N = 43 .. 860, 5 seeds, faithful recipe
    python tools/compare_predictors.py --recipe improved --output_dir runs/compare_improved
    python tools/compare_predictors.py --sizes 43 --seeds 2 --max-epochs 3 --output_dir runs/compare_smoke

For each training-set size N the training architectures are split N of the split file where
it has one (172, 334, 860), else N labelled rows drawn with --seed (dataset.training_rows),
the same for every predictor and seed. Each predictor trains with the recipe's training
flags (epochs, lr, weight decay, batch size, dropout, loss; the GCN also its hidden size,
propagation and readout init); the seeds of one (predictor, N) train as one stacked fit and
every model is evaluated on all architectures. Writes `table.md` (Kendall tau and MSE, mean
± std over seeds), `results.json` (every seed) and `comparison.png` to --output_dir.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import cli  # noqa: E402
from dataset import Nb101Dataset, denormalise_accuracy, training_rows  # noqa: E402
from engine import fit, predict  # noqa: E402
from metrics import regression_metrics  # noqa: E402
from model import PREDICTORS  # noqa: E402
from nb101.nasbench_data import DEFAULT_HDF5, DEFAULT_SPLITS, atomic_output, write_json  # noqa: E402
from tools.reproduce_table import cap_epochs  # noqa: E402

SIZES = (43, 86, 172, 334, 860)
NAMES = {"gcn": "GCN", "mlp": "MLP", "cnn": "CNN"}


def compare(everything, sizes, predictors, options, seeds, first_seed, splits, device, progress):
    """{(predictor, N): per-seed metrics on all architectures}, and where each N's training set came from."""
    labels = everything.accuracy.cpu().numpy()
    hdf5_labels = np.full(len(everything.hashes), np.nan)  # training_rows draws among the HDF5's labelled rows
    hdf5_labels[everything.index.numpy()] = labels
    records, sources = {}, {}
    jobs = [(name, size) for size in sizes for name in predictors]
    for name, size in tqdm(jobs, desc="trainings", disable=not progress):
        hdf5_rows, sources[size] = training_rows(hdf5_labels, everything.hashes, size, splits, first_seed)
        rows = torch.as_tensor(np.searchsorted(everything.index.numpy(), hdf5_rows))
        model = fit(everything.graphs, [(rows, everything.target[rows])] * seeds, predictor=name, seed=first_seed,
                    device=device, **options)
        predicted = denormalise_accuracy(predict(model, everything.graphs)).double().numpy()
        records[(name, size)] = [regression_metrics(p, labels) for p in predicted]
    return records, sources


def mean_std(metrics, key):
    values = np.array([m[key] for m in metrics])
    return values.mean(), values.std(ddof=1) if len(values) > 1 else 0.0


def markdown(records, sources, predictors, sizes, seeds, recipe):
    lines = [f"Recipe {recipe}; mean ± std over {seeds} seeds; eval on all architectures; MSE on the 0-100 scale.",
             "", "| N | training set | " + " | ".join(f"Kendall tau {NAMES[p]}" for p in predictors) + " | "
             + " | ".join(f"MSE {NAMES[p]}" for p in predictors) + " |",
             "|---|---|" + "---|" * (2 * len(predictors))]
    for size in sizes:
        taus = [mean_std(records[(p, size)], "kendall_tau") for p in predictors]
        mses = [mean_std(records[(p, size)], "mse") for p in predictors]
        lines.append(f"| {size} | {sources[size]} | " + " | ".join(f"{m:.3f} ± {s:.3f}" for m, s in taus) + " | "
                     + " | ".join(f"{m:.2f} ± {s:.2f}" for m, s in mses) + " |")
    return "\n".join(lines) + "\n"


def plot(path, records, predictors, sizes, seeds, recipe, count):
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax, key, label in ((axes[0], "kendall_tau", "Kendall tau"), (axes[1], "mse", "MSE (0-100 scale)")):
        for name in predictors:
            stats = np.array([mean_std(records[(name, size)], key) for size in sizes])
            ax.errorbar(sizes, stats[:, 0], yerr=stats[:, 1], marker="o", capsize=3, label=NAMES[name])
        ax.set_xscale("log")
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xticks(sizes, [str(size) for size in sizes])
        ax.set_xlabel("training architectures N")
        ax.set_ylabel(f"{label} on all {count:,} architectures")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend()
    fig.suptitle(f"Predictors of the paper's appendix, {recipe} recipe: mean ± std over {seeds} seeds")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=150)
    plt.close(fig)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_HDF5)
    parser.add_argument("--splits", default=DEFAULT_SPLITS)
    parser.add_argument("--sizes", type=cli.positive_int, nargs="+", action=cli.Distinct, default=list(SIZES))
    parser.add_argument("--predictors", nargs="+", action=cli.Distinct, choices=sorted(PREDICTORS),
                        default=["mlp", "cnn", "gcn"])
    parser.add_argument("--recipe", choices=sorted(cli.RECIPES), default="faithful")
    parser.add_argument("--seeds", type=cli.positive_int, default=5)
    parser.add_argument("--max-epochs", type=cli.positive_int, default=None,
                        help="cap the training and pre-training epochs (smoke test)")
    cli.add_machine_arguments(parser, "runs/compare")
    args = parser.parse_args(argv)
    small = [size for size in args.sizes if size < cli.RECIPES[args.recipe].batch_size]
    if small:
        parser.error(f"--sizes {small}: fewer architectures than one batch")
    return args


def main(args, device):
    start = time.time()
    recipe = cap_epochs(cli.RECIPES[args.recipe].fit_options(), args.max_epochs)
    propagation = recipe["propagation"]
    everything = Nb101Dataset(args.data, "all", args.splits, device, propagation)
    records, sources = compare(everything, args.sizes, args.predictors, recipe, args.seeds, args.seed, args.splits,
                               device, not args.quiet)
    os.makedirs(args.output_dir, exist_ok=True)
    table = markdown(records, sources, args.predictors, args.sizes, args.seeds, args.recipe)
    write_json(os.path.join(args.output_dir, "results.json"),
               {"args": vars(args), "recipe": recipe, "seconds": time.time() - start, "sources": sources,
                "results": [{"predictor": p, "N": n, "per_seed": m} for (p, n), m in records.items()]})
    with atomic_output(os.path.join(args.output_dir, "table.md")) as tmp:
        with open(tmp, "w") as f:
            f.write(table)
    plot(os.path.join(args.output_dir, "comparison.png"), records, args.predictors, args.sizes, args.seeds,
         args.recipe, len(everything))
    print(table)
    print(f"wrote {args.output_dir}/table.md, results.json, comparison.png in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, parse_args()))
