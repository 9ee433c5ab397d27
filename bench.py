"""Speed of the predictor: training, cross-validation and whole-space prediction.

    python bench.py                          # all benchmarks on the default device (CUDA when available)
    python bench.py --device cpu --skip-baseline --output runs/bench.md

Times (1) training 172 architectures for 300 epochs with the batched `train.fit`, and
with a straightforward implementation as in the public reproduction (per-item
Dataset, default-collate DataLoader, torch.optim.Adam, one module per layer that
normalises the adjacency every step); (2) 5-fold cross-validation as one batched fit
against one training, timed in alternation (a pair's ratio is immune to the machine's
drift); (3) predicting every one of the 423,624 architectures of the
enumerated space. Reports wall and process CPU seconds (CPU seconds show the work
done when other programs share the machine) and peak resident memory.
"""
import argparse
import os
import resource
import sys
import time

import torch

import search_space
from dataset import Nb101Dataset, graph_tensors
from nasbench_data import DEFAULT_HDF5, DEFAULT_SPLITS, DataError, atomic_output
from train import cpu_threads, cross_validate, fit, predict, resolve_device


class StraightforwardLayer(torch.nn.Module):
    """One bidirectional GCN layer written plainly, as in the public reproduction."""

    def __init__(self, in_features, out_features, dropout):
        super().__init__()
        self.forward_weight = torch.nn.Parameter(torch.empty(in_features, out_features))
        self.backward_weight = torch.nn.Parameter(torch.empty(in_features, out_features))
        self.dropout = torch.nn.Dropout(dropout)
        torch.nn.init.xavier_uniform_(self.forward_weight)
        torch.nn.init.xavier_uniform_(self.backward_weight)

    def forward(self, h, adjacency):
        with_self = adjacency + torch.eye(adjacency.shape[-1])
        forward_norm = with_self / with_self.sum(-1, keepdim=True)
        backward_norm = with_self.transpose(1, 2) / with_self.transpose(1, 2).sum(-1, keepdim=True)
        out1 = torch.relu(forward_norm @ (h @ self.forward_weight))
        out2 = torch.relu(backward_norm @ (h @ self.backward_weight))
        return self.dropout((out1 + out2) / 2)


class StraightforwardPredictor(torch.nn.Module):
    """The GCN predictor as one plain module per layer: the baseline, and an independent check of model.py."""

    def __init__(self, hidden=144, num_layers=3, readout=128, dropout=0.1):
        super().__init__()
        self.layers = torch.nn.ModuleList(
            StraightforwardLayer(5 if i == 0 else hidden, hidden, dropout) for i in range(num_layers))
        self.fc1 = torch.nn.Linear(hidden, readout, bias=False)
        self.fc2 = torch.nn.Linear(readout, 1, bias=False)
        self.dropout = torch.nn.Dropout(dropout)
        torch.nn.init.xavier_uniform_(self.fc1.weight)
        torch.nn.init.xavier_uniform_(self.fc2.weight)

    def forward(self, batch):
        h, adjacency, mask = batch["operations"], batch["adjacency"], batch["mask"]
        for layer in self.layers:
            h = layer(h, adjacency)
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return self.fc2(self.dropout(self.fc1(pooled))).view(-1)


def train_straightforward(dataset, epochs, lr=1e-4, wd=1e-3, batch_size=10, seed=0):
    """The public reproduction's training loop: DataLoader over items, Adam, cosine annealing."""
    torch.manual_seed(seed)
    model = StraightforwardPredictor()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    model.train()
    for _ in range(epochs):
        for batch in loader:
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(batch), batch["target"])
            loss.backward()
            optimizer.step()
        scheduler.step()
    return model


def timed(function, *args, repeats=1, **kwargs):
    """(result, wall seconds, CPU seconds of this process) of a call: the run of median wall time among
    `repeats` (a shared machine's noise moves single runs by 20 %); waits for CUDA work to finish."""
    def sync():
        if torch.cuda.is_available():
            torch.cuda.synchronize()
    runs = []
    for _ in range(repeats):
        sync()
        wall, cpu = time.perf_counter(), time.process_time()
        result = function(*args, **kwargs)
        sync()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu, result))
    wall, cpu, result = sorted(runs, key=lambda run: run[0])[len(runs) // 2]
    return result, wall, cpu


def timed_pair(first, second, repeats=1):
    """Runs of two calls in alternation (first, second, first, ...): (first's result, first's wall, first's CPU,
    second's wall, second's CPU, median ratio of second's wall to first's within each pair). Pairs
    cancel the slow drift of a shared machine's speed that timing one call's runs, then the other's, would not."""
    runs = [(timed(first), timed(second)) for _ in range(repeats)]
    median = len(runs) // 2
    (result, wall_1, cpu_1), _ = sorted(runs, key=lambda pair: pair[0][1])[median]
    _, (_, wall_2, cpu_2) = sorted(runs, key=lambda pair: pair[1][1])[median]
    ratio = sorted(second_run[1] / first_run[1] for first_run, second_run in runs)[median]
    return result, wall_1, cpu_1, wall_2, cpu_2, ratio


def peak_memory_mb():
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=DEFAULT_HDF5)
    parser.add_argument("--splits", default=DEFAULT_SPLITS)
    parser.add_argument("--train_split", default="172")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; the median is reported")
    parser.add_argument("--skip-baseline", action="store_true", help="do not time the straightforward baseline")
    parser.add_argument("--output", default=None, help="also write the Markdown table to this file")
    args = parser.parse_args(argv)
    try:
        device = resolve_device(args.device)
        train_set = Nb101Dataset(args.data, args.train_split, args.splits)
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    space = search_space.enumerate_space()
    name = f"CPU ({os.cpu_count()} cores)" if device.type == "cpu" else torch.cuda.get_device_name(device)
    header = (f"{name}, torch {torch.__version__}; {len(train_set)} training architectures, {args.epochs} epochs; "
              f"{len(space):,} architectures predicted; median of {args.repeats} runs\n\n"
              "| what | wall s | CPU s | threads | peak RSS MiB |\n"
              "|---|---|---|---|---|")
    print(header, flush=True)
    rows = []

    def row(what, wall, cpu, threads):
        rows.append(f"| {what} | {wall:.2f} | {cpu:.2f} | {threads} | {peak_memory_mb():.0f} |")
        print(rows[-1], flush=True)

    one_set = [(torch.arange(len(train_set)), train_set.target)]
    model, single, cpu, wall, cv_cpu, ratio = timed_pair(
        lambda: fit(train_set.graphs, one_set, epochs=args.epochs, device=device),
        lambda: cross_validate(train_set.graphs, train_set.target, train_set.accuracy, args.folds, epochs=args.epochs,
                               device=device), repeats=args.repeats)
    row(f"train.fit: {len(train_set)} architectures x {args.epochs} epochs", single, cpu, torch.get_num_threads())
    row(f"{args.folds}-fold cross-validation as one batched fit ({ratio:.2f} x one training, median of the pairs)",
        wall, cv_cpu, torch.get_num_threads() if device.type == "cpu" else 1)
    if not args.skip_baseline and device.type == "cpu":
        with cpu_threads(1, device):  # its fastest setting, as for fit's single model
            _, wall, cpu = timed(train_straightforward, train_set, args.epochs)
        row(f"straightforward baseline: DataLoader, torch.optim.Adam ({wall / single:.1f} x train.fit)", wall, cpu, 1)

    graphs, wall, cpu = timed(graph_tensors, space.adjacency, space.operations, space.num_vertices, device)
    row(f"graph_tensors of all {len(space):,} architectures", wall, cpu, torch.get_num_threads())
    for threads in sorted({1, os.cpu_count()}) if device.type == "cpu" else [1]:
        _, wall, cpu = timed(predict, model, graphs, threads=threads, repeats=args.repeats)
        row(f"predict all {len(space):,} architectures", wall, cpu, threads)
    if args.output:
        with atomic_output(args.output) as tmp:
            with open(tmp, "w") as f:
                f.write(header + "\n" + "\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
