"""Data the tests make: IDX files, CIFAR batches, folders of images with broken files mixed in."""

import gzip
import os
import pickle
import struct
import zlib

import numpy as np
import pytest

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def write_idx(path, array):
    """Write ``array`` (uint8) as an IDX file, gzipped when ``path`` ends in ``.gz``."""
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as file:
        file.write(header + array.tobytes())


def mnist_like(seed, count, classes=10):
    """Random 28x28 images and balanced labels."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
    labels = (np.arange(count) % classes).astype(np.uint8)
    return images, labels


def write_idx_dataset(folder, train_count=60, test_count=20, gz=True, labels_fn=None):
    """The four IDX files of an MNIST-like dataset; returns the arrays written."""
    os.makedirs(folder, exist_ok=True)
    suffix = ".gz" if gz else ""
    train = mnist_like(0, train_count)
    test = mnist_like(1, test_count)
    if labels_fn is not None:
        train = (train[0], labels_fn(train[1]))
    for prefix, (images, labels) in (("train", train), ("t10k", test)):
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte{suffix}"), images)
        write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte{suffix}"), labels)
    return train, test


def write_cifar_batch(path, seed, count, label_key=b"labels", classes=10):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (count, 3 * 32 * 32), dtype=np.uint8)
    labels = [int(v) for v in np.arange(count) % classes]
    with open(path, "wb") as file:
        pickle.dump({b"data": data, label_key: labels}, file)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), np.asarray(labels)


def save_image(path, array, format=None, **options):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, format=format, **options)


def write_png_bomb(path, width=100_000, height=100_000):
    """A valid PNG of a few hundred bytes whose header declares ``width`` x ``height`` grey
    pixels (the data holds a few rows): a decompression bomb."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width + 1) * 4)
    content = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as file:
        file.write(content + chunk(b"IEND", b""))
    return str(path)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def image_folder(tmp_path):
    """Three classes of lossless 20x24 RGB images (PNG, BMP) with known pixels, plus broken
    files: the folder and ``{path: pixels}`` of the good files."""
    rng = np.random.default_rng(0)
    root = tmp_path / "shapes"
    pixels = {}
    for label in ("circle", "square", "triangle"):
        for i in range(6):
            image = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
            extension = "bmp" if i == 5 else "png"
            path = str(root / label / f"{label}_{i}.{extension}")
            save_image(path, image)
            pixels[path] = image
    return root, pixels


def add_broken_files(root):
    """Zero-byte, truncated and non-image files; returns their paths."""
    broken = {
        "circle/empty.jpg": b"",
        "square/truncated.png": None,
        "square/truncated.jpg": None,
        "triangle/not_an_image.png": b"hello, I am text",
    }
    png = next((root / "square").glob("*.png")).read_bytes()
    jpeg_path = root / "tmp.jpg"
    Image.fromarray(np.full((20, 24, 3), 128, np.uint8)).save(jpeg_path, quality=90)
    jpeg = jpeg_path.read_bytes()
    jpeg_path.unlink()
    broken["square/truncated.png"] = png[: len(png) // 2]
    broken["square/truncated.jpg"] = jpeg[: len(jpeg) // 2]
    paths = []
    for name, content in broken.items():
        path = root / name
        path.write_bytes(content)
        paths.append(str(path))
    return paths
