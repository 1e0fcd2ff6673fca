"""`make_dataset`: a batched tf.data input pipeline that keeps the model fed.

The steps, in order::

    load -> convert channels, resize (per image, parallel map) -> cache (uint8)
         -> shuffle -> batch -> augment, mix, normalise (per batch) -> prefetch

Images are cached as uint8 after decoding and resizing, so every epoch after the first reads
them from memory at a quarter of the size of float32. Augmentation runs on whole batches, where
Keras preprocessing layers are vectorised, in one map call at a time: the layers' random state
then advances in a fixed order, so the same seed gives the same batches, epoch after epoch.

tf.data's autotuning is off (`EPOCH_OPTIONS`): its thread, one per iterator, sleeps between
tunings for a period that doubles as the iterator lives, and deleting the iterator waits for
that sleep to end. Keras makes a new iterator every epoch, so on 2 cores each epoch began with
seconds of idle CPU (``benchmarks/README.md``, "Idle seconds between epochs"). What is left to
tune here is cheap: ``AUTOTUNE`` then means one thread per core (at most 16) for the parallel
maps, and the prefetch buffer is still sized on the fly by its own tuner.
"""

from __future__ import annotations

import dataclasses
import hashlib

import tensorflow as tf

from kcnn import checks
from kcnn.data.augment import LAYER_SEEDS, augmentation_layers, label_mixing
from kcnn.data.images import convert_channels, resize_image
from kcnn.data.info import DatasetInfo, check_image_size
from kcnn.data.normalize import convert_statistics, normalizer
from kcnn.data.sources import load

LABEL_MODES = ("int", "categorical")
SHUFFLE_MEMORY = 256 * 2**20  # bytes of uint8 images the default shuffle buffer may hold
MIN_SHUFFLE_BUFFER = 1024
EPOCH_OPTIONS = tf.data.Options()
EPOCH_OPTIONS.autotune.enabled = False


def make_dataset(
    source,
    batch_size: int,
    split: str = "train",
    image_size=None,
    channels: int | None = None,
    augment=None,
    normalize="standardize",
    shuffle: bool | None = None,
    cache=True,
    seed: int = 0,
    data_dir=None,
    validation_split: float = 0.1,
    *,
    mixup: float | None = None,
    cutmix: float | None = None,
    erasing: float | None = None,
    label_mode: str = "int",
    drop_remainder: bool = False,
    shuffle_buffer: int | None = None,
    class_names=None,
    download: bool = True,
):
    """A batched, normalised, optionally augmented ``tf.data.Dataset`` ready for ``model.fit``.

    Augmentation, MixUp/CutMix and (by default) shuffling apply to the training split only, so
    the same arguments serve every split: ``make_dataset(src, 64, split="test", augment=...)``
    gives test batches untouched by augmentation.

    Args:
        source: anything `kcnn.data.load` takes (a name, ``"tfds:<name>"``, a folder, arrays),
            or a ``(dataset, info)`` pair it returned.
        batch_size: examples per batch.
        split: ``"train"``, ``"validation"`` or ``"test"``; for a ``(dataset, info)`` pair,
            the pair's own split is used (a different explicit split is an error).
        image_size: ``(height, width)`` or an int; default the source's size (required when
            its images have different sizes). Images are resized with bilinear, antialiased
            interpolation, without keeping the aspect ratio (as
            ``keras.utils.image_dataset_from_directory`` does by default).
        channels: 1 or 3; default the source's. Gray becomes RGB by repetition, RGB becomes
            gray with the luma weights.
        augment: ``None``, a preset (a name in `kcnn.data.PRESETS`, e.g. ``"flip"``) or a list
            of Keras layers; see `kcnn.data.augmentation_layers`.
        normalize: ``"standardize"`` (with the training split's per-channel mean and std),
            ``"unit"`` ([0, 1]), a Keras Applications model name (its ``preprocess_input``,
            from 0-255 pixels), a ``(mean, std)`` pair in [0, 1] units, or ``None`` (0-255).
        shuffle: shuffle every epoch; default: for the training split only.
        cache: ``True`` to cache the decoded uint8 images in memory, a file path to cache them
            on disk (in files named after it, the split and a key of what decides the images:
            see `cache_file`), ``False`` not to.
        seed: seed of the shuffle, the augmentation, the mixing, and the validation hold-out.
        data_dir: where to look for the data first (see `kcnn.data.load`).
        validation_split: the share of each class held out for validation when the source has
            no validation split.
        mixup: MixUp's alpha (e.g. 0.2), training only; needs ``label_mode="categorical"``.
        cutmix: CutMix's alpha (e.g. 1.0), training only; needs ``label_mode="categorical"``.
        erasing: probability of RandomErasing, added to (or overriding) the preset's.
        label_mode: ``"int"`` (int64 class indices, for a sparse categorical loss) or
            ``"categorical"`` (float32 one-hot, for a categorical loss; MixUp and CutMix make
            them soft).
        drop_remainder: drop the last, smaller batch.
        shuffle_buffer: elements in the shuffle buffer; default the whole split when it fits
            in 256 MiB of images (Fashion-MNIST, CIFAR), else as many as fit (at least 1024).
        class_names: names of the classes of NumPy arrays.
        download: whether named and tfds datasets may be downloaded when not found locally.

    Returns:
        ``(dataset, info)``: batches of ``float32 (batch, height, width, channels)`` images and
        labels (see ``label_mode``), prefetched, with `EPOCH_OPTIONS`; ``info`` is the source's
        `DatasetInfo` with the output ``image_shape`` and the ``mean``/``std`` of the output
        channels.

    Raises:
        ValueError: naming the argument and the value received, for a bad argument, MixUp or
            CutMix with ``label_mode="int"``, or images of different sizes without
            ``image_size``; and everything `kcnn.data.load` raises.

    Example:
        >>> train, info = make_dataset("fashion_mnist", 128, augment="light")
        >>> val, _ = make_dataset("fashion_mnist", 128, split="validation")
        >>> model.fit(train, validation_data=val, epochs=10)
    """
    batch_size = checks.positive_int("batch_size", batch_size)
    if label_mode not in LABEL_MODES:
        raise ValueError(f"label_mode must be one of {LABEL_MODES}, got {label_mode!r}")
    dataset, info = _resolve_source(
        source, split, data_dir, validation_split, seed, class_names, download
    )
    height, width = _output_size(image_size, info)
    channels = info.channels if channels is None else channels
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    mean, std = convert_statistics(info.mean, info.std, channels)
    output_info = dataclasses.replace(
        info, image_shape=(height, width, channels), mean=mean, std=std
    )
    training = info.split == "train"
    layers = _augmentation(augment, erasing, (height, width), channels, seed) if training else []
    mix = label_mixing(mixup, cutmix, seed + LAYER_SEEDS, dtype="float32") if training else None
    if mix is not None and label_mode != "categorical":
        raise ValueError(
            "mixup and cutmix mix the labels: pass label_mode='categorical' (and a "
            "categorical cross-entropy loss)"
        )
    normalise = normalizer(normalize, output_info)
    shuffle = training if shuffle is None else bool(shuffle)

    dataset = _prepare_images(dataset, info, height, width, channels)
    if cache is not False and cache is not None:
        shape = (height, width, channels)
        where = "" if cache is True else cache_file(cache, info, shape, validation_split, seed)
        dataset = dataset.cache(where)
    if shuffle:
        buffer = shuffle_buffer or _shuffle_buffer(info.num_examples, height * width * channels)
        buffer = checks.positive_int("shuffle_buffer", buffer)
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)

    def finish(images, labels):
        images = tf.cast(images, tf.float32)
        for layer in layers:
            images = layer(images, training=True)
        if label_mode == "categorical":
            labels = tf.one_hot(labels, info.num_classes, dtype=tf.float32)
        if mix is not None:
            images, labels = mix(images, labels)
        return normalise(images), labels

    random = bool(layers) or mix is not None
    dataset = dataset.map(finish, num_parallel_calls=None if random else tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(EPOCH_OPTIONS), output_info


def cache_file(path, info: DatasetInfo, image_shape, validation_split: float, seed: int) -> str:
    """The file name under which ``make_dataset(..., cache=path)`` caches a split's images.

    tf.data reads a cache file that exists without checking what is in it, so the name holds
    the split and a digest of everything that decides the cached images: the source (its name,
    location, size, classes and training statistics), the output image shape, and the share
    and seed of the validation hold-out. Each split, and a run with another seed or size, gets
    files of its own instead of silently reading the training images cached under the path.
    """
    key = (
        info.name,
        info.source,
        info.split,
        info.num_examples,
        tuple(info.class_names),
        info.mean,
        info.std,
        tuple(image_shape),
        validation_split,
        seed,
    )
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
    return f"{path}-{info.split}-{digest}"


def _resolve_source(source, split, data_dir, validation_split, seed, class_names, download):
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[1], DatasetInfo):
        dataset, info = source
        if not isinstance(dataset, tf.data.Dataset):
            raise ValueError(
                f"source=(dataset, info) needs a tf.data.Dataset, got {type(dataset).__name__}"
            )
        if split not in ("train", info.split):
            raise ValueError(
                f"split={split!r} but the dataset given is the {info.split!r} split of {info.name}"
            )
        return dataset, info
    return load(
        source,
        split=split,
        data_dir=data_dir,
        validation_split=validation_split,
        seed=seed,
        class_names=class_names,
        download=download,
    )


def _augmentation(augment, erasing, image_size, channels, seed) -> list:
    if augment is None and not erasing:
        return []
    return augmentation_layers(
        "none" if augment is None else augment,
        image_size=image_size,
        channels=channels,
        seed=seed,
        erasing=erasing,
        dtype="float32",
    )


def _output_size(image_size, info: DatasetInfo) -> tuple:
    if image_size is None:
        height, width = info.image_shape[:2]
        if height is None or width is None:
            raise ValueError(
                f"the images of {info.name} ({info.source}) have different sizes: pass "
                "image_size=(height, width)"
            )
        return height, width
    return check_image_size(image_size)


def _prepare_images(dataset, info: DatasetInfo, height: int, width: int, channels: int):
    """Convert channels and resize each image, keeping uint8; no map when nothing changes."""
    resize = tuple(info.image_shape[:2]) != (height, width)
    convert = info.channels != channels
    if not resize and not convert:
        return dataset

    def prepare(image, label):
        if convert:
            image = convert_channels(image, channels)
        if resize:
            image = resize_image(image, (height, width))
        image.set_shape((height, width, channels))
        return image, label

    return dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)


def _shuffle_buffer(num_examples: int, image_bytes: int) -> int:
    fitting = max(MIN_SHUFFLE_BUFFER, SHUFFLE_MEMORY // max(image_bytes, 1))
    return max(1, min(num_examples, fitting))
