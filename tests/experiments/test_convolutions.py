"""experiments/convolutions.py: the study network's counts (the course's 18C² against 25C², the
same receptive field), and a quick mode that reports cost, time and accuracy of each kind."""

import os

import pytest

from tests.experiments.conftest import assert_png, assert_report, run_quick


@pytest.fixture(scope="module")
def results(quick_out):
    return run_quick("convolutions.py", quick_out)


def test_two_3x3_have_18c2_weights_and_the_receptive_field_of_one_5x5():
    import convolutions

    convolutions.register()
    args = convolutions.parse_args(["--channels", "8"])
    costs = {
        kind: convolutions.describe(args, kind, (28, 28, 1), 10) for kind in convolutions.KINDS
    }
    assert costs["standard"]["stage_kernel_weights"] == 2 * 18 * 8 * 8
    assert costs["5x5"]["stage_kernel_weights"] == 2 * 25 * 8 * 8
    # r += (k - 1) j: stem 3, stage 1 (jump 1) + 4 and pool + 1, stage 2 (jump 2) + 8, pool + 2
    assert costs["standard"]["receptive_field"] == costs["5x5"]["receptive_field"] == 18
    assert costs["dilated"]["receptive_field"] == 3 + 8 + 1 + 16 + 2
    assert costs["dilated"]["params"] == costs["standard"]["params"]
    # grouped: 4 groups divide the stages' kernels by 4; separable: 9C + C² per convolution
    assert costs["grouped"]["stage_kernel_weights"] == 2 * 18 * 8 * 8 // 4
    assert costs["separable"]["stage_kernel_weights"] == 4 * (9 * 8 + 8 * 8)
    with pytest.raises(ValueError, match="--channels"):
        convolutions.parse_args(["--channels", "6"])


@pytest.mark.slow
def test_quick_mode_reports_cost_time_and_accuracy_of_each_kind(results, quick_out):
    assert_report(results, "experiments/convolutions.py")
    rows = results["results"]["Cost and accuracy per convolution"]
    assert [r["convolution"] for r in rows] == [
        "standard",
        "separable",
        "dilated",
        "grouped",
        "5x5",
    ]
    assert all(r["CPU ms/image"] > 0 and r["MACs"] > 0 for r in rows)
    verdicts = {c["claim"]: c["verdict"] for c in results["claims"]}
    assert verdicts["Two 3x3 convolutions have 18C² weights where one 5x5 has 25C²"] == "holds"
    assert (
        verdicts["Two stacked 3x3 convolutions see what one 5x5 sees (same receptive field)"]
        == "holds"
    )
    assert_png(os.path.join(quick_out, "convolutions.png"))
    assert "](convolutions.png)" in results["markdown"]
