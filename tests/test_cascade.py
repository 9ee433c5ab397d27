"""Tests of cascade.py: the classifier's filtering, on small HDF5 files cut from ../shared/nb101/labels_20k.jsonl."""
import json

import numpy as np
import pytest
import torch

import cascade
from nb101 import nasbench_data
from dataset import Nb101Dataset, denormalise_accuracy, normalise_accuracy
import engine
import search_methods

FIT_OPTIONS = dict(hidden=16, epochs=3, lr=1e-3, wd=1e-3, batch_size=10, dropout=0.1, loss="mse", seed=0,
                   device="cpu")


def write_rows(source, path, rows):
    """An HDF5 holding `rows` of the HDF5 at `source`."""
    data = nasbench_data.read_hdf5(source)
    nasbench_data.write_hdf5(path, **{("hashes" if k == "hash" else k): v[rows] for k, v in data.items()})
    return path


@pytest.fixture(scope="module")
def small_sets(hdf5_20k, tmp_path_factory):
    """A 120-architecture training set and a disjoint 600-architecture evaluation set."""
    folder = tmp_path_factory.mktemp("cascade")
    train_path = write_rows(hdf5_20k, str(folder / "train.hdf5"), np.arange(120))
    eval_path = write_rows(hdf5_20k, str(folder / "eval.hdf5"), np.arange(1000, 1600))
    return Nb101Dataset(train_path, "all"), Nb101Dataset(eval_path, "all"), train_path


def test_passed_positions_keep_what_the_classifier_passes():
    logits = np.array([-1.0, 2.0, 0.5, -3.0, 0.0])
    assert list(engine.passed_positions(logits, batch_size=2)) == [1, 2]
    assert list(engine.passed_positions(logits, batch_size=3)) == [1, 2, 4], "too few pass: the top logits"


def test_regressor_sets_hold_exactly_the_passed_rows():
    rows = np.array([10, 11, 12, 13, 14, 15])
    accuracy = np.array([0.93, 0.85, 0.92, 0.91, 0.95, 0.80])
    logits = np.array([0.3, -0.2, 1.5, -4.0, 0.1, 2.0])
    (kept, target), = engine.regressor_sets([(rows, accuracy)], [logits], batch_size=2)
    assert kept.tolist() == [10, 12, 14, 15]
    assert torch.allclose(target, normalise_accuracy(torch.tensor([0.93, 0.92, 0.95, 0.80])).float())


def test_cascade_ranks_only_passed_architectures_by_regression():
    logits = np.array([[2.0, -1.0, 0.5, -0.2, 3.0]])
    regression = np.array([[0.1, 9.0, 0.7, 5.0, -1.0]])
    scores, passed = engine.cascade_scores(logits, regression)
    assert passed.tolist() == [[True, False, True, False, True]]
    order = search_methods.rank_unqueried(scores, np.array([[2]]), 4, passed)
    assert order.tolist() == [[0, 4, 3, 1]], "passed by regression first, then the rest by classifier logit"


def test_classifier_metrics_against_a_hand_count():
    logits = np.array([1.0, 1.0, -1.0, -1.0, 1.0])
    accuracy = np.array([0.95, 0.90, 0.92, 0.80, 0.911])
    metrics = engine.classifier_metrics(logits, accuracy)
    # passed {0, 1, 4}, good {0, 2, 4}: 2 true positives, 1 false positive, 1 false negative, 1 true negative
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["precision"] == pytest.approx(2 / 3) and metrics["recall"] == pytest.approx(2 / 3)


def test_metrics_where_selects_and_handles_empty_selections():
    predicted, accuracy = np.array([0.90, 0.92, 0.95, 0.80]), np.array([0.91, 0.93, 0.94, 0.60])
    selected = np.array([True, True, True, False])
    metrics = engine.metrics_where(predicted, accuracy, selected)
    assert metrics["count"] == 3 and metrics["mse"] == pytest.approx(1.0) and metrics["kendall_tau"] == 1.0
    empty = engine.metrics_where(predicted, accuracy, np.zeros(4, dtype=bool))
    assert empty["count"] == 0 and np.isnan(empty["mse"]) and np.isnan(empty["kendall_tau"])


def test_run_cascade_regresses_what_the_classifier_passes(small_sets, monkeypatch):
    train_set, eval_set, _ = small_sets
    fits = []
    original_fit = engine.fit

    def recording_fit(graphs, train_sets, **kwargs):
        model = original_fit(graphs, train_sets, **kwargs)
        fits.append((kwargs["loss"], kwargs["lr"], [rows.tolist() for rows, _ in train_sets], model))
        return model

    monkeypatch.setattr(engine, "fit", recording_fit)
    metrics = engine.run_cascade(train_set, eval_set, FIT_OPTIONS, classifier_lr=2e-3)
    (bce, classifier_lr, _, classifier), (mse, lr, regressor_rows, regressor) = fits
    assert (bce, classifier_lr, mse, lr) == ("bce", 2e-3, "mse", 1e-3)
    train_logits = engine.predict(classifier, train_set.graphs)[0].numpy()
    accuracy = train_set.accuracy.numpy()
    expected = np.flatnonzero(train_logits > 0)
    if len(expected) < 10:
        expected = np.sort(np.argsort(-train_logits)[:10])
    assert regressor_rows[0] == expected.tolist(), "the regressor trains on what the classifier passes"
    assert regressor_rows[1] == np.flatnonzero(accuracy > 0.91).tolist(), "the oracle filter (91-N)"
    assert metrics["train_passed"] == len(expected)

    eval_logits = engine.predict(classifier, eval_set.graphs)[0].numpy()
    truth = eval_set.accuracy.numpy()
    predicted = denormalise_accuracy(engine.predict(regressor, eval_set.graphs)).double().numpy()
    passed, good = eval_logits > 0, truth > 0.91
    assert metrics["classifier"]["passed"] == passed.sum() and metrics["classifier"]["positives"] == good.sum()
    assert metrics["cascade_on_passed"]["count"] == passed.sum()
    if passed.any():
        mse = np.mean((100 * (predicted[0, passed] - truth[passed])) ** 2)
        assert metrics["cascade_on_passed"]["mse"] == pytest.approx(mse)
    oracle_mse = np.mean((100 * (predicted[1, good] - truth[good])) ** 2)
    assert metrics["oracle_filter_on_denoise_91"]["mse"] == pytest.approx(oracle_mse)


def test_neural_predictor_with_cascade_spends_exactly_its_budget(nasbench_20k, run_method):
    fit_options = dict(hidden=8, epochs=2, lr=1e-3, wd=1e-3, batch_size=10, dropout=0.1, seed=0, device="cpu")
    oracle, _ = run_method("predictor", nasbench_20k, runs=2, budget=40, num_train=30, fit_options=fit_options,
                           use_cascade=True)
    assert (oracle.count == 40).all()
    assert all(len(set(r)) == 40 for r in oracle.rows.tolist())


def test_cli_writes_results_and_refuses_missing_data(small_sets, tmp_path, capsys):
    _, _, train_path = small_sets
    out = tmp_path / "cascade"
    flags = ["--gcn_hidden", "8", "--epochs", "2", "--lr", "1e-3", "--output_dir", str(out), "--quiet"]
    assert cascade.main(["--data", train_path, "--train_split", "all", "--eval_split", "all"] + flags) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["cascade"]["classifier"]["count"] == 120
    missing = tmp_path / "missing"
    assert cascade.main(["--data", str(tmp_path / "absent.hdf5"), "--output_dir", str(missing)]) == 2
    assert "nasbench_tfrecord_converter" in capsys.readouterr().err and not missing.exists()
