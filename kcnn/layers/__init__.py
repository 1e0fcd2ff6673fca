"""kcnn's custom layers, one module per kind, each layer registered serialisable, and the
factories that turn a kind's name into a layer (``normalization("group", ...)``,
``convolution("separable", ...)``, ``attention_layer("cbam", ...)``,
``dropout_layer("spatial", ...)``).

- `kcnn.layers.normalization`: batch, group, layer and instance normalization by name
- `kcnn.layers.convolution`: standard and separable convolutions by name
- `kcnn.layers.attention`: `SqueezeExcite`, `SpatialAttention`, `CBAM`, and the kinds by name
- `kcnn.layers.blocks`: `ResidualBlock`, `BottleneckBlock`
- `kcnn.layers.dropout`: `DropPath`, and standard, spatial and targeted dropout by name
- `kcnn.layers.preprocessing`: `RandomResizedCrop`, `ApplicationPreprocessing`
- `kcnn.layers.targeted`: `TargetedDropout`
- `kcnn.layers.regularizers`: the kernel penalty the composite layers give their parts

Importing this package registers every layer with Keras (package ``"kcnn"``), so a saved kcnn
model loads with ``keras.saving.load_model`` and no ``custom_objects``. It uses ``keras`` and
``keras.ops`` only (no TensorFlow), so the layers run on every Keras backend.
"""

from kcnn.layers.attention import CBAM, SpatialAttention, SqueezeExcite
from kcnn.layers.blocks import BottleneckBlock, ResidualBlock
from kcnn.layers.dropout import DropPath
from kcnn.layers.preprocessing import ApplicationPreprocessing, RandomResizedCrop
from kcnn.layers.targeted import TargetedDropout

__all__ = [
    "ApplicationPreprocessing",
    "BottleneckBlock",
    "CBAM",
    "DropPath",
    "RandomResizedCrop",
    "ResidualBlock",
    "SpatialAttention",
    "SqueezeExcite",
    "TargetedDropout",
]
