"""The predictors: plain torch.nn.Modules that train through autograd, each a stack of M independent models.

    python model.py          # parameter counts and a forward pass of each predictor

`PREDICTORS` names them (`train.py --predictor gcn|mlp|cnn|transformer`); adding one is one class here and
one line there. Every predictor holds M models with stacked weights (layer weights (M, ...),
slice m is model m) so that M trainings (seeds, folds, search runs) run as one batched
model; forward takes graphs shared by all models (B, ...) or one batch per model (M, B, ...)
and returns (M, B) raw outputs. Dropout uses given keep-masks (`dropout_sites` says their
shapes) or, without them, torch's own.

- `GCN`, the paper's predictor (REFERENCE.md). One layer, with P = rownorm(adjacency + identity):
      h' = dropout((relu(P h W1) + relu(B h W2)) / 2)
  where the backward matrix B is rownorm(P^T) as in the public reproduction ("faithful"), or
  rownorm((adjacency + identity)^T) ("uniform"); see propagation_matrices. Three layers of
  hidden size 144, mean over the real vertices, linear 128, dropout, linear 1; no biases;
  Xavier-uniform init of the GCN layers, torch.nn.Linear's default init of the readout (as
  the public reproduction; `readout_init="xavier"` for Xavier there too). `precision="bf16"`:
  mixed-precision training, each GCN layer's weight product h W in bfloat16 (weight_product)
  while training, everything else (weights, Adam, propagation, readout, loss, evaluation) in
  the default float32. fast_gcn.py trains and evaluates this model faster, tested equal to it.
- `MLP`, the paper appendix's first baseline: the flattened upper triangle of the adjacency and
  the one-hot operations, three hidden layers.
- `CNN`, its second: the adjacency and the operations of each edge's two ends as a 7 x 7 image
  of 11 channels, two 3 x 3 convolutions, mean over the image, two linear layers.
- `Transformer`, beyond the paper: self-attention over the vertices with a learned score bias per
  relation (edge in, edge out, self, none), after TNASP and PINAT; tried for the "best" recipe
  (docs/beyond.md).
"""
import math

import torch

from nb101.search_space import MAX_VERTICES, NUM_EDGES, VERTEX_TYPES

PROPAGATION_RULES = ("faithful", "uniform")
READOUT_INITS = ("torch", "xavier")
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}  # the GCN's training-time weight products: None = the default dtype
# what a regressor can train with (bce: the classifier); "pairwise" losses rank the pairs of a batch
REGRESSION_LOSSES = ("mse", "hinge", "mse+hinge", "pairwise-bce", "mse+pairwise-bce")
LOSSES = ("mse", "bce") + REGRESSION_LOSSES[1:]
HINGE_MARGIN = 0.1  # on the normalised scale: a tenth of the labels' standard deviation


# ---------------------------------------------------------------------------
# inputs and losses


def row_normalise(matrix):
    """Each row divided by its sum."""
    return matrix / matrix.sum(-1, keepdim=True)


def propagation_matrices(adjacency, rule="faithful"):
    """(..., 7, 7) 0/1 adjacency -> (..., 2, 7, 7): the forward and backward propagation matrices, each halved.

    Forward: P = rownorm(A + I). Backward, by `rule`:
      "faithful": rownorm(P^T), as the public reproduction computes it (its layer normalises the
                  transpose of the already normalised P again): a vertex weighs predecessor j by
                  1 / (out-degree(j) + 1);
      "uniform":  rownorm((A + I)^T), the same weight for every predecessor.
    The halves turn the layer's average of its two directions into a sum.
    """
    if rule not in PROPAGATION_RULES:
        raise ValueError(f"propagation rule {rule!r}: expected one of {', '.join(PROPAGATION_RULES)}")
    eye = torch.eye(adjacency.shape[-1], dtype=adjacency.dtype, device=adjacency.device)
    with_self = adjacency + eye
    forward = row_normalise(with_self)
    backward = row_normalise((forward if rule == "faithful" else with_self).transpose(-1, -2))
    return torch.stack([forward, backward], dim=-3) / 2


def model_inputs(graphs):
    """The tensors the GCN reads, made once per graph: operations, propagation and readout weights.

    `propagation` is made from `adjacency` and `readout` from `mask` when the dict lacks them.
    """
    propagation = graphs.get("propagation")
    if propagation is None:
        propagation = propagation_matrices(graphs["adjacency"])
    readout = graphs.get("readout")
    if readout is None:
        readout = graphs["mask"] / graphs["mask"].sum(-1, keepdim=True)  # mean over the real vertices
    return {"operations": graphs["operations"], "propagation": propagation, "readout": readout}


def ordered_pairs_loss(output, targets, loss_weights, penalty):
    """A ranking loss: for each model, the mean over the batch's pairs (i, j) with targets[i] > targets[j] of
    penalty(output[i] - output[j]), pairs weighted by loss_weights[i] * loss_weights[j] (M, B) and scaled so that
    weights 1/B give the mean over all pairs."""
    b = output.shape[-1]
    pair_weights = loss_weights.unsqueeze(-1) * loss_weights.unsqueeze(-2)
    ordered = targets.unsqueeze(-1) > targets.unsqueeze(-2)
    penalties = penalty(output.unsqueeze(-1) - output.unsqueeze(-2))
    return (pair_weights * ordered * penalties).sum() * (2 * b / max(b - 1, 1))


def pairwise_hinge(output, targets, loss_weights, margin=HINGE_MARGIN):
    """relu(margin - (output[i] - output[j])) on the ordered pairs (ordered_pairs_loss)."""
    return ordered_pairs_loss(output, targets, loss_weights, lambda difference: torch.relu(margin - difference))


def pairwise_bce(output, targets, loss_weights):
    """Binary cross-entropy of sigmoid(output[i] - output[j]) against 1, i.e. softplus(output[j] - output[i]), on
    the ordered pairs (ordered_pairs_loss): the ranking loss PINAT and TNASP train with."""
    return ordered_pairs_loss(output, targets, loss_weights,
                              lambda difference: torch.nn.functional.softplus(-difference))


def batch_loss(output, targets, loss_weights, loss="mse"):
    """The training loss of one batch, summed over the models of a stack: output, targets, loss_weights (M, B).

    "mse": sum(loss_weights * (output - targets)^2), each model's weights 1/B for its mean;
    "bce": the same with binary cross-entropy on logits (the cascade's classifier);
    "hinge": pairwise_hinge, a ranking loss (outputs are then scores, not accuracies);
    "mse+hinge": the sum of the two;
    "pairwise-bce": pairwise_bce, a ranking loss; "mse+pairwise-bce": the sum of MSE and it.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss {loss!r}: expected one of {', '.join(LOSSES)}")
    if loss == "bce":
        return (loss_weights * torch.nn.functional.binary_cross_entropy_with_logits(
            output, targets, reduction="none")).sum()
    value = 0.0
    if "mse" in loss:
        value = value + (loss_weights * (output - targets) ** 2).sum()
    if "hinge" in loss:
        value = value + pairwise_hinge(output, targets, loss_weights)
    if "pairwise-bce" in loss:
        value = value + pairwise_bce(output, targets, loss_weights)
    return value


def weight_product(h, weight, dtype=None):
    """h @ weight; with a dtype (mixed precision) both operands rounded to it, multiplied there (bfloat16 products
    accumulate in float32 inside the kernel, then round), and the product widened back to h's dtype."""
    if dtype is None:
        return h @ weight
    return (h.to(dtype) @ weight.to(dtype)).to(h.dtype)


# ---------------------------------------------------------------------------
# predictors


def uniform_(weight, bound, generator):
    """Fill `weight` from U(-bound, bound) drawn from `generator`."""
    weight.copy_(torch.rand(weight.shape, generator=generator, dtype=weight.dtype) * (2 * bound) - bound)


class StackedPredictor(torch.nn.Module):
    """What every predictor shares: M stacked models, per-model seeded init, dropout by site. activation_size:
    floats of the largest activation one model holds per architecture (to size prediction chunks)."""

    def __init__(self, num_models, dropout):
        super().__init__()
        self.num_models, self.dropout = num_models, dropout

    @property
    def device(self):
        return next(self.parameters()).device

    def vectors(self, gradients=False):
        """(M, P) copy: row m holds model m's parameters (or their gradients), parameter after parameter."""
        tensors = [p.grad if gradients else p.detach() for p in self.parameters()]
        return torch.cat([t.reshape(self.num_models, -1) for t in tensors], dim=1)

    @torch.no_grad()
    def reset_parameters(self, seed=None):
        """With a seed, model m draws its init from its own generator seeded `seed + m`, so model m of a stack
        starts exactly as a single model built with seed `seed + m`."""
        for m in range(self.num_models):
            generator = torch.Generator().manual_seed(seed + m) if seed is not None else torch.default_generator
            self.init_model(m, generator)

    def stacked(self, inputs):
        """Inputs (B, ...) shared by all models -> (M, B, ...) views; (M, B, ...) ones as they are."""
        return {key: value if value.dim() == self.input_dims[key] + 1 else value.expand(self.num_models, *value.shape)
                for key, value in inputs.items()}

    def drop(self, x, masks, site):
        """Dropout at site number `site`: x times the given keep-mask, or torch's dropout without masks."""
        if not self.training or self.dropout == 0:
            return x
        if masks is not None:
            return x * masks[site]
        return torch.nn.functional.dropout(x, self.dropout)


class GCN(StackedPredictor):
    """The paper's bidirectional GCN (see the module docstring); forward gives (M, B) raw outputs.

    A GCN layer's weight is (M, 2, in, out): [:, 0] the forward direction's matrix, [:, 1] the
    backward one's (one tensor, so that fast_gcn multiplies both directions in one product).
    """
    input_dims = {"operations": 3, "propagation": 4, "readout": 2}

    def __init__(self, hidden=144, num_layers=3, readout=128, dropout=0.1, num_models=1, seed=None,
                 readout_init="torch", precision="fp32"):
        super().__init__(num_models, dropout)
        if readout_init not in READOUT_INITS:
            raise ValueError(f"readout_init {readout_init!r}: expected one of {', '.join(READOUT_INITS)}")
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
        self.hidden, self.num_layers, self.readout, self.readout_init = hidden, num_layers, readout, readout_init
        self.precision = precision
        sizes = [len(VERTEX_TYPES)] + [hidden] * num_layers
        self.layers = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.empty(num_models, 2, fan_in, fan_out)) for fan_in, fan_out in zip(sizes, sizes[1:])]
            + [torch.nn.Parameter(torch.empty(num_models, hidden, readout)),
               torch.nn.Parameter(torch.empty(num_models, readout, 1))])
        self.dropout_sites = [(MAX_VERTICES, hidden)] * num_layers + [(readout,)]
        self.activation_size = MAX_VERTICES * hidden
        self.reset_parameters(seed)

    def init_model(self, m, generator):
        """U(-b, b): Xavier-uniform (b = sqrt(6 / (in + out))) for the GCN layers, each drawn as one (in, 2 out)
        matrix, forward direction on the left; the readout by `readout_init`: "torch", torch.nn.Linear's
        default (b = 1 / sqrt(in)), which the public reproduction's readout gets, or "xavier"."""
        for layer, weight in enumerate(self.layers):
            fan_in, fan_out = weight.shape[-2:]
            xavier = math.sqrt(6.0 / (fan_in + fan_out))
            if layer < self.num_layers:
                drawn = torch.empty(fan_in, 2 * fan_out)
                uniform_(drawn, xavier, generator)
                weight[m].copy_(drawn.view(fan_in, 2, fan_out).transpose(0, 1))
            else:
                uniform_(weight[m], 1.0 / math.sqrt(fan_in) if self.readout_init == "torch" else xavier, generator)

    @staticmethod
    def inputs(graphs):
        return model_inputs(graphs)

    @property
    def product_dtype(self):
        """The dtype of the GCN layers' weight products now: bfloat16 while training with precision "bf16"; None
        (the weights' own) otherwise."""
        return PRECISIONS[self.precision] if self.training else None

    def forward(self, graphs, dropout_masks=None):
        inputs = self.stacked(model_inputs(graphs))
        h = inputs["operations"]  # (M, B, V, types): one-hot vertex types
        m, b, v = h.shape[:3]
        propagation = inputs["propagation"].transpose(1, 2)  # (M, 2, B, V, V): P and B of each graph, halved
        *layers, fc1, fc2 = self.layers
        low = self.product_dtype
        for layer, weight in enumerate(layers):
            y = weight_product(h.reshape(m, 1, b * v, -1), weight, low).view(m, 2, b, v, -1)  # h W1, h W2 per vertex
            h = torch.relu(propagation @ y).sum(1)  # relu(P h W1) + relu(B h W2)
            h = self.drop(h, dropout_masks, layer)
        pooled = (inputs["readout"].unsqueeze(-2) @ h).squeeze(-2)  # mean over the real vertices: (M, B, H)
        z = self.drop(pooled @ fc1, dropout_masks, self.num_layers)
        return (z @ fc2).squeeze(-1)


class StackedLinear(torch.nn.Module):
    """M independent linear layers (with bias), torch.nn.Linear's default init per model: x (M, B, in) -> (M, B, out)."""

    def __init__(self, num_models, fan_in, fan_out):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(num_models, fan_in, fan_out))
        self.bias = torch.nn.Parameter(torch.empty(num_models, 1, fan_out))

    def init_model(self, m, generator):
        bound = 1.0 / math.sqrt(self.weight.shape[1])
        uniform_(self.weight[m], bound, generator)
        uniform_(self.bias[m], bound, generator)

    def forward(self, x):
        return torch.baddbmm(self.bias, x, self.weight)


def flat_features(graphs):
    """(..., 21 + 35): the upper triangle of the adjacency and the one-hot operations, flattened (the MLP's input)."""
    rows, columns = torch.triu_indices(MAX_VERTICES, MAX_VERTICES, offset=1)
    edges = graphs["adjacency"][..., rows, columns]
    return torch.cat([edges, graphs["operations"].flatten(-2)], dim=-1)


class MLP(StackedPredictor):
    """Multi-layer perceptron on flat_features: `layers` hidden layers of `hidden` units, relu, dropout."""
    input_dims = {"features": 2}

    def __init__(self, hidden=256, num_layers=3, dropout=0.1, num_models=1, seed=None):
        super().__init__(num_models, dropout)
        sizes = [NUM_EDGES + MAX_VERTICES * len(VERTEX_TYPES)] + [hidden] * num_layers
        self.hidden_layers = torch.nn.ModuleList(StackedLinear(num_models, a, b) for a, b in zip(sizes, sizes[1:]))
        self.output = StackedLinear(num_models, hidden, 1)
        self.dropout_sites = [(hidden,)] * num_layers
        self.activation_size = hidden
        self.reset_parameters(seed)

    def init_model(self, m, generator):
        for layer in [*self.hidden_layers, self.output]:
            layer.init_model(m, generator)

    @staticmethod
    def inputs(graphs):
        return {"features": graphs["features"] if "features" in graphs else flat_features(graphs)}

    def forward(self, graphs, dropout_masks=None):
        h = self.stacked(self.inputs(graphs))["features"]  # (M, B, features)
        for site, layer in enumerate(self.hidden_layers):
            h = self.drop(torch.relu(layer(h)), dropout_masks, site)
        return self.output(h).squeeze(-1)


def edge_image(graphs):
    """(..., 11, 7, 7): channel 0 the adjacency, channels 1-5 the one-hot type of each edge's source vertex
    (row), 6-10 that of its target vertex (column): the CNN's input."""
    operations = graphs["operations"].transpose(-1, -2)  # (..., types, V)
    size = (*operations.shape, MAX_VERTICES)
    return torch.cat([graphs["adjacency"].unsqueeze(-3), operations.unsqueeze(-1).expand(size),
                      operations.unsqueeze(-2).expand(size)], dim=-3)


class CNN(StackedPredictor):
    """Convolutional network on edge_image: two 3 x 3 convolutions (padding 1) with relu, the mean over the
    image, a hidden linear layer with relu and dropout, a linear output. The M models' convolutions run as
    one grouped convolution."""
    input_dims = {"image": 4}

    def __init__(self, channels=(32, 64), hidden=128, dropout=0.1, num_models=1, seed=None):
        super().__init__(num_models, dropout)
        sizes = [1 + 2 * len(VERTEX_TYPES), *channels]
        self.convolutions = torch.nn.ParameterList(
            torch.nn.Parameter(torch.empty(num_models, b, a, 3, 3)) for a, b in zip(sizes, sizes[1:]))
        self.conv_biases = torch.nn.ParameterList(torch.nn.Parameter(torch.empty(num_models, b)) for b in sizes[1:])
        self.hidden = StackedLinear(num_models, channels[-1], hidden)
        self.output = StackedLinear(num_models, hidden, 1)
        self.dropout_sites = [(hidden,)]
        self.activation_size = channels[-1] * MAX_VERTICES ** 2
        self.reset_parameters(seed)

    def init_model(self, m, generator):
        """torch.nn.Conv2d's and torch.nn.Linear's default init: U(+-1/sqrt(fan_in)) for weights and biases."""
        for weight, bias in zip(self.convolutions, self.conv_biases):
            bound = 1.0 / math.sqrt(weight[m, 0].numel())
            uniform_(weight[m], bound, generator)
            uniform_(bias[m], bound, generator)
        self.hidden.init_model(m, generator)
        self.output.init_model(m, generator)

    @staticmethod
    def inputs(graphs):
        return {"image": graphs["image"] if "image" in graphs else edge_image(graphs)}

    def forward(self, graphs, dropout_masks=None):
        x = self.stacked(self.inputs(graphs))["image"]  # (M, B, C, 7, 7)
        m, b = x.shape[:2]
        x = x.transpose(0, 1).reshape(b, -1, MAX_VERTICES, MAX_VERTICES)  # (B, M C, 7, 7): model m's channels in block m
        for weight, bias in zip(self.convolutions, self.conv_biases):
            x = torch.relu(torch.nn.functional.conv2d(x, weight.flatten(0, 1), bias.flatten(), padding=1, groups=m))
        pooled = x.mean((-1, -2)).view(b, m, -1).transpose(0, 1)  # (M, B, channels)
        return self.output(self.drop(torch.relu(self.hidden(pooled)), dropout_masks, 0)).squeeze(-1)


def vertex_relations(graphs):
    """(..., 7, 7, 4) one-hot relation of vertex i to vertex j, which the Transformer's attention reads:
    0 none, 1 the same vertex, 2 an edge i -> j (j a successor), 3 an edge j -> i (j a predecessor)."""
    adjacency = graphs["adjacency"]
    eye = torch.eye(adjacency.shape[-1], dtype=adjacency.dtype, device=adjacency.device).expand_as(adjacency)
    successor, predecessor = adjacency, adjacency.transpose(-1, -2)
    return torch.stack([1 - eye - successor - predecessor, eye, successor, predecessor], dim=-1)


class Transformer(StackedPredictor):
    """A graph transformer over the cell's vertices, after TNASP and PINAT (REFERENCE.md).

    Tokens: the one-hot operation of each vertex, embedded, plus a learned embedding of its
    position (NAS-Bench-101 numbers vertices in topological order). `num_layers` pre-norm
    blocks of multi-head self-attention over the real vertices, whose scores get a learned
    bias per head for each vertex_relations class (the graph enters only there), and a relu
    feed-forward layer of 2 x `hidden`; dropout after each. Readout: mean over the real vertices,
    linear `hidden`, relu, dropout, linear 1. Linear layers take torch.nn.Linear's default init.
    """
    input_dims = {"operations": 3, "relations": 4, "mask": 2}

    def __init__(self, hidden=64, num_layers=3, heads=4, dropout=0.1, num_models=1, seed=None):
        super().__init__(num_models, dropout)
        if hidden % heads:
            raise ValueError(f"hidden size {hidden} is not a multiple of the {heads} heads")
        self.hidden, self.num_layers, self.heads = hidden, num_layers, heads
        self.embed = StackedLinear(num_models, len(VERTEX_TYPES), hidden)
        self.position = torch.nn.Parameter(torch.empty(num_models, 1, MAX_VERTICES, hidden))
        self.relation_bias = torch.nn.Parameter(torch.empty(num_models, 4, heads))
        linear = lambda a, b: StackedLinear(num_models, a, b)  # noqa: E731
        self.blocks = torch.nn.ModuleList(torch.nn.ModuleDict({
            "qkv": linear(hidden, 3 * hidden), "out": linear(hidden, hidden),
            "up": linear(hidden, 2 * hidden), "down": linear(2 * hidden, hidden)}) for _ in range(num_layers))
        self.norms = torch.nn.Parameter(torch.empty(num_models, 2 * num_layers + 1, 2, hidden))  # gain, bias
        self.head = linear(hidden, hidden)
        self.output = linear(hidden, 1)
        self.dropout_sites = [(MAX_VERTICES, hidden)] * (2 * num_layers) + [(hidden,)]
        self.activation_size = MAX_VERTICES * 3 * hidden
        self.reset_parameters(seed)

    def init_model(self, m, generator):
        """torch.nn.Linear's default for the linear layers, positions U(-0.1, 0.1), relation biases 0, and
        torch.nn.LayerNorm's gain 1 and bias 0."""
        for layer in [self.embed, *(layer for block in self.blocks for layer in block.values()), self.head,
                      self.output]:
            layer.init_model(m, generator)
        uniform_(self.position[m], 0.1, generator)
        self.relation_bias[m].zero_()
        self.norms[m, :, 0].fill_(1.0)
        self.norms[m, :, 1].zero_()

    @staticmethod
    def inputs(graphs):
        relations = graphs["relations"] if "relations" in graphs else vertex_relations(graphs)
        return {"operations": graphs["operations"], "relations": relations, "mask": graphs["mask"]}

    def norm(self, x, index):
        """Layer norm number `index` of (M, B, V, d) activations: torch's, with each model's own gain and bias."""
        gain, bias = self.norms[:, index, 0, None, None], self.norms[:, index, 1, None, None]
        return torch.nn.functional.layer_norm(x, x.shape[-1:]) * gain + bias

    def forward(self, graphs, dropout_masks=None):
        inputs = self.stacked(self.inputs(graphs))
        mask = inputs["mask"]  # (M, B, V)
        m, b, v = mask.shape
        heads, width = self.heads, self.hidden // self.heads
        x = self.embed(inputs["operations"].reshape(m, b * v, -1)).view(m, b, v, -1) + self.position
        # (M, heads, B, V, V) score biases from the relations; padding vertices are never attended to
        bias = torch.einsum("mbijr,mrh->mhbij", inputs["relations"], self.relation_bias)
        bias = bias.masked_fill(mask[:, None, :, None, :] == 0, float("-inf"))
        for layer, block in enumerate(self.blocks):
            qkv = block["qkv"](self.norm(x, 2 * layer).view(m, b * v, -1)).view(m, b, v, 3, heads, width)
            q, k, values = qkv.permute(3, 0, 4, 1, 2, 5)  # each (M, heads, B, V, width)
            attention = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(width) + bias, dim=-1)
            mixed = (attention @ values).permute(0, 2, 3, 1, 4).reshape(m, b * v, -1)
            x = x + self.drop(block["out"](mixed).view(m, b, v, -1), dropout_masks, 2 * layer)
            up = torch.relu(block["up"](self.norm(x, 2 * layer + 1).view(m, b * v, -1)))
            x = x + self.drop(block["down"](up).view(m, b, v, -1), dropout_masks, 2 * layer + 1)
        x = self.norm(x, 2 * self.num_layers)
        pooled = (mask / mask.sum(-1, keepdim=True)).unsqueeze(-2) @ x  # mean over the real vertices
        z = self.drop(torch.relu(self.head(pooled.squeeze(-2))), dropout_masks, 2 * self.num_layers)
        return self.output(z).squeeze(-1)


PREDICTORS = {"gcn": GCN, "mlp": MLP, "cnn": CNN, "transformer": Transformer}


def build_predictor(name, num_models=1, seed=None, dropout=0.1, gcn_hidden=144, gcn_layers=3,
                    readout_init="torch", precision="fp32"):
    """The predictor `name` of PREDICTORS with M models; gcn_hidden, gcn_layers, readout_init and precision are the
    GCN's options (the recipe's; precision "bf16" for the GCN only), the others keep their own sizes."""
    if name not in PREDICTORS:
        raise ValueError(f"predictor {name!r}: expected one of {', '.join(PREDICTORS)}")
    if name != "gcn" and precision != "fp32":
        raise ValueError(f"precision {precision}: mixed precision exists for the GCN only, not for {name}")
    options = {"hidden": gcn_hidden, "num_layers": gcn_layers, "readout_init": readout_init,
               "precision": precision} if name == "gcn" else {}
    return PREDICTORS[name](num_models=num_models, seed=seed, dropout=dropout, **options)


if __name__ == "__main__":
    # the smallest graph: input -> output, 2 vertices
    adjacency = torch.zeros(1, MAX_VERTICES, MAX_VERTICES)
    adjacency[0, 0, 1] = 1
    operations = torch.zeros(1, MAX_VERTICES, len(VERTEX_TYPES))
    operations[0, 0, VERTEX_TYPES.index("input")] = operations[0, 1, VERTEX_TYPES.index("output")] = 1
    mask = torch.zeros(1, MAX_VERTICES)
    mask[0, :2] = 1
    graphs = {"adjacency": adjacency, "operations": operations, "mask": mask}
    for name in PREDICTORS:
        predictor = build_predictor(name, seed=0).eval()
        print(f"{name}: {predictor.vectors().shape[1]:,} parameters per model; output on the 2-vertex graph: "
              f"{predictor(graphs).item():+.4f}")
