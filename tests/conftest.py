"""Shared test fixtures: the real NAS-Bench-101 exports in ../shared/nb101 and the enumerated space."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SHARED_NB101 = os.path.join(ROOT, "..", "shared", "nb101")


def _require_shared(filename):
    path = os.path.join(SHARED_NB101, filename)
    if not os.path.exists(path):
        reason = f"{path} is absent: the real NAS-Bench-101 exports live in ../shared/nb101"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (required under CI=true)")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def labels_20k_path():
    """../shared/nb101/labels_20k.jsonl: 20,001 architectures, one run each."""
    return _require_shared("labels_20k.jsonl")


@pytest.fixture(scope="session")
def complete_records_path():
    """../shared/nb101/complete_records.jsonl: 56 complete official records."""
    return _require_shared("complete_records.jsonl")


@pytest.fixture(scope="session")
def space():
    """The whole enumerated search space (built once into data/space.npz, then loaded)."""
    import search_space
    return search_space.enumerate_space(progress=False)


@pytest.fixture(scope="session")
def hdf5_20k(tmp_path_factory, labels_20k_path):
    """labels_20k.jsonl converted to an HDF5: 20,001 architectures, one run each, no test accuracy."""
    from tools import nasbench_tfrecord_converter as converter
    path = str(tmp_path_factory.mktemp("data") / "nb20k.hdf5")
    converter.convert(labels_20k_path, path, quiet=True)
    return path
