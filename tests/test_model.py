"""Tests of model.py: the batched GCN against a plain implementation, invariances, init, fast inference."""
import math

import numpy as np
import pytest
import torch

from bench import StraightforwardPredictor
from dataset import graph_tensors
from model import GCNPredictor, dense_ranks, model_inputs, neighbourhood_keys, propagation_matrices, representatives


@pytest.fixture(scope="module")
def sample(space):
    """Graph tensors of 600 real architectures: every vertex count 2..7 and a random draw of the space."""
    rng = np.random.default_rng(0)
    per_size = [np.flatnonzero(space.num_vertices == n)[:20] for n in range(2, 8)]
    rows = np.concatenate(per_size + [rng.choice(len(space), 600 - sum(map(len, per_size)), replace=False)])
    return graph_tensors(space.adjacency[rows], space.operations[rows], space.num_vertices[rows])


def copy_into_straightforward(model, m=0):
    """A StraightforwardPredictor carrying model m's weights of a GCNPredictor stack."""
    plain = StraightforwardPredictor(model.hidden, model.num_layers, model.readout, model.dropout)
    *gcn, fc1, fc2 = model.layers
    with torch.no_grad():
        for layer, weight in zip(plain.layers, gcn):
            layer.forward_weight.copy_(weight[m, 0])
            layer.backward_weight.copy_(weight[m, 1])
        plain.fc1.weight.copy_(fc1[m].T)
        plain.fc2.weight.copy_(fc2[m].T)
    return plain


def test_forward_equals_a_plain_implementation(sample):
    model = GCNPredictor(num_models=3, seed=5).eval()
    with torch.no_grad():
        stacked = model(sample)
        for m in range(3):
            plain = copy_into_straightforward(model, m).eval()
            torch.testing.assert_close(stacked[m], plain(sample), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("with_dropout", [False, True])
def test_hand_written_gradient_equals_autograd(sample, loss, with_dropout):
    model = GCNPredictor(num_models=2, seed=3).double().train()
    batches = {key: torch.stack([value[:10], value[30:40]]).double() for key, value in sample.items()}
    generator = torch.Generator().manual_seed(0)
    targets = torch.randn(2, 10, dtype=torch.float64, generator=generator)
    if loss == "bce":
        targets = (targets > 0).double()
    weights = torch.full((2, 10), 0.1, dtype=torch.float64)
    weights[1, 6:] = 0.0  # rows that do not count
    masks = [mask.double() for mask in model.sample_dropout_masks((2, 10))] if with_dropout else None
    value = model.loss_and_gradient(model_inputs(batches), targets, weights, loss, masks)
    gradient = model.vectors(gradients=True)
    model.zero_grad(set_to_none=True)
    criterion = torch.nn.functional.mse_loss if loss == "mse" else torch.nn.functional.binary_cross_entropy_with_logits
    if not with_dropout:
        model.dropout = 0.0  # forward draws its own masks otherwise
    expected = (weights * criterion(model(batches, masks), targets, reduction="none")).sum()
    expected.backward()
    torch.testing.assert_close(value, expected.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gradient, model.vectors(gradients=True), rtol=1e-10, atol=1e-12)
    assert gradient.abs().sum(1).min() > 0


def test_shapes_for_every_vertex_count(space):
    model = GCNPredictor(num_models=2, seed=0).eval()
    for n in range(2, 8):
        rows = np.flatnonzero(space.num_vertices == n)[:5]
        graphs = graph_tensors(space.adjacency[rows], space.operations[rows], space.num_vertices[rows])
        with torch.no_grad():
            output = model(graphs)
        assert output.shape == (2, len(rows)) and torch.isfinite(output).all()


def test_predictions_do_not_depend_on_the_order_of_interior_vertices(sample):
    adjacency, operations = sample["adjacency"], sample["operations"]
    sizes = sample["mask"].sum(1).long()
    rng = np.random.default_rng(1)
    order = torch.arange(7).repeat(len(sizes), 1)
    for g, n in enumerate(sizes.tolist()):
        order[g, 1:n - 1] = 1 + torch.as_tensor(rng.permutation(n - 2))  # input, output and padding stay
    rows = torch.arange(len(sizes))[:, None]
    permuted = {
        "adjacency": adjacency[rows[:, :, None], order[:, :, None], order[:, None, :]],
        "operations": operations[rows, order],
        "mask": sample["mask"],
    }
    assert not torch.equal(permuted["adjacency"], adjacency)  # the test does permute something
    model = GCNPredictor(num_models=2, seed=3).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(permuted), model(sample), rtol=1e-5, atol=1e-6)


def test_padding_is_ignored(sample):
    """Adding isolated padded vertices with an operation type to a graph changes nothing."""
    model = GCNPredictor(seed=0).eval()
    small = sample["mask"].sum(1) < 7
    polluted = dict(sample)
    polluted.pop("propagation")
    polluted["operations"] = sample["operations"] + (1 - sample["mask"])[..., None] * torch.eye(5)[2]
    with torch.no_grad():
        torch.testing.assert_close(model(polluted)[:, small], model(sample)[:, small])


def test_stacked_models_match_single_models(sample):
    stack = GCNPredictor(num_models=3, seed=10).eval()
    per_model_batches = {key: value[:50].expand(3, *value[:50].shape) for key, value in sample.items()}
    with torch.no_grad():
        shared, separate = stack(sample), stack(per_model_batches)
        for m in range(3):
            single = GCNPredictor(num_models=1, seed=10 + m).eval()
            assert torch.equal(single.vectors()[0], stack.vectors()[m])
            torch.testing.assert_close(single(sample)[0], shared[m])
    torch.testing.assert_close(separate, shared[:, :50])


def test_xavier_uniform_init_per_model_slice():
    model = GCNPredictor(num_models=4, seed=0)
    for weight, (fan_in, fan_out, _) in zip(model.layers, model.shapes):
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert weight.abs().max() <= bound
        if weight[0].numel() > 1000:  # enough values for the spread of U(-b, b): std b / sqrt(3)
            assert abs(weight[1].std().item() - bound / math.sqrt(3)) < 0.05 * bound
        assert not torch.equal(weight[0], weight[1])


def test_propagation_rows_are_halved_means(sample):
    propagation = propagation_matrices(sample["adjacency"])
    torch.testing.assert_close(propagation.sum(-1), torch.full(propagation.shape[:-1], 0.5))
    with_self = sample["adjacency"] + torch.eye(7)
    assert torch.equal(propagation[:, 0] > 0, with_self > 0)
    assert torch.equal(propagation[:, 1] > 0, with_self.transpose(1, 2) > 0)


def test_equal_neighbourhood_keys_mean_equal_first_layer_inputs(sample):
    inputs = model_inputs(sample)
    keys = neighbourhood_keys(inputs["operations"], inputs["propagation"]).flatten()
    first_inputs = (inputs["propagation"] @ inputs["operations"].unsqueeze(1)).reshape(-1, 5)
    order = torch.argsort(keys)
    same = keys[order][1:] == keys[order][:-1]
    assert same.sum() > 1000
    torch.testing.assert_close(first_inputs[order][1:][same], first_inputs[order][:-1][same])
    assert len(torch.unique(keys)) >= len(torch.unique(first_inputs, dim=0))  # keys may only be finer


def test_dense_ranks_number_distinct_codes_in_order():
    codes = torch.tensor([[7, 3, 7], [0, 9, 3]])
    rank, count = dense_ranks(codes, 10)
    distinct, inverse = torch.unique(codes, return_inverse=True)  # independent: sorting
    assert count == len(distinct) == 4
    assert torch.equal(rank, inverse)


def test_representatives_have_their_rank():
    rank = torch.tensor([[2, 0, 2], [1, 1, 0]])
    graph, vertex = representatives(rank, 3)
    assert torch.equal(rank[graph, vertex], torch.arange(3))


def test_fast_inference_equals_forward(sample):
    model = GCNPredictor(num_models=2, seed=2).eval()
    inputs = model_inputs(sample)
    table, slot = model.first_layer_table(inputs)
    part = slice(100, 400)
    with torch.no_grad():
        expected = model(sample)[:, part]
    chunk = {key: value[part] for key, value in inputs.items()}
    fast = model.infer(chunk, table, slot[part])
    torch.testing.assert_close(fast, expected, rtol=1e-5, atol=1e-6)


def test_masks_of_steps_a_model_does_not_take_stay_zero():
    """Model 1 takes one of three steps: its other masks are never drawn, and stay 0 however often the buffers
    are reused (they multiply activations whose loss does not count, which must stay finite)."""
    model = GCNPredictor(num_models=2, seed=0)
    generators = [torch.Generator().manual_seed(s) for s in (0, 1)]
    buffers = {}
    for _ in range(3):
        masks = model.sample_dropout_masks((3, 2, 4), buffers, generators, steps=[3, 1])
    for mask in masks:
        assert torch.equal(mask[1:, 1], torch.zeros_like(mask[1:, 1]))
        drawn = torch.cat([mask[:, 0].flatten(), mask[0, 1].flatten()])
        torch.testing.assert_close(drawn.unique(), torch.tensor([0.0, 1 / 0.9]))
    # model 0 draws from its own generator: as a single model with that seed would
    single_generator = [torch.Generator().manual_seed(0)]
    for _ in range(3):
        alone = GCNPredictor(num_models=1, seed=0).sample_dropout_masks((3, 1, 4), None, single_generator)
    for stacked, single in zip(masks, alone):
        assert torch.equal(stacked[:, :1], single)


def test_dropout_only_in_training(sample):
    model = GCNPredictor(seed=0)
    masks = model.sample_dropout_masks((1, 1000))
    keep = torch.cat([mask.flatten() for mask in masks])
    torch.testing.assert_close(keep.unique(), torch.tensor([0.0, 1 / 0.9]))
    assert abs((keep == 0).float().mean().item() - 0.1) < 0.01
    model.train()
    assert not torch.equal(model(sample), model(sample))
    model.eval()
    assert torch.equal(model(sample), model(sample))
