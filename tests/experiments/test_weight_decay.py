"""experiments/weight_decay.py: a quick mode that measures norms, sparsity and pruned accuracy
of each penalty and writes its report and figures."""

import os

import pytest

from tests.experiments.conftest import assert_png, assert_report, run_quick


@pytest.fixture(scope="module")
def results(quick_out):
    # float32: the unaltered accuracy it checks against the test accuracy comes from other
    # batches, and in mixed bfloat16 (precision auto on an AMX CPU) one image in 300 flipped.
    return run_quick("weight_decay.py", quick_out, "--precision", "float32")


def test_penalties_and_their_checks():
    import weight_decay

    args = weight_decay.parse_args(["--l2", "1e-4", "--l1", "1e-5"])
    assert weight_decay.configurations(args) == {
        "none": {"l1": 0.0, "l2": 0.0},
        "L2 0.0001": {"l1": 0.0, "l2": 1e-4},
        "L1 1e-05": {"l1": 1e-5, "l2": 0.0},
    }
    with pytest.raises(ValueError, match="--l1"):
        weight_decay.parse_args(["--l1", "0"])


@pytest.mark.slow
def test_quick_mode_measures_weights_sparsity_and_pruning(results, quick_out):
    assert_report(results, "experiments/weight_decay.py")
    runs = results["results"]["runs"]
    assert list(runs) == ["none", "L2 0.001", "L1 0.0001"]
    for (run,) in runs.values():
        assert 0 <= run["sparsity"] <= 1 and run["kernel_norm"] > run["largest_weight"] > 0
        assert list(run["pruned_accuracy"]) == ["0", "0.5", "0.75", "0.9"]
        assert run["pruned_accuracy"]["0"] == pytest.approx(run["test_accuracy"], abs=1e-6)
    claims = " ".join(c["claim"] for c in results["claims"])
    assert "penalises large weights" in claims and "drives weights to (near) zero" in claims
    for name in ("weights.png", "pruning.png"):
        assert_png(os.path.join(quick_out, name))
        assert f"]({name})" in results["markdown"]
