"""Self-supervised pre-training of the GCN over every cell of the NAS-Bench-101 space (docs/beyond.md).

    python pretrain.py                          # (re)builds the best recipe's: 30 epochs, about 7 min on 2 cores
    python pretrain.py --epochs 10 --propagation faithful

The pretext task needs no training result: for each of the 423,624 cells the GCN regresses seven
numbers computed from the cell alone (cell_properties): the log of the network's trainable
parameters (nb101.network), the longest input-to-output path, the count of each operation, the
edges and the vertices, each standardised over the space. Where arch2vec and GMAE-NAS reconstruct
the cell, this regresses what follows from it; the idea is theirs: the layers learn what a cell is
before they see an accuracy. A recipe with `pretrain` E > 0 starts every model's graph-convolution
layers and first readout layer from these weights and draws its last layer fresh (engine.fit).

The weights are cached in nb101's cache folder ($NB101_CACHE_DIR, else ~/.cache/nb101), one file
per (propagation, hidden, layers, epochs), with its settings and a SHA256 of the weights, both
checked when read; a file that does not match is rebuilt.
"""
import argparse
import hashlib
import json
import math
import os
import sys
import time

import numpy as np
import torch
from tqdm import tqdm

import flags
from dataset import graph_tensors
from model import GCN, PROPAGATION_RULES
from nb101 import network
from nb101.files import DataError, atomic_output
from nb101.nasbench_data import interruptible
from nb101.search_space import cache_dir, enumerate_space
from recipes import BEST

PROPERTIES = ("log trainable parameters", "longest path", "conv3x3", "conv1x1", "maxpool", "edges", "vertices")
PRETEXT_VERSION = 1  # changes when the pretext task does: older cache files are then rebuilt
BATCH_SIZE = 256
LR = 1e-3
SEED = 0


def cell_properties(adjacency, operations, num_vertices):
    """(B, 7) float64: each cell's PROPERTIES, from padded (B, 7, 7) adjacency, (B, 7) HDF5 operation codes and
    (B,) vertex counts (the output at num_vertices - 1)."""
    num_vertices = np.asarray(num_vertices).astype(np.int64)
    rows = np.arange(len(num_vertices))
    parameters = [network.trainable_parameters(adjacency[i, :n, :n], operations[i, :n])
                  for i, n in enumerate(num_vertices)]
    depth = network.longest_paths(adjacency)[rows, num_vertices - 1]
    vertex = np.arange(adjacency.shape[-1])
    interior = (vertex > 0) & (vertex < (num_vertices - 1)[:, None])
    counts = [((operations == code) & interior).sum(1) for code in range(3)]
    edges = np.asarray(adjacency).sum((1, 2))
    return np.stack([np.log(parameters), depth, *counts, edges, num_vertices], axis=1).astype(np.float64)


def pretrain_gcn(adjacency, operations, num_vertices, propagation=BEST.propagation, hidden=BEST.hidden,
                 layers=BEST.layers, epochs=BEST.pretrain, seed=SEED, progress=False):
    """Train one GCN (no dropout) to regress the standardised cell_properties of the given cells with MSE.

    Adam at LR with cosine annealing per step over `epochs`, batches of BATCH_SIZE, shuffled from `seed`.

    Returns:
      (weights, losses): the GCN's parameters but its last layer (one model's: the stack's dimension
      dropped), and each epoch's mean loss per property ((epochs, 7) array).
    """
    target = cell_properties(adjacency, operations, num_vertices)
    target = torch.as_tensor((target - target.mean(0)) / np.maximum(target.std(0), 1e-12), dtype=torch.float32)
    inputs = GCN.inputs(graph_tensors(adjacency, operations, num_vertices, propagation=propagation))
    model = GCN(hidden=hidden, num_layers=layers, dropout=0.0, num_models=1, seed=seed)
    head = model.layers[-1]  # its last layer regresses the 7 properties instead of one accuracy
    model.layers[-1] = torch.nn.Parameter(torch.empty(1, head.shape[1], len(PROPERTIES)).uniform_(
        -1 / math.sqrt(head.shape[1]), 1 / math.sqrt(head.shape[1]), generator=torch.Generator().manual_seed(seed)))
    optimiser = torch.optim.Adam(model.parameters(), lr=LR)
    generator = torch.Generator().manual_seed(seed)
    steps = max(len(target) // BATCH_SIZE, 1)
    losses = np.zeros((epochs, len(PROPERTIES)))
    bar = tqdm(range(epochs), desc="pre-training on the space", disable=not progress, leave=False)
    for epoch in bar:
        order = torch.randperm(len(target), generator=generator)
        for step in range(steps):
            optimiser.param_groups[0]["lr"] = LR * 0.5 * (1 + math.cos(math.pi * (epoch * steps + step) / (epochs * steps)))
            rows = order[step * BATCH_SIZE:(step + 1) * BATCH_SIZE]
            errors = (model({key: value[rows] for key, value in inputs.items()})[0] - target[rows]) ** 2
            optimiser.zero_grad()
            errors.mean().backward()
            optimiser.step()
            losses[epoch] += errors.detach().mean(0).numpy() / steps
        bar.set_postfix(loss=f"{losses[epoch].mean():.4f}")
    return [p.detach()[0].clone() for p in model.layers[:-1]], losses


def settings_of(propagation, hidden, layers, epochs):
    """What identifies a pre-training (the cache file's name and its checked contents)."""
    return {"propagation": propagation, "hidden": hidden, "layers": layers, "epochs": epochs, "seed": SEED,
            "batch_size": BATCH_SIZE, "lr": LR, "pretext_version": PRETEXT_VERSION}


def cache_path(settings):
    """The cache file of a pre-training's weights."""
    name = f"pretrained_gcn_{settings['propagation']}_h{settings['hidden']}_l{settings['layers']}_e{settings['epochs']}.pt"
    return os.path.join(cache_dir(), name)


def weights_digest(weights):
    """SHA256 of the weights' shapes and bytes."""
    digest = hashlib.sha256()
    for weight in weights:
        digest.update(str(tuple(weight.shape)).encode())
        digest.update(weight.contiguous().numpy().tobytes())
    return digest.hexdigest()


def read_cache(path, settings):
    """The cached weights, or None when the file is absent, unreadable, made with other settings or altered."""
    if not os.path.exists(path):
        return None
    try:
        saved = torch.load(path, weights_only=True)
        settings_saved, weights = json.loads(saved["settings"]), list(saved["weights"])
    except Exception:  # any damage: unpickling, a missing key, bad JSON
        return None
    if settings_saved != settings or saved["sha256"] != weights_digest(weights):
        return None
    return weights


def save_cache(path, settings, weights):
    """Write the weights with their settings and digest (through a temporary file: never half-written)."""
    with atomic_output(path) as tmp:
        torch.save({"settings": json.dumps(settings), "sha256": weights_digest(weights), "weights": weights}, tmp)


def build(settings, progress=False):
    """Pre-train over the whole space with these settings and write the cache; (weights, losses) of pretrain_gcn."""
    space = enumerate_space(progress=progress)
    weights, losses = pretrain_gcn(space.adjacency, space.operations, space.num_vertices, settings["propagation"],
                                   settings["hidden"], settings["layers"], settings["epochs"], progress=progress)
    save_cache(cache_path(settings), settings, weights)
    return weights, losses


def pretrained_weights(propagation=BEST.propagation, hidden=BEST.hidden, layers=BEST.layers, epochs=BEST.pretrain,
                       progress=False):
    """The pre-trained GCN weights (pretrain_gcn over the whole space), from the cache, or made and cached.

    Returns:
      a list of tensors: the graph-convolution layers' weights (2, in, out) and the first readout layer's.
    """
    if propagation not in PROPAGATION_RULES:
        raise ValueError(f"propagation {propagation!r}: expected one of {', '.join(PROPAGATION_RULES)}")
    settings = settings_of(propagation, hidden, layers, epochs)
    path = cache_path(settings)
    weights = read_cache(path, settings)
    if weights is not None:
        return weights
    if progress:
        reason = "does not match its settings or is damaged; rebuilding" if os.path.exists(path) else "once, cached"
        print(f"pre-training the GCN on every cell of the space ({path} {reason})", file=sys.stderr)
    return build(settings, progress)[0]


@torch.no_grad()
def start_from(model, weights):
    """Copy pre-trained weights into the first len(weights) layers of every model of a GCN stack."""
    for parameter, weight in zip(model.layers, weights):
        if tuple(parameter.shape[1:]) != tuple(weight.shape):
            raise ValueError(f"pre-trained weight of shape {tuple(weight.shape)} does not fit the GCN's "
                             f"{tuple(parameter.shape[1:])}")
        parameter.copy_(weight.to(parameter.device).expand_as(parameter))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--propagation", choices=PROPAGATION_RULES, default=BEST.propagation)
    parser.add_argument("--gcn_hidden", type=flags.positive_int, default=BEST.hidden)
    parser.add_argument("--gcn_layers", type=flags.positive_int, default=BEST.layers)
    parser.add_argument("--epochs", type=flags.positive_int, default=BEST.pretrain)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    start = time.time()
    settings = settings_of(args.propagation, args.gcn_hidden, args.gcn_layers, args.epochs)
    try:
        with interruptible():
            losses = build(settings, progress=not args.quiet)[1]
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("last epoch's MSE per standardised property:")
    for name, value in zip(PROPERTIES, losses[-1]):
        print(f"  {name:26s} {value:.4f}")
    print(f"{time.time() - start:.0f} s; wrote {cache_path(settings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
