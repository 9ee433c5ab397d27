"""Kendall tau on all architectures after training on N = 100, 172, 424, 4236, beside the published predictors.

    python tools/beyond_table.py                                   # the best recipe, 5 seeds (takes a while)
    python tools/beyond_table.py --recipes improved best --sizes 100 172 --seeds 2 --output_dir runs/beyond
    python tools/beyond_table.py --sizes 100 --seeds 2 --max-epochs 5 --output_dir runs/beyond_smoke   # smoke test

The sizes of later predictor papers (TNASP, PINAT): for each recipe and N, the seeds
(each an ensemble of the recipe's models) train together as one batched fit on the split
named N, and are evaluated on every labelled architecture ("all", as the papers count it) and
on those without the N training ones. Writes `table.md` (mean ± std over seeds beside the
published figures of REFERENCE.md, which are measured on the full space against the mean test
accuracy of three runs: a less noisy label than the single run here) and `results.json` to
--output_dir.
"""
import argparse
import os
import sys
import time

import numpy as np
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cli import RECIPES, Distinct, positive_int  # noqa: E402
from metrics import regression_metrics  # noqa: E402
from nb101.nasbench_data import DataError, atomic_outputs, write_json  # noqa: E402
from tools.reproduce_table import (add_table_arguments, cap_epochs, mean_std, open_sets, recipe_options,  # noqa: E402
                                   run_training)

SIZES = (100, 172, 424, 4236)
# Kendall tau on all 423,624 against the three runs' mean test accuracy (PINAT, AAAI 2023, Table 1 and supplementary
# Table 9; REFERENCE.md)
PUBLISHED = {"PINAT, pairwise BCE loss": (0.717, 0.764, 0.812, 0.854), "PINAT, MSE": (0.679, 0.715, 0.772, 0.846),
             "TNASP, pairwise BCE loss": (0.676, 0.691, 0.747, 0.824)}


def markdown(records, sizes, seeds):
    lines = [f"Kendall tau on all labelled architectures (in brackets: without the N training ones); mean ± std over "
             f"{seeds} seed(s).", "",
             "| recipe | " + " | ".join(f"N = {size}" for size in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for recipe, by_size in records.items():
        cells = [f"{mean_std(by_size[size]['all'], 'kendall_tau')} ({mean_std(by_size[size]['unseen'], 'kendall_tau')})"
                 for size in sizes]
        lines.append(f"| {recipe} | " + " | ".join(cells) + " |")
    for name, values in PUBLISHED.items():
        published = dict(zip(SIZES, values))
        lines.append(f"| {name} (published) | " + " | ".join(f"{published.get(size, '-')}" for size in sizes) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_table_arguments(parser, "runs/beyond")
    parser.add_argument("--recipes", nargs="+", action=Distinct, choices=sorted(RECIPES), default=["best"])
    parser.add_argument("--sizes", type=positive_int, nargs="+", action=Distinct, default=list(SIZES),
                        help="training-set sizes: splits of --splits")
    args = parser.parse_args(argv)
    try:
        device, sets = open_sets(args, ["all", *map(str, args.sizes)],
                                 {RECIPES[recipe].propagation for recipe in args.recipes})
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    start, records = time.time(), {}
    for recipe in args.recipes:
        rule, ensemble, options = recipe_options(recipe, None, None)
        options = cap_epochs(options, args.max_epochs)
        for size in tqdm(args.sizes, desc=recipe, disable=args.quiet):
            train_set, everything = sets[(str(size), rule)], sets[("all", rule)]
            results = run_training(train_set, {"all": everything}, options, ensemble, args.seeds, args.seed, device,
                                   not args.quiet)
            # in a 20,001-architecture sample the N training ones weigh more than in the 423,624 of the space
            unseen = ~np.isin(everything.index.numpy(), train_set.index.numpy())
            truth = everything.accuracy.cpu().numpy()[unseen]
            records.setdefault(recipe, {})[size] = {
                "all": results["all"]["metrics"],
                "unseen": [regression_metrics(predicted[unseen], truth) for predicted in results["all"]["predicted"]]}
    table = markdown(records, args.sizes, args.seeds)
    if args.max_epochs:
        table = f"Smoke test: epochs capped at {args.max_epochs}.\n\n" + table
    with atomic_outputs(os.path.join(args.output_dir, "table.md"), os.path.join(args.output_dir, "results.json")) \
            as (table_path, json_path):
        with open(table_path, "w") as f:
            f.write(table)
        write_json(json_path, {"args": vars(args), "seconds": time.time() - start,
                               "records": {recipe: {str(size): metrics for size, metrics in by_size.items()}
                                           for recipe, by_size in records.items()}})
    print(table)
    print(f"wrote {args.output_dir}/table.md and results.json in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
