"""Every search figure and table of the README, regenerated into one folder by one command.

    python tools/search_figures.py                                   # all stages, the README's run counts
    python tools/search_figures.py --stages sweep --sweep_runs 100   # one stage, more runs
    python tools/search_figures.py --runs 2 --comparison_runs 2 --sweep_runs 2 --budget 60 \\
        --num_train 20 --sweep_sizes 20 40 --epochs 2 --output_dir runs/figures_smoke   # smoke test

Each stage is one `python search.py ...` command (printed before it starts, so any figure can
be redone by hand) writing curves.png, curves_time.png, table.md, traces.npz and summary.json
into its own subfolder of --output_dir:

- main: Neural Predictor (GCN, faithful recipe) vs random search vs regularized evolution, against
  queries and against training time, with the oracle floor (--runs runs);
- predictors: every predictor (GCN / MLP / CNN) and recipe (faithful / improved), each without and
  with the classifier cascade, beside random search and evolution, on the same seeds
  (--comparison_runs runs);
- sweep: the N-vs-K trade-off, every N of --sweep_sizes in one stacked fit (--sweep_runs runs).

A stage shows its own progress bars (unless --quiet). At the end `index.md` in --output_dir
collects every stage's command, wall time and tables, and a summary is printed. A stage that
fails stops the run with its exit status; the stages already finished keep their folders.
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from flags import DENORMALS, SWEEP_SIZES, Distinct, non_negative_int, positive_int, seed  # noqa: E402
from search_methods import BUDGET, NUM_TRAIN, RUNS, method_name  # noqa: E402
from nb101.nasbench_data import DEFAULT_HDF5, atomic_output, interruptible, output_dir_problem  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ("main", "predictors", "sweep")


def stage_arguments(stage, args):
    """search.py's arguments of one stage (without --output_dir); flags left at search.py's defaults are omitted."""
    common = [(flag, value) for flag, value, default in (
        ("--data", args.data, DEFAULT_HDF5), ("--budget", args.budget, BUDGET), ("--seed", args.seed, 0),
        ("--threads", args.threads, 0), ("--device", args.device, "auto"), ("--epochs", args.epochs, None),
        ("--denormals", args.denormals, "keep"))
        if value != default]
    common = [str(part) for pair in common for part in pair] + ["--quiet"] * args.quiet
    if stage == "main":
        return ["--runs", str(args.runs), "--num_train", str(args.num_train)] + common
    if stage == "predictors":
        return (["--runs", str(args.comparison_runs), "--num_train", str(args.num_train), "--predictor", "gcn", "mlp",
                 "cnn", "--recipe", "faithful", "improved", "--cascade", "both"] + common)
    return ["--runs", str(args.sweep_runs), "--methods", "predictor", "--num_train", *map(str, args.sweep_sizes)] + common


def check(args, parser):
    """Refuse what can be refused before hours of work (exit 2): sizes against the budget, the output folder."""
    if not os.path.isfile(args.data):
        parser.error(f"--data {args.data}: no such file; make it with python tools/nasbench_tfrecord_converter.py")
    sizes = [args.num_train] * (len(set(args.stages) & {"main", "predictors"}) > 0)
    sizes += list(args.sweep_sizes) * ("sweep" in args.stages)
    if any(size >= args.budget for size in sizes):
        parser.error(f"--num_train and --sweep_sizes must be below --budget ({args.budget})")
    problem = output_dir_problem(args.output_dir)
    if problem:
        parser.error(f"--output_dir {args.output_dir}: {problem}")


def headline(summary):
    """The closing summary's line of a stage: its size and the entry with the lowest mean regret at the budget."""
    methods = summary["methods"]
    best = min(methods, key=lambda key: methods[key]["final_regret_mean"])
    return (f"{len(methods)} entries x {summary['args']['runs']} runs, budget {summary['args']['budget']}; "
            f"lowest mean regret at the budget: {method_name(best)} ({100 * methods[best]['final_regret_mean']:.3f} pp)")


def run_stage(command):
    """Run one stage's search.py; an interrupt of this script stops it too. Returns its exit status."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # the tables are read from its table.md
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait()
        raise


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_HDF5)
    parser.add_argument("--stages", nargs="+", action=Distinct, choices=STAGES, default=list(STAGES))
    parser.add_argument("--runs", type=positive_int, default=RUNS, help="runs of the main comparison")
    parser.add_argument("--comparison_runs", type=positive_int, default=20,
                        help="runs of the every-predictor comparison (14 entries)")
    parser.add_argument("--sweep_runs", type=positive_int, default=20, help="runs of the N sweep")
    parser.add_argument("--budget", type=positive_int, default=BUDGET)
    parser.add_argument("--num_train", type=positive_int, default=NUM_TRAIN,
                        help="N of the main and predictor stages")
    parser.add_argument("--sweep_sizes", type=positive_int, nargs="+", action=Distinct, default=list(SWEEP_SIZES))
    parser.add_argument("--epochs", type=positive_int, default=None, help="override every recipe's epochs (smoke tests)")
    parser.add_argument("--seed", type=seed, default=0)
    parser.add_argument("--threads", type=non_negative_int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output_dir", default="results/search_figures")
    parser.add_argument("--denormals", choices=DENORMALS, default="keep",
                        help="passed to every stage: flush trains several times faster on CPUs that are slow on "
                             "subnormal numbers (most Intel ones; see the README)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    check(args, parser)
    return args


def main(argv=None):
    args = parse_args(argv)
    with interruptible():
        return run_stages(args)


def run_stages(args):
    """Every stage of args in order, then index.md and the summary; the first failing stage's exit status."""
    os.makedirs(args.output_dir, exist_ok=True)
    done = []  # (stage, command, seconds, summary, table)
    for number, stage in enumerate(args.stages, 1):
        folder = os.path.join(args.output_dir, stage)
        command = [sys.executable, os.path.join(ROOT, "search.py"), *stage_arguments(stage, args),
                   "--output_dir", folder]
        shown = shlex.join(["python", "search.py", *command[2:]])
        print(f"[{number}/{len(args.stages)}] {stage}: {shown}", file=sys.stderr, flush=True)
        start = time.time()
        status = run_stage(command)
        if status:
            print(f"error: stage {stage} failed (exit {status}); finished stages are in {args.output_dir}",
                  file=sys.stderr)
            return status
        with open(os.path.join(folder, "summary.json")) as f:
            summary = json.load(f)
        with open(os.path.join(folder, "table.md")) as f:
            done.append((stage, shown, time.time() - start, summary, f.read()))
    sections = [f"# Search figures and tables\n\nStages: {', '.join(args.stages)}; every figure is in the stage's "
                "folder (curves.png against queries, curves_time.png against training time).\n"]
    for stage, shown, seconds, summary, table in done:
        sections.append(f"# Stage {stage}\n\n`{shown}` ({seconds:.0f} s wall)\n\n"
                        f"![{stage}: against queries]({stage}/curves.png)\n"
                        f"![{stage}: against training time]({stage}/curves_time.png)\n\n"
                        + re.sub(r"(?m)^## ", "### ", table))
    with atomic_output(os.path.join(args.output_dir, "index.md")) as tmp:
        with open(tmp, "w") as f:
            f.write("\n".join(sections))
    print(f"\nsummary ({args.output_dir}/index.md):", file=sys.stderr)
    for stage, shown, seconds, summary, table in done:
        print(f"  {stage:<11} {seconds:7.0f} s  {headline(summary)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
