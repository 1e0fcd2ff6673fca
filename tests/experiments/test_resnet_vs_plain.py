"""experiments/resnet_vs_plain.py: the training-error curve, and a quick mode that trains the
plain and residual networks and writes a report, results and the degradation figure."""

import os

import pytest

from tests.experiments.conftest import assert_png, assert_report, run_quick

NETWORKS = ["plain-18", "ResNet-18", "plain-34", "ResNet-34"]


@pytest.fixture(scope="module")
def results(quick_out):
    return run_quick("resnet_vs_plain.py", quick_out)


def test_training_error_curve_turns_running_accuracies_into_interval_errors():
    from resnet_vs_plain import training_error_curve

    curve = training_error_curve(every=2)
    for epoch, correct in enumerate(([1, 0, 1, 1], [0, 0, 1])):  # accuracy of each batch
        curve.on_epoch_begin(epoch)
        for batch in range(len(correct)):
            running = sum(correct[: batch + 1]) / (batch + 1)  # what Keras logs
            curve.on_train_batch_end(batch, {"accuracy": running})
        curve.on_epoch_end(epoch)
    assert curve.points == [(2, 0.5), (4, 0.0), (6, 1.0), (7, 0.0)]


def test_a_network_that_diverged_makes_its_claims_inconclusive():
    from resnet_vs_plain import claims

    def runs(error, diverged=False):
        return [{"train_error": error, "test_error": error, "diverged": diverged}] * 2

    records = {"plain-18": runs(0.10), "ResNet-18": runs(0.09), "ResNet-34": runs(0.08)}
    steady = claims({**records, "plain-34": runs(0.12)})
    assert [verdict for _, verdict, _ in steady] == [True, True, True, True]
    blown_up = claims({**records, "plain-34": runs(0.90, diverged=True)})
    assert [verdict for _, verdict, _ in blown_up] == [None, None, True, None]
    assert "2 run(s) diverged: inconclusive" in blown_up[0][2]


def test_bad_options_are_errors_naming_them():
    import resnet_vs_plain

    with pytest.raises(ValueError, match="--width"):
        resnet_vs_plain.parse_args(["--quick", "--width", "0"])
    with pytest.raises(ValueError, match="--every"):
        resnet_vs_plain.parse_args(["--quick", "--every", "0"])


@pytest.mark.slow
def test_quick_mode_trains_plain_and_residual_networks(results):
    assert_report(results, "experiments/resnet_vs_plain.py")
    rows = results["results"]["Training and test error"]
    assert [row["network"] for row in rows] == NETWORKS
    parameters = {row["network"]: row["trainable parameters"] for row in rows}
    # the shortcuts add only the 1x1 projections (and their BN) where the shape changes
    assert parameters["plain-18"] < parameters["ResNet-18"] < parameters["plain-34"]
    assert parameters["ResNet-34"] - parameters["plain-34"] == (
        parameters["ResNet-18"] - parameters["plain-18"]
    )
    for name in NETWORKS:
        (run,) = results["results"]["runs"][name]  # one seed in quick mode
        assert run["train_error"] == pytest.approx(1 - run["train_accuracy"])
        batches = [point[0] for point in run["training_error_curve"]]
        assert batches == list(range(1, len(batches) + 1))  # --every 1 in quick mode
        assert all(0 <= point[1] <= 1 for point in run["training_error_curve"])
    assert len(results["claims"]) == 4


@pytest.mark.slow
def test_quick_mode_writes_the_degradation_figure(results, quick_out):
    assert_png(os.path.join(quick_out, "degradation.png"))
    assert "](degradation.png)" in results["markdown"]
