"""Residual blocks: the basic block of ResNet-18/34 and the bottleneck block of ResNet-50+.

Keras has no residual blocks, so they are written with ``keras`` and ``keras.ops`` only (no
TensorFlow import: they run on every Keras backend). Every layer is registered serialisable (package ``"kcnn"``) and its ``get_config`` returns
exactly its constructor arguments, so a model saved to ``.keras`` loads without
``custom_objects``; it creates and builds its sublayers in ``build``; it gives its sublayers its
own dtype policy (math in the compute dtype, variables in float32 under mixed precision); it
checks its arguments and raises ``ValueError`` naming the argument and the value received.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from kcnn import checks
from kcnn.layers.attention import ATTENTION_KINDS, CBAM, SpatialAttention, SqueezeExcite
from kcnn.layers.dropout import DropPath
from kcnn.layers.normalization import BN_EPSILON, BN_MOMENTUM
from kcnn.layers.shapes import downsample, input_channels

__all__ = ["BottleneckBlock", "ResidualBlock"]


class _ResidualUnit(layers.Layer):
    """What residual and bottleneck blocks share: the shortcut (identity, or a 1x1 projection
    with BN when the stride or the width changes), optional attention and stochastic depth on the
    residual branch, the sum, and the pre-activation variant (He et al., "Identity Mappings in
    Deep Residual Networks", ECCV 2016). Subclasses define the convolutions of the branch.
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
        bn_epsilon: float = BN_EPSILON,
        bn_momentum: float = BN_MOMENTUM,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = checks.positive_int("filters", filters)
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride!r}")
        self.stride = stride
        self.skip = bool(skip)
        self.preact = bool(preact)
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {attention!r}")
        self.attention = attention
        self.attention_ratio = checks.positive_int("attention_ratio", attention_ratio)
        self.drop_path_rate = checks.fraction("drop_path_rate", drop_path_rate)
        if not skip and drop_path_rate > 0:
            raise ValueError(
                f"drop_path_rate={drop_path_rate} needs skip=True: stochastic depth drops the "
                "residual branch, and without a shortcut it would drop the whole signal"
            )
        if not 0 < bn_epsilon < 1:
            raise ValueError(f"bn_epsilon must be in (0, 1), got {bn_epsilon!r}")
        self.bn_epsilon = float(bn_epsilon)
        self.bn_momentum = checks.fraction("bn_momentum", bn_momentum)

    @property
    def out_channels(self) -> int:
        return self.filters * self.expansion

    def _conv(self, filters, kernel_size, stride, suffix):
        # A strided 3x3 convolution pads one pixel on every side, as PyTorch does; Keras's
        # "same" would pad only the bottom and right of an even input and shift the output.
        padding = "valid" if stride > 1 else "same"
        return layers.Conv2D(
            filters, kernel_size, strides=stride, padding=padding, use_bias=False,
            kernel_initializer="he_normal", name=f"{self.name}_{suffix}", dtype=self.dtype_policy,
        )

    @staticmethod
    def _padding(conv) -> int:
        return conv.kernel_size[0] // 2 if conv.strides[0] > 1 else 0

    def _apply_conv(self, conv, x):
        pad = self._padding(conv)
        if pad:
            x = ops.pad(x, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
        return conv(x)

    def _bn(self, suffix):
        return layers.BatchNormalization(
            epsilon=self.bn_epsilon, momentum=self.bn_momentum, name=f"{self.name}_{suffix}",
            dtype=self.dtype_policy,
        )

    def _branch_layers(self, in_channels):
        """The (conv, bn) pairs of the residual branch, in order."""
        raise NotImplementedError

    def build(self, input_shape):
        in_channels = input_channels(input_shape, type(self).__name__)
        self.branch = self._branch_layers(in_channels)
        shape = tuple(input_shape)
        for conv, bn in self.branch:
            if self.preact:
                bn.build(shape)
            pad = self._padding(conv)
            conv.build((shape[0], *(None if d is None else d + 2 * pad for d in shape[1:3]), shape[3]))
            shape = (*downsample(shape, conv.strides[0])[:3], conv.filters)
            if not self.preact:
                bn.build(shape)
        self.projection = self.skip and (self.stride != 1 or in_channels != self.out_channels)
        if self.projection:
            self.shortcut_conv = self._conv(self.out_channels, 1, self.stride, "shortcut_conv")
            self.shortcut_conv.build(tuple(input_shape))
            if not self.preact:
                self.shortcut_bn = self._bn("shortcut_bn")
                self.shortcut_bn.build(shape)
        self.attention_layer = None
        if self.attention == "se":
            self.attention_layer = SqueezeExcite(
                self.attention_ratio, name=f"{self.name}_se", dtype=self.dtype_policy
            )
        elif self.attention == "spatial":
            self.attention_layer = SpatialAttention(
                name=f"{self.name}_spatial", dtype=self.dtype_policy
            )
        elif self.attention == "cbam":
            self.attention_layer = CBAM(
                self.attention_ratio, name=f"{self.name}_cbam", dtype=self.dtype_policy
            )
        if self.attention_layer is not None:
            self.attention_layer.build(shape)
        self.drop_path = None
        if self.drop_path_rate > 0:
            self.drop_path = DropPath(
                self.drop_path_rate, name=f"{self.name}_drop_path", dtype=self.dtype_policy
            )

    def call(self, inputs, training=None):
        x = inputs
        shortcut = inputs
        last = len(self.branch) - 1
        for i, (conv, bn) in enumerate(self.branch):
            if self.preact:
                x = ops.relu(bn(x, training=training))
                if i == 0 and self.projection:
                    shortcut = x  # the projection sees the pre-activated input (He et al. 2016)
                x = self._apply_conv(conv, x)
            else:
                x = bn(self._apply_conv(conv, x), training=training)
                if i < last:
                    x = ops.relu(x)
        if self.projection:
            shortcut = self.shortcut_conv(shortcut)
            if not self.preact:
                shortcut = self.shortcut_bn(shortcut, training=training)
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
            "bn_epsilon": self.bn_epsilon,
            "bn_momentum": self.bn_momentum,
        }


@keras.saving.register_keras_serializable(package="kcnn")
class ResidualBlock(_ResidualUnit):
    """The basic residual block of ResNet-18/34 (He, Zhang, Ren & Sun, "Deep Residual Learning
    for Image Recognition", CVPR 2016) and of the course's Listing 4.

    ``conv3x3(stride) -> BN -> ReLU -> conv3x3 -> BN``, plus the shortcut, then ReLU. The
    shortcut is the identity, or a 1x1 convolution with BN when ``stride`` or the width changes.

    Args:
        filters: output channels.
        stride: 1, or 2 to halve the resolution (on the first convolution).
        skip: ``False`` removes the shortcut, giving the "plain" block of the paper's
            degradation experiment.
        preact: pre-activation order ``BN -> ReLU -> conv`` (He et al., ECCV 2016); the block
            then ends with the sum, without a ReLU.
        attention: ``None``, ``"se"`` (`SqueezeExcite`), ``"spatial"`` (`SpatialAttention`)
            or ``"cbam"`` (`CBAM`) on the residual branch, before the sum.
        attention_ratio: reduction ratio of the channel attention (SE, CBAM).
        drop_path_rate: stochastic depth rate of the residual branch (`DropPath`).
        bn_epsilon: BatchNormalization epsilon (PyTorch's 1e-5 by default).
        bn_momentum: BatchNormalization momentum in Keras's convention (0.9 = PyTorch's 0.1).

    Example:
        >>> y = ResidualBlock(128, stride=2, name="stage2_block1")(x)
    """

    expansion = 1

    def _branch_layers(self, in_channels):
        return [
            (self._conv(self.filters, 3, self.stride, "conv1"), self._bn("bn1")),
            (self._conv(self.filters, 3, 1, "conv2"), self._bn("bn2")),
        ]


@keras.saving.register_keras_serializable(package="kcnn")
class BottleneckBlock(_ResidualUnit):
    """The bottleneck block of ResNet-50/101/152 (He et al., CVPR 2016), version 1.5: the stride
    is on the 3x3 convolution, as in torchvision, not on the first 1x1.

    ``conv1x1 -> BN -> ReLU -> conv3x3(stride) -> BN -> ReLU -> conv1x1(4 * filters) -> BN``,
    plus the shortcut, then ReLU. Same options as `ResidualBlock`; the output has
    ``4 * filters`` channels.
    """

    expansion = 4

    def _branch_layers(self, in_channels):
        return [
            (self._conv(self.filters, 1, 1, "conv1"), self._bn("bn1")),
            (self._conv(self.filters, 3, self.stride, "conv2"), self._bn("bn2")),
            (self._conv(self.out_channels, 1, 1, "conv3"), self._bn("bn3")),
        ]
