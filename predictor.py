"""A Neural Predictor you can keep and call: fit, predict, save and load, in scikit-learn's style.

    from nb101 import api
    from predictor import NeuralPredictor

    predictor = NeuralPredictor("faithful")                # or "improved", "best"; overrides: epochs=100
    predictor.fit(cells, accuracies)                       # cells: api.ModelSpec, (matrix, ops) pairs, or hashes
    predicted = predictor.predict(other_cells)             # validation accuracies, as fractions
    predictor.save("model.pt")
    same = NeuralPredictor.load("model.pt")                # predicts the same, bit for bit

The object owns its preprocessing: it takes cells, never tensors, and turns them into the
model's inputs with the propagation rule of its recipe, which its checkpoint keeps with the
weights, the label constants and the sizes. Cells are pruned as the official API prunes
them; a cell outside the NAS-Bench-101 space is refused with the reason.
"""
import os

import numpy as np
import torch

import engine
from dataset import graph_tensors
from flags import MAX_SEED
from model import PREDICTORS, build_predictor
from nb101 import nasbench_data, search_space
from nb101.api import ModelSpec
from recipes import Recipe, get_recipe

FORMAT = "nb101-neural-predictor"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded: the message says why."""


class NeuralPredictor:
    """The paper's predictor (or a baseline), trained by a recipe, as an object.

    Args:
      recipe: "faithful" (default), "improved", "best", or a recipes.Recipe.
      predictor: "gcn" (the paper's), "mlp" or "cnn" (its appendix's baselines), or "transformer".
      seed: model m of the ensemble is initialised, shuffled and dropped out from seed + m.
      device: "cpu", "cuda", "auto", or a torch.device.
      backend: "auto" (the GCN's fast path, autograd for the others), "fast" or "autograd".
      precision: the GCN's training-time weight products, "fp32" or "bf16" (model.PRECISIONS).
      progress: show progress bars.
      **overrides: fields of the recipe to change (epochs=100, lr=1e-3, ensemble=5, ...).
    """

    def __init__(self, recipe="faithful", predictor="gcn", *, seed=0, device="cpu", backend="auto",
                 precision="fp32", progress=False, **overrides):
        self.recipe = get_recipe(recipe, **overrides)
        if predictor not in PREDICTORS:
            raise ValueError(f"predictor {predictor!r}: expected one of {', '.join(PREDICTORS)}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
            raise ValueError(f"seed must be an integer from 0 to {MAX_SEED:,}, got {seed!r}")
        self.predictor, self.seed, self.backend, self.precision = predictor, int(seed), backend, precision
        self.device = engine.resolve_device(str(device))
        self.progress = progress
        self.label_mean, self.label_std = nasbench_data.LABEL_MEAN, nasbench_data.LABEL_STD
        self.model_ = None  # the trained stack of recipe.ensemble models, after fit or load

    def __repr__(self):
        return (f"NeuralPredictor({self.recipe!r}, predictor={self.predictor!r}, seed={self.seed}, "
                f"{'fitted' if self.model_ is not None else 'not fitted'})")

    def fit(self, cells, accuracies, print_freq=None):
        """Train the predictor; returns self.

        Args:
          cells: the training cells (see cell_arrays).
          accuracies: their validation accuracies as fractions: (N,) one run each, or (N, R) the runs in order
            (NaN where missing). The recipe's label rule applies: a blown run (< 0.2) gives way to the next
            run, and a cell whose every run is blown gets the normalisation constant 0.908192.
          print_freq: print the loss every this many epochs.
        """
        arrays = cell_arrays(cells)
        labels = training_labels(accuracies, len(arrays["num_vertices"]))
        if len(labels) < self.recipe.batch_size:
            raise ValueError(f"{len(labels)} training cells, fewer than one batch of {self.recipe.batch_size}")
        targets = ((torch.as_tensor(labels) - self.label_mean) / self.label_std).float()
        self.model_ = engine.fit(
            self._inputs(arrays), [(torch.arange(len(labels)), targets)] * self.recipe.ensemble,
            predictor=self.predictor, backend=self.backend, precision=self.precision, seed=self.seed,
            device=self.device, progress=self.progress, print_freq=print_freq, **self.recipe.fit_options())
        return self

    def predict(self, cells, batch_size=None):
        """(N,) predicted validation accuracies (fractions): the mean of the ensemble's outputs."""
        return self._denormalise(self._outputs(cells, batch_size).mean(0))

    def predict_each(self, cells, batch_size=None):
        """(M, N) every model's predicted validation accuracies, for an ensemble of M."""
        return self._denormalise(self._outputs(cells, batch_size))

    def save(self, path):
        """Write the trained predictor to `path` (written to a temporary file, then renamed)."""
        model = self._fitted()
        state = {"format": FORMAT, "format_version": FORMAT_VERSION, "predictor": self.predictor,
                 "recipe": self.recipe.as_dict(), "seed": self.seed, "num_models": model.num_models,
                 "label_mean": self.label_mean, "label_std": self.label_std,
                 "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()}}
        with nasbench_data.atomic_output(path) as tmp:
            torch.save(state, tmp)

    @classmethod
    def load(cls, path, device="cpu", backend="auto", progress=False):
        """A predictor saved by save(); CheckpointError for a missing, damaged or foreign file, or another
        format version."""
        if not os.path.isfile(path):
            raise CheckpointError(f"{path}: no such checkpoint file (train.py writes model.pt in its --output_dir)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many kinds for a damaged file: zip, pickle, EOF, ...
            raise CheckpointError(f"{path} is not a readable checkpoint ({type(e).__name__}); it is damaged or not "
                                  "made by NeuralPredictor.save: train it again") from None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise CheckpointError(f"{path} is not a Neural Predictor checkpoint of this project")
        if state.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{path} has checkpoint format version {state.get('format_version')}; this code "
                                  f"reads version {FORMAT_VERSION}: train it again with this version")
        try:
            predictor = cls(Recipe(**state["recipe"]), state["predictor"], seed=state["seed"], device=device,
                            backend=backend, progress=progress)
            predictor.label_mean, predictor.label_std = float(state["label_mean"]), float(state["label_std"])
            r = predictor.recipe
            model = build_predictor(predictor.predictor, num_models=int(state["num_models"]), dropout=r.dropout,
                                    gcn_hidden=r.hidden, gcn_layers=r.layers, readout_init=r.readout_init)
            model.load_state_dict(state["state_dict"])
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{path}: its contents do not fit a {state.get('predictor')} predictor "
                                  f"({type(e).__name__}: {e}); it is damaged: train it again") from None
        predictor.model_ = model.to(predictor.device)
        return predictor

    # --- internals --------------------------------------------------------------------

    def _fitted(self):
        if self.model_ is None:
            raise ValueError("this NeuralPredictor is not fitted yet: call fit(cells, accuracies) or load(path)")
        return self.model_

    def _inputs(self, arrays):
        return graph_tensors(arrays["adjacency"], arrays["operations"], arrays["num_vertices"], self.device,
                             self.recipe.propagation)

    def _outputs(self, cells, batch_size):
        model = self._fitted()
        return engine.predict(model, self._inputs(cell_arrays(cells)), batch_size=batch_size,
                              progress=self.progress, backend=self.backend)

    def _denormalise(self, outputs):
        return (outputs * self.label_std + self.label_mean).double().numpy()


def training_labels(accuracies, count):
    """(N,) labels from (N,) or (N, R) accuracies by the recipe's rule; ValueError for values that are not
    fractions or a cell without any run."""
    values = np.asarray(accuracies, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or len(values) != count:
        raise ValueError(f"accuracies must be (N,) or (N, runs) for the {count} cells, got shape "
                         f"{np.shape(accuracies)}")
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(values) & ~((values >= 0) & (values <= 1))
    if bad.any():
        value = values[np.nonzero(bad)][0]
        hint = " (a percentage? accuracies are fractions, as the API returns them)" if 1 < value <= 100 else ""
        raise ValueError(f"accuracy {value:g} is not a fraction in [0, 1]{hint}")
    labels = nasbench_data.labels_from_runs(values)
    if np.isnan(labels).any():
        raise ValueError(f"cell {int(np.argmax(np.isnan(labels)))} has no accuracy (every run is missing)")
    return labels


def cell_arrays(cells):
    """The padded arrays of many cells, as the HDF5 stores them: adjacency (N, 7, 7) int8, operations (N, 7) int8
    (-1 input, -2 output, 0..2 the interior ops, 0 padding), num_vertices (N,).

    Args:
      cells: nb101.api.ModelSpecs, (matrix, ops) pairs of up to 7 vertices after pruning, NAS-Bench-101 hashes
        (str), or such a dict of arrays (checked, then used as it is).

    Raises:
      ValueError naming the first cell that is not in the NAS-Bench-101 space, and why.
    """
    if isinstance(cells, dict):
        return _checked_arrays(cells)
    cells = list(cells)
    if not cells:
        raise ValueError("no cells given")
    count = len(cells)
    arrays = {"adjacency": np.zeros((count, search_space.MAX_VERTICES, search_space.MAX_VERTICES), np.int8),
              "operations": np.zeros((count, search_space.MAX_VERTICES), np.int8),
              "num_vertices": np.zeros(count, np.int64)}
    hashes = [(i, cell) for i, cell in enumerate(cells) if isinstance(cell, (str, bytes))]
    if hashes:
        _fill_from_space(arrays, hashes)
    for i, cell in enumerate(cells):
        if isinstance(cell, (str, bytes)):
            continue
        try:
            spec = cell if isinstance(cell, ModelSpec) else ModelSpec(*_pair(cell))
            if not spec.valid_spec:
                raise ValueError("input does not reach output")
            matrix, ops = search_space.check_spec(spec.matrix, spec.ops)
        except ValueError as e:
            raise ValueError(f"cell {i} is not a NAS-Bench-101 cell: {e}") from None
        n = len(ops)
        arrays["adjacency"][i, :n, :n] = matrix
        arrays["operations"][i, :n] = search_space.ops_to_codes(ops)
        arrays["num_vertices"][i] = n
    return arrays


def _pair(cell):
    if not (isinstance(cell, (tuple, list)) and len(cell) == 2):
        raise ValueError("expected an nb101.api.ModelSpec, a (matrix, ops) pair or a hash")
    return cell


def _fill_from_space(arrays, hashes):
    """The graphs of hash cells, from the enumerated space (built once and cached, see nb101.search_space)."""
    space = search_space.enumerate_space(progress=False)
    order = _space_order(space)
    keys = np.array([h.encode() if isinstance(h, str) else h for _, h in hashes], dtype="S32")
    position = np.minimum(np.searchsorted(space.hashes, keys, sorter=order), len(order) - 1)
    index = order[position]
    unknown = np.flatnonzero(space.hashes[index] != keys)
    if len(unknown):
        i, key = hashes[unknown[0]]
        raise ValueError(f"cell {i}: {key!r} is not the hash of a NAS-Bench-101 cell")
    rows = np.array([i for i, _ in hashes])
    arrays["adjacency"][rows] = space.adjacency[index]
    arrays["operations"][rows] = space.operations[index]
    arrays["num_vertices"][rows] = space.num_vertices[index]


_SPACE_ORDER = {}


def _space_order(space):
    """argsort of the space's hashes, computed once per process."""
    if id(space) not in _SPACE_ORDER:
        _SPACE_ORDER.clear()
        _SPACE_ORDER[id(space)] = np.argsort(space.hashes)
    return _SPACE_ORDER[id(space)]


def _checked_arrays(cells):
    missing = {"adjacency", "operations", "num_vertices"} - set(cells)
    if missing:
        raise ValueError(f"a dict of cells needs the arrays adjacency, operations and num_vertices; "
                         f"missing {', '.join(sorted(missing))}")
    arrays = {key: np.asarray(cells[key]) for key in ("adjacency", "operations", "num_vertices")}
    count = len(arrays["num_vertices"])
    if arrays["adjacency"].shape != (count, 7, 7) or arrays["operations"].shape != (count, 7) or count == 0:
        raise ValueError(f"cell arrays must be adjacency (N, 7, 7), operations (N, 7), num_vertices (N,) with N > 0; "
                         f"got {arrays['adjacency'].shape}, {arrays['operations'].shape}, ({count},)")
    problem = nasbench_data.graphs_problem(arrays["adjacency"], arrays["operations"], arrays["num_vertices"], "cell")
    if problem:
        raise ValueError(problem)
    return arrays
