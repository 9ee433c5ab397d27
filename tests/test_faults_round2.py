"""Fault injection, second round: a full disk, a killed run, seeds, wrong data, damaged files, duplicates.

Every command-line case asserts a clear one-line message, a non-zero exit, no traceback, the inputs
and an earlier output byte for byte as they were, and no temporary file left behind. A full disk is a
small tmpfs that the test mounts where it may (root on Linux), else an ENOSPC injected into the writes.
"""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from nb101 import files, nasbench_data, records

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(script, *args, env=None):
    """A project script in a fresh process: (exit code, stderr)."""
    process = subprocess.run([sys.executable, os.path.join(ROOT, script), *map(str, args)], capture_output=True,
                             text=True, env=env, cwd=ROOT)
    return process.returncode, process.stderr


def snapshot(*paths):
    """{path: bytes} of every file under the given files or folders."""
    found = {}
    for path in map(str, paths):
        if os.path.isfile(path):
            found[path] = open(path, "rb").read()
        for folder, _, names in os.walk(path):
            for name in names:
                found[os.path.join(folder, name)] = open(os.path.join(folder, name), "rb").read()
    return found


def assert_refused(code, err, before, *paths):
    assert code != 0, err
    assert "Traceback" not in err and err.strip().startswith(("error:", "usage:")), err
    assert snapshot(*paths) == before, "an input or an earlier output changed, or a file was left behind"
    assert not [p for p in snapshot(*paths) if p.endswith(".tmp")]


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a 256 KiB file system: a tmpfs mounted for the test (skips where mounting is not allowed)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (not root?); the injected-ENOSPC tests cover the same paths")
    yield folder
    subprocess.run(["umount", str(folder)], capture_output=True)


# ---------------------------------------------------------------------------
# a full disk


def test_converter_on_a_full_disk(small_disk, labels_20k_path):
    (small_disk / "nasbench.hdf5").write_bytes(b"previous output")
    before = snapshot(small_disk, labels_20k_path)
    code, err = run("tools/nasbench_tfrecord_converter.py", "--input", labels_20k_path,
                    "--output", small_disk / "nasbench.hdf5", "--quiet")
    assert_refused(code, err, before, small_disk, labels_20k_path)
    assert "not enough space" in err and "bytes" in err


@pytest.mark.slow
def test_split_tool_and_train_on_a_full_disk(small_disk, labels_hdf5, tmp_path):
    path, splits = labels_hdf5
    filler = small_disk / "filler"
    filler.write_bytes(b"x" * (250 * 1024))  # leave a few KiB: the split file (about 180 KB) cannot fit
    before = snapshot(small_disk, path)
    code, err = run("tools/split_train_val.py", "--data", path, "--output", small_disk / "train.npz")
    assert_refused(code, err, before, small_disk, path)
    assert "cannot write" in err and "No space left" in err
    code, err = run("train.py", "--data", path, "--splits", splits, "--train_split", "40", "--epochs", "1",
                    "--quiet", "--output_dir", small_disk / "run")
    assert_refused(code, err, before, small_disk, path)
    assert "not enough space for the results" in err


def test_injected_enospc_keeps_earlier_outputs_and_leaves_no_temporary(tmp_path, monkeypatch):
    """Where no small disk can be mounted: ENOSPC raised by the write itself."""
    output = tmp_path / "out.json"
    output.write_text("earlier")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(files.os, "replace", full)
    with pytest.raises(files.DataError, match=r"cannot write .*out.json: No space left on device \(\d+ bytes"):
        nasbench_data.write_json(str(output), {"a": 1})
    assert output.read_text() == "earlier" and os.listdir(tmp_path) == ["out.json"]


def test_search_and_train_results_come_before_the_plots(labels_hdf5, tmp_path, monkeypatch):
    """A failure while plotting (a disk that fills up there) keeps results.json and model.pt."""
    import metrics
    import train
    path, splits = labels_hdf5

    def no_space(*args, **kwargs):
        raise files.DataError("cannot write scatter.png: No space left on device")
    monkeypatch.setattr(train, "plot_scatter", no_space)
    out = tmp_path / "run"
    assert train.main(["--data", path, "--splits", splits, "--train_split", "40", "--eval_split", "300", "--epochs",
                       "1", "--visualize", "--quiet", "--output_dir", str(out)]) == 2
    assert sorted(os.listdir(out)) == ["model.pt", "results.json"]
    assert metrics  # the real plot_scatter is tested elsewhere


# ---------------------------------------------------------------------------
# a killed run


HOLDER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from nb101 import files
    with files.atomic_output(sys.argv[2]) as tmp:
        open(tmp, "wb").write(b"half of a file")
        print("writing", flush=True)
        time.sleep(60)
""")


def test_sigkill_during_a_write_then_a_clean_rerun(tmp_path, complete_records_path):
    output = tmp_path / "nasbench.hdf5"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, ROOT, str(output)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "writing"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    left = [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]
    assert left and str(holder.pid) in left[0], "a killed process cannot remove its temporary file"
    code, err = run("tools/nasbench_tfrecord_converter.py", "--input", complete_records_path, "--output", output,
                    "--quiet")
    assert code == 0, err
    assert os.listdir(tmp_path) == ["nasbench.hdf5"], "the rerun removed the killed run's temporary file"
    assert len(nasbench_data.read_hdf5(str(output))["hash"]) == 56


def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    output = tmp_path / "out.json"
    mine = tmp_path / f"out.json.{os.getpid()}.abcdefgh.tmp"
    mine.write_text("being written")
    nasbench_data.write_json(str(output), {"a": 1})
    assert mine.exists() and json.loads(output.read_text()) == {"a": 1}


# ---------------------------------------------------------------------------
# seeds


@pytest.mark.parametrize("seed", [str(2 ** 32), str(2 ** 40), str(2 ** 64), "-1"])
def test_seeds_that_would_wrap_are_refused(seed, capsys):
    import train
    with pytest.raises(SystemExit) as refused:
        train.parse_args(["--seed", seed])
    assert refused.value.code == 2 and "--seed" in capsys.readouterr().err


def test_library_seeds_are_checked():
    import engine
    from predictor import NeuralPredictor
    with pytest.raises(ValueError, match="seed"):
        NeuralPredictor(seed=2 ** 40)
    with pytest.raises(ValueError, match="seed"):
        engine.fit({}, [(np.arange(20), np.zeros(20))] * 3, seed=2 ** 31 - 2)


# ---------------------------------------------------------------------------
# wrong data


def rewritten(tmp_path, source, change):
    """A copy of the HDF5 `source` with `change(arrays)` applied, written as the converter writes (so that only
    the values are wrong)."""
    data = nasbench_data.read_hdf5(source)
    data = {key: value.copy() for key, value in data.items()}
    change(data)
    path = tmp_path / "changed.hdf5"
    nasbench_data.write_hdf5(str(path), data["hash"], data["num_vertices"], data["trainable_parameters"],
                             data["adjacency"], data["operations"], data["metrics"])
    return str(path)


def _percentages(d):
    d["metrics"][..., 1:] *= 100


def _infinite(d):
    d["metrics"][3, 3, 0, 1, 2] = np.inf


def _negative(d):
    d["metrics"][3, 3, 0, 1, 2] = -0.5


def _cyclic(d):
    d["adjacency"][5, 2, 1] = 1


def _negative_time(d):
    d["metrics"][9, 3, 0, 1, 0] = -3.0


@pytest.mark.parametrize("change, message", [
    (_percentages, "outside [0, 1] (percentages?"),
    (_infinite, "accuracy inf"),
    (_negative, "accuracy -0.5"),
    (_cyclic, "not a pruned NAS-Bench-101 cell"),
    (_negative_time, "training time -3"),
])
@pytest.mark.slow
def test_wrong_values_are_refused_when_read(hdf5_20k, labels_hdf5, tmp_path, change, message):
    _, splits = labels_hdf5
    path = rewritten(tmp_path, hdf5_20k, change)
    before = snapshot(path, splits)
    code, err = run("train.py", "--data", path, "--splits", splits, "--quiet", "--output_dir", tmp_path / "out")
    assert_refused(code, err, before, path, splits)
    assert message in err and "Re-create it with" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_float_indices_and_damaged_split_files(labels_hdf5, tmp_path):
    path, splits = labels_hdf5
    floats = tmp_path / "floats.npz"
    np.savez(floats, **{"172": np.arange(172, dtype=np.float64)})
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(open(splits, "rb").read()[:300])
    for bad, message in ((floats, "not a list of integer row indices"), (truncated, "not a readable split file")):
        before = snapshot(path, bad)
        code, err = run("train.py", "--data", path, "--splits", bad, "--quiet", "--output_dir", tmp_path / "out")
        assert_refused(code, err, before, path, bad)
        assert message in err and "split_train_val.py --data" in err


def test_metrics_that_are_a_group_are_refused(hdf5_20k, tmp_path):
    import h5py
    path = tmp_path / "group.hdf5"
    shutil.copy(hdf5_20k, path)
    with h5py.File(path, "a") as f:
        del f["metrics"]
        f.create_group("metrics")
    with pytest.raises(nasbench_data.DataError, match="lacks the datasets \\['metrics'\\]"):
        nasbench_data.read_hdf5(str(path))


@pytest.mark.slow
def test_a_diverging_fit_and_a_huge_model_stop_with_the_cause(labels_hdf5, tmp_path):
    path, splits = labels_hdf5
    common = ["--data", path, "--splits", splits, "--train_split", "40", "--eval_split", "300", "--quiet"]
    code, err = run("train.py", *common, "--lr", "1e30", "--epochs", "3", "--output_dir", tmp_path / "a")
    assert code == 2 and "diverged" in err and "--lr" in err and "Traceback" not in err
    code, err = run("train.py", *common, "--gcn_hidden", "10000000", "--output_dir", tmp_path / "b")
    assert code == 2 and "GiB" in err and "--gcn_hidden" in err and "Traceback" not in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_the_public_reproductions_split_file_is_accepted(labels_hdf5, tmp_path):
    """Its train.npz has the reproduction's successive permutation(total)[:n] draws and no digest."""
    path, _ = labels_hdf5
    total = len(nasbench_data.read_hdf5(path)["hash"])
    rng = np.random.RandomState(0)
    public = tmp_path / "train.npz"
    np.savez(public, **{str(n): rng.permutation(total)[:n] for n in (172, 334, 860)})
    code, err = run("train.py", "--data", path, "--splits", public, "--epochs", "1", "--quiet",
                    "--output_dir", tmp_path / "out")
    assert code == 0 and "warning: " in err and "no digest" in err


# ---------------------------------------------------------------------------
# checks before work, duplicates, formats


def test_an_empty_input_is_refused_before_the_space_is_enumerated(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    env = dict(os.environ, NB101_CACHE_DIR=str(tmp_path / "no_cache"))  # enumerating would take 20 s or more
    start = time.time()
    code, err = run("tools/nasbench_tfrecord_converter.py", "--input", empty, "--output", tmp_path / "out.hdf5",
                    env=env)
    assert code != 0 and "holds no rows" in err and time.time() - start < 10
    assert not (tmp_path / "no_cache").exists()


def test_a_deeply_nested_row_is_a_malformed_row(tmp_path):
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"hash": ' + "[" * 100000 + "]" * 100000 + "}\n")
    code, err = run("tools/nasbench_tfrecord_converter.py", "--input", deep, "--output", tmp_path / "out.hdf5")
    assert code != 0 and "line 1: malformed row" in err and "Traceback" not in err


@pytest.mark.parametrize("script, flags", [
    ("crossval.py", ["--sizes", "43", "43"]),
    ("tools/compare_predictors.py", ["--predictors", "gcn", "gcn"]),
    ("search.py", ["--methods", "random", "random"]),
    ("search.py", ["--num_train", "20", "20"]),
])
@pytest.mark.slow
def test_repeated_list_values_are_refused(script, flags, tmp_path):
    code, err = run(script, *flags, "--output_dir", tmp_path / "out")
    assert code == 2 and "each value once" in err and not (tmp_path / "out").exists()


def test_formats_are_told_by_content_not_by_the_case_of_the_extension(tmp_path, complete_records_path):
    upper = tmp_path / "RECORDS.JSONL"
    shutil.copy(complete_records_path, upper)
    assert records.file_format(str(upper)) == "jsonl"
    code, err = run("tools/nasbench_tfrecord_converter.py", "--input", upper, "--output", tmp_path / "out.hdf5",
                    "--quiet")
    assert code == 0, err


@pytest.mark.slow
def test_evolution_on_a_sparse_pool_is_refused_before_any_method_runs(tmp_path, complete_records_path):
    hdf5 = tmp_path / "complete.hdf5"
    records.convert(complete_records_path, str(hdf5), quiet=True)
    start = time.time()
    code, err = run("search.py", "--data", hdf5, "--budget", "40", "--num_train", "20", "--quiet",
                    "--output_dir", tmp_path / "out")
    assert code == 2 and "needs a pool of at least 4,236" in err and "Traceback" not in err
    assert time.time() - start < 30 and not (tmp_path / "out").exists()


def test_malformed_graphs_against_a_check_of_each_graph(space):
    """The packed-bit check against search_space.check_spec on each graph: the space's cells are all fine, and
    each one-bit or one-op change of them is judged as check_spec judges it (prune nothing, at most 9 edges)."""
    from nb101 import search_space
    rng = np.random.default_rng(1)
    rows = rng.choice(len(space), 400, replace=False)
    adjacency, operations = space.adjacency[rows].copy(), space.operations[rows].copy()
    num_vertices = space.num_vertices[rows]
    assert not search_space.malformed_graphs(adjacency, operations, num_vertices).any()
    for i, n in enumerate(num_vertices):
        x, y = rng.integers(0, n, 2)
        if rng.random() < 0.7:
            adjacency[i, x, y] ^= 1
        else:
            operations[i, rng.integers(0, n)] = rng.integers(-2, 3)
    got = search_space.malformed_graphs(adjacency, operations, num_vertices)
    for i, n in enumerate(num_vertices):
        matrix, codes = adjacency[i, :n, :n], operations[i, :n].tolist()
        ops_fine = codes[0] == -1 and codes[-1] == -2 and all(0 <= c <= 2 for c in codes[1:-1])
        upper = not np.tril(matrix).any() and not adjacency[i, n:].any() and not adjacency[i, :, n:].any()
        pruned = search_space.prune(matrix, list(range(n))) if upper else None
        expected = not (ops_fine and upper and pruned is not None and len(pruned[1]) == n)
        assert got[i] == expected, (i, matrix, codes)
