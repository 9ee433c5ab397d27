"""Tests of crossval.py on architectures of ../shared/nb101/labels_20k.jsonl."""
import json

import numpy as np
import pytest
import torch

import crossval
from nb101 import nasbench_data
from dataset import graph_tensors, normalise_accuracy, training_rows
from tools import split_train_val
import engine

FAST = dict(hidden=8, epochs=2, wd=1e-3, batch_size=10, device="cpu")


@pytest.fixture(scope="module")
def data_20k(hdf5_20k):
    data = nasbench_data.read_hdf5(hdf5_20k)
    return data, nasbench_data.validation_labels(data["metrics"])


def graphs_of(data, rows):
    return graph_tensors(data["adjacency"][rows], data["operations"][rows], data["num_vertices"][rows])


def test_grid_folds_are_disjoint_complete_and_trained_on_the_rest(data_20k, monkeypatch):
    data, labels = data_20k
    rows = np.arange(47)
    fits = []
    original_fit = engine.fit

    def recording_fit(graphs, train_sets, **kwargs):
        fits.append(([r.tolist() for r, _ in train_sets], kwargs["lr"]))
        return original_fit(graphs, train_sets, **kwargs)

    monkeypatch.setattr(engine, "fit", recording_fit)
    results = crossval.cross_validate_grid(graphs_of(data, rows), labels[rows], 5, [1e-3, 3e-3], seed=0, **FAST)
    (sets, lrs), = fits
    assert lrs == [1e-3] * 5 + [3e-3] * 5, "one batched fit: every fold for every learning rate"
    validation = [sorted(set(range(47)) - set(s)) for s in sets[:5]]
    assert sorted(sum(validation, [])) == list(range(47)), "folds are disjoint and cover every architecture"
    assert max(map(len, validation)) - min(map(len, validation)) <= 1
    assert sets[5:] == sets[:5], "each learning rate sees the same folds"
    assert [r["lr"] for r in results] == [1e-3, 3e-3]
    assert all(sum(fold["count"] for fold in r["per_fold"]) == 47 for r in results)


def test_single_learning_rate_matches_train_cross_validate(data_20k):
    data, labels = data_20k
    rows = np.arange(100, 160)
    graphs = graphs_of(data, rows)
    result, = crossval.cross_validate_grid(graphs, labels[rows], 3, [2e-3], seed=4, **FAST)
    accuracy = torch.as_tensor(labels[rows])
    reference = engine.cross_validate(graphs, normalise_accuracy(accuracy).float(), accuracy, 3, 4, lr=2e-3, **FAST)
    for key in ("mse", "kendall_tau"):
        assert result[key]["mean"] == pytest.approx(reference[key]["mean"], rel=1e-5)
        assert result[key]["std"] == pytest.approx(reference[key]["std"], rel=1e-4)


def test_training_rows_use_the_split_file_else_a_seeded_draw(data_20k, tmp_path):
    data, labels = data_20k
    splits_path = str(tmp_path / "splits.npz")
    split_train_val.write_splits(splits_path, split_train_val.make_splits(labels, nasbench_data.first_run_accuracy(data["metrics"])), data["hash"])
    rows, source = training_rows(labels, data["hash"], 172, splits_path, seed=0)
    with np.load(splits_path) as splits:
        assert np.array_equal(rows, splits["172"]) and source == "split 172"
    drawn, source = training_rows(labels, data["hash"], 43, splits_path, seed=0)
    again, _ = training_rows(labels, data["hash"], 43, splits_path, seed=0)
    with pytest.raises(nasbench_data.DataError, match="split file .*absent.npz not found"):
        training_rows(labels, data["hash"], 43, str(tmp_path / "absent.npz"), seed=0)
    other, _ = training_rows(labels, data["hash"], 43, splits_path, seed=1)
    assert source.startswith("random") and np.array_equal(drawn, again) and not np.array_equal(drawn, other)
    assert len(np.unique(drawn)) == 43 and np.isfinite(labels[drawn]).all()
    with pytest.raises(nasbench_data.DataError, match="exceeds"):
        training_rows(labels, data["hash"], 30000, splits_path, seed=0)


def test_best_config_by_lowest_mse_or_highest_pooled_tau():
    grid = [{"propagation": "faithful", "loss": "mse", "hidden": h, "layers": 3, "epochs": 100, "lr": 1e-4,
             "ensemble": 1, "pretrain": 0, "augment": False, "mse": {"mean": m, "std": 0.1},
             "kendall_tau": {"mean": 0.0, "std": 0.01}, "pooled_tau": tau}
            for h, m, tau in ((48, 3.0, 0.6), (144, 2.5, 0.5), (320, 2.7, 0.4))]
    assert crossval.best_config(grid)["hidden"] == 144
    assert crossval.best_config(grid, "highest Kendall tau")["hidden"] == 48
    table = crossval.markdown({172: {"source": "split 172", "grid": grid}}, folds=5)
    assert "| 172 | split 172 | lowest MSE | 144 | faithful | mse | 144 | 3 | 100 | 0.0001 | 1 | 0 | off | 2.500 ± 0.100 | 0.500 |" \
        in table
    assert ("| 172 | split 172 | highest Kendall tau | 144 | faithful | mse | 48 | 3 | 100 | 0.0001 | 1 | 0 | off | 3.000 ± 0.100 "
            "| 0.600 |" in table)


def test_pooled_tau_is_the_tau_of_all_out_of_fold_predictions(data_20k, monkeypatch):
    data, labels = data_20k
    rows = np.arange(200, 260)
    captured = {}
    original_predict = engine.predict

    def recording_predict(model, graphs, **kwargs):
        captured["output"] = original_predict(model, graphs, **kwargs)
        return captured["output"]

    monkeypatch.setattr(engine, "predict", recording_predict)
    result, = crossval.cross_validate_grid(graphs_of(data, rows), labels[rows], 3, [1e-3], seed=2, ensemble=2, **FAST)
    folds = engine.kfold_positions(60, 3, 2)
    output = captured["output"].view(3, 2, 60).mean(1)  # fold k's two ensemble members, averaged
    out_of_fold = torch.empty(60)
    for k, fold in enumerate(folds):
        out_of_fold[fold] = output[k, fold]
    from scipy import stats
    assert result["pooled_tau"] == pytest.approx(stats.kendalltau(out_of_fold.numpy(), labels[rows])[0], rel=1e-6)


def test_cli_writes_the_table_and_refuses_bad_input(labels_hdf5, tmp_path, capsys):
    hdf5_20k, splits = labels_hdf5
    out = tmp_path / "cv"
    code = crossval.main(["--data", hdf5_20k, "--splits", splits, "--sizes", "40",
                          "--folds", "3", "--hidden", "8", "--layers", "2", "4", "--epochs", "2", "--lrs", "1e-3",
                          "2e-3", "--losses", "mse+pairwise-bce", "--output_dir", str(out), "--quiet"])
    assert code == 0
    saved = json.loads((out / "crossval.json").read_text())
    grid = saved["sizes"]["40"]["grid"]
    assert len(grid) == 4 and sorted({entry["layers"] for entry in grid}) == [2, 4]
    by_layers = {entry["layers"]: entry["pooled_tau"] for entry in grid if entry["lr"] == 1e-3}
    assert by_layers[2] != by_layers[4]  # different models, not one trained twice
    assert "| 40 | split 40 | lowest MSE | - | faithful | mse+pairwise-bce | 8 |" in (out / "crossval.md").read_text()
    assert crossval.main(["--data", str(tmp_path / "absent.hdf5"), "--output_dir", str(tmp_path / "x")]) == 2
    assert "nasbench_tfrecord_converter" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        crossval.main(["--data", hdf5_20k, "--sizes", "12", "--folds", "5"])
    with pytest.raises(SystemExit) as refused:  # sizes of the GCN's that another predictor would ignore
        crossval.parse_args(["--predictor", "transformer", "--hidden", "48", "144"])
    assert refused.value.code == 2 and "--predictor transformer keeps its own sizes" in capsys.readouterr().err
    assert crossval.parse_args(["--predictor", "transformer"]).hidden == [144]
