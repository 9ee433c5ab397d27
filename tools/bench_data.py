"""Benchmark the data layer: enumeration, cache load, the converter on jsonl and TFRecord input, and nb101.api.

    python tools/bench_data.py                     # full size: 5,083,488 records, a ~2 GB temporary file
    python tools/bench_data.py --records 500000    # quicker

Times (a) enumerating the space from scratch into a temporary cache and loading that
cache, (b) converting ../shared/nb101/labels_20k.jsonl, (c) writing an official-format
TFRecord from the enumerated space (real hashes and graphs, 4 budgets x 3 runs each;
its METRIC VALUES ARE MADE UP, for timing only, never results) and converting it, (d) the
API on that file: `NASBench(tfrecord)`'s first load (its conversion into the cache),
`NASBench(hdf5)`'s load, 10,000 `query` calls on the specs of 10,000 random hashes, and
`get_metrics_from_hash` over every hash. Each step runs in its own process so its peak RSS
can be measured; times are wall-clock and include starting Python, except where a row says
"in-process". Prints a Markdown table; temporary files are removed.
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from tqdm import tqdm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from nb101 import nasbench_data  # noqa: E402
from nb101 import search_space  # noqa: E402
from nb101 import api, records  # noqa: E402

CONVERTER = os.path.join(ROOT, "tools", "nasbench_tfrecord_converter.py")
LABELS_20K = os.path.join(ROOT, "..", "shared", "nb101", "labels_20k.jsonl")
FULL_RECORDS = search_space.NUM_ARCHITECTURES * len(nasbench_data.EPOCHS) * nasbench_data.NUM_RUNS
ENUMERATE = ("import sys, time; sys.path.insert(0, sys.argv[1]); from nb101 import search_space; t = time.time(); "
             "search_space.enumerate_space(sys.argv[2], progress=False); print(time.time() - t)")
API_STEP = "import sys; sys.path.insert(0, sys.argv[1]); from tools import bench_data; bench_data.api_step(*sys.argv[2:])"
QUERIES = 10_000


def api_step(step, path, cache_dir):
    """One API measurement, printed as in-process seconds: 'load' (NASBench(path)), or 'use' (QUERIES query calls,
    then get_metrics_from_hash over every hash, on an object loaded first)."""
    start = time.time()
    nasbench = api.NASBench(path, seed=0, cache_dir=cache_dir, verbose=False)
    if step == "load":
        print(time.time() - start)
        return
    hashes = list(nasbench.hash_iterator())
    specs = []
    for i in np.random.RandomState(0).choice(len(hashes), QUERIES):
        fixed = nasbench.fixed_statistics[hashes[i]]
        specs.append(api.ModelSpec(fixed["module_adjacency"], fixed["module_operations"]))
    start = time.time()
    for spec in specs:
        nasbench.query(spec)
    queries = time.time() - start
    start = time.time()
    for module_hash in hashes:
        nasbench.get_metrics_from_hash(module_hash)
    print(queries, time.time() - start)


def run_measured(command):
    """Run a command; returns (stdout, wall seconds, peak RSS in MB) of that process."""
    start = time.time()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.time() - start
    if process.returncode != 0:
        raise SystemExit(f"benchmark step failed (exit {process.returncode}): {' '.join(command)}")
    return stdout, seconds, usage.ru_maxrss / 1024


def made_up_metrics(count, seed=0):
    """`count` base64 ModelMetrics blobs with random values: FOR TIMING ONLY, not NAS-Bench-101 results."""
    rng = np.random.RandomState(seed)
    blobs = []
    for _ in range(count):
        metrics = records.ModelMetrics(trainable_parameters=int(rng.randint(200_000, 50_000_000)),
                                         total_time=float(rng.uniform(100, 5000)))
        for epoch in (0.0, 54.0, 108.0):
            metrics.evaluation_data.add(current_epoch=epoch, training_time=float(rng.uniform(0, 5000)),
                                        train_accuracy=float(rng.uniform()), validation_accuracy=float(rng.uniform()),
                                        test_accuracy=float(rng.uniform()))
        blobs.append(base64.b64encode(metrics.SerializeToString()).decode("ascii"))
    return blobs


def write_synthetic_tfrecord(path, space, count, quiet=False):
    """Official-format file of `count` records: real hashes and graphs, made-up metrics."""
    blobs = made_up_metrics(256)
    names = {search_space.INPUT_CODE: "input", search_space.OUTPUT_CODE: "output", **dict(enumerate(search_space.OPS))}
    per_architecture = len(nasbench_data.EPOCHS) * nasbench_data.NUM_RUNS
    written = 0
    with open(path, "wb", buffering=1 << 22) as f, \
            tqdm(total=count, unit=" records", unit_scale=True, disable=quiet, desc="write") as bar:
        for i in range(-(-count // per_architecture)):
            n = int(space.num_vertices[i])
            key = space.hashes[i].decode()
            adjacency = "".join(map(str, space.adjacency[i, :n, :n].ravel().tolist()))
            operations = ",".join(names[c] for c in space.operations[i, :n].tolist())
            batch = []
            for epochs in nasbench_data.EPOCHS:
                for run in range(nasbench_data.NUM_RUNS):
                    if written + len(batch) == count:
                        break
                    blob = blobs[(i + run + epochs) % len(blobs)]
                    batch.append(records.frame_record(
                        json.dumps([key, epochs, adjacency, operations, blob]).encode()))
            f.write(b"".join(batch))
            written += len(batch)
            bar.update(len(batch))


def api_rows(tfrecord, cache_dir, hdf5):
    """Table rows of the API's steps on a TFRecord and on its HDF5."""
    step = [sys.executable, "-c", API_STEP, ROOT]
    _, seconds, rss = run_measured(step + ["load", tfrecord, cache_dir])
    rows = [("`NASBench(tfrecord)`, first load: converts into the cache", seconds, "", rss)]
    out, seconds, rss = run_measured(step + ["load", hdf5, cache_dir])
    rows.append(("`NASBench(hdf5)` load (in-process time; whole process in the next column)", float(out),
                 f"{seconds:.1f} s whole process", rss))
    out, _, _ = run_measured(step + ["use", hdf5, cache_dir])
    queries, metrics = map(float, out.split())
    rows.append((f"{QUERIES:,} `query` calls (in-process)", queries, f"{QUERIES / queries:,.0f} queries/s", None))
    rows.append(("`get_metrics_from_hash` over every hash (in-process)", metrics, "", None))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=FULL_RECORDS,
                        help=f"records in the synthetic TFRecord (default {FULL_RECORDS:,}: the full space)")
    parser.add_argument("--tmpdir", default=None, help="where to put the temporary files (default: system temp)")
    parser.add_argument("--skip-enumeration", action="store_true", help="do not time building the space")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.records <= FULL_RECORDS:
        parser.error(f"--records must be between 1 and {FULL_RECORDS:,}")
    if args.tmpdir is not None and (not os.path.isdir(args.tmpdir) or nasbench_data.directory_problem(args.tmpdir)):
        parser.error(f"--tmpdir {args.tmpdir}: not a writable directory")
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmpdir, prefix="bench_data.") as tmp:
        if not args.skip_enumeration:
            cache = os.path.join(tmp, "space.npz")
            out, _, rss = run_measured([sys.executable, "-c", ENUMERATE, ROOT, cache])
            rows.append(("enumerate the space from scratch (in-process time)", float(out), "", rss))
            out, _, rss = run_measured([sys.executable, "-c", ENUMERATE, ROOT, cache])
            rows.append(("load the space cache (in-process time)", float(out), "", rss))

        convert = [sys.executable, CONVERTER, "--quiet", "--output", os.path.join(tmp, "out.hdf5"), "--input"]
        if os.path.exists(LABELS_20K):
            _, seconds, rss = run_measured(convert + [LABELS_20K])
            rows.append(("convert labels_20k.jsonl (20,001 rows)", seconds, f"{20001 / seconds:,.0f} rows/s", rss))

        space = search_space.enumerate_space(progress=not args.quiet)
        tfrecord = os.path.join(tmp, "synthetic_full.tfrecord")
        start = time.time()
        write_synthetic_tfrecord(tfrecord, space, args.records, args.quiet)
        seconds = time.time() - start
        size = os.path.getsize(tfrecord)
        rows.append((f"write a synthetic TFRecord ({args.records:,} records, {size / 1e9:.2f} GB, made-up metrics)",
                     seconds, f"{args.records / seconds:,.0f} records/s", None))
        del space
        _, seconds, rss = run_measured(convert + [tfrecord])
        rows.append((f"convert that TFRecord ({args.records:,} records)", seconds,
                     f"{args.records / seconds:,.0f} records/s", rss))
        rows += api_rows(tfrecord, os.path.join(tmp, "api_cache"), os.path.join(tmp, "out.hdf5"))
    print("\n| step | seconds | rate | peak RSS (MB) |\n|---|---:|---:|---:|")
    for name, seconds, rate, rss in rows:
        print(f"| {name} | {seconds:.1f} | {rate} | {'' if rss is None else f'{rss:,.0f}'} |")


if __name__ == "__main__":
    main()
