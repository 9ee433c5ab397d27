"""The public reproduction's results table, and Kendall tau by training-set size, over several seeds.

    python tools/reproduce_table.py                                # 5 seeds, full epochs (takes a while)
    python tools/reproduce_table.py --seeds 2 --max-epochs 5 --output_dir runs/table_smoke   # smoke test

Both recipes of cli.RECIPES: faithful (the reproduction's table and Kendall tau by
size) and improved (the same rows where its recipe applies). For each training
configuration the seeds train together as one batched `engine.fit` (the split is fixed by
the split file; a seed changes the initialisation, the batch order and dropout), then
every model is evaluated on the configuration's eval splits. Writes `table.md` (mean ±
std over seeds, beside the paper's numbers and the public reproduction's, from its README
and from its own code run on this very data, ../shared/REFERENCE.md), `results.json` (every seed's
metrics) and `scatter_172_all.png` (seed 0) to --output_dir.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dataset import Nb101Dataset, denormalise_accuracy  # noqa: E402
from nb101.nasbench_data import DEFAULT_HDF5, DEFAULT_SPLITS, DataError, atomic_output, write_json  # noqa: E402
from cli import RECIPES, check_output_dir, positive_int, seed  # noqa: E402
from engine import fit, predict, resolve_device  # noqa: E402
from metrics import plot_scatter, regression_metrics  # noqa: E402

# (recipe, train split, epochs, lr, eval splits) of every training (None: the recipe's own value); the faithful
# 172 serves three rows of the tables
TRAININGS = [
    ("faithful", "172", 300, 1e-4, ("all", "denoise-80")),
    ("faithful", "860", 300, 1e-4, ("all",)),
    ("faithful", "91-172", 300, 1e-4, ("denoise-91",)),
    ("faithful", "91-172", 600, 2e-4, ("denoise-91",)),
    ("faithful", "100", 300, 1e-4, ("all",)),
    ("faithful", "424", 300, 1e-4, ("all",)),
    ("faithful", "4236", 300, 1e-4, ("all",)),
    ("improved", "172", None, None, ("all", "denoise-80")),
    ("improved", "860", None, None, ("all",)),
    ("improved", "91-172", None, None, ("denoise-91",)),
    ("improved", "100", None, None, ("all",)),
    ("improved", "424", None, None, ("all",)),
    ("improved", "4236", None, None, ("all",)),
]
# (train, eval, epochs, lr) -> (paper MSE, public reproduction's README MSE, its own code measured on this very
# data: MSE, Kendall tau), from REFERENCE.md
PUBLISHED = {
    ("172", "all", 300, 1e-4): ("1.95", "3.62 (before the zero_grad fix)", "2.250 ± 0.026", "0.628 ± 0.004"),
    ("860", "all", 300, 1e-4): ("-", "2.94", "1.749 ± 0.016", "0.741 ± 0.003"),
    ("172", "denoise-80", 300, 1e-4): ("-", "1.90", "1.411 ± 0.015", "0.626 ± 0.004"),
    ("91-172", "denoise-91", 300, 1e-4): ("0.66 (cascade)", "0.74 (oracle filter)", "0.633 ± 0.018",
                                          "0.340 ± 0.016"),
    ("91-172", "denoise-91", 600, 2e-4): ("-", "0.56", "0.348 ± 0.003", "0.565 ± 0.002"),
}
# Kendall tau on all architectures by training size, as later papers report it (TNASP protocol)
PUBLISHED_TAU = {"100": 0.391, "172": 0.545, "424": 0.679, "860": None, "4236": 0.769}


def recipe_options(recipe, epochs, lr):
    """fit's keyword arguments, the propagation rule and the ensemble size of one training of the table."""
    options = RECIPES[recipe].fit_options()
    options.update({key: value for key, value in (("epochs", epochs), ("lr", lr)) if value is not None})
    return RECIPES[recipe].propagation, RECIPES[recipe].ensemble, options


def cap_epochs(options, max_epochs):
    """fit's options with the training and pre-training epochs capped at max_epochs (a smoke test); None: as they are."""
    if not max_epochs:
        return options
    return dict(options, epochs=min(options["epochs"], max_epochs), pretrain=min(options["pretrain"], max_epochs))


def run_training(train_set, eval_sets, options, ensemble, seeds, first_seed, device, progress):
    """Train `seeds` predictors (each an ensemble of `ensemble` models) on train_set as one batched fit; their
    metrics and predictions per eval split. Seed s's ensemble is models first_seed + s * ensemble + e."""
    rows = torch.arange(len(train_set))
    model = fit(train_set.graphs, [(rows, train_set.target)] * (seeds * ensemble), seed=first_seed, device=device,
                progress=progress, **options)
    results = {}
    for name, eval_set in eval_sets.items():
        output = predict(model, eval_set.graphs).view(seeds, ensemble, -1).mean(1)
        predicted = denormalise_accuracy(output).double().numpy()  # (seeds, L)
        truth = eval_set.accuracy.cpu().numpy()
        results[name] = {"predicted": predicted, "metrics": [regression_metrics(p, truth) for p in predicted]}
    return results


def mean_std(metrics, key):
    """'mean ± std' over seeds of one metric."""
    values = np.array([m[key] for m in metrics])
    return f"{values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0:.3f}"


def markdown_tables(records, seeds, data_name):
    """The public reproduction's table (both recipes) and the Kendall tau table by training size."""
    improved = RECIPES["improved"]
    lines = [f"Data: `{data_name}`; mean ± std over {seeds} seeds; MSE on the 0-100 scale. Improved recipe: "
             + ", ".join(f"{key} {value}" for key, value in improved.items()) + ".", "",
             "| train | eval | epochs | lr | MSE faithful | Kendall tau faithful | MSE improved | Kendall tau "
             "improved | MSE reproduction's code, same data | Kendall tau reproduction's code | MSE paper | "
             "MSE reproduction's README |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (train_split, eval_split, epochs, lr), (paper, readme, repro_mse, repro_tau) in PUBLISHED.items():
        faithful = records[("faithful", train_split, epochs, lr)][eval_split]
        better = records.get(("improved", train_split, None, None), {}).get(eval_split)
        cells = (f"{mean_std(better, 'mse')} | {mean_std(better, 'kendall_tau')}" if better and epochs == 300
                 else "- | -")
        lines.append(f"| {train_split} | {eval_split} | {epochs} | {lr:g} | {mean_std(faithful, 'mse')} | "
                     f"{mean_std(faithful, 'kendall_tau')} | {cells} | {repro_mse} | {repro_tau} | {paper} | "
                     f"{readme} |")
    lines += ["", "| train size | Kendall tau on all, faithful | Kendall tau on all, improved | Neural Predictor "
              "(TNASP protocol, full space) |", "|---|---|---|---|"]
    for size, published in PUBLISHED_TAU.items():
        faithful = records[("faithful", size, 300, 1e-4)]["all"] if ("faithful", size, 300, 1e-4) in records else None
        better = records.get(("improved", size, None, None), {}).get("all")
        lines.append(f"| {size} | {mean_std(faithful, 'kendall_tau') if faithful else '-'} | "
                     f"{mean_std(better, 'kendall_tau') if better else '-'} | {published or '-'} |")
    return "\n".join(lines) + "\n"


def add_table_arguments(parser, output_dir):
    """The flags every table tool shares: data, seeds, the epoch cap of a smoke test, device, output."""
    parser.add_argument("--data", default=DEFAULT_HDF5)
    parser.add_argument("--splits", default=DEFAULT_SPLITS)
    parser.add_argument("--seeds", type=positive_int, default=5)
    parser.add_argument("--seed", type=seed, default=0, help="first seed; the others follow it")
    parser.add_argument("--max-epochs", type=positive_int, default=None,
                        help="cap every training's and pre-training's epochs (smoke test)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output_dir", default=output_dir)
    parser.add_argument("--quiet", action="store_true")


def open_sets(args, names, rules):
    """(device, {(split, propagation rule): Nb101Dataset}), the output folder checked first; DataError or
    ValueError for bad input, before any training."""
    device = resolve_device(args.device)
    check_output_dir(args.output_dir)
    return device, {(name, rule): Nb101Dataset(args.data, name, args.splits, propagation=rule)
                    for name in sorted(names) for rule in sorted(rules)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_table_arguments(parser, "runs/table")
    args = parser.parse_args(argv)
    try:
        names = {name for _, train_split, _, _, evals in TRAININGS for name in (train_split, *evals)}
        device, sets = open_sets(args, names, {RECIPES[recipe].propagation for recipe, *_ in TRAININGS})
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    start = time.time()
    records, scatter = {}, None
    for recipe, train_split, epochs, lr, evals in tqdm(TRAININGS, desc="trainings", disable=args.quiet):
        rule, ensemble, options = recipe_options(recipe, epochs, lr)
        options = cap_epochs(options, args.max_epochs)
        results = run_training(sets[(train_split, rule)], {name: sets[(name, rule)] for name in evals}, options,
                               ensemble, args.seeds, args.seed, device, not args.quiet)
        records[(recipe, train_split, epochs, lr)] = {name: result["metrics"] for name, result in results.items()}
        if (recipe, train_split) == ("faithful", "172"):
            scatter = results["all"]["predicted"][0]

    os.makedirs(args.output_dir, exist_ok=True)
    table = markdown_tables(records, args.seeds, args.data)
    if args.max_epochs:
        table = f"Smoke test: epochs capped at {args.max_epochs}.\n\n" + table
    with atomic_output(os.path.join(args.output_dir, "table.md")) as tmp:
        with open(tmp, "w") as f:
            f.write(table)
    serialisable = [{"recipe": recipe, "train": t, "epochs": e, "lr": lr, "eval": name, "per_seed": metrics}
                    for (recipe, t, e, lr), evals in records.items() for name, metrics in evals.items()]
    write_json(os.path.join(args.output_dir, "results.json"),
               {"seeds": args.seeds, "first_seed": args.seed, "max_epochs": args.max_epochs,
                "data": args.data, "seconds": time.time() - start, "trainings": serialisable})
    everything, train_set = sets[("all", "faithful")], sets[("172", "faithful")]
    seen = np.isin(everything.index.numpy(), train_set.index.numpy())
    m = records[("faithful", "172", 300, 1e-4)]["all"][0]
    plot_scatter(os.path.join(args.output_dir, "scatter_172_all.png"), scatter, everything.accuracy.numpy(), seen,
                 f"Neural Predictor, train 172, eval all (seed {args.seed}): MSE {m['mse']:.2f}, "
                 f"Kendall tau {m['kendall_tau']:.3f}, Spearman rho {m['spearman_rho']:.3f}")
    print(table)
    print(f"wrote {args.output_dir}/table.md, results.json, scatter_172_all.png in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
