"""Reading IDX files, the format of MNIST and Fashion-MNIST (LeCun et al., 1998).

An IDX file is a big-endian header -- two zero bytes, a type code, the number of dimensions --
then one 32-bit size per dimension, then the values. MNIST and Fashion-MNIST ship it gzipped
(``train-images-idx3-ubyte.gz``); both forms are read here. NumPy has no IDX reader and
``keras.datasets`` reads these files only after downloading them, so this is written by hand.
"""

from __future__ import annotations

import gzip
import os

import numpy as np

# IDX type codes (third byte of the magic number) and the NumPy dtype they hold, big-endian.
IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzipped when its name ends in ``.gz``) into a NumPy array.

    Args:
        path: the file, e.g. ``train-images-idx3-ubyte.gz``.

    Returns:
        An array with the file's dimensions and type (``uint8`` for MNIST images and labels),
        in native byte order.

    Raises:
        ValueError: naming the file, when it is not an IDX file, is truncated, or has bytes
            left over after the values its header announces.

    Example:
        >>> labels = read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
        >>> labels.shape
        (10000,)
    """
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as file:
            data = file.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"cannot read IDX file {path!r}: {error}") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise ValueError(f"{path!r} is not an IDX file (bad magic number {data[:4].hex()!r})")
    dtype = IDX_DTYPES[data[2]]
    ndim = data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ValueError(f"IDX file {path!r} is truncated inside its header")
    shape = tuple(int(size) for size in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = header_size + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"IDX file {path!r} holds {len(data)} bytes but its header (shape {shape}, "
            f"{dtype}) announces {expected}: the file is truncated or corrupt"
        )
    values = np.frombuffer(data, dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="), copy=False)
