"""The training engine every script calls: fit, predict, evaluate, cross-validate, the classifier cascade.

    python -c "import engine; help(engine.fit)"

`fit` trains M predictors of any kind in model.PREDICTORS as one stacked model. Two backends
give the same numbers up to rounding (tests/test_fast_gcn.py):
- "autograd": loss.backward() through the predictor's forward, then torch.optim.Adam (fused),
  for any predictor. The model you read in model.py is the model that trains.
- "fast" (the default for the GCN): fast_gcn.TrainingStep, a hand-written step on preallocated
  buffers, and fast_gcn.BatchedAdam, several times cheaper for one model.
Both draw the same dropout masks (fast_gcn.sample_dropout_masks, per-model generators) and the
same batches, so model m of a stack trains exactly as a single run with seed + m.
"""
import concurrent.futures
import contextlib
import math
import os

import numpy as np
import torch
from tqdm import tqdm

import fast_gcn
import pretrain as pretraining
from dataset import denormalise_accuracy, normalise_accuracy, relabelled, topological_orders
from metrics import regression_metrics
from model import GCN, LOSSES, batch_loss, build_predictor
from nb101.nasbench_data import GOOD_ACCURACY
from nb101.search_space import MAX_VERTICES
from flags import MAX_SEED
from recipes import FAITHFUL

BACKENDS = ("auto", "fast", "autograd")
MODELS_PER_WORKER = 10  # the fast path runs a worker thread per core from this many models per core on
CLASSIFIER_LR = 2e-4
PREDICT_CHUNK = 1024  # graphs per chunk of predict


def resolve_device(name):
    """'auto' -> CUDA when available, else CPU; ValueError for a bad name or a CUDA device that is not there."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name}: not a device name; use auto, cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name}: only cpu and cuda devices are supported")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
    return device


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


# ---------------------------------------------------------------------------
# training


def cosine_lr(base_lr, epoch, epochs):
    """Learning rate of cosine annealing to zero over `epochs` (torch's CosineAnnealingLR, T_max=epochs)."""
    return base_lr * (1 + math.cos(math.pi * epoch / epochs)) / 2


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


def resolve_backend(backend, model):
    """'auto' -> 'fast' for the paper's GCN, 'autograd' for any other predictor."""
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend == "auto":
        return "fast" if isinstance(model, GCN) else "autograd"
    if backend == "fast" and not isinstance(model, GCN):
        raise ValueError(f"the fast backend exists for the GCN only, not for {type(model).__name__}; "
                         "use --backend autograd")
    return backend


def fit(graphs, train_sets, *, predictor="gcn", backend="auto", loss=FAITHFUL.loss, hidden=FAITHFUL.hidden,
        layers=FAITHFUL.layers, epochs=FAITHFUL.epochs, lr=FAITHFUL.lr, wd=FAITHFUL.wd,
        batch_size=FAITHFUL.batch_size, dropout=FAITHFUL.dropout, readout_init=FAITHFUL.readout_init, precision="fp32",
        pretrain=FAITHFUL.pretrain, propagation=FAITHFUL.propagation, augment=FAITHFUL.augment, seed=0, device="cpu",
        progress=False, print_freq=None):
    """Train M = len(train_sets) predictors together as one stacked model and return it.

    graphs: graph_tensors dict of all candidate rows. train_sets: M pairs (rows, targets),
    rows indexing graphs, targets normalised accuracies (or 0/1 for loss "bce"). predictor: a
    name of model.PREDICTORS (hidden, layers, readout_init, precision and pretrain are the GCN's; precision "bf16": its
    weight products in bfloat16 while training, model.weight_product). Model m is initialised,
    shuffled and dropped out from seed + m: it trains exactly as a single run with seed + m
    would, whatever else is in the stack. lr: one learning rate or M of them. Adam (L2 weight
    decay) + cosine annealing over epochs, batches of batch_size, the last incomplete batch
    dropped. The same seed, backend and thread count give the same numbers. pretrain: epochs of the
    GCN's self-supervised pre-training over the space (pretrain.py, made once and cached; its
    propagation rule `propagation`, the one the graphs' matrices were made with), from which every
    model starts all layers but the last; 0: none. augment: every epoch, each training cell is relabelled in a
    topological order drawn at random (dataset.topological_orders), the same network under another
    numbering, for the predictors whose output depends on the numbering (not the GCN's); model m draws
    the orders from its own seed too.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss {loss!r}: expected one of {', '.join(LOSSES)}")
    sizes = [len(rows) for rows, _ in train_sets]
    if min(sizes) < batch_size:
        raise ValueError(f"a training set has {min(sizes)} architectures, fewer than one batch of {batch_size}")
    if not (isinstance(seed, (int, np.integer)) and 0 <= seed and seed + len(sizes) - 1 <= MAX_SEED):
        raise ValueError(f"seed {seed}: the models' seeds seed .. seed + {len(sizes) - 1} must lie in 0 .. {MAX_SEED}")
    if augment and predictor == "gcn":
        raise ValueError("augmentation relabels the vertices of each cell, and the GCN's output does not depend on "
                         "their numbering: it is for the mlp, cnn and transformer predictors")
    device = torch.device(device)
    check_memory(predictor, len(sizes), hidden, layers, batch_size, max(sizes) // batch_size, device)
    model = build_predictor(predictor, num_models=len(train_sets), seed=seed, dropout=dropout,
                            gcn_hidden=hidden, gcn_layers=layers, readout_init=readout_init,
                            precision=precision).to(device)
    if pretrain and predictor == "gcn":
        pretraining.start_from(model, pretraining.pretrained_weights(propagation, hidden, layers, pretrain, progress))
    backend = resolve_backend(backend, model)
    base_lr = [float(lr)] * len(sizes) if np.ndim(lr) == 0 else [float(value) for value in lr]
    cores = torch.get_num_threads() if device.type == "cpu" else 1
    # The fast path of one model or a few gains from threads inside operations (every product is one bmm over
    # an even number of (model, direction) pairs, which two cores share); a stack of tens of models gains more
    # from a worker thread per core, each on its own slices of the stack (torch releases the GIL in operations).
    workers = cores if backend == "fast" and len(sizes) >= MODELS_PER_WORKER * cores else 1
    with cpu_threads(1 if workers > 1 else cores, device):
        Trainer(model, graphs, train_sets, backend, loss, wd, batch_size, seed, workers, base_lr, augment).run(
            epochs, progress, print_freq)
    return model


def parameter_count(predictor, hidden, layers):
    """Parameters of one model, known before it is built: the GCN's exactly (both directions' weights of each
    layer, the 128-unit readout), a bound of 300,000 for the other predictors, whose sizes are their own."""
    if predictor != "gcn":
        return 300_000
    return 2 * (5 * hidden + (layers - 1) * hidden * hidden) + 128 * hidden + 128


def check_memory(predictor, num_models, hidden, layers, batch_size, steps, device):
    """ValueError, before anything is allocated, when a fit would need more memory than the machine has.

    A rough upper estimate: per model, the weights with their gradients and Adam's two moments (16 bytes a
    parameter), an epoch's inputs and dropout masks (steps x batch x about layers x 7 x hidden bytes) and a
    step's activations (batch x 7 vertices x the layers' widths, several float32 copies)."""
    parameters = parameter_count(predictor, hidden, layers)
    activations = steps * batch_size * (7 * layers * hidden + 600) + \
        batch_size * 7 * ((layers + 1) * hidden + 128) * 4 * 8
    needed = num_models * (16 * parameters + activations)
    available = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else physical_memory()
    if needed > available:
        raise ValueError(f"training {num_models} {predictor} model(s) of hidden size {hidden} needs about "
                         f"{needed / 2 ** 30:,.1f} GiB, more than the {available / 2 ** 30:,.1f} GiB of this {device.type}; "
                         "use a smaller --gcn_hidden, fewer models (--ensemble, --runs) or a smaller batch")


def physical_memory():
    """Bytes of memory of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def model_chunks(num_models, workers, device, largest=10):
    """Slices of the stack, grouped per worker thread. On the CPU a fast step runs on at most `largest`
    models at a time, so that their activations stay in cache; on a GPU on all of them."""
    size = num_models if device.type != "cpu" else min(largest, -(-num_models // workers))
    chunks = [slice(start, min(start + size, num_models)) for start in range(0, num_models, size)]
    return [chunks[w::workers] for w in range(workers)]


class Trainer:
    """The training loop of fit: epochs of batches drawn per model, steps by the chosen backend."""

    def __init__(self, model, graphs, train_sets, backend, loss, wd, batch_size, seed, workers, base_lr, augment):
        self.model, self.backend, self.loss, self.batch_size, self.base_lr = model, backend, loss, batch_size, base_lr
        device = model.device
        self.sizes = sizes = [len(rows) for rows, _ in train_sets]
        num_models, self.num_steps = len(sizes), max(sizes) // batch_size
        self.set_rows = torch.zeros(num_models, max(sizes), dtype=torch.long)
        self.set_targets = torch.zeros(num_models, max(sizes))
        for m, (rows, targets) in enumerate(train_sets):
            self.set_rows[m, :len(rows)] = torch.as_tensor(rows)
            self.set_targets[m, :len(rows)] = torch.as_tensor(targets, dtype=self.set_targets.dtype)
        self.set_rows, self.set_targets = self.set_rows.to(device), self.set_targets.to(device)
        # augmenting: the cells themselves, relabelled and made into the model's inputs every epoch
        self.cells = {key: graphs[key].to(device) for key in ("adjacency", "operations", "mask")} if augment else None
        self.inputs = None if augment else {key: value.to(device) for key, value in model.inputs(graphs).items()}
        self.generators = [torch.Generator().manual_seed(seed + m) for m in range(num_models)]
        self.mask_generators = [torch.Generator(device).manual_seed(seed + m) for m in range(num_models)]
        self.model_steps = [size // batch_size for size in sizes]  # a model's own steps per epoch; then padding
        # the autograd backend steps the whole stack at once; torch's Adam does when all models step in lockstep
        self.groups = model_chunks(num_models, workers, device) if backend == "fast" else [[slice(0, num_models)]]
        self.chunks = [chunk for group in self.groups for chunk in group]
        if backend == "autograd" and len(set(self.model_steps)) == 1 and len(set(base_lr)) == 1:
            # every model steps at every step with the same learning rate: torch's own (fused) Adam
            self.torch_adam = torch.optim.Adam(model.parameters(), lr=base_lr[0], weight_decay=wd,
                                               fused=device.type in ("cpu", "cuda"))
        else:  # models with their own step counts or learning rates; allocates .grad
            self.torch_adam, self.batched_adam = None, fast_gcn.BatchedAdam(list(model.parameters()), weight_decay=wd)
        self.steps = {chunk.start: fast_gcn.TrainingStep(model, chunk, batch_size, loss) for chunk in self.chunks} \
            if backend == "fast" else None
        self.buffers = {chunk.start: {} for chunk in self.chunks}  # the masks' memory, reused every epoch
        self.stepping = {chunk.start: [[m for m in range(chunk.start, chunk.stop) if step < self.model_steps[m]]
                                       for step in range(self.num_steps)] for chunk in self.chunks}

    def run(self, epochs, progress, print_freq):
        model, num_models = self.model, len(self.sizes)
        model.train()
        bar = tqdm(range(epochs), desc=f"training {num_models} model(s)", disable=not progress, leave=False)
        threads = concurrent.futures.ThreadPoolExecutor(len(self.groups)) if len(self.groups) > 1 \
            else contextlib.nullcontext()
        with threads as pool:
            for epoch in bar:
                lrs = [cosine_lr(value, epoch, epochs) for value in self.base_lr]
                if self.torch_adam is not None:
                    self.torch_adam.param_groups[0]["lr"] = lrs[0]
                epoch_loss, active = self.epoch(lrs, pool)
                if not torch.isfinite(epoch_loss):
                    raise ValueError(f"the training loss became {epoch_loss.item()} in epoch {epoch + 1}: the fit "
                                     f"diverged. The learning rate ({max(self.base_lr):g}) is the usual cause; "
                                     "try a smaller one (--lr)")
                report = print_freq and (epoch + 1) % print_freq == 0
                if progress or report:
                    mean_loss = (epoch_loss / active.sum()).item()  # mean over models and steps
                    bar.set_postfix(loss=f"{mean_loss:.4f}")
                    if report:
                        tqdm.write(f"epoch {epoch + 1}/{epochs}  loss {mean_loss:.4f}  lr {np.mean(lrs):.2e}")

    def epoch_priorities(self):
        """(S, M, B, 7) random vertex priorities of an epoch's batches: model m's own steps from its own generator,
        after its batch order (zeros for its resting steps)."""
        priorities = torch.zeros(self.num_steps, len(self.sizes), self.batch_size, MAX_VERTICES)
        for m, (generator, steps) in enumerate(zip(self.generators, self.model_steps)):
            priorities[:steps, m] = torch.rand(steps, self.batch_size, MAX_VERTICES, generator=generator)
        return priorities

    def epoch(self, lrs, pool):
        """One epoch of every model; (summed loss, (steps, M) active)."""
        device, num_steps, num_models = self.model.device, self.num_steps, len(self.sizes)
        positions, active = epoch_positions(self.generators, self.sizes, self.batch_size, num_steps)
        positions, active = positions.to(device), active.to(device)
        # everything random or scheduled for the epoch is drawn at once; a step only takes views
        flat = positions.transpose(0, 1).flatten(1)
        rows = self.set_rows.gather(1, flat).view(num_models, num_steps, -1).transpose(0, 1)
        targets = self.set_targets.gather(1, flat).view(num_models, num_steps, -1).transpose(0, 1)
        if self.cells is None:
            epoch_inputs = {key: value[rows] for key, value in self.inputs.items()}  # (S, M, B, ...)
        else:
            cells = {key: value[rows] for key, value in self.cells.items()}
            epoch_inputs = self.model.inputs(relabelled(cells, topological_orders(
                cells["adjacency"], cells["mask"], self.epoch_priorities().to(device))))
        loss_weights = active[..., None] / self.batch_size  # each model's own mean loss; resting models none

        def train_chunks(chunks):
            """The epoch's steps for some slices of the stack; their summed loss."""
            total = torch.zeros((), device=device)
            per_step = {}
            for chunk in chunks:
                masks = fast_gcn.sample_dropout_masks(
                    self.model.dropout_sites, self.model.dropout, (num_steps, chunk.stop - chunk.start, self.batch_size),
                    device, self.buffers[chunk.start], self.mask_generators[chunk],
                    self.model_steps[chunk]) if self.model.dropout > 0 else None
                if self.backend == "fast":
                    steps = fast_gcn.epoch_step_inputs({key: value[:, chunk] for key, value in epoch_inputs.items()},
                                                       chunk.stop - chunk.start)
                else:
                    steps = [dict(zip(epoch_inputs, values)) for values in zip(*(value.unbind(0)
                                                                                 for value in epoch_inputs.values()))]
                per_step[chunk.start] = list(zip(
                    steps, targets[:, chunk].unbind(0), loss_weights[:, chunk].unbind(0),
                    zip(*(mask.unbind(0) for mask in masks)) if masks is not None else [None] * num_steps,
                    self.stepping[chunk.start]))
            for step in range(num_steps):
                for chunk in chunks:
                    step_inputs, step_targets, step_weights, step_masks, models = per_step[chunk.start][step]
                    if not models:  # every model of the slice has taken all its steps this epoch: nothing to do
                        continue
                    if self.backend == "fast":
                        total += self.steps[chunk.start](step_inputs, step_targets, step_weights, step_masks)
                    else:
                        value = batch_loss(self.model(step_inputs, step_masks), step_targets, step_weights, self.loss)
                        value.backward()
                        total += value.detach()
                    if self.torch_adam is not None:
                        self.torch_adam.step()
                        self.torch_adam.zero_grad()
                    else:
                        self.batched_adam.step(lrs, models)
                        if self.backend == "autograd":  # the fast step overwrites .grad; backward adds to it
                            for p in self.model.parameters():
                                p.grad.zero_()
            return total

        epoch_loss = sum(pool.map(train_chunks, self.groups)) if pool else train_chunks(self.groups[0])
        return epoch_loss, active


# ---------------------------------------------------------------------------
# prediction


def predict(model, graphs, rows=None, batch_size=None, progress=False, print_freq=None, threads=None,
            backend="auto"):
    """Raw outputs (M, L) of every model for the graphs at `rows` (all when None), in eval mode, in chunks.

    The GCN's fast backend uses fast_gcn.infer (the first-layer table); other predictors and
    --backend autograd run forward, in chunks of batch_size graphs (default PREDICT_CHUNK). threads: CPU threads (default torch's, all cores); each is a
    worker that predicts whole chunks with one thread inside operations, which keeps both cores
    busier than threads inside a chunk's operations would. The outputs do not depend on it.
    """
    threads = threads or torch.get_num_threads()
    batch_size = batch_size or PREDICT_CHUNK
    workers = threads if model.device.type == "cpu" else 1
    fast = resolve_backend(backend, model) == "fast"
    with cpu_threads(threads, model.device):
        return _predict(model, graphs, rows, batch_size, progress, print_freq, workers, fast)


@torch.no_grad()
def _predict(model, graphs, rows, batch_size, progress, print_freq, workers, fast):
    model.eval()
    device = model.device
    if rows is not None:
        graphs = {key: value[rows] for key, value in graphs.items()}
    inputs = {key: value.to(device) for key, value in model.inputs(graphs).items()}
    count = len(next(iter(inputs.values())))
    weights = fast_gcn.inference_weights(model) if fast else None
    table, slot = (fast_gcn.first_layer_table(model, inputs, weights) if fast else None) or (None, None)
    output = torch.empty(model.num_models, count)

    @torch.no_grad()  # worker threads do not inherit the caller's grad mode
    def predict_chunk(start):
        part = slice(start, start + batch_size)
        chunk_inputs = {key: value[part] for key, value in inputs.items()}
        if table is None:
            output[:, part] = model(chunk_inputs).cpu()
        else:
            output[:, part] = fast_gcn.infer(model, chunk_inputs, table, slot[part], weights).cpu()

    starts = range(0, count, batch_size)
    with (concurrent.futures.ThreadPoolExecutor(workers) if workers > 1 else contextlib.nullcontext()) as pool, \
            cpu_threads(1 if workers > 1 else torch.get_num_threads(), device):
        done = pool.map(predict_chunk, starts) if pool else map(predict_chunk, starts)
        for chunk, _ in enumerate(tqdm(done, total=len(starts), desc="predicting", disable=not progress, leave=False)):
            if print_freq and (chunk + 1) % print_freq == 0:
                tqdm.write(f"evaluated {min((chunk + 1) * batch_size, count):,}/{count:,}")
    return output


def evaluate(predicted, train_set, eval_set):
    """The metrics of predicted accuracies of the eval split, with and without the training architectures;
    returns (seen, metrics): seen marks the eval rows that are training architectures."""
    true = eval_set.accuracy.cpu().numpy()
    seen = np.isin(eval_set.index.numpy(), train_set.index.numpy())
    metrics = {"eval": regression_metrics(predicted, true)}
    if (~seen).any():
        metrics["eval_minus_train"] = regression_metrics(predicted[~seen], true[~seen])
    return seen, metrics


# ---------------------------------------------------------------------------
# cross-validation


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
    output = predict(model, graphs, backend=fit_kwargs.get("backend", "auto")).view(folds, ensemble, -1).mean(1)
    per_fold = [regression_metrics(denormalise_accuracy(output[k, fold]).numpy(), accuracy[fold].cpu().numpy())
                for k, fold in enumerate(validation)]
    summary = {"folds": folds, "per_fold": per_fold}
    for key in ("mse", "kendall_tau", "spearman_rho"):
        values = np.array([fold[key] for fold in per_fold])
        summary[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1))}
    return summary


# ---------------------------------------------------------------------------
# the classifier cascade (cascade.py)


def fit_classifier(graphs, train_sets, fit_options, classifier_lr=CLASSIFIER_LR):
    """Stacked classifiers: one per (rows, accuracies) pair, label accuracy > GOOD_ACCURACY, BCE loss.

    fit_options: keyword arguments of fit (their lr is replaced by classifier_lr).
    """
    sets = [(torch.as_tensor(rows), torch.as_tensor(np.asarray(accuracy) > GOOD_ACCURACY, dtype=torch.float32))
            for rows, accuracy in train_sets]
    return fit(graphs, sets, **{**fit_options, "loss": "bce", "lr": classifier_lr})


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

    Rank by passed first, then by score (search ranks so): only passed architectures are ranked by regression.
    """
    passed = np.asarray(logits) > 0
    return np.where(passed, regression, logits), passed


def classifier_metrics(logits, accuracy):
    """Accuracy, precision and recall of the classifier (logit > 0) against accuracy > GOOD_ACCURACY."""
    predicted, actual = np.asarray(logits) > 0, np.asarray(accuracy) > GOOD_ACCURACY
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
    """regression_metrics on the selected architectures; NaN metrics when fewer than two are selected."""
    if selected.sum() < 2:
        return {"mse": float("nan"), "kendall_tau": float("nan"), "spearman_rho": float("nan"),
                "count": int(selected.sum())}
    return regression_metrics(predicted[selected], accuracy[selected])


def run_cascade(train_set, eval_set, fit_options, ensemble=1, classifier_lr=CLASSIFIER_LR):
    """Train the cascade and the oracle-filter regressor on train_set; metrics on eval_set as a dict.

    fit_options: fit's keyword arguments (the regressor's; the classifier takes them with loss bce and
    classifier_lr). The classifier is one model; the regressor an ensemble when ensemble > 1.
    """
    batch_size = fit_options["batch_size"]
    rows = np.arange(len(train_set))
    train_accuracy = train_set.accuracy.cpu().numpy()
    oracle_rows = rows[train_accuracy > GOOD_ACCURACY]
    if len(oracle_rows) < batch_size:
        raise ValueError(f"only {len(oracle_rows)} training architectures are above {GOOD_ACCURACY}, "
                         f"fewer than one batch of {batch_size}")
    classifier = fit_classifier(train_set.graphs, [(rows, train_accuracy)], fit_options, classifier_lr)
    backend = fit_options.get("backend", "auto")
    train_logits = predict(classifier, train_set.graphs, backend=backend)[0].numpy()
    # the cascade's regressor, then the oracle filter (split 91-N), each `ensemble` models, in one fit
    oracle_logits = np.where(train_accuracy > GOOD_ACCURACY, 1.0, -1.0)
    sets = regressor_sets([(rows, train_accuracy)] * 2, [train_logits, oracle_logits], batch_size)
    regressor = fit(train_set.graphs, [s for s in sets for _ in range(ensemble)], **fit_options)

    eval_accuracy = eval_set.accuracy.cpu().numpy()
    eval_logits = predict(classifier, eval_set.graphs, backend=backend)[0].numpy()
    output = predict(regressor, eval_set.graphs, backend=backend).view(2, ensemble, -1).mean(1)
    predicted = denormalise_accuracy(output).double().numpy()
    passed, good = eval_logits > 0, eval_accuracy > GOOD_ACCURACY
    return {
        "threshold": GOOD_ACCURACY,
        "train_passed": len(sets[0][0]),
        "train_above_threshold": len(oracle_rows),
        "classifier": classifier_metrics(eval_logits, eval_accuracy),
        "cascade_on_passed": metrics_where(predicted[0], eval_accuracy, passed),
        "cascade_on_denoise_91": metrics_where(predicted[0], eval_accuracy, good),
        "oracle_filter_on_denoise_91": metrics_where(predicted[1], eval_accuracy, good),
    }


def cascade_summary(metrics, eval_split, train_size):
    """The cascade's results as a few printable lines."""
    c = metrics["classifier"]
    lines = [f"classifier on {eval_split} ({c['count']:,}): accuracy {c['accuracy']:.4f}, "
             f"precision {c['precision']:.4f}, recall {c['recall']:.4f}; regressor trained on "
             f"{metrics['train_passed']} passed of {train_size}"]
    for key in ("cascade_on_passed", "cascade_on_denoise_91", "oracle_filter_on_denoise_91"):
        m = metrics[key]
        lines.append(f"{key} ({m['count']:,}): MSE {m['mse']:.3f}, Kendall tau {m['kendall_tau']:.4f}")
    return "\n".join(lines)
