"""Convolution by name: the one place that turns ``conv="separable"`` into a Keras layer.

- ``"standard"``: ``Conv2D``, optionally dilated (Yu & Koltun, ICLR 2016) or grouped
  (``groups`` > 1: Krizhevsky et al. 2012, ResNeXt's Xie et al., CVPR 2017), the grouped one a
  `GroupedConv2D`, which trains 10-100x faster on a CPU.
- ``"separable"``: ``SeparableConv2D``, a depthwise k x k convolution (one filter per input
  channel) then a pointwise 1x1 convolution (Howard et al., "MobileNets", 2017): from C_in to
  C_out channels it has k*k*C_in + C_in*C_out weights instead of k*k*C_in*C_out.

Adding a kind touches this file only.
"""

from __future__ import annotations

import functools

import keras
from keras import layers

from kcnn import checks

__all__ = ["CONVS", "GroupedConv2D", "check_conv", "computes_on_cpu", "convolution"]

CONVS = ("standard", "separable")


@functools.cache
def computes_on_cpu() -> bool:
    """Whether Keras's backend computes on the CPU: no GPU or TPU is visible to it (False where
    the backend cannot say, as with PyTorch)."""
    try:
        devices = keras.distribution.list_devices()
    except (NotImplementedError, ImportError, AttributeError, RuntimeError):
        return False
    return all(device.lower().startswith("cpu") for device in devices)


@keras.saving.register_keras_serializable(package="kcnn")
class GroupedConv2D(layers.Conv2D):
    """Keras's ``Conv2D`` with ``groups`` > 1 (the same arguments, weights and outputs), computed
    group by group when Keras runs on a CPU.

    There, the grouped convolution kernels of TensorFlow and of XLA (JAX) compute the gradient
    10-100x slower than a standard convolution with ``groups`` times the work
    (``python benchmarks/grouped_conv.py``), which made ResNeXt and AlexNet's two-GPU grouping
    crawl. Splitting the input channels and the kernel's output channels into ``groups``
    slices, convolving each slice with the standard kernel and joining the outputs computes the
    same numbers with the fast kernels. On a GPU or TPU the backend's own grouped convolution
    runs unchanged.
    """

    def convolution_op(self, inputs, kernel):
        if self.groups == 1 or not computes_on_cpu():
            return super().convolution_op(inputs, kernel)
        convolve = super().convolution_op
        axis = -1 if self.data_format == "channels_last" else 1
        slices = zip(
            keras.ops.split(inputs, self.groups, axis=axis),
            keras.ops.split(kernel, self.groups, axis=-1),
        )
        return keras.ops.concatenate([convolve(x, k) for x, k in slices], axis=axis)


def check_conv(conv, dilation=1, groups=1):
    """Check a convolution kind with its dilation and groups before any layer is built.

    Returns:
        ``(conv, dilation, groups)``, the numbers as Python ``int``.

    Raises:
        ValueError: naming ``conv`` and listing `CONVS`, ``dilation`` or ``groups`` (positive
            integers), or a separable convolution with ``groups`` > 1 (its depthwise part is
            already one group per channel).
    """
    conv = checks.choice("conv", conv, CONVS)
    dilation = checks.positive_int("dilation", dilation)
    groups = checks.positive_int("groups", groups)
    if conv == "separable" and groups > 1:
        raise ValueError(
            f"groups={groups} does not apply to conv='separable', whose depthwise convolution "
            "already has one group per channel; use conv='standard'"
        )
    return conv, dilation, groups


def convolution(
    conv,
    filters: int,
    kernel_size: int,
    *,
    name: str,
    strides: int = 1,
    padding: str = "same",
    dilation: int = 1,
    groups: int = 1,
    use_bias: bool = True,
    activation=None,
    kernel_initializer="glorot_uniform",
    kernel_regularizer=None,
    dtype=None,
):
    """The 2D convolution layer of kind ``conv``.

    Args:
        conv: one of `CONVS`.
        filters: output channels.
        kernel_size: height and width of the kernel.
        name: the layer's name.
        strides: the stride.
        padding: ``"same"`` or ``"valid"``.
        dilation: the dilation rate (1: none); with ``strides`` > 1 Keras refuses it.
        groups: ``"standard"`` only: input and output channels split into this many groups.
        use_bias: whether the convolution has a bias (not before a normalization that has an
            offset of its own).
        activation: applied to the output (None: linear).
        kernel_initializer: of the kernel; of both kernels of a separable convolution.
        kernel_regularizer: the penalty on the kernel; on both kernels of a separable one.
        dtype: the layer's dtype policy (None: the global one).

    Raises:
        ValueError: see `check_conv`.
    """
    conv, dilation, groups = check_conv(conv, dilation, groups)
    common = dict(
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        use_bias=use_bias,
        activation=activation,
        name=name,
        dtype=dtype,
    )
    if conv == "separable":
        return layers.SeparableConv2D(
            filters,
            kernel_size,
            depthwise_initializer=kernel_initializer,
            pointwise_initializer=kernel_initializer,
            depthwise_regularizer=kernel_regularizer,
            pointwise_regularizer=kernel_regularizer,
            **common,
        )
    kind = GroupedConv2D if groups > 1 else layers.Conv2D
    return kind(
        filters,
        kernel_size,
        groups=groups,
        kernel_initializer=kernel_initializer,
        kernel_regularizer=kernel_regularizer,
        **common,
    )
