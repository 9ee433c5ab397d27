"""End-to-end architecture search on NAS-Bench-101: Neural Predictor vs random search vs regularized evolution.

    python search.py                                  # 100 runs x 3 methods, budget 2000, N = 172
    python search.py --cascade                        # Neural Predictor with the classifier cascade
    python search.py --methods random evolution --runs 20 --budget 500 --quiet

All methods search the same pool (every architecture of the HDF5 that has a label) and
pay one query for every architecture they train. A query returns the 108-epoch final
validation accuracy of one training run, drawn at random among the runs present;
methods only ever see queried values. Run r of every method uses generators seeded
from (--seed, r): the first queries of random search, the Neural Predictor's N
training architectures and evolution's initial population are the same draw.

- Random search: without replacement from the pool.
- Neural Predictor: N random queries, one GCN predictor per run (all runs trained
  together as one batched model), then the unqueried pool in predicted order.
- Regularized evolution: population 50, tournament 10, mutation rate 1.0, the oldest
  dies; all runs advance in lockstep. Specs are 7x7; a child that is not in the pool
  (invalid, or outside the sample the data covers) is mutated again from the same
  parent until it is. With --child_rule space (default) a child that is the parent's own
  architecture is kept only as often as in the full space (the first valid mutation
  decides): on a 4.7% sample the parent, always in the pool, would otherwise be the
  child about a quarter of the time.

Writes to --output_dir: curves.png (best-so-far validation accuracy and regret against
queries, mean and interquartile band), table.md (queries needed to reach given regrets,
values at given budgets), traces.npz (every run's queried rows and values, best-so-far,
regret and chosen architecture's mean test accuracy) and summary.json.
"""
import argparse
import os
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

import cascade
import dataset
import nasbench_data
import search_space
import train

METHODS = ("predictor", "random", "evolution")
METHOD_NAMES = {"predictor": "Neural Predictor", "random": "Random search", "evolution": "Regularized evolution"}
REGRET_THRESHOLDS = (0.5, 0.2, 0.1, 0.05, 0.0)  # percentage points of validation accuracy
REPORT_BUDGETS = (50, 100, 172, 200, 500, 1000, 2000)
NUM_EDGES = 21  # upper-triangle entries of a 7x7 spec
OP_SPOTS = 5  # interior vertices of a 7-vertex spec
MUTATION_DRAWS = NUM_EDGES + 2 * OP_SPOTS  # uniforms per mutation: edge flips, op changes, new op choice
ATTEMPTS_PER_ROUND = 16  # candidate children drawn at once per run still looking for one
MAX_ATTEMPTS = 100_000  # give up (pool too sparse around a parent) after this many candidates


@dataclass
class Pool:
    """The candidate architectures: HDF5 rows with a label, their graphs and their runs."""

    rows: np.ndarray  # (P,) HDF5 row of each candidate
    hashes: np.ndarray  # (P,) S32
    adjacency: np.ndarray  # (P, 7, 7) int8, padded
    operations: np.ndarray  # (P, 7) int8
    num_vertices: np.ndarray  # (P,) int
    run_accuracy: np.ndarray  # (P, 3) 108-epoch final validation accuracy, present runs first, NaN after
    num_runs: np.ndarray  # (P,) runs present
    mean_validation: np.ndarray  # (P,) mean over present runs
    mean_test: np.ndarray  # (P,) mean test accuracy over present runs, NaN where the data has none

    def __len__(self):
        return len(self.rows)


def nan_mean(values):
    """Row means over the finite entries of a 2-D array, NaN for rows without any (no warnings)."""
    present = np.isfinite(values)
    count = present.sum(axis=1)
    total = np.where(present, values, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def load_pool(data):
    """Pool of every architecture of the HDF5 dict `data` that has a label."""
    labels = nasbench_data.validation_labels(data["metrics"])
    rows = np.flatnonzero(np.isfinite(labels))
    if len(rows) == 0:
        raise nasbench_data.DataError("no architecture of the HDF5 has a 108-epoch validation accuracy; "
                                      f"re-create it with:\n  {nasbench_data.CONVERT_HINT}")
    metrics = data["metrics"][rows]
    runs = nasbench_data.run_values(metrics)
    present = np.isfinite(runs)
    first_present = np.argsort(~present, axis=1, kind="stable")
    return Pool(
        rows=rows,
        hashes=data["hash"][rows],
        adjacency=data["adjacency"][rows],
        operations=data["operations"][rows],
        num_vertices=data["num_vertices"][rows].astype(np.int64),
        run_accuracy=np.take_along_axis(runs, first_present, axis=1),
        num_runs=present.sum(axis=1),
        mean_validation=nan_mean(runs),
        mean_test=nan_mean(nasbench_data.run_values(metrics, "test_accuracy")),
    )


class Oracle:
    """Answers queries of R search runs with one run's validation accuracy; logs them; enforces the budget.

    Query j of run r reads training run floor(u[r, j] * runs present) of the queried
    architecture, so the answers are fixed by the pre-drawn uniforms `u` (R, budget).
    """

    def __init__(self, pool, uniforms):
        self.pool = pool
        self.uniforms = uniforms
        self.budget = uniforms.shape[1]
        self.rows = np.full(uniforms.shape, -1, dtype=np.int64)
        self.values = np.full(uniforms.shape, np.nan)
        self.count = np.zeros(len(uniforms), dtype=np.int64)

    def query(self, runs, rows):
        """Validation accuracies of `rows` (k, m): m queries for each of the k distinct `runs`."""
        runs = np.asarray(runs, dtype=np.int64)
        rows = np.asarray(rows, dtype=np.int64).reshape(len(runs), -1)
        start = self.count[runs]
        if (start + rows.shape[1] > self.budget).any():
            raise RuntimeError(f"a search run asked for more than its budget of {self.budget} queries")
        slots = start[:, None] + np.arange(rows.shape[1])
        u = self.uniforms[runs[:, None], slots]
        which = np.floor(u * self.pool.num_runs[rows]).astype(np.int64)
        values = self.pool.run_accuracy[rows, which]
        self.rows[runs[:, None], slots] = rows
        self.values[runs[:, None], slots] = values
        self.count[runs] += rows.shape[1]
        return values


def run_generators(seed, runs, budget):
    """Per search run: a generator for the method's choices, and the uniforms that pick queried runs."""
    rngs, uniforms = [], np.empty((runs, budget))
    for r in range(runs):
        method_seed, query_seed = np.random.SeedSequence([seed, r]).spawn(2)
        rngs.append(np.random.default_rng(method_seed))
        uniforms[r] = np.random.default_rng(query_seed).random(budget)
    return rngs, uniforms


def random_orders(rngs, pool_size, count):
    """(R, count) distinct random pool rows per run: random search's queries, and every method's first ones."""
    return np.stack([rng.choice(pool_size, size=count, replace=False) for rng in rngs])


def random_search(pool, oracle, rngs):
    """Query `budget` distinct random architectures in every run."""
    oracle.query(np.arange(len(rngs)), random_orders(rngs, len(pool), oracle.budget))


# ---------------------------------------------------------------------------
# Neural Predictor


def query_labels(values):
    """Training labels from queried validation accuracies: the reproduction's rule on the one run a query
    returns, a blown run (< 0.2) replaced by the normalisation constant."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(values >= nasbench_data.BLOWN_ACCURACY, values, nasbench_data.LABEL_MEAN)


def neural_predictor(pool, oracle, rngs, num_train, fit_options, use_cascade=False, propagation="faithful",
                     ensemble=1, progress=False):
    """Query N random architectures, fit one predictor (or an ensemble of `ensemble`) per run, all runs batched,
    then query the rest in predicted order. fit_options: train.fit's keyword arguments, device included."""
    runs = np.arange(len(rngs))
    first = random_orders(rngs, len(pool), oracle.budget)[:, :num_train]
    labels = query_labels(oracle.query(runs, first))
    device = fit_options["device"]
    graphs = dataset.graph_tensors(pool.adjacency, pool.operations, pool.num_vertices, device, propagation)
    fit = dict(fit_options, progress=progress)
    passed = None

    def ensemble_scores(model):  # (R, P): the mean of each run's `ensemble` consecutive models
        scores = predict_pool(model, graphs)
        return scores.reshape(len(runs), ensemble, -1).mean(1)

    if use_cascade:
        classifier = cascade.fit_classifier(graphs, list(zip(first, labels)), fit)
        logits = predict_pool(classifier, graphs)
        train_logits = np.take_along_axis(logits, first, axis=1)
        sets = cascade.regressor_sets(zip(first, labels), train_logits, fit_options["batch_size"])
        sets = [s for s in sets for _ in range(ensemble)]
        scores, passed = cascade.cascade_scores(logits, ensemble_scores(train.fit(graphs, sets, **fit)))
    else:
        sets = [(torch.as_tensor(rows), dataset.normalise_accuracy(torch.as_tensor(v)).float())
                for rows, v in zip(first, labels) for _ in range(ensemble)]
        scores = ensemble_scores(train.fit(graphs, sets, **fit))
    oracle.query(runs, rank_unqueried(scores, first, oracle.budget - num_train, passed))


def predict_pool(model, graphs):
    """(M, P) numpy outputs of every model on every pool graph, in chunks of about 4 MB of activations on
    the CPU (they stay in cache) and 1 GB on a GPU (fewer, fuller kernels)."""
    activation_bytes = 2 ** 22 if model.device.type == "cpu" else 2 ** 30
    chunk = max(1, activation_bytes // (4 * model.num_models * 7 * model.hidden))
    return train.predict(model, graphs, batch_size=chunk).numpy()


def rank_unqueried(scores, queried, count, passed=None):
    """(R, count) pool rows per run in ranking order, skipping the rows already queried.

    Higher `scores` (R, P) first; with `passed` (R, P), every passed row comes before
    every other (the cascade). Ties keep pool order.
    """
    group = np.zeros(scores.shape, dtype=np.int64) if passed is None else (~passed).astype(np.int64)
    np.put_along_axis(group, queried, 2, axis=1)
    return np.lexsort((-scores, group), axis=-1)[:, :count]


# ---------------------------------------------------------------------------
# Regularized evolution


def graphs_to_specs(adjacency, operations, num_vertices, filler_ops):
    """7-vertex specs of padded graphs: output moved to vertex 6, vertices n-1..5 dangling.

    The dangling vertices have no edges (pruning removes them) and take their ops from
    `filler_ops` (B, 7) so that mutation can later connect them.
    """
    n = np.asarray(num_vertices)[:, None]
    v = np.arange(7)[None, :]
    # old vertex v -> new position: interior vertices stay, the output goes last, padding shifts down
    position = np.where(v < n - 1, v, np.where(v == n - 1, 6, v - 1))
    b = np.arange(len(n))[:, None]
    adjacency_7 = np.zeros((len(n), 7, 7), dtype=np.int8)
    adjacency_7[b[:, :, None], position[:, :, None], position[:, None, :]] = adjacency
    operations_7 = np.zeros((len(n), 7), dtype=np.int64)
    operations_7[b, position] = operations
    dangling = (v >= n - 1) & (v < 6)
    return adjacency_7, np.where(dangling, filler_ops, operations_7)


def mutate(adjacency, operations, draws, rate=1.0):
    """Mutated copies of 7-vertex specs, given (B, MUTATION_DRAWS) uniforms.

    The NAS-Bench-101 rule: each upper-triangle edge flips with probability rate/7,
    each interior op is replaced with probability rate/5 by one of the two other ops.
    """
    flip = draws[:, :NUM_EDGES] < rate / 7
    change = draws[:, NUM_EDGES:NUM_EDGES + OP_SPOTS] < rate / OP_SPOTS
    shift = 1 + (draws[:, NUM_EDGES + OP_SPOTS:] < 0.5)  # 1 or 2 steps: a different op, uniformly
    upper = np.triu_indices(7, 1)
    child_adjacency = np.array(adjacency, dtype=np.int8)
    child_adjacency[:, upper[0], upper[1]] ^= flip.astype(np.int8)
    child_operations = np.array(operations, dtype=np.int64)
    interior = child_operations[:, 1:6]
    child_operations[:, 1:6] = np.where(change, (interior + shift) % 3, interior)
    return child_adjacency, child_operations


def accepted_candidates(index, rows, parent_index, committed, rule="space"):
    """Which of a round's candidate children each parent accepts, in draw order.

    index (k, A) space index of each candidate (-1 invalid), rows (k, A) its pool row
    (-1 not in the pool), parent_index (k,) the parent's space index, committed (k,)
    True where an earlier draw already decided that the child is a new architecture.
    rule "pool": the first candidate in the pool. rule "space": the first valid
    candidate decides whether the child is the parent's own architecture (as often as
    in the full space); if not, the first pool candidate that differs from the parent.
    Returns (position (k,), -1 where none yet; updated committed flags).
    """
    positions = np.arange(index.shape[1])
    if rule == "pool":
        eligible = rows >= 0
        keep_parent = np.zeros(len(index), dtype=bool)
    else:
        valid = index >= 0
        first_valid = np.argmax(valid, axis=1)
        decides = ~committed & valid.any(axis=1)
        keep_parent = decides & (index[np.arange(len(index)), first_valid] == parent_index)
        start = np.where(committed, 0, first_valid)
        eligible = ((rows >= 0) & (index != parent_index[:, None]) & (positions >= start[:, None])
                    & (committed | decides)[:, None])
        committed = committed | decides
    position = np.where(keep_parent, np.argmax(index >= 0, axis=1),
                        np.where(eligible.any(axis=1), np.argmax(eligible, axis=1), -1))
    return position, committed


def mutate_into_pool(adjacency, operations, parent_index, rngs, space, space_to_pool, rate=1.0, rule="space"):
    """One child per parent spec, mutated from the same parent until `accepted_candidates` takes one.

    Vectorised over parents: every round draws ATTEMPTS_PER_ROUND candidates for each
    parent still without a child, which is what drawing one candidate at a time would
    have chosen. Returns (adjacency, operations, pool rows) of the children.
    """
    count = len(rngs)
    child_adjacency = np.empty((count, 7, 7), dtype=np.int8)
    child_operations = np.empty((count, 7), dtype=np.int64)
    child_rows = np.full(count, -1, dtype=np.int64)
    committed = np.zeros(count, dtype=bool)
    pending = np.arange(count)
    attempts = 0
    while len(pending):
        if attempts >= MAX_ATTEMPTS:
            raise RuntimeError(f"no mutation of a parent landed in the pool after {MAX_ATTEMPTS} attempts; "
                               "the pool is too sparse for regularized evolution")
        draws = np.concatenate([rngs[r].random((ATTEMPTS_PER_ROUND, MUTATION_DRAWS)) for r in pending])
        parents = np.repeat(pending, ATTEMPTS_PER_ROUND)
        candidate_adjacency, candidate_operations = mutate(adjacency[parents], operations[parents], draws, rate)
        index = space.lookup(candidate_adjacency, candidate_operations).reshape(len(pending), -1)
        rows = np.where(index >= 0, space_to_pool[index], -1)
        position, committed[pending] = accepted_candidates(index, rows, parent_index[pending],
                                                           committed[pending], rule)
        done = position >= 0
        pick = (np.arange(len(pending)) * ATTEMPTS_PER_ROUND + position)[done]
        child_adjacency[pending[done]] = candidate_adjacency[pick]
        child_operations[pending[done]] = candidate_operations[pick]
        child_rows[pending[done]] = rows.reshape(-1)[pick]
        pending = pending[~done]
        attempts += ATTEMPTS_PER_ROUND
    return child_adjacency, child_operations, child_rows


def tournament_winners(values, samples):
    """Slot of the best member (first on ties) of each run's tournament sample: values (R, S), samples (R, T)."""
    sampled = np.take_along_axis(values, samples, axis=1)
    return np.take_along_axis(samples, np.argmax(sampled, axis=1)[:, None], axis=1)[:, 0]


def oldest_slots(birth):
    """Slot of the oldest member (smallest birth query index) of each run's population (R, S)."""
    return np.argmin(birth, axis=1)


def pool_to_space_index(pool, space):
    """Space index of every pool architecture; DataError when a graph does not match its hash."""
    filler = np.zeros((len(pool), 7), dtype=np.int64)
    index = space.lookup(*graphs_to_specs(pool.adjacency, pool.operations, pool.num_vertices, filler))
    bad = (index < 0) | (space.hashes[np.maximum(index, 0)] != pool.hashes)
    if bad.any():
        raise nasbench_data.DataError(f"{int(bad.sum())} HDF5 graphs do not match their hash (first: "
                                      f"{pool.hashes[np.argmax(bad)].decode()}); re-create the HDF5 with:\n  "
                                      f"{nasbench_data.CONVERT_HINT}")
    return index


def regularized_evolution(pool, oracle, rngs, space, population=50, tournament=10, rate=1.0, rule="space",
                          progress=False):
    """Regularized evolution in all runs at once (lockstep); every child costs one query.

    Returns the final populations: pool rows, queried values and birth (query index), each (R, S).
    """
    from tqdm import tqdm
    runs = np.arange(len(rngs))
    budget = oracle.budget
    pool_index = pool_to_space_index(pool, space)
    space_to_pool = np.full(len(space), -1, dtype=np.int64)
    space_to_pool[pool_index] = np.arange(len(pool))
    start = min(population, budget)
    members = random_orders(rngs, len(pool), budget)[:, :start]
    member_values = oracle.query(runs, members)
    filler = np.stack([rng.integers(0, 3, size=(start, 7)) for rng in rngs])
    adjacency, operations = graphs_to_specs(pool.adjacency[members].reshape(-1, 7, 7),
                                            pool.operations[members].reshape(-1, 7),
                                            pool.num_vertices[members].reshape(-1), filler.reshape(-1, 7))
    adjacency = adjacency.reshape(len(runs), start, 7, 7)
    operations = operations.reshape(len(runs), start, 7)
    birth = np.tile(np.arange(start), (len(runs), 1))
    for step in tqdm(range(start, budget), desc="evolution", disable=not progress, unit="query"):
        # a uniform sample of distinct members: the first `tournament` of a random order
        samples = np.argsort(np.stack([rng.random(start) for rng in rngs]), axis=1)[:, :tournament]
        parents = tournament_winners(member_values, samples)
        child_adjacency, child_operations, child_rows = mutate_into_pool(
            adjacency[runs, parents], operations[runs, parents], pool_index[members[runs, parents]],
            rngs, space, space_to_pool, rate, rule)
        child_values = oracle.query(runs, child_rows[:, None])[:, 0]
        dead = oldest_slots(birth)
        adjacency[runs, dead] = child_adjacency
        operations[runs, dead] = child_operations
        members[runs, dead] = child_rows
        member_values[runs, dead] = child_values
        birth[runs, dead] = step
    return {"members": members, "values": member_values, "birth": birth}


# ---------------------------------------------------------------------------
# traces, tables, plots


def best_so_far(pool, rows, values):
    """Per run and query count: best queried validation accuracy, regret and mean test of the chosen architecture.

    The chosen architecture is the first one that reached the best queried value so far.
    Regret (fraction) = the pool's best mean validation accuracy - the chosen one's mean validation accuracy.
    """
    best = np.maximum.accumulate(values, axis=1)
    previous = np.concatenate([np.full((len(values), 1), -np.inf), best[:, :-1]], axis=1)
    improved = values > previous
    position = np.maximum.accumulate(np.where(improved, np.arange(values.shape[1]), 0), axis=1)
    chosen = np.take_along_axis(rows, position, axis=1)
    regret = pool.mean_validation.max() - pool.mean_validation[chosen]
    return {"best_validation": best, "regret": regret, "chosen_test": pool.mean_test[chosen]}


def queries_to_reach(regret, threshold):
    """(R,) number of queries after which each run's regret is <= threshold; inf where never within budget."""
    reached = regret <= threshold + 1e-12
    first = np.argmax(reached, axis=1).astype(np.float64) + 1
    return np.where(reached.any(axis=1), first, np.inf)


def reach_cell(regret, threshold):
    """'mean / median (reached/runs)' queries to reach a regret; runs that never reach it count as the budget."""
    needed = queries_to_reach(regret, threshold)
    reached = np.isfinite(needed)
    mean = np.where(reached, needed, regret.shape[1]).mean()
    median = np.median(needed)
    prefix = "" if reached.all() else ">= "
    median_text = f"{median:.0f}" if np.isfinite(median) else f"> {regret.shape[1]}"
    return f"{prefix}{mean:.0f} / {median_text} ({reached.sum()}/{len(reached)})"


def regret_table(traces, thresholds=REGRET_THRESHOLDS):
    """Markdown table: queries each method needs to reach each regret (mean / median, runs reaching it)."""
    lines = ["| method | " + " | ".join(f"regret <= {t:g} pp" for t in thresholds) + " |",
             "|---|" + "---|" * len(thresholds)]
    for method, trace in traces.items():
        cells = [reach_cell(trace["regret"], t / 100) for t in thresholds]
        lines.append(f"| {METHOD_NAMES[method]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def budget_table(traces, budgets=REPORT_BUDGETS):
    """Markdown table: mean best validation accuracy, mean regret and mean test accuracy at given budgets."""
    budget = min(trace["regret"].shape[1] for trace in traces.values())
    budgets = [b for b in budgets if b <= budget]
    lines = ["| method | " + " | ".join(f"{b} queries" for b in budgets) + " |", "|---|" + "---|" * len(budgets)]
    for method, trace in traces.items():
        cells = []
        for b in budgets:
            cell = (f"{100 * trace['best_validation'][:, b - 1].mean():.2f} / "
                    f"{100 * trace['regret'][:, b - 1].mean():.3f}")
            test = trace["chosen_test"][:, b - 1]
            if np.isfinite(test).any():
                cell += f" / {100 * np.nanmean(test):.2f}"
            cells.append(cell)
        lines.append(f"| {METHOD_NAMES[method]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_curves(traces, path, num_train=None):
    """curves.png: mean best-so-far validation accuracy and regret with interquartile bands, log-x."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    has_test = any(np.isfinite(t["chosen_test"]).any() for t in traces.values())
    panels = [("best_validation", "best validation accuracy found (%)"),
              ("regret", "regret of the chosen architecture (pp)")]
    if has_test:
        panels.append(("chosen_test", "mean test accuracy of the chosen architecture (%)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8))
    for ax, (key, label) in zip(axes, panels):
        for method, trace in traces.items():
            values = 100 * trace[key]
            queries = np.arange(1, values.shape[1] + 1)
            line, = ax.plot(queries, np.nanmean(values, axis=0), label=METHOD_NAMES[method])
            low, high = np.nanpercentile(values, [25, 75], axis=0)
            ax.fill_between(queries, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        if num_train:
            ax.axvline(num_train, color="gray", linestyle=":", linewidth=1)
        ax.set_xscale("log")
        ax.set_xlabel("architectures queried (trained)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_ylim(bottom=np.percentile(100 * np.concatenate(
        [t["best_validation"][:, min(9, t["best_validation"].shape[1] - 1)] for t in traces.values()]), 25))
    axes[1].set_yscale("symlog", linthresh=0.05)
    axes[1].set_ylim(bottom=0)
    axes[0].legend(loc="lower right")
    runs = next(iter(traces.values()))["regret"].shape[0]
    fig.suptitle(f"mean (line) and interquartile range (band) over {runs} runs; the methods share their first "
                 f"random queries" + (f"; dotted: the Neural Predictor's N = {num_train}" if num_train else ""))
    fig.tight_layout()
    with nasbench_data.atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def markdown_report(traces, summary):
    """table.md: queries needed to reach each regret, values at given budgets, distinct architectures queried."""
    has_test = any(np.isfinite(t["chosen_test"]).any() for t in traces.values())
    distinct = ", ".join(f"{METHOD_NAMES[m]} {summary['methods'][m]['distinct_architectures_mean']:.0f}"
                         for m in traces)
    return ("## Queries needed to reach a regret\n\n"
            "Regret = the pool's best mean validation accuracy minus that of the architecture chosen by "
            "queried validation accuracy, in percentage points. Cells: mean / median number of queries over "
            "runs (runs that never reach it count as the budget, hence '>='), and (runs reaching it / runs).\n\n"
            + regret_table(traces)
            + "\n\n## At given budgets\n\nCells: mean best validation accuracy found (%) / mean regret (pp)"
            + (" / mean test accuracy of the chosen architecture (%)" if has_test else "")
            + ".\n\n" + budget_table(traces)
            + f"\n\nDistinct architectures among the {summary['args']['budget']} queries of a run (mean): "
            + distinct + ".\n")


def write_outputs(output_dir, traces, oracles, summary):
    """Write curves.png, table.md, traces.npz and summary.json (each atomically); return the table."""
    os.makedirs(output_dir, exist_ok=True)
    plot_curves(traces, os.path.join(output_dir, "curves.png"),
                summary["args"]["num_train"] if "predictor" in traces else None)
    table = markdown_report(traces, summary)
    with nasbench_data.atomic_output(os.path.join(output_dir, "table.md")) as tmp:
        with open(tmp, "w") as f:
            f.write(table)
    arrays = {f"{method}/{key}": value for method, trace in traces.items() for key, value in trace.items()}
    arrays.update({f"{method}/rows": oracle.rows for method, oracle in oracles.items()})
    arrays.update({f"{method}/values": oracle.values for method, oracle in oracles.items()})
    with nasbench_data.atomic_output(os.path.join(output_dir, "traces.npz")) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    nasbench_data.write_json(os.path.join(output_dir, "summary.json"), summary)
    return table


def run_search(args):
    """Run every requested method on the pool of args.data; return (traces, oracles, summary)."""
    pool = load_pool(nasbench_data.read_hdf5(args.data))
    if args.budget > len(pool):
        raise nasbench_data.DataError(f"--budget {args.budget} exceeds the pool of {len(pool)} architectures")
    progress = not args.quiet
    traces, oracles, seconds = {}, {}, {}
    for method in args.methods:
        rngs, uniforms = run_generators(args.seed, args.runs, args.budget)
        oracle = Oracle(pool, uniforms)
        start = time.time()
        if method == "random":
            random_search(pool, oracle, rngs)
        elif method == "predictor":
            fit_options = train.fit_arguments(args, train.resolve_device(args.device))
            neural_predictor(pool, oracle, rngs, args.num_train, fit_options, args.cascade, args.propagation,
                             args.ensemble, progress)
        else:
            space = search_space.enumerate_space(progress=progress)
            regularized_evolution(pool, oracle, rngs, space, args.population, args.tournament,
                                  args.mutation_rate, args.child_rule, progress=progress)
        seconds[method] = time.time() - start
        assert (oracle.count == args.budget).all(), f"{method} did not spend its budget exactly"
        traces[method] = best_so_far(pool, oracle.rows, oracle.values)
        oracles[method] = oracle
        if progress:
            print(f"{METHOD_NAMES[method]}: {seconds[method]:.1f}s, mean best validation at "
                  f"{args.budget} queries {100 * traces[method]['best_validation'][:, -1].mean():.2f}%",
                  file=sys.stderr)
    summary = {
        "args": vars(args),
        "pool_size": len(pool),
        "pool_best_mean_validation": float(pool.mean_validation.max()),
        "pool_best_mean_test": float(np.nanmax(pool.mean_test)) if np.isfinite(pool.mean_test).any() else None,
        "seconds": seconds,
        "methods": {method: {
            "final_best_validation_mean": float(trace["best_validation"][:, -1].mean()),
            "final_regret_mean": float(trace["regret"][:, -1].mean()),
            "final_regret_median": float(np.median(trace["regret"][:, -1])),
            "distinct_architectures_mean": float(np.mean([len(np.unique(r)) for r in oracles[method].rows])),
            "queries_to_reach_regret_median": {
                f"{t:g}pp": float(np.median(queries_to_reach(trace["regret"], t / 100))) for t in REGRET_THRESHOLDS},
        } for method, trace in traces.items()},
    }
    return traces, oracles, summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", default=nasbench_data.DEFAULT_HDF5, help="HDF5 made by tools/nasbench_tfrecord_converter.py")
    parser.add_argument("--output_dir", default="results/search")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--runs", type=int, default=100, help="independent runs per method")
    parser.add_argument("--budget", type=int, default=2000, help="queries (trained architectures) per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_train", type=int, default=172, help="Neural Predictor: N random training queries")
    parser.add_argument("--cascade", action="store_true", help="Neural Predictor: classifier first stage")
    train.add_recipe_arguments(parser)
    parser.add_argument("--population", type=int, default=50)
    parser.add_argument("--tournament", type=int, default=10)
    parser.add_argument("--mutation_rate", type=float, default=1.0)
    parser.add_argument("--child_rule", choices=("space", "pool"), default="space",
                        help="evolution: 'space' keeps a child equal to its parent only as often as in the full "
                             "space; 'pool' re-mutates until any pool architecture (the parent wins on a sample)")
    parser.add_argument("--device", default="auto", help="auto = CUDA when available")
    train.add_threads_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = train.resolve_recipe(parser.parse_args(argv))
    if args.runs < 1 or args.budget < 1:
        parser.error("--runs and --budget must be positive")
    if "predictor" in args.methods and not args.train_batch_size <= args.num_train < args.budget:
        parser.error(f"--num_train must be at least --train_batch_size ({args.train_batch_size}) "
                     f"and below --budget ({args.budget})")
    if not 1 <= args.tournament <= args.population:
        parser.error("--tournament must be between 1 and --population")
    return args


def main(argv=None):
    args = parse_args(argv)
    train.use_threads(args)
    try:
        traces, oracles, summary = run_search(args)
    except nasbench_data.DataError as e:
        sys.exit(f"error: {e}")
    table = write_outputs(args.output_dir, traces, oracles, summary)
    if not args.quiet:
        print(table)
        print(f"wrote {args.output_dir}/curves.png, table.md, traces.npz, summary.json", file=sys.stderr)


if __name__ == "__main__":
    main()
