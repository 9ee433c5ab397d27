"""nb101.api against the official API's behaviour, on the 56 complete official records (../shared/nb101).

The expected values come straight from complete_records.jsonl, which holds each hash's
records exactly as the official get_metrics_from_hash returns them; the records are read
both as an official-format TFRecord (written by tests/official_format.py, independently of
the converter) and as the project's HDF5.
"""
import itertools
import json
import random

import numpy as np
import pytest

import official_format
from nb101 import api, nasbench_data, records, search_space

RUN_KEYS = {"halfway_training_time", "halfway_train_accuracy", "halfway_validation_accuracy",
            "halfway_test_accuracy", "final_training_time", "final_train_accuracy", "final_validation_accuracy",
            "final_test_accuracy"}


@pytest.fixture(scope="module")
def complete_rows(complete_records_path):
    with open(complete_records_path) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def complete_tfrecord(tmp_path_factory, complete_rows):
    path = tmp_path_factory.mktemp("tfrecord") / "complete.tfrecord"
    official_format.write_tfrecord(path, [p for row in complete_rows for *_, p in official_format.record_payloads(row)])
    return str(path)


@pytest.fixture(scope="module")
def complete_hdf5(tmp_path_factory, complete_records_path):
    path = str(tmp_path_factory.mktemp("hdf5") / "complete.hdf5")
    records.convert(complete_records_path, path, quiet=True)
    return path


@pytest.fixture(scope="module", params=["tfrecord", "hdf5"])
def bench(request, complete_tfrecord, complete_hdf5, tmp_path_factory):
    """NASBench over the complete records, from the TFRecord (converted into a cache folder) or the HDF5."""
    path = complete_tfrecord if request.param == "tfrecord" else complete_hdf5
    return api.NASBench(path, seed=0, cache_dir=str(tmp_path_factory.mktemp("cache")), verbose=False)


def expected(row):
    """(fixed_stat, computed_stat) as the official API builds them from this hash's records."""
    fixed = {"module_adjacency": np.array(row["module_adjacency"], dtype=np.int8),
             "module_operations": row["module_operations"], "trainable_parameters": row["trainable_parameters"]}
    return fixed, {int(epochs): runs for epochs, runs in row["computed_stats"].items()}


def spec_of(row):
    return api.ModelSpec(row["module_adjacency"], row["module_operations"])


def test_every_hash_run_key_and_type(bench, complete_rows):
    assert set(bench.hash_iterator()) == {row["hash"] for row in complete_rows}
    assert bench.valid_epochs == {4, 12, 36, 108}
    for row in complete_rows:
        want_fixed, want_computed = expected(row)
        for fixed, computed in (bench.get_metrics_from_hash(row["hash"]), bench.get_metrics_from_spec(spec_of(row))):
            assert fixed.keys() == want_fixed.keys()
            assert fixed["module_adjacency"].dtype == np.int8
            np.testing.assert_array_equal(fixed["module_adjacency"], want_fixed["module_adjacency"])
            assert fixed["module_operations"] == want_fixed["module_operations"]
            assert type(fixed["trainable_parameters"]) is int
            assert fixed["trainable_parameters"] == want_fixed["trainable_parameters"]
            assert computed == want_computed  # every budget, run, key and value, exactly
            for runs in computed.values():
                for run in runs:
                    assert set(run) == RUN_KEYS and all(type(v) is float for v in run.values())
    assert bench.get_budget_counters() == (0.0, 0)


def test_results_are_copies(bench, complete_rows):
    row = complete_rows[0]
    fixed, computed = bench.get_metrics_from_hash(row["hash"])
    fixed["module_adjacency"][0, 1] = 7
    fixed["module_operations"].append("x")
    computed[108][0]["final_test_accuracy"] = -1.0
    data = bench.query(spec_of(row))
    data["module_adjacency"][:] = 0
    again_fixed, again_computed = bench.get_metrics_from_hash(row["hash"])
    np.testing.assert_array_equal(again_fixed["module_adjacency"], row["module_adjacency"])
    assert again_fixed["module_operations"] == row["module_operations"]
    assert again_computed == expected(row)[1]
    with pytest.raises(ValueError):
        bench.arrays()["metrics"][0, 0, 0, 0, 0] = 1.0  # the table is read-only
    bench.reset_budget_counters()


def test_statistics_are_read_only_mappings(bench, complete_rows):
    row = complete_rows[5]
    assert len(bench.fixed_statistics) == len(bench.computed_statistics) == len(complete_rows)
    assert bench.fixed_statistics[row["hash"]]["module_operations"] == row["module_operations"]
    assert bench.computed_statistics[row["hash"]] == expected(row)[1]
    assert list(bench.fixed_statistics) == list(bench.hash_iterator())
    with pytest.raises(TypeError):
        bench.fixed_statistics[row["hash"]] = {}
    with pytest.raises(KeyError):
        bench.computed_statistics["0" * 32]


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_query_draws_runs_as_the_official_api(complete_tfrecord, complete_hdf5, complete_rows, seed, tmp_path):
    """The official query draws random.randint(0, 2) on the module-level generator seeded by NASBench(seed);
    replayed here with an independent random.Random(seed)."""
    order = np.random.RandomState(seed).choice(len(complete_rows), 200)
    for path in (complete_tfrecord, complete_hdf5):
        bench = api.NASBench(path, seed=seed, cache_dir=str(tmp_path), verbose=False)
        rng = random.Random(seed)
        time_spent, epochs_spent = 0.0, 0
        for i, k in enumerate(order):
            row = complete_rows[k]
            epochs = 4 if "4" in row["computed_stats"] and i % 3 == 0 else 108
            halfway = i % 2 == 1
            data = bench.query(spec_of(row), epochs=epochs, stop_halfway=halfway)
            run = row["computed_stats"][str(epochs)][rng.randint(0, 2)]
            prefix = "halfway_" if halfway else "final_"
            for key in ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy"):
                assert data[key] == run[prefix + key]
            assert set(data) == {"module_adjacency", "module_operations", "trainable_parameters", "training_time",
                                 "train_accuracy", "validation_accuracy", "test_accuracy"}
            time_spent += run[prefix + "training_time"]
            epochs_spent += epochs // 2 if halfway else epochs
            assert bench.get_budget_counters() == (time_spent, epochs_spent)
        bench.reset_budget_counters()
        assert bench.get_budget_counters() == (0.0, 0)


def test_query_batch_equals_a_loop_of_query(complete_hdf5, complete_rows, tmp_path):
    cells = [complete_rows[k] for k in np.random.RandomState(3).choice(len(complete_rows), 50)]
    loop = api.NASBench(complete_hdf5, seed=7, verbose=False)
    singles = [loop.query(spec_of(row), stop_halfway=True) for row in cells]
    for batch_input in ([spec_of(row) for row in cells], [row["hash"] for row in cells],
                        np.array([row["hash"] for row in cells], dtype="S32")):
        batch = api.NASBench(complete_hdf5, seed=7, verbose=False)
        result = batch.query_batch(batch_input, stop_halfway=True)
        for i, single in enumerate(singles):
            for key in ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy",
                        "trainable_parameters"):
                assert result[key][i] == single[key]
            n = result["num_vertices"][i]
            np.testing.assert_array_equal(result["module_adjacency"][i, :n, :n], single["module_adjacency"])
            assert search_space.codes_to_ops(result["module_operations"][i, :n]) == single["module_operations"]
        assert list(result["hash"]) == [row["hash"] for row in cells]
        assert batch.get_budget_counters() == pytest.approx(loop.get_budget_counters(), rel=1e-12)


def test_a_bad_cell_in_a_batch_changes_nothing(complete_hdf5, complete_rows):
    bench = api.NASBench(complete_hdf5, seed=0, verbose=False)
    state = random.getstate()
    with pytest.raises(api.OutOfDomainError, match="not a hash"):
        bench.query_batch([complete_rows[0]["hash"], "f" * 32])
    assert random.getstate() == state and bench.get_budget_counters() == (0.0, 0)


def _seven(ops, edges):
    matrix = np.zeros((7, 7), dtype=int)
    for x, y in edges:
        matrix[x, y] = 1
    return api.ModelSpec(matrix, ops)


CONV = api.CONV3X3
LINE7 = [(i, i + 1) for i in range(6)]


@pytest.mark.parametrize("spec, message", [
    (api.ModelSpec([[0, 0], [0, 0]], [api.INPUT, api.OUTPUT]), "invalid spec, provided graph is disconnected."),
    (api.ModelSpec(np.eye(8, k=1, dtype=int), [api.INPUT] + [CONV] * 6 + [api.OUTPUT]),
     r"too many vertices, got 8 \(max vertices = 7\)"),
    (_seven([api.INPUT] + [CONV] * 5 + [api.OUTPUT], LINE7 + [(0, 2), (0, 3), (0, 4), (0, 5)]),
     r"too many edges, got 10 \(max edges = 9\)"),
    (_seven([CONV] * 6 + [api.OUTPUT], LINE7), "first operation should be 'input'"),
    (_seven([api.INPUT] + [CONV] * 6, LINE7), "last operation should be 'output'"),
    (_seven([api.INPUT, CONV, "conv5x5", CONV, CONV, CONV, api.OUTPUT], LINE7), r"unsupported op conv5x5"),
])
def test_out_of_domain_specs(bench, spec, message):
    counters = bench.get_budget_counters()
    with pytest.raises(api.OutOfDomainError, match=message):
        bench.query(spec)
    with pytest.raises(api.OutOfDomainError, match=message):
        bench.get_metrics_from_spec(spec)
    assert not bench.is_valid(spec)
    assert bench.get_budget_counters() == counters


def test_out_of_domain_budgets_and_cells(bench, complete_rows):
    counters = bench.get_budget_counters()
    only108 = next(row for row in complete_rows if "4" not in row["computed_stats"])
    with pytest.raises(api.OutOfDomainError, match="invalid number of epochs, must be one of"):
        bench.query(spec_of(only108), epochs=5)
    with pytest.raises(api.OutOfDomainError, match="no run of .* at 4 epochs"):
        bench.query(spec_of(only108), epochs=4)
    absent = _seven([api.INPUT] + [CONV] * 5 + [api.OUTPUT], LINE7)  # a valid cell that the file does not hold
    assert bench.is_valid(absent)
    with pytest.raises(api.OutOfDomainError, match="holds 56 of the 423,624"):
        bench.query(absent)
    with pytest.raises(KeyError):
        bench.get_metrics_from_hash("0" * 32)
    assert bench.get_budget_counters() == counters


@pytest.mark.parametrize("matrix, ops, message", [
    ([[0, 1, 0], [0, 0, 1]], [api.INPUT, CONV, api.OUTPUT], "matrix must be square"),
    ([0, 1], [api.INPUT, api.OUTPUT], "matrix must be square"),
    ([[0, 1], [0, 0]], [api.INPUT, CONV, api.OUTPUT], "length of ops must match matrix dimensions"),
    ([[1, 1], [0, 0]], [api.INPUT, api.OUTPUT], "matrix must be upper triangular"),
    ([[0, 1], [1, 0]], [api.INPUT, api.OUTPUT], "matrix must be upper triangular"),
])
def test_model_spec_value_errors(matrix, ops, message):
    with pytest.raises(ValueError, match=message):
        api.ModelSpec(matrix, ops)


def test_pruning_removes_extraneous_vertices():
    # vertex 2 has no way to the output, vertex 3 no way from the input: both go, with their ops
    matrix = [[0, 1, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    ops = [api.INPUT, CONV, api.MAXPOOL3X3, api.CONV1X1, api.OUTPUT]
    spec = api.ModelSpec(matrix, ops)
    np.testing.assert_array_equal(spec.matrix, [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert spec.ops == [api.INPUT, CONV, api.OUTPUT] and spec.valid_spec
    np.testing.assert_array_equal(spec.original_matrix, matrix)
    assert spec.original_ops == ops
    ops[1] = "changed"
    assert spec.original_ops[1] == CONV  # copies, not the caller's list
    assert spec.hash_spec(api.CONFIG["available_ops"]) == api.ModelSpec(
        [[0, 1, 0], [0, 0, 1], [0, 0, 0]], [api.INPUT, CONV, api.OUTPUT]).hash_spec(api.CONFIG["available_ops"])


def test_disconnected_cells_are_invalid():
    spec = api.ModelSpec([[0, 1, 0], [0, 0, 0], [0, 0, 0]], [api.INPUT, CONV, api.OUTPUT])
    assert not spec.valid_spec and spec.matrix is None and spec.ops is None
    with pytest.raises(ValueError):
        spec.hash_spec(api.CONFIG["available_ops"])


def test_isomorphic_cells_hash_alike(complete_rows):
    """Every relabelling of the interior vertices that keeps the matrix upper triangular has the record's key."""
    ops_order = api.CONFIG["available_ops"]
    checked = 0
    for row in complete_rows[:12]:
        matrix, ops = np.array(row["module_adjacency"]), row["module_operations"]
        n = len(ops)
        assert api.ModelSpec(matrix, ops).hash_spec(ops_order) == row["hash"]
        for perm in itertools.permutations(range(1, n - 1)):
            order = [0, *perm, n - 1]
            permuted = matrix[np.ix_(order, order)]
            if np.tril(permuted).any():
                continue
            spec = api.ModelSpec(permuted, [ops[v] for v in order])
            assert spec.hash_spec(ops_order) == row["hash"]
            checked += 1
    assert checked > 12  # more than the identity of each cell
    changed = np.array(complete_rows[0]["module_adjacency"])
    changed_ops = list(complete_rows[0]["module_operations"])
    changed_ops[1] = next(op for op in ops_order if op != changed_ops[1])
    assert api.ModelSpec(changed, changed_ops).hash_spec(ops_order) != complete_rows[0]["hash"]


def test_the_sample_with_one_run_and_no_test_accuracy(hdf5_20k, labels_20k_path):
    """labels_20k has one run and no test accuracy or halfway values: the run it has, None (never NaN) for what
    it lacks, and no time added to the budget for a missing training time."""
    with open(labels_20k_path) as f:
        first = json.loads(f.readline())
    bench = api.NASBench(hdf5_20k, seed=0, verbose=False)
    assert len(bench) == 20001 and bench.valid_epochs == {4, 12, 36, 108}
    fixed, computed = bench.get_metrics_from_hash(first["hash"])
    assert computed[108] == [{key: first["computed_stats"]["108"][0].get(key) for key in RUN_KEYS}]
    spec = api.ModelSpec(fixed["module_adjacency"], fixed["module_operations"])
    for _ in range(5):
        data = bench.query(spec)
        assert data["validation_accuracy"] == first["computed_stats"]["108"][0]["final_validation_accuracy"]
        assert data["test_accuracy"] is None
    data = bench.query(spec, epochs=4)
    assert data["training_time"] is None and data["validation_accuracy"] is not None
    assert bench.get_budget_counters() == (5 * first["computed_stats"]["108"][0]["final_training_time"], 5 * 108 + 4)


@pytest.mark.slow
def test_a_tfrecord_is_converted_once_into_the_cache(complete_tfrecord, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(search_space.CACHE_DIR_VARIABLE, str(tmp_path))
    api.NASBench(complete_tfrecord, verbose=True)
    assert "converting" in capsys.readouterr().out
    cached = list(tmp_path.glob("complete.tfrecord.*.hdf5"))
    assert len(cached) == 1
    bench = api.NASBench(complete_tfrecord, verbose=True)
    assert "converting" not in capsys.readouterr().out and len(bench) == 56
    cached[0].write_bytes(cached[0].read_bytes()[:1000])  # a damaged copy is made again
    assert len(api.NASBench(complete_tfrecord, verbose=False)) == 56
    assert len(nasbench_data.read_hdf5(str(cached[0]))["hash"]) == 56


def test_loading_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        api.NASBench(str(tmp_path / "missing.tfrecord"), verbose=False)
    bad = tmp_path / "bad.tfrecord"
    bad.write_bytes(b"not a tfrecord at all, just some bytes")
    with pytest.raises(records.ConversionError, match="not a TFRecord"):
        api.NASBench(str(bad), cache_dir=str(tmp_path), verbose=False)
    assert not list(tmp_path.glob("*.hdf5"))


def test_iterate_space_yields_valid_specs_with_their_hashes(space):
    for i, (module_hash, spec) in enumerate(itertools.islice(api.iterate_space(), 3000)):
        assert module_hash == space.hashes[i].decode()
        assert spec.valid_spec and spec.hash_spec(api.CONFIG["available_ops"]) == module_hash


def test_the_official_example_runs_on_the_sample(hdf5_20k, labels_20k_path):
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, os.path.join(root, "examples", "nasbench_api.py"), hdf5_20k],
                         capture_output=True, text=True, check=True, cwd=root).stdout
    with open(labels_20k_path) as f:
        run = json.loads(f.readline())["computed_stats"]["108"][0]
    assert f"validation_accuracy: {run['final_validation_accuracy']}" in out
    assert "test_accuracy: None" in out
    assert f"({run['final_training_time']}, 108)" in out


def test_the_class_table_gives_the_md5_hash_of_random_cells(space):
    """Space.index_of (what query uses when the space's cache exists) against hash_module, on random cells."""
    rng = np.random.RandomState(0)
    checked = 0
    for _ in range(3000):
        n = rng.randint(2, 8)
        matrix = np.triu(rng.rand(n, n) < 0.4, k=1).astype(int)
        ops = [api.INPUT] + [api.CONFIG["available_ops"][k] for k in rng.randint(0, 3, n - 2)] + [api.OUTPUT]
        spec = api.ModelSpec(matrix, ops)
        labels = [-1] + [api.CONFIG["available_ops"].index(op) for op in (spec.ops or [])[1:-1]] + [-2]
        if not spec.valid_spec or spec.matrix.sum() > 9:
            continue
        assert space.hashes[space.index_of(spec.matrix, labels)].decode() == spec.hash_spec(
            api.CONFIG["available_ops"])
        checked += 1
    assert checked > 1000
    assert space.index_of(np.eye(8, k=1, dtype=int), [-1] + [0] * 6 + [-2]) == -1


def test_query_without_the_space_cache_hashes_each_spec(complete_hdf5, complete_rows, tmp_path, monkeypatch):
    monkeypatch.setenv(search_space.CACHE_DIR_VARIABLE, str(tmp_path))  # an empty cache folder: no class table
    specs = [spec_of(row) for row in complete_rows[:10]]
    without = api.NASBench(complete_hdf5, seed=2, verbose=False)
    answers_without = repr([without.query(s) for s in specs])
    monkeypatch.delenv(search_space.CACHE_DIR_VARIABLE)
    with_table = api.NASBench(complete_hdf5, seed=2, verbose=False)  # seeds the module-level generator again
    assert repr([with_table.query(s) for s in specs]) == answers_without
    assert without._space is False and with_table._space
