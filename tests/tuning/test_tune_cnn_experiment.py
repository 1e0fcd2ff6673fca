"""``experiments/tune_cnn.py`` end to end, at its smallest: a search, the comparison with
simple_cnn, and the report."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST), reason="needs Debian's Fashion-MNIST files")
def test_the_quick_experiment_compares_the_best_found_cnn_with_simple_cnn(tmp_path):
    command = [sys.executable, os.path.join("experiments", "tune_cnn.py"), "--quick",
               "--tuner", "random", "--max-trials", "2", "--epochs", "1", "--out", str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-3000:]
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "- Command: " in report and "- Hardware: " in report and "## Verdicts" in report
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    search = results["results"]["Search"][0]
    assert search["trials"] == search["completed"] == 2
    models = {row["model"]: row for row in results["results"]["Same budget: 1 epochs, 1 seed(s)"]}
    assert models["simple_cnn"]["parameters"] == 421_642
    for row in models.values():
        assert 10.0 < float(row["test accuracy (%)"]) <= 100.0
    assert results["claims"][0]["verdict"] in ("holds", "does not hold", "inconclusive")
