"""The search methods, as a library over a NAS-Bench-101 benchmark object, and the pool and oracle they share.

    from nb101 import api
    import search_methods
    nasbench = api.NASBench("data/nasbench.hdf5", seed=0)
    result = search_methods.neural_predictor_search(nasbench, runs=10, budget=500, num_train=172)
    result.best_validation()[:, -1]                 # each run's best queried validation accuracy
    nasbench.get_budget_counters()                  # every query went through the benchmark

Every method runs R independent search runs at once and queries through the benchmark's
own `query_batch` (nb101.api) or `query` (any object with the official API: hash_iterator,
get_metrics_from_hash, query), so its budget counters count every trained architecture and
its generator draws the run each query returns. Run r's own choices come from generators
seeded from (seed, r): random search's first queries, the Neural Predictor's N training
architectures and evolution's initial population are the same draw. `METHODS` names them
(search.py compares them); adding a method is one function and one line there.

- Random search: without replacement from the pool.
- Neural Predictor: N random queries, one predictor per run (all runs trained together as
  one stacked model), then the unqueried pool in predicted order; with the classifier
  cascade optionally.
- Regularized evolution: population 50, tournament 10, mutation rate 1.0 (search_space.mutate),
  the oldest dies; all runs advance in lockstep.
"""
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

import dataset
import engine
from nb101 import api, nasbench_data
from nb101 import search_space
from nb101.search_space import MAX_VERTICES, MUTATION_DRAWS
from recipes import get_recipe

RUNS, BUDGET, NUM_TRAIN = 100, 2000, 172  # the defaults: runs per method, queries per run, the Neural Predictor's N
# evolution mutates cells of the whole space and keeps those in the pool: below this share it can take hours to
# find a child, or give up
MIN_EVOLUTION_POOL = search_space.NUM_ARCHITECTURES // 100
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


def pool_of(benchmark):
    """The pool of every architecture of a benchmark that has a label: from its arrays() (nb101.api), else read
    through the official API's hash_iterator and get_metrics_from_hash."""
    return load_pool(benchmark.arrays() if hasattr(benchmark, "arrays") else official_arrays(benchmark))


def official_arrays(benchmark):
    """The HDF5 arrays (nb101.nasbench_data's schema) of a benchmark that has only the official API."""
    hashes = list(benchmark.hash_iterator())
    count = len(hashes)
    data = {"hash": np.array(hashes, dtype="S32"), "num_vertices": np.zeros(count, np.int8),
            "trainable_parameters": np.full(count, -1, np.int64),
            "adjacency": np.zeros((count, MAX_VERTICES, MAX_VERTICES), np.int8),
            "operations": np.zeros((count, MAX_VERTICES), np.int8),
            "metrics": np.full((count, *nasbench_data.METRICS_SHAPE), np.nan, np.float32)}
    for i, module_hash in enumerate(hashes):
        fixed, computed = benchmark.get_metrics_from_hash(module_hash)
        n = len(fixed["module_operations"])
        data["num_vertices"][i] = n
        data["adjacency"][i, :n, :n] = fixed["module_adjacency"]
        data["operations"][i, :n] = search_space.ops_to_codes(fixed["module_operations"])
        for epochs, runs in computed.items():
            for run, stats in enumerate(runs[:nasbench_data.NUM_RUNS]):
                for c, checkpoint in enumerate(nasbench_data.CHECKPOINTS):
                    for f, field in enumerate(nasbench_data.FIELDS):
                        value = stats.get(f"{checkpoint}_{field}")
                        if value is not None:
                            data["metrics"][i, nasbench_data.EPOCHS.index(epochs), run, c, f] = value
    return data


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
    """Answers the queries of R search runs through a benchmark; logs them and what they cost; enforces the budget.

    A query of pool row p asks the benchmark for that architecture (query_batch where it has one, else
    query with its ModelSpec), which draws one of its training runs and adds the run's training time to its
    budget counters; the oracle returns the run's 108-epoch final validation accuracy (NaN where the data
    lacks it) and logs its training time (`seconds`, 0 where the data lacks it).
    """

    def __init__(self, pool, benchmark, runs, budget):
        self.pool, self.benchmark, self.budget = pool, benchmark, budget
        self.rows = np.full((runs, budget), -1, dtype=np.int64)
        self.values = np.full((runs, budget), np.nan)
        self.seconds = np.full((runs, budget), np.nan)
        self.count = np.zeros(runs, dtype=np.int64)

    def query(self, runs, rows):
        """Validation accuracies of `rows` (k, m): m queries for each of the k distinct `runs`, asked run by run."""
        runs = np.asarray(runs, dtype=np.int64)
        rows = np.asarray(rows, dtype=np.int64).reshape(len(runs), -1)
        start = self.count[runs]
        if (start + rows.shape[1] > self.budget).any():
            raise RuntimeError(f"a search run asked for more than its budget of {self.budget} queries")
        values, seconds = ask_benchmark(self.benchmark, self.pool, rows.ravel())
        slots = start[:, None] + np.arange(rows.shape[1])
        self.rows[runs[:, None], slots] = rows
        self.values[runs[:, None], slots] = values.reshape(rows.shape)
        self.seconds[runs[:, None], slots] = seconds.reshape(rows.shape)
        self.count[runs] += rows.shape[1]
        return values.reshape(rows.shape)


def ask_benchmark(benchmark, pool, rows):
    """(validation accuracies, training seconds) of one query of each pool row, in order, through `benchmark`."""
    if hasattr(benchmark, "query_batch"):
        data = benchmark.query_batch(pool.hashes[rows])
        return data["validation_accuracy"], np.nan_to_num(data["training_time"])
    answers = [benchmark.query(api.ModelSpec(pool.adjacency[row, :n, :n], search_space.codes_to_ops(
        pool.operations[row, :n]))) for row, n in zip(rows.tolist(), pool.num_vertices[rows].tolist())]
    return (np.array([np.nan if a["validation_accuracy"] is None else a["validation_accuracy"] for a in answers]),
            np.array([a["training_time"] or 0.0 for a in answers]))


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


def run_generators(seed, runs):
    """Per search run, the generator of the method's choices, seeded from (seed, run)."""
    return [np.random.default_rng(np.random.SeedSequence([seed, r]).spawn(2)[0]) for r in range(runs)]


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


def search_random(benchmark, *, runs=RUNS, budget=BUDGET, seed=0, pool=None, progress=False):
    """Random search: `runs` runs of `budget` distinct random architectures each.

    Args:
      benchmark: nb101.api.NASBench, or any object with the official API (queries go through it).
      runs, budget: search runs, and queries (trained architectures) per run.
      seed: run r's choices come from a generator seeded from (seed, r).
      pool: the benchmark's pool_of, when the caller has it already.
      progress: unused (random search is a single batch of queries); kept for a uniform signature.

    Returns:
      the Oracle: rows, values, seconds (runs, budget) of every query in order.
    """
    pool, oracle, rngs = _setup(benchmark, pool, runs, budget, seed)
    random_search(pool, oracle, rngs)
    return oracle


def search_neural_predictor(benchmark, *, runs=RUNS, budget=BUDGET, seed=0, num_train=NUM_TRAIN, recipe="faithful",
                            predictor="gcn", cascade=False, device="cpu", backend="auto", precision="fp32",
                            pool=None, progress=False):
    """The Neural Predictor: per run, query `num_train` random architectures, fit a predictor on them (every run's
    predictor in one stacked fit), then query the rest of the pool in predicted order.

    Args (beyond search_random's):
      num_train: N, the random training queries of each run.
      recipe: "faithful", "improved" or a recipes.Recipe (its ensemble, propagation rule, ...).
      predictor: "gcn", "mlp" or "cnn".
      cascade: the classifier first stage (label: validation accuracy > 0.91).
      device, backend, precision: as for predictor.NeuralPredictor.

    Returns:
      the Oracle.
    """
    return search_neural_predictor_sizes(benchmark, sizes=[num_train], runs=runs, budget=budget, seed=seed,
                                         recipe=recipe, predictor=predictor, cascade=cascade, device=device,
                                         backend=backend, precision=precision, pool=pool, progress=progress)[num_train]


def search_neural_predictor_sizes(benchmark, *, sizes, runs=RUNS, budget=BUDGET, seed=0, recipe="faithful",
                                  predictor="gcn", cascade=False, device="cpu", backend="auto", precision="fp32",
                                  pool=None, progress=False):
    """search_neural_predictor for several N at once (the paper's N-vs-K ablation), all predictors in one fit;
    every N's runs share their seeds, so they share their first queries. Returns {N: Oracle}."""
    recipe = get_recipe(recipe)
    pool = pool_of(benchmark) if pool is None else pool
    if not all(recipe.batch_size <= n < budget for n in sizes):
        raise ValueError(f"every N must be at least the batch size ({recipe.batch_size}) and below the budget "
                         f"({budget}); got {list(sizes)}")
    groups = []
    for size in sizes:
        _, oracle, rngs = _setup(benchmark, pool, runs, budget, seed)
        groups.append((oracle, rngs, size))
    fit_options = dict(recipe.fit_options(), predictor=predictor, backend=backend, precision=precision, seed=seed,
                       device=engine.resolve_device(str(device)))
    neural_predictor_sizes(pool, groups, fit_options, cascade, recipe.propagation, recipe.ensemble, progress)
    return {size: oracle for oracle, _, size in groups}


def search_evolution(benchmark, *, runs=RUNS, budget=BUDGET, seed=0, population=50, tournament=10, mutation_rate=1.0,
                     child_rule="space", pool=None, progress=False):
    """Regularized evolution: population, tournament size, mutation rate (search_space.mutate), the oldest dies;
    all runs in lockstep, each child one query. child_rule "space": a child that is its parent's own
    architecture is kept only as often as in the full space; "pool": mutate until any pool architecture.
    Returns the Oracle."""
    if not 1 <= tournament <= population:
        raise ValueError(f"the tournament ({tournament}) must be between 1 and the population ({population})")
    pool, oracle, rngs = _setup(benchmark, pool, runs, budget, seed)
    check_evolution_pool(pool)
    space = search_space.enumerate_space(progress=progress)
    regularized_evolution(pool, oracle, rngs, space, population, tournament, mutation_rate, child_rule,
                          progress=progress)
    return oracle


def check_evolution_pool(pool):
    """ValueError for a pool too sparse in the space for regularized evolution's mutations to land in it."""
    if len(pool) < MIN_EVOLUTION_POOL:
        raise ValueError(f"regularized evolution mutates cells of the whole space and keeps those in the pool: it "
                         f"needs a pool of at least {MIN_EVOLUTION_POOL:,} architectures (1% of the space; the "
                         f"shipped sample has 20,001), and this one has {len(pool):,}. Leave evolution out "
                         "(--methods random predictor) or use larger data")


def _setup(benchmark, pool, runs, budget, seed):
    """(pool, a fresh Oracle, run generators); ValueError for a budget beyond the pool, or runs x budget beyond
    the memory (the log and the traces hold about ten float64s per query)."""
    pool = pool_of(benchmark) if pool is None else pool
    if budget > len(pool):
        raise ValueError(f"a budget of {budget} queries exceeds the pool of {len(pool)} architectures")
    needed, available = runs * budget * 80, engine.physical_memory()
    if needed > available:
        raise ValueError(f"{runs:,} runs of {budget:,} queries need about {needed / 2 ** 30:,.0f} GiB for their log, "
                         f"more than the {available / 2 ** 30:,.0f} GiB of this machine; use fewer --runs")
    return pool, Oracle(pool, benchmark, runs, budget), run_generators(seed, runs)


@dataclass
class Method:
    name: str  # as tables and legends show it
    search: Callable  # search(benchmark, *, runs, budget, seed, pool, progress, **options) -> Oracle


METHODS = {
    "predictor": Method("Neural Predictor", search_neural_predictor),
    "random": Method("Random search", search_random),
    "evolution": Method("Regularized evolution", search_evolution),
}


def method_name(key):
    """Display name of a trace key, with '@N' for an N of the N sweep:
    'predictor:mlp,improved,cascade@86' -> 'Neural Predictor (MLP, improved, cascade), N = 86'."""
    base, _, size = key.partition("@")
    method, _, variant = base.partition(":")
    name = METHODS[method].name
    if variant:
        predictor, *rest = variant.split(",")
        name += f" ({', '.join([predictor.upper(), *rest])})"
    return name + (f", N = {size}" if size else "")
