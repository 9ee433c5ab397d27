"""What the command-line scripts share: flag types, the recipe flags, device and thread flags, error handling.

    python -c "import cli; help(cli.add_recipe_arguments)"

Every script that trains predictors (train.py, cascade.py, crossval.py, search.py, bench.py)
takes its flags from here, so a flag means the same and is checked the same everywhere: a bad
value is refused by argparse with the flag named (exit 2) before any work starts.
"""
import argparse
import os
import sys
import warnings

import torch

from dataset import Nb101Dataset
from flags import (DENORMALS, Distinct, dropout_rate, non_negative_float, non_negative_int, on_off,  # noqa: F401
                   positive_float, positive_int, seed)
from engine import BACKENDS, resolve_device
from model import PRECISIONS, PREDICTORS, PROPAGATION_RULES, READOUT_INITS, REGRESSION_LOSSES
from recipes import RECIPES
from nb101.nasbench_data import DataError, interruptible, output_dir_problem, read_hdf5, require_free_space

# ---------------------------------------------------------------------------
# recipes

# recipe key -> command-line flag (the reproduction's flag names where it has them)
RECIPE_FLAGS = {"propagation": "propagation", "readout_init": "readout_init", "hidden": "gcn_hidden",
                "layers": "gcn_layers", "epochs": "epochs", "lr": "lr", "wd": "wd", "batch_size": "train_batch_size",
                "dropout": "dropout", "loss": "loss", "ensemble": "ensemble", "pretrain": "pretrain",
                "augment": "augment"}


def add_recipe_arguments(parser, several=False):
    """--predictor, --backend, --recipe and the flags it sets (each one overrides the recipe's value);
    resolve_recipe(args) fills them. several: --predictor and --recipe take several values (lists), for a
    script that compares them (recipe_variants)."""
    many = dict(nargs="+", action=Distinct, default=["gcn"]) if several else dict(default="gcn")
    parser.add_argument("--predictor", choices=sorted(PREDICTORS), **many,
                        help="gcn: the paper's predictor; mlp, cnn: the baselines of its appendix; transformer: a "
                             "graph transformer after TNASP and PINAT (model.Transformer)")
    parser.add_argument("--backend", choices=BACKENDS, default="auto",
                        help="auto: the fast path for the GCN, autograd for the others; autograd: plain "
                             "loss.backward() through model.py for any predictor")
    parser.add_argument("--recipe", choices=sorted(RECIPES), **dict(many, default=["faithful"] if several else "faithful"),
                        help="faithful: the public reproduction's semantics (default); improved: chosen by CV; best: "
                             "chosen by CV over the directions of later predictor papers (docs/beyond.md)")
    parser.add_argument("--propagation", choices=PROPAGATION_RULES, default=None,
                        help="backward-direction propagation: faithful rownorm(P^T) or uniform rownorm((A+I)^T)")
    parser.add_argument("--readout_init", choices=READOUT_INITS, default=None,
                        help="init of the two readout layers: torch (nn.Linear's default) or xavier")
    parser.add_argument("--gcn_hidden", type=positive_int, default=None, help="the GCN's hidden size (recipe: 144)")
    parser.add_argument("--gcn_layers", type=positive_int, default=None,
                        help="the GCN's graph-convolution layers (recipe: 3)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="training epochs (recipe: 300 / 600)")
    parser.add_argument("--lr", type=positive_float, default=None, help="Adam's learning rate (recipe: 1e-4 / 1e-3)")
    parser.add_argument("--wd", type=non_negative_float, default=None, help="Adam's L2 weight decay (recipe: 1e-3)")
    parser.add_argument("--train_batch_size", type=positive_int, default=None,
                        help="architectures per training batch (recipe: 10)")
    parser.add_argument("--dropout", type=dropout_rate, default=None, help="in [0, 1)")
    parser.add_argument("--loss", choices=REGRESSION_LOSSES, default=None,
                        help="mse; hinge or pairwise-bce (pairwise ranking losses); mse+hinge or mse+pairwise-bce")
    parser.add_argument("--ensemble", type=positive_int, default=None,
                        help="average this many models (seeds seed, seed+1, ...)")
    parser.add_argument("--pretrain", type=non_negative_int, default=None, metavar="EPOCHS",
                        help="start the GCN from its self-supervised pre-training over the space, of this many "
                             "epochs (pretrain.py; made once, cached); 0: none (recipe: 0; best: 30)")
    parser.add_argument("--augment", type=on_off, default=None, metavar="{off,on}",
                        help="on: every epoch, each training cell in a random topological order, the same network "
                             "renumbered; for mlp, cnn and transformer, whose output depends on the numbering "
                             "(every recipe: off)")
    add_precision_argument(parser)


def add_precision_argument(parser):
    """--precision: the GCN's training-time weight products (model.PRECISIONS); check_backend refuses it for others."""
    parser.add_argument("--precision", choices=sorted(PRECISIONS), default="fp32",
                        help="the GCN layers' weight products while training: fp32 (default) or bf16 (mixed "
                             "precision: faster for stacks of models on CPUs with AVX512-BF16 or AMX, slower "
                             "elsewhere; docs/performance.md)")


def resolve_recipe(args, parser):
    """Fill every recipe flag left unset from args.recipe; returns args. parser.error (exit 2) for --backend fast
    with a predictor that has no fast path."""
    check_backend(args, parser)
    return fill_recipe(args)


def fill_recipe(args):
    """args with every recipe flag left unset taken from args.recipe (in place)."""
    for key, flag in RECIPE_FLAGS.items():
        if getattr(args, flag, None) is None:
            setattr(args, flag, getattr(RECIPES[args.recipe], key))
    return args


def recipe_variants(args):
    """One recipe-resolved copy of args per (predictor, recipe) pair of the lists args.predictor x args.recipe
    (add_recipe_arguments(several=True)); flags given on the command line hold for every pair."""
    return [fill_recipe(argparse.Namespace(**dict(vars(args), predictor=predictor, recipe=recipe)))
            for predictor in args.predictor for recipe in args.recipe]


def check_backend(args, parser):
    """parser.error (exit 2) for --backend fast, --precision bf16, --pretrain or --augment on with a predictor that
    has none."""
    predictors = args.predictor if isinstance(args.predictor, list) else [args.predictor]
    if args.backend == "fast" and set(predictors) != {"gcn"}:
        parser.error("--backend fast exists for --predictor gcn only; use --backend autograd or auto")
    if args.precision != "fp32" and set(predictors) != {"gcn"}:
        parser.error(f"--precision {args.precision} exists for --predictor gcn only; use --precision fp32")
    if chosen(args, "pretrain") and set(predictors) != {"gcn"}:
        parser.error("--pretrain exists for --predictor gcn only; leave it out (or 0)")
    if chosen(args, "augment") and "gcn" in predictors:
        parser.error("--augment on relabels the vertices of each cell, and the GCN's output does not depend on their "
                     "numbering: it is for --predictor mlp, cnn or transformer")


def chosen(args, flag):
    """Whether the flag was set to a true value (any of them for a list flag); False when the script lacks it."""
    value = getattr(args, flag, None)
    return any(value) if isinstance(value, list) else bool(value)


def recipe_of(args):
    """The recipes.Recipe that the (recipe-resolved) command line describes."""
    return RECIPES[args.recipe].replace(**{key: getattr(args, flag) for key, flag in RECIPE_FLAGS.items()})


def fit_arguments(args, device):
    """engine.fit's keyword arguments from the (recipe-resolved) command line."""
    return dict(recipe_of(args).fit_options(), predictor=args.predictor, backend=args.backend,
                precision=args.precision, seed=args.seed, device=device, progress=not args.quiet)


# ---------------------------------------------------------------------------
# device, threads, data, errors


def add_machine_arguments(parser, output_dir):
    """--seed, --device, --threads, --output_dir and --quiet, as every training script has them."""
    parser.add_argument("--seed", type=seed, default=0, help="model m of a stack uses seed + m; the same seed, the same numbers")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=non_negative_int, default=0,
                        help="CPU cores for torch (0: torch's default, all of them; 1 when other jobs hold the cores)")
    parser.add_argument("--output_dir", default=output_dir, help="folder of the results (made as needed)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_denormals_argument(parser)


def add_denormals_argument(parser):
    """--denormals: whether the CPU keeps float32 subnormal numbers (IEEE, the default) or flushes them to zero."""
    parser.add_argument("--denormals", choices=DENORMALS, default="keep",
                        help="keep (default, IEEE) or flush: the CPU treats float32 subnormals as zero (FTZ/DAZ); "
                             "faster training on CPUs where subnormal operands are slow (most Intel ones), "
                             "results close to, not bit-identical with, keep's (docs/performance.md)")


def set_denormals(mode):
    """Flush float32 subnormals to zero on the CPU (mode "flush"), for this thread and every thread it starts
    later. Called before any torch operation: torch's worker threads, once started, keep their own setting
    (a product split over them would flush in some rows only). ValueError where the CPU cannot flush."""
    if mode == "flush" and not torch.set_flush_denormal(True):
        raise ValueError("--denormals flush: torch cannot flush subnormals on this CPU; use --denormals keep")


def usable_cores():
    """The CPU cores this process may run on (its affinity mask where the system has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def use_threads(args):
    """Give torch args.threads CPU cores (0 leaves torch's default); fit and predict split them as they need."""
    threads = getattr(args, "threads", 0)
    if threads:
        cores = usable_cores()
        if threads > cores:  # oversubscribed threads wait for each other: every operation tens of times slower
            raise ValueError(f"--threads {threads}: this process may use only {cores} cores; give at most {cores}")
        torch.set_num_threads(threads)


RESULTS_BYTES = 16 * 2 ** 20  # what a script's results (JSON, tables, plots) need at least, checked before the work


def check_output_dir(path):
    """ValueError unless `path` is (or can be made) a writable directory with room for the results: checked before
    the work starts."""
    problem = output_dir_problem(path)
    if problem:
        raise ValueError(f"--output_dir {path}: {problem}")
    require_free_space(os.path.join(path, "results"), RESULTS_BYTES, "the results")


def load_datasets(args, device):
    """The training and evaluation splits named by the arguments (DataError when a file is missing or wrong)."""
    data = read_hdf5(args.data)
    return (Nb101Dataset(args.data, args.train_split, args.splits, device, args.propagation, data),
            Nb101Dataset(args.data, args.eval_split, args.splits, device, args.propagation, data))


def plain_warnings():
    """Show the library's warnings as one line, 'warning: ...', not with a file name and line number."""
    warnings.showwarning = lambda message, *_args, **_kwargs: print(f"warning: {message}", file=sys.stderr)


def run(main, args):
    """main(args, device) with the device resolved and the output directory checked first; a user's mistake
    (DataError, ValueError) is printed as one line and exits 2, never as a traceback; SIGTERM and SIGINT end it
    with exit 130 (nasbench_data.interruptible), every output being written atomically."""
    plain_warnings()
    try:
        set_denormals(getattr(args, "denormals", "keep"))  # first: before torch starts its worker threads
        use_threads(args)
        device = resolve_device(args.device)
        if getattr(args, "output_dir", None):
            check_output_dir(args.output_dir)
        with interruptible():
            return main(args, device)
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
