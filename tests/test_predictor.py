"""predictor.NeuralPredictor: fit / predict / save / load on real NAS-Bench-101 cells, predict.py, the examples."""
import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import engine
import predict
from dataset import graph_tensors
from nb101 import api, nasbench_data, search_space
from predictor import CheckpointError, NeuralPredictor, cell_arrays

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def sample(hdf5_20k):
    """The first 240 cells of the 20k sample as arrays, their hashes and labels."""
    data = nasbench_data.read_hdf5(hdf5_20k)
    rows = np.arange(240)
    cells = {key: data[key][rows] for key in ("adjacency", "operations", "num_vertices")}
    return cells, data["hash"][rows].astype(str).tolist(), nasbench_data.validation_labels(data["metrics"])[rows]


def quick(recipe="faithful", predictor="gcn", **options):
    return NeuralPredictor(recipe, predictor, epochs=options.pop("epochs", 3), **options)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("propagation", ["faithful", "uniform"])
@pytest.mark.parametrize("name", ["gcn", "mlp", "cnn", "transformer"])
def test_save_and_load_round_trip_bit_for_bit(sample, tmp_path, name, propagation, device):
    cells, hashes, labels = sample
    fitted = quick(predictor=name, propagation=propagation, ensemble=2, device=device, augment=name != "gcn",
                   layers=2 if propagation == "uniform" else 3).fit(cells, labels)
    before = fitted.predict_each(hashes[:200])
    path = tmp_path / "model.pt"
    fitted.save(path)
    loaded = NeuralPredictor.load(path, device=device)
    assert loaded.recipe == fitted.recipe and loaded.recipe.propagation == propagation
    assert loaded.recipe.augment == (name != "gcn")
    assert loaded.predictor == name and loaded.model_.num_models == 2
    if name == "gcn":
        assert loaded.model_.num_layers == fitted.recipe.layers
    np.testing.assert_array_equal(loaded.predict_each(hashes[:200]), before)
    np.testing.assert_array_equal(loaded.predict(hashes[:200]), fitted.predict(hashes[:200]))


def test_the_propagation_rule_travels_with_the_model(sample, tmp_path):
    """A uniform-rule model predicts with uniform-rule inputs; the same weights fed faithful-rule tensors would
    predict otherwise, so the rule must be (and is) the checkpoint's, not the caller's."""
    cells, hashes, labels = sample
    fitted = quick("improved", epochs=20).fit(cells, labels)  # the improved recipe's uniform rule
    fitted.save(tmp_path / "uniform.pt")
    loaded = NeuralPredictor.load(tmp_path / "uniform.pt")
    raw = {rule: engine.predict(loaded.model_, graph_tensors(cells["adjacency"], cells["operations"],
                                                             cells["num_vertices"], propagation=rule))
           for rule in ("uniform", "faithful")}
    predicted = loaded.predict(cells)
    np.testing.assert_array_equal(predicted, loaded._denormalise(raw["uniform"].mean(0)))
    assert np.abs(predicted - loaded._denormalise(raw["faithful"].mean(0))).max() > 1e-3


def test_every_form_of_a_cell_predicts_the_same(sample, space):
    cells, hashes, labels = sample
    fitted = quick().fit(cells, labels)
    n = cells["num_vertices"]
    ops = [search_space.codes_to_ops(cells["operations"][i, :n[i]]) for i in range(20)]
    pairs = [(cells["adjacency"][i, :n[i], :n[i]].tolist(), ops[i]) for i in range(20)]
    specs = [api.ModelSpec(*pair) for pair in pairs]
    by_array = fitted.predict({key: value[:20] for key, value in cells.items()})
    for form in (pairs, specs, hashes[:20]):
        np.testing.assert_array_equal(fitted.predict(form), by_array)
    # an extraneous vertex is pruned away as the official API prunes it
    i = int(np.argmax(n[:20] < 7))
    matrix, names = np.array(pairs[i][0]), pairs[i][1]
    k = len(names)
    padded = np.zeros((k + 1, k + 1), dtype=int)
    padded[:k - 1, :k - 1] = matrix[:k - 1, :k - 1]
    padded[:k - 1, k] = matrix[:k - 1, k - 1]
    padded[0, k - 1] = 1  # vertex k-1 hangs off the input and reaches nothing
    extra = (padded, names[:-1] + ["maxpool3x3", "output"])
    np.testing.assert_array_equal(fitted.predict([extra]), by_array[i:i + 1])


def test_label_rules_apply_inside_fit(sample):
    cells, _, labels = sample
    blown = labels.copy()
    blown[:5] = 0.1  # blown runs: the label becomes the normalisation constant
    with_constant = labels.copy()
    with_constant[:5] = nasbench_data.LABEL_MEAN
    a = quick(epochs=2).fit(cells, blown).predict(cells)
    b = quick(epochs=2).fit(cells, with_constant).predict(cells)
    np.testing.assert_array_equal(a, b)
    runs = np.stack([blown, labels, labels], axis=1)  # run 0 blown for five cells: their run 1 is the label
    c = quick(epochs=2).fit(cells, runs).predict(cells)
    d = quick(epochs=2).fit(cells, labels).predict(cells)
    np.testing.assert_array_equal(c, d)


def test_the_default_is_the_faithful_recipe_of_train_py(labels_hdf5, tmp_path):
    """train.py fits through NeuralPredictor and saves it: model.pt reproduces results.json's metrics."""
    import train
    path, splits = labels_hdf5
    out = tmp_path / "run"
    assert train.main(["--data", path, "--splits", str(splits), "--train_split", "40", "--eval_split", "300",
                       "--epochs", "5", "--quiet", "--output_dir", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    loaded = NeuralPredictor.load(out / "model.pt")
    assert loaded.recipe == NeuralPredictor("faithful", epochs=5).recipe
    code = predict.main(["--checkpoint", str(out / "model.pt"), "--data", path, "--splits", str(splits),
                         "--split", "300", "--output", str(tmp_path / "p.csv"), "--quiet"])
    assert code == 0
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    predicted = np.array([float(r["predicted_accuracy"]) for r in rows])
    true = np.array([float(r["true_accuracy"]) for r in rows])
    assert (np.diff(predicted) <= 0).all() and len(rows) == 300
    assert 10000 * np.mean((predicted - true) ** 2) == pytest.approx(results["metrics"]["eval"]["mse"], rel=1e-4)


@pytest.mark.parametrize("cell, message", [
    ((np.eye(8, k=1, dtype=int), ["input"] + ["conv3x3-bn-relu"] * 6 + ["output"]), "8 vertices after pruning"),
    ((np.triu(np.ones((7, 7), dtype=int), 1), ["input"] + ["conv3x3-bn-relu"] * 5 + ["output"]), "edges"),
    (([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv5x5", "output"]), "unknown operation"),
    (([[0, 1, 0], [0, 0, 0], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"]), "input does not reach output"),
    ("f" * 32, "not the hash of a NAS-Bench-101 cell"),
    (42, "expected an nb101.api.ModelSpec"),
])
def test_cells_outside_the_space_are_refused(cell, message):
    with pytest.raises(ValueError, match=message):
        cell_arrays([cell])


def test_bad_accuracies_and_misuse(sample):
    cells, _, labels = sample
    with pytest.raises(ValueError, match="percentage"):
        quick().fit(cells, 100 * labels)
    with pytest.raises(ValueError, match="for the 240 cells"):
        quick().fit(cells, labels[:10])
    with pytest.raises(ValueError, match="not fitted"):
        quick().predict(cells)
    with pytest.raises(ValueError, match="unknown field"):
        NeuralPredictor("faithful", epoch=3)
    with pytest.raises(ValueError, match="recipe 'fastest'"):
        NeuralPredictor("fastest")


def test_damaged_foreign_and_other_version_checkpoints(sample, tmp_path):
    cells, _, labels = sample
    path = tmp_path / "model.pt"
    quick(epochs=1).fit(cells, labels).save(path)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        NeuralPredictor.load(tmp_path / "missing.pt")
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="damaged"):
        NeuralPredictor.load(tmp_path / "cut.pt")
    torch.save({"something": 1}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a Neural Predictor checkpoint"):
        NeuralPredictor.load(tmp_path / "foreign.pt")
    state = torch.load(path, weights_only=True)
    torch.save(dict(state, format_version=99), tmp_path / "v99.pt")
    with pytest.raises(CheckpointError, match="format version 99"):
        NeuralPredictor.load(tmp_path / "v99.pt")
    torch.save(dict(state, recipe=dict(state["recipe"], hidden=7)), tmp_path / "sizes.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        NeuralPredictor.load(tmp_path / "sizes.pt")


def test_predict_py_refuses_bad_input_and_writes_nothing(sample, labels_hdf5, tmp_path, capsys):
    cells, _, labels = sample
    path, splits = labels_hdf5
    checkpoint = tmp_path / "model.pt"
    quick(epochs=1).fit(cells, labels).save(checkpoint)
    (tmp_path / "cut.pt").write_bytes(checkpoint.read_bytes()[:500])
    (tmp_path / "bad.jsonl").write_text('{"module_adjacency": [[0, 1], [0, 0]], "module_operations": ["input"]}\n')
    (tmp_path / "deep.jsonl").write_text("[" * 100000 + "]" * 100000 + "\n")
    output = tmp_path / "out.csv"
    cases = [
        ["--checkpoint", str(tmp_path / "missing.pt"), "--space"],
        ["--checkpoint", str(tmp_path / "cut.pt"), "--space"],
        ["--checkpoint", str(checkpoint), "--cells", str(tmp_path / "bad.jsonl")],
        ["--checkpoint", str(checkpoint), "--cells", str(tmp_path / "deep.jsonl")],
        ["--checkpoint", str(checkpoint), "--cells", str(tmp_path / "absent.jsonl")],
        ["--checkpoint", str(checkpoint), "--data", path, "--splits", str(splits), "--split", "no-such-split"],
    ]
    for case in cases:
        assert predict.main(case + ["--output", str(output), "--quiet"]) == 2, case
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err
        assert not output.exists() and not list(tmp_path.glob("out.csv*"))


def test_predict_py_on_cells_and_top_k(sample, tmp_path, capsys):
    cells, hashes, labels = sample
    checkpoint = tmp_path / "model.pt"
    fitted = quick(epochs=1).fit(cells, labels)
    fitted.save(checkpoint)
    lines = [json.dumps(hashes[0]), json.dumps({"hash": hashes[1]}),
             json.dumps({"matrix": cells["adjacency"][2, :cells["num_vertices"][2], :cells["num_vertices"][2]].tolist(),
                         "ops": search_space.codes_to_ops(cells["operations"][2, :cells["num_vertices"][2]])})]
    (tmp_path / "cells.jsonl").write_text("\n".join(lines) + "\n")
    assert predict.main(["--checkpoint", str(checkpoint), "--cells", str(tmp_path / "cells.jsonl"), "--top", "2",
                         "--data", str(tmp_path / "none.hdf5"), "--output", str(tmp_path / "p.csv"), "--quiet"]) == 0
    rows = list(csv.DictReader(open(tmp_path / "p.csv")))
    expected = fitted.predict(hashes[:3])
    assert [r["hash"] for r in rows] == [hashes[i] for i in np.argsort(-expected)[:2]]
    assert [float(r["predicted_accuracy"]) for r in rows] == pytest.approx(np.sort(expected)[::-1][:2], abs=1e-6)
    assert rows[0]["true_accuracy"] == ""


@pytest.mark.slow
@pytest.mark.parametrize("example", ["search_loop.py", "save_and_load.py"])
def test_examples_run(hdf5_20k, example, tmp_path):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", example), hdf5_20k], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    assert ("identical, bit for bit" in out) if example == "save_and_load.py" else ("budget spent" in out)
