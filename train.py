"""Train a predictor on one split and evaluate it on another.

    python train.py                                   # faithful recipe: 172 architectures, 300 epochs, eval on all
    python train.py --recipe improved                 # the recipe chosen by cross-validation (recipes.RECIPES)
    python train.py --recipe best                     # beyond the paper: pre-trained, pairwise BCE, 5 models (docs/beyond.md)
    python train.py --predictor mlp                   # a baseline of the paper's appendix (mlp, cnn)
    python train.py --predictor transformer --augment on   # each epoch, the cells in random topological orders
    python train.py --backend autograd                # the plain path: loss.backward() through model.py
    python train.py --train_split 860 --gcn_hidden 320 --visualize
    python train.py --train_split 91-172 --eval_split denoise-91 --epochs 600 --lr 2e-4
    python train.py --folds 5                         # plus 5-fold cross-validation on the training split
    python train.py --cascade                         # plus the classifier cascade (see cascade.py)

Flags follow the public PyTorch reproduction; --recipe sets the defaults of the training flags
(faithful: the reproduction's semantics exactly; improved and best: chosen by crossval.py). Writes
`results.json`, the trained predictor `model.pt` (predict.py, predictor.NeuralPredictor.load)
and with --visualize `scatter.png` to --output_dir.
"""
import argparse
import os
import sys
import time

import torch

import cli
import engine
from metrics import plot_scatter
from predictor import NeuralPredictor
from nb101.nasbench_data import DEFAULT_HDF5, DEFAULT_SPLITS, DataError, atomic_outputs, require_free_space, write_json


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_HDF5, help="HDF5 made by tools/nasbench_tfrecord_converter.py")
    parser.add_argument("--splits", default=DEFAULT_SPLITS, help="split file made by tools/split_train_val.py")
    parser.add_argument("--train_split", default="172", help="split of --splits to train on (172, 334, 860, 100, 424, 4236, 91-172, ...)")
    parser.add_argument("--eval_split", default="all", help="split to evaluate on (all, denoise-91, denoise-80, ...)")
    cli.add_recipe_arguments(parser)
    parser.add_argument("--eval_batch_size", type=cli.positive_int, default=None,
                        help="graphs per prediction chunk (default: %s)"
                             % engine.PREDICT_CHUNK)
    parser.add_argument("--train_print_freq", type=cli.positive_int, default=None,
                        help="print the loss every N epochs")
    parser.add_argument("--visualize", action="store_true", help="write scatter.png")
    parser.add_argument("--folds", type=cli.non_negative_int, default=0,
                        help="also run K-fold cross-validation on the train split (K >= 2)")
    parser.add_argument("--cascade", action="store_true",
                        help="also train the classifier cascade (cascade.py) and report it on the eval split")
    cli.add_machine_arguments(parser, "runs/train")
    args = parser.parse_args(argv)
    if args.folds == 1:
        parser.error("--folds needs K >= 2 (or 0 for none)")
    return cli.resolve_recipe(args, parser)


def summary_line(args, metrics, seconds, device):
    """The one-line report printed at the end of a run."""
    def part(m):
        return f"MSE {m['mse']:.3f}, tau {m['kendall_tau']:.4f}, rho {m['spearman_rho']:.4f}"
    line = f"train {args.train_split} / eval {args.eval_split} ({metrics['eval']['count']:,}): {part(metrics['eval'])}"
    if "eval_minus_train" in metrics:
        line += f" | without training archs ({metrics['eval_minus_train']['count']:,}): "
        line += part(metrics["eval_minus_train"])
    return line + f" | {seconds:.1f} s on {device}"


def train(args, device):
    seconds, clock = {}, time.time()

    def lap(name):
        nonlocal clock
        seconds[name], clock = time.time() - clock, time.time()

    train_set, eval_set = cli.load_datasets(args, device)
    if len(eval_set) < 2:
        raise DataError(f"eval split {args.eval_split!r} has {len(eval_set)} architecture(s): Kendall tau and "
                        "Spearman rho need at least 2; choose another --eval_split")
    if args.folds and 2 * args.folds > len(train_set):
        raise ValueError(f"--folds {args.folds}: the train split has only {len(train_set)} architectures; each fold "
                         "needs at least 2 for its metrics")
    engine.check_memory(args.predictor, args.ensemble, args.gcn_hidden, args.gcn_layers, args.train_batch_size,
                        len(train_set) // args.train_batch_size, device)
    # results.json, model.pt (4 bytes a parameter) and the scatter plot, checked before the training
    parameters = args.ensemble * engine.parameter_count(args.predictor, args.gcn_hidden, args.gcn_layers)
    require_free_space(os.path.join(args.output_dir, "model.pt"), 4 * parameters + 2 ** 21, "the results")
    lap("load")
    fit_options = cli.fit_arguments(args, device)
    predictor = NeuralPredictor(cli.recipe_of(args), args.predictor, seed=args.seed, device=device,
                                backend=args.backend, precision=args.precision, progress=not args.quiet)
    predictor.fit(train_set.cells, train_set.accuracy.cpu().numpy(), print_freq=args.train_print_freq)
    lap("train")
    results = {}
    if args.folds:
        results["crossval"] = engine.cross_validate(train_set.graphs, train_set.target, train_set.accuracy,
                                                    args.folds, ensemble=args.ensemble, **fit_options)
        lap("crossval")
    if args.cascade:
        results["cascade"] = engine.run_cascade(train_set, eval_set, fit_options, args.ensemble)
        lap("cascade")
    predicted = predictor.predict(eval_set.cells, batch_size=args.eval_batch_size)
    seen, metrics = engine.evaluate(predicted, train_set, eval_set)
    lap("eval")
    device_name = str(device) if device.type == "cpu" else torch.cuda.get_device_name(device)
    results = {"metrics": metrics, "args": vars(args),
               "sizes": {"train": len(train_set), "eval": len(eval_set), "eval_minus_train": int((~seen).sum())},
               "seconds": seconds, "device": device_name, **results}
    with atomic_outputs(*(os.path.join(args.output_dir, name) for name in ("results.json", "model.pt"))) as paths:
        write_json(paths[0], results)
        predictor.save(paths[1])
    if args.visualize:  # after the results, which a failure here (a full disk) does not take with it
        m = metrics["eval"]
        title = (f"{args.predictor.upper()} predictor, train {args.train_split} ({len(train_set)}), eval "
                 f"{args.eval_split}: MSE {m['mse']:.2f}, Kendall tau {m['kendall_tau']:.3f}, "
                 f"Spearman rho {m['spearman_rho']:.3f}")
        plot_scatter(os.path.join(args.output_dir, "scatter.png"), predicted, eval_set.accuracy.cpu().numpy(),
                     seen, title)
    print(summary_line(args, metrics, sum(seconds.values()), device_name))
    if "crossval" in results:
        crossval = results["crossval"]
        print(f"{args.folds}-fold cross-validation on {args.train_split}: "
              f"MSE {crossval['mse']['mean']:.3f} ± {crossval['mse']['std']:.3f}, "
              f"tau {crossval['kendall_tau']['mean']:.4f} ± {crossval['kendall_tau']['std']:.4f}")
    if "cascade" in results:
        print(engine.cascade_summary(results["cascade"], args.eval_split, len(train_set)))
    return 0


def main(argv=None):
    return cli.run(train, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
