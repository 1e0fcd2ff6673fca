"""The arithmetic of convolutional networks, executable, in two parts:

- `kcnn.convmath.arithmetic`: the course's formulas (output size, parameters) and a NumPy
  reference of convolution and pooling with their backward passes; NumPy only.
- `kcnn.convmath.analysis`: the receptive field and the cost (parameters, multiply-accumulates)
  of a Keras model, layer by layer.

Every public name of both is here too (``kcnn.convmath.macs``, ``kcnn.convmath.conv2d``...).
"""

from kcnn.convmath.analysis import (
    LayerCost,
    ReceptiveField,
    flops,
    layer_table,
    macs,
    receptive_field,
)
from kcnn.convmath.arithmetic import (
    PADDING_MODES,
    ConvGradients,
    avg_pool2d,
    avg_pool2d_backward,
    conv2d,
    conv2d_backward,
    conv_params,
    format_count,
    max_pool2d,
    max_pool2d_backward,
    output_size,
)

__all__ = [
    "ConvGradients",
    "LayerCost",
    "PADDING_MODES",
    "ReceptiveField",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "conv_params",
    "flops",
    "format_count",
    "layer_table",
    "macs",
    "max_pool2d",
    "max_pool2d_backward",
    "output_size",
    "receptive_field",
]
