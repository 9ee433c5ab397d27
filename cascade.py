"""The paper's two-stage predictor: a GCN classifier (accuracy > 0.91) in front of the GCN regressor.

    python cascade.py                                   # train on split 172, evaluate on all
    python cascade.py --train_split 334 --epochs 300 --output_dir runs/cascade_334

The classifier is the predictor's GCN with a sigmoid output, trained with binary
cross-entropy (lr 2e-4) on the N training architectures, label "validation accuracy
> 0.91". The regressor is then trained only on the training architectures the
classifier passes (logit > 0, i.e. probability > 0.5), and only architectures that
pass are regressed and ranked. Next to it, the oracle-filter shortcut of the public
reproduction (split 91-N: the regressor trained on the architectures whose true
accuracy is above 0.91) is trained in the same batched fit and evaluated on the same
architectures. Writes results.json to --output_dir; `train.py --cascade` calls
`run_cascade` and merges the same metrics into its own results.json.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

import train
from dataset import denormalise_accuracy, normalise_accuracy
from nasbench_data import DEFAULT_HDF5, DEFAULT_SPLITS, DataError, write_json

THRESHOLD = 0.91  # "good architecture" label of the classifier, about the median accuracy
CLASSIFIER_LR = 2e-4


def fit_classifier(graphs, train_sets, fit_options, classifier_lr=CLASSIFIER_LR):
    """Batched classifiers: one per (rows, accuracies) pair, label accuracy > THRESHOLD, BCE loss.

    fit_options: keyword arguments of train.fit (their lr is replaced by classifier_lr).
    """
    sets = [(torch.as_tensor(rows), torch.as_tensor(np.asarray(accuracy) > THRESHOLD, dtype=torch.float32))
            for rows, accuracy in train_sets]
    return train.fit(graphs, sets, **{**fit_options, "loss": "bce", "lr": classifier_lr})


def passed_positions(logits, batch_size):
    """Positions of the training architectures a classifier passes (logit > 0), ascending.

    When fewer than one batch pass, the `batch_size` positions with the highest logits
    are kept instead, so that the regressor can still train.
    """
    logits = np.asarray(logits)
    passed = np.flatnonzero(logits > 0)
    if len(passed) < batch_size:
        passed = np.sort(np.argsort(-logits, kind="stable")[:batch_size])
    return passed


def regressor_sets(train_sets, train_logits, batch_size):
    """Regressor training sets (rows, normalised targets): what each classifier passes of its (rows, accuracies)."""
    sets = []
    for (rows, accuracy), logits in zip(train_sets, train_logits):
        keep = passed_positions(logits, batch_size)
        sets.append((torch.as_tensor(np.asarray(rows)[keep]),
                     normalise_accuracy(torch.as_tensor(np.asarray(accuracy)[keep])).float()))
    return sets


def cascade_scores(logits, regression):
    """(scores, passed): the regressor's value where the classifier passes, else the classifier's logit.

    Rank by passed first, then by score (search.rank_unqueried does): only passed
    architectures are ranked by regression.
    """
    passed = np.asarray(logits) > 0
    return np.where(passed, regression, logits), passed


def classifier_metrics(logits, accuracy):
    """Accuracy, precision and recall of the classifier (logit > 0) against accuracy > THRESHOLD."""
    predicted, actual = np.asarray(logits) > 0, np.asarray(accuracy) > THRESHOLD
    true_positives = int((predicted & actual).sum())
    return {
        "accuracy": float((predicted == actual).mean()),
        "precision": true_positives / max(int(predicted.sum()), 1),
        "recall": true_positives / max(int(actual.sum()), 1),
        "passed": int(predicted.sum()),
        "positives": int(actual.sum()),
        "count": int(len(actual)),
    }


def metrics_where(predicted, accuracy, selected):
    """train.regression_metrics on the selected architectures; NaN metrics when fewer than two are selected."""
    if selected.sum() < 2:
        return {"mse": float("nan"), "kendall_tau": float("nan"), "spearman_rho": float("nan"),
                "count": int(selected.sum())}
    return train.regression_metrics(predicted[selected], accuracy[selected])


def run_cascade(args, train_set, eval_set, device):
    """Train the cascade and the oracle-filter regressor on train_set; metrics on eval_set as a dict.

    args carries train.py's recipe-resolved flags (train.fit_arguments, ensemble; classifier_lr when
    present). The classifier is one model; the regressor an ensemble when args.ensemble > 1.
    """
    fit_options = train.fit_arguments(args, device)
    rows = np.arange(len(train_set))
    train_accuracy = train_set.accuracy.cpu().numpy()
    classifier = fit_classifier(train_set.graphs, [(rows, train_accuracy)], fit_options,
                                getattr(args, "classifier_lr", CLASSIFIER_LR))
    fit_options["loss"] = args.loss
    train_logits = train.predict(classifier, train_set.graphs)[0].numpy()
    oracle_rows = rows[train_accuracy > THRESHOLD]
    if len(oracle_rows) < args.train_batch_size:
        raise ValueError(f"only {len(oracle_rows)} training architectures are above {THRESHOLD}, "
                         f"fewer than one batch of {args.train_batch_size}")
    # the cascade's regressor, then the oracle filter (split 91-N), each `ensemble` models, in one fit
    oracle_logits = np.where(train_accuracy > THRESHOLD, 1.0, -1.0)
    sets = regressor_sets([(rows, train_accuracy)] * 2, [train_logits, oracle_logits], args.train_batch_size)
    regressor = train.fit(train_set.graphs, [s for s in sets for _ in range(args.ensemble)], **fit_options)

    eval_accuracy = eval_set.accuracy.cpu().numpy()
    eval_logits = train.predict(classifier, eval_set.graphs)[0].numpy()
    output = train.predict(regressor, eval_set.graphs).view(2, args.ensemble, -1).mean(1)
    predicted = denormalise_accuracy(output).double().numpy()
    passed, good = eval_logits > 0, eval_accuracy > THRESHOLD
    metrics = {
        "threshold": THRESHOLD,
        "train_passed": len(sets[0][0]),
        "train_above_threshold": len(oracle_rows),
        "classifier": classifier_metrics(eval_logits, eval_accuracy),
        "cascade_on_passed": metrics_where(predicted[0], eval_accuracy, passed),
        "cascade_on_denoise_91": metrics_where(predicted[0], eval_accuracy, good),
        "oracle_filter_on_denoise_91": metrics_where(predicted[1], eval_accuracy, good),
    }
    return metrics


def summary_lines(metrics, eval_split, train_size):
    """The cascade's results as a few printable lines."""
    c = metrics["classifier"]
    lines = [f"classifier on {eval_split} ({c['count']:,}): accuracy {c['accuracy']:.4f}, "
             f"precision {c['precision']:.4f}, recall {c['recall']:.4f}; regressor trained on "
             f"{metrics['train_passed']} passed of {train_size}"]
    for key in ("cascade_on_passed", "cascade_on_denoise_91", "oracle_filter_on_denoise_91"):
        m = metrics[key]
        lines.append(f"{key} ({m['count']:,}): MSE {m['mse']:.3f}, Kendall tau {m['kendall_tau']:.4f}")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_HDF5)
    parser.add_argument("--splits", default=DEFAULT_SPLITS)
    parser.add_argument("--train_split", default="172")
    parser.add_argument("--eval_split", default="all")
    train.add_recipe_arguments(parser)
    parser.add_argument("--classifier_lr", type=float, default=CLASSIFIER_LR)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, ...")
    parser.add_argument("--output_dir", default="runs/cascade")
    train.add_threads_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return train.resolve_recipe(parser.parse_args(argv))


def main(argv=None):
    args = parse_args(argv)
    train.use_threads(args)
    start = time.time()
    try:
        device = train.resolve_device(args.device)
        train_set, eval_set = train.load_datasets(args, device)
        metrics = run_cascade(args, train_set, eval_set, device)
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    results = {"cascade": metrics, "args": {k: str(v) for k, v in vars(args).items()},
               "seconds": time.time() - start}
    write_json(os.path.join(args.output_dir, "results.json"), results)
    print(summary_lines(metrics, args.eval_split, len(train_set)))
    print(f"{results['seconds']:.1f} s; wrote {args.output_dir}/results.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
