"""The custom layers under their former name: they live in `kcnn.layers` now."""

from kcnn.layers import (
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
