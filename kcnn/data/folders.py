"""Folders of images, one sub-folder per class: listed, checked and decoded.

The layout is ``keras.utils.image_dataset_from_directory``'s (``root/<class>/<image>``), with
optional split folders (``root/train/<class>/...``, ``root/validation/`` or ``root/val/``,
``root/test/``). Images are decoded with `kcnn.data.images`, as ``kcnn predict`` decodes them:
JPEG, PNG, BMP and GIF, recognised by their content, not their extension. Each real folder under
a class folder is read once: a symbolic link to a folder already read (an ancestor, the root, a
class folder) is not followed, with a `SkippedLinkWarning` naming it.

Before anything is trained on, every file is decoded once (in parallel, with tf.data). A file
that does not decode -- empty, truncated, corrupt, not an image, or larger than the pixel limit
(`kcnn.data.images.max_image_pixels`, judged from its header without decoding it) -- is skipped
with one `SkippedImageWarning` that names it and says why; the others go on, and
`DatasetInfo.skipped` lists the skipped files. That pass also measures each image's size,
channels and pixel sums, which give the dataset's image shape and its mean and standard
deviation. What decodes without error is decoded correctly: a CMYK JPEG becomes RGB, a 16-bit
PNG keeps its 8 most significant bits, an animated GIF gives its first frame, an RGBA image
loses its alpha channel. The pass is remembered for files whose size and modification
time have not changed, so loading the train, validation and test splits decodes each file once.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tensorflow as tf

from kcnn.data.images import (
    ImageFileError,
    check_image_file,
    decode_image,
    max_image_pixels,
    read_image,
)
from kcnn.data.info import DatasetInfo, statistics_from_sums
from kcnn.data.splits import hold_out
from kcnn.progress import Progress

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
PROGRESS_MIN_FILES = 5000  # folders with fewer files decode in seconds: no progress shown
PROGRESS_PARTS = 20  # a larger folder is decoded in this many parts, one progress line each
SPLIT_FOLDERS = {"train": ("train",), "validation": ("validation", "val"), "test": ("test",)}


class SkippedImageWarning(UserWarning):
    """An image file that could not be decoded and was left out of the dataset."""


class SkippedLinkWarning(UserWarning):
    """A symbolic link to a folder already read (or an ancestor of it), not followed."""


@dataclasses.dataclass(frozen=True)
class ImageScan:
    """What decoding every file once found: one entry per file, in the order given.

    Attributes:
        readable: whether the file decoded.
        heights, widths, channels: the decoded image's size and its own channel count (1 gray,
            2 gray + alpha, 3 RGB, 4 RGBA); zero for unreadable files.
        sums, squares: per-channel sums of the pixel values (0-255) and of their squares,
            ``(N, 4)``, zero past the image's channel count.
        problems: ``{path: reason}`` for the unreadable files.
    """

    readable: np.ndarray
    heights: np.ndarray
    widths: np.ndarray
    channels: np.ndarray
    sums: np.ndarray
    squares: np.ndarray
    problems: dict


def load_folder(folder: str, split: str, fraction: float, seed: int):
    """Load one split of a folder of class sub-folders; see `kcnn.data.load`.

    Raises:
        ValueError: naming the folder, when it has no images, a single class, a class folder
            with no (readable) images, or no folder for the split asked for.
    """
    folder = os.path.abspath(folder)
    layout = split_layout(folder)
    train_folder = layout.get("train", folder)
    class_names = class_folders(train_folder)
    train_paths, train_labels, train_scan = _readable(
        train_folder, class_names, *list_images(train_folder, class_names)
    )
    channels = 1 if np.all(train_scan.channels <= 2) else 3
    skipped = tuple(train_scan.problems)
    own_folder = layout.get(split)
    if split == "test" and own_folder is None:
        raise ValueError(
            f"folder {folder!r} has no test split: put the test images in "
            f"{os.path.join(folder, 'test')}/<class>/ (and the training images in train/)"
        )
    if "validation" in layout:
        train_indices, validation_indices = np.arange(len(train_labels)), None
    else:
        train_indices, validation_indices = hold_out(train_labels, split, fraction, seed, folder)
    if split != "train" and own_folder is not None:
        paths, labels, scan = _readable(
            own_folder,
            class_names,
            *list_images(own_folder, class_names, allow_missing_classes=True),
            every_class=False,
        )
        skipped += tuple(scan.problems)
    else:
        selected = train_indices if split == "train" else validation_indices
        paths = [train_paths[i] for i in selected]
        labels, scan = train_labels[selected], _subset(train_scan, selected)
    mean, std = _statistics(_subset(train_scan, train_indices), channels)
    info = DatasetInfo(
        name=os.path.basename(folder.rstrip(os.sep)),
        class_names=tuple(class_names),
        num_classes=len(class_names),
        image_shape=_common_shape(scan, channels),
        num_examples=len(labels),
        source=folder,
        mean=mean,
        std=std,
        split=split,
        skipped=tuple(skipped),
    )
    return decode_dataset(paths, labels, info.image_shape), info


def split_layout(folder: str) -> dict:
    """``{split: sub-folder}`` when ``folder`` is split into ``train/``, ``validation/`` (or
    ``val/``) and ``test/`` sub-folders, else ``{}``."""
    names = set(_visible_subfolders(folder))
    known = {name for names_ in SPLIT_FOLDERS.values() for name in names_}
    if "train" not in names or not names <= known:
        return {}
    return {
        split: os.path.join(folder, name)
        for split, candidates in SPLIT_FOLDERS.items()
        for name in candidates
        if name in names
    }


def class_folders(folder: str) -> list[str]:
    """The sorted class sub-folder names of ``folder``.

    Raises:
        ValueError: naming the folder, when it does not exist, or has fewer than two classes.
    """
    if not os.path.isdir(folder):
        raise ValueError(f"image folder {folder!r} does not exist")
    names = _visible_subfolders(folder)
    if not names:
        loose = [f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS)]
        detail = f" ({len(loose)} images lie directly in it)" if loose else ""
        raise ValueError(
            f"image folder {folder!r} has no class sub-folders{detail}: put the images of each "
            "class in a sub-folder named after the class"
        )
    if len(names) == 1:
        raise ValueError(
            f"image folder {folder!r} has a single class ({names[0]!r}); a classifier needs at "
            "least two class sub-folders"
        )
    return names


def list_images(folder: str, class_names, allow_missing_classes: bool = False) -> tuple:
    """Every image file under ``folder/<class>/`` (recursively, sorted) and its label.

    Raises:
        ValueError: naming the class folder, when one has no image files (unless
            ``allow_missing_classes``, for validation and test folders), or naming ``folder``
            when a class sub-folder is not one of ``class_names``.
    """
    extra = sorted(set(_visible_subfolders(folder)) - set(class_names))
    if extra:
        raise ValueError(
            f"folder {folder!r} has class folders {extra} that the training folder does not have"
        )
    paths, labels = [], []
    read = {os.path.realpath(folder)}
    read.update(os.path.realpath(os.path.join(folder, name)) for name in class_names)
    for label, name in enumerate(class_names):
        class_folder = os.path.join(folder, name)
        found = _image_files(class_folder, read) if os.path.isdir(class_folder) else []
        if not found and not allow_missing_classes:
            raise ValueError(
                f"class folder {class_folder!r} has no image files ({', '.join(IMAGE_EXTENSIONS)})"
            )
        paths += found
        labels += [label] * len(found)
    if not paths:
        raise ValueError(f"folder {folder!r} has no image files")
    return paths, np.asarray(labels, np.int64)


def decode_dataset(paths, labels, image_shape) -> tf.data.Dataset:
    """A dataset of ``(uint8 image, int64 label)`` decoding ``paths`` in order, in parallel."""
    channels = image_shape[2]

    def decode(path, label):
        image = decode_image(tf.io.read_file(path), channels)
        image.set_shape(image_shape)
        return image, label

    dataset = tf.data.Dataset.from_tensor_slices((list(paths), np.asarray(labels, np.int64)))
    return dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)


def scan_images(paths: tuple) -> ImageScan:
    """Decode every file of ``paths`` once; warn once about each one that does not decode or
    whose header declares more pixels than `kcnn.data.images.max_image_pixels` (those are not
    decoded). From `PROGRESS_MIN_FILES` files on, standard error shows how many are decoded,
    the time elapsed and about how much is left (`kcnn.progress`).

    Remembered for the same files with the same sizes and modification times, and limit.
    """
    return _scan_cached(tuple((p, *_stamp(p)) for p in paths), max_image_pixels())


def _stamp(path: str) -> tuple:
    try:
        status = os.stat(path)
    except OSError:
        return (-1, -1)
    return (status.st_size, status.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _scan_cached(stamped: tuple, max_pixels: int) -> ImageScan:
    paths = [entry[0] for entry in stamped]
    count = len(paths)
    readable = np.zeros(count, bool)
    heights, widths, channels = (np.zeros(count, np.int64) for _ in range(3))
    sums, squares = np.zeros((count, 4)), np.zeros((count, 4))
    with ThreadPoolExecutor(max_workers=8) as pool:
        refusals = list(pool.map(lambda path: _header_problem(path, max_pixels), paths))
    checked = [i for i in range(count) if refusals[i] is None]
    for index, shape, sum_, square in _measure(paths, checked):
        readable[index] = True
        heights[index], widths[index], channels[index] = shape[:, 0], shape[:, 1], shape[:, 2]
        sums[index], squares[index] = sum_, square
    problems = {
        paths[i]: refusals[i] or _decode_problem(paths[i], max_pixels)
        for i in np.flatnonzero(~readable)
    }
    for path, reason in problems.items():
        warnings.warn(f"skipping image file {path}: {reason}", SkippedImageWarning, stacklevel=2)
    return ImageScan(readable, heights, widths, channels, sums, squares, problems)


def _measure(paths, checked):
    """Decode ``paths[i]`` for each ``i`` of ``checked`` and yield, batch by batch, the indices
    of those that decoded, their shapes, per-channel sums and sums of squares (padded to four
    channels). A folder of `PROGRESS_MIN_FILES` files or more is decoded in `PROGRESS_PARTS`
    parts, with a progress line before each."""

    def measure(index, path):
        image = decode_image(tf.io.read_file(path))
        pixels = tf.cast(image, tf.float64)
        padding = [[0, 4 - tf.shape(image)[2]]]
        return (
            index,
            tf.shape(image),
            tf.pad(tf.reduce_sum(pixels, axis=[0, 1]), padding),
            tf.pad(tf.reduce_sum(tf.square(pixels), axis=[0, 1]), padding),
        )

    if len(checked) < PROGRESS_MIN_FILES:
        parts, progress = [checked], None
    else:
        size = -(-len(checked) // PROGRESS_PARTS)
        parts = [checked[start : start + size] for start in range(0, len(checked), size)]
        progress = Progress(len(checked), "image")
        where = os.path.commonpath([paths[i] for i in checked])
    for part in parts:
        if progress is not None:
            progress.step(f"decoding {where}", size=len(part))
        dataset = (
            tf.data.Dataset.from_tensor_slices(
                (np.asarray(part, np.int64), tf.constant([paths[i] for i in part], tf.string))
            )
            .map(measure, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
            .ignore_errors()
            .batch(256)
        )
        yield from dataset.as_numpy_iterator()
    if progress is not None:
        progress.close()


def _header_problem(path: str, max_pixels: int) -> str | None:
    """Why the header of ``path`` refuses it (unknown format, too many pixels...), or None."""
    try:
        check_image_file(path, max_pixels)
    except ImageFileError as error:
        return error.reason
    return None


def _decode_problem(path: str, max_pixels: int) -> str:
    """Why ``path`` does not decode, in a few words."""
    try:
        read_image(path, max_pixels=max_pixels)
    except ImageFileError as error:
        return error.reason
    return "it could not be decoded"


def _readable(folder, class_names, paths, labels, every_class: bool = True) -> tuple:
    """Decode-check ``paths`` and keep those that decoded: ``(paths, labels, scan)``, where
    ``scan`` covers the kept files and its ``problems`` name the others.

    Raises:
        ValueError: naming the folder, when no file decoded, or naming a class folder none of
            whose files decoded (for a training folder, ``every_class``).
    """
    scan = scan_images(tuple(paths))
    keep = np.flatnonzero(scan.readable)
    if len(keep) == 0:
        raise ValueError(f"folder {folder!r} has no readable images")
    if every_class:
        for label, name in enumerate(class_names):
            if not np.any(labels[keep] == label):
                raise ValueError(
                    f"class folder {os.path.join(folder, name)!r} has no readable images "
                    f"(all {int(np.sum(labels == label))} failed to decode)"
                )
    return [paths[i] for i in keep], labels[keep], _subset(scan, keep)


def _statistics(scan: ImageScan, channels: int) -> tuple:
    """Mean and std of the images as decoded with ``channels`` (gray replicated to RGB, alpha
    dropped), from the per-file sums of ``scan``."""
    gray = (scan.channels <= 2)[:, None]
    sums = np.where(gray, scan.sums[:, :1], scan.sums[:, :3])
    squares = np.where(gray, scan.squares[:, :1], scan.squares[:, :3])
    pixels = float(np.sum(scan.heights * scan.widths))
    mean, std = statistics_from_sums(sums.sum(axis=0), squares.sum(axis=0), pixels)
    return (mean[:1], std[:1]) if channels == 1 else (mean, std)


def _subset(scan: ImageScan, indices) -> ImageScan:
    return dataclasses.replace(
        scan,
        readable=scan.readable[indices],
        heights=scan.heights[indices],
        widths=scan.widths[indices],
        channels=scan.channels[indices],
        sums=scan.sums[indices],
        squares=scan.squares[indices],
    )


def _common_shape(scan: ImageScan, channels: int) -> tuple:
    sizes = set(zip(scan.heights.tolist(), scan.widths.tolist()))
    height, width = sizes.pop() if len(sizes) == 1 else (None, None)
    return (height, width, channels)


def _folders_to_enter(root: str, names, top: str, read: set) -> list[str]:
    """The visible sub-folders ``names`` of ``root`` not read yet: real folders first, so that a
    link rather than the folder it leads to is the one left out."""
    ancestors = os.path.realpath(top) + os.sep
    kept = []
    names = sorted(n for n in names if not n.startswith("."))
    for name in sorted(names, key=lambda n: os.path.islink(os.path.join(root, n))):
        path = os.path.join(root, name)
        real = os.path.realpath(path)
        if real in read or ancestors.startswith(real.rstrip(os.sep) + os.sep):
            where = "a folder read already" if real in read else "a folder that holds it"
            warnings.warn(
                f"not following the link {path}: it leads to {real}, {where}",
                SkippedLinkWarning,
                stacklevel=2,
            )
            continue
        read.add(real)
        kept.append(name)
    return sorted(kept)


def _visible_subfolders(folder: str) -> list[str]:
    return sorted(
        name
        for name in os.listdir(folder)
        if not name.startswith(".") and os.path.isdir(os.path.join(folder, name))
    )


def _image_files(folder: str, read: set) -> list[str]:
    """The image files under ``folder``, sorted, following symbolic links to folders but
    entering each real folder once: ``read`` holds the real paths of the folders already read
    (or to be read), and grows; a link to one of them, or to an ancestor of ``folder``, is not
    followed, with a `SkippedLinkWarning`."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = _folders_to_enter(root, dirs, folder, read)
        found += [
            os.path.join(root, f)
            for f in sorted(files)
            if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS)
        ]
    return found
