"""The classic hand-made filters of image processing (the course's section 2.3) as named kernels,
and a Keras ``Conv2D`` that applies them with fixed, non-trainable weights.

They are what a CNN's first layer learns by itself (edges, blurs), so a fixed filter bank is a
baseline to compare learned filters with, and a way to see a convolution at work. Kernels are
given for cross-correlation (what Keras, PyTorch and the course compute): ``K[m, n]`` multiplies
the pixel ``m`` rows below and ``n`` columns right of the window's corner.

Example:
    >>> classic_kernel("sobel_x")
    array([[-1.,  0.,  1.],
           [-2.,  0.,  2.],
           [-1.,  0.,  1.]], dtype=float32)
    >>> edges = fixed_conv2d(["sobel_x", "sobel_y"], input_channels=1)
    >>> edges(images).shape   # (batch, height, width, 2)
"""

from __future__ import annotations

import numpy as np
from keras import layers

from kcnn import checks

__all__ = ["CLASSIC_FILTERS", "classic_kernel", "fixed_conv2d"]

_KERNELS = {
    # The course's section 2.3.
    "vertical_edge": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
    "horizontal_edge": [[1, 1, 1], [0, 0, 0], [-1, -1, -1]],
    "box_blur": np.full((3, 3), 1 / 9),
    "sobel_x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel_y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    # The 3x3 binomial approximation of a Gaussian (sigma about 0.85).
    "gaussian": np.outer([1, 2, 1], [1, 2, 1]) / 16,
    # The 4-neighbour discrete Laplacian: zero on flat and linear regions, large at edges.
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    # Identity plus the negated Laplacian: the image with its edges enhanced.
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
}

CLASSIC_FILTERS = tuple(_KERNELS)


def classic_kernel(name: str) -> np.ndarray:
    """The 3x3 kernel called ``name`` (one of `CLASSIC_FILTERS`), as a new float32 array.

    Raises:
        ValueError: for an unknown name; the message lists the known ones.
    """
    if name not in _KERNELS:
        raise ValueError(
            f"unknown filter {name!r}; the classic filters are: {', '.join(CLASSIC_FILTERS)}"
        )
    return np.array(_KERNELS[name], dtype="float32")


def _as_kernel(item) -> np.ndarray:
    if isinstance(item, str):
        return classic_kernel(item)
    kernel = np.asarray(item, dtype="float32")
    if kernel.ndim != 2 or 0 in kernel.shape:
        raise ValueError(
            f"a filter must be a name or a 2D (kh, kw) array, got an array of shape {kernel.shape}"
        )
    return kernel


def fixed_conv2d(
    filters=CLASSIC_FILTERS,
    input_channels: int = 1,
    padding: str = "same",
    name: str = "classic_filters",
) -> layers.Conv2D:
    """A built ``Conv2D`` whose output channel ``i`` applies filter ``i``, with frozen weights.

    Each filter is applied to the mean of the input channels (a grey-level image for RGB input):
    the kernel of output ``i`` is ``K_i / input_channels`` on every input channel. The layer has
    no bias and ``trainable=False``, so it stays the hand-made filter when the model around it
    trains; its weights are saved and loaded with the model like any other.

    Args:
        filters: names from `CLASSIC_FILTERS` and/or 2D arrays, all of the same size.
        input_channels: channels of the images it will filter (1 for grey, 3 for RGB).
        padding: ``"same"`` (output the size of the input) or ``"valid"``.
        name: the layer's name.

    Returns:
        A built, non-trainable ``keras.layers.Conv2D`` with ``len(filters)`` output channels.

    Raises:
        ValueError: for an unknown filter name, filters of different sizes, an empty
            ``filters``, a non-positive ``input_channels`` or an unknown ``padding``.

    Example:
        >>> layer = fixed_conv2d(["vertical_edge", "horizontal_edge"], input_channels=3)
        >>> features = layer(rgb_images)   # (batch, height, width, 2)
    """
    if isinstance(filters, str):
        filters = [filters]
    kernels = [_as_kernel(item) for item in filters]
    if not kernels:
        raise ValueError("filters must name at least one filter, got an empty sequence")
    shapes = {kernel.shape for kernel in kernels}
    if len(shapes) > 1:
        raise ValueError(f"filters must all have the same size, got sizes {sorted(shapes)}")
    input_channels = checks.positive_int("input_channels", input_channels)
    if padding not in ("same", "valid"):
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
    bank = np.stack(kernels, axis=-1)[:, :, None, :] / input_channels
    weights = np.repeat(bank, input_channels, axis=2).astype("float32")
    layer = layers.Conv2D(
        len(kernels),
        kernel_size=bank.shape[:2],
        padding=padding,
        use_bias=False,
        trainable=False,
        name=name,
    )
    layer.build((None, None, None, input_channels))
    layer.set_weights([weights])
    return layer
