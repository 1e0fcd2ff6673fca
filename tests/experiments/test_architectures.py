"""experiments/architectures.py: padding to 32x32, and a quick mode that recounts the course's
Table 1 and measures the five architectures on the same data and budget."""

import os

import numpy as np
import pytest

from tests.experiments.conftest import assert_png, assert_report, run_quick

MODELS = ["lenet5", "simple_cnn", "tiny_vgg", "tiny_resnet", "resnet18"]


@pytest.fixture(scope="module")
def results(quick_out):
    return run_quick("architectures.py", quick_out)


def test_padding_centres_the_images_in_32x32_and_keeps_the_labels():
    from common import Splits

    images = np.full((3, 28, 28, 1), 7, np.uint8)
    labels = np.arange(3)
    splits = Splits(
        (images, labels),
        (images[:1], labels[:1]),
        (images[:2], labels[:2]),
        ("a", "b", "c"),
        "arrays",
        "test",
    )
    padded = splits.padded(32)
    for part, count in (("train", 3), ("validation", 1), ("test", 2)):
        x, y = getattr(padded, part)
        assert x.shape == (count, 32, 32, 1) and x.dtype == np.uint8
        assert (x[:, 2:30, 2:30] == 7).all() and x.sum() == count * 28 * 28 * 7
        np.testing.assert_array_equal(y, labels[:count])
    assert padded.padded(32).train[0].shape == (3, 32, 32, 1)
    with pytest.raises(ValueError, match="size"):
        splits.padded(27)


def test_bad_options_are_errors_naming_them():
    import architectures

    with pytest.raises(ValueError, match="--train-size"):
        architectures.parse_args(["--quick", "--train-size", "0"])
    args = architectures.parse_args(["--quick"])
    assert (args.train_size, args.epochs, args.seeds) == (128, 2, 1)


@pytest.mark.slow
def test_quick_mode_recounts_table_1_and_measures_every_architecture(results):
    assert_report(results, "experiments/architectures.py")
    table = results["results"]["The course's Table 1, parameters recounted"]
    counts = {row["model"]: row["trainable parameters"] for row in table}
    assert counts == {
        "LeNet-5": 61_706,
        "AlexNet": 60_965_224,
        "VGG-16": 138_357_544,
        "ResNet-50": 25_557_032,
    }
    assert {row["model"]: row["MACs"] for row in table}["VGG-16"] == 15_470_264_320
    rows = results["results"]["Trained on fashion_mnist, 32x32, same budget"]
    assert [row["model"] for row in rows] == MODELS
    by_name = {row["model"]: row for row in rows}
    assert by_name["lenet5"]["trainable parameters"] == 61_706  # 32x32x1, as published
    assert by_name["lenet5"]["MACs"] < by_name["tiny_vgg"]["MACs"] < by_name["resnet18"]["MACs"]
    for row in rows:
        assert row["train images/s"] > 0 and row["inference images/s"] > 0
        assert row["training time s"] > 0
    for name in MODELS:
        (run,) = results["results"]["runs"][name]  # one seed in quick mode
        assert 0 <= run["test_accuracy"] <= 1 and len(run["val_accuracy"]) == 2
    assert results["claims"][0]["verdict"] == "holds"  # Table 1's counts


@pytest.mark.slow
def test_quick_mode_writes_the_figures(results, quick_out):
    for name in ("architectures.png", "curves.png"):
        assert_png(os.path.join(quick_out, name))
        assert f"]({name})" in results["markdown"]
