"""What `kcnn.data.load` says about the data it returns, and the pixel statistics it measures."""

from __future__ import annotations

import dataclasses

import numpy as np

from kcnn import checks

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """A description of one split of a dataset.

    Attributes:
        name: the dataset's name (``"fashion_mnist"``, ``"tfds:tf_flowers"``, a folder's name,
            ``"arrays"``).
        class_names: one name per class, in label order.
        num_classes: ``len(class_names)``; labels are in ``[0, num_classes)``.
        image_shape: ``(height, width, channels)`` of the images; height and width are ``None``
            when the images have different sizes (a folder of photos).
        num_examples: the number of examples in this split.
        source: where the data came from: a file or folder path, ``"keras.datasets"``, the
            tfds data folder, ``"arrays"``.
        mean: per-channel mean of the training split's pixels in [0, 1] units, or ``None``.
        std: per-channel standard deviation of the training split's pixels in [0, 1] units, or
            ``None``. `kcnn.data.make_dataset` uses ``mean`` and ``std`` for
            ``normalize="standardize"``.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        skipped: the image files that could not be decoded and were left out (each was named in
            a warning); empty for sources that are not image folders.
    """

    name: str
    class_names: tuple
    num_classes: int
    image_shape: tuple
    num_examples: int
    source: str
    mean: tuple | None = None
    std: tuple | None = None
    split: str = "train"
    skipped: tuple = ()

    def __post_init__(self):
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"num_classes={self.num_classes} does not match the {len(self.class_names)} "
                "class names"
            )
        if len(self.image_shape) != 3:
            raise ValueError(
                f"image_shape must be (height, width, channels), got {self.image_shape}"
            )
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")

    @property
    def channels(self) -> int:
        """The number of channels of the images (1 for grayscale, 3 for RGB)."""
        return self.image_shape[2]


def check_image_size(image_size) -> tuple[int, int]:
    """``(height, width)`` from an int or a pair of positive ints.

    Raises:
        ValueError: naming ``image_size`` and the value received.
    """
    size = (image_size, image_size) if checks.is_integer(image_size) else image_size
    try:
        height, width = size
    except (TypeError, ValueError):
        height = width = None
    for value in (height, width):
        if not checks.is_integer(value) or value < 1:
            raise ValueError(
                f"image_size must be a positive int or (height, width), got {image_size!r}"
            )
    return int(height), int(width)


def pixel_statistics(images: np.ndarray, chunk: int = 4096) -> tuple[tuple, tuple]:
    """Per-channel mean and standard deviation of uint8 images, in [0, 1] units.

    Computed exactly from each channel's histogram of the 256 pixel values, counted over
    ``chunk`` images at a time so that no large copy of the images is made.

    Args:
        images: ``(N, H, W, C)`` uint8 array.
        chunk: images counted at a time.

    Returns:
        ``(mean, std)``, two tuples of ``C`` floats.

    Raises:
        ValueError: when ``images`` is empty, not 4-dimensional or not uint8.
    """
    if images.ndim != 4 or len(images) == 0 or images.dtype != np.uint8:
        raise ValueError(
            f"expected a non-empty uint8 (N, H, W, C) array, got {images.dtype} {images.shape}"
        )
    channels = images.shape[-1]
    counts = np.zeros((channels, 256))
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk]
        for channel in range(channels):
            counts[channel] += np.bincount(block[..., channel].ravel(), minlength=256)
    values = np.arange(256, dtype=np.float64)
    return statistics_from_sums(counts @ values, counts @ np.square(values), counts[0].sum())


def statistics_from_sums(total, total_sq, count) -> tuple[tuple, tuple]:
    """``(mean, std)`` in [0, 1] units from per-channel sums of 0-255 pixel values and squares."""
    mean = np.asarray(total, np.float64) / count
    variance = np.maximum(np.asarray(total_sq, np.float64) / count - np.square(mean), 0.0)
    return tuple(float(v) for v in mean / 255.0), tuple(float(v) for v in np.sqrt(variance) / 255.0)
