"""Fault injection: hostile or mistaken input to the converter, the split tool and the HDF5 readers.

Every case runs on small files written here (TFRecords framed by tests/official_format.py, rows of the real
exports) and asserts the exit, the message naming what and where, and that the input and an existing
output are byte for byte what they were, with no temporary file left behind.
"""
import json
import os
import signal
import struct

import pytest

from nb101 import nasbench_data
import official_format
from tools import nasbench_tfrecord_converter as converter
from tools import split_train_val


@pytest.fixture(scope="module")
def rows(complete_records_path):
    with open(complete_records_path) as f:
        return [json.loads(line) for line in f if '"computed_stats": {"108"' in line][:3]


@pytest.fixture
def jsonl_line(labels_20k_path):
    with open(labels_20k_path) as f:
        return json.loads(next(f))


def refused(tmp_path, input_path, code=None):
    """Convert onto an existing output: non-zero exit, input and output unchanged, no temporary file;
    returns the message."""
    output = tmp_path / "out" / "nasbench.hdf5"
    output.parent.mkdir(exist_ok=True)
    output.write_bytes(b"previous complete file")
    before = input_path.read_bytes()
    with pytest.raises(SystemExit) as failure:
        converter.main(["--input", str(input_path), "--output", str(output), "--quiet"])
    assert failure.value.code not in (0, None)
    assert output.read_bytes() == b"previous complete file"
    assert input_path.read_bytes() == before
    assert os.listdir(output.parent) == ["nasbench.hdf5"]
    return str(failure.value.code)


def one_line_file(tmp_path, record, name="bad.jsonl"):
    path = tmp_path / name
    path.write_text(json.dumps(record) + "\n")
    return path


@pytest.mark.parametrize("value, expected", [
    (93.0, "outside [0, 1] (a percentage? accuracies are fractions)"),
    (-0.5, "outside [0, 1]"),
    (True, "not a number"),
    ("0.93", "not a number"),
])
def test_jsonl_accuracy_out_of_range_or_not_a_number(tmp_path, jsonl_line, value, expected):
    jsonl_line["computed_stats"]["108"][0]["final_validation_accuracy"] = value
    message = refused(tmp_path, one_line_file(tmp_path, jsonl_line))
    assert "line 1" in message and expected in message


@pytest.mark.parametrize("value", [-5, 1.7, 1e30, float("inf"), True, "12"])
def test_jsonl_trainable_parameters_must_be_a_non_negative_integer(tmp_path, jsonl_line, value):
    jsonl_line["trainable_parameters"] = value
    message = refused(tmp_path, one_line_file(tmp_path, jsonl_line))
    assert "line 1" in message and "trainable_parameters" in message


def test_jsonl_negative_training_time(tmp_path, jsonl_line):
    jsonl_line["computed_stats"]["108"][0]["final_training_time"] = -3.0
    message = refused(tmp_path, one_line_file(tmp_path, jsonl_line))
    assert "line 1" in message and "final_training_time" in message


def tfrecord(tmp_path, payloads, name="in.tfrecord"):
    path = tmp_path / name
    official_format.write_tfrecord(path, payloads)
    return path


def test_protobuf_accuracy_in_percent(tmp_path, rows):
    row = json.loads(json.dumps(rows[0]))
    row["computed_stats"]["108"][1]["final_validation_accuracy"] = 93.0
    payloads = [p for _, _, _, p in official_format.record_payloads(row)]
    message = refused(tmp_path, tfrecord(tmp_path, payloads))
    assert "record 0 at byte 0" in message and "final_validation_accuracy of run 2" in message
    assert "a percentage?" in message


@pytest.mark.parametrize("length", [2 ** 40, 2 ** 64 - 1])
def test_huge_length_field_with_a_valid_crc(tmp_path, rows, length):
    good = official_format.frame(official_format.record_payloads(rows[0])[0][3])
    header = struct.pack("<Q", length)
    path = tmp_path / "in.tfrecord"
    path.write_bytes(good + header + struct.pack("<I", official_format.masked_crc32c(header)) + b"x" * 100)
    message = refused(tmp_path, path)
    assert f"record 1 at byte {len(good)}" in message and "length field" in message


def test_operations_given_as_a_number(tmp_path, rows):
    row = rows[0]
    payload = json.dumps([row["hash"], 108, "0" * 49, 5, ""]).encode()
    message = refused(tmp_path, tfrecord(tmp_path, [payload]))
    assert "record 0 at byte 0: malformed" in message


def test_later_record_of_a_hash_with_another_graph(tmp_path, rows):
    row = rows[0]
    first, second = [p for _, _, _, p in official_format.record_payloads(row)][:2]
    other_graph = rows[1]
    metrics = official_format.model_metrics(108, row["computed_stats"]["108"][1], row["trainable_parameters"])
    second = official_format.payload(row["hash"], 108, other_graph["module_adjacency"],
                                     other_graph["module_operations"], metrics)
    path = tfrecord(tmp_path, [first, second])
    message = refused(tmp_path, path)
    assert "record 1" in message and "another graph than its first record (record 0 at byte 0)" in message


def test_directory_and_compressed_inputs(tmp_path, capsys):
    (tmp_path / "adir").mkdir()
    with pytest.raises(SystemExit) as failure:
        converter.main(["--input", str(tmp_path / "adir"), "--output", str(tmp_path / "x.hdf5"), "--quiet"])
    assert "is a directory" in str(failure.value.code)
    gz = tmp_path / "labels.jsonl.gz"
    gz.write_bytes(b"\x1f\x8b\x08\x00")
    assert "a damaged gzip file" in refused(tmp_path, gz)
    import gzip
    packed = tmp_path / "records.tfrecord.gz"  # compressed jsonl is read; anything else compressed is not
    packed.write_bytes(gzip.compress(b"\x00\x01 not json"))
    assert "decompress it first" in refused(tmp_path, packed)


def test_empty_tfrecord_names_the_file_once(tmp_path):
    path = tmp_path / "empty.tfrecord"
    path.write_bytes(b"")
    message = refused(tmp_path, path)
    assert message.count("empty.tfrecord") == 1 and "holds no records" in message


def write_small_hdf5(tmp_path, labels_20k_path, count=200):
    path = tmp_path / "small.jsonl"
    with open(labels_20k_path) as f:
        path.write_text("".join(next(f) for _ in range(count)))
    output = tmp_path / "small.hdf5"
    converter.main(["--input", str(path), "--output", str(output), "--quiet"])
    return output


@pytest.mark.parametrize("dataset", ["hash", "adjacency", "metrics"])
def test_corrupted_hdf5_is_refused_on_read(tmp_path, labels_20k_path, dataset):
    """400 zero bytes inside a dataset's data (the issue's case: empty hashes): the fletcher32 checksum fails
    the read, and the split tool writes nothing."""
    import h5py
    path = write_small_hdf5(tmp_path, labels_20k_path)
    with h5py.File(path, "r") as f:
        chunk = f[dataset].id.get_chunk_info(0)
    start = chunk.byte_offset + min(100, chunk.size // 4)
    data = bytearray(path.read_bytes())
    data[start:start + min(400, chunk.size // 2)] = bytes(min(400, chunk.size // 2))
    path.write_bytes(bytes(data))
    with pytest.raises(nasbench_data.DataError, match="not a readable HDF5 file"):
        nasbench_data.read_hdf5(str(path))
    with pytest.raises(SystemExit) as failure:
        split_train_val.main(["--data", str(path), "--output", str(tmp_path / "splits.npz")])
    assert failure.value.code not in (0, None)
    assert not (tmp_path / "splits.npz").exists()


@pytest.mark.parametrize("name, value, expected", [
    ("hash", b"not-a-hash", "malformed hash"),
    ("num_vertices", 9, "vertices, expected 2 to 7"),
    ("operations", 7, "operations outside"),
])
def test_hdf5_contents_are_validated(tmp_path, labels_20k_path, name, value, expected):
    import h5py
    path = write_small_hdf5(tmp_path, labels_20k_path)
    with h5py.File(path, "r+") as f:
        array = f[name][()]
        array[3] = value
        del f[name]
        f.create_dataset(name, data=array)
    with pytest.raises(nasbench_data.DataError, match=expected):
        nasbench_data.read_hdf5(str(path))


def test_duplicate_hashes_are_refused(tmp_path, labels_20k_path):
    import h5py
    path = write_small_hdf5(tmp_path, labels_20k_path)
    with h5py.File(path, "r+") as f:
        hashes = f["hash"][()]
        hashes[5] = hashes[4]
        del f["hash"]
        f.create_dataset("hash", data=hashes)
    with pytest.raises(nasbench_data.DataError, match="not unique"):
        nasbench_data.read_hdf5(str(path))


def test_sigterm_inside_an_atomic_write_leaves_nothing(tmp_path, capsys):
    """SIGTERM while an output is being written: exit 130, the previous file kept, no temporary file."""
    target = tmp_path / "out.bin"
    target.write_bytes(b"previous")
    with pytest.raises(SystemExit) as failure:
        with nasbench_data.interruptible():
            with nasbench_data.atomic_output(str(target)) as tmp:
                with open(tmp, "wb") as f:
                    f.write(b"partial")
                os.kill(os.getpid(), signal.SIGTERM)
    assert failure.value.code == 130
    assert target.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["out.bin"]
    assert "interrupted" in capsys.readouterr().err


def test_outputs_follow_the_umask(tmp_path, space):
    """mkstemp makes 0600 files; outputs, the space cache among them, get what the umask gives."""
    from nb101 import search_space
    umask = os.umask(0o022)
    try:
        with nasbench_data.atomic_output(str(tmp_path / "a")) as tmp:
            open(tmp, "w").close()
        search_space.save_space(space, str(tmp_path / "space.npz"))
    finally:
        os.umask(umask)
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "space.npz").stat().st_mode & 0o777 == 0o644


def test_split_tool_refuses_a_negative_seed(hdf5_20k, tmp_path, capsys):
    with pytest.raises(SystemExit) as failure:
        split_train_val.main(["--data", hdf5_20k, "--output", str(tmp_path / "s.npz"), "--seed", "-1"])
    assert failure.value.code == 2
    assert "--seed" in capsys.readouterr().err and not (tmp_path / "s.npz").exists()


def test_interrupt_during_the_hdf5_write_exits_130_and_keeps_the_old_output(tmp_path, labels_20k_path,
                                                                           monkeypatch, capsys):
    import h5py
    source = tmp_path / "small.jsonl"
    with open(labels_20k_path) as f:
        source.write_text("".join(next(f) for _ in range(50)))
    output = tmp_path / "out" / "nasbench.hdf5"
    output.parent.mkdir()
    output.write_bytes(b"previous complete file")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(h5py.Group, "create_dataset", interrupted)
    with pytest.raises(SystemExit) as failure:
        converter.main(["--input", str(source), "--output", str(output), "--quiet"])
    assert failure.value.code == 130
    assert output.read_bytes() == b"previous complete file"
    assert os.listdir(output.parent) == ["nasbench.hdf5"]


def test_search_outputs_are_all_or_none(tmp_path, hdf5_20k, monkeypatch):
    """An interrupt while search.py writes its four files leaves the previous four as they were."""
    import search
    import search_report
    out = tmp_path / "search"
    out.mkdir()
    names = ("curves.png", "curves_time.png", "table.md", "traces.npz", "summary.json")
    for name in names:
        (out / name).write_text("previous")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(search_report.np, "savez_compressed", interrupted)
    with pytest.raises(SystemExit) as failure:
        search.main(["--data", hdf5_20k, "--methods", "random", "--runs", "2", "--budget", "20",
                     "--output_dir", str(out), "--quiet"])
    assert failure.value.code == 130
    assert sorted(os.listdir(out)) == sorted(names)
    assert all((out / name).read_text() == "previous" for name in names)


def test_converter_output_that_is_a_directory_or_under_a_file(tmp_path, labels_20k_path, capsys):
    for output, message in ((tmp_path, "is a directory"), (tmp_path / "file" / "x.hdf5", "is a file")):
        (tmp_path / "file").write_text("keep")
        with pytest.raises(SystemExit) as failure:
            converter.main(["--input", labels_20k_path, "--output", str(output), "--quiet"])
        assert failure.value.code == 2
        assert message in capsys.readouterr().err
    assert (tmp_path / "file").read_text() == "keep"
