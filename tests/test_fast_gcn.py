"""Tests of fast_gcn.py against the plain path: the hand-written step and inference against autograd through
model.GCN (float64, with dropout, several stack sizes), the batched Adam against torch's, the dropout masks."""
import numpy as np
import pytest
import torch

import engine
import fast_gcn
from dataset import graph_tensors
from model import GCN, LOSSES, batch_loss, model_inputs
from reference_predictor import copy_into_reference, reference_inputs


def independent_loss(output, targets, weights, loss):
    """The losses of model.batch_loss written again, pair by pair, with torch's own criteria."""
    total = 0.0
    if loss == "bce":
        return (weights * torch.nn.functional.binary_cross_entropy_with_logits(output, targets, reduction="none")).sum()
    if "mse" in loss:
        total = total + (weights * torch.nn.functional.mse_loss(output, targets, reduction="none")).sum()
    b = output.shape[1]
    for m in range(output.shape[0]):
        for i in range(b):
            for j in range(b):
                if targets[m, i] <= targets[m, j]:
                    continue
                # pair (i, j) weighs w_i w_j 2B / (B - 1): the mean over pairs when every w is 1/B; i ranks above j
                pair_weight = weights[m, i] * weights[m, j] * 2 * b / (b - 1)
                if "hinge" in loss:
                    total = total + pair_weight * torch.relu(0.1 - (output[m, i] - output[m, j]))
                if "pairwise-bce" in loss:
                    total = total + pair_weight * torch.nn.functional.binary_cross_entropy_with_logits(
                        output[m, i] - output[m, j], torch.ones((), dtype=output.dtype))
    return total


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("with_dropout", [False, True])
@pytest.mark.parametrize("num_models, chunk", [(1, slice(0, 1)), (3, slice(0, 3)), (4, slice(1, 3))])
def test_training_step_equals_autograd_through_the_gcn(sample, loss, with_dropout, num_models, chunk):
    """TrainingStep on a slice of a stack: the loss and every gradient of autograd through model.GCN's forward
    on those models (float64), other models' gradients untouched."""
    model = GCN(num_models=num_models, seed=3).double().train()
    m = chunk.stop - chunk.start
    batches = {key: torch.stack([value[10 * i:10 * i + 10] for i in range(m)]).double() for key, value in sample.items()}
    generator = torch.Generator().manual_seed(0)
    targets = torch.randn(m, 10, dtype=torch.float64, generator=generator)
    if loss == "bce":
        targets = (targets > 0).double()
    weights = torch.full((m, 10), 0.1, dtype=torch.float64)
    weights[-1, 6:] = 0.0  # rows that do not count
    masks = [mask.double() for mask in fast_gcn.sample_dropout_masks(model.dropout_sites, model.dropout, (m, 10))] \
        if with_dropout else None
    step = fast_gcn.epoch_step_inputs({key: value.unsqueeze(0) for key, value in model_inputs(batches).items()}, m)[0]
    value = fast_gcn.TrainingStep(model, chunk, 10, loss)(step, targets, weights, masks)
    gradient = model.vectors(gradients=True)
    model.zero_grad(set_to_none=True)
    if not with_dropout:
        model.dropout = 0.0  # forward draws its own masks otherwise
    sliced = GCN(num_models=m).double().train()
    sliced.dropout = model.dropout
    with torch.no_grad():
        for mine, theirs in zip(sliced.layers, model.layers):
            mine.copy_(theirs[chunk])
    expected = independent_loss(sliced(batches, masks), targets, weights, loss)
    expected.backward()
    torch.testing.assert_close(value, expected.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gradient[chunk], sliced.vectors(gradients=True), rtol=1e-10, atol=1e-12)
    assert gradient[chunk].abs().sum(1).min() > 0
    outside = torch.ones(num_models, dtype=torch.bool)
    outside[chunk] = False
    assert not gradient[outside].any()


def one_step_gradients(model, step_function, batches, targets, weights, masks):
    """(loss, (M, P) gradients) of one call of step_function on `model`, its .grad zeroed in place before (a
    TrainingStep writes into the .grad tensors it was made with)."""
    model.zero_grad(set_to_none=False)
    value = step_function(batches, targets, weights, masks)
    return value.detach(), model.vectors(gradients=True).clone()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("loss", ["mse", "mse+hinge"])
@pytest.mark.parametrize("num_models", [1, 3])
def test_mixed_precision_step_equals_autograd_through_the_gcn(sample, dtype, loss, num_models):
    """precision "bf16": TrainingStep casts where model.weight_product does, so its loss and gradients are those of
    autograd through model.GCN's forward; and they are not the full-precision ones (the products are in bf16)."""
    m = num_models
    batches = {key: torch.stack([value[10 * i:10 * i + 10] for i in range(m)]).to(dtype) for key, value in sample.items()}
    generator = torch.Generator().manual_seed(1)
    targets = torch.randn(m, 10, dtype=dtype, generator=generator)
    weights = torch.full((m, 10), 0.1, dtype=dtype)
    model = GCN(num_models=m, seed=5, precision="bf16").to(dtype).train()
    masks = [mask.to(dtype) for mask in fast_gcn.sample_dropout_masks(model.dropout_sites, model.dropout, (m, 10))]
    step = fast_gcn.epoch_step_inputs({key: value.unsqueeze(0) for key, value in model_inputs(batches).items()}, m)[0]
    fast_step = fast_gcn.TrainingStep(model, slice(0, m), 10, loss)

    def autograd_step(*arguments):
        value = batch_loss(model(arguments[0], arguments[3]), *arguments[1:3], loss)
        value.backward()
        return value

    fast = one_step_gradients(model, lambda *a: fast_step(step, *a[1:]), batches, targets, weights, masks)
    plain = one_step_gradients(model, autograd_step, batches, targets, weights, masks)
    model.precision = "fp32"
    full = one_step_gradients(model, autograd_step, batches, targets, weights, masks)
    tolerance = dict(rtol=1e-6, atol=1e-9)  # a missing cast differs by about 1e-2 of the gradients' scale
    torch.testing.assert_close(fast[0], plain[0], **tolerance)
    torch.testing.assert_close(fast[1], plain[1], **tolerance)
    assert (plain[1] - full[1]).abs().max() > 1e-4 * full[1].abs().max()


def test_mixed_precision_fit_fast_equals_autograd_and_predicts_in_full_precision(sample, float64):
    """engine.fit(precision="bf16"): both backends train the same models; in eval mode the model multiplies in
    full precision, so fast inference equals forward and a float32 copy of the weights predicts the same."""
    sets = [(torch.arange(60), torch.randn(60, generator=torch.Generator().manual_seed(6)))] * 2
    graphs = {key: value.double() for key, value in sample.items()}
    fast = engine.fit(graphs, sets, epochs=3, lr=1e-3, seed=4, backend="fast", precision="bf16")
    plain = engine.fit(graphs, sets, epochs=3, lr=1e-3, seed=4, backend="autograd", precision="bf16")
    full = engine.fit(graphs, sets, epochs=3, lr=1e-3, seed=4, backend="fast")
    torch.testing.assert_close(fast.vectors(), plain.vectors(), rtol=1e-9, atol=1e-12)
    assert not torch.allclose(fast.vectors(), full.vectors(), rtol=1e-6, atol=1e-9)
    copy = GCN(num_models=2).double().eval()
    copy.load_state_dict(fast.state_dict())
    predicted = engine.predict(fast, graphs, backend="fast")
    torch.testing.assert_close(predicted, engine.predict(fast, graphs, backend="autograd"), rtol=1e-9, atol=1e-12)
    assert torch.equal(engine.predict(copy, graphs, backend="autograd"), engine.predict(fast, graphs, backend="autograd"))


def test_mixed_precision_is_for_the_gcn_only():
    with pytest.raises(ValueError, match="GCN only"):
        engine.build_predictor("mlp", precision="bf16")
    with pytest.raises(ValueError, match="precision 'fp16'"):
        GCN(precision="fp16")


@pytest.mark.parametrize("sizes", [[60], [60, 60, 60], [60, 40, 25]])
def test_fit_fast_backend_equals_autograd_backend(sample, float64, sizes):
    """engine.fit's two backends train the same models (float64): same seeds, batches and dropout masks; one
    model, a lockstep stack (torch.optim.Adam) and a stack of unequal sizes (models resting: the batched Adam)."""
    sets = [(torch.arange(size), torch.randn(size, generator=torch.Generator().manual_seed(size))) for size in sizes]
    graphs = {key: value.double() for key, value in sample.items()}
    fast = engine.fit(graphs, sets, epochs=4, lr=1e-3, seed=2, backend="fast")
    plain = engine.fit(graphs, sets, epochs=4, lr=1e-3, seed=2, backend="autograd")
    torch.testing.assert_close(fast.vectors(), plain.vectors(), rtol=1e-9, atol=1e-12)
    assert not torch.equal(fast.vectors(), GCN(num_models=len(sizes), seed=2).double().vectors())


def test_fast_backend_only_for_the_gcn(sample):
    with pytest.raises(ValueError, match="fast backend exists for the GCN only"):
        engine.fit(sample, [(torch.arange(20), torch.zeros(20))], predictor="mlp", backend="fast", epochs=1)


def test_batched_adam_equals_torch_adam_and_rests_inactive_models():
    torch.manual_seed(0)
    starts = [torch.randn(4, 50), torch.randn(4, 3, 5)]  # two parameters of a stack of 4 models
    targets = [torch.randn(8, *start.shape) for start in starts]
    active = [[0, 1, 2, 3]] * 5 + [[0, 2, 3]] * 3  # model 1 rests on the last 3 steps
    lrs = [1e-2, 1e-2, 3e-2, 1e-2]  # one kernel call for 0, 1 and 3; 0 and 3 differ in steps at the end
    params = [torch.nn.Parameter(start.clone()) for start in starts]
    adam = fast_gcn.BatchedAdam(params, weight_decay=1e-2)
    for step, models in enumerate(active):
        for param, target in zip(params, targets):
            param.grad.copy_((param.detach() - target[step]) ** 3)
        adam.step(lrs, models)
    for m in range(4):  # model m alone with torch.optim.Adam
        alone = [torch.nn.Parameter(start[m].clone()) for start in starts]
        optimizer = torch.optim.Adam(alone, lr=lrs[m], weight_decay=1e-2)
        for step, models in enumerate(active):
            if m in models:
                for param, target in zip(alone, targets):
                    param.grad = (param.detach() - target[step][m]) ** 3
                optimizer.step()
        for param, single in zip(params, alone):
            torch.testing.assert_close(param.detach()[m], single.detach(), rtol=1e-6, atol=1e-7)


def test_consecutive_runs_split_on_gaps_and_on_keys():
    keys = ["a", "a", "a", "b", "b", "a"]
    assert fast_gcn.consecutive_runs([0, 1, 2, 3, 4, 5], keys) == [(0, 3), (3, 5), (5, 6)]
    assert fast_gcn.consecutive_runs([0, 2, 3, 4], keys) == [(0, 1), (2, 3), (3, 5)]
    assert fast_gcn.consecutive_runs([], keys) == []


def test_adam_fallback_equals_the_fused_kernel():
    torch.manual_seed(0)
    tensors = [[torch.randn(3, 40) for _ in range(2)] for _ in range(4)]  # params, grads, exp_avgs, exp_avg_sqs
    tensors[3] = [t.abs() for t in tensors[3]]
    results = []
    for fused in (True, False):
        params, grads, exp_avgs, exp_avg_sqs = [[t.clone() for t in group] for group in tensors]
        for step in range(1, 4):
            counts = [step] * 2
            fast_gcn.adam_update(params, grads, exp_avgs, exp_avg_sqs, counts, 1e-2, (0.9, 0.999), 1e-2, 1e-8,
                                 fused=fused)
        results.append(params + exp_avgs + exp_avg_sqs)
    for fused, plain in zip(*results):
        torch.testing.assert_close(plain, fused, rtol=1e-6, atol=1e-7)
    assert not torch.equal(results[0][0], tensors[0][0])


def test_distinct_states_group_exactly_the_bit_identical_states(sample):
    inputs = model_inputs(sample)
    states = fast_gcn.first_layer_inputs(inputs["operations"], inputs["propagation"]).transpose(1, 2).flatten(2)
    rank, representative = fast_gcn.distinct_states(states)
    flat = states.reshape(-1, states.shape[-1])
    distinct, inverse = torch.unique(flat, dim=0, return_inverse=True)  # independent: sorting whole rows
    assert len(representative) == len(distinct) > 100
    # the same partition of the vertices: rank and inverse map one-to-one
    pairs = torch.unique(torch.stack([rank.flatten(), inverse]), dim=1)
    assert pairs.shape[1] == len(distinct)
    assert torch.equal(flat[representative][rank.flatten()], flat)


def test_distinct_states_refuse_a_key_collision(monkeypatch):
    monkeypatch.setattr(fast_gcn, "state_keys", lambda flat: torch.zeros(len(flat), dtype=torch.float64))
    states = torch.tensor([[[0.5, 0.0], [0.0, 0.5]]])
    assert fast_gcn.distinct_states(states) is None


@pytest.mark.slow
@pytest.mark.parametrize("rule, num_models, count", [("faithful", 1, None), ("uniform", 2, 20000)])
def test_fast_inference_equals_forward(space, rule, num_models, count):
    """Inference through the vertex-state table (engine.predict) against the plain forward, on all 423,624
    architectures (faithful) or a random 20,000 (uniform), and against the reference implementation."""
    rows = np.arange(len(space)) if count is None else np.random.default_rng(1).choice(len(space), count,
                                                                                        replace=False)
    graphs = graph_tensors(space.adjacency[rows], space.operations[rows], space.num_vertices[rows], propagation=rule)
    model = GCN(num_models=num_models, seed=2).eval()
    fast = engine.predict(model, graphs)
    plain = engine.predict(model, graphs, backend="autograd")
    torch.testing.assert_close(fast, plain, rtol=1e-5, atol=1e-6)
    sample = torch.arange(0, len(rows), 20)
    chunk = {key: value[sample] for key, value in graphs.items()}
    with torch.no_grad():
        for m in range(num_models):
            reference = copy_into_reference(model, m, rule).eval()
            torch.testing.assert_close(fast[m, sample], reference(*reference_inputs(chunk)), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_subnormal_weights_are_zero_at_inference_and_change_no_prediction(space, monkeypatch):
    rows = np.random.default_rng(3).choice(len(space), 20000, replace=False)
    graphs = graph_tensors(space.adjacency[rows], space.operations[rows], space.num_vertices[rows])
    model = GCN(num_models=2, seed=2).eval()
    tiny = torch.finfo(torch.float32).tiny
    with torch.no_grad():  # 2 % subnormal weights in every layer, as weight decay leaves them (and more)
        for p in model.parameters():
            p.view(-1)[::50] = 1e-40
    assert all(((w != 0) & (w.abs() < tiny)).sum() == 0 for w in fast_gcn.inference_weights(model)[2:])
    zeroed = engine.predict(model, graphs)
    monkeypatch.setattr(fast_gcn, "without_subnormals", lambda tensor: tensor)
    assert all(((w != 0) & (w.abs() < tiny)).any() for w in fast_gcn.inference_weights(model))
    assert torch.equal(zeroed, engine.predict(model, graphs))  # the same bits as with the subnormal weights
    torch.testing.assert_close(zeroed, engine.predict(model, graphs, backend="autograd"), rtol=1e-5, atol=1e-6)


def test_without_subnormals_keeps_every_normal_number_and_zero():
    values = torch.tensor([0.0, -0.0, 1e-40, -1e-40, 1.2e-38, -3.0, 1e38])
    assert torch.equal(fast_gcn.without_subnormals(values), torch.tensor([0.0, -0.0, 0, 0, 1.2e-38, -3.0, 1e38]))
    assert torch.equal(fast_gcn.without_subnormals(values.double()), values.double())  # normal in float64
    normal = torch.randn(10)
    assert fast_gcn.without_subnormals(normal) is normal


def test_prediction_without_the_table_equals_the_fast_path(sample, monkeypatch):
    model = GCN(num_models=2, seed=2)
    fast = engine.predict(model, sample)
    monkeypatch.setattr(fast_gcn, "distinct_states", lambda states: None)
    plain = engine.predict(model, sample)
    assert not plain.requires_grad
    torch.testing.assert_close(plain, fast, rtol=1e-5, atol=1e-6)


def test_relu_backward_equals_autograds():
    """relu's gradient through relu_backward against autograd through torch.relu, grad broadcast over the output."""
    grad, x = torch.randn(1, 1, 3, 4), torch.randn(1, 2, 3, 4)
    x[0, 0, 0, :2] = 0.0  # relu's gradient at 0 is 0 in autograd too
    x.requires_grad_(True)
    output = torch.relu(x)
    output.backward(grad.expand_as(output))
    ours = torch.empty(1, 2, 3, 4)
    fast_gcn.relu_backward(grad, output.detach(), ours)
    assert torch.equal(ours, x.grad)


def test_masks_of_steps_a_model_does_not_take_stay_zero():
    """Model 1 takes one of three steps: its other masks are never drawn, and stay 0 however often the buffers
    are reused (they multiply activations whose loss does not count, which must stay finite)."""
    model = GCN(num_models=2, seed=0)
    generators = [torch.Generator().manual_seed(s) for s in (0, 1)]
    buffers = {}
    for _ in range(3):
        masks = fast_gcn.sample_dropout_masks(model.dropout_sites, 0.1, (3, 2, 4), buffers=buffers,
                                              generators=generators, steps=[3, 1])
    for mask in masks:
        assert torch.equal(mask[1:, 1], torch.zeros_like(mask[1:, 1]))
        drawn = torch.cat([mask[:, 0].flatten(), mask[0, 1].flatten()])
        torch.testing.assert_close(drawn.unique(), torch.tensor([0.0, 1 / 0.9]))
    # model 0 draws from its own generator: as a single model with that seed would
    single_generator = [torch.Generator().manual_seed(0)]
    for _ in range(3):
        alone = fast_gcn.sample_dropout_masks(model.dropout_sites, 0.1, (3, 1, 4), generators=single_generator)
    for stacked, single in zip(masks, alone):
        assert torch.equal(stacked[:, :1], single)


@pytest.mark.parametrize("p", [0.1, 0.3])
def test_dropout_masks_drop_at_the_rate_asked(p):
    """Ten million draws: the standard error of the drop rate is 1e-4, so a rate off by 5e-4 (p = 0.1005 asked
    as 0.1) fails; the rate is p rounded to a multiple of 2^-16."""
    sites = GCN().dropout_sites
    torch.manual_seed(0)
    masks = fast_gcn.sample_dropout_masks(sites, p, (1, 3200))
    keep = torch.cat([mask.flatten() for mask in masks])
    assert keep.numel() > 10_000_000
    torch.testing.assert_close(keep.unique(), torch.tensor([0.0, 1 / (1 - p)]))
    assert abs((keep == 0).double().mean().item() - p) < 3e-4


def test_dropout_only_in_training(sample):
    model = GCN(seed=0)
    model.train()
    assert not torch.equal(model(sample), model(sample))
    model.eval()
    assert torch.equal(model(sample), model(sample))


@pytest.mark.parametrize("layers", [2, 4])
def test_other_depths_fast_equals_autograd(sample, float64, layers):
    """A GCN of `layers` graph convolutions (the recipes' `layers`): both backends train the same models, and fast
    inference equals the model's forward."""
    sets = [(torch.arange(60), torch.randn(60, generator=torch.Generator().manual_seed(7)))] * 2
    graphs = {key: value.double() for key, value in sample.items()}
    options = dict(epochs=2, lr=1e-3, seed=3, layers=layers, loss="mse+pairwise-bce")
    fast = engine.fit(graphs, sets, backend="fast", **options)
    plain = engine.fit(graphs, sets, backend="autograd", **options)
    assert fast.num_layers == layers
    torch.testing.assert_close(fast.vectors(), plain.vectors(), rtol=1e-9, atol=1e-12)
    with torch.no_grad():
        torch.testing.assert_close(engine.predict(fast, graphs, backend="fast"), fast.eval()(graphs),
                                   rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("hidden, layers", [(144, 3), (32, 2), (48, 5)])
def test_parameter_count_is_the_built_gcns(hidden, layers):
    """engine.parameter_count, which sizes the memory and disk checks before a model exists, counts what is built."""
    built = GCN(hidden=hidden, num_layers=layers).vectors().shape[1]
    assert engine.parameter_count("gcn", hidden, layers) == built
