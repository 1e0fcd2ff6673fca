"""Attention layers (squeeze-and-excitation, CBAM's spatial attention, CBAM) and the one table
that names them: `attention_layer` turns ``attention="cbam"`` into a layer, and adding a kind
touches this file only.

Keras has none of them, so they are written with ``keras`` and ``keras.ops`` only (no TensorFlow
import: they run on every Keras backend). Every layer is registered serialisable (package
``"kcnn"``) and its ``get_config`` returns exactly its constructor arguments, so a model saved to
``.keras`` loads without ``custom_objects``; it creates and builds its sublayers in ``build``; it
gives its sublayers its own dtype policy (math in the compute dtype, variables in float32 under
mixed precision); it checks its arguments and raises ``ValueError`` naming the argument and the
value received.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
from keras import layers, ops

from kcnn import checks
from kcnn.layers.regularizers import check_kernel_regularizer
from kcnn.layers.shapes import input_channels

__all__ = [
    "ATTENTION_KINDS",
    "CBAM",
    "SpatialAttention",
    "SqueezeExcite",
    "attention_layer",
    "check_attention",
]


@keras.saving.register_keras_serializable(package="kcnn")
class SqueezeExcite(layers.Layer):
    """Channel attention: squeeze-and-excitation (Hu, Shen & Sun, "Squeeze-and-Excitation
    Networks", CVPR 2018).

    Squeeze: global pooling to one value per channel. Excite: Dense(C / ratio, ReLU) then
    Dense(C, sigmoid). Scale: the input multiplied by those channel weights. With
    ``squeeze="avg_max"`` the same two Dense layers also see the global max and the two results
    are summed before the sigmoid, which is the channel attention of CBAM (Woo et al., 2018).

    Args:
        ratio: reduction ratio of the hidden layer; at most the number of input channels.
        squeeze: ``"avg"`` (SE) or ``"avg_max"`` (CBAM's channel attention).
        activation: of the hidden layer: ReLU in the paper, swish in EfficientNet's SE.
        kernel_regularizer: a penalty on the kernels of both Dense layers
            (`kcnn.layers.regularizers`; `kcnn.training.regularize_kernels` sets it).
    """

    def __init__(
        self,
        ratio: int = 16,
        squeeze: str = "avg",
        activation: str = "relu",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kernel_regularizer = check_kernel_regularizer(kernel_regularizer)
        self.ratio = checks.positive_int("ratio", ratio)
        if squeeze not in ("avg", "avg_max"):
            raise ValueError(f"squeeze must be 'avg' or 'avg_max', got {squeeze!r}")
        self.squeeze = squeeze
        try:
            keras.activations.get(activation)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"activation must be a Keras activation name, got {activation!r}"
            ) from error
        self.activation = activation

    def build(self, input_shape):
        channels = input_channels(input_shape, "SqueezeExcite")
        if self.ratio > channels:
            raise ValueError(
                f"ratio={self.ratio} is larger than the {channels} input channels of "
                f"{self.name!r}: the hidden layer would have no units"
            )
        self.reduce = layers.Dense(
            channels // self.ratio,
            activation=self.activation,
            kernel_regularizer=self.kernel_regularizer,
            name=f"{self.name}_reduce",
            dtype=self.dtype_policy,
        )
        self.expand = layers.Dense(
            channels,
            kernel_regularizer=self.kernel_regularizer,
            name=f"{self.name}_expand",
            dtype=self.dtype_policy,
        )
        self.reduce.build((None, channels))
        self.expand.build((None, channels // self.ratio))

    def parts(self) -> list:
        """The sublayers: the reducing and the expanding Dense layers (none before ``build``)."""
        return [self.reduce, self.expand] if self.built else []

    def channel_weights(self, inputs):
        """The per-channel attention weights in (0, 1), shaped (batch, 1, 1, channels)."""
        logits = self.expand(self.reduce(ops.mean(inputs, axis=(1, 2))))
        if self.squeeze == "avg_max":
            logits = logits + self.expand(self.reduce(ops.max(inputs, axis=(1, 2))))
        return ops.sigmoid(logits)[:, None, None, :]

    def call(self, inputs):
        return inputs * self.channel_weights(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "ratio": self.ratio,
            "squeeze": self.squeeze,
            "activation": self.activation,
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
        }


@keras.saving.register_keras_serializable(package="kcnn")
class SpatialAttention(layers.Layer):
    """Spatial attention of CBAM (Woo, Park, Lee & Kweon, "CBAM: Convolutional Block Attention
    Module", ECCV 2018).

    The channel-wise mean and max are stacked into a 2-channel map, a ``kernel_size`` x
    ``kernel_size`` convolution and a sigmoid turn it into one weight per position, and the input
    is multiplied by it.

    Args:
        kernel_size: odd size of the convolution (7 in the paper).
        kernel_regularizer: a penalty on the convolution's kernel (`kcnn.layers.regularizers`;
            `kcnn.training.regularize_kernels` sets it).
    """

    def __init__(self, kernel_size: int = 7, kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_regularizer = check_kernel_regularizer(kernel_regularizer)
        self.kernel_size = checks.positive_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")

    def build(self, input_shape):
        input_channels(input_shape, "SpatialAttention")
        self.conv = layers.Conv2D(
            1,
            self.kernel_size,
            padding="same",
            kernel_regularizer=self.kernel_regularizer,
            name=f"{self.name}_conv",
            dtype=self.dtype_policy,
        )
        self.conv.build((*input_shape[:3], 2))

    def parts(self) -> list:
        """The sublayers: the convolution (none before ``build``)."""
        return [self.conv] if self.built else []

    def attention_map(self, inputs):
        """The attention weights in (0, 1), shaped (batch, height, width, 1)."""
        pooled = ops.concatenate(
            [ops.mean(inputs, axis=-1, keepdims=True), ops.max(inputs, axis=-1, keepdims=True)],
            axis=-1,
        )
        return ops.sigmoid(self.conv(pooled))

    def call(self, inputs):
        return inputs * self.attention_map(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "kernel_size": self.kernel_size,
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
        }


@keras.saving.register_keras_serializable(package="kcnn")
class CBAM(layers.Layer):
    """Convolutional Block Attention Module (Woo et al., ECCV 2018): channel attention, then
    spatial attention, applied in sequence.

    The channel attention is `SqueezeExcite` with ``squeeze="avg_max"``; the spatial attention is
    `SpatialAttention`.

    Args:
        ratio: reduction ratio of the channel attention.
        kernel_size: kernel size of the spatial attention.
        kernel_regularizer: a penalty on every kernel of both attentions
            (`kcnn.layers.regularizers`; `kcnn.training.regularize_kernels` sets it).
    """

    def __init__(self, ratio: int = 16, kernel_size: int = 7, kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_regularizer = check_kernel_regularizer(kernel_regularizer)
        self.ratio = checks.positive_int("ratio", ratio)
        self.kernel_size = checks.positive_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")

    def build(self, input_shape):
        self.channel = SqueezeExcite(
            self.ratio,
            squeeze="avg_max",
            kernel_regularizer=self.kernel_regularizer,
            name=f"{self.name}_channel",
            dtype=self.dtype_policy,
        )
        self.spatial = SpatialAttention(
            self.kernel_size,
            kernel_regularizer=self.kernel_regularizer,
            name=f"{self.name}_spatial",
            dtype=self.dtype_policy,
        )
        self.channel.build(input_shape)
        self.spatial.build(input_shape)

    def parts(self) -> list:
        """The sublayers, in the order they run: the channel attention, then the spatial one
        (none before ``build``)."""
        return [self.channel, self.spatial] if self.built else []

    def call(self, inputs):
        return self.spatial(self.channel(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "ratio": self.ratio,
            "kernel_size": self.kernel_size,
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
        }


@dataclasses.dataclass(frozen=True)
class _Kind:
    """An attention kind: how to make its layer, and whether it reduces the channels by the
    ``ratio`` (then the input needs at least ``ratio`` channels)."""

    make: Callable
    reduces_channels: bool


_KINDS = {
    "se": _Kind(lambda ratio, **kw: SqueezeExcite(ratio, **kw), reduces_channels=True),
    "spatial": _Kind(lambda ratio, **kw: SpatialAttention(**kw), reduces_channels=False),
    "cbam": _Kind(lambda ratio, **kw: CBAM(ratio, **kw), reduces_channels=True),
}
ATTENTION_KINDS = (None, *_KINDS)


def check_attention(attention, ratio: int = 16, min_channels: int | None = None):
    """Check an attention kind and its reduction ratio before any layer is built.

    Args:
        attention: one of `ATTENTION_KINDS`.
        ratio: the reduction ratio of the channel attention (SE, CBAM).
        min_channels: the fewest channels the attention will see, when known.

    Returns:
        ``(attention, ratio)``.

    Raises:
        ValueError: naming ``attention`` and listing the kinds, or ``ratio`` (a positive
            integer, at most ``min_channels`` for the kinds that reduce the channels).
    """
    attention = checks.choice("attention", attention, ATTENTION_KINDS)
    ratio = checks.positive_int("attention_ratio", ratio)
    if (
        attention is not None
        and _KINDS[attention].reduces_channels
        and (min_channels is not None and ratio > min_channels)
    ):
        raise ValueError(
            f"attention_ratio={ratio} is larger than the {min_channels} channels that "
            f"attention={attention!r} sees; lower attention_ratio"
        )
    return attention, ratio


def attention_layer(attention, *, ratio: int = 16, name: str, kernel_regularizer=None, dtype=None):
    """The attention layer of kind ``attention`` named ``{name}_{attention}``, or None; its
    kernels penalised by ``kernel_regularizer``.

    Raises:
        ValueError: see `check_attention`.
    """
    attention, ratio = check_attention(attention, ratio)
    if attention is None:
        return None
    return _KINDS[attention].make(
        ratio, name=f"{name}_{attention}", kernel_regularizer=kernel_regularizer, dtype=dtype
    )
