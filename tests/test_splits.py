"""Tests of tools/split_train_val.py on the HDF5 converted from ../shared/nb101/labels_20k.jsonl."""
import hashlib
import json

import numpy as np
import pytest

from nb101 import nasbench_data
from tools import nasbench_tfrecord_converter as converter
from tools import split_train_val

SIZES = (172, 334, 860, 100, 424, 4236)


@pytest.fixture(scope="module")
def converted(labels_20k_path, tmp_path_factory):
    """(HDF5 path, its data, {hash: 108-epoch validation accuracy read straight from the JSON})."""
    path = tmp_path_factory.mktemp("splits") / "nasbench.hdf5"
    converter.main(["--input", labels_20k_path, "--output", str(path), "--quiet"])
    with open(labels_20k_path) as f:
        rows = [json.loads(line) for line in f]
    accuracy = {r["hash"].encode(): r["computed_stats"]["108"][0]["final_validation_accuracy"] for r in rows}
    return path, nasbench_data.read_hdf5(str(path)), accuracy


def _split(converted, tmp_path, seed=0, name=None):
    path, data, _ = converted
    output = tmp_path / (name or f"train_{seed}.npz")
    split_train_val.main(["--data", str(path), "--output", str(output), "--seed", str(seed)])
    return nasbench_data.read_splits(str(output), data["hash"]), output


def test_random_splits_follow_the_recipe(converted, tmp_path):
    splits, _ = _split(converted, tmp_path)
    rng = np.random.RandomState(0)
    for n in SIZES:  # successive permutations of one RandomState, in this order
        np.testing.assert_array_equal(splits[str(n)], rng.permutation(20001)[:n])
        assert len(np.unique(splits[str(n)])) == n


def test_thresholds_match_the_json(converted, tmp_path):
    _, data, accuracy = converted
    splits, _ = _split(converted, tmp_path)
    label = np.array([accuracy[h] for h in data["hash"]])
    for n in (172, 334, 860):
        picked = splits[str(n)]
        np.testing.assert_array_equal(splits[f"91-{n}"], picked[label[picked] > 0.91])
    assert set(splits["denoise-91"].tolist()) == {i for i, h in enumerate(data["hash"]) if accuracy[h] > 0.91}
    assert set(splits["denoise-80"].tolist()) == {i for i, h in enumerate(data["hash"]) if accuracy[h] > 0.80}
    assert splits["all"].tolist() == list(range(20001))


def test_same_seed_same_splits_other_seed_other_splits(converted, tmp_path):
    first, first_path = _split(converted, tmp_path, seed=0)
    _, again_path = _split(converted, tmp_path, seed=0, name="again.npz")
    assert first_path.read_bytes() == again_path.read_bytes()
    other, _ = _split(converted, tmp_path, seed=1)
    assert not np.array_equal(first["172"], other["172"])


def test_split_file_records_its_hdf5(converted, tmp_path):
    _, data, _ = converted
    _, output = _split(converted, tmp_path)
    digest = hashlib.sha256(b"".join(data["hash"].tolist())).hexdigest()
    with np.load(output) as f:
        assert str(f["__hdf5_digest__"]) == digest
    with pytest.raises(nasbench_data.DataError, match="not made from this HDF5"):
        nasbench_data.read_splits(str(output), data["hash"][::-1])


def test_rows_without_a_label_are_never_drawn(converted):
    _, data, _ = converted
    labels = nasbench_data.validation_labels(data["metrics"])
    labels[::2] = np.nan
    splits = split_train_val.make_splits(labels, nasbench_data.first_run_accuracy(data["metrics"]))
    assert len(splits["all"]) == 10000
    for name, index in splits.items():
        assert np.isfinite(labels[index]).all(), name


def test_filters_test_the_first_run_not_the_resampled_label(converted):
    """As the reproduction's `metrics[:, -1, 0, -1, 2] > 0.91`: an architecture whose first run is blown is
    outside 91-N and denoise-*, whatever the label that replaces that run."""
    _, data, _ = converted
    labels = nasbench_data.validation_labels(data["metrics"])
    first_run = nasbench_data.first_run_accuracy(data["metrics"]).copy()
    splits = split_train_val.make_splits(labels, first_run)
    good = splits["91-172"][:5]
    first_run[good] = 0.1  # as if run 0 of these had blown up; their labels stay above 0.91
    changed = split_train_val.make_splits(labels, first_run)
    assert (labels[good] > 0.91).all()
    assert not np.isin(good, changed["91-172"]).any() and not np.isin(good, changed["denoise-91"]).any()
    assert len(changed["91-172"]) == len(splits["91-172"]) - 5
    np.testing.assert_array_equal(changed["172"], splits["172"])


def test_split_larger_than_the_data_is_an_error(converted, tmp_path, capsys):
    _, data, _ = converted
    small = tmp_path / "small.hdf5"
    nasbench_data.write_hdf5(str(small), *(data[k][:1000] for k in (
        "hash", "num_vertices", "trainable_parameters", "adjacency", "operations", "metrics")))
    with pytest.raises(SystemExit) as failure:
        split_train_val.main(["--data", str(small), "--output", str(tmp_path / "train.npz")])
    assert failure.value.code == 2
    assert "4236" in capsys.readouterr().err
    assert not (tmp_path / "train.npz").exists()


def test_missing_hdf5_says_what_to_run(tmp_path):
    with pytest.raises(SystemExit) as failure:
        split_train_val.main(["--data", str(tmp_path / "none.hdf5"), "--output", str(tmp_path / "train.npz")])
    assert "nasbench_tfrecord_converter.py" in str(failure.value.code)
