"""The Neural Predictor's search in about 30 lines: query N random cells, fit, predict the rest, query the top K.

    python examples/search_loop.py                        # on data/nasbench.hdf5 (bash run.sh makes it)
    python examples/search_loop.py data/nasbench_only108.tfrecord 172 100
"""
import os
import random
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root
from nb101 import api  # noqa: E402
from predictor import NeuralPredictor  # noqa: E402

path = sys.argv[1] if len(sys.argv) > 1 else "data/nasbench.hdf5"
num_train, top_k = (int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (172, 100)
nasbench = api.NASBench(path, seed=0, verbose=False)
pool = list(nasbench.hash_iterator())

# 1. train N random cells (a query each) and fit the predictor on their validation accuracies
trained = random.Random(0).sample(pool, num_train)
queried = nasbench.query_batch(trained)
predictor = NeuralPredictor("faithful", seed=0).fit(trained, queried["validation_accuracy"])

# 2. predict the rest of the pool, train the K best-predicted, keep the best by validation accuracy
rest = sorted(set(pool) - set(trained))
predicted = predictor.predict(rest)
best_k = [rest[i] for i in np.argsort(-predicted)[:top_k]]
queried_k = nasbench.query_batch(best_k)
hashes = np.concatenate([queried["hash"], queried_k["hash"]])
accuracy = np.concatenate([queried["validation_accuracy"], queried_k["validation_accuracy"]])
best = int(np.argmax(accuracy))

seconds, epochs = nasbench.get_budget_counters()
print(f"best of {len(hashes)} trained cells: {hashes[best]}, validation accuracy {accuracy[best]:.4f} "
      f"(the pool's best: {np.nanmax(nasbench.arrays()['metrics'][:, -1, :, 1, 2]):.4f})")
print(f"budget spent: {seconds / 3600:.1f} hours of training, {epochs:,} epochs")
