"""`load` on NumPy arrays, its argument checks, and the stratified hold-out."""

import numpy as np
import pytest

from kcnn.data import DatasetInfo, load
from kcnn.data.splits import stratified_split


def arrays(count=40, classes=4, shape=(8, 8), seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, *shape), dtype=np.uint8), np.arange(count) % classes


def test_stratified_split_partitions_each_class_by_the_fraction():
    labels = np.repeat(np.arange(5), [10, 20, 30, 3, 1])
    train, validation = stratified_split(labels, 0.2, seed=0)
    assert np.intersect1d(train, validation).size == 0
    assert np.union1d(train, validation).tolist() == list(range(len(labels)))
    assert np.bincount(labels[validation], minlength=5).tolist() == [2, 4, 6, 1, 0]
    again = stratified_split(labels, 0.2, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip((train, validation), again))
    assert not np.array_equal(stratified_split(labels, 0.2, seed=1)[1], validation)


def test_arrays_source_splits_and_info():
    x, y = arrays()
    train, info = load((x, y), validation_split=0.3, class_names=["a", "b", "c", "d"])
    _, val_info = load((x, y), split="validation", validation_split=0.3)
    assert isinstance(info, DatasetInfo)
    assert (info.num_examples, val_info.num_examples) == (28, 12)  # 3 of the 10 of each class
    assert info.class_names == ("a", "b", "c", "d") and val_info.class_names == ("0", "1", "2", "3")
    assert info.image_shape == (8, 8, 1) and info.source == "arrays"
    image, label = next(iter(train))
    assert image.dtype.name == "uint8" and label.dtype.name == "int64" and image.shape == (8, 8, 1)
    train_x = np.stack([image for image, _ in train.as_numpy_iterator()]).astype(float)
    assert info.mean[0] == pytest.approx(train_x.mean() / 255)
    assert info.std[0] == pytest.approx(train_x.std() / 255)


def test_keras_style_nested_arrays_have_a_test_split():
    (x, y), (xt, yt) = arrays(), arrays(12, seed=1)
    test, info = load(((x, y[:, None]), (xt, yt[:, None])), split="test")
    assert info.num_examples == 12 and info.split == "test"
    np.testing.assert_array_equal(np.stack([i for i, _ in test.as_numpy_iterator()])[..., 0], xt)
    with pytest.raises(ValueError, match="no test split"):
        load((x, y), split="test")


@pytest.mark.parametrize(
    "x, y, class_names, message",
    [
        (np.zeros((4, 8, 8), np.float32), [0, 1, 0, 1], None, "uint8"),
        (np.zeros((4, 8, 8, 2), np.uint8), [0, 1, 0, 1], None, "1 or 3"),
        (np.zeros((4, 8, 8), np.uint8), [0, 1, 0], None, "4 integers"),
        (np.zeros((4, 8, 8), np.uint8), [0, 1, 2, 3], ["a", "b"], r"\[0, 2\).*\[0, 3\]"),
        (np.zeros((4, 8, 8), np.uint8), [0, -1, 0, 1], None, r"\[-1, 1\]"),
        (np.full((4, 8, 8), 300, np.int32), [0, 1, 0, 1], None, r"\[0, 255\]"),
    ],
)
def test_bad_arrays_are_value_errors(x, y, class_names, message):
    with pytest.raises(ValueError, match=message):
        load((x, np.asarray(y)), class_names=class_names)


@pytest.mark.parametrize(
    "source, arguments, message",
    [
        ("fashion_mnsit", {}, "Did you mean: fashion_mnist"),
        (42, {}, "name_or_path"),
        ("mnist", {"split": "dev"}, "split"),
        ("mnist", {"validation_split": 1.0}, "validation_split"),
    ],
)
def test_bad_arguments(source, arguments, message):
    with pytest.raises(ValueError, match=message):
        load(source, **arguments)


def test_validation_without_a_hold_out_is_an_error():
    with pytest.raises(ValueError, match="validation_split"):
        load(arrays(), split="validation", validation_split=0.0)
