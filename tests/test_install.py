"""`pip install` of the checkout into a fresh virtual environment, and the API used from another folder.

The environment sees the machine's packages (--system-site-packages), so the dependencies
are found installed; pip builds the package as a user's pip does (setuptools from the index).
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

import official_format

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# a script written for the official API, with only its import changed
OFFICIAL_STYLE = textwrap.dedent("""
    import sys
    from nb101 import api

    nasbench = api.NASBench(sys.argv[1], seed=0)
    fixed, computed = nasbench.get_metrics_from_hash(sys.argv[2])
    spec = api.ModelSpec(matrix=fixed["module_adjacency"], ops=fixed["module_operations"])
    data = nasbench.query(spec)
    print("RESULT", repr((api.__file__, data["validation_accuracy"], data["trainable_parameters"],
                          nasbench.get_budget_counters(), computed[108][2]["final_test_accuracy"])))
""")


def _venv(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    return venv / "bin" / "python"


def _site_packages(python):
    return subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.mark.slow
@pytest.mark.parametrize("editable", [False, True], ids=["install", "editable"])
def test_pip_install_and_use_from_another_folder(tmp_path, complete_records_path, editable):
    python = _venv(tmp_path)
    target = ["-e", ROOT] if editable else [ROOT]
    subprocess.run([str(python), "-m", "pip", "install", "-q", *target], check=True,
                   cwd=tmp_path, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    if not editable:  # only nb101 lands in site-packages: no model.py, cli.py or other generic names
        installed = {name for name in os.listdir(_site_packages(python)) if name.lower().startswith("nb101")}
        assert "nb101" in installed
        new_top_level = {name for name in os.listdir(_site_packages(python))
                         if name.endswith(".py") or name in ("model", "cli", "dataset", "tools", "tests")}
        assert not new_top_level & {"model.py", "cli.py", "dataset.py", "train.py", "tools", "tests"}

    with open(complete_records_path) as f:
        row = json.loads(f.readline())
    tfrecord = tmp_path / "records.tfrecord"
    official_format.write_tfrecord(tfrecord, [p for *_, p in official_format.record_payloads(row)])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "official_style.py").write_text(OFFICIAL_STYLE)
    env = {**os.environ, "NB101_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": ""}
    out = subprocess.run([str(python), "official_style.py", str(tfrecord), row["hash"]], cwd=elsewhere, env=env,
                         check=True, capture_output=True, text=True).stdout
    module, accuracy, parameters, counters, test_accuracy = eval(out.split("RESULT ", 1)[1])
    assert module.startswith(ROOT if editable else str(tmp_path / "venv"))
    first_draw = __import__("random").Random(0).randint(0, 2)
    run = row["computed_stats"]["108"][first_draw]
    assert accuracy == run["final_validation_accuracy"] and parameters == row["trainable_parameters"]
    assert counters == (run["final_training_time"], 108)
    assert test_accuracy == row["computed_stats"]["108"][2]["final_test_accuracy"]
