"""experiments/common.py: the subsets are fixed, disjoint and stratified; bad sizes are errors."""

import numpy as np
import pytest


def test_subsets_are_stratified_disjoint_and_the_same_every_time():
    from common import dataset_splits

    splits = dataset_splits("fashion_mnist", train_size=1000, validation_size=500, test_size=300)
    assert [len(part[1]) for part in (splits.train, splits.validation, splits.test)] == [
        1000,
        500,
        300,
    ]
    for images, labels in (splits.train, splits.validation, splits.test):
        assert images.dtype == np.uint8 and images.shape[1:] == (28, 28, 1)
        np.testing.assert_array_equal(np.bincount(labels, minlength=10), len(labels) // 10)
    train = {image.tobytes() for image in splits.train[0]}
    assert not train & {image.tobytes() for image in splits.validation[0]}
    again = dataset_splits("fashion_mnist", train_size=1000, validation_size=500, test_size=300)
    np.testing.assert_array_equal(again.train[0], splits.train[0])
    assert "1,000 training, 500 validation and 300 test images" in splits.describe()


@pytest.mark.parametrize(("option", "value"), [("train_size", 0), ("validation_size", -1)])
def test_bad_sizes_and_datasets_are_value_errors(option, value):
    from common import dataset_splits

    with pytest.raises(ValueError, match=option):
        dataset_splits("fashion_mnist", **{option: value})
    with pytest.raises(ValueError, match="dataset must be one of"):
        dataset_splits("imagenet")


def test_run_progress_counts_every_seed_of_every_configuration(capsys):
    from common import run_progress

    progress = run_progress(2, ("mlp", "simple_cnn", "vgg11"))
    for seed in range(2):
        for name in ("mlp", "simple_cnn", "vgg11"):
            progress.step(f"seed {seed}, {name}")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "run 1/6 (seed 0, mlp)"
    assert lines[-1].startswith("run 6/6 (seed 1, vgg11), ") and "left" in lines[-1]
