"""Keras Applications models into kcnn models: `from_keras_application`.

Keras Applications (``keras.applications``) builds MobileNetV2, EfficientNet-B0..B7,
DenseNet-121/169/201, Inception-v3 and VGG-16/19 with the same topology as kcnn's builders but
other conventions: stride-2 convolutions padded asymmetrically (TensorFlow's "same"), batch
norm epsilons of 1e-3 (MobileNetV2, EfficientNet) and 1.001e-5 (DenseNet), EfficientNet's
input rescaled and standardized inside the model, squeeze-and-excitation as 1x1 convolutions
with biases, Inception's batch norms without a scale. Each is an option of the kcnn builder;
this module reads them from the Keras model, builds the kcnn model with them and copies every
weight, so the two compute the same function on the same inputs.

Keras Applications' ResNets are version 1 (the stride on the first 1x1 convolution, biases
before batch norm), not the v1.5 kcnn builds: they are refused.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable

import keras
import numpy as np

from kcnn.models.densenet import densenet121
from kcnn.models.efficientnet import STAGES, efficientnet
from kcnn.models.inception import inception_v3
from kcnn.models.mobilenet import mobilenet_v2
from kcnn.models.units import inverted_residual_prefixes, make_divisible
from kcnn.models.vgg import vgg16, vgg19

# Keras Applications' EfficientNet-B0..B7: (width, depth, default resolution, dropout).
EFFICIENTNETS = {
    "b0": (1.0, 1.0, 224, 0.2),
    "b1": (1.0, 1.1, 240, 0.2),
    "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3),
    "b4": (1.4, 1.8, 380, 0.4),
    "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5),
    "b7": (2.0, 3.1, 600, 0.5),
}
EFFICIENTNET_DROP_CONNECT = 0.2  # Keras Applications' drop_connect_rate of every variant


@dataclasses.dataclass(frozen=True)
class Family:
    """How one Keras Applications family becomes a kcnn model.

    Attributes:
        marks: layer names only this family's Keras models have.
        build: the kcnn model of a Keras model, from the keras.applications arguments.
        pairs: ``(keras layer, kcnn layer)`` name pairs whose weights are copied as they are.
    """

    marks: tuple
    build: Callable
    pairs: Callable


def from_keras_application(model) -> keras.Model:
    """The kcnn model of a Keras Applications model's topology, holding its weights.

    The kcnn model takes the Keras model's input shape, classes, classifier activation,
    ``include_top`` and ``pooling``, and the conventions of Keras Applications as builder
    options (``strided_padding="asymmetric"``, ``bn_epsilon``, ``include_preprocessing``,
    ``norm_scale``), so it computes the same outputs on the same inputs; it is a kcnn model
    all the same (stage outputs, Grad-CAM layer, registry options).

    Args:
        model: a ``keras.applications`` ``MobileNetV2``, ``EfficientNetB0``..``B7``,
            ``DenseNet121`` / ``169`` / ``201``, ``InceptionV3``, ``VGG16`` or ``VGG19``,
            with any weights, input shape, classes and head it was built with.

    Returns:
        The kcnn model, named as kcnn names it (``mobilenet_v2``, ``efficientnet``...).

    Raises:
        ValueError: for a model of another family (Keras's ResNets are v1, kcnn's v1.5), or
            one whose weights do not fit the kcnn model (naming the layer).

    Example:
        >>> keras_model = keras.applications.MobileNetV2(weights="imagenet")
        >>> model = kcnn.models.from_keras_application(keras_model)
    """
    family = _family(model)
    kcnn_model = family.build(model, **_application_arguments(model))
    values = []
    for source, target in family.pairs(model, kcnn_model):
        values += _copied(model.get_layer(source), kcnn_model.get_layer(target))
    values += _converted_extras(model, kcnn_model)
    for variable, value in values:
        variable.assign(value)
    for layer in kcnn_model.layers:
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()
    return kcnn_model


def _names(model) -> set:
    return {layer.name for layer in model.layers}


def _family(model) -> Family:
    names = _names(model)
    for family in FAMILIES:
        if all(mark in names for mark in family.marks):
            return family
    raise ValueError(
        f"model {getattr(model, 'name', model)!r} is not a Keras Applications model whose "
        "topology a kcnn builder has: MobileNetV2, EfficientNetB0-B7, DenseNet121/169/201, "
        "InceptionV3, VGG16, VGG19 (Keras's ResNets are v1, kcnn's v1.5)"
    )


def _application_arguments(model) -> dict:
    """The keras.applications arguments the Keras model was built with."""
    names = _names(model)
    include_top = "predictions" in names and isinstance(
        model.get_layer("predictions"), keras.layers.Dense
    )
    arguments = dict(input_shape=tuple(model.input_shape[1:]), include_top=include_top)
    if include_top:
        head = model.get_layer("predictions")
        activation = keras.activations.serialize(head.activation)
        activation = activation if isinstance(activation, str) else activation.get("config")
        arguments.update(
            classes=head.units, classifier_activation=None if activation == "linear" else activation
        )
    else:
        last = model.layers[-1]
        arguments["pooling"] = (
            "avg"
            if isinstance(last, keras.layers.GlobalAveragePooling2D)
            else "max"
            if isinstance(last, keras.layers.GlobalMaxPooling2D)
            else None
        )
    return arguments


def _copied(source, target) -> list:
    """``(kcnn variable, value)`` for every weight of ``source``, checked against ``target``."""
    if type(source) is not type(target) or len(source.weights) != len(target.weights):
        raise ValueError(
            f"Keras layer {source.name!r} ({type(source).__name__}) does not fit kcnn layer "
            f"{target.name!r} ({type(target).__name__})"
        )
    values = []
    for variable, weight in zip(target.weights, source.weights):
        value = keras.ops.convert_to_numpy(weight)
        if tuple(variable.shape) != value.shape:
            raise ValueError(
                f"Keras weight {weight.path} has shape {value.shape}, kcnn's {variable.path} "
                f"{tuple(variable.shape)}: the topologies differ"
            )
        values.append((variable, value))
    return values


def _converted_extras(model, kcnn_model) -> list:
    """The weights that change form: EfficientNet's squeeze-and-excitation (1x1 convolutions
    in Keras, Dense layers in kcnn) and its input standardization."""
    values = []
    names = _names(model)
    if "top_conv" in names:
        for source, target in _efficientnet_prefixes(model, kcnn_model).items():
            se = kcnn_model.get_layer(f"{target}_se")
            for dense, part in ((se.reduce, "se_reduce"), (se.expand, "se_expand")):
                kernel, bias = (
                    keras.ops.convert_to_numpy(w)
                    for w in model.get_layer(f"{source}{part}").weights
                )
                values += [(dense.kernel, kernel[0, 0]), (dense.bias, bias)]
    if "normalization" in _names(kcnn_model):
        values += _standardization(model, kcnn_model.get_layer("normalization"))
    for variable, value in values:
        if tuple(variable.shape) != np.shape(value):
            raise ValueError(
                f"{variable.path} needs shape {tuple(variable.shape)}, the Keras "
                f"model has {np.shape(value)}: the topologies differ"
            )
    return values


def _standardization(model, target) -> list:
    """Keras EfficientNet's ``Normalization`` mean and variance, with the extra ``Rescaling``
    by ``1 / sqrt(std)`` that its ImageNet weights add folded into the variance."""
    source = next(layer for layer in model.layers if isinstance(layer, keras.layers.Normalization))
    mean, variance = (
        keras.ops.convert_to_numpy(w) for w in (source.adapt_mean, source.adapt_variance)
    )
    rescalings = [layer for layer in model.layers if isinstance(layer, keras.layers.Rescaling)]
    for layer in rescalings[1:]:  # the first is the 1/255 that kcnn's rescaling also does
        variance = variance / np.square(np.asarray(layer.scale, dtype=variance.dtype))
    return [(target.adapt_mean, mean), (target.adapt_variance, variance)]


def _epsilon(model, name) -> float:
    return float(model.get_layer(name).epsilon)


# -------------------------------------------------------------------------------------------
# MobileNetV2
# -------------------------------------------------------------------------------------------


def _mobilenet_blocks(model) -> list[str]:
    """Keras's block prefixes in order: ``expanded_conv_``, ``block_1_``... ``block_16_``."""
    blocks = ["expanded_conv_"]
    names = _names(model)
    while f"block_{len(blocks)}_project" in names:
        blocks.append(f"block_{len(blocks)}_")
    return blocks


def _build_mobilenet(model, **arguments):
    alpha = model.get_layer(f"{_mobilenet_blocks(model)[-1]}project").filters / 320
    return mobilenet_v2(
        alpha=alpha,
        strided_padding="asymmetric",
        bn_epsilon=_epsilon(model, "bn_Conv1"),
        dropout=0.0,
        **arguments,
    )


def _mobilenet_pairs(model, kcnn_model):
    pairs = [
        ("Conv1", "stem_conv"),
        ("bn_Conv1", "stem_bn"),
        ("Conv_1", "stage5_top_conv"),
        ("Conv_1_bn", "stage5_top_bn"),
    ]
    keras_blocks = _mobilenet_blocks(model)
    kcnn_blocks = _same_count(keras_blocks, inverted_residual_prefixes(kcnn_model))
    for source, target in zip(keras_blocks, kcnn_blocks):
        parts = [("depthwise", "dw"), ("project", "project")]
        if source != "expanded_conv_":
            parts.append(("expand", "expand"))
        for keras_part, kcnn_part in parts:
            pairs += [
                (f"{source}{keras_part}", f"{target}_{kcnn_part}_conv"),
                (f"{source}{keras_part}_BN", f"{target}_{kcnn_part}_bn"),
            ]
    return pairs + _head_pairs(model)


def _same_count(keras_blocks, kcnn_blocks):
    if len(keras_blocks) != len(kcnn_blocks):
        raise ValueError(
            f"the Keras model has {len(keras_blocks)} blocks, the kcnn model "
            f"{len(kcnn_blocks)}: the topologies differ"
        )
    return kcnn_blocks


def _head_pairs(model):
    return [("predictions", "logits")] if "predictions" in _names(model) else []


# -------------------------------------------------------------------------------------------
# EfficientNet
# -------------------------------------------------------------------------------------------


def _efficientnet_blocks(model) -> list[str]:
    """Keras's block prefixes (``block1a_``, ``block2a_``, ``block2b_``...) in order."""
    found = [re.fullmatch(r"block(\d+)([a-z])_project_conv", layer.name) for layer in model.layers]
    keys = sorted((int(m.group(1)), m.group(2)) for m in found if m)
    return [f"block{row}{letter}_" for row, letter in keys]


def _efficientnet_prefixes(model, kcnn_model) -> dict:
    """Keras's block prefix -> kcnn's."""
    keras_blocks = _efficientnet_blocks(model)
    return dict(
        zip(keras_blocks, _same_count(keras_blocks, inverted_residual_prefixes(kcnn_model)))
    )


def _build_efficientnet(model, **arguments):
    blocks, top = len(_efficientnet_blocks(model)), model.get_layer("top_conv").filters
    for key, (width, depth, resolution, _) in EFFICIENTNETS.items():
        variant_blocks = sum(math.ceil(n * depth) for rows in STAGES for *_, n in rows)
        if (variant_blocks, 4 * make_divisible(320 * width)) == (blocks, top):
            names = _names(model)
            rate = model.get_layer("top_dropout").rate if "top_dropout" in names else 0.0
            return efficientnet(
                width_coefficient=width,
                depth_coefficient=depth,
                resolution=resolution,
                dropout=rate,
                drop_path_rate=EFFICIENTNET_DROP_CONNECT,
                strided_padding="asymmetric",
                bn_epsilon=_epsilon(model, "stem_bn"),
                include_preprocessing=True,
                name=f"efficientnet_{key}",
                **arguments,
            )
    raise ValueError(f"no EfficientNet B0-B7 has {blocks} blocks and {top} top channels")


def _efficientnet_pairs(model, kcnn_model):
    pairs = [
        ("stem_conv", "stem_conv"),
        ("stem_bn", "stem_bn"),
        ("top_conv", "stage5_top_conv"),
        ("top_bn", "stage5_top_bn"),
    ]
    names = _names(model)
    for source, target in _efficientnet_prefixes(model, kcnn_model).items():
        parts = [("dwconv", "bn", "dw"), ("project_conv", "project_bn", "project")]
        if f"{source}expand_conv" in names:
            parts.append(("expand_conv", "expand_bn", "expand"))
        for conv, norm, kcnn_part in parts:
            pairs += [
                (f"{source}{conv}", f"{target}_{kcnn_part}_conv"),
                (f"{source}{norm}", f"{target}_{kcnn_part}_bn"),
            ]
    return pairs + _head_pairs(model)


# -------------------------------------------------------------------------------------------
# DenseNet, Inception-v3, VGG
# -------------------------------------------------------------------------------------------


def _densenet_blocks(model) -> tuple:
    names = _names(model)
    counts = []
    for stage in range(2, 6):
        layers = 0
        while f"conv{stage}_block{layers + 1}_1_conv" in names:
            layers += 1
        counts.append(layers)
    return tuple(counts)


def _build_densenet(model, **arguments):
    return densenet121(
        blocks=_densenet_blocks(model),
        growth_rate=model.get_layer("conv2_block1_2_conv").filters,
        bn_epsilon=_epsilon(model, "conv1_bn"),
        **arguments,
    )


def _densenet_pairs(model, kcnn_model):
    pairs = [("conv1_conv", "stem_conv"), ("conv1_bn", "stem_bn"), ("bn", "stage4_bn")]
    for stage, depth in enumerate(_densenet_blocks(model), start=1):
        if stage > 1:
            pairs += [
                (f"pool{stage}_{part}", f"stage{stage}_transition_{part}")
                for part in ("bn", "conv")
            ]
        for layer in range(1, depth + 1):
            source, target = f"conv{stage + 1}_block{layer}", f"stage{stage}_layer{layer}"
            pairs += [
                (f"{source}_0_bn", f"{target}_1_bn"),
                (f"{source}_1_conv", f"{target}_1_conv"),
                (f"{source}_1_bn", f"{target}_2_bn"),
                (f"{source}_2_conv", f"{target}_2_conv"),
            ]
    return pairs + _head_pairs(model)


def _build_inception(model, **arguments):
    norm = next(
        layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
    )
    return inception_v3(norm_scale=norm.scale, **arguments)


def _inception_pairs(model, kcnn_model):
    """Keras names Inception's convolutions and norms by a counter (``conv2d_7``): the two
    graphs are the same, so their layers pair up in the models' (topological) order."""
    pairs = []
    for kind in (keras.layers.Conv2D, keras.layers.BatchNormalization):
        sources = [layer.name for layer in model.layers if type(layer) is kind]
        targets = [layer.name for layer in kcnn_model.layers if type(layer) is kind]
        pairs += zip(sources, _same_count(sources, targets))
    return pairs + _head_pairs(model)


def _vgg_depths(model) -> tuple:
    names = _names(model)
    return tuple(
        sum(f"block{stage}_conv{i}" in names for i in range(1, 5)) for stage in range(1, 6)
    )


def _build_vgg(model, **arguments):
    builder = {(2, 2, 3, 3, 3): vgg16, (2, 2, 4, 4, 4): vgg19}.get(_vgg_depths(model))
    if builder is None:
        raise ValueError(
            f"a VGG with {_vgg_depths(model)} convolutions per stage is neither VGG16 nor VGG19"
        )
    fc_units = model.get_layer("fc1").units if arguments["include_top"] else 4096
    return builder(fc_units=fc_units, dropout=0.0, **arguments)


def _vgg_pairs(model, kcnn_model):
    pairs = [
        (f"block{stage}_conv{i}", f"stage{stage}_conv{i}")
        for stage, depth in enumerate(_vgg_depths(model), start=1)
        for i in range(1, depth + 1)
    ]
    if "predictions" in _names(model):
        pairs += [("fc1", "fc1"), ("fc2", "fc2")]
    return pairs + _head_pairs(model)


FAMILIES = (
    Family(("Conv1", "expanded_conv_project"), _build_mobilenet, _mobilenet_pairs),
    Family(
        ("stem_conv", "block1a_project_conv", "top_conv"), _build_efficientnet, _efficientnet_pairs
    ),
    Family(("conv1_conv", "conv2_block1_0_bn"), _build_densenet, _densenet_pairs),
    Family(("mixed0", "mixed10"), _build_inception, _inception_pairs),
    Family(("block1_conv1", "block5_conv3"), _build_vgg, _vgg_pairs),
)
