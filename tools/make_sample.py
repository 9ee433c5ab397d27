"""Write nb101/data/labels_20k.jsonl.gz, the 20,001-architecture sample that the project ships.

    python tools/make_sample.py                     # from ../shared/nb101/labels_20k.jsonl

The rows of the public export (see nb101/data/README.md), unchanged, with the graph of every
row filled in from the enumerated space (the export has it for the first 1,000 only), so that
converting the sample needs no enumeration. Written deterministically (gzip without a time
stamp), so that the same input gives the same bytes and the same SHA256 (nb101.SAMPLE_SHA256).
"""
import argparse
import gzip
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import nb101  # noqa: E402
from nb101 import nasbench_data, search_space  # noqa: E402

SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "nb101",
                      "labels_20k.jsonl")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", default=SOURCE)
    parser.add_argument("--output", default=nb101.SAMPLE)
    args = parser.parse_args(argv)
    space = search_space.enumerate_space()
    index = {h: i for i, h in enumerate(space.hashes.astype(str).tolist())}
    lines = []
    with open(args.input) as f:
        for line in f:
            row = json.loads(line)
            if "module_adjacency" not in row:
                i = index[row["hash"]]
                n = int(space.num_vertices[i])
                filled = {"hash": row["hash"], "module_adjacency": space.adjacency[i, :n, :n].tolist(),
                          "module_operations": search_space.codes_to_ops(space.operations[i, :n])}
                row = {**filled, **{k: v for k, v in row.items() if k != "hash"}}
            lines.append(json.dumps(row))
    with nasbench_data.atomic_output(args.output) as tmp:
        with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
            f.write(("\n".join(lines) + "\n").encode())
    digest = hashlib.sha256(open(args.output, "rb").read()).hexdigest()
    print(f"wrote {args.output}: {len(lines):,} rows, {os.path.getsize(args.output):,} bytes, SHA256 {digest}")


if __name__ == "__main__":
    main()
