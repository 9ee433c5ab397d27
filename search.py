"""End-to-end architecture search on NAS-Bench-101: Neural Predictor vs random search vs regularized evolution.

    python search.py                                  # 100 runs x 3 methods, budget 2000, N = 172
    python search.py --cascade                        # Neural Predictor with the classifier cascade
    python search.py --precision bf16                 # mixed precision: 0.7 x the time on CPUs with AVX512-BF16
    python search.py --methods predictor --num_train 43 86 129 172 344 860   # the N-vs-K sweep, one fit
    python search.py --methods random evolution --runs 20 --budget 500 --quiet

All methods search the same pool (every architecture of the data that has a label) and
pay one query for every architecture they train. A query goes through nb101.api.NASBench
and returns the 108-epoch final validation accuracy of one training run, drawn as the
official API draws it (Python's generator, seeded with --seed before each method; with
fewer than 3 runs in the data, as the API documents); methods only ever see queried values. Run r of every method uses generators seeded
from (--seed, r): the first queries of random search, the Neural Predictor's N
training architectures and evolution's initial population are the same draw.

A thin layer over search_methods.py, the methods as a library over nb101.api.NASBench (its
METHODS registry); --data may also be an official .tfrecord. The methods:
- Random search: without replacement from the pool.
- Neural Predictor: N random queries, one predictor per run (--predictor gcn|mlp|cnn|transformer; all
  runs trained together as one stacked model), then the unqueried pool in predicted order.
- Regularized evolution: population 50, tournament 10, mutation rate 1.0, the oldest
  dies; all runs advance in lockstep. Specs are 7x7; a child that is not in the pool
  (invalid, or outside the sample the data covers) is mutated again from the same
  parent until it is. With --child_rule space (default) a child that is the parent's own
  architecture is kept only as often as in the full space (the first valid mutation
  decides): on a 4.7% sample the parent, always in the pool, would otherwise be the
  child about a quarter of the time.

Writes to --output_dir, all or none: curves.png (best-so-far validation accuracy and regret
against queries, mean and interquartile band), curves_time.png (the same against the summed
108-epoch training time of the queried runs: a query costs its run's `training_time`),
table.md (queries and training hours needed to reach given regrets, values at given budgets),
traces.npz (every run's queried rows, values and seconds, best-so-far, regret, hours and chosen
architecture's mean test accuracy) and summary.json.
"""
import argparse
import os
import random
import sys
import time

import numpy as np

import cli
import search_methods
from nb101 import api, nasbench_data
from nb101.records import ConversionError
from search_methods import METHODS, method_name, oracle_floor
from search_report import (REGRET_THRESHOLDS, best_so_far, hours_to_reach, output_bytes, queries_to_reach,
                           write_outputs)

CASCADES = {"off": (False,), "on": (True,), "both": (False, True)}  # --cascade


def method_units(args):
    """(key, method, args) of every comparison entry the command line asks for, in order. The Neural Predictor
    gives one entry per --predictor x --recipe x --cascade variant, its args resolved by that recipe
    (cli.recipe_variants) and args.cascade a bool; its key is 'predictor' for the lone default variant (GCN,
    faithful, no cascade) and 'predictor:gcn,faithful[,cascade]' otherwise."""
    units = []
    for method in args.methods:
        if method != "predictor":
            units.append((method, method, args))
            continue
        variants = [argparse.Namespace(**dict(vars(variant), cascade=cascade))
                    for variant in cli.recipe_variants(args) for cascade in CASCADES[args.cascade]]
        for variant in variants:
            default = (variant.predictor, variant.recipe, variant.cascade) == ("gcn", "faithful", False)
            key = ("predictor" if len(variants) == 1 and default else
                   f"predictor:{variant.predictor},{variant.recipe}" + (",cascade" if variant.cascade else ""))
            units.append((key, method, variant))
    return units


def method_options(method, args, device):
    """The keyword arguments of METHODS[method].search that the command line sets."""
    if method == "predictor":
        return dict(recipe=cli.recipe_of(args), predictor=args.predictor, cascade=args.cascade, device=device,
                    backend=args.backend, precision=args.precision)
    if method == "evolution":
        return dict(population=args.population, tournament=args.tournament, mutation_rate=args.mutation_rate,
                    child_rule=args.child_rule)
    return {}


def run_search(args, device):
    """Run every requested method on the benchmark of args.data; return (traces, oracles, summary).

    Every method starts from Python's generator seeded with --seed (the benchmark draws the run each query
    returns from it), so a method's results do not depend on which methods ran before it."""
    try:
        nasbench = api.NASBench(args.data, seed=args.seed, verbose=False)
    except (FileNotFoundError, ConversionError) as e:
        raise nasbench_data.DataError(f"--data {args.data}: {e}") from None
    pool = search_methods.pool_of(nasbench)
    if args.budget > len(pool):
        raise nasbench_data.DataError(f"--budget {args.budget} exceeds the pool of {len(pool)} architectures")
    if "evolution" in args.methods:  # before any method runs, not after the others have
        search_methods.check_evolution_pool(pool)
    entries = len(method_units(args)) + len(args.num_train) - 1
    nasbench_data.require_free_space(os.path.join(args.output_dir, "traces.npz"),
                                     output_bytes(entries, args.runs, args.budget), "the search's results")
    progress = not args.quiet
    traces, oracles, seconds, budgets = {}, {}, {}, {}
    for unit, method, unit_args in method_units(args):
        start = time.time()
        random.seed(args.seed)
        nasbench.reset_budget_counters()
        common = dict(runs=args.runs, budget=args.budget, seed=args.seed, pool=pool, progress=progress)
        options = method_options(method, unit_args, device)
        if method == "predictor" and len(args.num_train) > 1:  # the N sweep: one oracle per N, one stacked fit
            spent = {f"{unit}@{size}": oracle for size, oracle in search_methods.search_neural_predictor_sizes(
                nasbench, sizes=args.num_train, **common, **options).items()}
        elif method == "predictor":
            spent = {unit: METHODS[method].search(nasbench, num_train=args.num_train[0], **common, **options)}
        else:
            spent = {unit: METHODS[method].search(nasbench, **common, **options)}
        seconds[unit] = time.time() - start
        budgets[unit] = dict(zip(("training_seconds", "epochs"), nasbench.get_budget_counters()))
        for key, oracle in spent.items():
            assert (oracle.count == args.budget).all(), f"{key} did not spend its budget exactly"
            traces[key] = best_so_far(pool, oracle.rows, oracle.values, oracle.seconds)
            oracles[key] = oracle
            if progress:
                print(f"{method_name(key)}: mean best validation at {args.budget} queries "
                      f"{100 * traces[key]['best_validation'][:, -1].mean():.2f}%", file=sys.stderr)
        if progress:
            print(f"{method_name(unit)}: {seconds[unit]:.1f} s", file=sys.stderr)
    floor = oracle_floor(pool, args.seed)
    summary = {
        "args": vars(args),
        "oracle_floor_regret": {"mean": float(floor.mean()), "median": float(np.median(floor))},
        "pool_size": len(pool),
        "pool_best_mean_validation": float(pool.mean_validation.max()),
        "pool_best_mean_test": float(np.nanmax(pool.mean_test)) if np.isfinite(pool.mean_test).any() else None,
        "seconds": seconds,
        "budget_counters": budgets,
        "recipes": {unit: {flag: getattr(unit_args, flag) for flag in ("predictor", "recipe", "cascade",
                                                                     *cli.RECIPE_FLAGS.values())}
                    for unit, method, unit_args in method_units(args) if method == "predictor"},
        "methods": {method: {
            "final_best_validation_mean": float(trace["best_validation"][:, -1].mean()),
            "final_regret_mean": float(trace["regret"][:, -1].mean()),
            "final_regret_median": float(np.median(trace["regret"][:, -1])),
            "training_hours_per_run_mean": float(trace["hours"][:, -1].mean()),
            "distinct_architectures_mean": float(np.mean([len(np.unique(r)) for r in oracles[method].rows])),
            "queries_to_reach_regret_median": {
                f"{t:g}pp": float(np.median(queries_to_reach(trace["regret"], t / 100))) for t in REGRET_THRESHOLDS},
            "training_hours_to_reach_regret_median": {
                f"{t:g}pp": float(np.median(hours_to_reach(trace, t / 100))) for t in REGRET_THRESHOLDS},
        } for method, trace in traces.items()},
    }
    return traces, oracles, summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", default=nasbench_data.DEFAULT_HDF5,
                        help="HDF5 made by tools/nasbench_tfrecord_converter.py")
    parser.add_argument("--methods", nargs="+", action=cli.Distinct, choices=list(METHODS), default=list(METHODS),
                        help="the search methods to compare")
    parser.add_argument("--runs", type=cli.positive_int, default=search_methods.RUNS, help="independent runs per method")
    parser.add_argument("--budget", type=cli.positive_int, default=search_methods.BUDGET,
                        help="queries (trained architectures) per run")
    parser.add_argument("--num_train", type=cli.positive_int, nargs="+", action=cli.Distinct,
                        default=[search_methods.NUM_TRAIN],
                        help="Neural Predictor: N random training queries; several N: the N-vs-K sweep, one fit")
    parser.add_argument("--cascade", nargs="?", const="on", choices=("off", "on", "both"), default="off",
                        help="Neural Predictor: classifier first stage (--cascade alone: on; both: each variant "
                             "without and with it)")
    cli.add_recipe_arguments(parser, several=True)
    parser.add_argument("--population", type=cli.positive_int, default=50, help="evolution: population size")
    parser.add_argument("--tournament", type=cli.positive_int, default=10, help="evolution: tournament size")
    parser.add_argument("--mutation_rate", type=cli.non_negative_float, default=1.0,
                        help="evolution: each edge flips with probability rate/7, each op changes with rate/5")
    parser.add_argument("--child_rule", choices=("space", "pool"), default="space",
                        help="evolution: 'space' keeps a child equal to its parent only as often as in the full "
                             "space; 'pool' re-mutates until any pool architecture (the parent wins on a sample)")
    cli.add_machine_arguments(parser, "results/search")
    args = parser.parse_args(argv)
    cli.check_backend(args, parser)
    batch_size = max(variant.train_batch_size for variant in cli.recipe_variants(args))
    if "predictor" in args.methods and not all(batch_size <= n < args.budget for n in args.num_train):
        parser.error(f"--num_train must be at least --train_batch_size ({batch_size}) "
                     f"and below --budget ({args.budget})")
    if not args.tournament <= args.population:
        parser.error("--tournament must be between 1 and --population")
    return args


def search(args, device):
    traces, oracles, summary = run_search(args, device)
    table = write_outputs(args.output_dir, traces, oracles, summary)
    if not args.quiet:
        print(table)
        print(f"wrote {args.output_dir}/curves.png, table.md, traces.npz, summary.json", file=sys.stderr)
    return 0


def main(argv=None):
    return cli.run(search, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
