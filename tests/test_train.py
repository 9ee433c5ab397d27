"""Tests of engine.py and train.py: fit against torch's Adam, stacks against single fits, cross-validation,
metrics, a real training on labels_20k.jsonl, determinism, and the command line with its error paths."""
import json

import numpy as np
import pytest
import torch
from scipy import stats

from nb101 import nasbench_data
import train
from dataset import Nb101Dataset, denormalise_accuracy
from model import GCN
from predictor_data import write_split_file
from reference_predictor import copy_into_reference, reference_inputs
import cli
import engine
from metrics import inversions, kendall_tau, regression_metrics, spearman_rho


# ---------------------------------------------------------------------------
# optimiser and schedule


def test_cosine_lr_matches_torch_schedule():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 7)
    for epoch in range(7):
        assert engine.cosine_lr(0.3, epoch, 7) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-9)
        optimizer.step()
        scheduler.step()


def test_epoch_positions_shuffle_each_set_and_drop_the_last_batch():
    generators = [torch.Generator().manual_seed(s) for s in (4, 5)]
    positions, active = engine.epoch_positions(generators, [23, 47], batch_size=10, num_steps=4)
    assert positions.shape == (4, 2, 10) and active.tolist() == [[1, 1], [1, 1], [0, 1], [0, 1]]
    expected = [torch.randperm(n, generator=torch.Generator().manual_seed(s)) for s, n in ((4, 23), (5, 47))]
    assert torch.equal(positions[:2, 0].flatten(), expected[0][:20])
    assert torch.equal(positions[:, 1].flatten(), expected[1][:40])


# ---------------------------------------------------------------------------
# fit


def reference_training(graphs, rows, targets, seed, epochs, lr, wd=1e-3, batch_size=10):
    """One model trained with torch.optim.Adam + CosineAnnealingLR on the plain implementation,
    from the same initial weights and in the same batch order as engine.fit (dropout off)."""
    plain = copy_into_reference(GCN(num_models=1, seed=seed, dropout=0.0)).train()
    optimizer = torch.optim.Adam(plain.parameters(), lr=lr, weight_decay=wd)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(rows), generator=generator)
        for b in range(len(rows) // batch_size):
            batch = order[b * batch_size:(b + 1) * batch_size]
            optimizer.zero_grad()
            output = plain(*reference_inputs({key: value[rows[batch]] for key, value in graphs.items()}))
            torch.nn.functional.mse_loss(output, targets[batch]).backward()
            optimizer.step()
        scheduler.step()
    return plain.eval()


def test_fit_follows_torch_adam_and_cosine_annealing(small, float64):
    graphs = {key: value.double() for key, value in small.graphs.items()}
    rows, targets = torch.arange(0, 45), small.target[:45].double()
    model = engine.fit(graphs, [(rows, targets)], epochs=4, lr=3e-3, dropout=0.0, seed=7)
    plain = reference_training(graphs, rows, targets, seed=7, epochs=4, lr=3e-3)
    with torch.no_grad():
        torch.testing.assert_close(engine.predict(model, graphs)[0], plain(*reference_inputs(graphs)), rtol=1e-6,
                                   atol=1e-8)


@pytest.mark.parametrize("copies", [1, 7])  # 3 models: threads inside operations; 21: two worker threads
@pytest.mark.parametrize("dropout", [0.0, 0.1])
def test_batched_fit_equals_single_fits(small, float64, dropout, copies):
    graphs = {key: value.double() for key, value in small.graphs.items()}
    sets = [torch.arange(0, 60), torch.arange(100, 137), torch.arange(50, 250)] * copies  # 6, 3 and 20 batches
    lrs = [1e-3, 3e-3, 2e-3] * copies
    train_sets = [(rows, small.target[rows].double()) for rows in sets]
    with engine.cpu_threads(2, "cpu"):  # two cores, whatever this machine has
        stack = engine.fit(graphs, train_sets, epochs=3, lr=lrs, dropout=dropout, seed=11)
    for m in (0, 1, 2, len(sets) - 1):
        rows, targets = train_sets[m]
        single = engine.fit(graphs, [(rows, targets)], epochs=3, lr=lrs[m], dropout=dropout, seed=11 + m)
        torch.testing.assert_close(stack.vectors()[m], single.vectors()[0], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("num_models, workers", [(1, 1), (3, 2), (25, 2), (100, 2), (7, 4)])
def test_model_chunks_cover_the_stack_once_in_cache_sized_slices(num_models, workers):
    groups = engine.model_chunks(num_models, workers, torch.device("cpu"))
    assert len(groups) == workers
    models = [m for group in groups for chunk in group for m in range(num_models)[chunk]]
    assert sorted(models) == list(range(num_models))
    assert max(chunk.stop - chunk.start for group in groups for chunk in group) <= 10
    sizes = [sum(chunk.stop - chunk.start for chunk in group) for group in groups]
    assert max(sizes) - min(sizes) <= 10  # balanced up to one chunk
    assert engine.model_chunks(num_models, 1, torch.device("cuda")) == [[slice(0, num_models)]]


def test_prediction_in_worker_threads_equals_one_thread(small, capsys):
    model = GCN(num_models=3, seed=4)
    rows = torch.arange(5, len(small.target), 2)
    one = engine.predict(model, small.graphs, rows, batch_size=16, threads=1)
    workers = engine.predict(model, small.graphs, rows, batch_size=16, threads=3, print_freq=2)  # chunks of 16
    assert torch.equal(one, workers)
    with torch.no_grad():  # the plain forward pass, all at once
        torch.testing.assert_close(one, model.eval()({key: value[rows] for key, value in small.graphs.items()}),
                                   rtol=1e-5, atol=1e-6)
    assert f"evaluated 32/{len(rows):,}" in capsys.readouterr().out


def test_fit_refuses_a_set_smaller_than_a_batch(small):
    with pytest.raises(ValueError, match="fewer than one batch"):
        engine.fit(small.graphs, [(torch.arange(9), small.target[:9])], epochs=1)


def test_same_seed_same_numbers(small):
    rows = torch.arange(0, 80)
    runs = [engine.predict(engine.fit(small.graphs, [(rows, small.target[rows])], epochs=3, seed=1), small.graphs)
            for _ in range(2)]
    other = engine.predict(engine.fit(small.graphs, [(rows, small.target[rows])], epochs=3, seed=2), small.graphs)
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], other)


def test_short_real_training_beats_the_mean(labels_hdf5):
    """400 random architectures of labels_20k (no blown runs among them), 40 epochs; judged on 5,000 others."""
    path, _ = labels_hdf5
    data = Nb101Dataset(path, split=None)
    usable = torch.nonzero(data.accuracy > 0.8).flatten()  # blown runs are noise no predictor can learn
    order = usable[torch.randperm(len(usable), generator=torch.Generator().manual_seed(0))]
    rows, held_out = order[:400], order[400:5400]
    model = engine.fit(data.graphs, [(rows, data.target[rows])], epochs=40, lr=1e-3, seed=0)
    predicted = denormalise_accuracy(engine.predict(model, data.graphs, held_out)[0]).double().numpy()
    truth = data.accuracy[held_out].numpy()
    metrics = regression_metrics(predicted, truth)
    mean_mse = np.mean((100 * (data.accuracy[rows].mean().item() - truth)) ** 2)
    assert metrics["mse"] < 0.7 * mean_mse
    assert metrics["kendall_tau"] > 0.35


# ---------------------------------------------------------------------------
# metrics and cross-validation


def test_regression_metrics_against_direct_calculations():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.8, 0.95, 60)
    predicted = truth + rng.normal(0, 0.01, 60)
    metrics = regression_metrics(predicted, truth)
    assert metrics["mse"] == pytest.approx(np.mean((100 * predicted - 100 * truth) ** 2))
    pairs = [(i, j) for i in range(60) for j in range(i)]
    concordant = sum(np.sign(predicted[i] - predicted[j]) == np.sign(truth[i] - truth[j]) for i, j in pairs)
    assert metrics["kendall_tau"] == pytest.approx((2 * concordant - len(pairs)) / len(pairs))
    ranks = [stats.rankdata(x) for x in (predicted, truth)]
    assert metrics["spearman_rho"] == pytest.approx(np.corrcoef(*ranks)[0, 1])
    assert metrics["count"] == 60


def test_folds_are_disjoint_complete_and_seeded():
    folds = engine.kfold_positions(23, 5, seed=3)
    assert sorted(torch.cat(folds).tolist()) == list(range(23))
    assert sorted(len(f) for f in folds) == [4, 4, 5, 5, 5]
    assert all(torch.equal(a, b) for a, b in zip(folds, engine.kfold_positions(23, 5, seed=3)))
    assert not all(torch.equal(a, b) for a, b in zip(folds, engine.kfold_positions(23, 5, seed=4)))
    with pytest.raises(ValueError):
        engine.kfold_positions(3, 5, seed=0)


def test_cross_validation_trains_one_model_per_fold(small, monkeypatch):
    calls = []
    real_fit = engine.fit

    def counting_fit(graphs, train_sets, **kwargs):
        calls.append([len(rows) for rows, _ in train_sets])
        return real_fit(graphs, train_sets, **kwargs)
    monkeypatch.setattr(engine, "fit", counting_fit)
    result = engine.cross_validate(small.graphs, small.target[:100], small.accuracy[:100], 4, seed=0, epochs=2)
    assert calls == [[75, 75, 75, 75]]  # one batched fit, each model without its own fold
    assert [fold["count"] for fold in result["per_fold"]] == [25, 25, 25, 25]
    mses = [fold["mse"] for fold in result["per_fold"]]
    assert result["mse"]["mean"] == pytest.approx(np.mean(mses))
    assert result["mse"]["std"] == pytest.approx(np.std(mses, ddof=1))


# ---------------------------------------------------------------------------
# command line


def test_command_line_end_to_end(labels_hdf5, tmp_path, capsys):
    path, splits = labels_hdf5
    output = tmp_path / "run"
    code = train.main(["--data", path, "--splits", splits, "--train_split", "40", "--eval_split", "300",
                       "--epochs", "2", "--folds", "3", "--visualize", "--quiet", "--output_dir", str(output)])
    assert code == 0
    results = json.loads((output / "results.json").read_text())
    assert results["sizes"] == {"train": 40, "eval": 300, "eval_minus_train": 300}
    assert set(results["metrics"]) == {"eval", "eval_minus_train"}
    assert results["crossval"]["folds"] == 3 and len(results["crossval"]["per_fold"]) == 3
    device = engine.resolve_device("auto")  # --device auto: CUDA where there is one
    assert results["args"]["epochs"] == 2
    assert results["device"] == (str(device) if device.type == "cpu" else torch.cuda.get_device_name(device))
    assert (output / "scatter.png").stat().st_size > 10000
    line = capsys.readouterr().out
    assert "MSE" in line and "tau" in line and "3-fold" in line


def test_command_line_improved_recipe_ensemble_averages_its_models(labels_hdf5, tmp_path, monkeypatch):
    """--recipe improved --ensemble 3: three models (seeds 5, 6, 7) trained with the recipe's settings, and the
    reported predictions are their mean."""
    path, splits = labels_hdf5
    fits, outputs = [], []
    original_fit, original_predict = engine.fit, engine.predict
    monkeypatch.setattr(engine, "fit", lambda graphs, sets, **kw: fits.append(kw) or original_fit(graphs, sets, **kw))
    monkeypatch.setattr(engine, "predict", lambda *a, **kw: outputs.append(original_predict(*a, **kw)) or outputs[-1])
    code = train.main(["--data", path, "--splits", splits, "--train_split", "40", "--eval_split", "300",
                       "--recipe", "improved", "--epochs", "2", "--ensemble", "3", "--seed", "5", "--quiet",
                       "--output_dir", str(tmp_path / "run")])
    assert code == 0
    (options,) = fits
    improved = cli.RECIPES["improved"]
    assert (options["loss"], options["lr"], options["seed"]) == (improved.loss, improved.lr, 5)
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["args"]["propagation"] == "uniform" and results["args"]["recipe"] == "improved"
    truth = Nb101Dataset(path, "300", splits, propagation="uniform").accuracy.numpy()
    mean = denormalise_accuracy(outputs[-1].mean(0)).double().numpy()
    assert outputs[-1].shape[0] == 3
    assert results["metrics"]["eval"]["mse"] == pytest.approx(np.mean((100 * (mean - truth)) ** 2))


def test_command_line_cascade_reports_classifier_and_regressor(labels_hdf5, tmp_path, capsys):
    path, splits = labels_hdf5
    output = tmp_path / "cascade"
    code = train.main(["--data", path, "--splits", splits, "--train_split", "40", "--eval_split", "300",
                       "--epochs", "2", "--cascade", "--quiet", "--output_dir", str(output)])
    assert code == 0
    cascade = json.loads((output / "results.json").read_text())["cascade"]
    assert cascade["classifier"]["count"] == 300
    assert cascade["cascade_on_passed"]["count"] == cascade["classifier"]["passed"]  # only what passes is regressed
    assert "classifier on 300" in capsys.readouterr().out


@pytest.mark.parametrize("arguments, message", [
    (["--data", "{tmp}/absent.hdf5"], "nasbench_tfrecord_converter.py"),
    (["--splits", "{tmp}/absent.npz"], "split_train_val.py"),
    (["--train_split", "860"], "unknown split '860'"),
    (["--train_split", "tiny"], "fewer than one batch"),
    (["--device", "nonsense"], "device"),
])
def test_command_line_errors_exit_2_without_output(labels_hdf5, tmp_path, capsys, arguments, message):
    path, splits = labels_hdf5
    arguments = [a.format(tmp=tmp_path) for a in arguments]
    defaults = ["--data", path, "--splits", splits, "--epochs", "1", "--quiet", "--output_dir", str(tmp_path / "out")]
    assert train.main(defaults + arguments) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for a machine without CUDA")
def test_cuda_request_without_cuda_exits_2(labels_hdf5, tmp_path, capsys):
    path, splits = labels_hdf5
    assert train.main(["--data", path, "--splits", splits, "--device", "cuda", "--quiet",
                       "--output_dir", str(tmp_path)]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_folds_below_two_are_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(["--folds", "1"])
    assert exit_info.value.code == 2 and "--folds" in capsys.readouterr().err


@pytest.mark.parametrize("size", [2, 3, 17, 1000, 20001])
def test_rank_correlations_equal_scipy(size, hdf5_20k):
    """metrics.kendall_tau / spearman_rho against scipy.stats on real labels (many ties: multiples of 1/9984)
    against noisy copies of them, and on arrays with more ties still."""
    labels = nasbench_data.validation_labels(nasbench_data.read_hdf5(hdf5_20k)["metrics"])[:size]
    rng = np.random.default_rng(size)
    for predicted in (labels + rng.normal(0, 0.01, size), np.round(labels + rng.normal(0, 0.01, size), 2)):
        assert kendall_tau(predicted, labels) == pytest.approx(stats.kendalltau(predicted, labels)[0], abs=1e-12)
        assert spearman_rho(predicted, labels) == pytest.approx(stats.spearmanr(predicted, labels)[0],
                                                                      abs=1e-12)


def test_inversions_count_every_decreasing_pair():
    rng = np.random.default_rng(0)
    for size in (0, 1, 2, 5, 33, 200):
        values = rng.integers(0, 7, size)
        expected = sum(values[i] > values[j] for i in range(size) for j in range(i + 1, size))
        assert inversions(values) == expected


@pytest.mark.parametrize("flag, value", [("--lr", "-1"), ("--lr", "nan"), ("--lr", "inf"), ("--wd", "-0.1"),
                                         ("--dropout", "1.5"), ("--dropout", "-0.1"), ("--epochs", "0"),
                                         ("--ensemble", "0"), ("--recipe", "fastest"), ("--loss", "l1")])
def test_recipe_flags_out_of_range_exit_2_naming_the_flag(flag, value, capsys):
    with pytest.raises(SystemExit) as failure:
        train.parse_args([flag, value])
    assert failure.value.code == 2
    assert flag in capsys.readouterr().err


def test_recipe_fills_only_the_flags_not_given():
    args = train.parse_args(["--recipe", "improved", "--lr", "2e-4"])
    improved = cli.RECIPES["improved"]
    assert args.lr == 2e-4 and args.epochs == improved.epochs and args.propagation == improved.propagation
    assert args.loss == improved.loss
    faithful = train.parse_args([])
    assert (faithful.propagation, faithful.loss, faithful.lr, faithful.epochs, faithful.readout_init) == (
        "faithful", "mse", 1e-4, 300, "torch")


def test_degenerate_eval_splits(labels_hdf5, tmp_path, capsys, monkeypatch):
    """An eval split of fewer than 2 architectures, whose Kendall tau cannot be computed, stops before training
    (exit 2), with nothing written."""
    path, _ = labels_hdf5
    splits = write_split_file(tmp_path / "splits.npz", path, {"40": np.arange(40), "one": np.array([7]),
                                                             "none": np.array([], dtype=np.int64)})
    trained = []
    original_fit = engine.fit
    monkeypatch.setattr(engine, "fit", lambda *a, **kw: trained.append(1) or original_fit(*a, **kw))
    common = ["--data", path, "--splits", splits, "--train_split", "40", "--epochs", "1", "--quiet"]
    for split, count in (("none", 0), ("one", 1)):
        assert train.main(common + ["--eval_split", split, "--output_dir", str(tmp_path / split)]) == 2
        assert f"has {count} architecture(s): Kendall tau" in capsys.readouterr().err and not trained
        assert not (tmp_path / split).exists()


@pytest.mark.parametrize("flags", [["--predictor", "mlp"], ["--predictor", "cnn"], ["--backend", "autograd"]])
def test_command_line_trains_every_predictor_and_backend(labels_hdf5, tmp_path, capsys, flags):
    path, splits = labels_hdf5
    out = tmp_path / "run"
    assert train.main(["--data", path, "--splits", splits, "--train_split", "40", "--eval_split", "300",
                       "--epochs", "3", "--output_dir", str(out), "--quiet"] + flags) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["args"]["predictor"] == (flags[1] if flags[0] == "--predictor" else "gcn")
    assert np.isfinite(results["metrics"]["eval"]["mse"])


def test_autograd_backend_reproduces_the_fast_default(labels_hdf5, tmp_path):
    """The same run through both backends: the same numbers up to float32 rounding."""
    path, splits = labels_hdf5
    metrics = []
    for backend in ("fast", "autograd"):
        out = tmp_path / backend
        assert train.main(["--data", path, "--splits", splits, "--train_split", "40", "--eval_split", "300",
                           "--epochs", "20", "--backend", backend, "--output_dir", str(out), "--quiet"]) == 0
        metrics.append(json.loads((out / "results.json").read_text())["metrics"]["eval"])
    assert metrics[0]["mse"] == pytest.approx(metrics[1]["mse"], rel=1e-3)
    assert metrics[0]["kendall_tau"] == pytest.approx(metrics[1]["kendall_tau"], abs=2e-3)


def test_fast_backend_is_refused_for_the_baselines(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(["--predictor", "mlp", "--backend", "fast"])
    assert exit_info.value.code == 2
    assert "--backend fast exists for --predictor gcn only" in capsys.readouterr().err


def test_a_slice_whose_models_all_rest_skips_its_steps_and_trains_the_same(small, float64):
    """20 models, the first 10 of 60 architectures (6 steps an epoch), the last 10 of 200 (20 steps): the first
    slice of the stack rests from step 6 on and is skipped; every model still equals its single fit."""
    graphs = {key: value.double() for key, value in small.graphs.items()}
    sets = [torch.arange(0, 60)] * 10 + [torch.arange(50, 250)] * 10
    train_sets = [(rows, small.target[rows].double()) for rows in sets]
    with engine.cpu_threads(2, "cpu"):
        stack = engine.fit(graphs, train_sets, epochs=2, lr=2e-3, seed=3)
    for m in (0, 9, 10, 19):
        rows, targets = train_sets[m]
        single = engine.fit(graphs, [(rows, targets)], epochs=2, lr=2e-3, seed=3 + m)
        torch.testing.assert_close(stack.vectors()[m], single.vectors()[0], rtol=1e-9, atol=1e-10)


def test_prediction_chunks_default_to_predict_chunk(small, capsys):
    model = GCN(seed=1)
    rows = torch.arange(len(small)).repeat(4)[:engine.PREDICT_CHUNK + 40]  # more graphs than one chunk
    by_default = engine.predict(model, small.graphs, rows, print_freq=1)
    assert f"evaluated {engine.PREDICT_CHUNK:,}/{len(rows):,}" in capsys.readouterr().out
    torch.testing.assert_close(by_default, engine.predict(model, small.graphs, rows, batch_size=256),
                               rtol=1e-6, atol=1e-7)