#!/usr/bin/env bash
# The main job end to end: NAS-Bench-101 data -> data/nasbench.hdf5 + data/train.npz -> train.py (172/all).
# Uses ../shared/nb101/labels_20k.jsonl unless an official file is given:
#   bash run.sh                                  # the 20,001-architecture sample
#   bash run.sh data/nasbench_only108.tfrecord   # the official file, when you have it
set -euo pipefail
cd "$(dirname "$0")"
INPUT="${1:-../shared/nb101/labels_20k.jsonl}"
python tools/nasbench_tfrecord_converter.py --input "$INPUT" --output data/nasbench.hdf5
python tools/split_train_val.py --data data/nasbench.hdf5 --output data/train.npz
python train.py --visualize --output_dir results/train_172_all
