"""Convert NAS-Bench-101 results to data/nasbench.hdf5, without TensorFlow.

    python tools/nasbench_tfrecord_converter.py                                           # the shipped sample
    python tools/nasbench_tfrecord_converter.py --input data/nasbench_full.tfrecord
    python tools/nasbench_tfrecord_converter.py --input data/nasbench_only108.tfrecord --output data/only108.hdf5

Inputs, told apart by their content: an official release file (.tfrecord: both CRC32Cs of
every record checked; an official file name and size also has its SHA256 checked, unless
--skip-sha256) or hash-keyed jsonl records, plain or gzip-compressed (a row without a graph
takes it from the enumerated search space). The default input is the 20,001-architecture
sample shipped in nb101/data (its SHA256 checked). Every graph is checked against its hash. The reading lives in
nb101.records; nothing is written unless the whole input converts.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import nb101  # noqa: E402
from nb101 import nasbench_data  # noqa: E402
from nb101.records import ConversionError, convert  # noqa: E402



def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", default=nb101.SAMPLE,
                        help="official .tfrecord or hash-keyed .jsonl[.gz] (default: the shipped sample)")
    parser.add_argument("--output", default=nasbench_data.DEFAULT_HDF5)
    parser.add_argument("--skip-sha256", action="store_true", help="do not check an official file's SHA256")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    args = parser.parse_args(argv)
    try:
        nasbench_data.check_output_file(args.output, args.input)
    except nasbench_data.DataError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        with nasbench_data.interruptible():
            summary = convert(args.input, args.output, args.skip_sha256, args.quiet)
    except ConversionError as e:
        raise SystemExit(f"error: {args.input}: {e}") from None
    except nasbench_data.DataError as e:  # the output could not be written: a full disk, a vanished folder
        raise SystemExit(f"error: {e}") from None
    if not args.quiet:
        count, unit, seconds = summary["count"], summary["unit"], summary["seconds"]
        print(f"wrote {args.output}: {summary['architectures']:,} architectures from {count:,} {unit} in "
              f"{seconds:.1f}s ({count / seconds:,.0f} {unit}/s); runs per budget {summary['runs_per_budget']}")


if __name__ == "__main__":
    main()
