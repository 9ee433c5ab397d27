"""Test helper: write NAS-Bench-101 records in the official TFRecord format, independently of the converter.

The framing, the masked CRC32C and the ModelMetrics protobuf wire format are written here
by hand from the spec in ../shared/REFERENCE.md, so that a converter bug (a wrong field
number, a wrong CRC mask) cannot cancel out against the same bug in the writer.
"""
import base64
import json
import struct

import crc32c

EPOCHS = (4, 12, 36, 108)
FIELD_NUMBERS = {"training_time": 2, "train_accuracy": 3, "validation_accuracy": 4, "test_accuracy": 5}


def masked_crc32c(data):
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) % (1 << 32)


def frame(payload):
    """length (uint64 LE), masked CRC of the length, payload, masked CRC of the payload."""
    length = struct.pack("<Q", len(payload))
    return length + struct.pack("<I", masked_crc32c(length)) + payload + struct.pack("<I", masked_crc32c(payload))


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _double(number, value):
    return _varint(number << 3 | 1) + struct.pack("<d", value)


def _evaluation_data(epoch, values):
    """EvaluationData: current_epoch = 1, then the given {field name: value} (fixed64 doubles)."""
    body = _double(1, epoch) + b"".join(_double(FIELD_NUMBERS[k], v) for k, v in values.items())
    return _varint(1 << 3 | 2) + _varint(len(body)) + body


def model_metrics(epochs, run, trainable_parameters):
    """Serialized ModelMetrics for one run dict of the jsonl schema ({'halfway_train_accuracy': ..})."""
    halfway = {k[len("halfway_"):]: v for k, v in run.items() if k.startswith("halfway_")}
    final = {k[len("final_"):]: v for k, v in run.items() if k.startswith("final_")}
    return (_evaluation_data(0.0, {}) + _evaluation_data(epochs / 2, halfway) + _evaluation_data(epochs, final)
            + _varint(2 << 3 | 0) + _varint(trainable_parameters) + _double(3, 1234.5))


def payload(key, epochs, adjacency, operations, metrics_bytes):
    """The JSON row of one record: [hash, epochs, '0101..', 'input,..,output', base64 metrics]."""
    raw_adjacency = "".join(str(int(b)) for row in adjacency for b in row)
    return json.dumps([key, epochs, raw_adjacency, ",".join(operations),
                       base64.b64encode(metrics_bytes).decode("ascii")]).encode("utf-8")


def record_payloads(row):
    """[(hash, epochs, run, payload)] of every run of a complete_records.jsonl row, budgets ascending."""
    out = []
    for epochs in EPOCHS:
        for run_index, run in enumerate(row["computed_stats"].get(str(epochs), [])):
            metrics = model_metrics(epochs, run, row["trainable_parameters"])
            out.append((row["hash"], epochs, run_index,
                        payload(row["hash"], epochs, row["module_adjacency"], row["module_operations"], metrics)))
    return out


def write_tfrecord(path, payloads):
    with open(path, "wb") as f:
        for p in payloads:
            f.write(frame(p))
