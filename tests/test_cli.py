"""Tests of cli.py through every script that trains: flags checked by one set of types, the output directory
checked before any work, a user's mistake reported in one line with exit 2 and nothing written."""
import json
import os
import subprocess
import sys

import pytest

import bench
import cascade
import cli
import crossval
import search
import train
from tools import bench_data, beyond_table, reproduce_table

SCRIPTS = {"train": train.main, "cascade": cascade.main, "crossval": crossval.main, "search": search.main}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_output_dir_that_is_a_file_is_refused_before_any_work(script, labels_hdf5, tmp_path, capsys, monkeypatch):
    path, splits = labels_hdf5
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    import engine
    monkeypatch.setattr(engine, "fit", lambda *a, **kw: pytest.fail("trained before checking the output"))
    flags = ["--data", path, "--output_dir", str(blocker / "out" if script == "search" else blocker), "--quiet"]
    if script != "search":
        flags += ["--splits", splits]
    if script == "crossval":
        flags += ["--sizes", "40", "--epochs", "1"]
    assert SCRIPTS[script](flags) == 2
    message = capsys.readouterr().err
    assert "--output_dir" in message and "Traceback" not in message
    assert blocker.read_text() == "keep me"


def test_read_only_output_parent_is_refused(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o500)
    with pytest.raises(ValueError, match="not writable"):
        cli.check_output_dir(str(parent / "run"))


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_output_dir_where_nothing_can_be_written_is_refused():
    # os.access says yes to root everywhere; only writing a file shows that /proc takes none
    with pytest.raises(ValueError, match="/proc is not writable"):
        cli.check_output_dir("/proc/run")


def test_reproduce_table_checks_its_output_dir_before_any_work(labels_hdf5, tmp_path, capsys, monkeypatch):
    path, splits = labels_hdf5
    blocker = tmp_path / "file"
    blocker.write_text("keep me")
    monkeypatch.setattr(reproduce_table, "fit", lambda *a, **kw: pytest.fail("trained before checking the output"))
    assert reproduce_table.main(["--data", path, "--splits", splits, "--output_dir", str(blocker), "--quiet"]) == 2
    message = capsys.readouterr().err
    assert "--output_dir" in message and "Traceback" not in message
    assert blocker.read_text() == "keep me"


def test_beyond_table_trains_each_recipe_and_size_and_sets_the_published_figures_beside(labels_hdf5, tmp_path,
                                                                                        small_pretraining):
    """Two recipes x one size, 2 seeds, 2 epochs: the table has a row per recipe with 2 seeds' tau, and PINAT's
    published figure in the column of its size; a split the file lacks exits 2 before any training."""
    path, splits = labels_hdf5
    out = tmp_path / "beyond"
    assert beyond_table.main(["--data", path, "--splits", splits, "--recipes", "improved", "best", "--sizes", "300",
                              "--seeds", "2", "--max-epochs", "2", "--output_dir", str(out), "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    for recipe in ("improved", "best"):
        taus = [seed["kendall_tau"] for seed in results["records"][recipe]["300"]["all"]]
        assert len(taus) == 2 and taus[0] != taus[1] and all(-1 <= tau <= 1 for tau in taus)
        assert [seed["count"] for seed in results["records"][recipe]["300"]["unseen"]] == [20001 - 300] * 2
    assert small_pretraining  # the best recipe started from its pre-training
    table = (out / "table.md").read_text()
    assert "| best | " in table and "| PINAT, pairwise BCE loss (published) | - |" in table
    assert beyond_table.main(["--data", path, "--splits", splits, "--sizes", "4236", "--output_dir",
                              str(tmp_path / "other"), "--quiet"]) == 2
    assert not (tmp_path / "other").exists()


def test_output_dir_checks(tmp_path):
    cli.check_output_dir(str(tmp_path / "new" / "deeper"))  # creatable: fine, nothing made yet
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        cli.check_output_dir(str(tmp_path / "file" / "run"))
    with pytest.raises(ValueError, match="exists and is not a directory"):
        cli.check_output_dir(str(tmp_path / "file"))


@pytest.mark.parametrize("main, flags, named", [
    (search.main, ["--train_batch_size", "0"], "--train_batch_size"),
    (search.main, ["--gcn_hidden", "0"], "--gcn_hidden"),
    (search.main, ["--mutation_rate", "-1"], "--mutation_rate"),
    (search.main, ["--runs", "0"], "--runs"),
    (search.main, ["--seed", "-1"], "--seed"),
    (train.main, ["--epochs", "0"], "--epochs"),
    (train.main, ["--dropout", "1.5"], "--dropout"),
    (train.main, ["--lr", "nan"], "--lr"),
    (train.main, ["--threads", "-2"], "--threads"),
    (train.main, ["--predictor", "mlp", "--precision", "bf16"], "--precision"),
    (train.main, ["--precision", "fp16"], "--precision"),
    (search.main, ["--predictor", "gcn", "cnn", "--precision", "bf16"], "--precision"),
    (crossval.main, ["--predictor", "cnn", "--precision", "bf16"], "--precision"),
    (crossval.main, ["--folds", "100", "--sizes", "43"], "--sizes"),
    (crossval.main, ["--lrs", "-1e-3"], "--lrs"),
    (crossval.main, ["--augment", "off", "on"], "--augment"),  # the GCN's output does not depend on the numbering
    (train.main, ["--augment", "on"], "--augment"),
    (train.main, ["--predictor", "mlp", "--augment", "yes"], "--augment"),
    (cascade.main, ["--classifier_lr", "0"], "--classifier_lr"),
    (bench.main, ["--repeats", "0"], "--repeats"),
    (reproduce_table.main, ["--seeds", "0"], "--seeds"),
    (reproduce_table.main, ["--max-epochs", "-1"], "--max-epochs"),
    (bench_data.main, ["--records", "0"], "--records"),
    (bench_data.main, ["--tmpdir", "/no/such/folder"], "--tmpdir"),
])
def test_bad_flag_values_exit_2_naming_the_flag(main, flags, named, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(flags)
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err


def test_bad_device_exits_2_with_a_message(labels_hdf5, tmp_path, capsys):
    path, splits = labels_hdf5
    assert bench.main(["--data", path, "--splits", splits, "--device", "meta"]) == 2
    assert "only cpu and cuda" in capsys.readouterr().err


def test_more_threads_than_cores_exits_2_before_any_work(labels_hdf5, tmp_path, capsys, monkeypatch):
    import engine
    path, splits = labels_hdf5
    monkeypatch.setattr(engine, "fit", lambda *a, **kw: pytest.fail("trained with oversubscribed threads"))
    cores = cli.usable_cores()
    assert train.main(["--data", path, "--splits", splits, "--threads", str(cores + 1),
                       "--output_dir", str(tmp_path / "out"), "--quiet"]) == 2
    assert f"only {cores} cores" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bench_output_that_is_a_directory_is_refused_before_any_work(labels_hdf5, tmp_path, capsys, monkeypatch):
    path, splits = labels_hdf5
    monkeypatch.setattr(bench, "fit", lambda *a, **kw: pytest.fail("timed before checking the output"))
    assert bench.main(["--data", path, "--splits", splits, "--output", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_cascade_with_an_empty_eval_split_stops_before_training(labels_hdf5, tmp_path, capsys, monkeypatch):
    import numpy as np
    from predictor_data import write_split_file
    import engine
    path, _ = labels_hdf5
    splits = write_split_file(tmp_path / "splits.npz", path, {"40": np.arange(40), "none": np.array([], dtype=int)})
    monkeypatch.setattr(engine, "fit", lambda *a, **kw: pytest.fail("trained for an empty eval split"))
    assert cascade.main(["--data", path, "--splits", splits, "--train_split", "40", "--eval_split", "none",
                         "--output_dir", str(tmp_path / "out"), "--quiet"]) == 2
    assert "no architectures" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def stop_at_fit(*args, **kwargs):
    """engine.fit's stand-in: says that the work started, then ends the run (exit 2)."""
    print("fit started", file=sys.stderr)
    raise ValueError("stopped here")


SMALL_RUN = ["--train_split", "40", "--eval_split", "300", "--quiet"]


FLUSH_CHECK = """
import concurrent.futures, sys
import torch
import cli, train, search, crossval, cascade, bench  # every script's imports: none may start torch's threads
cli.set_denormals(sys.argv[1])
torch.set_num_threads(2)
subnormal = torch.full((2048, 256), 1e-39)
def nonzero_rows(a):
    return int((a @ torch.ones(256, 64)).ne(0).any(1).sum())
with concurrent.futures.ThreadPoolExecutor(1) as pool:
    print(nonzero_rows(subnormal), pool.submit(nonzero_rows, subnormal).result(), int(subnormal.mul(1).ne(0).sum()))
"""


@pytest.mark.parametrize("mode, expected", [("keep", "2048 2048 524288"), ("flush", "0 0 0")])
def test_flushed_denormals_are_zero_on_every_thread(mode, expected):
    # a fresh process, as a script is: torch's worker threads inherit the setting only when they start after it
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", FLUSH_CHECK, mode], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == expected.split()


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_denormals_are_set_first(script, labels_hdf5, tmp_path, monkeypatch):
    path, splits = labels_hdf5
    calls = []

    def threads_then_stop(args):
        calls.append("threads")
        raise ValueError("stopped here")
    monkeypatch.setattr(cli, "set_denormals", calls.append)
    monkeypatch.setattr(cli, "use_threads", threads_then_stop)
    flags = ["--data", path, "--denormals", "flush", "--output_dir", str(tmp_path / "out"), "--quiet"]
    assert SCRIPTS[script](flags + ([] if script == "search" else ["--splits", splits])) == 2
    assert calls == ["flush", "threads"]


def test_denormals_flag_takes_only_its_choices(labels_hdf5, tmp_path, capsys):
    path, splits = labels_hdf5
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--data", path, "--splits", splits, "--denormals", "zero", "--output_dir", str(tmp_path / "o")])
    assert exit_info.value.code == 2 and "--denormals" in capsys.readouterr().err


def test_flush_where_the_cpu_cannot_exits_2_with_a_message(labels_hdf5, tmp_path, capsys, monkeypatch):
    import torch
    path, splits = labels_hdf5
    monkeypatch.setattr(torch, "set_flush_denormal", lambda on: False)  # what torch answers on such a CPU
    assert train.main(["--data", path, "--splits", splits, "--denormals", "flush", "--output_dir",
                       str(tmp_path / "out"), *SMALL_RUN]) == 2
    assert "torch cannot flush subnormals on this CPU" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
