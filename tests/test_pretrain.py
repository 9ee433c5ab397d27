"""Tests of pretrain.py: the pretext targets, the pre-training, its cache, and fits that start from it."""
import math

import numpy as np
import pytest
import torch

import crossval
import engine
import pretrain
from nb101 import network
from recipes import BEST, Recipe


def _properties_by_loops(adjacency, operations, n):
    """cell_properties of one cell from plain loops over its vertices and edges."""
    edges = [(x, y) for x in range(n) for y in range(n) if adjacency[x][y]]
    longest = {0: 0}
    for y in range(1, n):
        into = [longest[x] + 1 for x, target in edges if target == y and x in longest]
        if into:
            longest[y] = max(into)
    ops = [int(code) for code in operations[1:n - 1]]
    return [math.log(network.trainable_parameters(adjacency[:n, :n], operations[:n])), longest[n - 1],
            ops.count(0), ops.count(1), ops.count(2), len(edges), n]


def test_cell_properties_equal_loops_over_each_cell(space):
    rows = np.random.RandomState(1).choice(len(space), 200, replace=False)
    rows = np.concatenate([rows, np.flatnonzero(space.num_vertices <= 3)])  # the smallest cells too
    computed = pretrain.cell_properties(space.adjacency[rows], space.operations[rows], space.num_vertices[rows])
    expected = [_properties_by_loops(space.adjacency[r], space.operations[r], int(space.num_vertices[r])) for r in rows]
    np.testing.assert_allclose(computed, expected, rtol=1e-12)


@pytest.fixture(scope="module")
def few_cells(space):
    rows = np.random.RandomState(0).choice(len(space), 2048, replace=False)
    return space.adjacency[rows], space.operations[rows], space.num_vertices[rows]


@pytest.mark.slow
def test_pretraining_learns_the_properties_and_repeats_itself(few_cells, monkeypatch):
    monkeypatch.setattr(pretrain, "BATCH_SIZE", 32)  # steps enough to learn on 2,048 cells
    weights, losses = pretrain.pretrain_gcn(*few_cells, hidden=16, layers=2, epochs=4)
    assert losses.shape == (4, len(pretrain.PROPERTIES))
    # standardised targets: predicting 0 scores 1; the operation counts are the first learned
    assert losses[-1].mean() < 0.7 * losses[0].mean() and losses[-1][2:5].max() < 0.3
    assert [tuple(w.shape) for w in weights] == [(2, 5, 16), (2, 16, 16), (16, 128)]
    again, _ = pretrain.pretrain_gcn(*few_cells, hidden=16, layers=2, epochs=4)
    for a, b in zip(weights, again):
        assert torch.equal(a, b)


def test_cache_is_read_back_and_rebuilt_when_altered(small_pretraining):
    first = pretrain.pretrained_weights("uniform", hidden=8, layers=2, epochs=1)
    second = pretrain.pretrained_weights("uniform", hidden=8, layers=2, epochs=1)
    assert len(small_pretraining) == 1 and all(torch.equal(a, b) for a, b in zip(first, second))
    path = pretrain.cache_path(pretrain.settings_of("uniform", 8, 2, 1))
    saved = torch.load(path, weights_only=True)
    saved["weights"][0][0, 0, 0] += 1.0  # a weight changed after it was written
    torch.save(saved, path)
    third = pretrain.pretrained_weights("uniform", hidden=8, layers=2, epochs=1)
    assert len(small_pretraining) == 2 and all(torch.equal(a, b) for a, b in zip(first, third))
    with open(path, "wb") as f:
        f.write(b"not a torch file")
    pretrain.pretrained_weights("uniform", hidden=8, layers=2, epochs=1)
    assert len(small_pretraining) == 3
    pretrain.pretrained_weights("faithful", hidden=8, layers=2, epochs=1)  # other settings: their own file
    assert len(small_pretraining) == 4


def test_fit_starts_every_model_from_the_pretrained_layers(small, small_pretraining):
    weights = pretrain.pretrained_weights("uniform", hidden=8, layers=2, epochs=1)
    rows = torch.arange(40)
    sets = [(rows, small.target[rows])] * 3
    model = engine.fit(small.graphs, sets, hidden=8, layers=2, epochs=1, lr=1e-9, wd=0.0, pretrain=1,
                       propagation="uniform", seed=0)
    for parameter, weight in zip(model.layers, weights):
        for m in range(3):
            torch.testing.assert_close(parameter[m].detach(), weight, atol=1e-6, rtol=0)
    last = model.layers[-1].detach()
    assert not torch.equal(last[0], last[1])  # each model's last layer is its own seed's
    assert len(small_pretraining) == 1


def test_start_from_refuses_weights_of_another_size():
    from model import GCN
    with pytest.raises(ValueError, match="does not fit"):
        pretrain.start_from(GCN(hidden=8, num_layers=2), [torch.zeros(2, 5, 16)])


def test_pretraining_is_the_gcns_only(small, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise AssertionError("pre-trained a GCN for another predictor")
    monkeypatch.setattr(pretrain, "pretrained_weights", refuse)
    rows = torch.arange(40)
    engine.fit(small.graphs, [(rows, small.target[rows])], predictor="mlp", epochs=1, pretrain=5)  # as hidden: ignored
    import train
    for parse in (crossval.parse_args, train.parse_args):
        with pytest.raises(SystemExit) as exit_info:
            parse(["--predictor", "mlp", "--pretrain", "5"])
        assert exit_info.value.code == 2
        assert "--pretrain" in capsys.readouterr().err


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_recipe_refuses_a_bad_pretrain(value):
    with pytest.raises(ValueError, match="pretrain"):
        Recipe(pretrain=value)
    assert BEST.fit_options()["pretrain"] == BEST.pretrain


def test_command_line_builds_the_cache_the_fits_read(small_pretraining, capsys):
    assert pretrain.main(["--gcn_hidden", "8", "--gcn_layers", "2", "--epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in pretrain.PROPERTIES) and "wrote" in out
    pretrain.pretrained_weights("uniform", hidden=8, layers=2, epochs=1)
    assert len(small_pretraining) == 1  # read from the file the command wrote


def test_command_line_reports_an_unwritable_cache_in_one_line(small_pretraining, monkeypatch, tmp_path, capsys):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(pretrain, "cache_dir", lambda: str(blocker / "cache"))
    assert pretrain.main(["--gcn_hidden", "8", "--gcn_layers", "2", "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err


def test_pretraining_leaves_torchs_global_generator_alone(few_cells):
    """A fit that pre-trains on its first use must draw afterwards as it would have without it."""
    state = torch.get_rng_state()
    pretrain.pretrain_gcn(*(part[:512] for part in few_cells), hidden=8, layers=2, epochs=1)
    assert torch.equal(torch.get_rng_state(), state)
