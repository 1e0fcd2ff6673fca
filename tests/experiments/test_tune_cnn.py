"""experiments/tune_cnn.py at its smallest: a search, the comparison of the best configuration
found with simple_cnn under the same budget, and the report."""

import pytest

from tests.experiments.conftest import assert_report, run_quick


@pytest.mark.slow
def test_the_quick_experiment_compares_the_best_found_cnn_with_simple_cnn(tmp_path):
    results = run_quick(
        "tune_cnn.py", tmp_path, "--tuner", "random", "--max-trials", "2", "--epochs", "1"
    )
    assert_report(results, "tune_cnn.py")
    search = results["results"]["Search"][0]
    assert search["trials"] == search["completed"] == 2
    models = {row["model"]: row for row in results["results"]["Same budget: 1 epochs, 1 seed(s)"]}
    assert models["simple_cnn"]["parameters"] == 421_642
    for row in models.values():
        assert 10.0 < float(row["test accuracy (%)"]) <= 100.0
    # The first trial is simple_cnn's configuration; the report says when it is also the best.
    if "simple_cnn itself" in results["claims"][0]["evidence"]:
        assert results["claims"][0]["verdict"] == "does not hold"
        assert models["best found"]["parameters"] == 421_642


def test_the_verdict_calls_a_difference_within_the_two_runs_noise_inconclusive():
    import tune_cnn

    def records(best, baseline):
        return {
            "best found": [{"test_accuracy": value} for value in best],
            "simple_cnn": [{"test_accuracy": value} for value in baseline],
        }

    # 1.1 points apart, each side spread by 1 point: the difference of two runs spreads by 1.4.
    holds, evidence = tune_cnn.verdict(records([0.900, 0.920, 0.910], [0.889, 0.909, 0.899]), False)
    assert holds is None and "margin 1.41" in evidence
    holds, _ = tune_cnn.verdict(records([0.930, 0.950, 0.940], [0.889, 0.909, 0.899]), False)
    assert holds is True
