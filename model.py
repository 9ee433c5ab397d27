"""The Neural Predictor's bidirectional GCN, as a stack of independent models.

    python model.py          # parameter count and a forward pass on the smallest graphs

One GCN layer (REFERENCE.md): with P = rownorm(adjacency + identity),
    h' = dropout((relu(P h W1) + relu(B h W2)) / 2)
where the backward matrix B is rownorm(P^T) as in the public reproduction ("faithful"), or
rownorm((adjacency + identity)^T) ("uniform"); see propagation_matrices.
Three layers of hidden size 144, mean over the real vertices, linear 128, dropout,
linear 1; no biases; Xavier-uniform init of the GCN layers, torch.nn.Linear's default init
of the readout (as in the public reproduction; `readout_init="xavier"` for Xavier there too).

`GCNPredictor(num_models=M)` holds M such predictors with stacked weights, so M
trainings (seeds, folds, search runs) run as one batched model: each layer is one
(M, ...) parameter, slice m of every layer is model m. A GCN layer's weight is
(M, 2, in, out), the two directions' matrices one after the other, so that one bmm
over (model, direction) pairs computes both directions of every model: an even
number of equal products, which two cores share evenly. Training steps go through
`loss_and_gradient`, a forward and backward pass written out by hand (no autograd),
on any slice of the stack.

Inference (`infer`) skips most of the first two layers: a vertex's first-layer output
depends only on its propagated one-hot inputs in the two directions, and the whole
space has only a few thousand distinct ones, so their products with the second layer's
weights are computed once (`first_layer_table`) and gathered.
"""
import math

import torch

NUM_OPERATION_TYPES = 5
MAX_VERTICES = 7


PROPAGATION_RULES = ("faithful", "uniform")
KEY_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)  # state_keys weighs value i by sqrt(KEY_PRIMES[i])


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
    """The tensors forward reads, made once per graph: operations, propagation and readout weights.

    `propagation` is made from `adjacency` and `readout` from `mask` when the dict lacks them.
    """
    propagation = graphs.get("propagation")
    if propagation is None:
        propagation = propagation_matrices(graphs["adjacency"])
    readout = graphs.get("readout")
    if readout is None:
        readout = graphs["mask"] / graphs["mask"].sum(-1, keepdim=True)  # mean over the real vertices
    return {"operations": graphs["operations"], "propagation": propagation, "readout": readout}


def direction_major(propagation):
    """(M, B, 2, V, V) propagation matrices -> (M * 2 * B, V, V), ordered (model, direction, graph) as
    loss_and_gradient lays out its activations."""
    m, b, _, v, _ = propagation.shape
    return propagation.transpose(1, 2).reshape(m * 2 * b, v, v)


def joined(weight):
    """(M, 2, in, out) GCN weight -> (M, in, 2 * out): both directions side by side, for inference."""
    m, _, fan_in, fan_out = weight.shape
    return weight.permute(0, 2, 1, 3).reshape(m, fan_in, 2 * fan_out)


def propagate(y, propagation):
    """One GCN layer after its (joined) weight product, without gradient: relu(P0 y0) + relu(P1 y1).

    One bmm per direction on a strided half of y: at inference, with a thousand graphs per
    chunk, copying the halves into one tensor costs more than the second call.
    """
    *batch, vertices, columns = y.shape
    half = columns // 2
    p = propagation.expand(*batch, 2, vertices, vertices)
    forward, backward = (torch.bmm(p[..., d, :, :].reshape(-1, vertices, vertices),
                                   y[..., d * half:(d + 1) * half].reshape(-1, vertices, half)).relu_()
                         for d in range(2))
    return forward.add_(backward).view(*batch, vertices, half)


def first_layer_inputs(operations, propagation):
    """(L, 2, V, types): each vertex's first-layer input in each direction, propagation applied to the one-hot types."""
    return propagation @ operations.unsqueeze(1)


def state_keys(states):
    """(..., D) float32 vertex states -> (...) float64 keys: bit-identical states get equal keys.

    The key is the dot product with fixed weights (square roots of primes), in float64, so
    different states almost never share one; the caller checks that they do not. One matrix
    product: exact integer hashing of the bits costs ten times more on three million vertices.
    """
    weights = torch.tensor(KEY_PRIMES[:states.shape[-1]], dtype=torch.float64, device=states.device).sqrt()
    return states.double() @ weights


def distinct_states(states):
    """(rank (L, V), representative (K,)) for (L, V, D) float32 vertex states: vertices with bit-identical
    states share a rank 0..K-1, and representative[k] is the flat index of one vertex of rank k.
    Returns None when two different states share a key (then the caller takes the plain path)."""
    flat = states.reshape(-1, states.shape[-1])
    _, rank = torch.unique(state_keys(flat), return_inverse=True)
    count = int(rank.max()) + 1 if rank.numel() else 0
    representative = torch.empty(count, dtype=torch.long, device=states.device)
    representative.scatter_(0, rank, torch.arange(len(flat), device=states.device))
    if not torch.equal(flat[representative][rank], flat):
        return None
    return rank.view(states.shape[:-1]), representative


REGRESSION_LOSSES = ("mse", "hinge", "mse+hinge")  # what a regressor can train with (bce: the classifier)
LOSSES = ("mse", "bce", "hinge", "mse+hinge")
READOUT_INITS = ("torch", "xavier")
HINGE_MARGIN = 0.1  # on the normalised scale: a tenth of the labels' standard deviation


def pairwise_hinge(output, targets, loss_weights, margin=HINGE_MARGIN):
    """Ranking loss on ordered pairs: for each model, the mean over the batch's pairs (i, j) with
    targets[i] > targets[j] of relu(margin - (output[i] - output[j])), pairs weighted by
    loss_weights[i] * loss_weights[j] (M, B) and scaled so that weights 1/B give the mean over all pairs."""
    b = output.shape[-1]
    pair_weights = loss_weights.unsqueeze(-1) * loss_weights.unsqueeze(-2)
    ordered = targets.unsqueeze(-1) > targets.unsqueeze(-2)
    hinge = torch.relu(margin - (output.unsqueeze(-1) - output.unsqueeze(-2)))
    return (pair_weights * ordered * hinge).sum() * (2 * b / max(b - 1, 1))


def batch_loss(output, targets, loss_weights, loss="mse"):
    """The training loss of one batch, summed over the models of a stack: output, targets, loss_weights (M, B).

    "mse": sum(loss_weights * (output - targets)^2), each model's weights 1/B for its mean;
    "bce": the same with binary cross-entropy on logits (the cascade's classifier);
    "hinge": pairwise_hinge, a ranking loss (outputs are then scores, not accuracies);
    "mse+hinge": the sum of the two.
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
    return value


class GCNPredictor(torch.nn.Module):
    """M independent GCN predictors with stacked weights; forward gives (M, B) raw outputs."""

    def __init__(self, hidden=144, num_layers=3, readout=128, dropout=0.1, num_models=1, seed=None,
                 readout_init="torch"):
        super().__init__()
        if readout_init not in READOUT_INITS:
            raise ValueError(f"readout_init {readout_init!r}: expected one of {', '.join(READOUT_INITS)}")
        self.hidden, self.num_layers, self.readout = hidden, num_layers, readout
        self.dropout, self.num_models, self.readout_init = dropout, num_models, readout_init
        # (fan_in, fan_out, directions) of each weight matrix: the GCN layers, then the two readout layers
        self.shapes = [(NUM_OPERATION_TYPES if i == 0 else hidden, hidden, 2) for i in range(num_layers)]
        self.shapes += [(hidden, readout, 1), (readout, 1, 1)]
        self.layers = torch.nn.ParameterList(
            torch.nn.Parameter(torch.empty(num_models, *([directions] if directions > 1 else []), fan_in, fan_out))
            for fan_in, fan_out, directions in self.shapes)
        self.reset_parameters(seed)

    @property
    def device(self):
        return self.layers[0].device

    def vectors(self, gradients=False):
        """(M, P) copy: row m holds model m's parameters (or their gradients), layer after layer."""
        tensors = [p.grad if gradients else p.detach() for p in self.layers]
        return torch.cat([t.reshape(self.num_models, -1) for t in tensors], dim=1)

    @torch.no_grad()
    def reset_parameters(self, seed=None):
        """Init of every weight matrix of every model: U(-b, b), Xavier-uniform (b = sqrt(6 / (in + out))) for
        the GCN layers; for the two readout layers by `readout_init`: "torch", torch.nn.Linear's default
        (b = 1 / sqrt(in)), which the public reproduction's readout gets, or "xavier".

        With a seed, model m draws from its own generator seeded `seed + m`, so model m of a
        stack starts exactly as a single model built with seed `seed + m`. A GCN layer draws its
        two directions as one (in, 2 out) matrix, forward direction on the left.
        """
        for m in range(self.num_models):
            generator = None if seed is None else torch.Generator().manual_seed(seed + m)
            for layer, (weight, (fan_in, fan_out, directions)) in enumerate(zip(self.layers, self.shapes)):
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                if layer >= self.num_layers and self.readout_init == "torch":
                    bound = 1.0 / math.sqrt(fan_in)
                values = torch.rand(fan_in, directions * fan_out, generator=generator) * (2 * bound) - bound
                weight[m].copy_(values.view(fan_in, directions, fan_out).transpose(0, 1).reshape(weight[m].shape))

    def sample_dropout_masks(self, batch_shape, buffers=None, generators=None, steps=None):
        """Scaled keep-masks (0 or 1/(1-p)) of every dropout site for batches of shape `batch_shape`.

        batch_shape is (M, B) for one step, or (S, M, B) to draw S steps at once. Each draw of
        64 random bits serves four 16-bit comparisons (4x fewer draws than torch.rand), so p is
        rounded to a multiple of 2^-16 (0.1 becomes 0.1000061). generators: one per model, model
        m's masks drawn from generators[m], site by site, for its first steps[m] steps only (its
        later masks are left as they are; default: all S); without them, the whole stack draws
        from the global generator. buffers: a dict that keeps the working memory between calls
        (a call's masks are then overwritten by the next); fresh large tensors every epoch cost
        more than drawing the bits.
        """
        threshold = round(self.dropout * 2 ** 16) - 2 ** 15  # int16 values below it are dropped
        scale = 1.0 / (1.0 - self.dropout)
        sites = [(MAX_VERTICES, self.hidden)] * self.num_layers + [(self.readout,)]
        masks = []
        for index, site in enumerate(sites):
            shape = (*batch_shape, *site)
            key = (index, shape, self.device)
            if buffers is None or key not in buffers:
                working = (torch.empty((math.prod(shape) + 3) // 4, dtype=torch.int64, device=self.device),
                           torch.zeros(shape, device=self.device))
                if buffers is not None:
                    buffers[key] = working
            bits, mask = buffers[key] if buffers is not None else working
            if generators is None:
                draws = [(None, mask)]
            else:  # model m's slice: (steps[m], 1, B, ...) of the (S, M, B, ...) masks, or (1, B, ...) of (M, B, ...)
                model_axis = len(batch_shape) - 2
                draws = [(g, mask.narrow(model_axis, m, 1)) for m, g in enumerate(generators)]
                if steps is not None:
                    draws = [(g, out.narrow(0, 0, count)) for (g, out), count in zip(draws, steps)]
            for generator, out in draws:
                count = out.numel()
                drawn = bits[:(count + 3) // 4].random_(-2 ** 63, None, generator=generator)  # all 64 bits: the
                # default range would leave the top one 0
                # the comparison written straight as 0.0 / 1.0: several times faster than through a bool tensor
                torch.ge(drawn.view(torch.int16)[:count].view(out.shape), threshold, out=out).mul_(scale)
            masks.append(mask)
        return masks

    def forward(self, graphs, dropout_masks=None):
        """graphs: dict of (B, ...) tensors shared by all models or (M, B, ...) one batch per model -> (M, B).

        In training mode, dropout uses `dropout_masks` (see sample_dropout_masks) or draws its own.
        """
        inputs = model_inputs(graphs)
        operations, propagation, readout = inputs["operations"], inputs["propagation"], inputs["readout"]
        if operations.dim() == 3:  # one batch for all models
            operations, propagation, readout = (t.expand(self.num_models, *t.shape)
                                                for t in (operations, propagation, readout))
        m, b, v = operations.shape[:3]
        if not self.training or self.dropout == 0:
            dropout_masks = None
        elif dropout_masks is None:
            dropout_masks = self.sample_dropout_masks((m, b))
        *gcn, fc1, fc2 = self.layers
        propagation = direction_major(propagation)
        h = operations
        for layer, weight in enumerate(gcn):
            y = torch.matmul(h.reshape(m, 1, b * v, -1), weight)  # (M, 2, B V, H): each direction's product
            passed = torch.bmm(propagation, y.reshape(-1, v, self.hidden)).relu().view(m, 2, b, v, -1)
            h = passed[:, 0] + passed[:, 1]
            if dropout_masks is not None:
                h = h * dropout_masks[layer]
        return self._head(h, readout, fc1, fc2, None if dropout_masks is None else dropout_masks[-1])

    @torch.no_grad()
    def slice_views(self, models=slice(None)):
        """(weights, gradients): per-layer views of the parameters and of their .grad for a slice of the
        stack; they stay valid while both are updated in place, as training does."""
        for p in self.layers:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        return [p.detach()[models] for p in self.layers], [p.grad[models] for p in self.layers]

    def loss_and_gradient(self, graphs, targets, loss_weights, loss="mse", dropout_masks=None, models=slice(None),
                          views=None):
        """Weighted loss sum(loss_weights * loss(output, targets)) of one training batch; its gradient goes to .grad.

        graphs: model_inputs with (M, B, ...) tensors; targets, loss_weights (M, B); loss: one of
        LOSSES (see batch_loss); dropout_masks: one step's
        sample_dropout_masks, or None for no dropout; models: the slice of the stack this batch is for
        (the other models' gradients are left alone); views: slice_views(models), for a caller that
        steps many times and would otherwise remake them every step. It reads the weights through those
        detached views, so autograd records nothing and no no_grad context is paid per step. The same
        numbers as autograd through `forward`, but written out by hand: at batch size 10, autograd's bookkeeping of
        some sixty tiny operations would cost more than the arithmetic.

        Activations are laid out (model, direction, graph): one bmm over the M * 2 (model,
        direction) pairs multiplies h by each direction's weight (h repeated per direction; the
        copy is kept for the weight gradient), one propagates all of them, and the backward pass
        needs no transposing copies.
        """
        operations, readout = graphs["operations"], graphs["readout"]
        propagation = direction_major(graphs["propagation"])
        m, b, v = operations.shape[:3]
        hidden = self.hidden
        masks = dropout_masks if dropout_masks is not None else [None] * (self.num_layers + 1)
        weights, gradients = views if views is not None else self.slice_views(models)
        *gcn, fc1, fc2 = weights
        *grad_gcn, grad_fc1, grad_fc2 = gradients
        saved, h = [], operations
        for weight, mask in zip(gcn, masks):
            repeated = h.reshape(m, 1, b * v, -1).expand(m, 2, b * v, h.shape[-1]).reshape(m * 2, b * v, -1)
            y = torch.bmm(repeated, weight.view(m * 2, -1, hidden))
            passed = torch.bmm(propagation, y.view(-1, v, hidden)).relu_().view(m, 2, b, v, hidden)
            saved.append((repeated, passed))
            h = passed[:, 0] + passed[:, 1]
            if mask is not None:
                h.mul_(mask)
        pooled = (readout.unsqueeze(-2) @ h).view(m, b, -1)
        z = torch.bmm(pooled, fc1)
        if masks[-1] is not None:
            z.mul_(masks[-1])
        output = torch.bmm(z, fc2).view(m, b)
        if loss == "mse":
            error = output - targets
            value = (loss_weights * error * error).sum()
            grad_output = 2 * loss_weights * error
        elif loss == "bce":
            value = (loss_weights * torch.nn.functional.binary_cross_entropy_with_logits(
                output, targets, reduction="none")).sum()
            grad_output = loss_weights * (torch.sigmoid(output) - targets)
        else:  # through autograd, but on the (M, B) outputs only: tiny next to the network
            with torch.enable_grad():
                leaf = output.requires_grad_()
                value = batch_loss(leaf, targets, loss_weights, loss)
                grad_output, = torch.autograd.grad(value, leaf)
            value = value.detach()
        # backward, layer by layer, each weight's gradient written straight into its slice of .grad
        grad_output = grad_output.unsqueeze(-1)  # (M, B, 1)
        torch.bmm(z.transpose(1, 2), grad_output, out=grad_fc2)
        grad_z = grad_output * fc2.transpose(1, 2)
        if masks[-1] is not None:
            grad_z.mul_(masks[-1])
        torch.bmm(pooled.transpose(1, 2), grad_z, out=grad_fc1)
        grad_h = readout.unsqueeze(-1) * torch.bmm(grad_z, fc1.transpose(1, 2)).unsqueeze(-2)  # (M, B, V, H)
        for layer in reversed(range(self.num_layers)):
            repeated, passed = saved[layer]
            if masks[layer] is not None:
                grad_h.mul_(masks[layer])
            # through relu (relu's own backward kernel: the gradient where the output is positive), then P^T
            grad_passed = torch.ops.aten.threshold_backward(grad_h.unsqueeze(1), passed, 0).view(-1, v, hidden)
            grad_y = torch.bmm(propagation.transpose(1, 2), grad_passed).view(m * 2, b * v, hidden)
            torch.bmm(repeated.transpose(1, 2), grad_y, out=grad_gcn[layer].view(m * 2, -1, hidden))
            if layer:
                per_direction = torch.bmm(grad_y, gcn[layer].view(m * 2, -1, hidden).transpose(1, 2))
                per_direction = per_direction.view(m, 2, b, v, -1)
                grad_h = per_direction[:, 0] + per_direction[:, 1]
        return value

    def _head(self, h, readout, fc1, fc2, dropout_mask=None):
        """Mean over the real vertices, linear, dropout, linear: (M, B, V, H) -> (M, B)."""
        m, b = h.shape[:2]
        z = torch.bmm((readout.unsqueeze(-2) @ h).view(m, b, -1), fc1)
        if dropout_mask is not None:
            z = z * dropout_mask
        return torch.bmm(z, fc2).view(m, b)

    @torch.no_grad()
    def inference_weights(self):
        """The layers' weights with each GCN layer's two directions joined side by side (`joined`): inference
        multiplies by both at once, a thousand graphs per product. Make them once per prediction."""
        *gcn, fc1, fc2 = (p.detach() for p in self.layers)
        return [joined(weight) for weight in gcn] + [fc1, fc2]

    @torch.no_grad()
    def first_layer_table(self, inputs, weights=None):
        """Second-layer products of every distinct first-layer vertex state among L graphs, or None.

        inputs: model_inputs of L graphs. A vertex's first-layer output depends only on its
        first-layer inputs in the two directions (first_layer_inputs: the propagated one-hot
        types), so vertices whose inputs are bit-identical share one state; the whole space has a
        few thousand. Returns (table (M, K, 2H), slot (L, V)): vertex v of graph g has
        h1 W2 = table[:, slot[g, v]]; None in the unlikely case that two different states share a key
        (distinct_states), where the caller runs forward instead. weights: inference_weights().
        """
        x = first_layer_inputs(inputs["operations"], inputs["propagation"])  # (L, 2, V, T)
        states = x.transpose(1, 2).flatten(2)  # (L, V, 2T): both directions' inputs
        found = distinct_states(states)
        if found is None:
            return None
        slot, representative = found
        first, second = (weights or self.inference_weights())[:2]
        x = states.reshape(-1, 2, x.shape[-1])[representative]  # (K, 2, T)
        h = sum(torch.relu(x[:, d] @ first[:, :, d * self.hidden:(d + 1) * self.hidden]) for d in range(2))
        return torch.bmm(h, second), slot

    @torch.no_grad()
    def infer(self, inputs, table, slot, weights=None):
        """Eval-mode outputs (M, B) of B graphs shared by all models; forward's result up to rounding.

        inputs: model_inputs of the B graphs; table, slot: first_layer_table, with the slots of these B
        graphs; weights: inference_weights(), made when not given.
        """
        propagation, readout = inputs["propagation"], inputs["readout"]
        b, v = readout.shape
        y = torch.index_select(table, 1, slot.flatten())
        *gcn, fc1, fc2 = weights or self.inference_weights()
        h = propagate(y.view(self.num_models, b, v, -1), propagation)
        for weight in gcn[2:]:
            y = torch.bmm(h.reshape(self.num_models, b * v, -1), weight).view(self.num_models, b, v, -1)
            h = propagate(y, propagation)
        return self._head(h, readout, fc1, fc2)


if __name__ == "__main__":
    from dataset import graph_tensors
    model = GCNPredictor(seed=0)
    per_model = model.vectors().shape[1]
    graphs = graph_tensors([[[0, 1] + [0] * 5, [0] * 7] + [[0] * 7] * 5], [[-1, -2] + [0] * 5], [2])
    model.eval()
    print(f"GCNPredictor: {per_model:,} parameters per model; output on the 2-vertex graph: "
          f"{model(graphs).item():+.4f}")
