"""Named datasets from local files: IDX (Fashion-MNIST, MNIST), mnist.npz, CIFAR pickles and
archives, the search order, and the error when nothing is found."""

import os
import tarfile

import numpy as np
import pytest

from kcnn.data import load
from kcnn.data.idx import read_idx
from kcnn.data.named import FASHION_MNIST_CLASSES, NAMED_DATASETS, search_folders
from tests.data.conftest import (
    FASHION_MNIST_DIR,
    write_cifar_batch,
    write_idx,
    write_idx_dataset,
)


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path, monkeypatch):
    """No KCNN_DATA_DIR, and an empty Keras cache, unless a test sets them."""
    monkeypatch.delenv("KCNN_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path, gz):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, array)
    result = read_idx(path)
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, array)


def test_read_idx_rejects_truncated_and_foreign_files(tmp_path):
    path = tmp_path / "truncated"
    write_idx(path, np.zeros((4, 5), np.uint8))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)
    (tmp_path / "text").write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "text")


def test_fashion_mnist_from_data_dir_idx_files(tmp_path):
    (x_train, _), (x_test, _) = write_idx_dataset(tmp_path / "fm")
    train, info = load("fashion_mnist", data_dir=tmp_path / "fm", validation_split=0.5)
    assert info.class_names == FASHION_MNIST_CLASSES
    assert info.source == str(tmp_path / "fm")
    assert (info.num_examples, info.image_shape, info.split) == (30, (28, 28, 1), "train")
    val, val_info = load(
        "fashion_mnist", split="validation", data_dir=tmp_path / "fm", validation_split=0.5
    )
    test, test_info = load("fashion_mnist", split="test", data_dir=tmp_path / "fm")
    assert (val_info.num_examples, test_info.num_examples) == (30, 20)
    test_images = np.stack([image for image, _ in test.as_numpy_iterator()])
    np.testing.assert_array_equal(test_images[..., 0], x_test)
    # train and validation partition the training files, every class in both
    seen = [image.tobytes() for image, _ in train.as_numpy_iterator()]
    seen += [image.tobytes() for image, _ in val.as_numpy_iterator()]
    assert sorted(seen) == sorted(image[..., None].tobytes() for image in x_train)
    val_labels = [label for _, label in val.as_numpy_iterator()]
    assert sorted(set(val_labels)) == list(range(10))


def test_labels_out_of_range_in_idx_files_are_an_error(tmp_path):
    write_idx_dataset(tmp_path / "fm", labels_fn=lambda labels: np.where(labels == 3, 12, labels))
    with pytest.raises(ValueError, match=r"labels .* must be in \[0, 10\).*\[0, 12\]"):
        load("fashion_mnist", data_dir=tmp_path / "fm")


def test_mismatched_idx_counts_name_the_file(tmp_path):
    folder = tmp_path / "fm"
    write_idx_dataset(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(7, np.uint8))
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz"):
        load("fashion_mnist", data_dir=folder)


def test_search_order_data_dir_then_env_then_keras_cache(tmp_path, monkeypatch):
    env_root = tmp_path / "env"
    write_idx_dataset(env_root / "fashion-mnist", train_count=30)
    keras_cache = tmp_path / "keras_home" / "datasets" / "fashion-mnist"
    write_idx_dataset(keras_cache, train_count=40)
    _, info = load("fashion_mnist", validation_split=0.0)
    assert (info.source, info.num_examples) == (str(keras_cache), 40)
    monkeypatch.setenv("KCNN_DATA_DIR", str(env_root))
    _, info = load("fashion_mnist", validation_split=0.0)
    assert (info.source, info.num_examples) == (str(env_root / "fashion-mnist"), 30)
    write_idx_dataset(tmp_path / "mine", train_count=50)
    _, info = load("fashion_mnist", data_dir=tmp_path / "mine", validation_split=0.0)
    assert info.num_examples == 50
    folders = [folder for folder, _ in search_folders(NAMED_DATASETS["fashion_mnist"], "/d")]
    assert folders[0] == "/d"
    assert folders[-1] == FASHION_MNIST_DIR


def test_idx_files_in_a_shared_root_are_not_taken_for_mnist(tmp_path, monkeypatch):
    """Fashion-MNIST files lying directly in $KCNN_DATA_DIR must not be read as MNIST."""
    write_idx_dataset(tmp_path / "root")
    monkeypatch.setenv("KCNN_DATA_DIR", str(tmp_path / "root"))
    with pytest.raises(FileNotFoundError):
        load("mnist", download=False)


def test_mnist_npz_in_keras_cache(tmp_path):
    folder = tmp_path / "keras_home" / "datasets"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        "y_train": np.arange(30) % 10,
        "x_test": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "y_test": np.arange(10) % 10,
    }
    np.savez(folder / "mnist.npz", **arrays)
    test, info = load("mnist", split="test")
    assert info.source == str(folder / "mnist.npz")
    assert info.class_names == tuple("0123456789")
    labels = [label for _, label in test.as_numpy_iterator()]
    assert labels == list(range(10))


def _cifar10_folder(folder):
    folder.mkdir(parents=True)
    parts = [write_cifar_batch(folder / f"data_batch_{i}", i, 10) for i in range(1, 6)]
    test = write_cifar_batch(folder / "test_batch", 9, 10)
    return parts, test


def test_cifar10_extracted_folder_and_archive_read_the_same(tmp_path):
    inner = tmp_path / "extracted" / "cifar-10-batches-py"
    parts, (x_test, _) = _cifar10_folder(inner)
    test, info = load("cifar10", split="test", data_dir=inner)
    assert info.image_shape == (32, 32, 3) and info.class_names[0] == "airplane"
    images = np.stack([image for image, _ in test.as_numpy_iterator()])
    np.testing.assert_array_equal(images, x_test)
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(inner, arcname="cifar-10-batches-py")
    train, archive_info = load("cifar10", data_dir=archive_dir, validation_split=0.0)
    assert archive_info.source == str(archive_dir / "cifar-10-python.tar.gz")
    images = np.stack([image for image, _ in train.as_numpy_iterator()])
    np.testing.assert_array_equal(images, np.concatenate([x for x, _ in parts]))


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    write_cifar_batch(folder / "train", 0, 200, label_key=b"fine_labels", classes=100)
    write_cifar_batch(folder / "test", 1, 100, label_key=b"fine_labels", classes=100)
    _, info = load("cifar100", data_dir=folder)
    assert info.num_classes == 100 and info.class_names[:2] == ("apple", "aquarium_fish")


def test_cifar_pickle_that_runs_code_is_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _cifar10_folder(folder)
    import pickle

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Exploit(), b"labels": [0]}))
    with pytest.raises(ValueError, match="test_batch"):
        load("cifar10", split="test", data_dir=folder)


def test_missing_dataset_says_what_to_install_and_where(tmp_path, monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    monkeypatch.setattr(
        "kcnn.data.named.NAMED_DATASETS",
        {**NAMED_DATASETS, "fashion_mnist": _without_system_folders("fashion_mnist")},
    )
    partial = tmp_path / "partial"
    write_idx_dataset(partial)
    os.remove(partial / "t10k-images-idx3-ubyte.gz")
    with pytest.raises(FileNotFoundError) as error:
        load("fashion_mnist", data_dir=partial)
    message = str(error.value)
    assert "URL fetch failure" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "train-images-idx3-ubyte.gz" in message and "$KCNN_DATA_DIR" in message
    assert f"{partial} (missing t10k-images-idx3-ubyte.gz)" in message


def test_missing_cifar_offline_names_the_archive(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-python.tar.gz"):
        load("cifar10", data_dir=tmp_path, download=False)


def _without_system_folders(name):
    import dataclasses

    return dataclasses.replace(NAMED_DATASETS[name], system_folders=())


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DIR), reason="Debian's Fashion-MNIST absent")
def test_debian_fashion_mnist():
    _, info = load("fashion_mnist")
    _, val_info = load("fashion_mnist", split="validation")
    test, test_info = load("fashion_mnist", split="test")
    assert info.source == FASHION_MNIST_DIR
    counts = (info.num_examples, val_info.num_examples, test_info.num_examples)
    assert counts == (54000, 6000, 10000)
    # The published statistics of the 60,000 training images: mean 0.2860, std 0.3530.
    assert info.mean[0] == pytest.approx(0.2860, abs=1e-3)
    assert info.std[0] == pytest.approx(0.3530, abs=1e-3)
    image, label = next(iter(test))
    assert image.shape == (28, 28, 1) and image.dtype.name == "uint8"
    assert int(label) == 9  # the first test image is an ankle boot
