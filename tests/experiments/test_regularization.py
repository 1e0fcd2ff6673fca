"""experiments/regularization.py: its quick mode writes a report, results and figures; its
configurations test one technique each."""

import os

import pytest

from tests.experiments.conftest import assert_png, assert_report, run_quick

GROUPS = {"baseline", "dropout", "L2", "augmentation", "batch norm", "DropPath"}


@pytest.fixture(scope="module")
def results(quick_out):
    return run_quick("regularization.py", quick_out)


def test_configurations_change_one_thing_each_from_the_baseline():
    import regularization

    args = regularization.parse_args(["--quick", "--high-lr", "0.01", "0.03"])
    configs = regularization.configurations(args)
    assert {c.group for c in configs} == GROUPS
    base = configs[0]
    assert base.model_kwargs == {"dropout": 0.0} and base.learning_rate == 1e-3
    for config in configs[1:]:
        if config.model == base.model:
            changes = sum(
                [
                    config.model_kwargs != base.model_kwargs,
                    config.learning_rate != base.learning_rate,
                    config.l2 != base.l2,
                    config.augment is not None,
                ]
            )
            assert 1 <= changes <= 2, config  # 2: batch norm at a high learning rate
    assert [c.name for c in configs if c.group == "batch norm"] == [
        "batch norm",
        "baseline, lr 0.01",
        "batch norm, lr 0.01",
        "baseline, lr 0.03",
        "batch norm, lr 0.03",
    ]


def test_bad_option_is_an_error_naming_it():
    import regularization

    with pytest.raises(ValueError, match="--epochs"):
        regularization.parse_args(["--quick", "--epochs", "0"])


@pytest.mark.slow
def test_quick_mode_reports_every_configuration(results):
    assert_report(results, "experiments/regularization.py")
    rows = results["results"]["Test accuracy and generalisation gap"]
    assert {row["technique"] for row in rows} == GROUPS
    runs = results["results"]["runs"]
    assert set(runs) == {row["configuration"] for row in rows}
    for name, seeds in runs.items():
        (run,) = seeds  # one seed in quick mode
        assert 0 <= run["test_accuracy"] <= 1 and 0 <= run["train_accuracy"] <= 1, name
        assert run["gap"] == pytest.approx(run["train_accuracy"] - run["test_accuracy"])
        assert len(run["val_accuracy"]) == len(run["loss"]) == (2 if "ResNet" in name else 3)
    claims = " ".join(c["claim"] for c in results["claims"])
    for technique in ("Batch normalization", "Dropout", "L2", "augmentation", "DropPath"):
        assert technique in claims


@pytest.mark.slow
def test_quick_mode_writes_the_figures(results, quick_out):
    for name in ("regularization.png", "batch_norm.png", "overfitting.png"):
        assert_png(os.path.join(quick_out, name))
        assert f"]({name})" in results["markdown"]
