"""The CUDA path against the CPU path: batched training, fast inference, the command line and search.

Skipped (not failed, also under CI=true) on a machine without a CUDA device, which CI is.
"""
import json

import numpy as np
import pytest
import torch

import engine
import search
import train
from dataset import Nb101Dataset

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
CUDA = torch.device("cuda")


def test_batched_fit_on_cuda_equals_cpu(small, float64):
    graphs = {key: value.double() for key, value in small.graphs.items()}
    sets = [torch.arange(0, 60), torch.arange(100, 137), torch.arange(50, 250)]
    train_sets = [(rows, small.target[rows].double()) for rows in sets]
    options = dict(epochs=3, lr=[1e-3, 3e-3, 2e-3], dropout=0.0, seed=11)
    on_cpu = engine.fit(graphs, train_sets, **options)
    on_cuda = engine.fit(graphs, train_sets, device=CUDA, **options)
    assert on_cuda.device.type == "cuda"
    # the fused Adam kernels of the two devices round differently (seen: 4e-12 relative in float64)
    torch.testing.assert_close(on_cuda.vectors().cpu(), on_cpu.vectors(), rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(engine.predict(on_cuda, graphs), engine.predict(on_cpu, graphs), rtol=1e-9, atol=1e-12)


def test_prediction_on_cuda_equals_cpu(small):
    rows = torch.arange(0, 100)
    model = engine.fit(small.graphs, [(rows, small.target[rows])] * 2, epochs=2, seed=3)
    expected = engine.predict(model, small.graphs)
    torch.testing.assert_close(engine.predict(model.to(CUDA), small.graphs), expected, rtol=1e-4, atol=1e-5)


def test_dropout_on_cuda_drops_one_in_ten():
    import fast_gcn
    from model import GCN
    masks = fast_gcn.sample_dropout_masks(GCN().dropout_sites, 0.1, (4, 1000), device=CUDA)
    keep = torch.cat([m.flatten() for m in masks])
    assert keep.device.type == "cuda"
    assert abs((keep == 0).float().mean().item() - 0.1) < 0.005


def test_command_line_trains_on_cuda(labels_hdf5, tmp_path):
    path, splits = labels_hdf5
    output = tmp_path / "run"
    code = train.main(["--data", path, "--splits", splits, "--train_split", "300", "--eval_split", "all",
                       "--epochs", "40", "--lr", "1e-3", "--device", "cuda", "--quiet", "--output_dir", str(output)])
    assert code == 0
    results = json.loads((output / "results.json").read_text())
    assert results["device"] == torch.cuda.get_device_name(CUDA)
    data = Nb101Dataset(path, split=None)
    mean_mse = float(np.mean((100 * (data.accuracy.mean() - data.accuracy).numpy()) ** 2))
    assert results["metrics"]["eval_minus_train"]["kendall_tau"] > 0.3
    assert results["metrics"]["eval_minus_train"]["mse"] < mean_mse


def test_search_predictor_on_cuda_spends_the_budget(hdf5_20k, tmp_path):
    args = search.parse_args(["--data", hdf5_20k, "--methods", "predictor", "--runs", "3", "--budget", "60",
                              "--num_train", "20", "--epochs", "3", "--device", "cuda", "--quiet",
                              "--output_dir", str(tmp_path)])
    traces, oracles, _ = search.run_search(args, CUDA)
    rows = oracles["predictor"].rows
    assert rows.shape == (3, 60) and all(len(np.unique(r)) == 60 for r in rows)
    assert np.all(np.diff(traces["predictor"]["best_validation"], axis=1) >= 0)


def test_autograd_backend_on_cuda_equals_the_fast_one(small, float64):
    graphs = {key: value.double() for key, value in small.graphs.items()}
    sets = [(torch.arange(0, 60), small.target[:60].double())] * 2
    fast = engine.fit(graphs, sets, epochs=3, lr=1e-3, seed=1, device=CUDA)
    plain = engine.fit(graphs, sets, epochs=3, lr=1e-3, seed=1, device=CUDA, backend="autograd")
    torch.testing.assert_close(plain.vectors(), fast.vectors(), rtol=1e-9, atol=1e-10)


def test_mixed_precision_step_on_cuda_equals_autograd_on_cuda(small):
    """--precision bf16 on CUDA: the fast step's gradients are autograd's through model.GCN up to a bfloat16
    rounding here and there (cuBLAS may pick different kernels for the two layouts)."""
    import fast_gcn
    from model import GCN, batch_loss, model_inputs
    batches = {key: value[:20].view(2, 10, *value.shape[1:]).to(CUDA) for key, value in small.graphs.items()}
    targets, weights = small.target[:20].view(2, 10).to(CUDA), torch.full((2, 10), 0.1, device=CUDA)
    model = GCN(num_models=2, seed=0, precision="bf16").to(CUDA).train()
    masks = fast_gcn.sample_dropout_masks(model.dropout_sites, model.dropout, (2, 10), device=CUDA)
    step = fast_gcn.epoch_step_inputs({key: value.unsqueeze(0) for key, value in model_inputs(batches).items()}, 2)[0]
    fast_gcn.TrainingStep(model, slice(0, 2), 10)(step, targets, weights, masks)
    fast = model.vectors(gradients=True).clone()
    model.zero_grad(set_to_none=False)
    batch_loss(model(batches, masks), targets, weights).backward()
    plain = model.vectors(gradients=True)
    assert (fast - plain).abs().max() <= 1e-2 * plain.abs().max()
