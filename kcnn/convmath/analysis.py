"""The receptive field and the cost (parameters, multiply-accumulates) of a Keras model: the
formulas of `kcnn.convmath.arithmetic` applied along the model's graph, layer by layer, inside
kcnn's composite layers and nested models too (found through `kcnn.models.introspect`).

What `macs` counts is the convention of torchvision's model tables and fvcore: one
multiply-accumulate per weight applied, in convolutions (any kind, with ``groups``,
depthwise, separable) and dense layers only. Batch normalisation, pooling, activations, sums,
products and other element-wise operations are not counted (they are a few percent of a CNN's
cost and every tool counts them differently); `layer_table` still lists those layers, with 0
MACs, so a reader sees what was left out. Biases are not counted either. With this convention
kcnn's builders give torchvision's published figures at 224x224: ResNet-18 1.81 G, ResNet-50
4.09 G, VGG-16 15.47 G, AlexNet (``variant="torchvision"``) 0.71 G. torchvision's tables label
these figures "GFLOPS"; a multiply-accumulate is two floating-point operations, so `flops` is
``2 * macs``.
"""

from __future__ import annotations

import dataclasses
import math

__all__ = [
    "LayerCost",
    "ReceptiveField",
    "flops",
    "layer_table",
    "macs",
    "receptive_field",
]


@dataclasses.dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of one layer's output, in input pixels.

    Two sizes, because attention makes them differ. Channel attention (squeeze-and-excitation,
    CBAM's channel half) multiplies each channel by a gate computed from the whole feature map:
    every input pixel can then change every output, so the receptive field proper is global,
    yet what an output sees in detail is still the window of the convolutions beneath it, and
    that window is what papers quote (SE-ResNet-50's is ResNet-50's). Spatial attention (CBAM's
    spatial half, ``attention="spatial"``) gates each position by a 7x7 convolution of the
    channel-pooled map: a local window, which widens both sizes like any 7x7 convolution. So
    CBAM makes ``size`` global and widens ``local`` by its 7x7 window; SE makes ``size`` global
    and leaves ``local`` as it was.

    Attributes:
        size: ``(height, width)`` of the input region one output position depends on (it can
            exceed the image: the rest is padding); ``None`` when every output depends on the
            whole input (after global pooling, flattening, or channel attention).
        jump: ``(height, width)`` distance in input pixels between two neighbouring outputs
            (the product of the strides so far).
        local: ``(height, width)`` of the window seen through the local operations only, the
            global gates of channel attention left out (equal to ``size`` without attention;
            defaults to it); ``None`` once the positions are pooled or flattened away.
    """

    size: tuple[int, int] | None
    jump: tuple[int, int]
    local: tuple[int, int] | None = None

    def __post_init__(self):
        if self.local is None and self.size is not None:
            object.__setattr__(self, "local", self.size)


def _largest(sizes):
    """The largest of several ``(height, width)`` sizes per axis, ``None`` if any is."""
    if any(size is None for size in sizes):
        return None
    return tuple(max(size[i] for size in sizes) for i in range(2))


def _merge_fields(fields):
    return ReceptiveField(
        _largest([f.size for f in fields]),
        _largest([f.jump for f in fields]),
        _largest([f.local for f in fields]),
    )


def _window_field(field, kernel, stride, dilation=(1, 1)):
    """``r' = r + d (k - 1) j`` and ``j' = j s``, per axis (for ``size`` and ``local``)."""

    def grow(size):
        if size is None:
            return None
        return tuple(r + d * (k - 1) * j for r, k, d, j in zip(size, kernel, dilation, field.jump))

    jump = tuple(j * s for j, s in zip(field.jump, stride))
    return ReceptiveField(grow(field.size), jump, grow(field.local))


def _pointwise_layers():
    import keras

    from kcnn.layers.dropout import DropPath

    names = (
        "Activation",
        "ReLU",
        "LeakyReLU",
        "ELU",
        "PReLU",
        "Softmax",
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "UnitNormalization",
        "Dropout",
        "SpatialDropout2D",
        "GaussianNoise",
        "GaussianDropout",
        "AlphaDropout",
        "Add",
        "Subtract",
        "Multiply",
        "Average",
        "Maximum",
        "Minimum",
        "Concatenate",
        "Rescaling",
        "Normalization",
        "ZeroPadding2D",
        "Cropping2D",
        "Dense",
        "Identity",
        "RandomFlip",
        "RandomRotation",
        "RandomTranslation",
        "RandomZoom",
        "RandomContrast",
        "RandomBrightness",
    )
    return (DropPath, *(getattr(keras.layers, n) for n in names if hasattr(keras.layers, n)))


def _global_layers():
    """Layers after which no position is left: every output depends on the whole input."""
    import keras

    return (
        keras.layers.Flatten,
        keras.layers.Reshape,
        keras.layers.GlobalAveragePooling2D,
        keras.layers.GlobalMaxPooling2D,
        keras.layers.GlobalAveragePooling1D,
        keras.layers.GlobalMaxPooling1D,
    )


def _layer_field(layer, field: ReceptiveField) -> ReceptiveField:
    import keras

    from kcnn.layers.attention import CBAM, SpatialAttention, SqueezeExcite
    from kcnn.layers.blocks import BottleneckBlock, ResidualBlock

    if isinstance(
        layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
    ):
        return _window_field(field, layer.kernel_size, layer.strides, layer.dilation_rate)
    if isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
        return _window_field(field, layer.pool_size, layer.strides)
    if isinstance(layer, SpatialAttention):
        return _window_field(field, (layer.kernel_size,) * 2, (1, 1))
    if isinstance(layer, SqueezeExcite):  # a global gate per channel (see ReceptiveField)
        return ReceptiveField(None, field.jump, field.local)
    if isinstance(layer, CBAM):
        return _layer_field(layer.spatial, _layer_field(layer.channel, field))
    if isinstance(layer, (ResidualBlock, BottleneckBlock)):
        branch = field
        for conv, _ in layer.branch:
            branch = _window_field(branch, conv.kernel_size, conv.strides, conv.dilation_rate)
        if layer.attention_layer is not None:
            branch = _layer_field(layer.attention_layer, branch)
        if not layer.skip:
            return branch
        shortcut = ReceptiveField(
            field.size, tuple(j * layer.stride for j in field.jump), field.local
        )
        return _merge_fields([branch, shortcut])
    if isinstance(layer, _global_layers()):
        return ReceptiveField(None, field.jump, None)
    if isinstance(layer, _pointwise_layers()):
        return field
    raise ValueError(
        f"receptive_field does not know how layer {layer.name!r} of type "
        f"{type(layer).__name__} mixes positions"
    )


def _propagate_fields(model, input_fields, table) -> list:
    import keras

    from kcnn.models.introspect import call_tensors

    fields = {id(t): f for t, f in zip(model.inputs, input_fields)}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        input_tensors, outputs = call_tensors(layer, fields)
        inputs = [fields[id(t)] for t in input_tensors]
        if isinstance(layer, keras.Model):
            results = _propagate_fields(layer, inputs, table)
        else:
            table[layer.name] = _layer_field(layer, _merge_fields(inputs))
            results = [table[layer.name]] * len(outputs)
        fields.update((id(t), f) for t, f in zip(outputs, results))
    return [fields[id(t)] for t in model.outputs]


def receptive_field(model) -> dict[str, ReceptiveField]:
    """The receptive field of every layer of a Keras model, in input pixels.

    The recurrence ``r_out = r_in + d (k - 1) j_in``, ``j_out = j_in s`` (``k`` kernel, ``s``
    stride, ``d`` dilation, ``j`` the jump between neighbouring outputs) along every path of the
    graph; where paths meet (a residual sum, a concatenation) the field is the largest. kcnn's
    residual blocks are one entry each (their branch and shortcut are followed inside); the
    layers of nested models (a transfer backbone) appear under their own names.

    Args:
        model: a built Functional or Sequential Keras model (channels-last).

    Returns:
        ``{layer name: ReceptiveField}`` in the order of the layers.

    Raises:
        ValueError: for a layer whose spatial behaviour is unknown (e.g. a custom layer).

    Example:
        >>> fields = receptive_field(kcnn.create_model("vgg16"))
        >>> fields["stage5_pool"].size   # Simonyan & Zisserman's VGG-16
        (212, 212)
    """
    table: dict[str, ReceptiveField] = {}
    _propagate_fields(model, [ReceptiveField((1, 1), (1, 1))] * len(model.inputs), table)
    return table


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """One row of `layer_table`.

    Attributes:
        name: the layer's name.
        kind: its class name (``"Conv2D"``, ``"BatchNormalization"``, ...).
        output_shape: its output shape without the batch axis (``None`` for a layer inside a
            block that was never built, such as an inactive `DropPath`).
        params: all its weights, trainable or not (Keras's ``summary`` convention).
        macs: multiply-accumulates per sample (see the module docstring for what counts).
    """

    name: str
    kind: str
    output_shape: tuple | None
    params: int
    macs: int


def _children(layer):
    """The parts of kcnn's composite layers (`kcnn.models.introspect.parts`) with how many times
    each runs per call, or ``None`` for a leaf."""
    from kcnn.layers.attention import SqueezeExcite
    from kcnn.models.introspect import is_composite

    if not is_composite(layer):
        return None
    children = layer.parts()
    # CBAM's channel attention runs the same MLP on the average and on the maximum.
    calls = 2 if isinstance(layer, SqueezeExcite) and layer.squeeze == "avg_max" else 1
    return [(child, calls) for child in children]


def _weightless_cost_layers():
    """Layers with weights that do no multiply-accumulate in this convention."""
    import keras

    names = (
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "Normalization",
        "Embedding",
        "PReLU",
    )
    return tuple(getattr(keras.layers, n) for n in names if hasattr(keras.layers, n))


def _spatial_positions(layer, shape) -> int:
    spatial = shape[2:] if getattr(layer, "data_format", None) == "channels_first" else shape[1:-1]
    return math.prod(int(d) for d in spatial)


def _leaf_macs(layer, input_shape, output_shape) -> int:
    import keras

    if not layer.weights:
        return 0
    if isinstance(layer, keras.layers.SeparableConv2D):
        weights = math.prod(layer.depthwise_kernel.shape) + math.prod(layer.pointwise_kernel.shape)
        return _spatial_positions(layer, output_shape) * weights
    conv_types = (
        keras.layers.Conv1D,
        keras.layers.Conv2D,
        keras.layers.Conv3D,
        keras.layers.DepthwiseConv1D,
        keras.layers.DepthwiseConv2D,
    )
    if isinstance(layer, conv_types):
        # Every output position applies every weight of the kernel once: with groups the kernel
        # is (kh, kw, C_in / groups, C_out), for a depthwise one (kh, kw, C_in, multiplier).
        return _spatial_positions(layer, output_shape) * math.prod(layer.kernel.shape)
    if isinstance(
        layer,
        (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose),
    ):
        return _spatial_positions(layer, input_shape) * math.prod(layer.kernel.shape)
    if isinstance(layer, keras.layers.Dense):
        return math.prod(int(d) for d in input_shape[1:-1]) * math.prod(layer.kernel.shape)
    if isinstance(layer, _weightless_cost_layers()):
        return 0
    raise ValueError(
        f"layer_table does not know the multiply-accumulates of layer {layer.name!r} of type "
        f"{type(layer).__name__}"
    )


def _sublayer_shapes(layer):
    """Input and output shapes of a layer inside a composite one, from its build configuration
    (``(None, None)`` for a weightless layer that was never built)."""
    build = layer.get_build_config()
    if not build:
        return None, None
    return build["input_shape"], layer.compute_output_shape(build["input_shape"])


def _layer_costs(layer, calls: int, input_shape, output_shape):
    children = _children(layer)
    if children is not None:
        for child, child_calls in children:
            yield from _layer_costs(child, calls * child_calls, *_sublayer_shapes(child))
        return
    macs = 0 if output_shape is None else calls * _leaf_macs(layer, input_shape, output_shape)
    params = sum(math.prod(w.shape) for w in layer.weights)
    shape = None if output_shape is None else tuple(output_shape)[1:]
    yield LayerCost(layer.name, type(layer).__name__, shape, int(params), int(macs))


def layer_table(model) -> list[LayerCost]:
    """Output shape, parameters and multiply-accumulates of every layer of a Keras model.

    Every leaf layer gets a row: the convolutions and BNs inside kcnn's residual blocks and
    attention layers, and the layers of nested models (a transfer backbone) too. Shapes come
    from the model's graph, and inside kcnn's composite layers from each sublayer's build
    configuration. Layers that do no multiply-accumulate in the torchvision/fvcore convention
    (BN, pooling, activations, sums) are listed with 0.

    Args:
        model: a built Keras model.

    Returns:
        A list of `LayerCost`, in the order of the layers.

    Raises:
        ValueError: for a layer with weights whose cost is unknown (e.g. a custom layer).

    Example:
        >>> for row in layer_table(kcnn.create_model("lenet5")):
        ...     print(row.name, row.output_shape, row.params, row.macs)
    """
    import keras

    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            rows += layer_table(layer)
        else:
            input_shape = keras.tree.map_structure(lambda t: tuple(t.shape), layer.input)
            rows += _layer_costs(layer, 1, input_shape, tuple(layer.output.shape))
    return rows


def macs(model) -> int:
    """Multiply-accumulates of one forward pass of one sample through ``model`` (convolutions
    and dense layers; see the module docstring). This is the figure torchvision's tables call
    "GFLOPS": 1.81 G for ResNet-18 at 224x224.

    Example:
        >>> format_count(macs(kcnn.create_model("resnet18")))
        '1.81 G'
    """
    return sum(row.macs for row in layer_table(model))


def flops(model) -> int:
    """Floating-point operations of one forward pass of one sample: ``2 * macs(model)`` (a
    multiply and an add per multiply-accumulate)."""
    return 2 * macs(model)
