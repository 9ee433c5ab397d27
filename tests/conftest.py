"""Shared test fixtures: the real NAS-Bench-101 exports in ../shared/nb101 and the enumerated space."""
import os
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# nb101's caches (the enumerated space, converted files) in the system's temporary folder, not in the repository
# or the user's home: built by the first run on a machine (about 25 s), read by the later ones
os.environ.setdefault("NB101_CACHE_DIR", os.path.join(tempfile.gettempdir(), "nb101-test-cache"))
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
def labels_20k_path(tmp_path_factory):
    """The shipped sample (nb101/data/labels_20k.jsonl.gz), decompressed: 20,001 architectures, one run each, the
    rows of ../shared/nb101/labels_20k.jsonl with every graph filled in. No ../shared needed."""
    import gzip
    import shutil
    import nb101
    path = tmp_path_factory.mktemp("sample") / "labels_20k.jsonl"
    with gzip.open(nb101.SAMPLE) as source, open(path, "wb") as target:
        shutil.copyfileobj(source, target)
    return str(path)


@pytest.fixture(scope="session")
def shared_labels_20k_path():
    """../shared/nb101/labels_20k.jsonl, the public export itself (graphs for its first 1,000 rows only)."""
    return _require_shared("labels_20k.jsonl")


@pytest.fixture(scope="session")
def complete_records_path():
    """../shared/nb101/complete_records.jsonl: 56 complete official records."""
    return _require_shared("complete_records.jsonl")


@pytest.fixture(scope="session")
def space():
    """The whole enumerated search space (built once into the nb101 cache, then loaded)."""
    from nb101 import search_space
    return search_space.enumerate_space(progress=False)


@pytest.fixture(scope="session")
def hdf5_20k(tmp_path_factory, labels_20k_path):
    """labels_20k.jsonl converted to an HDF5: 20,001 architectures, one run each, no test accuracy."""
    from nb101 import records
    path = str(tmp_path_factory.mktemp("data") / "nb20k.hdf5")
    records.convert(labels_20k_path, path, quiet=True)
    return path


@pytest.fixture(scope="session")
def labels_hdf5(hdf5_20k, tmp_path_factory):
    """(HDF5 path, split file path) of all 20,001 rows of labels_20k.jsonl, with a few small splits."""
    import numpy as np
    from predictor_data import write_split_file
    directory = tmp_path_factory.mktemp("labels")
    order = np.random.RandomState(0).permutation(20001)
    splits = {"40": order[:40], "300": order[40:340], "tiny": order[:5]}
    return hdf5_20k, write_split_file(directory / "train.npz", hdf5_20k, splits)


@pytest.fixture(scope="session")
def small(labels_hdf5):
    """The 300-row split as a dataset (its graphs, targets and labels)."""
    from dataset import Nb101Dataset
    path, splits = labels_hdf5
    return Nb101Dataset(path, "300", splits)


@pytest.fixture
def float64():
    """Double precision for exactness tests: Adam divides by the root of tiny second moments, which
    blows float32 rounding differences up to visible sizes within a few epochs."""
    import torch
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


@pytest.fixture
def small_pretraining(space, monkeypatch, tmp_path):
    """pretrain.pretrained_weights over 512 cells of the space instead of all of them (seconds, not minutes),
    cached in a temporary folder; the list it returns gets an item for each pre-training run."""
    import numpy as np
    import pretrain
    rows = np.random.RandomState(0).choice(len(space), 512, replace=False)
    few = type("Space", (), {"adjacency": space.adjacency[rows], "operations": space.operations[rows],
                             "num_vertices": space.num_vertices[rows]})
    monkeypatch.setattr(pretrain, "enumerate_space", lambda progress=False: few)
    monkeypatch.setattr(pretrain, "cache_dir", lambda: str(tmp_path / "pretraining-cache"))
    runs = []
    original = pretrain.pretrain_gcn
    monkeypatch.setattr(pretrain, "pretrain_gcn", lambda *args, **kwargs: runs.append(1) or original(*args, **kwargs))
    return runs


@pytest.fixture(scope="session")
def nasbench_20k(hdf5_20k):
    """nb101.api.NASBench over labels_20k.jsonl's HDF5."""
    from nb101 import api
    return api.NASBench(hdf5_20k, seed=0, verbose=False)


@pytest.fixture(scope="session")
def run_method():
    """run_method(method, benchmark, runs, budget, seed=0, space=None, **options): one search method's engine on the
    benchmark's pool through an Oracle that queries the benchmark; returns the oracle (its log) and the method's
    return value."""
    import search_methods

    def run(method, benchmark, runs, budget, seed=0, space=None, **options):
        pool = search_methods.pool_of(benchmark)
        rngs = search_methods.run_generators(seed, runs)
        oracle = search_methods.Oracle(pool, benchmark, runs, budget)
        if method == "random":
            result = search_methods.random_search(pool, oracle, rngs)
        elif method == "evolution":
            result = search_methods.regularized_evolution(pool, oracle, rngs, space, **options)
        else:
            result = search_methods.neural_predictor(pool, oracle, rngs, **options)
        return oracle, result
    return run


@pytest.fixture(scope="session")
def sample(space):
    """Graph tensors of 600 real architectures: every vertex count 2..7 and a random draw of the space."""
    import numpy as np
    from dataset import graph_tensors
    rng = np.random.default_rng(0)
    per_size = [np.flatnonzero(space.num_vertices == n)[:20] for n in range(2, 8)]
    rows = np.concatenate(per_size + [rng.choice(len(space), 600 - sum(map(len, per_size)), replace=False)])
    return graph_tensors(space.adjacency[rows], space.operations[rows], space.num_vertices[rows])
