"""experiments/dropout_variants.py: its configurations, and a quick mode that reports the gap of
each variant and the pruned accuracy of targeted against standard dropout."""

import os

import pytest

from tests.experiments.conftest import assert_png, assert_report, run_quick


@pytest.fixture(scope="module")
def results(quick_out):
    return run_quick("dropout_variants.py", quick_out)


def test_configurations_cover_every_variant_once():
    import dropout_variants

    args = dropout_variants.parse_args([])
    configs = dropout_variants.configurations(args)
    assert list(configs) == [
        "no dropout",
        "dropout 0.2",
        "dropout 0.5",
        "dropout 0.8",
        "spatial dropout 0.2",
        "element dropout 0.2",
        "targeted dropout 0.5, 50% targeted",
        "targeted dropout 0.5, 75% targeted",
        "targeted dropout 0.5, 90% targeted",
        "ResNet",
        "ResNet, DropPath 0.2",
    ]
    for level in (0.5, 0.75, 0.9):
        targeted = configs[f"targeted dropout 0.5, {level:.0%} targeted"][1]
        assert (targeted["dropout_kind"], targeted["targeted_fraction"]) == ("targeted", level)
    assert dropout_variants.pruned_names(args)[0] == "dropout 0.5"
    assert configs["spatial dropout 0.2"][1]["spatial_dropout"] == 0.2
    assert configs["element dropout 0.2"][1]["element_dropout"] == 0.2
    assert "spatial_dropout" not in configs["element dropout 0.2"][1]
    assert dropout_variants.standard_at_targeted_rate(args) == "dropout 0.5"
    quick = dropout_variants.parse_args(["--quick", "--rates", "0.3"])
    assert "dropout 0.5 (for pruning)" in dropout_variants.configurations(quick)
    with pytest.raises(ValueError, match="--rates"):
        dropout_variants.parse_args(["--rates", "1"])


@pytest.mark.slow
def test_quick_mode_reports_gaps_and_pruning(results, quick_out):
    assert_report(results, "experiments/dropout_variants.py")
    rows = {r["configuration"]: r for r in results["results"]["Accuracy, gap and pruning"]}
    assert rows["targeted dropout 0.5, 90% targeted"]["acc. 90% pruned %"] != "-"
    assert rows["no dropout"]["acc. 90% pruned %"] == "-"
    claims = " ".join(c["claim"] for c in results["claims"])
    for part in (
        "Dropout 0.5",
        "Spatial dropout 0.2 in the convolution stages",
        "Element-wise dropout 0.2 in the convolution stages",
        "better than element-wise dropout",
        "DropPath",
        "Targeted dropout",
    ):
        assert part in claims
    assert "element dropout 0.2" in rows
    for name in ("curves.png", "pruning.png"):
        assert_png(os.path.join(quick_out, name))
        assert f"]({name})" in results["markdown"]
