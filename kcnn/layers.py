"""kcnn's custom layers, as ``kcnn.layers`` (they live in `kcnn.models.layers`)."""

from kcnn.models.layers import (
    CBAM,
    BottleneckBlock,
    DropPath,
    ResidualBlock,
    SpatialAttention,
    SqueezeExcite,
)

__all__ = [
    "BottleneckBlock",
    "CBAM",
    "DropPath",
    "ResidualBlock",
    "SpatialAttention",
    "SqueezeExcite",
]
