"""experiments/attention.py: its quick mode compares the four attention kinds and writes a report,
results and figures; the same command again reads its runs back from the journal."""

import os

import pytest

from tests.experiments.conftest import assert_png, assert_report, run_quick

KINDS = ["none", "se", "spatial", "cbam"]


@pytest.fixture(scope="module")
def results(quick_out):
    return run_quick("attention.py", quick_out)


@pytest.mark.slow
def test_quick_mode_measures_accuracy_parameters_and_time_of_each_kind(results):
    import attention

    assert_report(results, "experiments/attention.py")
    rows = results["results"]["Accuracy and cost"]
    assert [row["attention"] for row in rows] == KINDS
    parameters = {row["attention"]: row["parameters"] for row in rows}
    # SE and CBAM add Dense layers, spatial attention one 7x7x2 convolution per block
    blocks = sum(attention.QUICK["depths"])
    assert parameters["spatial"] == parameters["none"] + blocks * (7 * 7 * 2 + 1)
    assert parameters["none"] < parameters["se"] < parameters["cbam"]
    assert parameters["cbam"] == parameters["se"] + parameters["spatial"] - parameters["none"]
    for row in rows:
        assert row["train CPU ms/image"] > 0 and row["train images/s (wall)"] > 0
        assert row["inference CPU ms/image"] > 0
        assert row["MACs"] >= rows[0]["MACs"]
    for kind, (run,) in results["results"]["runs"].items():
        assert 0 <= run["test_accuracy"] <= 1, kind
    for kind, times in results["results"]["times"].items():
        assert len(times["train_cpu"]) == len(times["inference_wall"]) == 2, kind  # quick rounds
    assert len(results["claims"]) == 7


@pytest.mark.slow
def test_quick_mode_writes_the_figures(results, quick_out):
    for name in ("attention.png", "curves.png"):
        assert_png(os.path.join(quick_out, name))
        assert f"]({name})" in results["markdown"]


@pytest.mark.slow
def test_the_same_command_again_reads_its_runs_back_from_the_journal(results, quick_out):
    again = run_quick("attention.py", quick_out)
    assert again["results"]["runs"] == results["results"]["runs"]
    assert "Runs: 0 trained by this command, 4 read back from `runs.jsonl`" in again["markdown"]
    assert "Runs: 4 trained by this command, 0 read back" in results["markdown"]
