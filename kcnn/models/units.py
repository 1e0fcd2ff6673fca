"""The units the modern builders (`mobilenet`, `efficientnet`, `densenet`, `inception`) share:
a convolution with its normalization and activation, the padding convention of strided
convolutions, the inverted residual block of MobileNetV2 and EfficientNet, and the signature of
a variant written as a thin function.

Each unit is a Functional sub-graph of plain Keras layers with positional names, so a layer of a
kcnn model maps to one tensor of a torchvision or Keras Applications checkpoint.
"""

from __future__ import annotations

import dataclasses
import inspect

from keras import layers

from kcnn import checks
from kcnn.layers.attention import SqueezeExcite, attention_layer
from kcnn.layers.convolution import convolution
from kcnn.layers.dropout import DropPath
from kcnn.layers.normalization import BN_EPSILON, NORM_GROUPS, normalization, short_name

# "symmetric": k // 2 pixels on every side of a strided convolution, as torchvision pads.
# "asymmetric": Keras Applications' ``correct_pad`` (TensorFlow's "same"): on an even input one
# pixel fewer at the top and left.
STRIDED_PADDINGS = ("symmetric", "asymmetric")


@dataclasses.dataclass(frozen=True)
class UnitOptions:
    """How every unit of a model normalizes and pads (checked by the builder's options).

    Attributes:
        norm: one of `kcnn.layers.normalization.NORMS`.
        norm_groups: the groups of ``norm="group"``.
        epsilon: the normalization's epsilon.
        scale: whether the normalization learns a scale (Keras's InceptionV3 has none).
        strided_padding: one of `STRIDED_PADDINGS`.
    """

    norm: str | None = "batch"
    norm_groups: int = NORM_GROUPS
    epsilon: float = BN_EPSILON
    scale: bool = True
    strided_padding: str = "symmetric"


def strided_padding(kernel_size: int, size, convention: str):
    """The ``((top, bottom), (left, right))`` padding of a stride-2 ``kernel_size`` convolution
    over an input of height and width ``size`` (None: unknown) under ``convention``."""
    half = kernel_size // 2
    if convention == "symmetric":
        return ((half, half), (half, half))
    pads = []
    for dim in size:
        before = half if dim is not None and dim % 2 == 1 else half - 1
        pads.append((before, half))
    return tuple(pads)


def conv_unit(
    x,
    filters: int | None,
    kernel_size,
    options: UnitOptions,
    *,
    prefix: str,
    strides: int = 1,
    depthwise: bool = False,
    activation: str | None = "relu",
    padding: str = "same",
):
    """Convolution, normalization and activation: ``{prefix}_pad`` (strided convolutions with
    ``padding="same"`` only), ``{prefix}_conv``, ``{prefix}_bn`` (``gn``, ``ln``, ``in``; none
    with ``norm=None``), ``{prefix}_act`` (none with ``activation=None``).

    Args:
        x: the input tensor.
        filters: output channels (ignored for a depthwise convolution).
        kernel_size: an int, or ``(height, width)`` for Inception's factorised convolutions.
        options: the model's `UnitOptions`.
        prefix: the name of the unit.
        strides: 1, or 2 with the padding of ``options.strided_padding``.
        depthwise: a ``DepthwiseConv2D`` (one filter per channel) instead of a convolution.
        activation: a Keras activation name, or None (a linear projection).
        padding: ``"same"`` or ``"valid"`` (Inception's unpadded convolutions).
    """
    if strides > 1 and padding == "same":
        x = layers.ZeroPadding2D(
            strided_padding(kernel_size, x.shape[1:3], options.strided_padding),
            name=f"{prefix}_pad",
        )(x)
        padding = "valid"
    use_bias = options.norm is None
    if depthwise:
        x = layers.DepthwiseConv2D(
            kernel_size, strides=strides, padding=padding, use_bias=use_bias, name=f"{prefix}_conv"
        )(x)
    else:
        x = convolution(
            "standard",
            filters,
            kernel_size,
            strides=strides,
            padding=padding,
            use_bias=use_bias,
            kernel_initializer="he_normal",
            name=f"{prefix}_conv",
        )(x)
    norm = normalization(
        options.norm,
        x.shape[-1],
        norm_groups=options.norm_groups,
        epsilon=options.epsilon,
        scale=options.scale,
        name=f"{prefix}_{short_name(options.norm)}",
    )
    if norm is not None:
        x = norm(x)
    if activation is not None:
        x = layers.Activation(activation, name=f"{prefix}_act")(x)
    return x


@dataclasses.dataclass(frozen=True)
class InvertedResidual:
    """One inverted residual block (Sandler et al., "MobileNetV2", CVPR 2018), MBConv when it
    has squeeze-and-excitation and stochastic depth (Tan & Le, "EfficientNet", ICML 2019).

    Attributes:
        expand_ratio: the expansion of the 1x1 convolution (1: none).
        kernel_size: of the depthwise convolution.
        stride: of the depthwise convolution.
        filters: output channels of the linear 1x1 projection.
        activation: after the expansion and the depthwise convolution.
        attention: ``None``, ``"se"`` or another kind of `kcnn.layers.attention`, after the
            depthwise convolution.
        attention_ratio: the reduction ratio of the channel attention over the expanded
            channels (EfficientNet's SE: ``4 * expand_ratio``, a quarter of the block's input).
        se_activation: the hidden activation of ``"se"`` (EfficientNet's swish).
        drop_path_rate: stochastic depth of the residual branch (with a shortcut only).
    """

    expand_ratio: int
    kernel_size: int
    stride: int
    filters: int
    activation: str
    attention: str | None = None
    attention_ratio: int = 16
    se_activation: str = "relu"
    drop_path_rate: float = 0.0

    def __call__(self, x, options: UnitOptions, prefix: str):
        """The block on ``x``; its layers are named ``{prefix}_expand_*``, ``{prefix}_dw_*``,
        ``{prefix}_{attention}``, ``{prefix}_project_*``, ``{prefix}_drop_path`` and
        ``{prefix}_add``."""
        inputs = x
        channels = x.shape[-1]
        if self.expand_ratio != 1:
            x = conv_unit(
                x,
                channels * self.expand_ratio,
                1,
                options,
                prefix=f"{prefix}_expand",
                activation=self.activation,
            )
        x = conv_unit(
            x,
            None,
            self.kernel_size,
            options,
            prefix=f"{prefix}_dw",
            strides=self.stride,
            depthwise=True,
            activation=self.activation,
        )
        if self.attention == "se":
            x = SqueezeExcite(
                self.attention_ratio, activation=self.se_activation, name=f"{prefix}_se"
            )(x)
        elif self.attention is not None:
            x = attention_layer(self.attention, ratio=self.attention_ratio, name=prefix)(x)
        x = conv_unit(x, self.filters, 1, options, prefix=f"{prefix}_project", activation=None)
        if self.stride != 1 or channels != self.filters:
            return x
        if self.drop_path_rate > 0:
            x = DropPath(self.drop_path_rate, name=f"{prefix}_drop_path")(x)
        return layers.Add(name=f"{prefix}_add")([inputs, x])


def inverted_residual_prefixes(model, stages: int = 5) -> list[str]:
    """The names ``stage{s}_block{b}`` of a built model's inverted residual blocks, in the
    order the input goes through them (what converters walk to map them to other checkpoints).
    """
    names = {layer.name for layer in model.layers}
    prefixes = []
    for stage in range(1, stages + 1):
        block = 1
        while f"stage{stage}_block{block}_dw_conv" in names:
            prefixes.append(f"stage{stage}_block{block}")
            block += 1
    return prefixes


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor``, at least ``divisor`` and never
    more than 10 % below ``value``: the channel rounding of MobileNetV2 and EfficientNet (their
    reference code's ``_make_divisible``)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def strided_padding_option(value) -> str:
    """Check the ``strided_padding`` option of a builder (one of `STRIDED_PADDINGS`)."""
    return checks.choice("strided_padding", value, STRIDED_PADDINGS)


def variant_signature(generic, defaults: dict, fixed=()) -> inspect.Signature:
    """The signature of a variant ``def name(**kwargs)`` that calls ``generic`` with
    ``defaults`` (overridable) and ``fixed`` arguments (not options of the variant).

    Set as the variant's ``__signature__``, it gives `help`, `kcnn.registry.check_options`
    (unknown options refused up front) and the tests the variant's real options and defaults.
    """
    signature = inspect.signature(generic)
    return signature.replace(
        parameters=[
            parameter.replace(default=defaults.get(parameter.name, parameter.default))
            for parameter in signature.parameters.values()
            if parameter.name not in fixed
        ]
    )
