"""Tests of model.py: the batched GCN against a plain implementation, invariances, init, fast inference."""
import math

import numpy as np
import pytest
import torch

from dataset import graph_tensors
from model import (LOSSES, GCNPredictor, batch_loss, distinct_states, first_layer_inputs, model_inputs,
                   pairwise_hinge, propagation_matrices, state_keys)
from reference_predictor import copy_into_reference, reference_inputs


@pytest.fixture(scope="module")
def sample(space):
    """Graph tensors of 600 real architectures: every vertex count 2..7 and a random draw of the space."""
    rng = np.random.default_rng(0)
    per_size = [np.flatnonzero(space.num_vertices == n)[:20] for n in range(2, 8)]
    rows = np.concatenate(per_size + [rng.choice(len(space), 600 - sum(map(len, per_size)), replace=False)])
    return graph_tensors(space.adjacency[rows], space.operations[rows], space.num_vertices[rows])


@pytest.mark.parametrize("propagation", ["faithful", "uniform"])
def test_forward_equals_the_reference_implementation_for_every_vertex_count(space, propagation):
    model = GCNPredictor(num_models=3, seed=5).eval()
    for n in range(2, 8):
        rows = np.flatnonzero(space.num_vertices == n)[:200]
        graphs = graph_tensors(space.adjacency[rows], space.operations[rows], space.num_vertices[rows],
                               propagation=propagation)
        with torch.no_grad():
            stacked = model(graphs)
            for m in range(3):
                reference = copy_into_reference(model, m, propagation).eval()
                torch.testing.assert_close(stacked[m], reference(*reference_inputs(graphs)), rtol=1e-5, atol=1e-6)


def test_faithful_backward_weighs_predecessors_by_their_out_degree():
    """Vertex 3 of input->1, input->2, 1->3, 2->3, 1->2: predecessors 1 (out-degree 2) and 2 (out-degree 1)
    and itself (out-degree 0) weigh 1/3 : 1/2 : 1, normalised; uniform weighs them equally."""
    adjacency = torch.zeros(1, 7, 7)
    for i, j in [(0, 1), (0, 2), (1, 3), (2, 3), (1, 2)]:
        adjacency[0, i, j] = 1
    faithful, uniform = (propagation_matrices(adjacency, rule)[0, 1, 3] * 2 for rule in ("faithful", "uniform"))
    weights = torch.tensor([0, 1 / 3, 1 / 2, 1, 0, 0, 0])
    torch.testing.assert_close(faithful, weights / weights.sum())
    torch.testing.assert_close(uniform, torch.tensor([0, 1, 1, 1, 0, 0, 0]) / 3)
    forward = propagation_matrices(adjacency, "faithful")[0, 0] * 2
    torch.testing.assert_close(forward[1], torch.tensor([0, 1, 1, 1, 0, 0, 0]) / 3)
    with pytest.raises(ValueError, match="propagation rule"):
        propagation_matrices(adjacency, "other")


def independent_loss(output, targets, weights, loss):
    """The losses of model.batch_loss written again, pair by pair, with torch's own criteria."""
    total = 0.0
    if loss == "bce":
        return (weights * torch.nn.functional.binary_cross_entropy_with_logits(output, targets, reduction="none")).sum()
    if "mse" in loss:
        total = total + (weights * torch.nn.functional.mse_loss(output, targets, reduction="none")).sum()
    if "hinge" in loss:  # pair (i, j) weighs w_i w_j 2B / (B - 1): the mean over pairs when every w is 1/B
        b = output.shape[1]
        for m in range(output.shape[0]):
            for i in range(b):
                for j in range(b):
                    if targets[m, i] > targets[m, j]:
                        total = total + (weights[m, i] * weights[m, j] * 2 * b / (b - 1)
                                         * torch.relu(0.1 - (output[m, i] - output[m, j])))
    return total


@pytest.mark.parametrize("loss", [loss for loss in LOSSES])
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
    if not with_dropout:
        model.dropout = 0.0  # forward draws its own masks otherwise
    expected = independent_loss(model(batches, masks), targets, weights, loss)
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


@pytest.mark.parametrize("readout_init", ["torch", "xavier"])
def test_init_per_model_slice(readout_init):
    """Xavier-uniform GCN layers; the readout as torch.nn.Linear initialises it (U(+-1/sqrt(in))) or Xavier."""
    model = GCNPredictor(num_models=4, seed=0, readout_init=readout_init)
    for layer, (weight, (fan_in, fan_out, _)) in enumerate(zip(model.layers, model.shapes)):
        bound = math.sqrt(6 / (fan_in + fan_out))
        if layer >= model.num_layers and readout_init == "torch":
            bound = 1 / math.sqrt(fan_in)
        assert weight.abs().max() <= bound
        assert weight.abs().max() > 0.9 * bound
        if weight[0].numel() > 1000:  # enough values for the spread of U(-b, b): std b / sqrt(3)
            assert abs(weight[1].std().item() - bound / math.sqrt(3)) < 0.05 * bound
        assert not torch.equal(weight[0], weight[1])
    linear = torch.nn.Linear(144, 128, bias=False)  # torch's own default, for comparison
    if readout_init == "torch":
        assert linear.weight.abs().max() <= model.layers[-2].abs().max() * 1.05


@pytest.mark.parametrize("rule", ["faithful", "uniform"])
def test_propagation_rows_are_halved_means(sample, rule):
    propagation = propagation_matrices(sample["adjacency"], rule)
    torch.testing.assert_close(propagation.sum(-1), torch.full(propagation.shape[:-1], 0.5))
    with_self = sample["adjacency"] + torch.eye(7)
    assert torch.equal(propagation[:, 0] > 0, with_self > 0)
    assert torch.equal(propagation[:, 1] > 0, with_self.transpose(1, 2) > 0)


def test_distinct_states_group_exactly_the_bit_identical_states(sample):
    inputs = model_inputs(sample)
    states = first_layer_inputs(inputs["operations"], inputs["propagation"]).transpose(1, 2).flatten(2)
    rank, representative = distinct_states(states)
    flat = states.reshape(-1, states.shape[-1])
    distinct, inverse = torch.unique(flat, dim=0, return_inverse=True)  # independent: sorting whole rows
    assert len(representative) == len(distinct) > 100
    # the same partition of the vertices: rank and inverse map one-to-one
    pairs = torch.unique(torch.stack([rank.flatten(), inverse]), dim=1)
    assert pairs.shape[1] == len(distinct)
    assert torch.equal(flat[representative][rank.flatten()], flat)


def test_distinct_states_refuse_a_key_collision(monkeypatch):
    import model
    monkeypatch.setattr(model, "state_keys", lambda flat: torch.zeros(len(flat), dtype=torch.float64))
    states = torch.tensor([[[0.5, 0.0], [0.0, 0.5]]])
    assert model.distinct_states(states) is None
    assert state_keys(states[0]).unique().numel() == 2


@pytest.mark.parametrize("rule, num_models, count", [("faithful", 1, None), ("uniform", 2, 20000)])
def test_fast_inference_equals_forward(space, rule, num_models, count):
    """Inference through the vertex-state table (train.predict) against the plain forward, on all 423,624
    architectures (faithful) or a random 20,000 (uniform), and against the reference implementation."""
    import train
    rows = np.arange(len(space)) if count is None else np.random.default_rng(1).choice(len(space), count,
                                                                                        replace=False)
    graphs = graph_tensors(space.adjacency[rows], space.operations[rows], space.num_vertices[rows], propagation=rule)
    model = GCNPredictor(num_models=num_models, seed=2).eval()
    fast = train.predict(model, graphs)
    with torch.no_grad():
        for part in torch.split(torch.arange(len(rows)), 4096):
            plain = model({key: value[part] for key, value in graphs.items()})
            torch.testing.assert_close(fast[:, part], plain, rtol=1e-5, atol=1e-6)
        sample = torch.arange(0, len(rows), 20)
        chunk = {key: value[sample] for key, value in graphs.items()}
        for m in range(num_models):
            reference = copy_into_reference(model, m, rule).eval()
            torch.testing.assert_close(fast[m, sample], reference(*reference_inputs(chunk)), rtol=1e-5, atol=1e-6)


def test_prediction_without_the_table_equals_the_fast_path(sample, monkeypatch):
    import model as model_module
    import train
    model = GCNPredictor(num_models=2, seed=2)
    fast = train.predict(model, sample)
    monkeypatch.setattr(model_module, "distinct_states", lambda states: None)
    plain = train.predict(model, sample)
    assert not plain.requires_grad
    torch.testing.assert_close(plain, fast, rtol=1e-5, atol=1e-6)


def test_pairwise_hinge_counts_only_ordered_pairs_within_the_margin():
    output = torch.tensor([[0.0, 0.05, 1.0]])
    targets = torch.tensor([[1.0, 0.0, 2.0]])  # ordered pairs (0,1): 0.05 - margin; (2,0), (2,1) beyond it
    weights = torch.full((1, 3), 1 / 3)
    # pair (0, 1): relu(0.1 - (0.0 - 0.05)) = 0.15; mean over the 3 pairs
    assert pairwise_hinge(output, targets, weights).item() == pytest.approx(0.15 / 3)
    assert batch_loss(output, targets, weights, "mse+hinge").item() == pytest.approx(
        ((output - targets) ** 2).mean().item() + 0.05)
    with pytest.raises(ValueError, match="loss"):
        batch_loss(output, targets, weights, "l1")


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
