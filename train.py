"""Train the Neural Predictor on one split and evaluate it on another.

    python train.py                                   # faithful recipe: 172 architectures, 300 epochs, eval on all
    python train.py --recipe improved                 # the recipe chosen by cross-validation (RECIPES)
    python train.py --train_split 860 --gcn_hidden 320 --visualize
    python train.py --train_split 91-172 --eval_split denoise-91 --epochs 600 --lr 2e-4
    python train.py --folds 5                         # plus 5-fold cross-validation on the training split
    python train.py --cascade                         # plus the classifier cascade (see cascade.py)

Flags follow the public PyTorch reproduction; --recipe sets the defaults of the training flags
(faithful: the reproduction's semantics exactly; improved: chosen by crossval.py). Writes `results.json` (and with
--visualize `scatter.png`) to --output_dir. The importable `fit` trains M models
(seeds, folds, search runs) as one batched model; `predict` evaluates them.
"""
import argparse
import concurrent.futures
import contextlib
import math
import os
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

from dataset import Nb101Dataset, denormalise_accuracy
from model import LOSSES, PROPAGATION_RULES, READOUT_INITS, REGRESSION_LOSSES, GCNPredictor, model_inputs
from nasbench_data import DEFAULT_HDF5, DEFAULT_SPLITS, DataError, atomic_output, write_json


# ---------------------------------------------------------------------------
# training


@contextlib.contextmanager
def cpu_threads(count, device):
    """Run the block with `count` intra-op CPU threads when `device` is the CPU (then restore the setting).

    A training step is many small operations that a second thread only slows down, so fit and
    predict run worker threads with one thread inside operations where they can.
    """
    previous = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def cosine_lr(base_lr, epoch, epochs):
    """Learning rate of cosine annealing to zero over `epochs` (torch's CosineAnnealingLR, T_max=epochs)."""
    return base_lr * (1 + math.cos(math.pi * epoch / epochs)) / 2


def consecutive_runs(models, keys):
    """Runs (start, stop) of consecutive model indices in the ascending list `models` that share keys[m]
    (keys: a sequence or a dict over models)."""
    runs = []
    for m in models:
        if runs and runs[-1][1] == m and keys[m] == keys[runs[-1][0]]:
            runs[-1][1] = m + 1
        else:
            runs.append([m, m + 1])
    return [tuple(run) for run in runs]


class BatchedAdam:
    """torch.optim.Adam (L2 weight decay) on stacks of models: `params` are (M, ...) tensors, slice m of each
    belongs to model m.

    Each model has its own learning rate and step count; a model that does not step is left
    exactly as it was. The update is torch's fused Adam kernel, the one behind
    torch.optim.Adam(fused=True) (one pass over the memory instead of eight), called once per
    learning rate on slices of the stack: one per parameter for each run of consecutive
    models that share their learning rate and step count (usually the whole stack).
    """

    def __init__(self, params, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8):
        self.weight_decay, self.betas, self.eps = weight_decay, betas, eps
        for param in params:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
        self.tensors = ([p.detach() for p in params], [p.grad for p in params],
                        [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params])
        self.counts = [0] * len(params[0])  # steps taken by each model
        self.device = params[0].device
        self.sliced = {}

    def slices(self, start, stop):
        """The (params, grads, exp_avgs, exp_avg_sqs) views of models start..stop-1, made once per range."""
        if (start, stop) not in self.sliced:
            self.sliced[(start, stop)] = [[t[start:stop] for t in tensors] for tensors in self.tensors]
        return self.sliced[(start, stop)]

    def step(self, lrs, models):
        """One update of the models `models` (ascending indices); model m with learning rate lrs[m].

        No autograd context is needed (nor paid for at every step): the tensors are detached."""
        for m in models:
            self.counts[m] += 1
        calls = {}
        for start, stop in consecutive_runs(models, {m: (lrs[m], self.counts[m]) for m in models}):
            lists = calls.setdefault(lrs[start], ([], [], [], [], []))
            for target, tensors in zip(lists, self.slices(start, stop)):
                target.extend(tensors)
            # the step count as the kernel wants it: a float32 tensor (CUDA's misreads float64 ones)
            step = torch.full((), float(self.counts[start]), dtype=torch.float32, device=self.device)
            lists[4].extend([step] * len(self.tensors[0]))
        for lr, (params, grads, exp_avgs, exp_avg_sqs, steps) in sorted(calls.items()):
            torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps, lr=lr, beta1=self.betas[0],
                               beta2=self.betas[1], weight_decay=self.weight_decay, eps=self.eps, amsgrad=False,
                               maximize=False)


def epoch_positions(generators, sizes, batch_size, num_steps):
    """(num_steps, M, batch_size) positions into each model's training set for one epoch, and (num_steps, M) active.

    Model m shuffles its own set with torch.randperm(sizes[m], generator=generators[m]) and
    keeps its sizes[m] // batch_size full batches; its later steps are padding, marked inactive.
    """
    positions = torch.zeros(len(sizes), num_steps * batch_size, dtype=torch.long)
    for m, (generator, size) in enumerate(zip(generators, sizes)):
        keep = size // batch_size * batch_size
        positions[m, :keep] = torch.randperm(size, generator=generator)[:keep]
    batches = torch.tensor([size // batch_size for size in sizes])
    active = (torch.arange(num_steps)[:, None] < batches[None, :]).to(torch.get_default_dtype())
    return positions.view(len(sizes), num_steps, batch_size).transpose(0, 1), active


def fit(graphs, train_sets, *, loss="mse", hidden=144, epochs=300, lr=1e-4, wd=1e-3, batch_size=10, dropout=0.1,
        readout_init="torch", seed=0, device="cpu", progress=False, print_freq=None):
    """Train M = len(train_sets) predictors together as one batched GCNPredictor and return it.

    graphs: graph_tensors dict of all candidate rows. train_sets: M pairs (rows, targets),
    rows indexing graphs, targets normalised accuracies ("mse") or 0/1 ("bce"). Model m is
    initialised, shuffled and dropped out from seed + m (see GCNPredictor.reset_parameters,
    epoch_positions and sample_dropout_masks): it trains exactly as a single run with
    seed + m would, whatever else is in the stack. lr: one learning rate or M of them.
    Adam + cosine annealing over epochs, batches of batch_size, the last incomplete batch
    dropped, gradients zeroed every step. Threads: see below. The same seed and thread count give the same
    numbers; another number of CPU threads can change the last bits (the products' blocking), never the
    random streams.
    """
    device = torch.device(device)
    cores = torch.get_num_threads() if device.type == "cpu" else 1
    # One model or a few gain from threads inside operations (every product is one bmm over an even number
    # of (model, direction) pairs, which two cores share; the small operations stay on one thread); a stack
    # of tens of models gains more from a worker thread per core, each on its own slices of the stack
    # (torch releases the GIL inside operations).
    workers = cores if len(train_sets) >= 10 * cores else 1
    with cpu_threads(1 if workers > 1 else cores, device):
        return _fit(graphs, train_sets, loss, hidden, epochs, lr, wd, batch_size, dropout, readout_init, seed, device,
                    progress, print_freq, workers)


def model_chunks(num_models, workers, device, largest=10):
    """Slices of the stack, grouped per worker thread. On the CPU a step runs on at most `largest`
    models at a time, so that their activations stay in cache; on a GPU on all of them."""
    size = num_models if device.type != "cpu" else min(largest, -(-num_models // workers))
    chunks = [slice(start, min(start + size, num_models)) for start in range(0, num_models, size)]
    return [chunks[w::workers] for w in range(workers)]


def _fit(graphs, train_sets, loss, hidden, epochs, lr, wd, batch_size, dropout, readout_init, seed, device, progress,
         print_freq, workers):
    if loss not in LOSSES:
        raise ValueError(f"loss {loss!r}: expected one of {', '.join(LOSSES)}")
    sizes = [len(rows) for rows, _ in train_sets]
    if min(sizes) < batch_size:
        raise ValueError(f"a training set has {min(sizes)} architectures, fewer than one batch of {batch_size}")
    num_models, num_steps = len(train_sets), max(sizes) // batch_size
    set_rows = torch.zeros(num_models, max(sizes), dtype=torch.long)
    set_targets = torch.zeros(num_models, max(sizes))
    for m, (rows, targets) in enumerate(train_sets):
        set_rows[m, :len(rows)] = torch.as_tensor(rows)
        set_targets[m, :len(rows)] = torch.as_tensor(targets, dtype=set_targets.dtype)
    set_rows, set_targets = set_rows.to(device), set_targets.to(device)
    inputs = {key: value.to(device) for key, value in model_inputs(graphs).items()}
    base_lr = [float(lr)] * num_models if np.ndim(lr) == 0 else [float(value) for value in lr]

    model = GCNPredictor(hidden=hidden, dropout=dropout, num_models=num_models, seed=seed,
                         readout_init=readout_init).to(device)
    model.train()
    optimizer = BatchedAdam(list(model.layers), weight_decay=wd)  # allocates .grad: the worker threads write slices
    generators = [torch.Generator().manual_seed(seed + m) for m in range(num_models)]
    mask_generators = [torch.Generator(device).manual_seed(seed + m) for m in range(num_models)]
    model_steps = [size // batch_size for size in sizes]  # a model's own steps per epoch; the rest are padding
    groups = model_chunks(num_models, workers, device)
    threads = concurrent.futures.ThreadPoolExecutor(len(groups)) if len(groups) > 1 else contextlib.nullcontext()
    buffers = {chunk.start: {} for group in groups for chunk in group}  # the masks' memory, reused every epoch
    views = {chunk.start: model.slice_views(chunk) for group in groups for chunk in group}
    stepping = {chunk.start: [[m for m in range(chunk.start, chunk.stop) if step < model_steps[m]]
                              for step in range(num_steps)] for group in groups for chunk in group}
    bar = tqdm(range(epochs), desc=f"training {num_models} model(s)", disable=not progress, leave=False)
    with threads as pool:
        for epoch in bar:
            positions, active = epoch_positions(generators, sizes, batch_size, num_steps)
            positions, active = positions.to(device), active.to(device)
            # everything random or scheduled for the epoch is drawn at once; a step only takes views
            rows = set_rows.gather(1, positions.transpose(0, 1).flatten(1)).view(num_models, num_steps, -1)
            targets = set_targets.gather(1, positions.transpose(0, 1).flatten(1)).view(num_models, num_steps, -1)
            rows, targets = rows.transpose(0, 1), targets.transpose(0, 1)
            epoch_inputs = {key: value[rows] for key, value in inputs.items()}
            lrs = [cosine_lr(value, epoch, epochs) for value in base_lr]
            loss_weights = active[..., None] / batch_size  # each model's own mean loss; resting models none

            def train_chunks(chunks):
                """The epoch's steps for some slices of the stack; their summed loss."""
                total = torch.zeros((), device=device)
                per_step = {}  # each slice's step inputs as views made at once: unbind is one call per tensor
                for chunk in chunks:
                    masks = model.sample_dropout_masks(
                        (num_steps, chunk.stop - chunk.start, batch_size), buffers[chunk.start],
                        mask_generators[chunk], model_steps[chunk]) if dropout > 0 else None
                    graph_steps = zip(*(value[:, chunk].unbind(0) for value in epoch_inputs.values()))
                    per_step[chunk.start] = list(zip(
                        [dict(zip(epoch_inputs, values)) for values in graph_steps],
                        targets[:, chunk].unbind(0), loss_weights[:, chunk].unbind(0),
                        zip(*(mask.unbind(0) for mask in masks)) if masks is not None else [None] * num_steps,
                        stepping[chunk.start]))
                for step in range(num_steps):
                    for chunk in chunks:
                        step_inputs, step_targets, step_weights, step_masks, models = per_step[chunk.start][step]
                        total += model.loss_and_gradient(step_inputs, step_targets, step_weights, loss, step_masks,
                                                         models=chunk, views=views[chunk.start])
                        optimizer.step(lrs, models)
                return total

            epoch_loss = sum(pool.map(train_chunks, groups)) if pool else train_chunks(groups[0])
            report = print_freq and (epoch + 1) % print_freq == 0
            if progress or report:
                mean_loss = (epoch_loss / active.sum()).item()  # mean over models and steps
                bar.set_postfix(loss=f"{mean_loss:.4f}")
                if report:
                    tqdm.write(f"epoch {epoch + 1}/{epochs}  loss {mean_loss:.4f}  lr {np.mean(lrs):.2e}")
    return model


def predict(model, graphs, rows=None, batch_size=1024, progress=False, print_freq=None, threads=None):
    """Raw outputs (M, L) of every model for the graphs at `rows` (all when None), in eval mode, in chunks.

    Uses GCNPredictor.infer (the first-layer table); chunks of about a thousand graphs keep a
    chunk's activations in the CPU cache. threads: CPU threads (default torch's, all cores); each
    is a worker that predicts whole chunks with one thread inside operations, which keeps both
    cores busier than threads inside a chunk's operations would. The outputs do not depend on it.
    """
    threads = threads or torch.get_num_threads()
    workers = threads if model.device.type == "cpu" else 1
    with cpu_threads(threads, model.device):
        return _predict(model, graphs, rows, batch_size, progress, print_freq, workers)


@torch.no_grad()
def _predict(model, graphs, rows, batch_size, progress, print_freq, workers):
    model.eval()
    device = model.device
    inputs = model_inputs(graphs)
    if rows is not None:
        inputs = {key: value[rows] for key, value in inputs.items()}
    inputs = {key: value.to(device) for key, value in inputs.items()}
    count = len(inputs["operations"])
    weights = model.inference_weights()
    table, slot = (model.first_layer_table(inputs, weights) if model.num_layers > 1 else None) or (None, None)
    output = torch.empty(model.num_models, count)

    @torch.no_grad()  # worker threads do not inherit the caller's grad mode
    def predict_chunk(start):
        part = slice(start, start + batch_size)
        chunk_inputs = {key: value[part] for key, value in inputs.items()}
        if table is None:
            output[:, part] = model(chunk_inputs).cpu()
        else:
            output[:, part] = model.infer(chunk_inputs, table, slot[part], weights).cpu()

    starts = range(0, count, batch_size)
    with (concurrent.futures.ThreadPoolExecutor(workers) if workers > 1 else contextlib.nullcontext()) as pool, \
            cpu_threads(1 if workers > 1 else torch.get_num_threads(), device):
        done = pool.map(predict_chunk, starts) if pool else map(predict_chunk, starts)
        for chunk, _ in enumerate(tqdm(done, total=len(starts), desc="predicting", disable=not progress, leave=False)):
            if print_freq and (chunk + 1) % print_freq == 0:
                tqdm.write(f"evaluated {min((chunk + 1) * batch_size, count):,}/{count:,}")
    return output


# ---------------------------------------------------------------------------
# evaluation


def dense_ranks(values):
    """Ranks 0..K-1 of the K distinct values of a 1-D array (equal values, equal rank)."""
    _, inverse = np.unique(values, return_inverse=True)
    return inverse.reshape(-1)


def tied_pairs(ranks):
    """Number of pairs of positions with equal values in a 1-D integer array."""
    counts = np.bincount(ranks)
    return int((counts * (counts - 1) // 2).sum())


def inversions(values):
    """Pairs i < j with values[i] > values[j], by a bottom-up merge sort run on all blocks at once: at width w,
    each element of a right block counts the elements of its left block above it (one searchsorted for all
    blocks, kept apart by an offset per block pair), then every pair of blocks is merged by one sort."""
    values = np.asarray(values, dtype=np.int64)
    n, count, width = len(values), 0, 1
    offset = int(values.max(initial=0)) + 1
    position = np.arange(n)
    while width < n:
        pair = position // (2 * width)
        keys = values + pair * offset
        left = (position % (2 * width)) < width
        left_keys, right_keys = keys[left], keys[~left]
        right_pair = pair[~left]
        left_end = np.searchsorted(left_keys, (right_pair + 1) * offset, side="left")
        count += int((left_end - np.searchsorted(left_keys, right_keys, side="right")).sum())
        values = np.sort(keys) - pair * offset  # blocks stay in place: the offsets keep them apart
        width *= 2
    return count


def kendall_tau(x, y):
    """Kendall's tau-b of two 1-D arrays (scipy.stats.kendalltau's default), in O(n log^2 n) with numpy alone:
    scipy.stats costs half a second to import, a tenth of a training run."""
    x, y = dense_ranks(x), dense_ranks(y)
    n = len(x)
    order = np.lexsort((y, x))  # by x, ties by y: a pair is discordant exactly when y is inverted
    discordant = inversions(y[order])
    pairs = n * (n - 1) // 2
    ties_x, ties_y, ties_both = tied_pairs(x), tied_pairs(y), tied_pairs(dense_ranks(x * (int(y.max()) + 1) + y))
    concordant = pairs - ties_x - ties_y + ties_both - discordant
    denominator = np.sqrt(float(pairs - ties_x) * float(pairs - ties_y))
    return (concordant - discordant) / denominator if denominator > 0 else float("nan")


def average_ranks(values):
    """Ranks 1..n of a 1-D array, tied values sharing the mean of their ranks (scipy.stats.rankdata's default)."""
    ranks = dense_ranks(values)
    counts = np.bincount(ranks)
    first = np.cumsum(counts) - counts  # 0-based position of each distinct value's first occurrence
    return (first + (counts + 1) / 2)[ranks]


def spearman_rho(x, y):
    """Spearman's rho: Pearson's correlation of the average ranks."""
    if len(x) < 2:
        return float("nan")
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denominator) if denominator > 0 else float("nan")


def regression_metrics(predicted, true):
    """MSE on the 0-100 scale, Kendall tau and Spearman rho of predicted against true accuracies (fractions)."""
    predicted, true = np.asarray(predicted, dtype=np.float64), np.asarray(true, dtype=np.float64)
    return {
        "mse": float(np.mean((100 * (predicted - true)) ** 2)),
        "kendall_tau": float(kendall_tau(predicted, true)),
        "spearman_rho": spearman_rho(predicted, true),
        "count": int(len(true)),
    }


def kfold_positions(num_rows, folds, seed):
    """K disjoint validation folds (sorted positions) that together cover range(num_rows), drawn from `seed`."""
    if not 2 <= folds <= num_rows:
        raise ValueError(f"cannot split {num_rows} architectures into {folds} folds")
    order = torch.randperm(num_rows, generator=torch.Generator().manual_seed(seed))
    return [fold.sort().values for fold in torch.tensor_split(order, folds)]


def cross_validate(graphs, target, accuracy, folds, seed=0, ensemble=1, **fit_kwargs):
    """K-fold cross-validation of the predictor on one training set; the K x ensemble fold models train as one fit.

    graphs/target/accuracy describe the training architectures. Returns per-fold and
    mean/std validation MSE, Kendall tau and Spearman rho.
    """
    validation = kfold_positions(len(target), folds, seed)
    everything = torch.arange(len(target))
    train_sets = []
    for fold in validation:
        rows = everything[~torch.isin(everything, fold)]
        train_sets += [(rows, target[rows])] * ensemble
    model = fit(graphs, train_sets, seed=seed, **fit_kwargs)
    output = predict(model, graphs).view(folds, ensemble, -1).mean(1)
    per_fold = [regression_metrics(denormalise_accuracy(output[k, fold]).numpy(), accuracy[fold].cpu().numpy())
                for k, fold in enumerate(validation)]
    summary = {"folds": folds, "per_fold": per_fold}
    for key in ("mse", "kendall_tau", "spearman_rho"):
        values = np.array([fold[key] for fold in per_fold])
        summary[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1))}
    return summary


def evaluate(model, train_set, eval_set, batch_size=1024, print_freq=None, progress=False):
    """Predicted accuracies of the eval split (the mean over the models of the stack: one, or an ensemble) and the
    metrics on it, with and without the training architectures."""
    predicted = denormalise_accuracy(predict(model, eval_set.graphs, batch_size=batch_size, progress=progress,
                                             print_freq=print_freq).mean(0)).double().numpy()
    true = eval_set.accuracy.cpu().numpy()
    seen = np.isin(eval_set.index.numpy(), train_set.index.numpy())
    metrics = {"eval": regression_metrics(predicted, true)}
    if (~seen).any():
        metrics["eval_minus_train"] = regression_metrics(predicted[~seen], true[~seen])
    return predicted, seen, metrics


def plot_scatter(path, predicted, true, seen, title):
    """Predicted against true validation accuracy: the whole split and a zoom on its top 10 %."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    top = np.quantile(true, 0.9)
    zoom = true >= top
    views = [(axes[0], "all architectures", np.ones_like(zoom)), (axes[1], "top 10 % by true accuracy", zoom)]
    for ax, name, region in views:
        lo = min(true[region].min(), np.quantile(predicted[region], 0.01))
        hi = max(true[region].max(), predicted[region].max())
        pad = 0.02 * (hi - lo)
        ax.scatter(true[~seen], predicted[~seen], s=3, alpha=0.35, lw=0, color="tab:blue", rasterized=True,
                   label=f"not trained on ({np.count_nonzero(~seen):,})")
        ax.scatter(true[seen], predicted[seen], s=10, alpha=0.9, lw=0, color="tab:orange",
                   label=f"training architectures ({np.count_nonzero(seen):,})")
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=0.8, label="prediction = truth")
        ax.set(xlim=(lo - pad, hi + pad), ylim=(lo - pad, hi + pad), aspect="equal",
               xlabel="true validation accuracy", ylabel="predicted validation accuracy")
        tau = kendall_tau(predicted[region], true[region])
        ax.set_title(f"{name}: Kendall tau {tau:.3f}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=8, markerscale=2)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=200)
    plt.close(fig)


# ---------------------------------------------------------------------------
# command line


def add_threads_argument(parser):
    """The --threads flag of the scripts that train; use_threads(args) applies it."""
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU cores for torch (0: torch's default, all of them; 1 when other jobs hold the cores)")


def use_threads(args):
    """Give torch args.threads CPU cores (0 leaves torch's default); fit and predict split them as they need."""
    if args.threads:
        torch.set_num_threads(args.threads)


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def finite_float(text, low=0.0, low_inclusive=False, high=math.inf):
    """A float in the interval from `low` (inclusive or not) to `high` (exclusive): argparse's error otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text}") from None
    if not (math.isfinite(value) and (value >= low if low_inclusive else value > low) and value < high):
        interval = f"{'[' if low_inclusive else '('}{low:g}, {high:g})"
        raise argparse.ArgumentTypeError(f"expected a finite number in {interval}, got {text}")
    return value


def positive_float(text):
    return finite_float(text)


def non_negative_float(text):
    return finite_float(text, low_inclusive=True)


def dropout_rate(text):
    return finite_float(text, low_inclusive=True, high=1.0)


# The two recipes. "faithful": the public reproduction's semantics exactly (REFERENCE.md), the
# default. "improved": chosen by 5-fold cross-validation on the training architectures only
# (crossval.py; the procedure and the grid are in the README). Flags given on the command line
# override single values of either.
RECIPES = {
    "faithful": dict(propagation="faithful", readout_init="torch", hidden=144, epochs=300, lr=1e-4, wd=1e-3,
                     batch_size=10, dropout=0.1, loss="mse", ensemble=1),
    "improved": dict(propagation="uniform", readout_init="torch", hidden=144, epochs=600, lr=1e-3, wd=1e-3,
                     batch_size=10, dropout=0.1, loss="mse+hinge", ensemble=1),
}
# recipe key -> command-line flag (the reproduction's flag names where it has them)
RECIPE_FLAGS = {"propagation": "propagation", "readout_init": "readout_init", "hidden": "gcn_hidden",
                "epochs": "epochs", "lr": "lr", "wd": "wd", "batch_size": "train_batch_size", "dropout": "dropout",
                "loss": "loss", "ensemble": "ensemble"}


def add_recipe_arguments(parser):
    """--recipe and the flags it sets (each one overrides the recipe's value); resolve_recipe(args) fills them."""
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="faithful",
                        help="faithful: the public reproduction's semantics (default); improved: chosen by CV")
    parser.add_argument("--propagation", choices=PROPAGATION_RULES, default=None,
                        help="backward-direction propagation: faithful rownorm(P^T) or uniform rownorm((A+I)^T)")
    parser.add_argument("--readout_init", choices=READOUT_INITS, default=None,
                        help="init of the two readout layers: torch (nn.Linear's default) or xavier")
    parser.add_argument("--gcn_hidden", type=positive_int, default=None)
    parser.add_argument("--epochs", type=positive_int, default=None)
    parser.add_argument("--lr", type=positive_float, default=None)
    parser.add_argument("--wd", type=non_negative_float, default=None)
    parser.add_argument("--train_batch_size", type=positive_int, default=None)
    parser.add_argument("--dropout", type=dropout_rate, default=None, help="in [0, 1)")
    parser.add_argument("--loss", choices=REGRESSION_LOSSES, default=None,
                        help="mse, hinge (pairwise ranking), or mse+hinge")
    parser.add_argument("--ensemble", type=positive_int, default=None,
                        help="average this many models (seeds seed, seed+1, ...)")


def resolve_recipe(args):
    """Fill every recipe flag left unset from args.recipe; returns args."""
    for key, flag in RECIPE_FLAGS.items():
        if getattr(args, flag, None) is None:
            setattr(args, flag, RECIPES[args.recipe][key])
    return args


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_HDF5, help="HDF5 made by tools/nasbench_tfrecord_converter.py")
    parser.add_argument("--splits", default=DEFAULT_SPLITS, help="split file made by tools/split_train_val.py")
    parser.add_argument("--train_split", default="172")
    parser.add_argument("--eval_split", default="all")
    add_recipe_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval_batch_size", type=positive_int, default=1024)
    parser.add_argument("--train_print_freq", type=positive_int, default=None, help="print the loss every N epochs")
    parser.add_argument("--eval_print_freq", type=positive_int, default=None,
                        help="print evaluation progress every N eval batches")
    parser.add_argument("--visualize", action="store_true", help="write scatter.png")
    parser.add_argument("--folds", type=int, default=0, help="also run K-fold cross-validation on the train split")
    parser.add_argument("--cascade", action="store_true",
                        help="also train the classifier cascade (cascade.py) and report it on the eval split")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--output_dir", default="runs/train")
    add_threads_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.folds == 1 or args.folds < 0:
        parser.error("--folds needs K >= 2 (or 0 for none)")
    return resolve_recipe(args)


def resolve_device(name):
    """'auto' -> CUDA when available, else CPU; ValueError for a bad name or a CUDA device that is not there."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name}: not a device name; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
    return device


def summary_line(args, metrics, seconds, device):
    """The one-line report printed at the end of a run."""
    def part(m):
        return f"MSE {m['mse']:.3f}, tau {m['kendall_tau']:.4f}, rho {m['spearman_rho']:.4f}"
    line = f"train {args.train_split} / eval {args.eval_split} ({metrics['eval']['count']:,}): {part(metrics['eval'])}"
    if "eval_minus_train" in metrics:
        line += f" | without training archs ({metrics['eval_minus_train']['count']:,}): "
        line += part(metrics["eval_minus_train"])
    return line + f" | {seconds:.1f} s on {device}"


def load_datasets(args, device):
    """The training and evaluation splits named by the arguments (DataError when a file is missing or wrong)."""
    return (Nb101Dataset(args.data, args.train_split, args.splits, device, args.propagation),
            Nb101Dataset(args.data, args.eval_split, args.splits, device, args.propagation))


def fit_arguments(args, device):
    """fit's keyword arguments from the (recipe-resolved) command line, shared by every script that trains."""
    return dict(hidden=args.gcn_hidden, epochs=args.epochs, lr=args.lr, wd=args.wd, batch_size=args.train_batch_size,
                dropout=args.dropout, loss=args.loss, readout_init=args.readout_init, seed=args.seed, device=device,
                progress=not args.quiet)


def main(argv=None):
    args = parse_args(argv)
    use_threads(args)
    seconds, clock = {}, time.time()

    def lap(name):
        nonlocal clock
        seconds[name], clock = time.time() - clock, time.time()

    try:
        device = resolve_device(args.device)
        train_set, eval_set = load_datasets(args, device)
        if len(eval_set) == 0:
            raise DataError(f"eval split {args.eval_split!r} has no architectures; choose another --eval_split")
        lap("load")
        model = fit(train_set.graphs, [(torch.arange(len(train_set)), train_set.target)] * args.ensemble,
                    print_freq=args.train_print_freq, **fit_arguments(args, device))
        lap("train")
        crossval = None
        if args.folds:
            crossval = cross_validate(train_set.graphs, train_set.target, train_set.accuracy, args.folds,
                                      ensemble=args.ensemble, **fit_arguments(args, device))
            lap("crossval")
        cascade_metrics = None
        if args.cascade:
            import cascade  # imported here: cascade.py builds on this module
            cascade_metrics = cascade.run_cascade(args, train_set, eval_set, device)
            lap("cascade")
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    predicted, seen, metrics = evaluate(model, train_set, eval_set, args.eval_batch_size, args.eval_print_freq,
                                        progress=not args.quiet)
    lap("eval")

    results = {
        "metrics": metrics,
        "args": vars(args),
        "sizes": {"train": len(train_set), "eval": len(eval_set), "eval_minus_train": int((~seen).sum())},
        "seconds": seconds,
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
    }
    if crossval:
        results["crossval"] = crossval
    if cascade_metrics:
        results["cascade"] = cascade_metrics
    write_json(os.path.join(args.output_dir, "results.json"), results)
    if args.visualize:
        m = metrics["eval"]
        title = (f"Neural Predictor, train {args.train_split} ({len(train_set)}), eval {args.eval_split}: "
                 f"MSE {m['mse']:.2f}, Kendall tau {m['kendall_tau']:.3f}, Spearman rho {m['spearman_rho']:.3f}")
        plot_scatter(os.path.join(args.output_dir, "scatter.png"), predicted, eval_set.accuracy.cpu().numpy(), seen,
                     title)
    print(summary_line(args, metrics, sum(seconds.values()), results["device"]))
    if crossval:
        print(f"{args.folds}-fold cross-validation on {args.train_split}: "
              f"MSE {crossval['mse']['mean']:.3f} ± {crossval['mse']['std']:.3f}, "
              f"tau {crossval['kendall_tau']['mean']:.4f} ± {crossval['kendall_tau']['std']:.4f}")
    if cascade_metrics:
        print(cascade.summary_lines(cascade_metrics, args.eval_split, len(train_set)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
