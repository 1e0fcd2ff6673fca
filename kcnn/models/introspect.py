"""Finding things in a model: its stages, blocks, last feature map, Grad-CAM target, output
layer, BatchNormalization layers and the parts of composite layers, for kcnn models and Keras
Applications models alike.

Every search of a model's structure in kcnn goes through this module (feature extraction,
Grad-CAM, feature-map plots, transfer learning's freezing, convmath's analysis), so a naming
convention or a Keras detail is handled in one place.

kcnn models name the layers of feature stage ``i`` ``stage{i}_...``. Keras Applications models
follow their family's names: ``conv4_block6_...`` (ResNet, DenseNet), ``block5_...`` (VGG),
``block_16_...`` (MobileNetV2), ``conv_dw_7_...`` / ``conv_pw_7_...`` (MobileNet),
``block6a_...`` (EfficientNet), ``..._stage_3_block_2_...`` (ConvNeXt), ``expanded_conv_10_...``
(MobileNetV3), and InceptionV3's blocks end in the concatenations ``mixed0`` ... ``mixed10``.

Keras internals: this is the one module of kcnn that reads private Keras attributes, each in one
function that says why: `call_tensors` (``_inbound_nodes``: the tensors of each call of a layer),
`producer` (``_keras_history``: the layer that made a symbolic tensor) and `parts` for a layer
that is neither a model nor a kcnn composite layer (``_flatten_layers``, what Keras's own
``trainable`` setter and ``losses`` walk). kcnn's composite layers (`kcnn.layers.ResidualBlock`,
`BottleneckBlock`, `SqueezeExcite`, `SpatialAttention`, `CBAM`) list their sublayers through
their public ``parts()`` method.
"""

from __future__ import annotations

import re

import keras

_STAGE = re.compile(r"^stage(\d+)_")
# Layers that are never a Grad-CAM target: they only resample, pad or (at inference) copy the
# feature map of the layer before them.
_NOT_TARGETS = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.ZeroPadding2D,
    keras.layers.Dropout,  # SpatialDropout2D too
)
# Layers that are not a stage output: preprocessing, padding and pooling.
_NOT_FEATURES = (
    keras.layers.InputLayer,
    keras.layers.Rescaling,
    keras.layers.Normalization,
    keras.layers.ZeroPadding2D,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
)
# How the blocks of known families are named, as (pattern, block name): the first pattern that
# matches a layer of the model is used for all its layers; the block name is formatted with the
# pattern's group. A layer that matches none belongs to the block before it.
_BLOCK_PATTERNS = (
    (re.compile(r"^(stage\d+_block\d+)"), "{}"),  # kcnn ResNets, MobileNet, Inception...
    (re.compile(r"^(stage\d+)_"), "{}"),  # other kcnn models: a stage is a block
    (re.compile(r"^(conv\d+_block\d+)_"), "{}"),  # ResNet, ResNetV2, DenseNet
    (re.compile(r"^(.+_stage_\d+_block_\d+)_"), "{}"),  # ConvNeXt
    (re.compile(r"^(block_?\d+[a-z]?)_"), "{}"),  # VGG, Xception, MobileNetV2, EfficientNet
    (re.compile(r"^(expanded_conv(?:_\d+)?)_"), "{}"),  # MobileNetV3
    (re.compile(r"^conv_(?:pad|dw|pw)_(\d+)"), "conv_dw_pw_{}"),  # MobileNet (v1)
)
# Families whose blocks are named by their last layer: InceptionV3's concatenations.
_BLOCK_ENDS = re.compile(r"^mixed\d+$")


def is_composite(layer) -> bool:
    """Whether ``layer`` is one of kcnn's composite layers (`ResidualBlock`, `SqueezeExcite`,
    `CBAM`...): a layer made of others, which it lists in order with its ``parts()``."""
    return callable(getattr(layer, "parts", None))


def parts(layer) -> list:
    """The direct sublayers of ``layer``: a model's layers (without its input layers), a kcnn
    composite layer's ``parts()``, or the sublayers Keras tracks for any other layer; ``[]``
    for a plain layer."""
    if isinstance(layer, keras.Model):
        return [inner for inner in layer.layers if not isinstance(inner, keras.layers.InputLayer)]
    if is_composite(layer):
        return list(layer.parts())
    # Keras has no public list of the sublayers of a custom layer it did not write.
    return list(layer._flatten_layers(include_self=False, recursive=False))


def walk(model) -> list:
    """Every layer inside ``model``, depth first in order: its layers, the layers of nested
    models and the parts of composite layers (each once; ``model`` and input layers left out)."""
    found, seen = [], set()

    def visit(layer):
        for inner in parts(layer):
            if id(inner) not in seen:
                seen.add(id(inner))
                found.append(inner)
                visit(inner)

    visit(model)
    return found


def composite_layers(model) -> list:
    """kcnn's composite layers inside ``model`` (`is_composite`), nested ones included, in the
    order of `walk`."""
    return [layer for layer in walk(model) if is_composite(layer)]


def batchnorm_layers(model) -> list:
    """Every BatchNormalization layer of ``model``, those inside nested models and kcnn's
    composite blocks included."""
    return [layer for layer in walk(model) if isinstance(layer, keras.layers.BatchNormalization)]


def nested_models(model) -> list:
    """The models directly inside ``model`` (a transfer model's backbone)."""
    return [layer for layer in model.layers if isinstance(layer, keras.Model)]


def holds(model, layer) -> bool:
    """Whether ``layer`` is one of ``model``'s layers or of the models nested inside it."""
    return any(
        inner is layer or (isinstance(inner, keras.Model) and holds(inner, layer))
        for inner in model.layers
    )


def has_feature_map(layer) -> bool:
    """Whether ``layer``'s output is 4D (batch, height, width, channels)."""
    try:
        return len(layer.output.shape) == 4
    except (AttributeError, ValueError):
        return False


def feature_map_layers(model) -> list[str]:
    """Names of the layers with a 4D (batch, height, width, channels) output, in order, those of
    nested models included: the layers an explanation or a feature-map plot can use."""
    names = []
    for layer in parts(model):
        if isinstance(layer, keras.Model):
            names.extend(feature_map_layers(layer))
        elif has_feature_map(layer):
            names.append(layer.name)
    return names


def kernel(layer):
    """The 4D convolution kernel of ``layer`` (``kernel`` or ``depthwise_kernel``), or None."""
    for attribute in ("kernel", "depthwise_kernel"):
        weights = getattr(layer, attribute, None)
        if weights is not None and len(weights.shape) == 4:
            return weights
    return None


def conv_layers(model) -> list:
    """The layers with a 4D convolution kernel, in order, those of nested models included."""
    found = []
    for layer in parts(model):
        if isinstance(layer, keras.Model):
            found.extend(conv_layers(layer))
        elif kernel(layer) is not None:
            found.append(layer)
    return found


def stage_layers(model) -> dict[int, list]:
    """The layers of each kcnn feature stage, ``{1: [stage1_... layers], ...}`` in order."""
    stages: dict[int, list] = {}
    for layer in model.layers:
        match = _STAGE.match(layer.name)
        if match:
            stages.setdefault(int(match.group(1)), []).append(layer)
    return dict(sorted(stages.items()))


def stage_outputs(model) -> dict:
    """The output tensor of every kcnn feature stage (that of its last layer),
    ``{"stage1": tensor, ...}`` in order; ``{}`` for a model without ``stage<i>_`` layers.

    Example:
        >>> extractor = keras.Model(model.inputs, stage_outputs(model))
    """
    return {f"stage{i}": layers[-1].output for i, layers in stage_layers(model).items()}


def stage_output_layers(model) -> list[str]:
    """The names of the layers whose outputs are `stage_outputs`."""
    return [layers[-1].name for layers in stage_layers(model).values()]


def resolution_outputs(model) -> list[str]:
    """For each spatial resolution the feature maps of ``model`` go through, the name of the
    last layer at that resolution, bottom to top (preprocessing, paddings and poolings left out):
    the stage outputs of any model, Keras Applications ones included.

    Example:
        >>> resolution_outputs(keras.applications.ResNet50(weights=None, include_top=False))
        ['conv1_relu', 'conv2_block3_out', 'conv3_block4_out', 'conv4_block6_out',
         'conv5_block3_out']
    """
    last_at = {}
    for layer in model.layers:
        if isinstance(layer, _NOT_FEATURES) or not has_feature_map(layer):
            continue
        size = tuple(layer.output.shape)[1:3]
        last_at.pop(size, None)
        last_at[size] = layer.name
    return list(last_at.values())


def gradcam_layer(model) -> str | None:
    """Name of the layer whose feature maps Grad-CAM should use, or None if there is none.

    kcnn models: the last layer of the last stage that is neither pooling nor dropout (the last
    feature map at full resolution; a dropout layer is the identity at inference and would only
    hide the layer that made the map). Other models (Sequential, Keras Applications): the last
    layer with a 4D output that is not pooling. Nested models (a transfer model's backbone) are
    searched; the name is then that of the inner layer (`find_layer` finds it).
    """
    stages = stage_layers(model)
    if stages:
        candidates = [
            layer for layer in list(stages.values())[-1] if not isinstance(layer, _NOT_TARGETS)
        ]
        if candidates:
            return candidates[-1].name
    for layer in reversed(parts(model)):
        if isinstance(layer, keras.Model):
            inner = gradcam_layer(layer)
            if inner is not None:
                return inner
        elif has_feature_map(layer) and not isinstance(layer, _NOT_TARGETS):
            return layer.name
    return None


def find_layer(model, name: str):
    """The layer called ``name`` in ``model`` or in any model nested inside it.

    Raises:
        ValueError: if there is none; the message lists the layers with 4D outputs.
    """
    for layer in model.layers:
        if layer.name == name:
            return layer
    for inner in nested_models(model):
        try:
            return find_layer(inner, name)
        except ValueError:
            pass
    raise ValueError(
        f"model {model.name!r} has no layer named {name!r}; layers with feature maps: "
        f"{', '.join(feature_map_layers(model)) or 'none'}"
    )


def blocks(model) -> list[tuple[str, list]]:
    """The model's layers grouped into blocks, bottom to top: ``[(block name, layers)]``.

    Blocks are read from the layer names of the families in the module docstring. A layer that
    matches no block name belongs to the block before it (a transition, the last 1x1
    convolution, a final BN); layers before the first block form the ``"stem"``, the first
    entry. InceptionV3's blocks end at their ``mixed<i>`` concatenation and its stem at the max
    pooling before ``mixed0``. A model whose names follow none of these gets one block per layer
    with weights.

    Example:
        >>> [name for name, _ in blocks(keras.applications.InceptionV3(weights=None))][:3]
        ['stem', 'mixed0', 'mixed1']
    """
    layers = parts(model)
    if any(_BLOCK_ENDS.match(layer.name) for layer in layers):
        return _blocks_by_last_layer(layers)
    pattern = next(
        (p for p in _BLOCK_PATTERNS if any(p[0].match(layer.name) for layer in layers)), None
    )
    groups: list[tuple[str, list]] = [("stem", [])]
    for layer in layers:
        if pattern is None:
            if layer.weights:
                groups.append((layer.name, [layer]))
            else:
                groups[-1][1].append(layer)
            continue
        match = pattern[0].match(layer.name)
        block = pattern[1].format(match.group(1)) if match else None
        if block is not None and block != groups[-1][0]:
            groups.append((block, [layer]))
        else:
            groups[-1][1].append(layer)
    return groups


def _blocks_by_last_layer(layers) -> list[tuple[str, list]]:
    first_end = next(i for i, layer in enumerate(layers) if _BLOCK_ENDS.match(layer.name))
    pools = [
        i
        for i, layer in enumerate(layers[:first_end])
        if isinstance(layer, keras.layers.MaxPooling2D)
    ]
    stem_end = pools[-1] + 1 if pools else 0
    groups: list[tuple[str, list]] = [("stem", list(layers[:stem_end]))]
    current: list = []
    for layer in layers[stem_end:]:
        current.append(layer)
        if _BLOCK_ENDS.match(layer.name):
            groups.append((layer.name, current))
            current = []
    groups[-1][1].extend(current)  # the head or pooling after the last block
    return groups


def call_tensors(layer, known) -> tuple[list, list]:
    """The input and output tensors of the call of ``layer`` whose inputs are all in ``known``
    (a collection of tensor ids).

    Keras's public ``layer.input`` is that of the layer's first call, and for a nested
    Functional model its own inputs rather than the tensors it was called on, so the call nodes
    (``_inbound_nodes``, private) are read instead (a backbone may be called in several models).

    Raises:
        ValueError: if no call of ``layer`` has all its inputs in ``known``.
    """
    for node in layer._inbound_nodes:
        inputs = keras.tree.flatten(node.input_tensors)
        if all(id(t) in known for t in inputs):
            return inputs, keras.tree.flatten(node.output_tensors)
    raise ValueError(f"layer {layer.name!r} is not connected to the inputs of the model")


def producer(tensor):
    """The layer (or nested model) that computed the symbolic tensor ``tensor``, or None for a
    tensor that no layer made (Keras records it in the private ``_keras_history``)."""
    history = getattr(tensor, "_keras_history", None)
    return None if history is None else history.operation


def output_layer(model):
    """The layer that computes ``model``'s one output, looked for inside a nested model that
    computes it (a transfer model's head, a Sequential model ending in another model).

    Raises:
        ValueError: for a model with several outputs.
    """
    if len(model.outputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(model.outputs)} outputs; one is needed")
    layer = producer(model.outputs[0])
    return output_layer(layer) if isinstance(layer, keras.Model) else layer
