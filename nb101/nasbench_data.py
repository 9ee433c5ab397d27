"""The project's data files: the NAS-Bench-101 HDF5, its labels, and the split index file.

    python -m nb101.nasbench_data data/nasbench.hdf5     # summary of an HDF5 file

HDF5 schema (that of the public PyTorch reproduction, so its readers keep working):
  hash (N,) S32, num_vertices (N,) int8, trainable_parameters (N,) int64,
  adjacency (N, 7, 7) int8 (padded), operations (N, 7) int8 (-1 input, -2 output,
  0 conv3x3, 1 conv1x1, 2 maxpool, 0 padding), metrics (N, 4, 3, 2, 4) float32:
  epochs (4, 12, 36, 108) x runs x (halfway, final) x (training_time,
  train_accuracy, validation_accuracy, test_accuracy); NaN where the source has no value.

Split file (`data/train.npz`): one int64 index array per split name, plus
`__hdf5_digest__`, the SHA256 of the HDF5's hash list, so that a split file made
for other data is refused.
"""
import contextlib
import hashlib
import os
import signal
import sys
import tempfile
import warnings
import zipfile
import zlib

import numpy as np

from .files import (DataError, atomic_output, atomic_outputs, remove_stale_temporaries,  # noqa: F401 (re-exported)
                    require_free_space)
from .search_space import MAX_EDGES, MAX_VERTICES, malformed_graphs

DEFAULT_HDF5 = "data/nasbench.hdf5"
DEFAULT_SPLITS = "data/train.npz"
EPOCHS = (4, 12, 36, 108)
NUM_RUNS = 3
CHECKPOINTS = ("halfway", "final")
FIELDS = ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy")
METRICS_SHAPE = (len(EPOCHS), NUM_RUNS, len(CHECKPOINTS), len(FIELDS))
DATASETS = ("hash", "num_vertices", "trainable_parameters", "adjacency", "operations", "metrics")
# label normalisation of the paper's predictor, and the "blown training" threshold
LABEL_MEAN, LABEL_STD = 0.908192, 0.023961
BLOWN_ACCURACY = 0.2
GOOD_ACCURACY = 0.91  # a "good" architecture: the cascade's classifier label, the 91-N / denoise-91 filters
DIGEST_KEY = "__hdf5_digest__"
CONVERT_HINT = "python tools/nasbench_tfrecord_converter.py"  # converts the shipped sample; --input for others
SPLIT_HINT = "python tools/split_train_val.py"


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


@contextlib.contextmanager
def interruptible():
    """Run the block with SIGTERM handled like SIGINT (a file being written is removed, the previous output kept);
    an interrupt ends the program with a message and exit status 130 instead of a traceback."""
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    except KeyboardInterrupt:
        print("interrupted: no output was replaced", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_output_file(output, *inputs):
    """DataError unless `output` can be written as a new file without touching any of `inputs`: not one of them
    (also through a link), not a directory, in a directory that exists or can be made, writable."""
    target = os.path.realpath(output)
    for source in inputs:
        if os.path.realpath(source) == target or (os.path.exists(source) and os.path.exists(output)
                                                  and os.path.samefile(source, output)):
            raise DataError(f"output {output} is the input {source}; writing it would destroy the input. "
                            f"Choose another --output")
    if os.path.isdir(output):
        raise DataError(f"output {output} is a directory; give a file name")
    problem = directory_problem(os.path.dirname(target))
    if problem:
        raise DataError(f"output {output}: {problem}")
    if os.path.exists(output) and not os.access(output, os.W_OK):
        raise DataError(f"output {output} is not writable")
    if os.path.isdir(os.path.dirname(target)):
        remove_stale_temporaries(output)


def output_dir_problem(path):
    """Why `path` cannot be an output folder (made as needed), or None: an existing file is not one."""
    if os.path.exists(path) and not os.path.isdir(path):
        return "exists and is not a directory"
    return directory_problem(path)


def directory_problem(directory):
    """Why files cannot be written in `directory` (made as needed), or None: the nearest part of the path that
    exists must be a writable directory."""
    existing = directory or "."
    while not os.path.exists(existing):
        existing = os.path.dirname(existing) or "."
    if not os.path.isdir(existing):
        return f"{existing} is a file, not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    try:  # what os.access cannot see (root, read-only mounts, /proc): a real file, removed at once
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        return f"{existing} is not writable ({e.strerror})"
    return None


def json_safe(content):
    """`content` with every NaN or infinite float replaced by None (null): bare NaN is not valid JSON."""
    if isinstance(content, float):
        return content if np.isfinite(content) else None
    if isinstance(content, dict):
        return {key: json_safe(value) for key, value in content.items()}
    if isinstance(content, (list, tuple)):
        return [json_safe(value) for value in content]
    return content


def write_json(path, content):
    """Write `content` as indented, valid JSON (NaN as null), atomically."""
    import json
    with atomic_output(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(json_safe(content), f, indent=2, allow_nan=False)


def metric_index(field, epochs=108, checkpoint="final"):
    """Index tuple into the last three axes of `metrics` for, e.g., ('validation_accuracy', 108)."""
    return EPOCHS.index(epochs), CHECKPOINTS.index(checkpoint), FIELDS.index(field)


def run_values(metrics, field="validation_accuracy", epochs=108, checkpoint="final"):
    """(N, 3) values of one metric for every run (NaN where missing)."""
    e, c, f = metric_index(field, epochs, checkpoint)
    return metrics[:, e, :, c, f].astype(np.float64)


def validation_labels(metrics):
    """Label of every architecture, the public reproduction's rule: first run's 108-epoch final validation accuracy.

    A blown run (< 0.2) or a missing one is replaced by the next run that is neither; if
    every run there is is blown, the label is the normalisation constant LABEL_MEAN (the
    reproduction's `return np.array(self.MEAN)`). NaN (no label) only for a row with no
    108-epoch run at all, which the official data never has.
    """
    return labels_from_runs(run_values(metrics))


def labels_from_runs(runs):
    """validation_labels' rule on (N, R) run accuracies in run order (NaN where a run is missing): the first run
    that is neither blown nor missing, LABEL_MEAN where every run there is is blown, NaN where there is none."""
    runs = np.asarray(runs, dtype=np.float64)
    good = np.isfinite(runs) & (runs >= BLOWN_ACCURACY)
    labels = runs[np.arange(len(runs)), np.argmax(good, axis=1)]
    labels[~good.any(axis=1)] = LABEL_MEAN
    labels[~np.isfinite(runs).any(axis=1)] = np.nan
    return labels


def first_run_accuracy(metrics):
    """(N,) first run's raw 108-epoch final validation accuracy (NaN where missing): what the reproduction's
    `91-N` / `denoise-*` filters test (`metrics[:, -1, 0, -1, 2] > threshold`), not the resampled label."""
    return run_values(metrics)[:, 0]


def hashes_digest(hashes):
    """SHA256 of the HDF5's hash list in row order: identifies the data a split file belongs to."""
    digest = hashlib.sha256()
    for h in np.asarray(hashes, dtype="S32"):
        digest.update(h)
    return digest.hexdigest()


def write_hdf5(path, hashes, num_vertices, trainable_parameters, adjacency, operations, metrics):
    """Write the HDF5 atomically: an existing file is only replaced by a complete new one.

    The file is built in memory and then written as plain bytes, so that a full disk is an
    ordinary OSError (a DataError naming the file), never a crash inside the HDF5 library;
    the free space is checked before the first byte is written.
    """
    import io

    import h5py
    arrays = {
        "hash": np.asarray(hashes, dtype="S32"),
        "num_vertices": np.asarray(num_vertices, dtype=np.int8),
        "trainable_parameters": np.asarray(trainable_parameters, dtype=np.int64),
        "adjacency": np.asarray(adjacency, dtype=np.int8),
        "operations": np.asarray(operations, dtype=np.int8),
        "metrics": np.asarray(metrics, dtype=np.float32),
    }
    n = len(arrays["hash"])
    assert all(len(a) == n for a in arrays.values()), "all datasets must have one row per architecture"
    assert arrays["metrics"].shape[1:] == METRICS_SHAPE
    image = io.BytesIO()
    with h5py.File(image, "w") as f:
        for name, array in arrays.items():  # fletcher32: a checksum per chunk, so corruption fails the read
            f.create_dataset(name, data=array, fletcher32=True, chunks=True)
    require_free_space(path, image.getbuffer().nbytes, "the HDF5")
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(image.getbuffer())


def read_hdf5(path=DEFAULT_HDF5):
    """All datasets of the HDF5 as numpy arrays; DataError with the command to run if unusable."""
    import h5py
    if not os.path.exists(path):
        raise DataError(f"{path} not found. Create it with:\n  {CONVERT_HINT} --output {path}")
    try:
        with h5py.File(path, "r") as f:
            missing = [name for name in DATASETS if not isinstance(f.get(name), h5py.Dataset)]
            if missing:
                raise DataError(f"{path} lacks the datasets {missing} (or holds groups by those names); "
                                f"re-create it with:\n  {CONVERT_HINT}")
            data = {name: f[name][()] for name in DATASETS}
    except (OSError, RuntimeError, ValueError, TypeError) as e:  # h5py's errors for damaged files and chunks
        raise DataError(f"{path} is not a readable HDF5 file ({e}); re-create it with:\n  {CONVERT_HINT}") from None
    problem = hdf5_problem(data)
    if problem:
        raise DataError(f"{path}: {problem}; the file is damaged or not made by the converter. Re-create it with:"
                        f"\n  {CONVERT_HINT}")
    return data


def hdf5_problem(data):
    """What is wrong with the HDF5's arrays (shapes, dtypes, hashes, vertex counts, graphs, value ranges), or None."""
    n = len(data["hash"])
    shapes = {"hash": (n,), "num_vertices": (n,), "trainable_parameters": (n,),
              "adjacency": (n, MAX_VERTICES, MAX_VERTICES), "operations": (n, MAX_VERTICES),
              "metrics": (n, *METRICS_SHAPE)}
    kinds = {"hash": "S", "num_vertices": "i", "trainable_parameters": "i", "adjacency": "i", "operations": "i",
             "metrics": "f"}
    for name, shape in shapes.items():
        if data[name].shape != shape or data[name].dtype.kind != kinds[name]:
            return f"dataset {name} is {data[name].dtype} {data[name].shape}, expected {kinds[name]} {shape}"
    hashes = data["hash"]
    well_formed = np.char.str_len(hashes) == 32
    if well_formed.all():
        hex_digits = np.frombuffer(hashes.tobytes(), dtype=np.uint8).reshape(n, 32)
        well_formed = (((hex_digits >= ord("0")) & (hex_digits <= ord("9")))
                       | ((hex_digits >= ord("a")) & (hex_digits <= ord("f")))).all(axis=1)
    if not well_formed.all():
        return f"row {int(np.argmin(well_formed))} has a malformed hash {hashes[np.argmin(well_formed)]!r}"
    ascending = bool((hashes[1:] > hashes[:-1]).all())  # the converter sorts them: then unique is one comparison
    if not ascending and len(np.unique(hashes)) != n:
        return "its hashes are not unique"
    operations, adjacency = data["operations"], data["adjacency"]
    if ((operations < -2) | (operations > 2)).any() or ((adjacency != 0) & (adjacency != 1)).any():
        return "operations outside -2..2 or adjacency entries other than 0 and 1"
    problem = graphs_problem(adjacency, operations, data["num_vertices"])
    if problem:
        return problem
    if (data["trainable_parameters"] < -1).any():
        return f"row {int(np.argmax(data['trainable_parameters'] < -1))} has negative trainable_parameters"
    return metrics_problem(data["metrics"])


def graphs_problem(adjacency, operations, num_vertices, item="row"):
    """Which padded graph (`item` i) is not a pruned NAS-Bench-101 cell, and why, or None: 2 to 7 vertices, upper
    triangular, input first and output last, every vertex on an input-output path, at most 9 edges."""
    wrong = (num_vertices < 2) | (num_vertices > MAX_VERTICES)
    if wrong.any():
        i = int(np.argmax(wrong))
        return f"{item} {i} has {num_vertices[i]} vertices, expected 2 to {MAX_VERTICES}"
    bad = malformed_graphs(adjacency, operations, num_vertices) | (adjacency.sum(axis=(1, 2)) > MAX_EDGES)
    if bad.any():
        return (f"{item} {int(np.argmax(bad))} is not a pruned NAS-Bench-101 cell (upper triangular, input first "
                f"and output last, every vertex on an input-output path, at most {MAX_EDGES} edges)")
    return None


def metrics_problem(metrics):
    """What is out of range in the metrics, or None: accuracies must be in [0, 1] and training times finite and
    non-negative, or missing (NaN). Whole-array reductions first (milliseconds on the full table); the row is
    looked for only when one fails."""
    accuracy, seconds = metrics[..., 1:], metrics[..., 0]
    if np.isnan(metrics).all():
        return None
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: nothing to check there
        fine = np.nanmin(metrics) >= 0 and not np.nanmax(accuracy) > 1 and not np.nanmax(seconds) == np.inf
    if fine:
        return None
    bad = ~np.isnan(accuracy) & ~((accuracy >= 0) & (accuracy <= 1))
    if bad.any():
        where = tuple(np.argwhere(bad)[0])
        value = float(accuracy[where])
        hint = " (percentages? accuracies are fractions)" if 1 < value <= 100 else ""
        return f"row {where[0]} has the accuracy {value:g}, outside [0, 1]{hint}"
    where = tuple(np.argwhere(~np.isnan(seconds) & ~((seconds >= 0) & (seconds < np.inf)))[0])
    return f"row {where[0]} has the training time {float(seconds[where]):g}, not a non-negative finite number"


def read_splits(path, hashes, data_path=DEFAULT_HDF5):
    """The split file's {name: indices} for the HDF5 with `hashes` (at `data_path`, named in the hints).

    A file of tools/split_train_val.py carries the digest of the HDF5's hash list and is refused for other
    data. A file without one (the public reproduction's train.npz) is taken with what can be checked: integer
    indices in range, and split N (and 91-N) of at most N rows; a warning says that it may index other data.
    """
    hint = f"re-create it with:\n  {SPLIT_HINT} --data {data_path} --output {path}"
    if not os.path.exists(path):
        raise DataError(f"{path} not found. Create it with:\n  {SPLIT_HINT} --data {data_path} --output {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            contents = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
        raise DataError(f"{path} is not a readable split file ({type(e).__name__}: {e}); {hint}") from None
    digest = contents.pop(DIGEST_KEY, None)
    if digest is not None and str(digest) != hashes_digest(hashes):
        raise DataError(f"{path} was not made from this HDF5 (its hash-list digest differs); {hint}")
    for name, index in contents.items():
        if index.ndim != 1 or index.dtype.kind not in "iu":
            raise DataError(f"{path}: split {name!r} is not a list of integer row indices ({index.dtype} "
                            f"{index.shape}); {hint}")
        if len(index) and (index.min() < 0 or index.max() >= len(hashes)):
            raise DataError(f"{path}: split {name!r} has indices outside 0..{len(hashes) - 1}; {hint}")
        size = name.rpartition("-")[2]
        if name.replace("-", "").isdigit() and size.isdigit() and len(index) > int(size):
            raise DataError(f"{path}: split {name!r} has {len(index)} rows, more than its name says; {hint}")
    if digest is None:
        warnings.warn(f"{path} carries no digest of the HDF5 it was made for (as the public reproduction's files): "
                      "its indices were checked to be in range, not that they index this HDF5's architectures",
                      stacklevel=2)
    return contents


def select_split(splits, name, path=DEFAULT_SPLITS):
    """Indices of split `name`; DataError listing the available names when it is unknown."""
    if name not in splits:
        raise DataError(f"unknown split {name!r} in {path}; available: {', '.join(sorted(splits))}")
    return splits[name].astype(np.int64)


if __name__ == "__main__":
    data = read_hdf5(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_HDF5)
    labels = validation_labels(data["metrics"])
    runs = np.isfinite(data["metrics"]).any(axis=(3, 4)).sum(axis=(0, 2))  # (epochs,) runs present
    print(f"{len(labels):,} architectures, {int(np.isfinite(labels).sum()):,} with a label "
          f"(mean {np.nanmean(labels):.4f}, max {np.nanmax(labels):.4f}); "
          f"runs present per budget {dict(zip(EPOCHS, runs.tolist()))}")
