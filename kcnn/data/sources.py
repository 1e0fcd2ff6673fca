"""`load`: one entry point for every source of images -- named datasets, tensorflow-datasets,
folders of images, NumPy arrays -- returning an unbatched ``tf.data.Dataset`` of
``(uint8 image (H, W, C), int64 label)`` and a `DatasetInfo`.
"""

from __future__ import annotations

import difflib
import os

import numpy as np
import tensorflow as tf

from kcnn.data.info import DatasetInfo, check_image_size, pixel_statistics
from kcnn.data.named import NAMED_DATASETS, load_named
from kcnn.data.splits import check_split, hold_out
from kcnn.errors import UserError


def load(
    name_or_path,
    split: str = "train",
    data_dir=None,
    validation_split: float = 0.1,
    seed: int = 0,
    *,
    class_names=None,
    download: bool = True,
):
    """Load one split of a dataset as an unbatched ``tf.data.Dataset`` of ``(image, label)``.

    Sources:

    - ``"fashion_mnist"``, ``"mnist"``, ``"cifar10"``, ``"cifar100"``: read from ``data_dir``,
      ``$KCNN_DATA_DIR``, the Keras cache or a system folder (Debian's
      ``/usr/share/datasets/fashion-mnist``), else downloaded with ``keras.datasets``.
    - ``"tfds:<name>"``: a tensorflow-datasets dataset, prepared in ``data_dir`` (or tfds's
      default folder), downloaded and prepared there if it is not.
    - a folder of images with one sub-folder per class (JPEG, PNG, BMP, GIF), optionally split
      into ``train/``, ``validation/`` (or ``val/``) and ``test/`` sub-folders. Files that cannot
      be decoded are skipped with one warning each (see `kcnn.data.folders`).
    - NumPy arrays: ``(x, y)`` (training data) or ``((x_train, y_train), (x_test, y_test))``
      as ``keras.datasets`` returns them; ``x`` is ``(N, H, W)`` or ``(N, H, W, C)`` integers in
      [0, 255], ``y`` is ``(N,)`` or ``(N, 1)`` integer labels.

    When a source has no validation split, ``"validation"`` is a seeded, stratified hold-out of
    ``validation_split`` of each class of the training split, and ``"train"`` is the rest.

    Args:
        name_or_path: the source, as above.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        data_dir: a folder searched first for named datasets; tfds's data folder.
        validation_split: the share of each class held out for validation, in [0, 1).
        seed: seed of the hold-out.
        class_names: names of the classes of NumPy arrays (default: ``"0"``, ``"1"``...).
        download: whether named and tfds datasets may be downloaded when not found locally.

    Returns:
        ``(dataset, info)``: the dataset yields ``uint8 (H, W, C)`` images and ``int64`` labels
        in a fixed order (shuffling is `make_dataset`'s job); ``info`` is a `DatasetInfo` whose
        ``mean``/``std`` are those of the training split.

    Raises:
        ValueError: for an unknown name (with the closest names), a bad split, labels outside
            ``[0, num_classes)``, arrays of the wrong shape or type, or an image folder with no
            images, one class or an empty class folder.
        FileNotFoundError: when a named dataset is not on disk and cannot be downloaded; the
            message says which files to put where, or what to install.

    Example:
        >>> train, info = load("fashion_mnist", split="train")
        >>> info.num_examples, info.image_shape
        (54000, (28, 28, 1))
    """
    fraction = check_split(split, validation_split)
    if isinstance(name_or_path, (tuple, list)):
        train, test = _array_splits(name_or_path)
        return from_arrays(
            train,
            test,
            split,
            fraction,
            seed,
            name="arrays",
            source="arrays",
            class_names=class_names,
        )
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ValueError(
            "name_or_path must be a dataset name, 'tfds:<name>', a folder or NumPy arrays "
            f"(x, y), got {type(name_or_path).__name__}"
        )
    text = os.fspath(name_or_path)
    if text.startswith("tfds:"):
        from kcnn.data.tfds_source import load_tfds

        return load_tfds(text[len("tfds:") :], split, data_dir, fraction, seed, download)
    if text in NAMED_DATASETS:
        raw = load_named(text, data_dir, download)
        return from_arrays(
            raw.train,
            raw.test,
            split,
            fraction,
            seed,
            name=text,
            source=raw.source,
            class_names=NAMED_DATASETS[text].class_names,
        )
    if os.path.isdir(text):
        from kcnn.data.folders import load_folder

        return load_folder(text, split, fraction, seed)
    close = difflib.get_close_matches(text, list(NAMED_DATASETS), n=3, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise ValueError(
        f"unknown dataset {text!r}: not one of {', '.join(NAMED_DATASETS)}, not 'tfds:<name>' "
        f"and not an existing folder.{hint}"
    )


def training_datasets(
    data,
    batch_size: int,
    *,
    validation_data=None,
    test_data=None,
    validation_split: float = 0.1,
    test: bool = True,
    **options,
):
    """The batched datasets of a training run, from a data source or as given.

    `kcnn.training.train` and `kcnn.transfer.train` read their data through this one function:
    kcnn models take raw 0-255 pixels (they normalise in their first layers), so every split is
    made with ``normalize=None``; augmentation and MixUp/CutMix reach the training split only
    (`make_dataset` applies them there alone).

    A ``tf.data.Dataset`` is used as it is, so the options that only reading a source can honour
    (``augment``, ``erasing``, ``mixup``, ``cutmix``, ``data_dir``) are refused with it rather
    than ignored, and ``image_size`` and ``channels``, where given, must be its images' own.

    Args:
        data: a batched ``tf.data.Dataset`` of ``(images, labels)`` (returned as it is, with
            ``validation_data`` and ``test_data``), or anything `load` takes.
        batch_size: the batch size of every split.
        validation_data, test_data: batched datasets, with ``tf.data`` ``data`` only.
        validation_split: share of the training split held out for validation (0: none).
        test: whether to make the source's test split.
        **options: more arguments of `kcnn.data.make_dataset` (``image_size``, ``channels``,
            ``augment``, ``seed``, ``data_dir``, ``label_mode``, ``mixup``, ``cutmix``...).

    Returns:
        ``(train, validation, test, info)``: ``validation`` and ``test`` are None when not asked
        for; ``info`` is the source's `DatasetInfo`, None for ``tf.data`` input.

    Raises:
        ValueError: for ``validation_data`` or ``test_data`` with a data source, for a source
            option with a ``tf.data.Dataset`` or a size or channel count that is not its
            images', and what `make_dataset` raises.
    """
    if isinstance(data, tf.data.Dataset):
        _check_given_dataset(data, options)
        return data, validation_data, test_data, None
    if validation_data is not None or test_data is not None:
        raise UserError(
            "validation_data and test_data go with tf.data input; for a data source use "
            "validation_split and test"
        )
    from kcnn.data.pipeline import make_dataset  # pipeline imports this module

    options = dict(options, normalize=None, validation_split=validation_split)
    train, info = make_dataset(data, batch_size, "train", **options)
    validation = None
    if validation_split:
        validation, _ = make_dataset(data, batch_size, "validation", **options)
    test_split = make_dataset(data, batch_size, "test", **options)[0] if test else None
    return train, validation, test_split, info


_SOURCE_OPTIONS = ("augment", "erasing", "mixup", "cutmix", "data_dir")


def _check_given_dataset(data: tf.data.Dataset, options: dict) -> None:
    """Refuse the options a ``tf.data.Dataset`` cannot take (see `training_datasets`)."""
    given = [name for name in _SOURCE_OPTIONS if options.get(name) not in (None, 0, "none")]
    if given:
        raise UserError(
            f"{' and '.join(given)} {'applies' if len(given) == 1 else 'apply'} to a data "
            "source kcnn reads, not to a tf.data.Dataset, which is used as it is: pass the "
            "images as arrays, a folder or a dataset name, or augment the dataset yourself "
            "(kcnn.data.augmentation_layers)"
        )
    spec = data.element_spec
    shape = tuple(getattr(spec[0] if isinstance(spec, tuple) else spec, "shape", ()))[1:]
    if len(shape) != 3:
        return
    size = options.get("image_size")
    any_size = size is None or (isinstance(size, (tuple, list)) and None in size)
    height, width = (None, None) if any_size else check_image_size(size)
    wanted = {"height": height, "width": width, "channels": options.get("channels")}
    for (name, want), have in zip(wanted.items(), shape):
        if want is not None and have is not None and want != have:
            raise UserError(
                f"the dataset's images have {name} {have}, not the {want} asked for: a "
                "tf.data.Dataset is used as it is, not resized"
            )


def from_arrays(train, test, split, fraction, seed, *, name, source, class_names=None):
    """The ``split`` of training arrays ``train`` and test arrays ``test`` (or ``None``).

    Raises:
        ValueError: for the problems `load` lists for arrays, and for ``split="test"`` when
            there are no test arrays.
    """
    x_train, y_train = _check_arrays(*train, "training")
    arrays = {"train": (x_train, y_train)}
    if test is not None:
        x_test, y_test = _check_arrays(*test, "test")
        if x_test.shape[1:] != x_train.shape[1:]:
            raise ValueError(
                f"test images have shape {x_test.shape[1:]} but training images {x_train.shape[1:]}"
            )
        arrays["test"] = (x_test, y_test)
    class_names = _check_labels(arrays, class_names, source)
    if split == "test" and test is None:
        raise ValueError(
            f"{name} has no test split: pass ((x_train, y_train), (x_test, y_test)) to have one"
        )
    train_indices, validation_indices = hold_out(y_train, split, fraction, seed, name)
    if split == "test":
        images, labels = arrays["test"]
    else:
        selected = train_indices if split == "train" else validation_indices
        images, labels = x_train[selected], y_train[selected]
    mean, std = pixel_statistics(x_train[train_indices])
    info = DatasetInfo(
        name=name,
        class_names=class_names,
        num_classes=len(class_names),
        image_shape=tuple(int(d) for d in x_train.shape[1:]),
        num_examples=len(labels),
        source=source,
        mean=mean,
        std=std,
        split=split,
    )
    return tf.data.Dataset.from_tensor_slices((images, labels)), info


def _array_splits(arrays) -> tuple:
    if len(arrays) != 2:
        raise ValueError(
            "arrays must be (x, y) or ((x_train, y_train), (x_test, y_test)), "
            f"got a sequence of {len(arrays)} items"
        )
    first, second = arrays
    if isinstance(first, (tuple, list)) and isinstance(second, (tuple, list)):
        if len(first) != 2 or len(second) != 2:
            raise ValueError("arrays must be ((x_train, y_train), (x_test, y_test))")
        return tuple(first), tuple(second)
    return (first, second), None


def _check_arrays(x, y, part: str) -> tuple:
    x = np.asarray(x)
    y = np.asarray(y)
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(
            f"{part} images must be integers in [0, 255] (uint8), got dtype {x.dtype}; "
            "convert images in [0, 1] with (x * 255).round().astype('uint8')"
        )
    shape = x.shape
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or len(x) == 0:
        raise ValueError(
            f"{part} images must be (N, height, width) or (N, height, width, 1 or 3) with N > 0, "
            f"got shape {shape}"
        )
    if 0 in x.shape[1:3]:
        raise ValueError(
            f"{part} images must be at least 1 pixel high and 1 wide, got shape {shape}"
        )
    if x.dtype != np.uint8:
        if x.min() < 0 or x.max() > 255:
            raise ValueError(
                f"{part} images must be in [0, 255], got values in [{x.min()}, {x.max()}]"
            )
        x = x.astype(np.uint8)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"{part} labels must be {len(x)} integers, shape (N,) or (N, 1), "
            f"got {y.dtype} {y.shape}"
        )
    return x, y.astype(np.int64)


def _check_labels(arrays: dict, class_names, source: str) -> tuple:
    """The class names, after checking every label is in ``[0, len(class_names))``."""
    low = min(int(y.min()) for _, y in arrays.values())
    high = max(int(y.max()) for _, y in arrays.values())
    if class_names is None:
        class_names = tuple(str(label) for label in range(high + 1))
    class_names = tuple(str(c) for c in class_names)
    if low < 0 or high >= len(class_names):
        raise ValueError(
            f"labels of {source} must be in [0, {len(class_names)}) for the "
            f"{len(class_names)} classes, got labels in [{low}, {high}]"
        )
    return class_names
