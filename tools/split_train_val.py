"""Write the train/eval index file data/train.npz from data/nasbench.hdf5.

    python tools/split_train_val.py
    python tools/split_train_val.py --data data/nasbench.hdf5 --output data/train.npz --seed 0

Recipe of the public PyTorch reproduction, extended with the later papers' sizes. The
candidates are the rows with a finite label (nasbench_data.validation_labels: first run's
108-epoch validation accuracy; all rows for the official data). One RandomState(seed)
draws successive `permutation(len(candidates))[:n]` for n = 172, 334, 860 (in that
order, as the reproduction did), then 100, 424, 4236. `91-N` is split N restricted to
architectures whose first run's raw accuracy is > 0.91; `denoise-91` and `denoise-80` are all
candidates whose first run is above 0.91 / 0.80 (the reproduction's filters test
`metrics[:, -1, 0, -1, 2]`, not the resampled label); `all` is every candidate. The file also stores the SHA256 of the HDF5's hash list
(`__hdf5_digest__`) so that a reader can refuse it for other data.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import flags  # noqa: E402
from nb101 import nasbench_data  # noqa: E402

RANDOM_SIZES = (172, 334, 860, 100, 424, 4236)  # drawing order matters: it fixes every split
FILTERED_SIZES = (172, 334, 860)  # the reproduction's 91-N splits
DENOISE_THRESHOLDS = {"denoise-91": nasbench_data.GOOD_ACCURACY, "denoise-80": 0.80}


def make_splits(labels, first_run, seed=0, sizes=RANDOM_SIZES):
    """{split name: int64 row indices} for architectures with these labels (NaN = no label) and first-run
    accuracies (nasbench_data.first_run_accuracy; NaN = missing, never above a threshold)."""
    candidates = np.flatnonzero(np.isfinite(labels))
    too_big = [n for n in sizes if n > len(candidates)]
    if too_big:
        raise ValueError(f"split sizes {too_big} exceed the {len(candidates):,} architectures with a label")
    rng = np.random.RandomState(seed)
    splits = {str(n): candidates[rng.permutation(len(candidates))[:n]] for n in sizes}
    above = candidates[first_run[candidates] > nasbench_data.GOOD_ACCURACY]
    for n in FILTERED_SIZES:
        if n in sizes:
            splits[f"91-{n}"] = splits[str(n)][np.isin(splits[str(n)], above)]
    for name, threshold in DENOISE_THRESHOLDS.items():
        splits[name] = candidates[first_run[candidates] > threshold]
    splits["all"] = candidates
    return {name: index.astype(np.int64) for name, index in splits.items()}


def write_splits(path, splits, hashes):
    """Save the splits with the digest of the HDF5 they index, atomically."""
    with nasbench_data.atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **splits, **{nasbench_data.DIGEST_KEY: np.str_(nasbench_data.hashes_digest(hashes))})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=nasbench_data.DEFAULT_HDF5)
    parser.add_argument("--output", default=nasbench_data.DEFAULT_SPLITS)
    parser.add_argument("--seed", type=flags.seed, default=0)
    args = parser.parse_args(argv)
    try:
        nasbench_data.check_output_file(args.output, args.data)
    except nasbench_data.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        data = nasbench_data.read_hdf5(args.data)
    except nasbench_data.DataError as e:
        raise SystemExit(f"error: {e}") from None
    labels = nasbench_data.validation_labels(data["metrics"])
    try:
        splits = make_splits(labels, nasbench_data.first_run_accuracy(data["metrics"]), args.seed)
    except ValueError as e:
        print(f"error: {args.data}: {e}; use data with more architectures", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        with nasbench_data.interruptible():
            write_splits(args.output, splits, data["hash"])
    except nasbench_data.DataError as e:  # the output could not be written: a full disk, a vanished folder
        raise SystemExit(f"error: {e}") from None
    print(f"wrote {args.output} (seed {args.seed}) for {args.data}:")
    for name, index in splits.items():
        print(f"  {name:>11}: {len(index):,}")


if __name__ == "__main__":
    main()
