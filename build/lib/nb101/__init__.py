"""nb101: the NAS-Bench-101 layer of the Neural Predictor reproduction, without TensorFlow.

    from nb101 import api            # the official nasbench API: NASBench, ModelSpec, query, ...

Modules:
  api            NASBench, ModelSpec, OutOfDomainError: google-research/nasbench's API, TF-free
  search_space   pruning, validity, the official module hash, the 423,624 cells, mutation
  records        official TFRecord and jsonl reading, conversion to the checked HDF5
  nasbench_data  the HDF5 schema and its checks, labels, split files, atomic output
"""
__version__ = "0.1.0"
