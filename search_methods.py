"""The search methods that search.py compares, each a unit, and the pool and oracle they share.

    python -c "import search_methods; print(list(search_methods.METHODS))"

`METHODS` maps a method's name to a `Method`: its display name and a function
`run(pool, oracle, rngs, args, device, progress)` that spends every run's budget through
`oracle.query`; adding a method is one function and one line there, and touches no other.

- Random search: without replacement from the pool.
- Neural Predictor: N random queries, one predictor per run (all runs trained together as
  one stacked model), then the unqueried pool in predicted order; with the classifier
  cascade optionally.
- Regularized evolution: population 50, tournament 10, mutation rate 1.0 (search_space.mutate),
  the oldest dies; all runs advance in lockstep.
"""
import argparse
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

import cli
import dataset
import engine
from nb101 import nasbench_data
from nb101 import search_space
from nb101.search_space import MAX_VERTICES, MUTATION_DRAWS

ATTEMPTS_PER_ROUND = 16  # candidate children drawn at once per run still looking for one
MAX_ATTEMPTS = 100_000  # give up (pool too sparse around a parent) after this many candidates


# ---------------------------------------------------------------------------
# pool and oracle


@dataclass
class Pool:
    """The candidate architectures: HDF5 rows with a label, their graphs and their runs."""

    rows: np.ndarray  # (P,) HDF5 row of each candidate
    hashes: np.ndarray  # (P,) S32
    adjacency: np.ndarray  # (P, 7, 7) int8, padded
    operations: np.ndarray  # (P, 7) int8
    num_vertices: np.ndarray  # (P,) int
    run_accuracy: np.ndarray  # (P, 3) 108-epoch final validation accuracy, present runs first, NaN after
    run_seconds: np.ndarray  # (P, 3) the same runs' 108-epoch training time (s); NaN where the data lacks it
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
        run_seconds=np.take_along_axis(nasbench_data.run_values(metrics, "training_time"), first_present, axis=1),
        num_runs=present.sum(axis=1),
        mean_validation=nan_mean(runs),
        mean_test=nan_mean(nasbench_data.run_values(metrics, "test_accuracy")),
    )


class Oracle:
    """Answers queries of R search runs with one run's validation accuracy; logs them and what they cost;
    enforces the budget.

    Query j of run r reads training run floor(u[r, j] * runs present) of the queried
    architecture, so the answers are fixed by the pre-drawn uniforms `u` (R, budget). Its
    cost is that run's 108-epoch training time (`seconds`; 0 where the data lacks it).
    """

    def __init__(self, pool, uniforms):
        self.pool = pool
        self.uniforms = uniforms
        self.budget = uniforms.shape[1]
        self.rows = np.full(uniforms.shape, -1, dtype=np.int64)
        self.values = np.full(uniforms.shape, np.nan)
        self.seconds = np.full(uniforms.shape, np.nan)
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
        self.seconds[runs[:, None], slots] = np.nan_to_num(self.pool.run_seconds[rows, which])
        self.count[runs] += rows.shape[1]
        return values


def oracle_floor(pool, seed, draws=100, chunk=20):
    """The regret of picking by one run's validation accuracy with every architecture of the pool queried: for each
    of `draws` draws of one run per architecture (as the oracle draws them), the pool's best mean validation
    accuracy minus the mean of the architecture whose drawn run is best. No search can beat it on average.
    Returns the (draws,) regrets (fractions). With one run per architecture every draw is the same."""
    rng = np.random.default_rng([seed, 1_000_003])
    regrets = []
    for start in range(0, draws, chunk):  # (chunk, P) draws at a time: the full space is 423,624 columns
        count = min(chunk, draws - start)
        which = np.floor(rng.random((count, len(pool))) * pool.num_runs).astype(np.int64)
        values = pool.run_accuracy[np.arange(len(pool)), which]
        regrets.append(pool.mean_validation.max() - pool.mean_validation[np.argmax(values, axis=1)])
    return np.concatenate(regrets)


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
    then query the rest in predicted order. fit_options: engine.fit's keyword arguments, device included."""
    neural_predictor_sizes(pool, [(oracle, rngs, num_train)], fit_options, use_cascade, propagation, ensemble,
                           progress)


def neural_predictor_sizes(pool, groups, fit_options, use_cascade=False, propagation="faithful", ensemble=1,
                           progress=False):
    """The Neural Predictor for several training-set sizes at once: groups are (oracle, rngs, N), one per N.

    Every run of every group queries its first N random architectures, then the predictors of all runs of all
    groups train as one stacked fit (sets of unequal sizes: each model takes its own number of steps), and
    each run queries the rest of its budget in its predictor's order.
    """
    device = fit_options["device"]
    graphs = dataset.graph_tensors(pool.adjacency, pool.operations, pool.num_vertices, device, propagation)
    fit = dict(fit_options, progress=progress)
    backend = fit_options.get("backend", "auto")
    firsts, queried = [], []  # per group (R, N) first queries; per run of every group (rows, labels)
    for oracle, rngs, num_train in groups:
        first = random_orders(rngs, len(pool), oracle.budget)[:, :num_train]
        labels = query_labels(oracle.query(np.arange(len(rngs)), first))
        firsts.append(first)
        queried += list(zip(first, labels))
    if use_cascade:
        classifier = engine.fit_classifier(graphs, queried, fit)
        logits = predict_pool(classifier, graphs, backend)
        train_logits = [logit[rows] for logit, (rows, _) in zip(logits, queried)]
        sets = engine.regressor_sets(queried, train_logits, fit_options["batch_size"])
    else:
        sets = [(torch.as_tensor(rows), dataset.normalise_accuracy(torch.as_tensor(v)).float()) for rows, v in queried]
    model = engine.fit(graphs, [s for s in sets for _ in range(ensemble)], **fit)
    scores = predict_pool(model, graphs, backend).reshape(len(queried), ensemble, -1).mean(1)  # (runs, P)
    passed = None
    if use_cascade:
        scores, passed = engine.cascade_scores(logits, scores)
    start = 0
    for (oracle, rngs, num_train), first in zip(groups, firsts):
        part = slice(start, start + len(rngs))
        start += len(rngs)
        oracle.query(np.arange(len(rngs)), rank_unqueried(scores[part], first, oracle.budget - num_train,
                                                          None if passed is None else passed[part]))


def predict_pool(model, graphs, backend="auto"):
    """(M, P) numpy outputs of every model on every pool graph, in chunks of about 4 MB of activations on
    the CPU (they stay in cache) and 1 GB on a GPU (fewer, fuller kernels)."""
    activation_bytes = 2 ** 22 if model.device.type == "cpu" else 2 ** 30
    chunk = max(1, activation_bytes // (4 * model.num_models * model.activation_size))
    return engine.predict(model, graphs, batch_size=chunk, backend=backend).numpy()


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
    child_adjacency = np.empty((count, MAX_VERTICES, MAX_VERTICES), dtype=np.int8)
    child_operations = np.empty((count, MAX_VERTICES), dtype=np.int64)
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
        candidate_adjacency, candidate_operations = search_space.mutate(adjacency[parents], operations[parents], draws, rate)
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
    filler = np.zeros((len(pool), MAX_VERTICES), dtype=np.int64)
    index = space.lookup(*search_space.graphs_to_specs(pool.adjacency, pool.operations, pool.num_vertices, filler))
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
    filler = np.stack([rng.integers(0, len(search_space.OPS), size=(start, MAX_VERTICES)) for rng in rngs])
    adjacency, operations = search_space.graphs_to_specs(pool.adjacency[members].reshape(-1, MAX_VERTICES, MAX_VERTICES),
                                                         pool.operations[members].reshape(-1, MAX_VERTICES),
                                                         pool.num_vertices[members].reshape(-1), filler.reshape(-1, MAX_VERTICES))
    adjacency = adjacency.reshape(len(runs), start, MAX_VERTICES, MAX_VERTICES)
    operations = operations.reshape(len(runs), start, MAX_VERTICES)
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
# the registry


def run_random(pool, oracle, rngs, args, device, progress):
    random_search(pool, oracle, rngs)


def run_predictor(pool, oracle, rngs, args, device, progress):
    neural_predictor(pool, oracle, rngs, args.num_train[0], cli.fit_arguments(args, device), args.cascade,
                     args.propagation, args.ensemble, progress)


def run_predictor_sizes(pool, groups, args, device, progress):
    """The N sweep: the Neural Predictor for every N of args.num_train in one stacked fit; groups (oracle, rngs, N)."""
    neural_predictor_sizes(pool, groups, cli.fit_arguments(args, device), args.cascade, args.propagation,
                           args.ensemble, progress)


def run_evolution(pool, oracle, rngs, args, device, progress):
    space = search_space.enumerate_space(progress=progress)
    regularized_evolution(pool, oracle, rngs, space, args.population, args.tournament, args.mutation_rate,
                          args.child_rule, progress=progress)


CASCADES = {"off": (False,), "on": (True,), "both": (False, True)}  # search.py's --cascade


def method_units(args):
    """(key, method, args) of every comparison entry the command line asks for, in order. The Neural Predictor
    gives one entry per --predictor x --recipe x --cascade variant, its args resolved by that recipe
    (cli.recipe_variants) and args.cascade a bool; its key is 'predictor' for the lone default variant (GCN,
    faithful, no cascade) and 'predictor:gcn,faithful[,cascade]' otherwise."""
    units = []
    for method in args.methods:
        if method != "predictor":
            units.append((method, method, args))
            continue
        variants = [argparse.Namespace(**dict(vars(variant), cascade=cascade))
                    for variant in cli.recipe_variants(args) for cascade in CASCADES[args.cascade]]
        for variant in variants:
            cascade = variant.cascade
            default = (variant.predictor, variant.recipe, cascade) == ("gcn", "faithful", False)
            key = ("predictor" if len(variants) == 1 and default else
                   f"predictor:{variant.predictor},{variant.recipe}" + (",cascade" if cascade else ""))
            units.append((key, method, variant))
    return units


def method_name(key):
    """Display name of a trace key of method_units, with '@N' for an N of the N sweep:
    'predictor:mlp,improved,cascade@86' -> 'Neural Predictor (MLP, improved, cascade), N = 86'."""
    base, _, size = key.partition("@")
    method, _, variant = base.partition(":")
    name = METHODS[method].name
    if variant:
        predictor, *rest = variant.split(",")
        name += f" ({', '.join([predictor.upper(), *rest])})"
    return name + (f", N = {size}" if size else "")


@dataclass
class Method:
    name: str  # as tables and legends show it
    run: Callable  # run(pool, oracle, rngs, args, device, progress): spends every run's budget through oracle.query


METHODS = {
    "predictor": Method("Neural Predictor", run_predictor),
    "random": Method("Random search", run_random),
    "evolution": Method("Regularized evolution", run_evolution),
}
