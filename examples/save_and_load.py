"""Train a predictor, save it, load it in a new process: the same predictions, bit for bit.

    python examples/save_and_load.py                 # on data/nasbench.hdf5 (bash run.sh makes it)
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root
from nb101 import api  # noqa: E402
from predictor import NeuralPredictor  # noqa: E402

path = sys.argv[1] if len(sys.argv) > 1 else "data/nasbench.hdf5"
nasbench = api.NASBench(path, verbose=False)
hashes = list(nasbench.hash_iterator())
train, test = hashes[:200], hashes[200:1200]
accuracies = [nasbench.get_metrics_from_hash(h)[1][108][0]["final_validation_accuracy"] for h in train]

predictor = NeuralPredictor("improved", epochs=50).fit(train, accuracies)
before = predictor.predict(test)
with tempfile.TemporaryDirectory() as folder:
    predictor.save(f"{folder}/model.pt")
    np.save(f"{folder}/test.npy", np.array(test))
    # a new Python process loads the checkpoint and predicts the same cells
    script = (f"import numpy as np; from predictor import NeuralPredictor; "
              f"p = NeuralPredictor.load('{folder}/model.pt'); "
              f"np.save('{folder}/after.npy', p.predict(list(np.load('{folder}/test.npy'))))")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=sys.path[0])
    after = np.load(f"{folder}/after.npy")
print(f"{len(test)} predictions before saving and after loading in a new process: "
      f"{'identical, bit for bit' if np.array_equal(before, after) else 'DIFFERENT'}")
sys.exit(0 if np.array_equal(before, after) else 1)
