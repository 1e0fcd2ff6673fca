"""The parts of a transfer model: its nested backbone, the backbone's blocks, its stage outputs
and its BatchNormalization layers.

`kcnn.transfer.freezing` freezes and unfreezes by these blocks; `feature_layers` names the
layers that feature extraction and Grad-CAM use.
"""

from __future__ import annotations

import re

import keras
from keras import layers

# How the blocks of known backbones are named; the first pattern that matches a layer of the
# backbone is used for all its layers. Layers that match none belong to the block before them.
_BLOCK_PATTERNS = (
    re.compile(r"^(stage\d+_block\d+)"),          # kcnn ResNets: one layer per residual block
    re.compile(r"^(stage\d+)_"),                  # other kcnn models: a stage is a block
    re.compile(r"^(conv\d+_block\d+)_"),          # ResNet, ResNetV2, DenseNet
    re.compile(r"^(.+_stage_\d+_block_\d+)_"),    # ConvNeXt
    re.compile(r"^(block_?\d+[a-z]?)_"),          # VGG, Xception, MobileNetV2, EfficientNet(V2)
    re.compile(r"^(expanded_conv(?:_\d+)?)_"),    # MobileNetV3
)


_NOT_FEATURES = (
    layers.InputLayer,
    layers.Rescaling,
    layers.Normalization,
    layers.ZeroPadding2D,
    layers.MaxPooling2D,
    layers.AveragePooling2D,
)


def backbone_of(model) -> keras.Model:
    """The backbone nested in a transfer model made by `build`.

    Raises:
        ValueError: if ``model`` does not hold exactly one nested model.
    """
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError(
            f"model {model.name!r} is not a kcnn.transfer model: it holds {len(nested)} nested "
            "models, not one backbone"
        )
    return nested[0]


def blocks(backbone) -> list[tuple[str, list]]:
    """The backbone's layers grouped into blocks, bottom to top: ``[(block name, layers)]``.

    Blocks are read from the layer names of the known families (``conv4_block6_...`` in
    ResNet and DenseNet, ``block5_...`` in VGG, ``block_16_...`` in MobileNetV2,
    ``block6a_...`` in EfficientNet, ``..._stage_3_block_2_...`` in ConvNeXt,
    ``expanded_conv_10_...`` in MobileNetV3, ``stage4_block2`` in kcnn ResNets, ``stage3_...``
    in other kcnn models). A layer that matches no block name belongs to the block before it
    (a transition, the last 1x1 convolution, a final BN); layers before the first block form
    the ``"stem"``, which is the first entry. A backbone whose names follow none of these
    patterns gets one block per layer with weights.

    Args:
        backbone: the backbone model (`backbone_of` finds it in a transfer model).
    """
    layer_list = [layer for layer in backbone.layers if not isinstance(layer, layers.InputLayer)]
    pattern = _block_pattern(layer_list)
    groups: list[tuple[str, list]] = [("stem", [])]
    for layer in layer_list:
        match = pattern.match(layer.name) if pattern is not None else None
        if pattern is None and layer.weights:
            groups.append((layer.name, [layer]))
        elif match and match.group(1) != groups[-1][0]:
            groups.append((match.group(1), [layer]))
        else:
            groups[-1][1].append(layer)
    return groups


def _block_pattern(layer_list):
    for pattern in _BLOCK_PATTERNS:
        if any(pattern.match(layer.name) for layer in layer_list):
            return pattern
    return None


def batchnorm_layers(backbone) -> list:
    """Every BatchNormalization layer of ``backbone``, those inside custom blocks included."""
    # Keras has no public way to list the sub-layers of a custom layer (kcnn's ResidualBlock
    # holds its BN layers); _flatten_layers is what Keras's own `trainable` setter walks.
    return [
        layer for layer in backbone._flatten_layers(include_self=False)
        if isinstance(layer, layers.BatchNormalization)
    ]


def feature_layers(model) -> list[str]:
    """The backbone's stage outputs: for each spatial resolution its feature maps go through,
    the name of the last layer at that resolution, bottom to top (paddings and poolings left
    out). The last one is the Grad-CAM target (`kcnn.models.gradcam_layer`).

    The layers are inside the nested backbone; `kcnn.models.find_layer` and `kcnn.viz` find
    them by name in the transfer model.

    Example:
        >>> feature_layers(build("ResNet50", 10, weights=None, input_shape=(224, 224, 3)))
        ['conv1_relu', 'conv2_block3_out', 'conv3_block4_out', 'conv4_block6_out',
         'conv5_block3_out']
    """
    last_at = {}
    for layer in backbone_of(model).layers:
        if isinstance(layer, _NOT_FEATURES):
            continue
        shape = tuple(layer.output.shape)
        if len(shape) == 4:
            last_at.pop(shape[1:3], None)
            last_at[shape[1:3]] = layer.name
    return list(last_at.values())
