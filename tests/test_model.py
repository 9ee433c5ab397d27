"""Tests of model.py: the GCN against an independent implementation, invariances, init; the MLP and CNN."""
import math

import numpy as np
import pytest
import torch

from dataset import graph_tensors
from model import (CNN, GCN, MLP, PREDICTORS, Transformer, batch_loss, build_predictor, pairwise_bce, pairwise_hinge,
                   propagation_matrices, vertex_relations)
from reference_predictor import copy_into_reference, reference_inputs


@pytest.mark.parametrize("propagation", ["faithful", "uniform"])
def test_forward_equals_the_reference_implementation_for_every_vertex_count(space, propagation):
    model = GCN(num_models=3, seed=5).eval()
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


@pytest.mark.parametrize("name", sorted(PREDICTORS))
def test_shapes_for_every_vertex_count(space, name):
    model = build_predictor(name, num_models=2, seed=0).eval()
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
    model = GCN(num_models=2, seed=3).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(permuted), model(sample), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("predictor", [GCN, Transformer])
def test_padding_is_ignored(sample, predictor):
    """Adding isolated padded vertices with an operation type to a graph changes nothing."""
    model = predictor(seed=0).eval()
    small = sample["mask"].sum(1) < 7
    polluted = dict(sample)
    polluted.pop("propagation")
    polluted["operations"] = sample["operations"] + (1 - sample["mask"])[..., None] * torch.eye(5)[2]
    with torch.no_grad():
        torch.testing.assert_close(model(polluted)[:, small], model(sample)[:, small])


@pytest.mark.parametrize("predictor", [GCN, MLP, CNN, Transformer])
def test_stacked_models_match_single_models(sample, predictor):
    stack = predictor(num_models=3, seed=10).eval()
    per_model_batches = {key: value[:50].expand(3, *value[:50].shape) for key, value in sample.items()}
    with torch.no_grad():
        shared, separate = stack(sample), stack(per_model_batches)
        for m in range(3):
            single = predictor(num_models=1, seed=10 + m).eval()
            assert torch.equal(single.vectors()[0], stack.vectors()[m])
            torch.testing.assert_close(single(sample)[0], shared[m])
    torch.testing.assert_close(separate, shared[:, :50])


@pytest.mark.parametrize("readout_init", ["torch", "xavier"])
def test_init_per_model_slice(readout_init):
    """Xavier-uniform GCN layers; the readout as torch.nn.Linear initialises it (U(+-1/sqrt(in))) or Xavier."""
    model = GCN(num_models=4, seed=0, readout_init=readout_init)
    for layer, weight in enumerate(model.layers):
        fan_in, fan_out = weight.shape[-2:]
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




def test_pairwise_bce_is_the_cross_entropy_of_each_ordered_pair():
    output = torch.tensor([[0.0, 0.5, 2.0]])
    targets = torch.tensor([[1.0, 0.0, 2.0]])  # ordered pairs: (0, 1), (2, 0), (2, 1)
    weights = torch.full((1, 3), 1 / 3)
    expected = np.mean([np.log1p(np.exp(-(a - b))) for a, b in [(0.0, 0.5), (2.0, 0.0), (2.0, 0.5)]])
    assert pairwise_bce(output, targets, weights).item() == pytest.approx(expected)
    assert batch_loss(output, targets, weights, "mse+pairwise-bce").item() == pytest.approx(
        ((output - targets) ** 2).mean().item() + expected)


def test_transformer_equals_torchs_own_layers(sample):
    """One model's forward rebuilt from torch.nn.functional's layer_norm, linear and scaled_dot_product_attention,
    with the relation biases as the attention mask and padding masked out."""
    model = Transformer(seed=5, hidden=32, heads=4, num_layers=2).eval()
    with torch.no_grad():
        model.relation_bias.uniform_(-1, 1)  # the init's zeros would hide a wrong relation index
        model.norms.uniform_(0.5, 1.5)
        graphs = {key: value[:20] for key, value in sample.items()}
        functional = torch.nn.functional

        def linear(layer, x):
            return functional.linear(x, layer.weight[0].T, layer.bias[0, 0])

        def norm(x, index):
            return functional.layer_norm(x, (32,), model.norms[0, index, 0], model.norms[0, index, 1])

        x = linear(model.embed, graphs["operations"]) + model.position[0]
        relations = vertex_relations(graphs)
        mask = torch.einsum("bijr,rh->bhij", relations, model.relation_bias[0])
        mask = mask.masked_fill(graphs["mask"][:, None, None, :] == 0, float("-inf"))
        for layer, block in enumerate(model.blocks):
            q, k, v = linear(block["qkv"], norm(x, 2 * layer)).split(32, dim=-1)
            heads = [t.unflatten(-1, (4, 8)).transpose(1, 2) for t in (q, k, v)]  # (B, heads, V, 8)
            attended = functional.scaled_dot_product_attention(*heads, attn_mask=mask)
            x = x + linear(block["out"], attended.transpose(1, 2).flatten(-2))
            x = x + linear(block["down"], torch.relu(linear(block["up"], norm(x, 2 * layer + 1))))
        x = norm(x, 4)
        pooled = (x * graphs["mask"][..., None]).sum(1) / graphs["mask"].sum(1, keepdim=True)
        expected = linear(model.output, torch.relu(linear(model.head, pooled))).squeeze(-1)
        torch.testing.assert_close(model(graphs)[0], expected, rtol=1e-5, atol=1e-5)


def test_vertex_relations_name_each_pair_once():
    adjacency = torch.zeros(1, 7, 7)
    adjacency[0, 0, 1] = adjacency[0, 1, 2] = 1
    relations = vertex_relations({"adjacency": adjacency})
    assert torch.equal(relations.sum(-1), torch.ones(1, 7, 7))
    assert relations[0, 0, 1, 2] == 1 and relations[0, 1, 0, 3] == 1 and relations[0, 2, 2, 1] == 1
    assert relations[0, 0, 2, 0] == 1


def test_mlp_and_cnn_read_the_graph_as_the_paper_appendix_says(sample):
    """MLP: the 21 upper-triangle entries and the 7 x 5 one-hot types; CNN: an 11-channel 7 x 7 image whose
    channel 0 is the adjacency and channels 1-10 the types of each entry's row and column vertex."""
    from model import edge_image, flat_features
    features = flat_features(sample)
    assert features.shape == (len(sample["adjacency"]), 21 + 35)
    rows, columns = np.triu_indices(7, 1)
    assert torch.equal(features[:, :21], sample["adjacency"][:, rows, columns])
    image = edge_image(sample)
    g, i, j = 5, 2, 4
    assert torch.equal(image[g, 0], sample["adjacency"][g])
    assert torch.equal(image[g, 1:6, i, j], sample["operations"][g, i])
    assert torch.equal(image[g, 6:11, i, j], sample["operations"][g, j])


@pytest.mark.parametrize("predictor", [GCN, MLP, CNN, Transformer])
def test_dropout_masks_are_the_models_dropout(sample, predictor):
    """Given keep-masks of every site replace torch's dropout: all-ones masks give the eval output, and a mask
    that drops everything at the last site gives the output of a zero input there."""
    model = predictor(num_models=2, seed=0)
    batch = {key: value[:8] for key, value in sample.items()}
    ones = [torch.ones(2, 8, *site) for site in model.dropout_sites]
    with torch.no_grad():
        evaluated = model.eval()(batch)
        model.train()
        torch.testing.assert_close(model(batch, ones), evaluated)
        zeros = ones[:-1] + [torch.zeros_like(ones[-1])]
        dropped = model(batch, zeros)
    assert not torch.allclose(dropped, evaluated)
    assert torch.allclose(dropped[:, 0], dropped[:, 1:].mean(1), atol=1e-6) or dropped.std(1).max() < 1e-6


def test_build_predictor_names_what_it_knows():
    with pytest.raises(ValueError, match="predictor 'rnn': expected one of gcn, mlp, cnn, transformer"):
        build_predictor("rnn")
