"""NAS-Bench-101's own API (google-research/nasbench `api.py`) without TensorFlow.

Code written for the official package runs with its import changed:

    from nb101 import api                               # was: from nasbench import api
    nasbench = api.NASBench("nasbench_only108.tfrecord")   # or the project's HDF5
    spec = api.ModelSpec(matrix=[[0, 1, 1], [0, 0, 1], [0, 0, 0]],
                         ops=[api.INPUT, api.CONV3X3, api.OUTPUT])
    data = nasbench.query(spec)                         # one run, drawn as the official API draws it

Same names, signatures, dict structures, types, draws and budget counters as the official
API. What differs, and why:
- `NASBench` reads the project's HDF5 (loads in about a second) or an official TFRecord,
  which it converts once, with every check of `nb101.records`, into an HDF5 kept in
  `nb101.search_space.cache_dir()` ($NB101_CACHE_DIR, else ~/.cache/nb101; `cache_dir=` to
  choose another folder). Later loads of the same file (same path, size and mtime) read it.
- `fixed_statistics` and `computed_statistics` are read-only mappings that build each entry
  when it is read; hashes come in sorted order (the converter sorts the rows).
- A valid cell that the file does not hold, or a budget missing for one cell, raises
  OutOfDomainError (the official API raises KeyError or IndexError); so does a spec with
  too many vertices (the official one fails with a TypeError formatting its message).
- Files with fewer runs or metrics than the official ones (such as the 20,001-architecture
  sample: one run, no test accuracy, no halfway values): a budget lists the runs the file
  has; `query` still draws `random.randint(0, 2)` as the official API does and takes run
  `draw % runs`; a metric the file lacks is None (never NaN), and a missing training time
  adds nothing to the time budget. `trainable_parameters` is None where the file lacks it.
- A query finds its cell's hash in the enumerated space's class table when this machine has
  the space's cache (any conversion makes it), instead of computing the MD5 hash (the same
  hash, tested equal; about 0.1 ms a query less).
- Beyond the official API: `query_batch` (many specs or hashes at once, as arrays, same
  draws and budget as a loop of `query`), `arrays()` (the whole table as numpy arrays) and
  `iterate_space()` (all 423,624 cells of the space).
"""
import copy
import hashlib
import os
import random
import time
from collections.abc import Mapping

import numpy as np

from . import nasbench_data, records, search_space

INPUT, OUTPUT = search_space.INPUT, search_space.OUTPUT
CONV3X3, CONV1X1, MAXPOOL3X3 = search_space.OPS
# the entries of the official config that its API reads
CONFIG = {"module_vertices": search_space.MAX_VERTICES, "max_edges": search_space.MAX_EDGES,
          "available_ops": list(search_space.OPS), "num_repeats": nasbench_data.NUM_RUNS}
# a run dict's keys, in the HDF5's (checkpoint, field) order
RUN_KEYS = tuple(f"{c}_{f}" for c in nasbench_data.CHECKPOINTS for f in nasbench_data.FIELDS)
QUERY_KEYS = nasbench_data.FIELDS  # training_time, train_accuracy, validation_accuracy, test_accuracy


class OutOfDomainError(Exception):
    """Indicates that the requested graph is outside of the search domain."""


class ModelSpec:
    """A cell: adjacency matrix and operations, pruned as the official ModelSpec prunes them.

    Args:
      matrix: (V, V) upper-triangular adjacency, ndarray or nested list.
      ops: V operation names, 'input' first and 'output' last.
      data_format: kept for compatibility ('channels_last' or 'channels_first'); unused.

    Attributes:
      original_matrix, original_ops: copies of what was given.
      matrix, ops: the pruned cell (vertices not on an input-output path removed, order
        kept); None when input does not reach output.
      valid_spec: False when input does not reach output.

    Raises:
      ValueError: matrix not square, ops of another length, or an entry on or below the diagonal.
    """

    def __init__(self, matrix, ops, data_format="channels_last"):
        if not isinstance(matrix, np.ndarray):
            matrix = np.array(matrix)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError("matrix must be square")
        if matrix.shape[0] != len(ops):
            raise ValueError("length of ops must match matrix dimensions")
        if np.tril(matrix != 0).any():
            raise ValueError("matrix must be upper triangular")
        self.original_matrix = copy.deepcopy(matrix)
        self.original_ops = copy.deepcopy(ops)
        self.matrix, self.ops, self.valid_spec = _pruned(matrix, list(copy.deepcopy(ops)))
        self.data_format = data_format

    def hash_spec(self, canonical_ops):
        """The official module hash of the pruned cell.

        Args:
          canonical_ops: the interior operations in their canonical order (config['available_ops']).

        Returns:
          the 32-character MD5 hex digest that keys the dataset.
        """
        if not self.valid_spec:
            raise ValueError("invalid spec: input does not reach output, so there is nothing to hash")
        labels = [-1] + [canonical_ops.index(op) for op in self.ops[1:-1]] + [-2]
        return search_space.hash_module(self.matrix, labels)

    def __repr__(self):
        return f"ModelSpec(matrix={np.asarray(self.original_matrix).tolist()}, ops={self.original_ops})"


def _pruned(matrix, ops):
    """(matrix, ops, True) without the vertices that are not on an input-output path, or (None, None, False)."""
    if len(ops) < 2:
        return None, None, False
    keep = search_space.on_input_output_paths(matrix)
    if not (keep[0] and keep[-1]):
        return None, None, False
    extraneous = np.flatnonzero(~keep)
    pruned = np.delete(np.delete(matrix, extraneous, axis=0), extraneous, axis=1)
    for index in sorted(extraneous.tolist(), reverse=True):
        del ops[index]
    return pruned, ops, True


class NASBench:
    """The NAS-Bench-101 dataset, queried as with the official API.

    Args:
      dataset_file: the project's HDF5 (tools/nasbench_tfrecord_converter.py) or an official
        .tfrecord (or a jsonl export), told apart by content. A non-HDF5 file is converted
        once into an HDF5 in `cache_dir`, which later loads read.
      seed: seeds Python's module-level `random`, as the official API does: two objects
        made with the same seed return the same runs for the same sequence of queries.
      cache_dir: where converted files go (default nb101.search_space.cache_dir()).
      verbose: print the loading messages.

    Raises:
      FileNotFoundError: no such file.
      nb101.records.ConversionError: a TFRecord or jsonl that does not convert (the message
        names the record and why).
      nb101.nasbench_data.DataError: an HDF5 that is damaged or not in the project's schema.
    """

    def __init__(self, dataset_file, seed=None, cache_dir=None, verbose=True):
        self.config = copy.deepcopy(CONFIG)
        random.seed(seed)
        if not os.path.isfile(dataset_file):
            raise FileNotFoundError(f"{dataset_file}: no such file; give the project's HDF5 or an official "
                                    f".tfrecord ({records.DOWNLOAD_HINT})")
        if verbose:
            print(f"Loading dataset from file {dataset_file}...")
        start = time.time()
        self.dataset_file = dataset_file
        data = _read_dataset(dataset_file, cache_dir, verbose)
        for array in data.values():
            array.flags.writeable = False  # arrays() hands these out: nobody may change the dataset under the API
        self._data = data
        self._row_of = dict(zip(np.char.decode(data["hash"], "ascii").tolist(), range(len(data["hash"]))))
        self._present = np.isfinite(data["metrics"]).any(axis=(3, 4))  # (N, budgets, runs): the run is in the file
        self._budgets = [i for i in range(len(nasbench_data.EPOCHS)) if self._present[:, i].any()]
        self._complete = bool(self._present[:, self._budgets].all())  # every run of every budget, as official files
        self.valid_epochs = {nasbench_data.EPOCHS[i] for i in self._budgets}
        self.fixed_statistics = _LazyMapping(self, self._fixed_statistics)
        self.computed_statistics = _LazyMapping(self, self._computed_statistics)
        self._space = None  # the enumerated space, loaded at the first query (False: this machine has no cache)
        self.history = {}
        self.training_time_spent = 0.0
        self.total_epochs_spent = 0
        if verbose:
            print(f"Loaded dataset in {time.time() - start:.1f} seconds ({len(self):,} architectures)")

    def __len__(self):
        return len(self._row_of)

    # --- the official API ---------------------------------------------------------------

    def query(self, model_spec, epochs=108, stop_halfway=False):
        """Fetch one of the evaluations for this model spec, and count its cost in the budget.

        Args:
          model_spec: ModelSpec.
          epochs: a budget in `valid_epochs` (4, 12, 36 or 108 in nasbench_full).
          stop_halfway: return the values at epochs / 2 (and count half the epochs).

        Returns:
          dict with module_adjacency, module_operations, trainable_parameters, training_time,
          train_accuracy, validation_accuracy, test_accuracy (None for a metric the file lacks).

        Raises:
          OutOfDomainError: the spec is outside the space, the budget is not in the file, or
            the file does not hold this cell (at this budget).
        """
        if epochs not in self.valid_epochs:
            raise OutOfDomainError(f"invalid number of epochs, must be one of {self.valid_epochs}")
        row = self._row_of_spec(model_spec)
        runs = self._runs_at(row, epochs)
        run = runs[random.randint(0, self.config["num_repeats"] - 1) % len(runs)]
        values = self._data["metrics"][row, nasbench_data.EPOCHS.index(epochs), run, 0 if stop_halfway else 1]
        data = self._fixed_statistics(row)
        data.update(zip(QUERY_KEYS, _numbers(values.tolist())))
        self._spend(data["training_time"] or 0.0, epochs // 2 if stop_halfway else epochs)
        return data

    def is_valid(self, model_spec):
        """True when the spec is inside the search space (the file need not hold it); no budget."""
        try:
            self._check_spec(model_spec)
        except OutOfDomainError:
            return False
        return True

    def get_budget_counters(self):
        """(training_time_spent, total_epochs_spent)."""
        return self.training_time_spent, self.total_epochs_spent

    def reset_budget_counters(self):
        """Set both budget counters to zero."""
        self.training_time_spent = 0.0
        self.total_epochs_spent = 0

    def hash_iterator(self):
        """The hashes of every architecture in the file (the keys of fixed_statistics)."""
        return self._row_of.keys()

    def get_metrics_from_hash(self, module_hash):
        """All budgets and runs of one hash, as fresh copies; no budget.

        Returns:
          (fixed_stat, computed_stat): {'module_adjacency': int8 (V, V) array,
          'module_operations': [names], 'trainable_parameters': int} and
          {epochs: [run dict with the eight halfway_* / final_* keys, ...]}.

        Raises:
          KeyError: the file holds no such hash.
        """
        row = self._row_of[module_hash]
        return self._fixed_statistics(row), self._computed_statistics(row)

    def get_metrics_from_spec(self, model_spec):
        """get_metrics_from_hash of the spec's hash, after the official checks; no budget.

        Raises:
          OutOfDomainError: the spec is outside the space, or the file does not hold it.
        """
        row = self._row_of_spec(model_spec)
        return self._fixed_statistics(row), self._computed_statistics(row)

    # --- beyond the official API --------------------------------------------------------

    def query_batch(self, cells, epochs=108, stop_halfway=False):
        """query() for many cells at once, as arrays: the same draws and budget as a loop of query().

        Every cell is checked before anything is drawn or counted, so a bad cell changes nothing.

        Args:
          cells: ModelSpecs, or module hashes (a list of str, or an array of str or S32).
          epochs, stop_halfway: as for query().

        Returns:
          dict of arrays, one row per cell: hash (str), num_vertices, module_adjacency
          (B, 7, 7) int8 padded, module_operations (B, 7) int8 codes (-1 input, -2 output,
          0..2 the interior ops of config['available_ops']), trainable_parameters (int64, -1
          where the file lacks it), training_time, train_accuracy, validation_accuracy,
          test_accuracy (float64, NaN where the file lacks the metric), run (the run drawn).
        """
        if epochs not in self.valid_epochs:
            raise OutOfDomainError(f"invalid number of epochs, must be one of {self.valid_epochs}")
        rows = np.array([self._row_of_cell(cell) for cell in cells], dtype=np.int64)
        available = [self._runs_at(row, epochs) for row in rows.tolist()]
        draws = [random.randint(0, self.config["num_repeats"] - 1) for _ in available]
        runs = np.array([runs[draw % len(runs)] for runs, draw in zip(available, draws)], dtype=np.int64)
        values = self._data["metrics"][rows, nasbench_data.EPOCHS.index(epochs), runs,
                                       0 if stop_halfway else 1].astype(np.float64)
        result = {"hash": self._data["hash"][rows].astype(str), "num_vertices": self._data["num_vertices"][rows],
                  "module_adjacency": self._data["adjacency"][rows], "module_operations": self._data["operations"][rows],
                  "trainable_parameters": self._data["trainable_parameters"][rows], "run": runs}
        result.update({key: values[:, i] for i, key in enumerate(QUERY_KEYS)})
        self._spend(float(np.nansum(result["training_time"])), len(rows) * (epochs // 2 if stop_halfway else epochs))
        return result

    def arrays(self):
        """The whole table as read-only numpy arrays (the HDF5 schema of nb101.nasbench_data): hash,
        num_vertices, trainable_parameters, adjacency, operations, metrics (N, 4 budgets, 3 runs,
        (halfway, final), (training_time, train_accuracy, validation_accuracy, test_accuracy)), NaN
        where the file lacks a value. No budget."""
        return dict(self._data)

    # --- internals ----------------------------------------------------------------------

    def _check_spec(self, model_spec):
        """The official checks, in the official order, each an OutOfDomainError."""
        if not model_spec.valid_spec:
            raise OutOfDomainError("invalid spec, provided graph is disconnected.")
        num_vertices = len(model_spec.ops)
        num_edges = np.sum(model_spec.matrix)
        if num_vertices > self.config["module_vertices"]:
            raise OutOfDomainError(f"too many vertices, got {num_vertices} "
                                   f"(max vertices = {self.config['module_vertices']})")
        if num_edges > self.config["max_edges"]:
            raise OutOfDomainError(f"too many edges, got {num_edges} (max edges = {self.config['max_edges']})")
        if model_spec.ops[0] != "input":
            raise OutOfDomainError("first operation should be 'input'")
        if model_spec.ops[-1] != "output":
            raise OutOfDomainError("last operation should be 'output'")
        for op in model_spec.ops[1:-1]:
            if op not in self.config["available_ops"]:
                raise OutOfDomainError(f"unsupported op {op} (available ops = {self.config['available_ops']})")

    def _row_of_spec(self, model_spec):
        self._check_spec(model_spec)
        module_hash = self._module_hash(model_spec)
        row = self._row_of.get(module_hash)
        if row is None:
            raise OutOfDomainError(f"the cell {module_hash} is valid, but {self.dataset_file} does not hold it: "
                                   f"it holds {len(self):,} of the {search_space.NUM_ARCHITECTURES:,} "
                                   "architectures of the space")
        return row

    def _module_hash(self, model_spec):
        """model_spec.hash_spec(available_ops), read from the enumerated space's class table (no MD5) when this
        machine has the space's cache; the table is loaded at the first query."""
        if self._space is None:
            self._space = search_space.load_space_cache(search_space.default_space_cache()) or False
        matrix = model_spec.matrix
        if self._space and self.config["available_ops"] == CONFIG["available_ops"] and \
                ((matrix == 0) | (matrix == 1)).all():
            labels = [-1] + [search_space.OPS.index(op) for op in model_spec.ops[1:-1]] + [-2]
            index = self._space.index_of(matrix, labels)
            if index >= 0:
                return self._space.hashes[index].decode()
        return model_spec.hash_spec(self.config["available_ops"])

    def _row_of_cell(self, cell):
        if isinstance(cell, ModelSpec):
            return self._row_of_spec(cell)
        key = cell.decode() if isinstance(cell, bytes) else str(cell)
        row = self._row_of.get(key)
        if row is None:
            raise OutOfDomainError(f"{cell!r} is not a hash that {self.dataset_file} holds")
        return row

    def _runs_at(self, row, epochs):
        runs = self._runs(row, nasbench_data.EPOCHS.index(epochs))
        if not runs:
            raise OutOfDomainError(f"{self.dataset_file} has no run of {self._data['hash'][row].decode()} "
                                   f"at {epochs} epochs")
        return runs

    def _runs(self, row, budget):
        """The run indices the file has for one architecture and budget."""
        return range(nasbench_data.NUM_RUNS) if self._complete else np.flatnonzero(self._present[row, budget]).tolist()

    def _spend(self, training_time, epochs):
        self.training_time_spent += training_time
        self.total_epochs_spent += epochs

    def _fixed_statistics(self, row):
        n = int(self._data["num_vertices"][row])
        parameters = int(self._data["trainable_parameters"][row])
        return {"module_adjacency": self._data["adjacency"][row, :n, :n].copy(),
                "module_operations": search_space.codes_to_ops(self._data["operations"][row, :n].tolist()),
                "trainable_parameters": parameters if parameters >= 0 else None}

    def _computed_statistics(self, row):
        metrics = self._data["metrics"][row].tolist()  # (budgets, runs, checkpoints, fields) as Python floats
        stats = {}
        for budget in self._budgets:
            runs = self._runs(row, budget)
            if runs:
                stats[nasbench_data.EPOCHS[budget]] = [
                    dict(zip(RUN_KEYS, _numbers(metrics[budget][run][0] + metrics[budget][run][1]))) for run in runs]
        return stats


def _numbers(values):
    """Python floats, None for NaN (a metric the file lacks)."""
    return [v if v == v else None for v in values]


class _LazyMapping(Mapping):
    """{hash: entry} over the dataset, building each entry when it is read (read-only)."""

    def __init__(self, nasbench, build):
        self._nasbench, self._build = nasbench, build

    def __getitem__(self, module_hash):
        return self._build(self._nasbench._row_of[module_hash])

    def __iter__(self):
        return iter(self._nasbench._row_of)

    def __len__(self):
        return len(self._nasbench._row_of)


def _read_dataset(dataset_file, cache_dir, verbose):
    """The arrays of `dataset_file` if it is an HDF5, else of its converted copy in the cache (made when missing
    or damaged). The copy's name carries a digest of the source's path, size and modification time."""
    if records.file_format(dataset_file) == "hdf5":
        return nasbench_data.read_hdf5(dataset_file)
    stat = os.stat(dataset_file)
    key = hashlib.sha256(f"{os.path.realpath(dataset_file)}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    cached = os.path.join(cache_dir or search_space.cache_dir(), f"{os.path.basename(dataset_file)}.{key[:16]}.hdf5")
    if os.path.exists(cached):
        try:
            return nasbench_data.read_hdf5(cached)
        except nasbench_data.DataError:
            if verbose:
                print(f"the converted copy {cached} is damaged; converting again")
    if verbose:
        print(f"converting {dataset_file} once into {cached} (later loads read that)")
    records.convert(dataset_file, cached, quiet=not verbose)
    return nasbench_data.read_hdf5(cached)


def iterate_space(cache_path=None):
    """Every one of the 423,624 cells of the search space, as (module hash, ModelSpec), in generation order.

    The space is enumerated once (about 30 s) and cached (see nb101.search_space); its arrays
    are nb101.search_space.enumerate_space().
    """
    space = search_space.enumerate_space(cache_path, progress=False)
    for module_hash, n, adjacency, operations in zip(space.hashes, space.num_vertices.tolist(), space.adjacency,
                                                     space.operations):
        yield module_hash.decode(), ModelSpec(adjacency[:n, :n], search_space.codes_to_ops(operations[:n].tolist()))
