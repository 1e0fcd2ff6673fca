"""Residual blocks: the basic block of ResNet-18/34 and the bottleneck block of ResNet-50+.

Keras has no residual blocks, so they are written with ``keras`` and ``keras.ops`` only (no
TensorFlow import: they run on every Keras backend). Every layer is registered serialisable
(package ``"kcnn"``) and its ``get_config`` returns exactly its constructor arguments, so a model
saved to ``.keras`` loads without ``custom_objects``; it creates and builds its sublayers in
``build``; it gives its sublayers its own dtype policy (math in the compute dtype, variables in
float32 under mixed precision); it checks its arguments and raises ``ValueError`` naming the
argument and the value received.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from kcnn import checks
from kcnn.layers.attention import attention_layer, check_attention
from kcnn.layers.convolution import check_conv, convolution
from kcnn.layers.dropout import DropPath
from kcnn.layers.normalization import (
    BN_EPSILON,
    BN_MOMENTUM,
    NORM_GROUPS,
    check_norm,
    normalization,
    short_name,
)
from kcnn.layers.regularizers import check_kernel_regularizer
from kcnn.layers.shapes import downsample, input_channels

__all__ = ["BottleneckBlock", "ResidualBlock"]


class _ResidualUnit(layers.Layer):
    """What residual and bottleneck blocks share: the shortcut (identity, or a 1x1 projection
    with a normalization when the stride or the width changes), optional attention and
    stochastic depth on the residual branch, the sum, and the pre-activation variant (He et al.,
    "Identity Mappings in Deep Residual Networks", ECCV 2016). Subclasses define the
    convolutions of the branch (`_branch_convs`).
    """

    expansion = 1

    def __init__(
        self,
        filters: int,
        stride: int = 1,
        skip: bool = True,
        preact: bool = False,
        attention: str | None = None,
        attention_ratio: int = 16,
        drop_path_rate: float = 0.0,
        norm: str | None = "batch",
        norm_groups: int = NORM_GROUPS,
        conv: str = "standard",
        bn_epsilon: float = BN_EPSILON,
        bn_momentum: float = BN_MOMENTUM,
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kernel_regularizer = check_kernel_regularizer(kernel_regularizer)
        self.filters = checks.positive_int("filters", filters)
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        self.stride = stride
        self.skip = bool(skip)
        self.preact = bool(preact)
        self.attention, self.attention_ratio = check_attention(attention, attention_ratio)
        self.drop_path_rate = checks.fraction("drop_path_rate", drop_path_rate)
        if not skip and drop_path_rate > 0:
            raise ValueError(
                f"drop_path_rate={drop_path_rate} needs skip=True: stochastic depth drops the "
                "residual branch, and without a shortcut it would drop the whole signal"
            )
        self.norm, self.norm_groups = check_norm(norm, norm_groups)
        self.conv = check_conv(conv)[0]
        if not 0 < bn_epsilon < 1:
            raise ValueError(f"bn_epsilon must be in (0, 1), got {bn_epsilon!r}")
        self.bn_epsilon = float(bn_epsilon)
        self.bn_momentum = checks.fraction("bn_momentum", bn_momentum)

    @property
    def out_channels(self) -> int:
        return self.filters * self.expansion

    def _conv(self, filters, kernel_size, stride, suffix, conv="standard", groups=1):
        # A strided 3x3 convolution pads one pixel on every side, as PyTorch does; Keras's
        # "same" would pad only the bottom and right of an even input and shift the output.
        padding = "valid" if stride > 1 else "same"
        return convolution(
            conv,
            filters,
            kernel_size,
            strides=stride,
            padding=padding,
            groups=groups,
            use_bias=self.norm is None,
            kernel_initializer="he_normal",
            kernel_regularizer=self.kernel_regularizer,
            name=f"{self.name}_{suffix}",
            dtype=self.dtype_policy,
        )

    @staticmethod
    def _padding(conv) -> int:
        return conv.kernel_size[0] // 2 if conv.strides[0] > 1 else 0

    def _apply_conv(self, conv, x):
        pad = self._padding(conv)
        if pad:
            x = ops.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        return conv(x)

    def _norm(self, channels, suffix):
        """The block's normalization over ``channels``, named ``{name}_{suffix}``."""
        return normalization(
            self.norm,
            channels,
            norm_groups=self.norm_groups,
            epsilon=self.bn_epsilon,
            momentum=self.bn_momentum,
            name=f"{self.name}_{suffix}",
            dtype=self.dtype_policy,
        )

    def _branch_convs(self):
        """The convolutions of the residual branch, in order."""
        raise NotImplementedError

    def build(self, input_shape):
        in_channels = input_channels(input_shape, type(self).__name__)
        convs = self._branch_convs()
        short = short_name(self.norm)  # bn1, gn1, ...: the layer names say which norm it is
        self.branch = []
        shape = tuple(input_shape)
        for i, conv in enumerate(convs, start=1):
            norm = self._norm(shape[-1] if self.preact else conv.filters, f"{short}{i}")
            if self.preact and norm is not None:
                norm.build(shape)
            pad = self._padding(conv)
            padded = (None if d is None else d + 2 * pad for d in shape[1:3])
            conv.build((shape[0], *padded, shape[3]))
            shape = (*downsample(shape, conv.strides[0])[:3], conv.filters)
            if not self.preact and norm is not None:
                norm.build(shape)
            self.branch.append((conv, norm))
        self.projection = self.skip and (self.stride != 1 or in_channels != self.out_channels)
        if self.projection:
            self.shortcut_conv = self._conv(self.out_channels, 1, self.stride, "shortcut_conv")
            self.shortcut_conv.build(tuple(input_shape))
            # Named shortcut_bn whatever the norm: Keras saves a sublayer's weights under its
            # attribute name, and .keras files saved before norms were choosable use this one.
            self.shortcut_bn = (
                None if self.preact else self._norm(self.out_channels, f"shortcut_{short}")
            )
            if self.shortcut_bn is not None:
                self.shortcut_bn.build(shape)
        self.attention_layer = attention_layer(
            self.attention,
            ratio=self.attention_ratio,
            name=self.name,
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
        )
        if self.attention_layer is not None:
            self.attention_layer.build(shape)
        self.drop_path = None
        if self.drop_path_rate > 0:
            self.drop_path = DropPath(
                self.drop_path_rate, name=f"{self.name}_drop_path", dtype=self.dtype_policy
            )

    def parts(self) -> list:
        """The sublayers, in the order they run: the branch's convolutions and norms, the
        projection shortcut's, the attention and the stochastic depth (none before ``build``)."""
        if not self.built:
            return []
        found = [sub for pair in self.branch for sub in pair]
        if self.projection:
            found += [self.shortcut_conv, self.shortcut_bn]
        found += [self.attention_layer, self.drop_path]
        return [sub for sub in found if sub is not None]

    @staticmethod
    def _normalize(norm, x, training):
        return x if norm is None else norm(x, training=training)

    def call(self, inputs, training=None):
        x = inputs
        shortcut = inputs
        last = len(self.branch) - 1
        for i, (conv, norm) in enumerate(self.branch):
            if self.preact:
                x = ops.relu(self._normalize(norm, x, training))
                if i == 0 and self.projection:
                    shortcut = x  # the projection sees the pre-activated input (He et al. 2016)
                x = self._apply_conv(conv, x)
            else:
                x = self._normalize(norm, self._apply_conv(conv, x), training)
                if i < last:
                    x = ops.relu(x)
        if self.projection:
            shortcut = self.shortcut_conv(shortcut)
            if not self.preact:
                shortcut = self._normalize(self.shortcut_bn, shortcut, training)
        if self.attention_layer is not None:
            x = self.attention_layer(x)
        if self.drop_path is not None:
            x = self.drop_path(x, training=training)
        out = x + shortcut if self.skip else x
        return out if self.preact else ops.relu(out)

    def compute_output_shape(self, input_shape):
        return (*downsample(input_shape, self.stride)[:3], self.out_channels)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "stride": self.stride,
            "skip": self.skip,
            "preact": self.preact,
            "attention": self.attention,
            "attention_ratio": self.attention_ratio,
            "drop_path_rate": self.drop_path_rate,
            "norm": self.norm,
            "norm_groups": self.norm_groups,
            "conv": self.conv,
            "bn_epsilon": self.bn_epsilon,
            "bn_momentum": self.bn_momentum,
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
        }


_SHARED_ARGS = """
        filters: output channels{bottleneck}.
        stride: 1, or 2 to halve the resolution (on the {strided} convolution).
        skip: ``False`` removes the shortcut, giving the "plain" block of the paper's
            degradation experiment.
        preact: pre-activation order ``norm -> ReLU -> conv`` (He et al., ECCV 2016); the block
            then ends with the sum, without a ReLU.
        attention: ``None``, ``"se"`` (`SqueezeExcite`), ``"spatial"`` (`SpatialAttention`)
            or ``"cbam"`` (`CBAM`) on the residual branch, before the sum.
        attention_ratio: reduction ratio of the channel attention (SE, CBAM).
        drop_path_rate: stochastic depth rate of the residual branch (`DropPath`).
        norm: the normalization after each convolution (before it with ``preact``) and on
            the projection shortcut: ``"batch"``, ``"group"``, ``"layer"``, ``"instance"``
            or ``None`` (see `kcnn.layers.normalization`); with ``None`` the convolutions
            have a bias.
        norm_groups: the groups of ``norm="group"`` (reduced to a divisor of the channels).
        conv: ``"standard"`` or ``"separable"`` 3x3 convolutions (depthwise 3x3 then
            pointwise 1x1, Howard et al. 2017); 1x1 convolutions stay standard.
        bn_epsilon: the normalization's epsilon (PyTorch's 1e-5 by default).
        bn_momentum: BatchNormalization momentum in Keras's convention (0.9 = PyTorch's 0.1).
        kernel_regularizer: a penalty on every kernel of the block, its attention's included
            (`kcnn.layers.regularizers`; `kcnn.training.regularize_kernels` sets it).
"""


@keras.saving.register_keras_serializable(package="kcnn")
class ResidualBlock(_ResidualUnit):
    """The basic residual block of ResNet-18/34 (He, Zhang, Ren & Sun, "Deep Residual Learning
    for Image Recognition", CVPR 2016) and of the course's Listing 4.

    ``conv3x3(stride) -> norm -> ReLU -> conv3x3 -> norm``, plus the shortcut, then ReLU. The
    shortcut is the identity, or a 1x1 convolution with its normalization when ``stride`` or the
    width changes.

    Args:{args}
    Example:
        >>> y = ResidualBlock(128, stride=2, name="stage2_block1")(x)
    """

    expansion = 1

    def _branch_convs(self):
        return [
            self._conv(self.filters, 3, self.stride, "conv1", conv=self.conv),
            self._conv(self.filters, 3, 1, "conv2", conv=self.conv),
        ]


ResidualBlock.__doc__ = ResidualBlock.__doc__.format(
    args=_SHARED_ARGS.format(bottleneck="", strided="first")
)


@keras.saving.register_keras_serializable(package="kcnn")
class BottleneckBlock(_ResidualUnit):
    """The bottleneck block of ResNet-50/101/152 (He et al., CVPR 2016), version 1.5: the stride
    is on the 3x3 convolution, as in torchvision, not on the first 1x1.

    ``conv1x1 -> norm -> ReLU -> conv3x3(stride) -> norm -> ReLU -> conv1x1(4 * filters) ->
    norm``, plus the shortcut, then ReLU. The inner width is
    ``int(filters * width_per_group / 64) * groups`` (``filters`` with the defaults); with
    ``groups`` > 1 the 3x3 convolution is grouped: ResNeXt's block (Xie, Girshick, Dollar, Tu &
    He, "Aggregated Residual Transformations for Deep Neural Networks", CVPR 2017), e.g.
    ``groups=32, width_per_group=4`` for ResNeXt-50 32x4d.

    Args:{args}        groups: groups of the 3x3 convolution (cardinality); standard
            convolutions only.
        width_per_group: channels of each group per 64 ``filters``.
    """

    expansion = 4

    def __init__(self, filters: int, groups: int = 1, width_per_group: int = 64, **kwargs):
        super().__init__(filters, **kwargs)
        self.groups = check_conv(self.conv, groups=groups)[2]
        self.width_per_group = checks.positive_int("width_per_group", width_per_group)
        if self.inner_channels < 1:
            raise ValueError(
                f"width_per_group={width_per_group} leaves no channels for filters={filters}: "
                "the inner width int(filters * width_per_group / 64) * groups must be >= 1"
            )

    @property
    def inner_channels(self) -> int:
        """The width of the 1x1 reduction and the 3x3 convolution."""
        return int(self.filters * self.width_per_group / 64) * self.groups

    def _branch_convs(self):
        inner = self.inner_channels
        return [
            self._conv(inner, 1, 1, "conv1"),
            self._conv(inner, 3, self.stride, "conv2", conv=self.conv, groups=self.groups),
            self._conv(self.out_channels, 1, 1, "conv3"),
        ]

    def get_config(self):
        return {
            **super().get_config(),
            "groups": self.groups,
            "width_per_group": self.width_per_group,
        }


BottleneckBlock.__doc__ = BottleneckBlock.__doc__.format(
    args=_SHARED_ARGS.format(bottleneck=" (times 4)", strided="3x3")
)
