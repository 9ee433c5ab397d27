"""Tests of dataset.py on HDF5 files converted from real rows of ../shared/nb101."""
import copy

import numpy as np
import pytest
import torch

from nb101 import nasbench_data
from dataset import VERTEX_TYPES, Nb101Dataset, denormalise_accuracy, graph_tensors, normalise_accuracy
from nb101.nasbench_data import read_hdf5, run_values, validation_labels
from predictor_data import convert_rows, read_rows, validation_accuracy, write_split_file
from reference_predictor import reference_label


@pytest.fixture(scope="module")
def graph_rows(labels_20k_path, tmp_path_factory):
    """(HDF5 path, rows) of the first 300 rows of labels_20k.jsonl, which carry their official graph."""
    rows = read_rows(labels_20k_path, limit=300)
    return convert_rows(rows, tmp_path_factory.mktemp("graphs")), rows


def test_graph_tensors_match_the_official_graphs(graph_rows):
    path, rows = graph_rows
    dataset = Nb101Dataset(path, split=None)
    assert len(dataset) == len(rows)
    for i, row in enumerate(rows):  # HDF5 rows are sorted by hash, as the jsonl is
        n = len(row["module_operations"])
        assert dataset.num_vertices[i] == n
        np.testing.assert_array_equal(dataset.graphs["adjacency"][i, :n, :n].numpy(), row["module_adjacency"])
        assert dataset.graphs["adjacency"][i, n:].sum() == 0 and dataset.graphs["adjacency"][i, :, n:].sum() == 0
        one_hot = dataset.graphs["operations"][i]
        assert [VERTEX_TYPES[k] for k in one_hot[:n].argmax(1)] == row["module_operations"]
        assert torch.equal(one_hot.sum(1), (torch.arange(7) < n).float())  # one 1 per real vertex, zero padding
        assert torch.equal(dataset.graphs["mask"][i], (torch.arange(7) < n).float())


def test_graph_tensors_are_one_hot_in_the_documented_order():
    codes = np.array([[-1, 0, 1, 2, -2, 0, 0]], dtype=np.int8)  # input, conv3x3, conv1x1, maxpool, output, padding
    adjacency = np.zeros((1, 7, 7), dtype=np.int8)
    adjacency[0, [0, 1, 2, 3], [1, 2, 3, 4]] = 1
    graphs = graph_tensors(adjacency, codes, [5])
    expected = torch.zeros(7, 5)
    expected[[0, 1, 2, 3, 4], [0, 2, 3, 4, 1]] = 1
    assert torch.equal(graphs["operations"][0], expected)
    assert graphs["adjacency"].dtype == torch.float32 and graphs["mask"][0].tolist() == [1] * 5 + [0] * 2


def test_labels_follow_the_blown_and_missing_run_rules(complete_records_path, tmp_path):
    """Real three-run records; run 0 blown (< 0.2) or missing in some, every run blown in one."""
    rows = read_rows(complete_records_path)[:12]
    changed = copy.deepcopy(rows)
    expected = [validation_accuracy(row, 0) for row in rows]
    for i in (1, 2):  # first run blown: the second run counts
        changed[i]["computed_stats"]["108"][0]["final_validation_accuracy"] = 0.1
        expected[i] = validation_accuracy(rows[i], 1)
    for i in (3, 4):  # first run missing: the second run counts
        del changed[i]["computed_stats"]["108"][0]["final_validation_accuracy"]
        expected[i] = validation_accuracy(rows[i], 1)
    changed[5]["computed_stats"]["108"][0]["final_validation_accuracy"] = 0.15  # first two runs blown
    changed[5]["computed_stats"]["108"][1]["final_validation_accuracy"] = 0.05
    expected[5] = validation_accuracy(rows[5], 2)
    for run, value in enumerate((0.1, 0.12, 0.05)):  # every run blown: the normalisation constant, as the
        changed[6]["computed_stats"]["108"][run]["final_validation_accuracy"] = value  # reproduction returns MEAN
    expected[6] = 0.908192
    changed[7]["computed_stats"]["108"][0]["final_validation_accuracy"] = 0.1  # blown, missing, blown
    del changed[7]["computed_stats"]["108"][1]["final_validation_accuracy"]
    changed[7]["computed_stats"]["108"][2]["final_validation_accuracy"] = 0.11
    expected[7] = 0.908192
    for run in range(3):  # every run missing: no label (the official data has none such)
        del changed[8]["computed_stats"]["108"][run]["final_validation_accuracy"]
    expected[8] = np.nan
    path = convert_rows(changed, tmp_path)
    order = np.argsort([row["hash"] for row in rows])  # HDF5 rows are sorted by hash
    labels = validation_labels(read_hdf5(path)["metrics"])
    np.testing.assert_allclose(labels, np.array(expected)[order], rtol=1e-6)
    # and the independent rule of tests/reference_predictor.py, row by row
    independent = [reference_label(runs) for runs in run_values(read_hdf5(path)["metrics"])]
    np.testing.assert_allclose(labels[np.isfinite(labels)], np.array(independent)[np.isfinite(labels)], rtol=1e-6)
    dataset = Nb101Dataset(path, split=None)  # "all": the rows with a label
    assert len(dataset) == 11
    np.testing.assert_allclose(dataset.accuracy.numpy(), labels[np.isfinite(labels)], rtol=1e-6)
    np.testing.assert_allclose(dataset.target.numpy(), (dataset.accuracy.numpy() - 0.908192) / 0.023961, rtol=1e-5)


def test_normalisation_round_trip():
    accuracy = torch.tensor([0.1, 0.908192, 0.95], dtype=torch.float64)
    assert normalise_accuracy(accuracy)[1] == 0
    torch.testing.assert_close(denormalise_accuracy(normalise_accuracy(accuracy)), accuracy)


def test_any_split_name_in_the_file_selects_its_rows(graph_rows, tmp_path):
    path, rows = graph_rows
    splits = {"172": np.arange(0, 300, 2), "my-own-split": np.array([5, 3, 250])}
    split_path = write_split_file(tmp_path / "train.npz", path, splits)
    dataset = Nb101Dataset(path, "my-own-split", split_path)
    assert dataset.index.tolist() == [5, 3, 250]
    np.testing.assert_allclose(dataset.accuracy.numpy(), [validation_accuracy(rows[i]) for i in (5, 3, 250)],
                               rtol=1e-6)
    everything = Nb101Dataset(path, split=None)
    for key in dataset.graphs:
        assert torch.equal(dataset.graphs[key], everything.graphs[key][[5, 3, 250]])
    assert len(Nb101Dataset(path, "172", split_path)) == 150


def test_all_needs_no_split_file(graph_rows, tmp_path):
    path, rows = graph_rows
    assert len(Nb101Dataset(path, "all", str(tmp_path / "absent.npz"))) == len(rows)


def test_unknown_split_lists_the_available_names(graph_rows, tmp_path):
    path, _ = graph_rows
    split_path = write_split_file(tmp_path / "train.npz", path, {"172": np.arange(10), "denoise-91": np.arange(5)})
    with pytest.raises(nasbench_data.DataError, match=r"unknown split '860'.*172, denoise-91"):
        Nb101Dataset(path, "860", split_path)


def test_split_file_of_other_data_is_refused(graph_rows, labels_20k_path, tmp_path):
    path, _ = graph_rows
    other = convert_rows(read_rows(labels_20k_path, limit=50), tmp_path, "other.hdf5")
    split_path = write_split_file(tmp_path / "train.npz", other, {"172": np.arange(10)})
    with pytest.raises(nasbench_data.DataError, match="not made from this HDF5"):
        Nb101Dataset(path, "172", split_path)


def test_split_indices_out_of_range_are_refused(graph_rows, tmp_path):
    path, _ = graph_rows
    split_path = write_split_file(tmp_path / "train.npz", path, {"172": np.array([0, 300])})
    with pytest.raises(nasbench_data.DataError, match="outside 0..299"):
        Nb101Dataset(path, "172", split_path)


def test_missing_files_name_the_command_that_makes_them(graph_rows, tmp_path):
    path, _ = graph_rows
    with pytest.raises(nasbench_data.DataError, match="nasbench_tfrecord_converter.py"):
        Nb101Dataset(str(tmp_path / "absent.hdf5"))
    with pytest.raises(nasbench_data.DataError, match="split_train_val.py"):
        Nb101Dataset(path, "172", str(tmp_path / "absent.npz"))


def test_batches_by_tensor_indexing_equal_collated_items(graph_rows):
    dataset = Nb101Dataset(graph_rows[0], split=None)
    index = torch.tensor([7, 0, 42, 299])
    collated = torch.utils.data.default_collate([dataset[i] for i in index.tolist()])
    batch = dataset.batch(index)
    assert collated.keys() == batch.keys()
    for key in batch:
        assert torch.equal(collated[key], batch[key])
