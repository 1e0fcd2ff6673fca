"""`load("tfds:<name>")` on a tensorflow-datasets builder prepared offline by the test."""

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from kcnn.data import load, make_dataset  # noqa: E402
from tests.data.tiny_tfds import KcnnTinyImages, images  # noqa: E402

NAME = "tfds:kcnn_tiny_images"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tfds")
    KcnnTinyImages(data_dir=str(folder)).download_and_prepare()
    return str(folder)


def test_tfds_splits_hold_out_and_info(data_dir):
    train, info = load(NAME, data_dir=data_dir, validation_split=0.1)
    val, val_info = load(NAME, split="validation", data_dir=data_dir, validation_split=0.1)
    test, test_info = load(NAME, split="test", data_dir=data_dir)
    assert info.class_names == ("a", "b", "c") and info.image_shape == (16, 16, 3)
    assert (info.num_examples, val_info.num_examples, test_info.num_examples) == (54, 6, 15)
    assert info.source.startswith(data_dir)
    train_images = np.stack([image for image, _ in train.as_numpy_iterator()])
    val_images = np.stack([image for image, _ in val.as_numpy_iterator()])
    assert len(train_images) == 54 and len(val_images) == 6
    all_train, _ = images(0, 60)
    together = sorted(image.tobytes() for image in np.concatenate([train_images, val_images]))
    assert together == sorted(image.tobytes() for image in all_train)
    assert sorted(int(label) for _, label in val.as_numpy_iterator()) == [0, 0, 1, 1, 2, 2]
    np.testing.assert_allclose(info.mean, train_images.mean(axis=(0, 1, 2)) / 255, rtol=1e-9)
    label = next(iter(test))[1]
    assert label.dtype.name == "int64"


def test_tfds_through_make_dataset(data_dir):
    dataset, info = make_dataset(NAME, 8, data_dir=data_dir, augment="light")
    batch = next(iter(dataset))[0]
    assert batch.shape == (8, 16, 16, 3) and info.num_examples == 54


def test_tfds_not_prepared_offline_says_how_to_prepare(tmp_path):
    with pytest.raises(FileNotFoundError, match="download_and_prepare"):
        load(NAME, data_dir=str(tmp_path), download=False)


def test_unknown_tfds_name():
    with pytest.raises(ValueError, match="unknown tensorflow-datasets name"):
        load("tfds:no_such_dataset_kcnn")
