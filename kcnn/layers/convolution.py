"""Convolution by name: the one place that turns ``conv="separable"`` into a Keras layer.

- ``"standard"``: ``Conv2D``, optionally dilated (Yu & Koltun, ICLR 2016) or grouped
  (``groups`` > 1: Krizhevsky et al. 2012, ResNeXt's Xie et al., CVPR 2017).
- ``"separable"``: ``SeparableConv2D``, a depthwise k x k convolution (one filter per input
  channel) then a pointwise 1x1 convolution (Howard et al., "MobileNets", 2017): from C_in to
  C_out channels it has k*k*C_in + C_in*C_out weights instead of k*k*C_in*C_out.

Adding a kind touches this file only.
"""

from __future__ import annotations

from keras import layers

from kcnn import checks

__all__ = ["CONVS", "check_conv", "convolution"]

CONVS = ("standard", "separable")


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
            **common,
        )
    return layers.Conv2D(
        filters, kernel_size, groups=groups, kernel_initializer=kernel_initializer, **common
    )
