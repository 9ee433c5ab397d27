"""Reading NAS-Bench-101 records without TensorFlow: the official TFRecord files and hash-keyed jsonl.

    from nb101 import records
    records.convert("nasbench_only108.tfrecord", "data/nasbench.hdf5")   # -> the checked HDF5

Inputs:
  *.tfrecord  an official release file (nasbench_full: 4 budgets x 3 runs; nasbench_only108:
              108 epochs only). Both CRC32Cs of every record are checked, the JSON row and
              its base64 ModelMetrics protobuf are decoded; the i-th record of a (hash, epochs)
              is run i. A file with an official name and size also has its SHA256 checked
              while it streams (skip_sha256=True to skip).
  *.jsonl     hash-keyed records in the schema of the official API's get_metrics_from_hash
              (one JSON object a line: hash, module_adjacency, module_operations,
              trainable_parameters, computed_stats); a row without a graph takes it from the
              enumerated search space.
Every graph is checked against its hash. Output: the HDF5 schema of nb101.nasbench_data, rows
sorted by hash, NaN for every metric the source lacks, trainable_parameters -1 where the
source has none. Nothing is written unless the whole input converts (temporary file,
renamed at the end), so an existing output is only ever replaced by a complete one.
"""
import binascii
import gzip
import hashlib
import json
import math
import os
import struct
import time

import crc32c
import numpy as np
from google.protobuf import descriptor_pb2, message_factory
from google.protobuf.message import DecodeError
from tqdm import tqdm

from . import SAMPLE, SAMPLE_SHA256, nasbench_data, search_space

# name: (SHA256, approximate size in bytes, number of records) of the official release files
OFFICIAL_FILES = {
    "nasbench_full.tfrecord": ("3d64db8180fb1b0207212f9032205064312b6907a3bbc81eabea10db2f5c7e9c",
                               1.95e9, 5_083_488),
    "nasbench_only108.tfrecord": ("4c39c3936e36a85269881d659e44e61a245babcb72cb374eacacf75d0e5f4fd1",
                                  499e6, 1_270_872),
}
SIZE_TOLERANCE = 0.1  # "about 1.95 GB" may mean GB or GiB
MAX_RECORD_BYTES = 2 ** 24  # an official record is about 2 KB
MAX_PARAMETERS = 2 ** 40  # trainable parameters of any cell network (the largest is about 5e7)
DOWNLOAD_HINT = ("get the official file from https://storage.googleapis.com/nasbench/nasbench_full.tfrecord, "
                 f"or convert the shipped sample: {nasbench_data.CONVERT_HINT} (its default input, {SAMPLE})")
EPOCH_INDEX = {e: i for i, e in enumerate(nasbench_data.EPOCHS)}
# jsonl run keys -> index into a run's 8 values, (halfway, final) x FIELDS
RUN_KEYS = {f"{c}_{f}": i for i, (c, f) in enumerate(
    (c, f) for c in nasbench_data.CHECKPOINTS for f in nasbench_data.FIELDS)}
_JSON_DECODE = json.JSONDecoder().decode
RUN_VALUES = len(nasbench_data.CHECKPOINTS) * len(nasbench_data.FIELDS)
CHUNK_BYTES = 16 << 20
_HEADER = struct.Struct("<QI")  # payload length, masked CRC32C of the length
_CRC = struct.Struct("<I")


class ConversionError(Exception):
    """The input cannot be converted; the message names the record or line and says why."""


# ---------------------------------------------------------------------------
# the official format: TFRecord framing and the ModelMetrics protobuf


def _model_metrics_class():
    """Build nasbench.ModelMetrics (proto2, schema of the official release) at runtime, no protoc."""
    proto = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="nasbench_model_metrics.proto", package="nasbench",
                                              syntax="proto2")
    evaluation = file.message_type.add(name="EvaluationData")
    for number, (name, kind) in enumerate([
            ("current_epoch", proto.TYPE_DOUBLE), ("training_time", proto.TYPE_DOUBLE),
            ("train_accuracy", proto.TYPE_DOUBLE), ("validation_accuracy", proto.TYPE_DOUBLE),
            ("test_accuracy", proto.TYPE_DOUBLE), ("checkpoint_path", proto.TYPE_STRING)], start=1):
        evaluation.field.add(name=name, number=number, type=kind, label=proto.LABEL_OPTIONAL)
    metrics = file.message_type.add(name="ModelMetrics")
    metrics.field.add(name="evaluation_data", number=1, type=proto.TYPE_MESSAGE,
                      type_name=".nasbench.EvaluationData", label=proto.LABEL_REPEATED)
    metrics.field.add(name="trainable_parameters", number=2, type=proto.TYPE_INT32, label=proto.LABEL_OPTIONAL)
    metrics.field.add(name="total_time", number=3, type=proto.TYPE_DOUBLE, label=proto.LABEL_OPTIONAL)
    return message_factory.GetMessages([file])["nasbench.ModelMetrics"]


ModelMetrics = _model_metrics_class()


def masked_crc(data):
    """TFRecord's masked CRC32C of a bytes-like object."""
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame_record(payload):
    """One TFRecord record (length, its CRC, payload, its CRC) around `payload` bytes."""
    length = struct.pack("<Q", len(payload))
    return length + _CRC.pack(masked_crc(length)) + payload + _CRC.pack(masked_crc(payload))


def tfrecord_payloads(stream, chunk_bytes=CHUNK_BYTES):
    """Yield (record number, byte offset, payload) of every record of a TFRecord stream.

    Reads big chunks and slices records out of them; both CRCs are checked. Raises
    ConversionError naming the record and its offset on a CRC mismatch or a truncated file.
    """
    buffer, pos, base, number = b"", 0, 0, 0  # base: file offset of buffer[0]
    while True:
        if len(buffer) - pos < _HEADER.size:
            buffer, base, pos = buffer[pos:] + stream.read(max(chunk_bytes, _HEADER.size)), base + pos, 0
            if not buffer:
                return
            if len(buffer) < _HEADER.size:
                raise ConversionError(f"record {number} at byte {base}: file truncated inside the record header")
        length, length_crc = _HEADER.unpack_from(buffer, pos)
        if masked_crc(buffer[pos:pos + 8]) != length_crc:
            raise ConversionError(f"record {number} at byte {base + pos}: CRC mismatch in the length field "
                                  f"({'not a TFRecord file?' if number == 0 else 'corrupt file'})")
        if length > MAX_RECORD_BYTES:  # checked before reading: a valid CRC on a huge length must not allocate it
            raise ConversionError(f"record {number} at byte {base + pos}: length field of {length:,} bytes, more "
                                  f"than any NAS-Bench-101 record (at most {MAX_RECORD_BYTES:,}): corrupt file")
        end = pos + _HEADER.size + length + _CRC.size
        if end > len(buffer):
            need = end - pos
            buffer, base, pos = buffer[pos:] + stream.read(max(chunk_bytes, need)), base + pos, 0
            end = need
            if end > len(buffer):
                raise ConversionError(f"record {number} at byte {base}: file truncated "
                                      f"({len(buffer)} of {need} bytes present)")
        payload = buffer[pos + _HEADER.size:end - _CRC.size]
        if masked_crc(payload) != _CRC.unpack_from(buffer, end - _CRC.size)[0]:
            raise ConversionError(f"record {number} at byte {base + pos}: CRC mismatch in the payload "
                                  "(corrupt file)")
        yield number, base + pos, payload
        number += 1
        pos = end


def run_metric_values(metrics):
    """The 8 values of one run, (halfway, final) x FIELDS, from evaluation_data[1] and [2]; NaN where unset."""
    data = metrics.evaluation_data
    if len(data) >= 3:
        halfway, final = data[1], data[2]
        values = [halfway.training_time, halfway.train_accuracy, halfway.validation_accuracy, halfway.test_accuracy,
                  final.training_time, final.train_accuracy, final.validation_accuracy, final.test_accuracy]
        if 0.0 not in values:  # proto2 reads an unset double as 0.0: only then ask which fields were set
            return values
    values = []
    for i in (1, 2):
        evaluation = data[i] if i < len(data) else None
        values += [getattr(evaluation, name) if evaluation is not None and evaluation.HasField(name) else math.nan
                   for name in nasbench_data.FIELDS]
    return values


# ---------------------------------------------------------------------------
# collecting rows


class Architectures:
    """One row per hash, in order of first appearance; arrays grow as rows are added."""

    def __init__(self, capacity=1024):
        self.row_of = {}  # hash (str) -> row
        self.hashes = []
        self.num_vertices = np.zeros(capacity, np.int8)
        self.trainable_parameters = np.full(capacity, -1, np.int64)
        self.adjacency = np.zeros((capacity, search_space.MAX_VERTICES, search_space.MAX_VERTICES), np.int8)
        self.operations = np.zeros((capacity, search_space.MAX_VERTICES), np.int8)
        # (epochs, runs, 8 values of a run): the HDF5 layout with its last two axes flattened
        self.metrics = np.full((capacity, *nasbench_data.METRICS_SHAPE[:2], RUN_VALUES), np.nan, np.float32)
        self.runs = np.zeros((capacity, len(nasbench_data.EPOCHS)), np.int8)  # runs seen per budget
        self.source = np.zeros((capacity, 2), np.int64)  # (record or line number, byte offset) of first sight
        self.graph_text = {}  # row -> its first record's (adjacency, operations) strings

    def __len__(self):
        return len(self.hashes)

    def add(self, key, number, offset):
        """New row for hash `key`, first seen at record/line `number`, byte `offset`."""
        row = len(self.hashes)
        if row == len(self.num_vertices):
            self._grow()
        self.row_of[key] = row
        self.hashes.append(key)
        self.source[row] = number, offset
        return row

    def _grow(self):
        for name, fill in [("num_vertices", 0), ("trainable_parameters", -1), ("adjacency", 0),
                           ("operations", 0), ("metrics", np.nan), ("runs", 0), ("source", 0)]:
            old = getattr(self, name)
            setattr(self, name, np.concatenate([old, np.full_like(old, fill)]))

    def set_graph(self, row, matrix, ops):
        """Store a pruned graph (n x n matrix, n op names) padded to 7, output at vertex n-1."""
        matrix = np.asarray(matrix)
        n = len(ops)
        if matrix.shape != (n, n) or not 2 <= n <= search_space.MAX_VERTICES:
            raise ValueError(f"graph must be n x n with n op names, 2 <= n <= {search_space.MAX_VERTICES}; "
                             f"got a {matrix.shape} matrix and {n} ops")
        if not ((matrix == 0) | (matrix == 1)).all():
            raise ValueError("adjacency entries must be 0 or 1")
        self.num_vertices[row] = n
        self.adjacency[row, :n, :n] = matrix
        self.operations[row, :n] = search_space.ops_to_codes(ops)

    def arrays(self):
        """The HDF5 datasets, rows sorted by hash."""
        hashes = np.array(self.hashes, dtype="S32")
        order = np.argsort(hashes, kind="stable")
        n = len(hashes)
        return {"hashes": hashes[order], "num_vertices": self.num_vertices[:n][order],
                "trainable_parameters": self.trainable_parameters[:n][order],
                "adjacency": self.adjacency[:n][order], "operations": self.operations[:n][order],
                "metrics": self.metrics[:n][order].reshape(n, *nasbench_data.METRICS_SHAPE)}


def graph_hashes(space, adjacency, operations, num_vertices):
    """Official hash of each pruned graph (output at n-1), read from the space's class table.

    `Space.lookup` wants the output at vertex 6, so vertices n-1.. are moved up and the
    gap is left as unconnected vertices, which it prunes away. b'' where not a valid cell.
    """
    n = num_vertices.astype(np.int64)[:, None]
    slot = np.arange(search_space.MAX_VERTICES)[None, :]
    last = search_space.MAX_VERTICES - 1
    source = np.where(slot < n - 1, slot, np.where(slot == last, n - 1, last))  # vertex 6 is padding if n < 7
    rows = np.arange(len(n))[:, None]
    index = space.lookup(adjacency[rows[:, :, None], source[:, :, None], source[:, None, :]],
                         operations[rows, source])
    return np.where(index >= 0, space.hashes[np.maximum(index, 0)], b"")


def _record_place(table, row):
    return f"record {table.source[row, 0]} at byte {table.source[row, 1]}"


def _line_place(table, row):
    return f"line {table.source[row, 0]}"


def verify_graphs(table, rows, space, place):
    """Raise ConversionError unless every graph in `rows` is a pruned cell whose hash is its key.

    The hashes are read from the space's class table when `space` is given (no MD5), else computed
    (search_space.hash_graphs; the same hashes). `place(table, row)` names where the row's graph came
    from (record and offset, or line).
    """
    hashes = np.array(table.hashes, dtype="S32")[rows]
    adjacency, operations = table.adjacency[rows], table.operations[rows]
    num_vertices = table.num_vertices[rows]
    bad = np.flatnonzero(search_space.malformed_graphs(adjacency, operations, num_vertices))
    if len(bad):
        i = bad[0]
        raise ConversionError(f"{place(table, rows[i])}: the graph of {hashes[i].decode()} is not a pruned "
                              "NAS-Bench-101 cell (upper-triangular 0/1 matrix, input first, output last, "
                              "every vertex on an input-output path)")
    too_many = np.flatnonzero(adjacency.sum(axis=(1, 2)) > search_space.MAX_EDGES)
    if len(too_many):
        i = too_many[0]
        raise ConversionError(f"{place(table, rows[i])}: the graph of {hashes[i].decode()} has more than "
                              f"{search_space.MAX_EDGES} edges")
    found = graph_hashes(space, adjacency, operations, num_vertices) if space is not None else \
        search_space.hash_graphs(adjacency, operations, num_vertices)
    bad = np.flatnonzero(found != hashes)
    if len(bad):
        i = bad[0]
        got = found[i].decode() or "none (not a valid cell: more than 9 edges?)"
        raise ConversionError(f"{place(table, rows[i])}: the graph's hash is {got}, "
                              f"but the key is {hashes[i].decode()}")


# ---------------------------------------------------------------------------
# readers


def read_tfrecord(path, space, skip_sha256=False, quiet=False):
    """Collect the rows of an official TFRecord file; returns (Architectures, number of records)."""
    size = os.path.getsize(path)
    official = OFFICIAL_FILES.get(os.path.basename(path))
    check_sha = (official is not None and not skip_sha256
                 and abs(size - official[1]) <= SIZE_TOLERANCE * official[1])
    digest = hashlib.sha256() if check_sha else None
    table = Architectures()
    count = -1
    with open(path, "rb") as raw:
        stream = _Sha256Reader(raw, digest) if digest else raw
        with tqdm(tfrecord_payloads(stream), total=official[2] if official else None, unit=" records",
                  unit_scale=True, mininterval=0.5, disable=quiet, desc=os.path.basename(path)) as records:
            for count, offset, payload in records:
                _add_record(table, count, offset, payload)
    if count < 0:
        raise ConversionError("the file holds no records")
    verify_graphs(table, np.arange(len(table)), space, _record_place)
    check_ranges(table, _record_place)
    _report_sha256(path, size, official, digest, skip_sha256, quiet)
    return table, count + 1


class _Sha256Reader:
    """File wrapper that feeds every byte read into a SHA256, so the file is read once."""

    def __init__(self, stream, digest):
        self.stream, self.digest = stream, digest

    def read(self, size):
        data = self.stream.read(size)
        self.digest.update(data)
        return data


def _add_record(table, number, offset, payload):
    """Decode one record's JSON row and ModelMetrics into its row of `table`."""
    try:
        key, epochs, raw_adjacency, raw_operations, raw_metrics = _JSON_DECODE(payload.decode())
        metrics = ModelMetrics.FromString(binascii.a2b_base64(raw_metrics, strict_mode=True))
    except (ValueError, TypeError, DecodeError) as e:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise ConversionError(f"record {number} at byte {offset}: malformed row ({type(e).__name__}: {e})") from None
    except RecursionError:
        raise ConversionError(f"record {number} at byte {offset}: malformed row (nested too deeply)") from None
    row = table.row_of.get(key) if isinstance(key, str) else None
    if row is None:
        if not _is_hash(key):
            raise ConversionError(f"record {number} at byte {offset}: {key!r} is not a module hash")
        row = table.add(key, number, offset)
        try:
            bits = [int(c) for c in raw_adjacency]
            dim = math.isqrt(len(bits))
            table.set_graph(row, np.reshape(bits, (dim, dim)), raw_operations.split(","))
        except (ValueError, TypeError, AttributeError) as e:
            raise ConversionError(f"record {number} at byte {offset}: malformed graph ({e})") from None
        table.graph_text[row] = (raw_adjacency, raw_operations)
        if metrics.HasField("trainable_parameters"):
            try:
                table.trainable_parameters[row] = checked_parameters(metrics.trainable_parameters)
            except ConversionError as e:
                raise ConversionError(f"record {number} at byte {offset}: {e}") from None
    elif table.graph_text.get(row) != (raw_adjacency, raw_operations):
        raise ConversionError(f"record {number} at byte {offset}: hash {key} with another graph than its first "
                              f"record ({_record_place(table, row)})")
    budget = EPOCH_INDEX.get(epochs) if isinstance(epochs, int) else None
    if budget is None:
        raise ConversionError(f"record {number} at byte {offset}: {epochs!r} epochs is not one of "
                              f"{nasbench_data.EPOCHS}")
    run = table.runs[row, budget]
    if run == nasbench_data.NUM_RUNS:
        raise ConversionError(f"record {number} at byte {offset}: more than {nasbench_data.NUM_RUNS} runs of "
                              f"{key} at {epochs} epochs")
    table.runs[row, budget] = run + 1
    table.metrics[row, budget, run] = run_metric_values(metrics)


def _report_sha256(path, size, official, digest, skip_sha256, quiet):
    """Compare the streamed SHA256 with the official one (error if it differs) and say what was checked."""
    name = os.path.basename(path)
    if digest is not None:
        if digest.hexdigest() != official[0]:
            raise ConversionError(f"{path}: SHA256 {digest.hexdigest()} is not that of the official {name} "
                                  f"({official[0]}); the file is damaged or not the release. "
                                  "Re-download it, or pass --skip-sha256 to convert it anyway")
        message = f"SHA256 of {name} matches the official release ({official[0][:16]}...)"
    elif official is None:
        message = f"SHA256 not checked: {name} is not an official file name"
    elif skip_sha256:
        message = "SHA256 not checked (--skip-sha256)"
    else:
        message = (f"SHA256 not checked: {size:,} bytes is not the size of the official {name} "
                   f"(about {official[1]:,.0f})")
    if not quiet:
        print(message)


def read_jsonl(path, quiet=False):
    """Collect the rows of a hash-keyed jsonl file (gzip-compressed or not); returns (Architectures, number of rows).

    The graphs it carries are checked against their hashes; rows without one take it from the enumerated space,
    which is built (or loaded) only then."""
    table = Architectures()
    with_graph = []
    opened = gzip.open(path) if file_format(path) == "jsonl.gz" else open(path, "rb")
    with opened as f, tqdm(f, unit=" rows", unit_scale=True, mininterval=0.5, disable=quiet,
                           desc=os.path.basename(path)) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                _add_json_row(table, json.loads(line), number, with_graph)
            except ConversionError as e:
                raise ConversionError(f"line {number}: {e}") from None
            except (ValueError, TypeError, AttributeError, KeyError) as e:
                raise ConversionError(f"line {number}: malformed row ({type(e).__name__}: {e})") from None
            except RecursionError:
                raise ConversionError(f"line {number}: malformed row (nested too deeply)") from None
    if not len(table):
        raise ConversionError(f"{path} holds no rows")
    with_graph = np.array(with_graph, dtype=np.int64)
    cached = search_space.load_space_cache(search_space.default_space_cache())
    verify_graphs(table, with_graph, cached, _line_place)
    check_ranges(table, _line_place)
    without = np.setdiff1d(np.arange(len(table)), with_graph)
    if len(without):
        _graphs_from_space(table, without, cached or search_space.enumerate_space(progress=not quiet))
    return table, len(table)


def _add_json_row(table, record, number, with_graph):
    """One jsonl row into `table`; appends its row to `with_graph` when it carries a graph."""
    key = record["hash"]
    if not _is_hash(key):
        raise ConversionError(f"{key!r} is not a module hash (32 lowercase hex digits)")
    if key in table.row_of:
        raise ConversionError(f"hash {key} already appeared on line {table.source[table.row_of[key], 0]}")
    row = table.add(key, number, 0)
    if "module_adjacency" in record or "module_operations" in record:
        table.set_graph(row, record["module_adjacency"], record["module_operations"])
        with_graph.append(row)
    if record.get("trainable_parameters") is not None:
        table.trainable_parameters[row] = checked_parameters(record["trainable_parameters"])
    for epochs, runs in record.get("computed_stats", {}).items():
        budget = EPOCH_INDEX.get(int(epochs))
        if budget is None:
            raise ConversionError(f"{epochs!r} epochs is not one of {nasbench_data.EPOCHS}")
        if len(runs) > nasbench_data.NUM_RUNS:
            raise ConversionError(f"{len(runs)} runs at {epochs} epochs, at most {nasbench_data.NUM_RUNS}")
        for run, stats in enumerate(runs):
            for name, value in stats.items():
                if name not in RUN_KEYS:
                    raise ConversionError(f"unknown run statistic {name!r}; known: {sorted(RUN_KEYS)}")
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise ConversionError(f"{name} is {value!r}, not a number")
                table.metrics[row, budget, run, RUN_KEYS[name]] = math.nan if value is None else float(value)


def check_ranges(table, place):
    """ConversionError naming the first row (by `place`) whose run statistics are out of range: accuracies must
    be in [0, 1], training times finite and non-negative, or absent (NaN). One pass over all rows at once."""
    metrics = table.metrics[:len(table)]
    names = [f"{c}_{f}" for c in nasbench_data.CHECKPOINTS for f in nasbench_data.FIELDS]
    accuracy = np.array(["accuracy" in name for name in names])
    with np.errstate(invalid="ignore"):
        bad = np.where(accuracy, ~((metrics >= 0) & (metrics <= 1)), ~((metrics >= 0) & np.isfinite(metrics)))
    bad &= ~np.isnan(metrics)
    if bad.any():
        row, budget, run, column = np.argwhere(bad)[0]
        value = float(metrics[row, budget, run, column])
        hint = " (a percentage? accuracies are fractions)" if accuracy[column] and 1 < value <= 100 else ""
        raise ConversionError(f"{place(table, row)}: {names[column]} of run {run + 1} at "
                              f"{nasbench_data.EPOCHS[budget]} epochs is {value:g}, outside "
                              f"{'[0, 1]' if accuracy[column] else 'the non-negative numbers'}{hint}")


def checked_parameters(value):
    """trainable_parameters as an int: ConversionError unless a non-negative integer below MAX_PARAMETERS."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or \
            (isinstance(value, float) and not value.is_integer()) or not 0 <= value < MAX_PARAMETERS:
        raise ConversionError(f"trainable_parameters is {value!r}, not a non-negative integer below "
                              f"{MAX_PARAMETERS:,}")
    return int(value)


def _graphs_from_space(table, rows, space):
    """Fill the graphs of `rows` from the enumerated space by hash; unknown hash is an error."""
    order = np.argsort(space.hashes)
    keys = np.array(table.hashes, dtype="S32")[rows]
    pos = np.minimum(np.searchsorted(space.hashes, keys, sorter=order), len(order) - 1)
    index = order[pos]
    unknown = np.flatnonzero(space.hashes[index] != keys)
    if len(unknown):
        i = unknown[0]
        raise ConversionError(f"{_line_place(table, rows[i])}: hash {keys[i].decode()} is not in the "
                              "NAS-Bench-101 space (and the row has no graph)")
    table.num_vertices[rows] = space.num_vertices[index]
    table.adjacency[rows] = space.adjacency[index]
    table.operations[rows] = space.operations[index]


def _is_hash(key):
    return isinstance(key, str) and len(key) == 32 and all(c in "0123456789abcdef" for c in key)


# ---------------------------------------------------------------------------


# leading bytes of the formats recognised by content, whatever the file is called
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
COMPRESSED_SIGNATURES = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip"}


def file_format(path):
    """'hdf5', 'jsonl', 'jsonl.gz' or 'tfrecord', read from the file's first bytes (not its name).

    A JSON object on the first non-blank line (or blank lines only) makes jsonl; anything else not HDF5 is taken
    as TFRecord, whose first record's CRC then tells whether it is one. ConversionError for
    another compressed file.
    """
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(HDF5_SIGNATURE):
        return "hdf5"
    if head.startswith(b"\x1f\x8b"):  # gzip: jsonl is read compressed (the shipped sample is)
        try:
            with gzip.open(path) as f:
                inner = f.read(4096).lstrip()
        except (OSError, EOFError) as e:
            raise ConversionError(f"a damaged gzip file ({e})") from None
        if inner.startswith(b"{") or not inner:
            return "jsonl.gz"
    for signature, name in COMPRESSED_SIGNATURES.items():
        if head.startswith(signature):
            raise ConversionError(f"a {name}-compressed file that is not jsonl; decompress it first")
    text = head.lstrip()
    return "jsonl" if text.startswith(b"{") or (head and not text) else "tfrecord"  # blank lines only: jsonl


def check_sample():
    """ConversionError when the shipped sample's bytes are not those it was shipped with."""
    with open(SAMPLE, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != SAMPLE_SHA256:
        raise ConversionError(f"the shipped sample {SAMPLE} is damaged (SHA256 {digest[:16]}..., expected "
                              f"{SAMPLE_SHA256[:16]}...); restore it: git checkout -- nb101/data")


def check_not_empty(path, kind):
    """ConversionError, before any work, for a file without a record or row."""
    with (gzip.open(path) if kind == "jsonl.gz" else open(path, "rb")) as f:
        if kind.startswith("jsonl"):
            if not any(line.strip() for line in f):
                raise ConversionError(f"{path} holds no rows")
        elif not f.read(1):
            raise ConversionError("the file holds no records")


def convert(input_path, output_path, skip_sha256=False, quiet=False):
    """Convert `input_path` (official TFRecord or jsonl, told apart by content) to the HDF5 at `output_path`.

    Returns a summary dict: architectures, count and unit (records or rows), seconds,
    runs_per_budget. Raises ConversionError naming the record or line and saying why.
    """
    if os.path.isdir(input_path):
        raise ConversionError("is a directory; give the .tfrecord or .jsonl file")
    if not os.path.isfile(input_path):
        raise ConversionError(f"file not found; {DOWNLOAD_HINT}")
    kind = file_format(input_path)
    if kind == "hdf5":
        raise ConversionError("is already an HDF5 file; nothing to convert")
    check_not_empty(input_path, kind)
    if os.path.realpath(input_path) == os.path.realpath(SAMPLE):
        check_sample()
    # a lower bound of the HDF5's size (about a tenth of a TFRecord, half of a jsonl or more), checked before
    # the minutes of reading; the exact size is checked again before writing
    nasbench_data.require_free_space(output_path, os.path.getsize(input_path) // {"tfrecord": 12, "jsonl": 3}.get(
        kind, 1), "the HDF5")
    start = time.time()
    if kind.startswith("jsonl"):
        (table, count), unit = read_jsonl(input_path, quiet), "rows"
    else:
        space = search_space.enumerate_space(progress=not quiet)
        (table, count), unit = read_tfrecord(input_path, space, skip_sha256, quiet), "records"
    arrays = table.arrays()
    nasbench_data.write_hdf5(output_path, **arrays)
    seconds = time.time() - start
    runs = np.isfinite(arrays["metrics"]).any(axis=(3, 4)).sum(axis=(0, 2))
    return {"architectures": len(table), "count": count, "unit": unit, "seconds": seconds,
            "runs_per_budget": dict(zip(nasbench_data.EPOCHS, runs.tolist()))}
