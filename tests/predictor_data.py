"""Test helper for the predictor: small HDF5 and split files made from real rows of ../shared/nb101.

The HDF5 is written by the project's converter from a jsonl of real rows (changed only where
a test says so), and the split file by tools/split_train_val.write_splits.
"""
import json

from nb101 import nasbench_data
from tools import nasbench_tfrecord_converter as converter
from tools import split_train_val


def read_rows(path, limit=None):
    """The first `limit` rows (all when None) of a jsonl file as dicts."""
    rows = []
    with open(path) as f:
        for line in f:
            if limit is not None and len(rows) == limit:
                break
            rows.append(json.loads(line))
    return rows


def convert_rows(rows, directory, name="nasbench.hdf5"):
    """Write `rows` as jsonl in `directory`, convert them to an HDF5 there and return its path."""
    source = directory / (name + ".jsonl")
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    output = directory / name
    converter.main(["--input", str(source), "--output", str(output), "--quiet"])
    return str(output)


def write_split_file(path, hdf5_path, splits):
    """A split file {name: HDF5 rows} for the HDF5 at hdf5_path (with its digest); returns the path."""
    hashes = nasbench_data.read_hdf5(hdf5_path)["hash"]
    split_train_val.write_splits(str(path), splits, hashes)
    return str(path)


def validation_accuracy(row, run=0):
    """The 108-epoch final validation accuracy of one run of a jsonl row, straight from the JSON."""
    return row["computed_stats"]["108"][run]["final_validation_accuracy"]
