#!/usr/bin/env bash
# The main job end to end: NAS-Bench-101 data -> data/nasbench.hdf5 + data/train.npz -> train.py (172/all).
# Uses the 20,001-architecture sample shipped in nb101/data unless an official file is given:
#   bash run.sh                                  # the shipped sample (about 10 s)
#   bash run.sh data/nasbench_only108.tfrecord   # the official file, when you have it
set -euo pipefail
cd "$(dirname "$0")"
INPUT="${1:-nb101/data/labels_20k.jsonl.gz}"
python tools/nasbench_tfrecord_converter.py --input "$INPUT" --output data/nasbench.hdf5
python tools/split_train_val.py --data data/nasbench.hdf5 --output data/train.npz
python train.py --visualize --output_dir results/train_172_all
