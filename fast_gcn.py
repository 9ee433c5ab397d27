"""The fast path of the paper's GCN: the same numbers as autograd through model.GCN, several times cheaper.

    python fast_gcn.py       # one hand-written training step against autograd through model.GCN

Nothing here defines the model: model.GCN does, and the engine (engine.py) trains any predictor
through autograd. For model.GCN the engine uses these optimisations instead, because tests
(tests/test_fast_gcn.py) show that they equal the plain path, in float64, with dropout, on
several stack sizes:

- `TrainingStep`: one training step's forward and backward pass written out by hand on
  preallocated buffers. At batch size 10, autograd's bookkeeping of some sixty tiny operations
  costs more than the arithmetic; here a step is about fifty kernel calls and no allocation.
  Under mixed precision (model.GCN's precision "bf16") it casts where model.weight_product does.
- `sample_dropout_masks`: keep-masks of all dropout sites of a whole epoch at once, four 16-bit
  comparisons per 64 random bits (used by both paths, so that they draw the same masks).
- `BatchedAdam`: torch's fused Adam kernel on slices of a stack, each model with its own
  learning rate and step count (a resting model is left exactly as it was).
- `first_layer_table` / `infer`: whole-space inference that skips most of the first two
  layers: a vertex's first-layer output depends only on its propagated one-hot inputs, and
  the whole space has only a few thousand distinct ones.
"""
import math

import torch
from torch.optim.adam import adam as functional_adam

from model import PRECISIONS, batch_loss
from nb101.search_space import MAX_VERTICES, VERTEX_TYPES


def relu_backward(grad, output, out):
    """out = grad where output > 0, else 0 (grad broadcast over output's shape). output is a relu's, so its sign
    is 1 or 0: one float product, several times faster here than one with a boolean mask."""
    return torch.mul(grad, output.sign(), out=out)


# ---------------------------------------------------------------------------
# dropout masks


def sample_dropout_masks(sites, p, batch_shape, device="cpu", buffers=None, generators=None, steps=None):
    """Scaled keep-masks (0 or 1/(1-p)) of every dropout site for batches of shape `batch_shape`.

    sites: the per-sample shape of each site (a predictor's `dropout_sites`). batch_shape is
    (M, B) for one step, or (S, M, B) to draw S steps at once. Each draw of 64 random bits
    serves four 16-bit comparisons (4x fewer draws than torch.rand), so p is rounded to a
    multiple of 2^-16 (0.1 becomes 0.1000061). generators: one per model, model m's masks drawn
    from generators[m], site by site, for its first steps[m] steps only (its later masks are left
    as they are; default: all S); without them, the whole stack draws from the global generator.
    buffers: a dict that keeps the working memory between calls (a call's masks are then
    overwritten by the next); fresh large tensors every epoch cost more than drawing the bits.
    """
    threshold = round(p * 2 ** 16) - 2 ** 15  # int16 values below it are dropped
    scale = 1.0 / (1.0 - p)
    masks = []
    for index, site in enumerate(sites):
        shape = (*batch_shape, *site)
        key = (index, shape, str(device))
        if buffers is None or key not in buffers:
            working = (torch.empty((math.prod(shape) + 3) // 4, dtype=torch.int64, device=device),
                       torch.zeros(shape, device=device))
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


# ---------------------------------------------------------------------------
# training


def epoch_step_inputs(inputs, num_models):
    """Per-step inputs of TrainingStep for one epoch of one slice of the stack, made with a few calls per epoch.

    inputs: model_inputs tensors (S, M, B, ...) for S steps. Returns S dicts of views:
    `repeated` (M 2, B V, T) the one-hot operations once per direction, `propagation`
    (M 2 B, V, V) ordered (model, direction, graph) and its transpose, `readout_row` (M B, 1, V) and
    `readout_column` (M, B, V, 1).
    """
    operations, propagation, readout = inputs["operations"], inputs["propagation"], inputs["readout"]
    s, m, b, v, types = operations.shape
    repeated = operations.reshape(s, m, 1, b * v, types).expand(s, m, 2, b * v, types).reshape(s, m * 2, b * v, types)
    propagation = propagation.transpose(2, 3).reshape(s, m * 2 * b, v, v)
    views = {"repeated": repeated, "repeated_t": repeated.transpose(-1, -2), "propagation": propagation,
             "propagation_t": propagation.transpose(-1, -2), "readout_row": readout.reshape(s, m * b, 1, v),
             "readout_column": readout.unsqueeze(-1)}
    return [dict(zip(views, step)) for step in zip(*(value.unbind(0) for value in views.values()))]


class TrainingStep:
    """One training step of a slice of a model.GCN stack, forward and backward written out by hand.

    The same numbers as `loss = batch_loss(gcn(graphs, masks), targets, loss_weights, loss);
    loss.backward()` on those models (tests/test_fast_gcn.py), the gradient written into the
    slice of .grad. Activations are laid out (model, direction, graph): one bmm over the M 2
    (model, direction) pairs multiplies h by each direction's weight (h repeated per direction,
    the copy kept for the weight gradient), one propagates all of them, and the backward pass
    needs no transposing copies. Every activation has its own buffer, and every view of a
    weight, gradient or buffer is made once here: a step only calls kernels.
    """

    def __init__(self, gcn, models, batch_size, loss="mse"):
        self.loss, self.num_layers = loss, gcn.num_layers
        m, b, v, hidden = models.stop - models.start, batch_size, MAX_VERTICES, gcn.hidden
        self.m, self.b = m, b
        with torch.no_grad():
            for p in gcn.parameters():
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            *layers, fc1, fc2 = [p.detach()[models] for p in gcn.layers]
            *grad_layers, self.grad_fc1, self.grad_fc2 = [p.grad[models] for p in gcn.layers]
        # Mixed precision (model.GCN's precision "bf16"): the weight products' operands and results live in
        # buffers of the low dtype, converted to and from the float ones where model.weight_product casts.
        # In float32 each "low" buffer is the float one itself, and every conversion is skipped.
        low = PRECISIONS[gcn.precision] or fc1.dtype
        mixed = low != fc1.dtype
        new = lambda *shape, dtype=fc1.dtype: torch.zeros(shape, dtype=dtype, device=fc1.device)  # noqa: E731
        lowered = lambda t: torch.empty_like(t, dtype=low) if mixed else t  # noqa: E731
        self.weights = [w.view(m * 2, -1, hidden) for w in layers]
        self.weights_low = [lowered(w) for w in self.weights]
        self.weights_low_t = [w.transpose(1, 2) for w in self.weights_low]
        self.grad_weights = [g.view(m * 2, -1, hidden) for g in grad_layers]
        self.grad_weights_low = [lowered(g) for g in self.grad_weights]
        self.fc1, self.fc2, self.fc1_t, self.fc2_t = fc1, fc2, fc1.transpose(1, 2), fc2.transpose(1, 2)
        self.first_input = new(m * 2, b * v, len(VERTEX_TYPES), dtype=low) if mixed else None
        self.first_input_t = None if self.first_input is None else self.first_input.transpose(1, 2)
        self.repeated = [None] + [new(m, 2, b, v, hidden, dtype=low) for _ in layers[1:]]  # layer input per direction
        self.repeated_flat = [None] + [r.view(m * 2, b * v, hidden) for r in self.repeated[1:]]
        self.repeated_t = [None] + [r.transpose(1, 2) for r in self.repeated_flat[1:]]
        self.y = [new(m * 2, b * v, hidden) for _ in layers]  # weight products
        self.y_low = [lowered(y) for y in self.y]
        self.y_per_graph = [y.view(m * 2 * b, v, hidden) for y in self.y]
        self.passed = [new(m, 2, b, v, hidden) for _ in layers]  # relu(P y) per direction
        self.passed_flat = [p.view(m * 2 * b, v, hidden) for p in self.passed]
        self.h = new(m, b, v, hidden)  # last GCN layer's output
        self.h_per_graph = self.h.view(m * b, v, hidden)
        self.pooled = new(m * b, 1, hidden)
        self.pooled_mb, self.pooled_t = self.pooled.view(m, b, hidden), self.pooled.view(m, b, hidden).transpose(1, 2)
        self.z = new(m, b, fc1.shape[-1])
        self.z_t = self.z.transpose(1, 2)
        self.output = new(m, b, 1)
        self.grad_output = new(m, b, 1)
        self.grad_z = new(m, b, fc1.shape[-1])
        self.grad_pooled = new(m, b, hidden)
        self.grad_pooled_row = self.grad_pooled.unsqueeze(-2)
        self.grad_h = new(m, b, v, hidden)
        self.grad_h_both = self.grad_h.unsqueeze(1)
        self.grad_passed = new(m, 2, b, v, hidden)
        self.grad_passed_flat = self.grad_passed.view(m * 2 * b, v, hidden)
        self.grad_y = new(m * 2 * b, v, hidden)
        self.grad_y_flat = self.grad_y.view(m * 2, b * v, hidden)
        self.grad_y_low = lowered(self.grad_y_flat)
        self.grad_input = new(m, 2, b, v, hidden, dtype=low)
        self.grad_input_flat = self.grad_input.view(m * 2, b * v, hidden)
        # views of the two directions' halves
        self.passed_halves = [(p[:, 0], p[:, 1]) for p in self.passed]
        # (where a layer's output h is summed and dropped out, the next layer's inputs it is copied to)
        if mixed:  # in float, then rounded into both directions' inputs, where weight_product rounds it
            h_float = new(m, b, v, hidden)
            self.layer_outputs = [(h_float, [r[:, 0], r[:, 1]]) for r in self.repeated[1:]]
        else:  # straight into the next layer's input of direction 0, copied to direction 1
            self.layer_outputs = [(r[:, 0], [r[:, 1]]) for r in self.repeated[1:]]
        self.layer_outputs.append((self.h, []))
        self.grad_input_halves = (self.grad_input[:, 0], self.grad_input[:, 1])

    @torch.no_grad()
    def __call__(self, step, targets, loss_weights, masks=None):
        """The loss of one batch; its gradient goes to the slice's .grad. step: one of epoch_step_inputs;
        targets, loss_weights (M, B); masks: one step's sample_dropout_masks (M, B, ...) per site, or None."""
        masks = masks if masks is not None else [None] * (self.num_layers + 1)
        m, b = self.m, self.b
        for weight, low in zip(self.weights, self.weights_low):
            convert(low, weight)
        if self.first_input is None:
            first_input, first_input_t = step["repeated"], step["repeated_t"]
        else:
            first_input, first_input_t = self.first_input.copy_(step["repeated"]), self.first_input_t
        for layer in range(self.num_layers):
            inputs = first_input if layer == 0 else self.repeated_flat[layer]
            convert(self.y[layer], torch.bmm(inputs, self.weights_low[layer], out=self.y_low[layer]))
            torch.bmm(step["propagation"], self.y_per_graph[layer], out=self.passed_flat[layer]).relu_()
            # h = the two directions' sum, dropped out: the next layer's input (once per direction) or the last h
            h, copies = self.layer_outputs[layer]
            torch.add(*self.passed_halves[layer], out=h)
            if masks[layer] is not None:
                h.mul_(masks[layer])
            for copy in copies:
                copy.copy_(h)
        torch.bmm(step["readout_row"], self.h_per_graph, out=self.pooled)
        torch.bmm(self.pooled_mb, self.fc1, out=self.z)
        if masks[-1] is not None:
            self.z.mul_(masks[-1])
        output = torch.bmm(self.z, self.fc2, out=self.output).view(m, b)
        grad_output = self.grad_output.view(m, b)
        if self.loss == "mse":
            error = output - targets
            value = (loss_weights * error * error).sum()
            torch.mul(2 * loss_weights, error, out=grad_output)
        elif self.loss == "bce":
            value = (loss_weights * torch.nn.functional.binary_cross_entropy_with_logits(
                output, targets, reduction="none")).sum()
            torch.mul(loss_weights, torch.sigmoid(output) - targets, out=grad_output)
        else:  # through autograd, but on the (M, B) outputs only: tiny next to the network
            with torch.enable_grad():
                leaf = output.clone().requires_grad_()
                value = batch_loss(leaf, targets, loss_weights, self.loss)
                grad_output.copy_(torch.autograd.grad(value, leaf)[0])
            value = value.detach()
        # backward, layer by layer, each weight's gradient written straight into its slice of .grad
        torch.bmm(self.z_t, self.grad_output, out=self.grad_fc2)
        torch.mul(self.grad_output, self.fc2_t, out=self.grad_z)
        if masks[-1] is not None:
            self.grad_z.mul_(masks[-1])
        torch.bmm(self.pooled_t, self.grad_z, out=self.grad_fc1)
        torch.bmm(self.grad_z, self.fc1_t, out=self.grad_pooled)
        torch.mul(step["readout_column"], self.grad_pooled_row, out=self.grad_h)
        for layer in reversed(range(self.num_layers)):
            if masks[layer] is not None:
                self.grad_h.mul_(masks[layer])
            relu_backward(self.grad_h_both, self.passed[layer], self.grad_passed)
            torch.bmm(step["propagation_t"], self.grad_passed_flat, out=self.grad_y)
            grad_y = convert(self.grad_y_low, self.grad_y_flat)
            inputs_t = first_input_t if layer == 0 else self.repeated_t[layer]
            convert(self.grad_weights[layer], torch.bmm(inputs_t, grad_y, out=self.grad_weights_low[layer]))
            if layer:
                torch.bmm(grad_y, self.weights_low_t[layer], out=self.grad_input_flat)
                # in bf16 the halves add in bf16 (as autograd sums the directions' gradients), widened into grad_h
                torch.add(*self.grad_input_halves, out=self.grad_h)
        return value


def convert(target, source):
    """target = source in target's dtype, unless they are the same buffer (float32 throughout); returns target."""
    if target is not source:
        target.copy_(source)
    return target


class BatchedAdam:
    """torch.optim.Adam (L2 weight decay) on stacks of models: `params` are (M, ...) tensors, slice m of each
    belongs to model m.

    Each model has its own learning rate and step count; a model that does not step is left
    exactly as it was. The update is torch's fused Adam kernel, the one behind
    torch.optim.Adam(fused=True) (one pass over the memory instead of eight), called once per
    learning rate on slices of the stack: one per parameter for each run of consecutive
    models that share their learning rate and step count (usually the whole stack).
    """

    def __init__(self, params, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8):
        self.weight_decay, self.betas, self.eps = weight_decay, betas, eps
        for param in params:
            if param.grad is None:
                param.grad = torch.zeros_like(param)
        self.tensors = ([p.detach() for p in params], [p.grad for p in params],
                        [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params])
        self.counts = [0] * len(params[0])  # steps taken by each model
        self.device = params[0].device
        self.sliced = {}

    def slices(self, start, stop):
        """The (params, grads, exp_avgs, exp_avg_sqs) views of models start..stop-1, made once per range."""
        if (start, stop) not in self.sliced:
            self.sliced[(start, stop)] = [[t[start:stop] for t in tensors] for tensors in self.tensors]
        return self.sliced[(start, stop)]

    def step(self, lrs, models):
        """One update of the models `models` (ascending indices); model m with learning rate lrs[m].

        No autograd context is needed (nor paid for at every step): the tensors are detached."""
        for m in models:
            self.counts[m] += 1
        calls = {}
        for start, stop in consecutive_runs(models, {m: (lrs[m], self.counts[m]) for m in models}):
            lists = calls.setdefault(lrs[start], ([], [], [], [], []))
            for target, tensors in zip(lists, self.slices(start, stop)):
                target.extend(tensors)
            lists[4].extend([self.counts[start]] * len(self.tensors[0]))
        for lr, (params, grads, exp_avgs, exp_avg_sqs, steps) in sorted(calls.items()):
            adam_update(params, grads, exp_avgs, exp_avg_sqs, steps, lr, self.betas, self.weight_decay, self.eps)


def adam_update(params, grads, exp_avgs, exp_avg_sqs, steps, lr, betas, weight_decay, eps, fused=True):
    """One Adam step (L2 weight decay) of lists of tensors in place, `steps` the step count of each after this
    one: torch's functional Adam with its fused kernel (torch.optim.adam.adam, what torch.optim.Adam(fused=True)
    runs), or the same update written with tensor operations (fused=False)."""
    if fused:
        # one float32 tensor per parameter (the kernel's form), holding the count before the step: it adds one
        before = torch.tensor([float(step - 1) for step in steps], dtype=torch.float32,
                              device=params[0].device).unbind()
        functional_adam(params, grads, exp_avgs, exp_avg_sqs, [], before, fused=True, amsgrad=False,
                        beta1=betas[0], beta2=betas[1], lr=lr, weight_decay=weight_decay, eps=eps, maximize=False)
        return
    for param, grad, exp_avg, exp_avg_sq, step in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
        grad = grad.add(param, alpha=weight_decay)
        exp_avg.lerp_(grad, 1 - betas[0])
        exp_avg_sq.mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
        count = float(step)
        denominator = (exp_avg_sq.sqrt() / math.sqrt(1 - betas[1] ** count)).add_(eps)
        param.addcdiv_(exp_avg, denominator, value=-lr / (1 - betas[0] ** count))


def consecutive_runs(models, keys):
    """Runs (start, stop) of consecutive model indices in the ascending list `models` that share keys[m]
    (keys: a sequence or a dict over models)."""
    runs = []
    for m in models:
        if runs and runs[-1][1] == m and keys[m] == keys[runs[-1][0]]:
            runs[-1][1] = m + 1
        else:
            runs.append([m, m + 1])
    return [tuple(run) for run in runs]


# ---------------------------------------------------------------------------
# inference


KEY_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)  # state_keys weighs value i by sqrt(KEY_PRIMES[i])


def joined(weight):
    """(M, 2, in, out) GCN weight -> (M, in, 2 * out): both directions side by side, for inference."""
    m, _, fan_in, fan_out = weight.shape
    return weight.permute(0, 2, 1, 3).reshape(m, fan_in, 2 * fan_out)


def inference_weights(gcn):
    """The GCN's weights with each GCN layer's two directions joined side by side (`joined`): inference
    multiplies by both at once, hundreds of graphs per product. Make them once per prediction.

    The weights that infer multiplies chunk by chunk (the third GCN layer on, the readout) have their
    subnormal entries (weights that weight decay shrank below the dtype's smallest normal number) set
    to zero: on most Intel CPUs every multiplication by one traps into microcode, and a trained
    model's few dozen made whole-space prediction 1.5 x slower there. Tested to give the same bits.
    The first two layers, used only on the few thousand distinct vertex states of first_layer_table,
    keep theirs: with a subnormal operand this CPU's 5-term first-layer product was one unit in the last
    place off the correctly rounded sum, which zeroing restores, so zeroing there would change bits."""
    *layers, fc1, fc2 = (p.detach() for p in gcn.layers)
    joined_layers = [joined(weight) for weight in layers]
    return joined_layers[:2] + [without_subnormals(weight) for weight in joined_layers[2:] + [fc1, fc2]]


def without_subnormals(tensor):
    """`tensor` with its subnormal entries replaced by zero (the tensor itself when it has none)."""
    subnormal = (tensor != 0) & (tensor.abs() < torch.finfo(tensor.dtype).tiny)
    return tensor.masked_fill(subnormal, 0) if subnormal.any() else tensor


def propagate(y, propagation):
    """One GCN layer after its (joined) weight product, without gradient: relu(P0 y0) + relu(P1 y1).

    One bmm per direction on a strided half of y: at inference, with hundreds of graphs per
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


@torch.no_grad()
def first_layer_table(gcn, inputs, weights=None):
    """Second-layer products of every distinct first-layer vertex state among L graphs, or None.

    inputs: model_inputs of L graphs. A vertex's first-layer output depends only on its
    first-layer inputs in the two directions (first_layer_inputs: the propagated one-hot
    types), so vertices whose inputs are bit-identical share one state; the whole space has a
    few thousand. Returns (table (M, K, 2H), slot (L, V)): vertex v of graph g has
    h1 W2 = table[:, slot[g, v]]; None in the unlikely case that two different states share a key
    (distinct_states), or for a GCN of one layer, where the caller runs forward instead.
    weights: inference_weights(gcn).
    """
    if gcn.num_layers < 2:
        return None
    x = first_layer_inputs(inputs["operations"], inputs["propagation"])  # (L, 2, V, T)
    states = x.transpose(1, 2).flatten(2)  # (L, V, 2T): both directions' inputs
    found = distinct_states(states)
    if found is None:
        return None
    slot, representative = found
    first, second = (weights or inference_weights(gcn))[:2]
    x = states.reshape(-1, 2, x.shape[-1])[representative]  # (K, 2, T)
    h = sum(torch.relu(x[:, d] @ first[:, :, d * gcn.hidden:(d + 1) * gcn.hidden]) for d in range(2))
    return torch.bmm(h, second), slot


@torch.no_grad()
def infer(gcn, inputs, table, slot, weights=None):
    """Eval-mode outputs (M, B) of B graphs shared by all models; gcn(inputs)'s result up to rounding.

    inputs: model_inputs of the B graphs; table, slot: first_layer_table, with the slots of these B
    graphs; weights: inference_weights(gcn), made when not given.
    """
    propagation, readout = inputs["propagation"], inputs["readout"]
    b, v = readout.shape
    m = gcn.num_models
    y = torch.index_select(table, 1, slot.flatten())
    *layers, fc1, fc2 = weights or inference_weights(gcn)
    h = propagate(y.view(m, b, v, -1), propagation)
    for weight in layers[2:]:
        y = torch.bmm(h.reshape(m, b * v, -1), weight).view(m, b, v, -1)
        h = propagate(y, propagation)
    pooled = (readout.unsqueeze(-2) @ h).view(m, b, -1)
    return torch.bmm(torch.bmm(pooled, fc1), fc2).view(m, b)


if __name__ == "__main__":
    from model import GCN, model_inputs
    torch.manual_seed(0)
    gcn = GCN(num_models=2, seed=0).double()
    v, types = MAX_VERTICES, len(VERTEX_TYPES)
    graphs = {"operations": torch.nn.functional.one_hot(torch.randint(types, (2, 10, v)), types).double(),
              "propagation": torch.rand(2, 10, 2, v, v, dtype=torch.float64),
              "readout": torch.full((2, 10, v), 1 / v, dtype=torch.float64)}
    targets, weights = torch.randn(2, 10, dtype=torch.float64), torch.full((2, 10), 0.1, dtype=torch.float64)
    masks = [mask.double() for mask in sample_dropout_masks(gcn.dropout_sites, gcn.dropout, (2, 10))]
    batch_loss(gcn(graphs, masks), targets, weights).backward()
    reference = [p.grad.clone() for p in gcn.parameters()]
    gcn.zero_grad()
    step = epoch_step_inputs({key: value.unsqueeze(0) for key, value in model_inputs(graphs).items()}, 2)[0]
    TrainingStep(gcn, slice(0, 2), 10)(step, targets, weights, masks)
    error = max(float((p.grad - r).abs().max()) for p, r in zip(gcn.parameters(), reference))
    print(f"TrainingStep vs autograd through model.GCN, float64, with dropout: largest gradient difference {error:.1e}")
