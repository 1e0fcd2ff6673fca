"""The arithmetic of convolutional networks, executable: the course's formulas (sections 2-4) as
functions a student can check, and a NumPy reference of convolution and pooling with their
backward passes. Pure NumPy: no Keras model is read here (`kcnn.convmath.analysis` does that).

Conventions, shared by every function here:

- Images are channels-last: ``(H, W)`` for one channel, ``(H, W, C)``, or a batch
  ``(N, H, W, C)``. Kernels are ``(kh, kw)`` for one channel, or ``(kh, kw, C_in, C_out)`` as in
  Keras.
- Convolution is cross-correlation, as the course writes it (eq. 1 and 3) and as Keras and
  PyTorch compute it: ``O[i, j, c] = sum_{m, n, c'} I[i*s + m*d, j*s + n*d, c'] K[m, n, c', c]
  + b[c]`` on the padded input.
- ``padding`` is an integer ``p`` (``p`` zeros on every side: the course's formula, PyTorch's
  ``padding=p``; the output size is floored, so ``0`` is what Keras's ``"valid"`` computes),
  ``"same"`` (Keras's: ``ceil(size / stride)`` outputs, the padding split with the extra pixel at
  the bottom and right), or ``"valid"`` (no padding, and the windows must tile the input exactly:
  when ``(size - kernel) / stride`` is not an integer the last rows would never be seen, which
  is a ``ValueError`` here rather than a silent floor).

The NumPy functions are written for clarity and checking, not speed: every one loops over the
kernel positions and does the rest with array slicing, exactly the sums of the course.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from kcnn import checks

__all__ = [
    "ConvGradients",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "conv_params",
    "format_count",
    "max_pool2d",
    "max_pool2d_backward",
    "output_size",
]

PADDING_MODES = ("valid", "same")


# --------------------------------------------------------------------------------------------
# The formulas of the course
# --------------------------------------------------------------------------------------------


def _check_padding(padding):
    if isinstance(padding, str):
        if padding not in PADDING_MODES:
            raise ValueError(
                f"padding must be a non-negative integer, 'valid' or 'same', got {padding!r}"
            )
        return padding
    if not checks.is_integer(padding) or padding < 0:
        raise ValueError(
            f"padding must be a non-negative integer, 'valid' or 'same', got {padding!r}"
        )
    return int(padding)


def output_size(size: int, kernel: int, stride: int = 1, padding=0, dilation: int = 1) -> int:
    """The output size of a convolution or pooling along one dimension (the course's eq. 2).

    ``floor((size + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1``; with
    ``dilation=1`` this is the course's ``floor((H + 2p - k) / s) + 1``. ``"same"`` gives Keras's
    ``ceil(size / stride)``.

    Args:
        size: input height or width.
        kernel: kernel (or pooling window) size.
        stride: step between two windows.
        padding: zeros added on each side (int), ``"same"`` or ``"valid"`` (see the module
            docstring: ``"valid"`` requires the windows to tile the input exactly).
        dilation: spacing between kernel taps (1 is a plain convolution).

    Returns:
        The number of output positions.

    Raises:
        ValueError: for a non-positive size, kernel, stride or dilation, a negative padding, a
            kernel larger than the padded input, or a fractional output under ``"valid"``.

    Example:
        >>> output_size(32, 5, stride=1, padding=2)   # the course's example
        32
        >>> output_size(224, 7, stride=2, padding=3)  # ResNet's stem
        112
    """
    size = checks.positive_int("size", size)
    kernel = checks.positive_int("kernel", kernel)
    stride = checks.positive_int("stride", stride)
    dilation = checks.positive_int("dilation", dilation)
    padding = _check_padding(padding)
    if padding == "same":
        return -(-size // stride)
    pad = 0 if padding == "valid" else padding
    span = dilation * (kernel - 1) + 1
    padded = size + 2 * pad
    if span > padded:
        covers = f"kernel {kernel}"
        if dilation > 1:
            covers += f" with dilation {dilation} spans {span}"
        raise ValueError(
            f"{covers} is larger than the padded input {size} + 2*{pad} = {padded}: there is no "
            "position to put it"
        )
    if padding == "valid" and (padded - span) % stride:
        raise ValueError(
            f"padding='valid' needs the windows to tile the input exactly, but "
            f"({size} - {span}) / {stride} + 1 = {(padded - span) / stride + 1:g} is not an "
            f"integer: the last {(padded - span) % stride} rows would never be seen. Pad the "
            "input, change the stride, or pass padding=0 to floor as Keras and PyTorch do"
        )
    return (padded - span) // stride + 1


def _same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """Keras's (TensorFlow's) ``"same"`` padding: enough for ``ceil(size / stride)`` outputs,
    split with the extra pixel after (bottom/right)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return total // 2, total - total // 2


def conv_params(
    kernel, c_in: int, c_out: int, bias: bool = True, groups: int = 1, conv: str = "standard"
) -> int:
    """Trainable parameters of a convolution layer (the course's eq. 4), with ``groups``, or of
    a depthwise separable one.

    ``"standard"``: ``(kh * kw * c_in / groups + 1) * c_out``, the ``+ 1`` being the bias of each
    filter. ``"separable"`` (a depthwise ``kh x kw`` convolution, one filter per input channel,
    then a pointwise 1x1 one, as ``keras.layers.SeparableConv2D``): ``kh * kw * c_in + c_in *
    c_out + c_out``, the biases on the pointwise output only.

    Args:
        kernel: kernel size, an int or ``(kh, kw)``.
        c_in: input channels.
        c_out: output channels (filters).
        bias: whether each filter has a bias.
        groups: channel groups of a standard convolution; each filter sees ``c_in / groups``
            channels.
        conv: ``"standard"`` or ``"separable"`` (see `kcnn.layers.convolution`).

    Raises:
        ValueError: for non-positive sizes, channels not divisible by ``groups``, an unknown
            ``conv``, or ``groups`` with a separable convolution.

    Example:
        >>> conv_params(3, 3, 64)   # the course's Conv2D(3 -> 64, 3x3)
        1792
        >>> conv_params(3, 32, 64, conv="separable")   # 9 * 32 + 32 * 64 + 64
        2400
    """
    from kcnn.layers.convolution import check_conv

    conv, _, groups = check_conv(conv, 1, groups)
    kh, kw = _pair("kernel", kernel)
    c_in = checks.positive_int("c_in", c_in)
    c_out = checks.positive_int("c_out", c_out)
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide both c_in={c_in} and c_out={c_out}")
    if conv == "separable":
        return kh * kw * c_in + c_in * c_out + int(bool(bias)) * c_out
    return (kh * kw * (c_in // groups) + int(bool(bias))) * c_out


# --------------------------------------------------------------------------------------------
# NumPy reference: convolution and pooling, forward and backward
# --------------------------------------------------------------------------------------------


def _pair(name: str, value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an integer or a pair of integers, got {value!r}")
        return checks.positive_int(name, value[0]), checks.positive_int(name, value[1])
    value = checks.positive_int(name, value)
    return value, value


@dataclasses.dataclass(frozen=True)
class _Geometry:
    """Where the windows of a 2D convolution or pooling fall on the padded input."""

    pads: tuple[tuple[int, int], tuple[int, int]]  # (top, bottom), (left, right)
    out: tuple[int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]

    def window(self, m: int, n: int) -> tuple:
        """Index of the input pixels that kernel tap ``(m, n)`` meets, one per output position,
        in a padded ``(N, H, W, C)`` array."""
        top, left = m * self.dilation[0], n * self.dilation[1]
        return (
            slice(None),
            slice(top, top + self.stride[0] * (self.out[0] - 1) + 1, self.stride[0]),
            slice(left, left + self.stride[1] * (self.out[1] - 1) + 1, self.stride[1]),
            slice(None),
        )

    def taps(self):
        """Every kernel position ``(m, n)``, row by row."""
        return [(m, n) for m in range(self.kernel[0]) for n in range(self.kernel[1])]

    def pad(self, x, value=0.0):
        return np.pad(x, ((0, 0), *self.pads, (0, 0)), constant_values=value)

    def unpad(self, x, height: int, width: int):
        (top, _), (left, _) = self.pads
        return x[:, top : top + height, left : left + width, :]


def _geometry(height, width, kernel, stride, padding, dilation) -> _Geometry:
    kernel = _pair("kernel", kernel)
    stride = _pair("stride", stride)
    dilation = _pair("dilation", dilation)
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
        padding = tuple(_check_padding(p) for p in padding)
        if any(isinstance(p, str) for p in padding):
            raise ValueError(f"a padding pair must hold two integers, got {padding!r}")
    else:
        padding = (_check_padding(padding),) * 2
    pads, out = [], []
    axes = zip(("height", "width"), (height, width), kernel, stride, padding, dilation)
    for axis, size, k, s, p, d in axes:
        try:
            out.append(output_size(size, k, s, p, d))
        except ValueError as error:
            raise ValueError(f"along the {axis}: {error}") from None
        if p == "same":
            pads.append(_same_padding(size, k, s, d))
        else:
            pads.append((0, 0) if p == "valid" else (p, p))
    return _Geometry(tuple(pads), tuple(out), kernel, stride, dilation)


def _as_batch(image, name: str = "image"):
    """``image`` as a float64 ``(N, H, W, C)`` array, and a function that gives an output of that
    shape back the rank of ``image``. The array is made C-contiguous: on a transposed one (an
    NCHW batch seen as NHWC) NumPy's matrix product falls back to a loop dozens of times
    slower."""
    x = np.ascontiguousarray(image, dtype=np.float64)
    if x.ndim == 2:
        return x[None, :, :, None], lambda y: y[0, :, :, 0]
    if x.ndim == 3:
        return x[None], lambda y: y[0]
    if x.ndim == 4:
        return x, lambda y: y
    raise ValueError(
        f"{name} must be (H, W), (H, W, C) or (N, H, W, C), got an array of shape {x.shape}"
    )


def _conv_operands(image, kernel):
    k = np.ascontiguousarray(kernel, dtype=np.float64)
    x = np.asarray(image, dtype=np.float64)
    if k.ndim == 2:
        if x.ndim != 2:
            raise ValueError(
                f"a 2D kernel {k.shape} filters a single-channel (H, W) image, got an image of "
                f"shape {x.shape}; give a (kh, kw, C_in, C_out) kernel for multi-channel images"
            )
        k = k[:, :, None, None]
    elif k.ndim == 4:
        if x.ndim not in (3, 4):
            raise ValueError(
                f"a 4D kernel {k.shape} filters (H, W, C) or (N, H, W, C) images, got an image "
                f"of shape {x.shape}"
            )
    else:
        raise ValueError(f"kernel must be (kh, kw) or (kh, kw, C_in, C_out), got shape {k.shape}")
    x, restore = _as_batch(x)
    if x.shape[-1] != k.shape[2]:
        raise ValueError(
            f"the image has {x.shape[-1]} channels but the kernel expects C_in={k.shape[2]}"
        )
    return x, k, restore


def _correlate(padded, kernel, geometry: _Geometry):
    """The course's eq. 3 on an already padded batch: one matrix product per kernel tap."""
    out = np.zeros((padded.shape[0], *geometry.out, kernel.shape[3]))
    for m, n in geometry.taps():
        out += padded[geometry.window(m, n)] @ kernel[m, n]
    return out


def conv2d(image, kernel, bias=None, stride=1, padding=0, dilation=1) -> np.ndarray:
    """2D convolution (cross-correlation) of the course, eq. 1 (one channel) and eq. 3 (many).

    Args:
        image: ``(H, W)`` with a ``(kh, kw)`` kernel, or ``(H, W, C_in)`` / ``(N, H, W, C_in)``
            with a ``(kh, kw, C_in, C_out)`` kernel.
        kernel: the filter(s), in Keras's layout.
        bias: ``None``, a scalar (one channel) or ``(C_out,)``.
        stride: an int or ``(sh, sw)``.
        padding: an int, a pair of ints, ``"same"`` or ``"valid"`` (see the module docstring).
        dilation: an int or ``(dh, dw)``.

    Returns:
        The feature map, float64, with the rank of ``image``: ``(H', W')``, ``(H', W', C_out)``
        or ``(N, H', W', C_out)``.

    Raises:
        ValueError: for mismatched ranks or channels, or a geometry `output_size` rejects.

    Example:
        >>> image = [[1, 2, 3, 0, 1], [0, 1, 2, 3, 0], [1, 0, 1, 2, 3],
        ...          [2, 1, 0, 1, 2], [3, 2, 1, 0, 1]]
        >>> conv2d(image, [[1, 0, -1]] * 3)[0, 0]   # the course's vertical-edge example
        -4.0
    """
    x, k, restore = _conv_operands(image, kernel)
    geometry = _geometry(x.shape[1], x.shape[2], k.shape[:2], stride, padding, dilation)
    out = _correlate(geometry.pad(x), k, geometry)
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64).reshape(-1)
    return restore(out)


@dataclasses.dataclass(frozen=True)
class ConvGradients:
    """Gradients of a loss with respect to a convolution's input, kernel and bias, each with
    the shape of what it is the gradient of (``bias`` is a scalar for a 2D kernel)."""

    image: np.ndarray
    kernel: np.ndarray
    bias: np.ndarray


def conv2d_backward(image, kernel, grad_output, stride=1, padding=0, dilation=1) -> ConvGradients:
    """Backward pass of `conv2d`: the course's eq. 11 and 12, for any stride, padding and
    dilation.

    - Input gradient (eq. 11): the *full* convolution of the output gradient with the kernel
      rotated by 180°. With a stride ``s`` the output gradient is first spread out with ``s - 1``
      zeros between its values (the positions the strided windows skipped); the kernel keeps its
      dilation and its input and output channels swap roles. The padding is then cut off.
    - Kernel gradient (eq. 12): the correlation of the (padded) input with the output
      gradient, ``dK[m, n, c', c] = sum_{i, j} I[i*s + m*d, j*s + n*d, c'] G[i, j, c]``.
    - Bias gradient: the output gradient summed over positions.

    Args:
        image, kernel, stride, padding, dilation: as given to `conv2d`.
        grad_output: the gradient of the loss with respect to the output of `conv2d`, same shape.

    Returns:
        A `ConvGradients`.

    Raises:
        ValueError: if ``grad_output`` does not have the shape of the output.
    """
    x, k, restore = _conv_operands(image, kernel)
    geometry = _geometry(x.shape[1], x.shape[2], k.shape[:2], stride, padding, dilation)
    g = _gradient_operand(grad_output, (x.shape[0], *geometry.out, k.shape[3]), np.ndim(image))
    kh, kw = geometry.kernel
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    # Eq. 11: spread by the stride, pad for the full convolution, rotate the kernel.
    n_batch, out_h, out_w, c_out = g.shape
    spread = np.zeros((n_batch, (out_h - 1) * sh + 1, (out_w - 1) * sw + 1, c_out))
    spread[:, ::sh, ::sw, :] = g
    full = _Geometry(
        pads=((dh * (kh - 1),) * 2, (dw * (kw - 1),) * 2),
        out=(spread.shape[1] + dh * (kh - 1), spread.shape[2] + dw * (kw - 1)),
        kernel=(kh, kw),
        stride=(1, 1),
        dilation=(dh, dw),
    )
    rotated = k[::-1, ::-1].transpose(0, 1, 3, 2)
    grad_reached = _correlate(full.pad(spread), rotated, full)
    padded = geometry.pad(x)
    grad_padded = np.zeros_like(padded)  # rows no window reached (a floored output) get zero
    grad_padded[:, : full.out[0], : full.out[1], :] = grad_reached
    grad_image = geometry.unpad(grad_padded, x.shape[1], x.shape[2])
    # Eq. 12: correlate the input with the output gradient, one kernel tap at a time.
    grad_kernel = np.zeros_like(k)
    for m, n in geometry.taps():
        grad_kernel[m, n] = np.einsum("nhwi,nhwo->io", padded[geometry.window(m, n)], g)
    grad_bias = g.sum(axis=(0, 1, 2))
    if np.ndim(kernel) == 2:
        return ConvGradients(restore(grad_image), grad_kernel[:, :, 0, 0], grad_bias[0])
    return ConvGradients(restore(grad_image), grad_kernel, grad_bias)


def _gradient_operand(grad_output, expected_batch_shape, image_rank):
    g, _ = _as_batch(grad_output, "grad_output")
    if np.ndim(grad_output) != image_rank or g.shape != tuple(expected_batch_shape):
        raise ValueError(
            f"grad_output must have the shape of the forward output; got {np.shape(grad_output)}, "
            f"expected {_restore_shape(expected_batch_shape, image_rank)}"
        )
    return g


def _restore_shape(batch_shape, rank):
    return {2: batch_shape[1:3], 3: batch_shape[1:], 4: tuple(batch_shape)}[rank]


def _pool_geometry(x, pool_size, stride, padding):
    stride = pool_size if stride is None else stride
    return _geometry(x.shape[1], x.shape[2], pool_size, stride, padding, 1)


def max_pool2d(image, pool_size=2, stride=None, padding=0) -> np.ndarray:
    """Max pooling (the course's eq. 6): the maximum of each window, channel by channel.

    Padding, when there is any, is ``-inf`` (it never wins), as in Keras and PyTorch.

    Args:
        image: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``.
        pool_size: window size, an int or a pair.
        stride: step between windows; ``None`` means ``pool_size`` (Keras's default).
        padding: an int, a pair, ``"same"`` or ``"valid"`` (see the module docstring).

    Returns:
        The pooled array, with the rank of ``image``.

    Example:
        >>> max_pool2d([[1, 3, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]])  # the course's
        array([[6., 8.],
               [3., 4.]])
    """
    x, restore = _as_batch(image)
    geometry = _pool_geometry(x, pool_size, stride, padding)
    padded = geometry.pad(x, -np.inf)
    return restore(np.max([padded[geometry.window(m, n)] for m, n in geometry.taps()], axis=0))


def max_pool2d_backward(image, grad_output, pool_size=2, stride=None, padding=0) -> np.ndarray:
    """Backward pass of `max_pool2d` (the course's eq. 13): each output gradient goes to the
    input pixel that was the maximum of its window (the first one, row by row, on a tie), and
    nowhere else; a pixel that is the maximum of several overlapping windows receives the sum.

    Args:
        image, pool_size, stride, padding: as given to `max_pool2d`.
        grad_output: gradient with respect to the output of `max_pool2d`, same shape.

    Returns:
        The gradient with respect to ``image``, same shape.
    """
    x, restore = _as_batch(image)
    geometry = _pool_geometry(x, pool_size, stride, padding)
    g = _gradient_operand(grad_output, (x.shape[0], *geometry.out, x.shape[3]), np.ndim(image))
    padded = geometry.pad(x, -np.inf)
    taps = geometry.taps()
    winner = np.argmax([padded[geometry.window(m, n)] for m, n in taps], axis=0)
    grad_padded = np.zeros_like(padded)
    for index, (m, n) in enumerate(taps):
        grad_padded[geometry.window(m, n)] += np.where(winner == index, g, 0.0)
    return restore(geometry.unpad(grad_padded, x.shape[1], x.shape[2]))


def _window_counts(x, geometry):
    """How many real (not padding) input pixels each window holds."""
    ones = geometry.pad(np.ones((1, *x.shape[1:3], 1)))
    return sum(ones[geometry.window(m, n)] for m, n in geometry.taps())


def avg_pool2d(image, pool_size=2, stride=None, padding=0) -> np.ndarray:
    """Average pooling (the course's eq. 7): the mean of each window, channel by channel.

    Padding is left out of the mean (each window is divided by the number of real pixels it
    holds), as Keras's ``"same"`` and PyTorch's ``count_include_pad=False`` do; without padding
    this is the course's ``1 / k^2`` sum.

    Args:
        image: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``.
        pool_size: window size, an int or a pair.
        stride: step between windows; ``None`` means ``pool_size``.
        padding: an int, a pair, ``"same"`` or ``"valid"``.

    Returns:
        The pooled array, with the rank of ``image``.
    """
    x, restore = _as_batch(image)
    geometry = _pool_geometry(x, pool_size, stride, padding)
    padded = geometry.pad(x)
    total = sum(padded[geometry.window(m, n)] for m, n in geometry.taps())
    return restore(total / _window_counts(x, geometry))


def avg_pool2d_backward(image, grad_output, pool_size=2, stride=None, padding=0) -> np.ndarray:
    """Backward pass of `avg_pool2d`: each output gradient is shared equally among the real
    pixels of its window. Only the shape of ``image`` matters (average pooling is linear).

    Args:
        image, pool_size, stride, padding: as given to `avg_pool2d`.
        grad_output: gradient with respect to the output of `avg_pool2d`, same shape.

    Returns:
        The gradient with respect to ``image``, same shape.
    """
    x, restore = _as_batch(image)
    geometry = _pool_geometry(x, pool_size, stride, padding)
    g = _gradient_operand(grad_output, (x.shape[0], *geometry.out, x.shape[3]), np.ndim(image))
    share = g / _window_counts(x, geometry)
    grad_padded = geometry.pad(np.zeros_like(x))
    for m, n in geometry.taps():
        grad_padded[geometry.window(m, n)] += share
    return restore(geometry.unpad(grad_padded, x.shape[1], x.shape[2]))


def format_count(count: float) -> str:
    """A count with an SI suffix and two decimals: ``1814073344 -> '1.81 G'``."""
    for threshold, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(count) >= threshold:
            return f"{count / threshold:.2f} {suffix}"
    return f"{count:.0f}"
