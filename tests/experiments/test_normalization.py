"""experiments/normalization.py: its configurations, and a quick mode that reports every claim,
the activations per stage and the figures."""

import os

import pytest

from tests.experiments.conftest import assert_png, assert_report, run_quick


@pytest.fixture(scope="module")
def results(quick_out):
    return run_quick("normalization.py", quick_out)


def test_configurations_change_one_setting_each_from_the_norms_plain_run():
    import normalization

    args = normalization.parse_args(["--high-lr", "0.01", "--small-batch", "2", "4"])
    configs = normalization.configurations(args)
    assert [name for name in configs][:5] == ["none", "batch", "layer", "group", "instance"]
    assert configs["batch, lr 0.01"] == ("batch", 0.01, 64, 1.0)
    assert configs["none, init x5"] == (None, 1e-3, 64, 5.0)
    assert configs["group, batch 2"] == ("group", 1e-3, 2, 1.0)
    assert normalization.stage_outputs(None, 2) == ["stage1_conv", "stage2_conv"]
    assert normalization.stage_outputs("batch", 1) == ["stage1_relu"]
    with pytest.raises(ValueError, match="--small-batch"):
        normalization.parse_args(["--small-batch", "0"])


@pytest.mark.slow
def test_quick_mode_reports_every_claim_and_the_activations(results, quick_out):
    assert_report(results, "experiments/normalization.py")
    claims = " ".join(c["claim"] for c in results["claims"])
    for part in (
        "accelerates convergence",
        "higher learning rate",
        "stabilises",
        "initialization",
        "Group norm keeps its accuracy at batch size 4",
    ):
        assert part in claims
    rows = results["results"]["Activations per stage (mean ± std over seeds)"]
    assert {(r["norm"], r["when"]) for r in rows} == {
        (n, w) for n in ("none", "batch") for w in ("initialization", "trained")
    }
    assert len(rows) == 4 * 3  # three stages in quick mode
    for name in ("curves.png", "activations.png"):
        assert_png(os.path.join(quick_out, name))
        assert f"]({name})" in results["markdown"]
