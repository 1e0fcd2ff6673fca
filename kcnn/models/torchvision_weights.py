"""torchvision state dicts into kcnn models: `load_torchvision_weights`.

torchvision (BSD-3-Clause) publishes ImageNet weights for the architectures kcnn builds as it
does: ResNets (He et al. 2016, v1.5), ResNeXt, Wide ResNet, VGG with and without batch norm,
AlexNet's single-GPU variant, MobileNetV2, EfficientNet and DenseNet. A state dict maps
torchvision's module paths (``layer1.0.conv1.weight``) to tensors in PyTorch's layouts; this
module maps each kcnn variable to its torchvision name and layout, reads the state dict with
the ``safetensors`` package's NumPy API (no torch needed), checks it completely, then assigns.

Layouts: convolutions OIHW -> HWIO, depthwise (C, 1, kh, kw) -> (kh, kw, C, 1), grouped ones
(O, I/groups, kh, kw) -> (kh, kw, I/groups, O), ``nn.Linear`` (out, in) -> (in, out), the 1x1
convolutions of squeeze-and-excitation (out, in, 1, 1) -> a Dense (in, out), and the first
Linear after a flatten re-ordered from PyTorch's channel-first flattening to Keras's
channel-last one. Batch norms take ``weight``, ``bias``, ``running_mean``, ``running_var``;
``num_batches_tracked`` (a training counter) is ignored.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import keras
import numpy as np

from kcnn.layers.blocks import BottleneckBlock, ResidualBlock
from kcnn.models.units import inverted_residual_prefixes

IGNORED_SUFFIX = ".num_batches_tracked"  # BatchNorm2d's counter of training steps
HEAD_PREFIXES = ("fc.", "classifier.")  # torchvision's classifier heads


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a PyTorch tensor becomes a Keras variable.

    Attributes:
        name: what the layout is, for error messages.
        torch_shape: the PyTorch shape of a Keras variable shape.
        to_keras: the PyTorch array in Keras's layout.
    """

    name: str
    torch_shape: Callable[[tuple], tuple]
    to_keras: Callable[[np.ndarray], np.ndarray]


CONV = Layout("convolution", lambda s: (s[3], s[2], s[0], s[1]), lambda a: a.transpose(2, 3, 1, 0))
DEPTHWISE = Layout(
    "depthwise convolution", lambda s: (s[2], s[3], s[0], s[1]), lambda a: a.transpose(2, 3, 0, 1)
)
LINEAR = Layout("linear", lambda s: (s[1], s[0]), lambda a: a.T)
POINTWISE = Layout(
    "1x1 convolution as a Dense layer", lambda s: (s[1], s[0], 1, 1), lambda a: a[:, :, 0, 0].T
)
VECTOR = Layout("vector", tuple, lambda a: a)


def flatten_linear(height: int, width: int, channels: int) -> Layout:
    """The Linear layer after a ``(channels, height, width)`` map flattened by PyTorch, for a
    Dense layer after the same map flattened by Keras as ``(height, width, channels)``."""

    def to_keras(array):
        units = array.shape[0]
        return (
            array.reshape(units, channels, height, width)
            .transpose(2, 3, 1, 0)
            .reshape(height * width * channels, units)
        )

    return Layout(
        f"linear after a {height}x{width}x{channels} flatten", lambda s: (s[1], s[0]), to_keras
    )


@dataclasses.dataclass(frozen=True)
class Entry:
    """One tensor of a state dict and the kcnn variable it fills."""

    key: str
    variable: object
    layout: Layout


def load_torchvision_weights(model, source) -> None:
    """Load a torchvision state dict into a kcnn model of the same architecture.

    Every tensor is used exactly once, every kcnn variable is filled, and everything is checked
    before anything is assigned, so a state dict that does not fit leaves the model unchanged.
    A model built with ``include_top=False`` takes the state dict of the whole network and
    leaves out its classifier (``fc.*`` or ``classifier.*``).

    Args:
        model: a kcnn ResNet (`resnet18` to `resnet152`, `resnext50_32x4d`, `wide_resnet50_2`),
            VGG (``norm=None`` or ``"batch"``: torchvision's ``vgg16`` / ``vgg16_bn``),
            `alexnet` with ``variant="torchvision"``, `mobilenet_v2`, EfficientNet or
            `densenet121`, with the default options (batch norm, no attention, symmetric
            padding) and torchvision's input size where the head flattens (224 for VGG and
            AlexNet).
        source: the path of a ``.safetensors`` file, or a dict of NumPy arrays, with
            torchvision's names (``model.state_dict()``).

    Raises:
        ValueError: naming the first missing, extra or wrongly shaped tensor, or the kcnn
            variable no torchvision tensor fills (an option torchvision's model lacks).

    Example:
        >>> from safetensors.torch import save_file  # once, where torch is installed
        >>> resnet = torchvision.models.resnet18(weights="DEFAULT")
        >>> save_file(resnet.state_dict(), "resnet18.safetensors")
        >>> model = kcnn.create_model("resnet18")
        >>> kcnn.models.load_torchvision_weights(model, "resnet18.safetensors")
    """
    state = read_state_dict(source)
    entries = torchvision_entries(model)
    values = [(entry.variable, _converted(entry, state)) for entry in entries]
    unused = ignored_keys(state)
    if not _has(model, "logits"):
        unused |= {key for key in state if key.startswith(HEAD_PREFIXES)}
    extra = sorted(set(state) - {entry.key for entry in entries} - unused)
    if extra:
        raise ValueError(
            f"state dict tensor {extra[0]!r} has no place in {model.name!r} "
            f"({len(extra)} extra tensors): it is not from the same architecture"
        )
    for variable, value in values:
        variable.assign(value)


def ignored_keys(state) -> set:
    """The keys of a state dict that hold no weights (BatchNorm's ``num_batches_tracked``)."""
    return {key for key in state if key.endswith(IGNORED_SUFFIX)}


def read_state_dict(source) -> dict:
    """A state dict as NumPy arrays, from a ``.safetensors`` path or a dict of arrays."""
    if isinstance(source, dict):
        return {str(key): np.asarray(value) for key, value in source.items()}
    if not isinstance(source, (str, os.PathLike)) or not os.fspath(source).endswith(".safetensors"):
        raise ValueError(
            f"source must be a dict of NumPy arrays or the path of a .safetensors file, "
            f"got {source!r}"
        )
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise ValueError(f"source file {path!r} does not exist")
    try:
        from safetensors.numpy import load_file
    except ImportError as error:
        raise ImportError(
            "reading .safetensors files needs the safetensors package: pip install "
            "'kcnn[weights]' (or pass a dict of NumPy arrays)"
        ) from error
    return load_file(path)


def _converted(entry: Entry, state: dict) -> np.ndarray:
    """The tensor of ``entry`` in Keras's layout, after checking it is there and its shape."""
    if entry.key not in state:
        raise ValueError(
            f"state dict has no tensor {entry.key!r} (for {entry.variable.path}): it is not "
            "from the same architecture, or it is incomplete"
        )
    array = np.asarray(state[entry.key])
    expected = tuple(entry.layout.torch_shape(tuple(entry.variable.shape)))
    if array.shape != expected:
        raise ValueError(
            f"state dict tensor {entry.key!r} has shape {array.shape}, but {entry.variable.path}"
            f" needs {expected} ({entry.layout.name}): the architecture or its options differ"
        )
    return np.ascontiguousarray(entry.layout.to_keras(array), dtype=entry.variable.dtype)


def torchvision_entries(model) -> list[Entry]:
    """Every variable of ``model`` with the torchvision name and layout of its tensor.

    Raises:
        ValueError: for a model of no family torchvision has, or a variable (an option) that
            has no torchvision tensor.
    """
    family = _family(model)
    entries = FAMILIES[family](model)
    covered = {id(entry.variable) for entry in entries}
    for variable in model.weights:
        if id(variable) not in covered and not _is_seed(variable):
            raise ValueError(
                f"{model.name!r} has a variable torchvision's {family} does not have: "
                f"{variable.path} (build it with the default options, batch norm and no "
                "attention)"
            )
    return entries


def _is_seed(variable) -> bool:
    """The random-seed state of dropout-like layers, which is not a weight."""
    return "seed_generator" in variable.path


def _has(model, name) -> bool:
    return any(layer.name == name for layer in model.layers)


def _family(model) -> str:
    if _has(model, "stage1_block1") and isinstance(
        model.get_layer("stage1_block1"), (ResidualBlock, BottleneckBlock)
    ):
        return "resnet"
    if _has(model, "stage1_block1_dw_conv"):
        relu6 = getattr(model.get_layer("stem_act").activation, "__name__", "") == "relu6"
        return "mobilenet_v2" if relu6 else "efficientnet"
    if _has(model, "stage1_layer1_1_conv"):
        return "densenet"
    if _has(model, "stage1_conv1"):
        return "vgg"
    if _has(model, "stage1_conv") and _has(model, "stage3_conv1"):
        return "alexnet"
    raise ValueError(
        f"model {model.name!r} is of no family torchvision publishes weights for: "
        f"expected one of {', '.join(sorted(FAMILIES))} built by kcnn"
    )


# -------------------------------------------------------------------------------------------
# Entries of one layer
# -------------------------------------------------------------------------------------------


def _conv(key, layer, layout=CONV) -> list[Entry]:
    entries = [Entry(f"{key}.weight", _kernel(layer), layout)]
    if getattr(layer, "use_bias", False):
        entries.append(Entry(f"{key}.bias", layer.bias, VECTOR))
    return entries


def _kernel(layer):
    """The kernel of a standard or depthwise convolution (a separable one is refused)."""
    if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
        raise ValueError(
            f"layer {layer.name!r} is a {type(layer).__name__}; torchvision's model has a "
            "standard convolution there (build it with conv='standard')"
        )
    return layer.kernel


def _batch_norm(key, layer) -> list[Entry]:
    if not isinstance(layer, keras.layers.BatchNormalization) or not layer.scale:
        raise ValueError(
            f"torchvision's {key!r} is a BatchNorm2d, but the model has "
            f"{getattr(layer, 'name', 'no normalization')!r} there (build it with norm='batch')"
        )
    return [
        Entry(f"{key}.weight", layer.gamma, VECTOR),
        Entry(f"{key}.bias", layer.beta, VECTOR),
        Entry(f"{key}.running_mean", layer.moving_mean, VECTOR),
        Entry(f"{key}.running_var", layer.moving_variance, VECTOR),
    ]


def _linear(key, layer, layout=LINEAR) -> list[Entry]:
    return [Entry(f"{key}.weight", layer.kernel, layout), Entry(f"{key}.bias", layer.bias, VECTOR)]


def _norm_layer(model, prefix):
    """The normalization named ``{prefix}_bn`` (or ``_gn``..., refused by `_batch_norm`)."""
    for suffix in ("bn", "gn", "ln", "in"):
        if _has(model, f"{prefix}_{suffix}"):
            return model.get_layer(f"{prefix}_{suffix}")
    return None


def _head(model, key, layout=LINEAR) -> list[Entry]:
    return _linear(key, model.get_layer("logits"), layout) if _has(model, "logits") else []


def _blocks(model, stage, suffix):
    """The block prefixes ``stage{stage}_block{b}`` of ``model`` that have a layer ``suffix``."""
    prefixes = []
    while _has(model, f"stage{stage}_block{len(prefixes) + 1}{suffix}"):
        prefixes.append(f"stage{stage}_block{len(prefixes) + 1}")
    return prefixes


# -------------------------------------------------------------------------------------------
# The families
# -------------------------------------------------------------------------------------------


def _resnet(model) -> list[Entry]:
    """torchvision's ``ResNet``: ``conv1``, ``bn1``, ``layer{s}.{b}.conv{i}`` / ``bn{i}`` /
    ``downsample.0`` / ``downsample.1``, ``fc``."""
    stages = [_blocks(model, stage, "") for stage in range(1, 5)]
    for prefix in (prefix for blocks in stages for prefix in blocks):
        block = model.get_layer(prefix)
        if block.preact or not block.skip:
            raise ValueError(
                f"block {prefix!r} is not torchvision's (preact={block.preact}, "
                f"skip={block.skip}): build the model with the default options"
            )
    entries = _conv("conv1", model.get_layer("stem_conv")) + _batch_norm(
        "bn1", _norm_layer(model, "stem")
    )
    for stage, blocks in enumerate(stages, start=1):
        for b, prefix in enumerate(blocks, start=1):
            block = model.get_layer(prefix)
            key = f"layer{stage}.{b - 1}"
            for i, (conv, norm) in enumerate(block.branch, start=1):
                entries += _conv(f"{key}.conv{i}", conv) + _batch_norm(f"{key}.bn{i}", norm)
            if block.projection:
                entries += _conv(f"{key}.downsample.0", block.shortcut_conv)
                entries += _batch_norm(f"{key}.downsample.1", block.shortcut_bn)
    return entries + _head(model, "fc")


def _flatten_layout(model) -> Layout:
    height, width, channels = model.get_layer("flatten").input.shape[1:]
    return flatten_linear(height, width, channels)


def _vgg(model) -> list[Entry]:
    """torchvision's ``VGG``: ``features.{i}`` counting every module of the sequential feature
    extractor (convolution, batch norm, ReLU, max-pool) and ``classifier.{0,3,6}``."""
    entries, index, stage = [], 0, 1
    while _has(model, f"stage{stage}_conv1"):
        i = 1
        while _has(model, f"stage{stage}_conv{i}"):
            entries += _conv(f"features.{index}", model.get_layer(f"stage{stage}_conv{i}"))
            bn_name = f"stage{stage}_bn{i}"
            if _has(model, bn_name):
                entries += _batch_norm(f"features.{index + 1}", model.get_layer(bn_name))
                index += 1
            index += 2
            i += 1
        index += 1
        stage += 1
    if _has(model, "fc1"):
        entries += _linear("classifier.0", model.get_layer("fc1"), _flatten_layout(model))
        entries += _linear("classifier.3", model.get_layer("fc2"))
        entries += _head(model, "classifier.6")
    return entries


def _alexnet(model) -> list[Entry]:
    """torchvision's ``AlexNet``: ``features.{0,3,6,8,10}`` and ``classifier.{1,4,6}``."""
    names = ["stage1_conv", "stage2_conv", "stage3_conv1", "stage3_conv2", "stage3_conv3"]
    entries = []
    for index, name in zip((0, 3, 6, 8, 10), names):
        entries += _conv(f"features.{index}", model.get_layer(name))
    if _has(model, "fc6"):
        entries += _linear("classifier.1", model.get_layer("fc6"), _flatten_layout(model))
        entries += _linear("classifier.4", model.get_layer("fc7"))
        entries += _head(model, "classifier.6")
    return entries


def _conv_bn(model, key, prefix, layout=CONV) -> list[Entry]:
    """A kcnn ``conv_unit`` (``{prefix}_conv``, ``{prefix}_bn``) as torchvision's
    ``Conv2dNormActivation`` (``{key}.0``, ``{key}.1``)."""
    return _conv(f"{key}.0", model.get_layer(f"{prefix}_conv"), layout) + _batch_norm(
        f"{key}.1", _norm_layer(model, prefix)
    )


def _top(model, index) -> list[Entry]:
    return _conv_bn(model, f"features.{index}", "stage5_top")


def _mobilenet_v2(model) -> list[Entry]:
    """torchvision's ``MobileNetV2``: ``features.0`` (stem), ``features.{1..17}.conv`` (the
    inverted residual blocks), ``features.18`` (the last 1x1), ``classifier.1``."""
    entries = _conv_bn(model, "features.0", "stem")
    blocks = inverted_residual_prefixes(model)
    for index, prefix in enumerate(blocks, start=1):
        key = f"features.{index}.conv"
        parts = []
        if _has(model, f"{prefix}_expand_conv"):
            parts.append(("expand", CONV))
        parts.append(("dw", DEPTHWISE))
        for position, (part, layout) in enumerate(parts):
            entries += _conv_bn(model, f"{key}.{position}", f"{prefix}_{part}", layout)
        position = len(parts)
        entries += _conv(f"{key}.{position}", model.get_layer(f"{prefix}_project_conv"))
        entries += _batch_norm(f"{key}.{position + 1}", _norm_layer(model, f"{prefix}_project"))
    return entries + _top(model, len(blocks) + 1) + _head(model, "classifier.1")


def _efficientnet_rows(model, blocks) -> list[list[str]]:
    """The blocks grouped into the rows of EfficientNet's table (torchvision's ``features.1``
    to ``features.7``): a row starts where the stride is 2, or the kernel size, the expansion
    or the output channels change."""
    rows, previous = [], None
    for prefix in blocks:
        dw = model.get_layer(f"{prefix}_dw_conv")
        signature = (
            dw.kernel_size,
            _has(model, f"{prefix}_expand_conv"),
            model.get_layer(f"{prefix}_project_conv").filters,
        )
        if previous is None or dw.strides[0] > 1 or signature != previous:
            rows.append([])
        rows[-1].append(prefix)
        previous = signature
    return rows


def _efficientnet(model) -> list[Entry]:
    """torchvision's ``EfficientNet``: ``features.0`` (stem), ``features.{row}.{j}.block``
    (MBConv: expansion, depthwise, ``SqueezeExcitation`` ``fc1`` / ``fc2``, projection),
    ``features.{rows + 1}`` (the last 1x1), ``classifier.1``."""
    entries = _conv_bn(model, "features.0", "stem")
    rows = _efficientnet_rows(model, inverted_residual_prefixes(model))
    for row, prefixes in enumerate(rows, start=1):
        for j, prefix in enumerate(prefixes):
            key = f"features.{row}.{j}.block"
            position = 0
            if _has(model, f"{prefix}_expand_conv"):
                entries += _conv_bn(model, f"{key}.0", f"{prefix}_expand")
                position = 1
            entries += _conv_bn(model, f"{key}.{position}", f"{prefix}_dw", DEPTHWISE)
            if not _has(model, f"{prefix}_se"):
                raise ValueError(
                    f"block {prefix!r} has no squeeze-and-excitation: torchvision's "
                    "EfficientNet has (build it with attention='se')"
                )
            se = model.get_layer(f"{prefix}_se")
            entries += _linear(f"{key}.{position + 1}.fc1", se.reduce, POINTWISE)
            entries += _linear(f"{key}.{position + 1}.fc2", se.expand, POINTWISE)
            entries += _conv_bn(model, f"{key}.{position + 2}", f"{prefix}_project")
    return entries + _top(model, len(rows) + 1) + _head(model, "classifier.1")


def _densenet(model) -> list[Entry]:
    """torchvision's ``DenseNet``: ``features.conv0`` / ``norm0``,
    ``features.denseblock{s}.denselayer{l}.{norm1,conv1,norm2,conv2}``,
    ``features.transition{s}.{norm,conv}``, ``features.norm5``, ``classifier``."""
    entries = _conv("features.conv0", model.get_layer("stem_conv"))
    entries += _batch_norm("features.norm0", _norm_layer(model, "stem"))
    for stage in range(1, 5):
        if stage > 1:
            prefix, key = f"stage{stage}_transition", f"features.transition{stage - 1}"
            entries += _batch_norm(f"{key}.norm", _norm_layer(model, prefix))
            entries += _conv(f"{key}.conv", model.get_layer(f"{prefix}_conv"))
        layer = 1
        while _has(model, f"stage{stage}_layer{layer}_1_conv"):
            prefix = f"stage{stage}_layer{layer}"
            key = f"features.denseblock{stage}.denselayer{layer}"
            for i in (1, 2):
                entries += _batch_norm(f"{key}.norm{i}", _norm_layer(model, f"{prefix}_{i}"))
                entries += _conv(f"{key}.conv{i}", model.get_layer(f"{prefix}_{i}_conv"))
            layer += 1
    entries += _batch_norm("features.norm5", _norm_layer(model, "stage4"))
    return entries + _head(model, "classifier")


FAMILIES = {
    "resnet": _resnet,
    "vgg": _vgg,
    "alexnet": _alexnet,
    "mobilenet_v2": _mobilenet_v2,
    "efficientnet": _efficientnet,
    "densenet": _densenet,
}
