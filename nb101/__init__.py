"""nb101: the NAS-Bench-101 layer of the Neural Predictor reproduction, without TensorFlow.

    from nb101 import api            # the official nasbench API: NASBench, ModelSpec, query, ...

Modules:
  api            NASBench, ModelSpec, OutOfDomainError: google-research/nasbench's API, TF-free
  search_space   pruning, validity, the official module hash, the 423,624 cells, mutation
  records        official TFRecord and jsonl reading, conversion to the checked HDF5
  nasbench_data  the HDF5 schema and its checks, labels, split files, atomic output
"""
import os

__version__ = "0.1.0"
# the 20,001-architecture sample of NAS-Bench-101 shipped with the package (nb101/data/README.md: source, licence)
SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "labels_20k.jsonl.gz")
SAMPLE_SHA256 = "7bf046865c22fe2235dc84baf32b289ba4e8f50022ce5d70a6d04903cc3f7a45"
