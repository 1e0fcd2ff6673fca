"""tensorflow-datasets image classification datasets (``"tfds:<name>"`` in `kcnn.data.load`)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kcnn.data.info import DatasetInfo, statistics_from_sums
from kcnn.data.splits import hold_out

STATISTICS_SAMPLE = 10_000  # training images read to estimate the mean and std
TFDS_SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "val"), "test": ("test",)}


def load_tfds(name: str, split: str, data_dir, fraction: float, seed: int, download: bool):
    """Load one split of the tensorflow-datasets dataset ``name``; see `kcnn.data.load`.

    The dataset is read from ``data_dir`` (tfds's default folder when ``None``), and
    downloaded and prepared there first when it is not, if ``download``. Datasets with no
    validation split get a seeded, stratified hold-out of their training split, computed from
    the labels (the images are not decoded for it). ``mean``/``std`` are estimated on the first
    `STATISTICS_SAMPLE` images of the training split.

    Raises:
        ValueError: for an unknown tfds name, a dataset that is not (image, class label)
            classification, or a split it does not have.
        FileNotFoundError: when it is not prepared in ``data_dir`` and cannot be downloaded.
    """
    import tensorflow_datasets as tfds

    builder = _builder(name, data_dir)
    if not builder.is_prepared():
        _prepare(builder, name, data_dir, download)
    image_key, label_key = _supervised_keys(builder, name)
    class_names = tuple(builder.info.features[label_key].names)
    splits = {
        split_: next((n for n in names if n in builder.info.splits), None)
        for split_, names in TFDS_SPLIT_NAMES.items()
    }
    if splits["train"] is None:
        raise ValueError(f"tfds dataset {name!r} has no 'train' split: {list(builder.info.splits)}")
    if split == "test" and splits["test"] is None:
        raise ValueError(f"tfds dataset {name!r} has no test split: {list(builder.info.splits)}")

    def read(tfds_split, decode_images=True):
        decoders = None if decode_images else {image_key: tfds.decode.SkipDecoding()}
        dataset = builder.as_dataset(split=tfds_split, decoders=decoders, shuffle_files=False)
        return dataset.map(lambda example: (example[image_key], example[label_key]))

    def size(tfds_split):
        return builder.info.splits[tfds_split].num_examples

    train, train_count = read(splits["train"]), size(splits["train"])
    own_validation = splits["validation"] is not None
    if not own_validation:
        labels = _labels(read(splits["train"], decode_images=False))
        train_indices, validation_indices = hold_out(labels, split, fraction, seed, f"tfds:{name}")
        held_out = _take(train, validation_indices)
        train, train_count = _take(train, train_indices), len(train_indices)
    if split == "train":
        dataset, count = train, train_count
    elif split == "validation" and not own_validation:
        dataset, count = held_out, len(validation_indices)
    else:
        dataset, count = read(splits[split]), size(splits[split])
    mean, std = _statistics(train.take(STATISTICS_SAMPLE))
    image_shape = tuple(builder.info.features[image_key].shape)
    info = DatasetInfo(
        name=f"tfds:{name}",
        class_names=class_names,
        num_classes=len(class_names),
        image_shape=image_shape,
        num_examples=int(count),
        source=builder.data_dir,
        mean=mean,
        std=std,
        split=split,
    )
    return dataset.map(lambda image, label: (image, tf.cast(label, tf.int64))), info


def _builder(name: str, data_dir):
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ValueError(
            f"unknown tensorflow-datasets name {name!r} (see tfds.list_builders())"
        ) from error


def _prepare(builder, name: str, data_dir, download: bool) -> None:
    reason = "download=False"
    if download:
        try:
            builder.download_and_prepare()
            return
        except Exception as error:  # network, checksum and archive errors of many kinds
            reason = f"{type(error).__name__}: {error}"
    folder = data_dir or "~/tensorflow_datasets"
    raise FileNotFoundError(
        f"tfds dataset {name!r} is not prepared in {folder} and could not be downloaded "
        f'({reason}). On a machine with network, run: python -c "import tensorflow_datasets as '
        f"tfds; tfds.builder('{name}', data_dir='DIR').download_and_prepare()\" and copy DIR "
        f"here, then pass data_dir=DIR (or set TFDS_DATA_DIR)"
    )


def _supervised_keys(builder, name: str) -> tuple:
    import tensorflow_datasets as tfds

    keys = builder.info.supervised_keys
    features = builder.info.features
    if (
        not keys
        or len(keys) != 2
        or not isinstance(features[keys[0]], tfds.features.Image)
        or not isinstance(features[keys[1]], tfds.features.ClassLabel)
    ):
        raise ValueError(
            f"tfds dataset {name!r} is not an image classification dataset (its supervised "
            f"keys are {keys!r}); kcnn needs an (Image, ClassLabel) pair"
        )
    return keys


def _labels(dataset) -> np.ndarray:
    """Every label of ``dataset`` (whose images are left encoded), in order."""
    labels = dataset.map(lambda image, label: label).batch(8192)
    return np.concatenate(list(labels.as_numpy_iterator()))


def _take(dataset: tf.data.Dataset, indices) -> tf.data.Dataset:
    """The examples of ``dataset`` at ``indices`` (sorted), in order."""
    keep = np.zeros(int(indices[-1]) + 1 if len(indices) else 0, bool)
    keep[indices] = True
    keep = tf.constant(keep)
    return (
        dataset.take(len(keep))
        .enumerate()
        .filter(lambda index, example: keep[index])
        .map(lambda index, example: example)
    )


def _statistics(dataset: tf.data.Dataset) -> tuple:
    """Per-channel mean and std in [0, 1] units of the images of ``(image, label)`` pairs."""

    def sums(image, label):
        pixels = tf.cast(image, tf.float64)
        count = tf.cast(tf.reduce_prod(tf.shape(image)[:2]), tf.float64)
        return (
            tf.reduce_sum(pixels, axis=[0, 1]),
            tf.reduce_sum(tf.square(pixels), axis=[0, 1]),
            count,
        )

    total = total_sq = count = 0.0
    batches = dataset.map(sums, num_parallel_calls=tf.data.AUTOTUNE).batch(256)
    for sum_, square, pixels in batches.as_numpy_iterator():
        total = total + sum_.sum(axis=0)
        total_sq = total_sq + square.sum(axis=0)
        count += pixels.sum()
    return statistics_from_sums(total, total_sq, count)
