"""Tests of search.py on real data: HDF5 files converted from ../shared/nb101 in a temporary directory."""
import json
import os

import numpy as np
import torch
import pytest

import random

from nb101 import api, nasbench_data
import recipes
import search
from nb101 import search_space
from nb101 import records
import cli
import engine
import search_methods
import search_report


@pytest.fixture(scope="module")
def pool_20k(nasbench_20k):
    return search_methods.pool_of(nasbench_20k)


@pytest.fixture(scope="module")
def complete_pool(tmp_path_factory, complete_records_path):
    """The 56 complete records (3 runs each, with test accuracy) as a pool, and the records themselves."""
    path = str(tmp_path_factory.mktemp("data") / "complete.hdf5")
    records.convert(complete_records_path, path, quiet=True)
    with open(complete_records_path) as f:
        by_hash = {r["hash"]: r for r in map(json.loads, f)}
    return search_methods.load_pool(nasbench_data.read_hdf5(path)), by_hash, api.NASBench(path, verbose=False)


# ---------------------------------------------------------------------------
# pool and queries


def test_pool_holds_labelled_rows_with_their_runs(pool_20k, complete_pool):
    assert len(pool_20k) == 20001
    assert (pool_20k.num_runs == 1).all() and np.isnan(pool_20k.mean_test).all()
    assert np.array_equal(pool_20k.mean_validation, pool_20k.run_accuracy[:, 0])
    pool, by_hash, _ = complete_pool
    for i in range(len(pool)):
        runs = by_hash[pool.hashes[i].decode()]["computed_stats"]["108"]
        validation = [run["final_validation_accuracy"] for run in runs]
        test = [run["final_test_accuracy"] for run in runs]
        assert pool.num_runs[i] == len(runs) == 3
        assert np.allclose(pool.run_accuracy[i], validation)
        assert np.isclose(pool.mean_validation[i], np.mean(validation))
        assert np.isclose(pool.mean_test[i], np.mean(test))


def test_oracle_queries_through_the_benchmark_and_refuses_queries_past_the_budget(complete_pool):
    """Each query is the benchmark's: the run drawn by random.randint(0, 2) on the generator the benchmark seeds
    (replayed here with random.Random), its training time added to the benchmark's budget counters."""
    pool, by_hash, nasbench = complete_pool
    random.seed(5)
    nasbench.reset_budget_counters()
    oracle = search_methods.Oracle(pool, nasbench, runs=2, budget=4)
    values = oracle.query([1, 0], [[5, 5], [7, 8]])
    oracle.query([0], [[3, 3]])
    replay = random.Random(5)
    expected_seconds = 0.0
    for run, slot, row in [(1, 0, 5), (1, 1, 5), (0, 0, 7), (0, 1, 8), (0, 2, 3), (0, 3, 3)]:
        drawn = by_hash[pool.hashes[row].decode()]["computed_stats"]["108"][replay.randint(0, 2)]
        assert oracle.values[run, slot] == drawn["final_validation_accuracy"]
        assert oracle.seconds[run, slot] == drawn["final_training_time"]
        expected_seconds += drawn["final_training_time"]
    assert values[0, 0] == oracle.values[1, 0] and values[1, 1] == oracle.values[0, 1]
    assert list(oracle.count) == [4, 2]
    assert nasbench.get_budget_counters() == (pytest.approx(expected_seconds), 6 * 108)
    with pytest.raises(RuntimeError, match="budget"):
        oracle.query([0], [[3]])
    assert list(oracle.count) == [4, 2], "a refused query is not logged"


def test_a_benchmark_with_only_the_official_api_works(complete_pool):
    """A user's own benchmark object with only the official methods (no query_batch, no arrays) searches alike."""
    pool, _, nasbench = complete_pool

    class OfficialOnly:
        def __init__(self, inner):
            self.inner = inner

        def query(self, spec, epochs=108, stop_halfway=False):
            return self.inner.query(spec, epochs, stop_halfway)

        def hash_iterator(self):
            return self.inner.hash_iterator()

        def get_metrics_from_hash(self, module_hash):
            return self.inner.get_metrics_from_hash(module_hash)

    official = OfficialOnly(nasbench)
    official_pool = search_methods.pool_of(official)
    for name in ("hashes", "adjacency", "operations", "num_vertices", "run_accuracy", "num_runs", "mean_test"):
        np.testing.assert_array_equal(getattr(official_pool, name), getattr(pool, name))
    random.seed(3)
    by_loop = search_methods.search_random(official, runs=3, budget=20, seed=1)
    random.seed(3)
    by_batch = search_methods.search_random(nasbench, runs=3, budget=20, seed=1)
    for name in ("rows", "values", "seconds"):
        np.testing.assert_array_equal(getattr(by_loop, name), getattr(by_batch, name))


def test_library_search_functions_take_explicit_arguments(nasbench_20k, space):
    nasbench_20k.reset_budget_counters()
    result = search_methods.search_evolution(nasbench_20k, runs=2, budget=60, seed=0, population=10, tournament=3)
    assert result.rows.shape == (2, 60) and (result.count == 60).all()
    assert nasbench_20k.get_budget_counters()[1] == 2 * 60 * 108
    quick = recipes.RECIPES["faithful"].replace(epochs=2, hidden=8)
    sweep = search_methods.search_neural_predictor_sizes(nasbench_20k, sizes=[20, 30], runs=2, budget=40,
                                                         recipe=quick)
    assert list(sweep) == [20, 30] and all((oracle.count == 40).all() for oracle in sweep.values())
    np.testing.assert_array_equal(sweep[20].rows[:, :20], sweep[30].rows[:, :20])  # the same first queries
    with pytest.raises(ValueError, match="every N"):
        search_methods.search_neural_predictor(nasbench_20k, runs=1, budget=40, num_train=5, recipe=quick)
    with pytest.raises(ValueError, match="tournament"):
        search_methods.search_evolution(nasbench_20k, runs=1, budget=20, population=5, tournament=6)
    with pytest.raises(ValueError, match="exceeds the pool"):
        search_methods.search_random(nasbench_20k, runs=1, budget=30000)


# ---------------------------------------------------------------------------
# budgets and seeds


@pytest.mark.parametrize("method", ["random", "evolution"])
def test_method_spends_exactly_its_budget(method, pool_20k, nasbench_20k, space, run_method):
    oracle, _ = run_method(method, nasbench_20k, runs=3, budget=90, space=space)
    assert (oracle.count == 90).all()
    assert (oracle.rows >= 0).all() and np.isfinite(oracle.values).all()
    assert np.array_equal(oracle.values, pool_20k.run_accuracy[oracle.rows, 0])
    if method == "random":
        assert all(len(set(r)) == 90 for r in oracle.rows.tolist()), "random search draws without replacement"


def test_neural_predictor_spends_exactly_its_budget_and_queries_its_ranking(pool_20k, nasbench_20k, run_method):
    fit_options = dict(hidden=8, epochs=2, lr=1e-3, wd=1e-3, batch_size=10, dropout=0.1, seed=0, device="cpu")
    oracle, _ = run_method("predictor", nasbench_20k, runs=2, budget=45, num_train=20, fit_options=fit_options)
    assert (oracle.count == 45).all()
    assert all(len(set(r)) == 45 for r in oracle.rows.tolist()), "the predictor never re-queries"
    random_oracle, _ = run_method("random", nasbench_20k, runs=2, budget=45)
    assert np.array_equal(oracle.rows[:, :20], random_oracle.rows[:, :20]), "same first draw as random search"


def test_an_ensemble_ranks_by_the_mean_of_its_models(pool_20k, nasbench_20k, monkeypatch, run_method):
    """With --ensemble 3 each run trains 3 models on its own queries and queries by their mean prediction."""
    fit_options = dict(hidden=8, epochs=2, lr=1e-3, wd=1e-3, batch_size=10, dropout=0.1, seed=0, device="cpu")
    fits, scores = [], []
    original_fit, original_predict = engine.fit, search_methods.predict_pool
    monkeypatch.setattr(engine, "fit", lambda graphs, sets, **kw: fits.append(sets) or original_fit(
        graphs, sets, **kw))
    monkeypatch.setattr(search_methods, "predict_pool", lambda model, graphs, backend="auto": scores.append(original_predict(
        model, graphs)) or scores[-1])
    oracle, _ = run_method("predictor", nasbench_20k, runs=2, budget=45, num_train=20, fit_options=fit_options,
                           ensemble=3)
    (sets,) = fits
    assert len(sets) == 6 and all(torch.equal(sets[0][0], s[0]) for s in sets[:3])
    mean = scores[0].reshape(2, 3, -1).mean(1)
    expected = search_methods.rank_unqueried(mean, oracle.rows[:, :20], 25)
    assert np.array_equal(oracle.rows[:, 20:], expected)


def test_blown_queries_train_on_the_normalisation_constant():
    values = np.array([0.93, 0.1, 0.2, 0.85])
    np.testing.assert_array_equal(search_methods.query_labels(values), [0.93, nasbench_data.LABEL_MEAN, 0.2, 0.85])


@pytest.mark.parametrize("method", ["random", "evolution"])
def test_runs_are_fixed_by_seed_and_run_index(method, pool_20k, nasbench_20k, space, run_method):
    first, _ = run_method(method, nasbench_20k, runs=3, budget=70, space=space)
    again, _ = run_method(method, nasbench_20k, runs=2, budget=70, space=space)
    other, _ = run_method(method, nasbench_20k, runs=2, budget=70, seed=1, space=space)
    assert np.array_equal(first.rows[:2], again.rows) and np.array_equal(first.values[:2], again.values)
    assert not np.array_equal(first.rows[:2], other.rows)


# ---------------------------------------------------------------------------
# regularized evolution


def test_graphs_to_specs_keeps_each_architecture(pool_20k, space):
    rows = np.arange(0, len(pool_20k), 7)
    filler = np.random.default_rng(0).integers(0, 3, size=(len(rows), 7))
    adjacency, operations = search_space.graphs_to_specs(pool_20k.adjacency[rows], pool_20k.operations[rows],
                                                   pool_20k.num_vertices[rows], filler)
    assert (operations[:, 0] == -1).all() and (operations[:, 6] == -2).all()
    assert not np.tril(adjacency).any(axis=(1, 2)).any()
    assert np.array_equal(space.hashes[space.lookup(adjacency, operations)], pool_20k.hashes[rows])
    for i in range(0, len(rows), 500):  # the official hash, computed independently of the space table
        assert search_space.spec_hash(adjacency[i], search_space.codes_to_ops(operations[i])) == \
            pool_20k.hashes[rows[i]].decode()


def test_mutate_follows_the_edge_and_op_probabilities():
    rng = np.random.default_rng(0)
    adjacency = np.triu(rng.random((4000, 7, 7)) < 0.3, 1).astype(np.int8)
    operations = np.concatenate([[[-1]] * 4000, rng.integers(0, 3, (4000, 5)), [[-2]] * 4000], axis=1)
    same_adjacency, same_operations = search_space.mutate(adjacency, operations, np.full((4000, 31), 0.999))
    assert np.array_equal(same_adjacency, adjacency) and np.array_equal(same_operations, operations)
    all_adjacency, all_operations = search_space.mutate(adjacency, operations, np.zeros((4000, 31)))
    upper = np.triu(np.ones((7, 7), dtype=bool), 1)
    assert ((all_adjacency != adjacency) == upper).all(), "every upper-triangle edge flips, nothing else"
    assert (all_operations[:, 1:6] != operations[:, 1:6]).all() and set(np.unique(all_operations[:, 1:6])) <= {0, 1, 2}
    assert np.array_equal(all_operations[:, [0, 6]], operations[:, [0, 6]])
    child_adjacency, child_operations = search_space.mutate(adjacency, operations, rng.random((4000, 31)))
    flips = (child_adjacency != adjacency).sum(axis=(1, 2))
    changes = (child_operations != operations).sum(axis=1)
    assert abs(flips.mean() - 21 / 7) < 0.1 and abs(changes.mean() - 5 / 5) < 0.05
    new_ops = child_operations[:, 1:6][child_operations[:, 1:6] != operations[:, 1:6]]
    assert np.bincount(new_ops, minlength=3).min() > 0.3 * len(new_ops), "the new op is either other op"


def test_accepted_candidates_by_rule():
    index = np.array([[-1, 5, 9, 7], [-1, -1, -1, -1], [4, 5, 6, 7], [8, 9, 5, 6]])
    rows = np.array([[-1, 0, -1, 3], [-1, -1, -1, -1], [-1, 0, 1, 2], [-1, -1, 0, 4]])
    parent = np.array([5, 5, 5, 5])
    committed = np.array([False, False, False, True])
    position, now = search_methods.accepted_candidates(index, rows, parent, committed, rule="space")
    # run 0: the first valid candidate is the parent -> kept; run 1: nothing valid yet;
    # run 2: the first valid one (4) is new but not in the pool -> the next new pool architecture (6);
    # run 3: already committed to a new architecture -> skips the parent (5), takes 6
    assert list(position) == [1, -1, 2, 3]
    assert list(now) == [True, False, True, True]
    position, _ = search_methods.accepted_candidates(index, rows, parent, committed, rule="pool")
    assert list(position) == [1, -1, 1, 2]
    full_space = np.where(index >= 0, index, -1)  # every valid candidate in the pool: the rules agree
    fresh = np.zeros(4, dtype=bool)
    for rule in ("space", "pool"):
        position, _ = search_methods.accepted_candidates(index, full_space, parent, fresh, rule)
        assert list(position) == [1, -1, 0, 0]


def test_mutate_into_pool_gives_valid_pool_children_of_the_parent(pool_20k, space):
    rows = np.arange(40)
    pool_index = search_methods.pool_to_space_index(pool_20k, space)
    space_to_pool = np.full(len(space), -1)
    space_to_pool[pool_index] = np.arange(len(pool_20k))
    filler = np.zeros((40, 7), dtype=np.int64)
    adjacency, operations = search_space.graphs_to_specs(pool_20k.adjacency[rows], pool_20k.operations[rows],
                                                   pool_20k.num_vertices[rows], filler)
    rngs = [np.random.default_rng(i) for i in range(40)]
    child_adjacency, child_operations, child_rows = search_methods.mutate_into_pool(
        adjacency, operations, pool_index[rows], rngs, space, space_to_pool)
    assert (child_rows >= 0).all()
    for i in range(40):
        assert search_space.is_valid(child_adjacency[i], search_space.codes_to_ops(child_operations[i]))
        assert search_space.spec_hash(child_adjacency[i], search_space.codes_to_ops(child_operations[i])) == \
            pool_20k.hashes[child_rows[i]].decode()
    differs = (child_adjacency != adjacency).any(axis=(1, 2)) | (child_operations != operations).any(axis=1)
    assert differs.mean() > 0.9 and (child_rows != rows).mean() > 0.9


def test_tournament_picks_the_best_of_its_sample_and_the_oldest_dies():
    values = np.array([[0.90, 0.95, 0.91, 0.97], [0.80, 0.80, 0.70, 0.99]])
    samples = np.array([[0, 2, 1], [2, 1, 0]])
    assert list(search_methods.tournament_winners(values, samples)) == [1, 1], "best of the sample, first on ties"
    birth = np.array([[7, 3, 9, 5], [4, 8, 6, 5]])
    assert list(search_methods.oldest_slots(birth)) == [1, 0]


def test_evolution_population_is_the_latest_children(pool_20k, nasbench_20k, space, run_method):
    oracle, population = run_method("evolution", nasbench_20k, runs=2, budget=80, space=space, population=20,
                                    tournament=5)
    for r in range(2):
        order = np.argsort(population["birth"][r])
        assert list(population["birth"][r][order]) == list(range(60, 80)), "the oldest members died first"
        assert np.array_equal(population["members"][r][order], oracle.rows[r, 60:])
        assert np.array_equal(population["values"][r][order], oracle.values[r, 60:])


def test_tournament_of_the_whole_population_always_breeds_from_the_best(pool_20k, nasbench_20k, space, monkeypatch, run_method):
    parents = []
    original = search_methods.mutate_into_pool

    def spy(adjacency, operations, parent_index, *args):
        parents.append(parent_index.copy())
        return original(adjacency, operations, parent_index, *args)

    monkeypatch.setattr(search_methods, "mutate_into_pool", spy)
    oracle, _ = run_method("evolution", nasbench_20k, runs=1, budget=25, space=space, population=10, tournament=10)
    pool_index = search_methods.pool_to_space_index(pool_20k, space)
    for step, parent in enumerate(parents):
        alive = oracle.rows[0, step:step + 10]  # the population before child `step + 10`
        values = oracle.values[0, step:step + 10]
        assert parent[0] in pool_index[alive[values == values.max()]]


# ---------------------------------------------------------------------------
# traces and tables


def tiny_pool(mean_validation, mean_test=None):
    count = len(mean_validation)
    mean_validation = np.asarray(mean_validation, dtype=np.float64)
    return search_methods.Pool(rows=np.arange(count), hashes=None, adjacency=None, operations=None, num_vertices=None,
                       run_accuracy=mean_validation[:, None], run_seconds=np.full((count, 1), 3600.0),
                       num_runs=np.ones(count, dtype=np.int64),
                       mean_validation=mean_validation,
                       mean_test=np.full(count, np.nan) if mean_test is None else np.asarray(mean_test))


def test_best_so_far_tracks_the_first_best_query_and_its_regret():
    pool = tiny_pool([0.90, 0.93, 0.95, 0.94], mean_test=[0.89, 0.92, 0.94, 0.93])
    rows = np.array([[0, 3, 1, 2, 3]])
    values = np.array([[0.90, 0.94, 0.94, 0.93, 0.96]])  # noisy single-run queries
    trace = search_report.best_so_far(pool, rows, values, np.array([[3600.0, 1800.0, 0.0, 7200.0, 3600.0]]))
    assert np.allclose(trace["best_validation"], [[0.90, 0.94, 0.94, 0.94, 0.96]])
    assert np.allclose(trace["hours"], [[1.0, 1.5, 1.5, 3.5, 4.5]])
    assert np.allclose(trace["regret"], [[0.05, 0.01, 0.01, 0.01, 0.01]]), "ties keep the first; regret uses means"
    assert np.allclose(trace["chosen_test"], [[0.89, 0.93, 0.93, 0.93, 0.93]])


def test_a_query_costs_the_training_time_of_the_run_it_returns(complete_pool, run_method):
    """On the complete records (3 runs each, their own training times): every query's value and cost are one and
    the same run's final validation accuracy and training time, and a run's hours are the sum of its queries'."""
    pool, by_hash, nasbench = complete_pool
    oracle, _ = run_method("random", nasbench, runs=3, budget=40)
    for r in range(3):
        for row, value, seconds in zip(oracle.rows[r], oracle.values[r], oracle.seconds[r]):
            runs = by_hash[pool.hashes[row].decode()]["computed_stats"]["108"]
            assert (value, seconds) in [(np.float32(run["final_validation_accuracy"]),
                                         np.float32(run["final_training_time"])) for run in runs]
    trace = search_report.best_so_far(pool, oracle.rows, oracle.values, oracle.seconds)
    assert np.allclose(trace["hours"][:, -1], oracle.seconds.sum(axis=1) / 3600)
    assert len(np.unique(oracle.seconds[0])) > 10, "times differ from query to query"


def test_hours_to_reach_and_the_time_grid():
    trace = {"regret": np.array([[0.3, 0.2, 0.0], [0.3, 0.3, 0.3]]),
             "hours": np.array([[1.0, 3.0, 4.0], [2.0, 5.0, 9.0]])}
    assert list(search_report.hours_to_reach(trace, 0.2)) == [3.0, np.inf]
    assert search_report.hours_cell(trace, 0.2) == ">= 6 / never (1/2)"  # (3 + the second's whole 9) / 2
    values = np.array([[10.0, 20.0, 30.0]])
    on_grid = search_report.on_time_grid(values, np.array([[1.0, 3.0, 4.0]]), np.array([0.5, 1.0, 3.5, 10.0]))
    assert np.isnan(on_grid[0, 0]) and list(on_grid[0, 1:]) == [10.0, 20.0, 30.0]


def test_queries_to_reach_and_table_cells():
    regret = np.array([[0.3, 0.2, 0.0, 0.0], [0.3, 0.3, 0.3, 0.1], [0.5, 0.05, 0.05, 0.0]])
    assert list(search_report.queries_to_reach(regret, 0.1)) == [3, 4, 2]
    assert list(search_report.queries_to_reach(regret, 0.0)) == [3, np.inf, 4]
    assert search_report.reach_cell(regret, 0.1) == "3 / 3 (3/3)"
    assert search_report.reach_cell(regret, 0.0) == ">= 4 / 4 (2/3)"
    assert search_report.reach_cell(regret, -1.0) == ">= 4 / > 4 (0/3)"


def test_rank_unqueried_skips_queried_rows_and_puts_passed_rows_first():
    scores = np.array([[0.5, 0.9, 0.1, 0.7, 0.9], [3.0, 2.0, 1.0, 0.0, -1.0]])
    queried = np.array([[1], [0]])
    assert search_methods.rank_unqueried(scores, queried, 3).tolist() == [[4, 3, 0], [1, 2, 3]]
    passed = np.array([[True, True, True, False, False], [False, False, True, True, False]])
    assert search_methods.rank_unqueried(scores, queried, 4, passed).tolist() == [[0, 2, 4, 3], [2, 3, 1, 4]]


# ---------------------------------------------------------------------------
# command line


def test_cli_writes_curves_table_and_traces(hdf5_20k, tmp_path):
    out = tmp_path / "search"
    search.main(["--data", hdf5_20k, "--methods", "random", "evolution", "--runs", "2", "--budget", "60",
                 "--output_dir", str(out), "--quiet"])
    assert sorted(os.listdir(out)) == ["curves.png", "curves_time.png", "summary.json", "table.md", "traces.npz"]
    with np.load(out / "traces.npz") as traces:
        assert traces["evolution/rows"].shape == (2, 60) and traces["random/regret"].shape == (2, 60)
        assert np.allclose(traces["random/hours"][:, -1], traces["random/seconds"].sum(axis=1) / 3600)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pool_size"] == 20001 and set(summary["methods"]) == {"random", "evolution"}
    assert "| Regularized evolution |" in (out / "table.md").read_text()
    assert "## Training time needed to reach a regret" in (out / "table.md").read_text()
    assert summary["methods"]["random"]["training_hours_per_run_mean"] > 0


def test_cli_refuses_bad_input_without_writing(tmp_path, hdf5_20k, capsys):
    out = tmp_path / "search"
    assert search.main(["--data", str(tmp_path / "absent.hdf5"), "--output_dir", str(out), "--quiet"]) == 2
    assert "nasbench_tfrecord_converter" in capsys.readouterr().err
    assert search.main(["--data", hdf5_20k, "--methods", "random", "--budget", "30000", "--output_dir", str(out)]) == 2
    assert "exceeds the pool" in capsys.readouterr().err
    with pytest.raises(SystemExit) as bad_n:
        search.main(["--data", hdf5_20k, "--num_train", "500", "--budget", "400", "--output_dir", str(out)])
    assert bad_n.value.code == 2
    assert not out.exists()


def test_oracle_floor_is_the_regret_of_picking_by_one_run():
    """Two architectures: A runs 0.95 / 0.90 (mean 0.925, the best), B runs 0.92 / 0.92. Picking by a drawn run
    chooses A when it draws 0.95 (regret 0) and B otherwise (regret 0.005): 0.0025 expected."""
    pool = search_methods.Pool(rows=np.arange(2), hashes=None, adjacency=None, operations=None, num_vertices=None,
                               run_accuracy=np.array([[0.95, 0.90], [0.92, 0.92]]), run_seconds=np.ones((2, 2)),
                               num_runs=np.array([2, 2]), mean_validation=np.array([0.925, 0.92]),
                               mean_test=np.full(2, np.nan))
    floor = search_methods.oracle_floor(pool, seed=0, draws=4000)
    assert set(np.round(floor, 6)) == {0.0, 0.005}
    assert abs(floor.mean() - 0.0025) < 3e-4
    single = tiny_pool([0.90, 0.93, 0.95])
    assert not search_methods.oracle_floor(single, seed=0, draws=5).any(), "one run each: the floor is 0"


def test_oracle_floor_on_the_complete_records_is_positive(complete_pool):
    pool, *_ = complete_pool
    floor = search_methods.oracle_floor(pool, seed=0)
    assert floor.shape == (100,) and (floor >= 0).all() and floor.mean() > 0


def test_cli_reports_test_accuracy_where_the_data_has_it(tmp_path, complete_records_path, hdf5_20k):
    """The 56 complete records carry test accuracy: the table gives the chosen architecture's mean test accuracy;
    labels_20k has none, and the table says so."""
    path = str(tmp_path / "complete.hdf5")
    records.convert(complete_records_path, path, quiet=True)
    out = tmp_path / "complete"
    assert search.main(["--data", path, "--methods", "random", "--runs", "3", "--budget", "40",
                        "--output_dir", str(out), "--quiet"]) == 0
    table = (out / "table.md").read_text()
    assert "mean test accuracy of the chosen architecture" in table and "no test accuracy" not in table
    summary = json.loads((out / "summary.json").read_text())
    assert 0.9 < summary["pool_best_mean_test"] < 1
    assert summary["oracle_floor_regret"]["mean"] > 0
    out_20k = tmp_path / "sample"
    assert search.main(["--data", hdf5_20k, "--methods", "random", "--runs", "2", "--budget", "40",
                        "--output_dir", str(out_20k), "--quiet"]) == 0
    assert "The data has no test accuracy" in (out_20k / "table.md").read_text()


def test_the_n_sweep_spends_every_budget_exactly_in_one_fit(pool_20k, nasbench_20k, monkeypatch):
    """--num_train 20 30 40: one stacked fit of 2 x 3 predictors of 20, 30 and 40 architectures; each size's
    runs query their budget exactly, and every size's first queries are the same random order's prefix."""
    fits = []
    original_fit = engine.fit
    monkeypatch.setattr(engine, "fit", lambda graphs, sets, **kw: fits.append([len(r) for r, _ in sets]) or
                        original_fit(graphs, sets, **kw))
    groups = [(search_methods.Oracle(pool_20k, nasbench_20k, 2, 70), search_methods.run_generators(0, 2), size)
              for size in (20, 30, 40)]
    fit_options = dict(hidden=8, epochs=2, lr=1e-3, wd=1e-3, batch_size=10, dropout=0.1, seed=0, device="cpu")
    search_methods.neural_predictor_sizes(pool_20k, groups, fit_options)
    assert fits == [[20, 20, 30, 30, 40, 40]]
    for oracle, _, size in groups:
        assert (oracle.count == 70).all()
        assert all(len(set(r)) == 70 for r in oracle.rows.tolist())
    first = groups[-1][0].rows[:, :40]
    assert np.array_equal(groups[0][0].rows[:, :20], first[:, :20])
    assert np.array_equal(groups[1][0].rows[:, :30], first[:, :30])


def test_best_size_table_picks_the_lowest_mean_regret():
    traces = {"predictor@50": {"regret": np.tile([0.01] * 100 + [0.002] * 100, (2, 1))},
              "predictor@100": {"regret": np.tile([0.02] * 180 + [0.001] * 20, (2, 1))}}
    table = search_report.best_size_table(traces, budgets=(50, 100, 172, 200))
    assert "| 100 | 50 | 1.000 | - |" in table  # N = 100 is not below a budget of 100
    assert "| 172 | 50 | 0.200 | 2.000 |" in table
    assert "| 200 | 100 | 0.200 | 0.100 |" in table
    assert search_report.best_size_table({"predictor": traces["predictor@50"]}) == ""


def test_cli_n_sweep_and_its_flags(hdf5_20k, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert search.main(["--data", hdf5_20k, "--methods", "predictor", "--runs", "2", "--budget", "60",
                        "--num_train", "20", "40", "--epochs", "2", "--output_dir", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["methods"]) == {"predictor@20", "predictor@40"}
    assert "## The N-vs-K trade-off: Neural Predictor" in (out / "table.md").read_text()
    with pytest.raises(SystemExit):
        search.main(["--data", hdf5_20k, "--num_train", "20", "20", "--output_dir", str(tmp_path / "x")])
    assert "--num_train: each value once" in capsys.readouterr().err


# ---------------------------------------------------------------------------
# every predictor and recipe as methods of one comparison


def test_method_units_resolve_every_variant_by_its_recipe():
    args = search.parse_args(["--predictor", "gcn", "mlp", "--recipe", "faithful", "improved", "--cascade", "both",
                              "--epochs", "7"])
    units = search.method_units(args)
    keys = [key for key, _, _ in units]
    assert keys[:3] == ["predictor:gcn,faithful", "predictor:gcn,faithful,cascade", "predictor:gcn,improved"]
    assert len(keys) == 2 * 2 * 2 + 2 and keys[-2:] == ["random", "evolution"]
    variants = {key: unit_args for key, method, unit_args in units if method == "predictor"}
    assert len({id(v) for v in variants.values()}) == 8  # no two entries share (and overwrite) one namespace
    for key, variant in variants.items():
        predictor, recipe, *cascade = key.partition(":")[2].split(",")
        expected = cli.RECIPES[recipe]
        assert (variant.predictor, variant.recipe, variant.cascade) == (predictor, recipe, bool(cascade))
        assert (variant.lr, variant.loss, variant.propagation) == (expected.lr, expected.loss,
                                                                  expected.propagation)
        assert variant.epochs == 7  # a flag given on the command line holds for every variant
    assert isinstance(args.predictor, list) and args.epochs == 7  # the command line itself is left unresolved
    lone = search.method_units(search.parse_args(["--methods", "predictor"]))
    assert [key for key, _, _ in lone] == ["predictor"] and lone[0][2].lr == cli.RECIPES["faithful"].lr
    cascade = search.method_units(search.parse_args(["--methods", "predictor", "--cascade"]))
    assert [key for key, _, _ in cascade] == ["predictor:gcn,faithful,cascade"] and cascade[0][2].cascade is True


def test_method_names_spell_out_the_variant():
    assert search_methods.method_name("predictor") == "Neural Predictor"
    assert search_methods.method_name("predictor@86") == "Neural Predictor, N = 86"
    assert (search_methods.method_name("predictor:mlp,improved,cascade@43")
            == "Neural Predictor (MLP, improved, cascade), N = 43")
    assert search_methods.method_name("evolution") == "Regularized evolution"


def test_soonest_ranking_orders_by_mean_queries_to_the_best():
    never = np.full((2, 10), 0.003)
    early = np.tile(np.r_[[0.01] * 3, [0.0] * 7], (2, 1))  # reaches 0 at query 4
    late = np.tile(np.r_[[0.002] * 8, [0.0] * 2], (2, 1))  # reaches 0 at query 9, but 0.1 pp sooner than never
    half = np.stack([early[0], never[0]])  # (4 + 10) / 2 = 7
    line = search_report.soonest_ranking({"random": {"regret": never}, "evolution": {"regret": late},
                                          "predictor": {"regret": early}, "predictor@5": {"regret": half}})
    assert line.index("1. Neural Predictor (4 / 4 (2/2))") < line.index("2. Neural Predictor, N = 5 (>= 7")
    assert line.index("3. Regularized evolution (9 / 9") < line.index("4. Random search (>= 10 / > 10 (0/2))")


def test_fitting_note_divides_by_the_runs_and_says_when_one_fit_serves_every_n():
    summary = {"args": {"runs": 4, "num_train": [172]}, "seconds": {"predictor": 10.0, "random": 1.0}}
    assert search_report.fitting_note(summary) == "Neural Predictor 2.5 s per run"
    summary = {"args": {"runs": 4, "num_train": [43, 86]}, "seconds": {"predictor": 10.0}}
    assert search_report.fitting_note(summary) == ("Neural Predictor 2.5 s per run for all 2 values of N together "
                                                   "(one batched fit)")


@pytest.mark.slow
def test_cli_compares_predictors_recipes_and_cascade_on_the_same_seeds(hdf5_20k, tmp_path):
    out = tmp_path / "variants"
    assert search.main(["--data", hdf5_20k, "--methods", "predictor", "random", "--predictor", "gcn", "cnn",
                        "--cascade", "both", "--runs", "2", "--budget", "50", "--num_train", "20", "--epochs", "2",
                        "--output_dir", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    keys = ["predictor:gcn,faithful", "predictor:gcn,faithful,cascade", "predictor:cnn,faithful",
            "predictor:cnn,faithful,cascade", "random"]
    assert list(summary["methods"]) == keys
    assert summary["recipes"]["predictor:cnn,faithful,cascade"]["predictor"] == "cnn"
    assert summary["recipes"]["predictor:cnn,faithful,cascade"]["cascade"] is True
    with np.load(out / "traces.npz") as traces:
        for key in keys:  # every entry spends its budget on distinct pool rows, the first N shared by all
            assert traces[f"{key}/rows"].shape == (2, 50) and (traces[f"{key}/rows"] >= 0).all()
            assert all(len(set(r)) == 50 for r in traces[f"{key}/rows"].tolist())
            assert np.array_equal(traces[f"{key}/rows"][:, :20], traces["random/rows"][:, :20])
        assert not np.array_equal(traces["predictor:gcn,faithful/rows"], traces["predictor:cnn,faithful/rows"])
    table = (out / "table.md").read_text()
    assert "| Neural Predictor (CNN, faithful, cascade) |" in table and "Soonest to the pool's best" in table
    with pytest.raises(SystemExit):
        search.main(["--data", hdf5_20k, "--predictor", "mlp", "--backend", "fast", "--output_dir", str(out)])


# ---------------------------------------------------------------------------
# tools/search_figures.py: every search figure from one command


@pytest.mark.slow
def test_search_figures_runs_every_stage_into_one_folder(hdf5_20k, tmp_path, capsys):
    from tools import search_figures
    out = tmp_path / "figures"
    assert search_figures.main(["--data", hdf5_20k, "--runs", "2", "--comparison_runs", "1", "--sweep_runs", "2",
                                "--budget", "40", "--num_train", "20", "--sweep_sizes", "20", "30", "--epochs", "1",
                                "--output_dir", str(out), "--quiet"]) == 0
    for stage in search_figures.STAGES:
        assert {"curves.png", "curves_time.png", "table.md", "summary.json"} <= set(os.listdir(out / stage))
    index = (out / "index.md").read_text()
    assert index.count("# Stage ") == 3 and "`python search.py --runs 2 --num_train 20 --data" in index
    assert "| Neural Predictor (CNN, improved, cascade) |" in index and "N-vs-K trade-off" in index
    sweep = json.loads((out / "sweep" / "summary.json").read_text())
    assert list(sweep["methods"]) == ["predictor@20", "predictor@30"] and sweep["args"]["runs"] == 2
    assert "summary" in capsys.readouterr().err


@pytest.mark.slow
def test_search_figures_refuses_before_work_and_stops_at_a_failing_stage(hdf5_20k, tmp_path, capsys):
    from tools import search_figures
    out = tmp_path / "figures"
    for argv, message in ((["--budget", "100"], "must be below --budget"),
                          (["--sweep_sizes", "43", "43"], "each value once"),
                          (["--data", str(tmp_path / "absent.hdf5")], "no such file")):
        with pytest.raises(SystemExit) as refused:
            search_figures.main(["--data", hdf5_20k, "--output_dir", str(out), *argv])
        assert refused.value.code == 2 and message in capsys.readouterr().err
    assert not out.exists()
    broken = tmp_path / "broken.hdf5"
    broken.write_bytes(b"not an HDF5 file")
    assert search_figures.main(["--data", str(broken), "--stages", "main", "--output_dir", str(out), "--quiet"]) == 2
    assert "stage main failed (exit 2)" in capsys.readouterr().err
    assert not (out / "index.md").exists()


def test_search_figures_passes_denormals_to_every_stage_only_when_asked(hdf5_20k, tmp_path):
    from tools import search_figures
    for flags, expected in (([], None), (["--denormals", "flush"], "flush")):
        args = search_figures.parse_args(["--data", hdf5_20k, "--output_dir", str(tmp_path / "o"), *flags])
        for stage in search_figures.STAGES:
            parts = search_figures.stage_arguments(stage, args)
            given = parts[parts.index("--denormals") + 1] if "--denormals" in parts else None
            assert given == expected, (stage, parts)


def _library_equals_cli(tmp_path, nasbench, calls, flags):
    out = tmp_path / "search"
    assert search.main(["--data", nasbench.dataset_file, "--methods", *calls, "--seed", "4", *flags,
                        "--output_dir", str(out), "--quiet"]) == 0
    with np.load(out / "traces.npz") as traces:
        for method, call in calls.items():
            random.seed(4)
            oracle = call()
            for name in ("rows", "values", "seconds"):
                np.testing.assert_array_equal(traces[f"{method}/{name}"], getattr(oracle, name), err_msg=method)


@pytest.mark.slow
def test_the_library_gives_what_search_py_gives(tmp_path, complete_pool, nasbench_20k):
    """search.py is a thin layer: the library's functions, called from Python with the same seeds (and Python's
    generator seeded as search.py seeds it before each method), query the same architectures and get the same
    runs: on the complete records (three runs each) and, for evolution, on the sample."""
    _, _, nasbench = complete_pool
    quick = recipes.RECIPES["faithful"].replace(epochs=2, hidden=8)
    _library_equals_cli(tmp_path / "complete", nasbench, {
        "random": lambda: search_methods.search_random(nasbench, runs=3, budget=30, seed=4),
        "predictor": lambda: search_methods.search_neural_predictor(nasbench, runs=3, budget=30, seed=4,
                                                                    num_train=12, recipe=quick)},
        ["--runs", "3", "--budget", "30", "--num_train", "12", "--epochs", "2", "--gcn_hidden", "8"])
    _library_equals_cli(tmp_path / "sample", nasbench_20k, {
        "evolution": lambda: search_methods.search_evolution(nasbench_20k, runs=2, budget=40, seed=4,
                                                             population=10, tournament=3)},
        ["--runs", "2", "--budget", "40", "--population", "10", "--tournament", "3"])
