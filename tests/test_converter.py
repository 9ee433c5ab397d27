"""Tests of tools/nasbench_tfrecord_converter.py on real NAS-Bench-101 records (../shared/nb101)."""
import hashlib
import json
import math
import os

import h5py
import numpy as np
import pytest

from nb101 import nasbench_data
import official_format
from nb101 import search_space
from nb101 import records
from tools import nasbench_tfrecord_converter as converter


def _rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def complete_rows(complete_records_path):
    return _rows(complete_records_path)


@pytest.fixture(scope="module")
def only108_rows(complete_rows):
    """The rows with 3 runs at 108 epochs only: 3 records each."""
    return [row for row in complete_rows if list(row["computed_stats"]) == ["108"]]


def _convert(input_path, output_path, *flags):
    converter.main(["--input", str(input_path), "--output", str(output_path), "--quiet", *flags])
    with h5py.File(output_path, "r") as f:
        return {name: f[name][()] for name in f}


def _interleaved(rows, seed=0):
    """Payloads of every record of `rows`, shuffled across architectures and budgets, but with
    the runs of each (hash, epochs) still in run order (the i-th record of a pair is run i)."""
    payloads = [r for row in rows for r in official_format.record_payloads(row)]
    slots = np.random.RandomState(seed).permutation(len(payloads))
    groups = {}
    for i, (key, epochs, _, _) in enumerate(payloads):
        groups.setdefault((key, epochs), []).append(i)
    shuffled = [None] * len(payloads)
    for members in groups.values():  # members are in run order; give them their slots ascending
        for i, slot in zip(members, sorted(slots[members])):
            shuffled[slot] = payloads[i][3]
    return shuffled


def _check_against_json(data, rows):
    """Every metric, graph and parameter count in the HDF5 equals the JSON; all else is NaN."""
    assert list(data["hash"]) == sorted(row["hash"].encode() for row in rows)
    row_of = {h.decode(): i for i, h in enumerate(data["hash"])}
    for row in rows:
        i = row_of[row["hash"]]
        n = len(row["module_operations"])
        assert data["num_vertices"][i] == n
        assert data["trainable_parameters"][i] == row["trainable_parameters"]
        np.testing.assert_array_equal(data["adjacency"][i, :n, :n], row["module_adjacency"])
        assert not data["adjacency"][i][n:].any() and not data["adjacency"][i][:, n:].any()
        assert data["operations"][i, :n].tolist() == search_space.ops_to_codes(row["module_operations"])
        expected = np.full(nasbench_data.METRICS_SHAPE, np.nan, np.float32)
        for epochs, runs in row["computed_stats"].items():
            for run, stats in enumerate(runs):
                for key, value in stats.items():
                    checkpoint, field = key.split("_", 1)
                    expected[nasbench_data.EPOCHS.index(int(epochs)), run,
                             nasbench_data.CHECKPOINTS.index(checkpoint), nasbench_data.FIELDS.index(field)] = value
        np.testing.assert_array_equal(data["metrics"][i], expected)


# ---------------------------------------------------------------------------
# official TFRecord format


@pytest.mark.parametrize("style", ["only108", "full"])
def test_tfrecord_round_trip_matches_json(tmp_path, complete_rows, style):
    rows = [r for r in complete_rows if (len(r["computed_stats"]) == 4) == (style == "full")]
    assert len(rows) == (4 if style == "full" else 52)
    official_format.write_tfrecord(tmp_path / "in.tfrecord", _interleaved(rows))
    data = _convert(tmp_path / "in.tfrecord", tmp_path / "out.hdf5")
    _check_against_json(data, rows)
    if style == "only108":
        assert np.isnan(data["metrics"][:, :3]).all()


def test_tfrecord_record_order_does_not_change_the_output(tmp_path, complete_rows):
    outputs = []
    for seed in (0, 1):
        official_format.write_tfrecord(tmp_path / f"{seed}.tfrecord", _interleaved(complete_rows, seed))
        outputs.append(_convert(tmp_path / f"{seed}.tfrecord", tmp_path / f"{seed}.hdf5"))
    for name in nasbench_data.DATASETS:
        np.testing.assert_array_equal(outputs[0][name], outputs[1][name])


def test_best_architecture_of_the_space(tmp_path, complete_rows):
    official_format.write_tfrecord(tmp_path / "in.tfrecord", _interleaved(complete_rows))
    data = _convert(tmp_path / "in.tfrecord", tmp_path / "out.hdf5")
    test_108 = nasbench_data.run_values(data["metrics"], "test_accuracy").mean(axis=1)
    best = np.nanargmax(test_108)
    assert data["hash"][best] == b"02e5a0247bbdcf2860b7e96f74961594"
    assert test_108[best] == pytest.approx(0.943175752957662, abs=1e-7)


def test_tfrecord_payloads_across_chunk_boundaries(tmp_path, only108_rows):
    payloads = [r[3] for r in official_format.record_payloads(only108_rows[0])]
    official_format.write_tfrecord(tmp_path / "in.tfrecord", payloads)
    with open(tmp_path / "in.tfrecord", "rb") as f:
        read = list(records.tfrecord_payloads(f, chunk_bytes=7))  # smaller than a header
    assert [p for _, _, p in read] == payloads
    offsets = np.cumsum([0] + [len(p) + 16 for p in payloads[:-1]])
    assert [o for _, o, _ in read] == offsets.tolist()
    assert [n for n, _, _ in read] == list(range(len(payloads)))


def _official_file(tmp_path, rows, name="in.tfrecord"):
    path = tmp_path / name
    official_format.write_tfrecord(path, [r[3] for row in rows for r in official_format.record_payloads(row)])
    return path


def _fails_cleanly(tmp_path, input_path, *flags):
    """Convert onto an existing output: SystemExit, output untouched, no temporary file left; returns the message."""
    output = tmp_path / "out" / "nasbench.hdf5"
    output.parent.mkdir(exist_ok=True)
    output.write_bytes(b"previous complete file")
    with pytest.raises(SystemExit) as failure:
        converter.main(["--input", str(input_path), "--output", str(output), "--quiet", *flags])
    assert failure.value.code not in (0, None)
    assert output.read_bytes() == b"previous complete file"
    assert os.listdir(output.parent) == ["nasbench.hdf5"]
    return str(failure.value.code)


def test_corrupt_payload_byte_is_a_crc_error(tmp_path, only108_rows):
    path = _official_file(tmp_path, only108_rows[:2])
    data = bytearray(path.read_bytes())
    start1 = int.from_bytes(data[:8], "little") + 16
    data[start1 + 12 + 5] ^= 0x01  # one byte in the payload of record 1
    path.write_bytes(bytes(data))
    message = _fails_cleanly(tmp_path, path)
    assert f"record 1 at byte {start1}" in message and "CRC mismatch in the payload" in message


def test_corrupt_length_byte_is_a_crc_error(tmp_path, only108_rows):
    path = _official_file(tmp_path, only108_rows[:2])
    data = bytearray(path.read_bytes())
    start1 = int.from_bytes(data[:8], "little") + 16
    data[start1] ^= 0x04
    path.write_bytes(bytes(data))
    message = _fails_cleanly(tmp_path, path)
    assert f"record 1 at byte {start1}" in message and "CRC mismatch in the length" in message


@pytest.mark.parametrize("kept", [5, 20, -1])  # bytes of record 2 kept: inside the header, the payload, all but 1
def test_truncated_file_fails_cleanly(tmp_path, only108_rows, kept):
    path = _official_file(tmp_path, only108_rows[:1])
    data = path.read_bytes()
    start2 = 2 * (int.from_bytes(data[:8], "little") + 16)
    path.write_bytes(data[:kept] if kept < 0 else data[:start2 + kept])
    message = _fails_cleanly(tmp_path, path)
    assert f"record 2 at byte {start2}: file truncated" in message


def _single_record_file(tmp_path, payload):
    path = tmp_path / "in.tfrecord"
    official_format.write_tfrecord(path, [payload])
    return path


def test_malformed_json_row(tmp_path):
    message = _fails_cleanly(tmp_path, _single_record_file(tmp_path, b'["00005c142e6f48ac74fdcf73e3439874", 108'))
    assert "record 0 at byte 0: malformed row" in message


@pytest.mark.parametrize("row, expected", [
    ('[["00005c142e6f48ac74fdcf73e3439874"], 108, "0110", "input,output", ""]', "is not a module hash"),
    ('["00005c142e6f48ac74fdcf73e3439874", [108], "0100", "input,output", ""]', "epochs is not one of"),
    ('["00005c142e6f48ac74fdcf73e3439874", 108, "012", "input,output", ""]', "malformed graph"),
])
def test_malformed_fields(tmp_path, row, expected):
    message = _fails_cleanly(tmp_path, _single_record_file(tmp_path, row.encode()))
    assert "record 0 at byte 0" in message and expected in message


def test_malformed_protobuf(tmp_path, only108_rows):
    row = only108_rows[0]
    bad = official_format.payload(row["hash"], 108, row["module_adjacency"], row["module_operations"], b"\x0a\xff")
    message = _fails_cleanly(tmp_path, _single_record_file(tmp_path, bad))
    assert "record 0 at byte 0: malformed row" in message and "DecodeError" in message


def test_graph_not_matching_its_hash(tmp_path, only108_rows):
    path = _official_file(tmp_path, [only108_rows[0], dict(only108_rows[1], hash=only108_rows[2]["hash"])])
    first_of_second = 3 * (int.from_bytes(path.read_bytes()[:8], "little") + 16)
    message = _fails_cleanly(tmp_path, path)
    assert f"record 3 at byte {first_of_second}" in message
    assert f"key is {only108_rows[2]['hash']}" in message


def test_unpruned_graph_is_rejected(tmp_path, only108_rows):
    row = only108_rows[0]
    n = len(row["module_operations"])
    if n == 7:
        row = next(r for r in only108_rows if len(r["module_operations"]) < 7)
        n = len(row["module_operations"])
    dangling = np.zeros((n + 1, n + 1), dtype=int)
    dangling[:n - 1, :n - 1] = np.asarray(row["module_adjacency"])[:n - 1, :n - 1]
    dangling[:n - 1, n] = np.asarray(row["module_adjacency"])[:n - 1, n - 1]
    dangling[0, n - 1] = 1  # vertex n-1 hangs off the input and leads nowhere
    ops = row["module_operations"][:-1] + ["conv3x3-bn-relu", "output"]
    assert search_space.spec_hash(dangling, ops) == row["hash"]  # the same architecture once pruned
    bad = official_format.payload(row["hash"], 108, dangling, ops, official_format.model_metrics(108, {}, 1))
    message = _fails_cleanly(tmp_path, _single_record_file(tmp_path, bad))
    assert "record 0 at byte 0" in message and "not a pruned" in message


def test_more_than_three_runs(tmp_path, only108_rows):
    payloads = official_format.record_payloads(only108_rows[0])
    path = tmp_path / "in.tfrecord"
    official_format.write_tfrecord(path, [r[3] for r in payloads] + [payloads[0][3]])
    message = _fails_cleanly(tmp_path, path)
    assert "record 3 at byte" in message and "more than 3 runs" in message


def test_missing_input_says_what_to_do(tmp_path):
    message = _fails_cleanly(tmp_path, tmp_path / "nasbench_full.tfrecord")
    assert "not found" in message and "labels_20k.jsonl.gz" in message


# ---------------------------------------------------------------------------
# SHA256 of official files (the official table is replaced by a small fake-named file)


@pytest.fixture
def fake_official(tmp_path, complete_rows, monkeypatch):
    path = _official_file(tmp_path, complete_rows[-3:], name="fake_only108.tfrecord")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(records, "OFFICIAL_FILES", {path.name: (sha, path.stat().st_size * 1.02, 9)})
    return path


def _convert_loud(path, output, *flags):
    converter.main(["--input", str(path), "--output", str(output), *flags])


def test_sha256_of_an_official_file_is_checked(tmp_path, fake_official, capsys):
    _convert_loud(fake_official, tmp_path / "out.hdf5")
    assert "SHA256 of fake_only108.tfrecord matches the official release" in capsys.readouterr().out
    assert (tmp_path / "out.hdf5").exists()


def test_sha256_mismatch_fails_cleanly(tmp_path, fake_official, monkeypatch):
    sha, size, count = records.OFFICIAL_FILES[fake_official.name]
    monkeypatch.setattr(records, "OFFICIAL_FILES", {fake_official.name: ("0" * 64, size, count)})
    message = _fails_cleanly(tmp_path, fake_official)
    assert "SHA256" in message and sha in message and "--skip-sha256" in message
    _convert_loud(fake_official, tmp_path / "skipped.hdf5", "--skip-sha256", "--quiet")
    assert (tmp_path / "skipped.hdf5").exists()


@pytest.mark.parametrize("case, expected", [
    ("skip", "SHA256 not checked (--skip-sha256)"),
    ("other name", "not an official file name"),
    ("other size", "is not the size of the official"),
])
def test_sha256_report_says_what_was_checked(tmp_path, fake_official, monkeypatch, capsys, case, expected):
    flags = ["--skip-sha256"] if case == "skip" else []
    path = fake_official
    if case == "other name":
        path = fake_official.rename(tmp_path / "renamed.tfrecord")
    if case == "other size":
        sha, size, count = records.OFFICIAL_FILES[path.name]
        monkeypatch.setattr(records, "OFFICIAL_FILES", {path.name: (sha, size * 2, count)})
    _convert_loud(path, tmp_path / "out.hdf5", *flags)
    assert expected in capsys.readouterr().out


# ---------------------------------------------------------------------------
# jsonl import


@pytest.fixture(scope="module")
def labels_20k(labels_20k_path, tmp_path_factory):
    output = tmp_path_factory.mktemp("labels_20k") / "nasbench.hdf5"
    return _rows(labels_20k_path), _convert(labels_20k_path, output)


def test_labels_20k_import(labels_20k):
    rows, data = labels_20k
    assert len(data["hash"]) == len(rows) == 20001
    assert list(data["hash"]) == sorted(row["hash"].encode() for row in rows)
    row_of = {h.decode(): i for i, h in enumerate(data["hash"])}
    rng = np.random.RandomState(0)
    for line in rng.choice(len(rows), 200, replace=False).tolist() + [0, 999, 1000, 20000]:
        row, i = rows[line], row_of[rows[line]["hash"]]
        assert data["trainable_parameters"][i] == row["trainable_parameters"]
        for epochs in nasbench_data.EPOCHS:
            stats = row["computed_stats"][str(epochs)][0]
            e = nasbench_data.EPOCHS.index(epochs)
            assert data["metrics"][i, e, 0, 1, 2] == np.float32(stats["final_validation_accuracy"])
            time_108 = data["metrics"][i, e, 0, 1, 0]
            assert (time_108 == np.float32(stats["final_training_time"])) if epochs == 108 else np.isnan(time_108)
        assert np.isnan(data["metrics"][i, :, 1:]).all() and np.isnan(data["metrics"][i, :, :, 0]).all()
        if "module_adjacency" in row:
            n = len(row["module_operations"])
            np.testing.assert_array_equal(data["adjacency"][i, :n, :n], row["module_adjacency"])
            assert data["operations"][i, :n].tolist() == search_space.ops_to_codes(row["module_operations"])


def test_labels_20k_graphs_rehash_to_their_hash(labels_20k):
    _, data = labels_20k
    rehashed = search_space.hash_graphs(data["adjacency"], data["operations"], data["num_vertices"])
    np.testing.assert_array_equal(rehashed, data["hash"])


def _bad_jsonl(tmp_path, labels_20k_path, line_3):
    with open(labels_20k_path) as f:
        lines = [next(f) for _ in range(5)]
    lines[2] = line_3 + "\n"
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(lines))
    return path


@pytest.fixture(scope="module")
def graph_row(labels_20k_path):
    with open(labels_20k_path) as f:
        return json.loads(next(f))


def test_jsonl_unknown_hash(tmp_path, labels_20k_path, graph_row, space):
    unknown = "0" * 32
    assert unknown.encode() not in set(space.hashes.tolist())
    row = {"hash": unknown, "trainable_parameters": 1, "computed_stats": {}}
    message = _fails_cleanly(tmp_path, _bad_jsonl(tmp_path, labels_20k_path, json.dumps(row)))
    assert "line 3" in message and unknown in message and "not in the NAS-Bench-101 space" in message


def test_jsonl_graph_not_matching_its_key(tmp_path, labels_20k_path, graph_row):
    row = dict(graph_row, hash="0" * 31 + "1")
    row["module_operations"] = list(reversed(graph_row["module_operations"][1:-1]))
    row["module_operations"] = ["input", *row["module_operations"], "output"]
    message = _fails_cleanly(tmp_path, _bad_jsonl(tmp_path, labels_20k_path, json.dumps(row)))
    assert "line 3" in message and "key is " + "0" * 31 + "1" in message


def test_jsonl_bad_json(tmp_path, labels_20k_path, graph_row):
    message = _fails_cleanly(tmp_path, _bad_jsonl(tmp_path, labels_20k_path, json.dumps(graph_row)[:-2]))
    assert "line 3: malformed row" in message


def test_jsonl_duplicate_hash(tmp_path, labels_20k_path, graph_row):
    message = _fails_cleanly(tmp_path, _bad_jsonl(tmp_path, labels_20k_path, json.dumps(graph_row)))
    assert "line 3" in message and "already appeared on line 1" in message


def test_jsonl_unknown_statistic(tmp_path, labels_20k_path, graph_row):
    row = dict(graph_row, hash="0" * 32, computed_stats={"108": [{"final_valid_acc": 0.9}]})
    message = _fails_cleanly(tmp_path, _bad_jsonl(tmp_path, labels_20k_path, json.dumps(row)))
    assert "line 3" in message and "final_valid_acc" in message


# ---------------------------------------------------------------------------
# small functions


def test_run_metric_values_tell_unset_from_zero():
    metrics = records.ModelMetrics()
    metrics.evaluation_data.add()
    metrics.evaluation_data.add(training_time=0.0, validation_accuracy=0.5)
    metrics.evaluation_data.add(training_time=1.0, train_accuracy=0.25, validation_accuracy=0.5, test_accuracy=0.75)
    values = records.run_metric_values(metrics)
    assert values[0] == 0.0 and values[2] == 0.5 and values[4:] == [1.0, 0.25, 0.5, 0.75]
    assert math.isnan(values[1]) and math.isnan(values[3])


def test_run_metric_values_of_missing_evaluations_are_nan():
    metrics = records.ModelMetrics()
    metrics.evaluation_data.add()
    metrics.evaluation_data.add(training_time=2.0, train_accuracy=0.1, validation_accuracy=0.2, test_accuracy=0.3)
    values = records.run_metric_values(metrics)
    assert values[:4] == [2.0, 0.1, 0.2, 0.3] and all(math.isnan(v) for v in values[4:])


def test_model_metrics_class_reads_the_hand_written_wire_format():
    raw = official_format.model_metrics(108, {"final_test_accuracy": 0.75, "halfway_training_time": 3.5}, 8555530)
    metrics = records.ModelMetrics.FromString(raw)
    assert metrics.trainable_parameters == 8555530 and len(metrics.evaluation_data) == 3
    assert metrics.evaluation_data[2].test_accuracy == 0.75 and metrics.evaluation_data[1].training_time == 3.5
    assert metrics.evaluation_data[2].current_epoch == 108


def test_masked_crc_and_frame_match_the_hand_written_framing():
    payload = b'["x", 108]'
    assert records.frame_record(payload) == official_format.frame(payload)


def test_architectures_table_grows():
    table = records.Architectures(capacity=2)
    for i in range(5):
        row = table.add(f"{4 - i:032x}", i, 10 * i)
        table.metrics[row, 3, 0, records.RUN_KEYS["final_validation_accuracy"]] = i
        table.set_graph(row, [[0, 1], [0, 0]], ["input", "output"])
    arrays = table.arrays()
    assert arrays["hashes"].tolist() == [f"{i:032x}".encode() for i in range(5)]
    assert arrays["metrics"][:, 3, 0, 1, 2].tolist() == [4, 3, 2, 1, 0]
    assert np.isnan(arrays["metrics"][:, :3]).all() and (arrays["trainable_parameters"] == -1).all()
    assert (arrays["num_vertices"] == 2).all() and table.source[4].tolist() == [4, 40]


def test_set_graph_rejects_bad_graphs():
    table = records.Architectures()
    row = table.add("0" * 32, 0, 0)
    for matrix, ops in [([[0, 2], [0, 0]], ["input", "output"]), ([[0, 1], [0, 0]], ["input", "conv", "output"]),
                        ([[0, 1], [0, 0]], ["input", "conv5x5"])]:
        with pytest.raises(ValueError):
            table.set_graph(row, matrix, ops)


def _padded(rows):
    adjacency = np.zeros((len(rows), 7, 7), np.int8)
    operations = np.zeros((len(rows), 7), np.int8)
    num_vertices = np.zeros(len(rows), np.int8)
    for i, row in enumerate(rows):
        n = len(row["module_operations"])
        adjacency[i, :n, :n] = row["module_adjacency"]
        operations[i, :n] = search_space.ops_to_codes(row["module_operations"])
        num_vertices[i] = n
    return adjacency, operations, num_vertices


def test_graph_hashes_and_malformed_graphs_on_real_graphs(complete_rows, space):
    adjacency, operations, num_vertices = _padded(complete_rows)
    assert not search_space.malformed_graphs(adjacency, operations, num_vertices).any()
    found = records.graph_hashes(space, adjacency, operations, num_vertices)
    assert found.tolist() == [row["hash"].encode() for row in complete_rows]
    lower = adjacency.copy()
    lower[0, 1, 0] = 1
    no_output_edge = adjacency.copy()
    no_output_edge[1, :, num_vertices[1] - 1] = 0
    swapped = operations.copy()
    swapped[2, 0] = 0
    padding_edge = adjacency.copy()
    small = int(np.argmin(num_vertices))
    padding_edge[small, 0, 6] = 1
    for adj, ops, bad_row in [(lower, operations, 0), (no_output_edge, operations, 1), (adjacency, swapped, 2),
                              (padding_edge, operations, small)]:
        assert np.flatnonzero(search_space.malformed_graphs(adj, ops, num_vertices)).tolist() == [bad_row]


def _converter_refuses(arguments, capsys, message):
    with pytest.raises(SystemExit) as failure:
        converter.main(arguments + ["--quiet"])
    assert failure.value.code == 2
    assert message in capsys.readouterr().err


def test_output_that_is_the_input_is_refused_before_any_work(labels_20k_path, tmp_path, capsys):
    """Also through a symlink; the input stays byte-identical."""
    source = tmp_path / "rows.jsonl"
    source.write_bytes(open(labels_20k_path, "rb").read()[:200000].rsplit(b"\n", 1)[0] + b"\n")
    before = source.read_bytes()
    _converter_refuses(["--input", str(source), "--output", str(source)], capsys, "is the input")
    link = tmp_path / "link.hdf5"
    link.symlink_to(source)
    _converter_refuses(["--input", str(source), "--output", str(link)], capsys, "is the input")
    assert source.read_bytes() == before
    _converter_refuses(["--input", str(source), "--output", str(tmp_path)], capsys, "is a directory")
    _converter_refuses(["--input", str(source), "--output", str(source / "x.hdf5")], capsys, "is a file")


def test_split_tool_refuses_to_overwrite_its_hdf5(hdf5_20k, tmp_path, capsys):
    from tools import split_train_val
    copy = tmp_path / "d.hdf5"
    copy.write_bytes(open(hdf5_20k, "rb").read())
    before = copy.read_bytes()
    with pytest.raises(SystemExit) as failure:
        split_train_val.main(["--data", str(copy), "--output", str(copy)])
    assert failure.value.code == 2 and "is the input" in capsys.readouterr().err
    assert copy.read_bytes() == before


@pytest.mark.slow
def test_the_shipped_sample_is_the_public_export_with_its_graphs_filled_in(shared_labels_20k_path, labels_20k_path,
                                                                             tmp_path):
    import nb101
    with open(shared_labels_20k_path) as f:
        export = [json.loads(line) for line in f]
    with open(labels_20k_path) as f:
        shipped = [json.loads(line) for line in f]
    assert len(shipped) == len(export) == 20001
    for ours, theirs in zip(shipped, export):
        assert {key: ours[key] for key in theirs} == theirs  # every value of the export, unchanged
        assert "module_adjacency" in ours and "module_operations" in ours
    a = _convert(nb101.SAMPLE, tmp_path / "shipped.hdf5")
    b = _convert(shared_labels_20k_path, tmp_path / "export.hdf5")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_a_damaged_shipped_sample_is_refused(monkeypatch, tmp_path):
    import nb101
    copy = tmp_path / "labels_20k.jsonl.gz"
    data = bytearray(open(nb101.SAMPLE, "rb").read())
    data[5000] ^= 1
    copy.write_bytes(bytes(data))
    monkeypatch.setattr(records, "SAMPLE", str(copy))
    with pytest.raises(records.ConversionError, match="shipped sample .* is damaged"):
        records.convert(str(copy), str(tmp_path / "out.hdf5"), quiet=True)
