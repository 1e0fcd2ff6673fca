"""EfficientNet-B0 to B3 (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional
Neural Networks", ICML 2019), built from kcnn's units, SqueezeExcite and DropPath as torchvision
builds them."""

from __future__ import annotations

import math

import numpy as np
from keras import layers

from kcnn import checks
from kcnn.layers.attention import check_attention
from kcnn.layers.normalization import BN_EPSILON, NORM_GROUPS, check_norm
from kcnn.models.common import check_arguments, classifier, finish, global_pool, model_input
from kcnn.models.units import (
    InvertedResidual,
    UnitOptions,
    conv_unit,
    make_divisible,
    strided_padding_option,
    variant_signature,
)
from kcnn.registry import register_model

PAPER = "Tan & Le, EfficientNet: Rethinking Model Scaling for CNNs, ICML 2019"
STEMS = ("imagenet", "cifar")

# EfficientNet-B0's MBConv rows (the paper's Table 1), grouped by resolution into five stages
# (output strides 2 to 32): (expansion, kernel, stride of the first, output channels, repeats).
STAGES = (
    ((1, 3, 1, 16, 1),),
    ((6, 3, 2, 24, 2),),
    ((6, 5, 2, 40, 2),),
    ((6, 3, 2, 80, 3), (6, 5, 1, 112, 3)),
    ((6, 5, 2, 192, 4), (6, 3, 1, 320, 1)),
)
SE_SQUEEZE = 4  # the SE layer squeezes to a quarter of the block's input channels

# The compound scaling: width, depth and resolution coefficients, and the classifier dropout.
VARIANTS = {
    "efficientnet_b0": dict(
        width_coefficient=1.0, depth_coefficient=1.0, resolution=224, dropout=0.2
    ),
    "efficientnet_b1": dict(
        width_coefficient=1.0, depth_coefficient=1.1, resolution=240, dropout=0.2
    ),
    "efficientnet_b2": dict(
        width_coefficient=1.1, depth_coefficient=1.2, resolution=260, dropout=0.3
    ),
    "efficientnet_b3": dict(
        width_coefficient=1.2, depth_coefficient=1.4, resolution=300, dropout=0.3
    ),
}
FIXED = ("width_coefficient", "depth_coefficient", "resolution")
# ImageNet's per-channel statistics of pixels in [0, 1] (RGB), with which torchvision and Keras
# Applications standardize EfficientNet's input.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def efficientnet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="efficientnet",
    width_coefficient=1.0,
    depth_coefficient=1.0,
    resolution=224,
    width=1.0,
    depth=1.0,
    stem="imagenet",
    norm="batch",
    norm_groups=NORM_GROUPS,
    attention="se",
    attention_ratio=16,
    drop_path_rate=0.2,
    dropout=0.2,
    strided_padding="symmetric",
    bn_epsilon=BN_EPSILON,
    include_preprocessing=False,
):
    """An EfficientNet of any compound coefficients; the registered variants are
    `efficientnet_b0` to `efficientnet_b3`.

    A 3x3/2 stem of 32 channels, MBConv blocks (1x1 expansion, depthwise convolution,
    squeeze-and-excitation, linear 1x1 projection, swish, a shortcut with stochastic depth where
    the shape allows) in five stages of output stride 2 to 32, a 1x1 convolution to four times
    the last block's channels, global average pooling, dropout and the classifier. Channels are
    ``width_coefficient`` times B0's (rounded to multiples of 8), repeats ``depth_coefficient``
    times (rounded up). Layers: ``stem_conv``, ``stage{s}_block{b}_{expand,dw,project}_...``,
    ``stage{s}_block{b}_se``, ``stage5_top_conv``; the Grad-CAM target is ``stage5_top_act``.

    Args:
        width_coefficient: the compound width coefficient (1.0 for B0).
        depth_coefficient: the compound depth coefficient (1.0 for B0).
        resolution: the default input height and width (224 for B0).
        width: a further multiplier of every channel count (thin models for tests).
        depth: a further multiplier of every stage's repeats (shallow models for tests).
        stem: ``"imagenet"`` (3x3/2 stem) or ``"cifar"`` (stride 1 in the stem and in stage 2:
            output stride 8, for 28-32 px images).
        norm: ``"batch"`` or another kind of `kcnn.layers.normalization` (``None``: biases).
        norm_groups: the groups of ``norm="group"``.
        attention: ``"se"`` (the paper: `kcnn.layers.SqueezeExcite` with swish, squeezing to a
            quarter of the block's input channels), ``None``, ``"spatial"`` or ``"cbam"``.
        attention_ratio: reduction ratio of ``"cbam"``'s channel attention.
        drop_path_rate: stochastic depth (Huang et al. 2016) of the last block; block ``i`` of
            ``L`` (from 0) drops its branch with probability ``drop_path_rate * i / L``.
        dropout: rate of the dropout before the classifier.
        strided_padding: ``"symmetric"`` (torchvision) or ``"asymmetric"`` (Keras
            Applications) padding of the stride-2 convolutions.
        bn_epsilon: the normalizations' epsilon: 1e-5 as torchvision, 1e-3 as Keras
            Applications (`kcnn.models.from_keras_application` sets it).
        include_preprocessing: ``True`` takes pixels in [0, 255] and standardizes them inside
            the model as Keras Applications' EfficientNet does: ``rescaling`` (1/255) then a
            ``normalization`` layer holding ImageNet's mean and variance as weights (a
            converted Keras model brings its own); RGB input only. ``False``: the model
            takes inputs already standardized, as torchvision's.
        (The other arguments are those of keras.applications.)

    Raises:
        ValueError: naming the argument, for any bad one, before a layer is built.
    """
    width_coefficient = checks.positive_number("width_coefficient", width_coefficient)
    depth_coefficient = checks.positive_number("depth_coefficient", depth_coefficient)
    resolution = checks.positive_int("resolution", resolution)
    scale = width_coefficient * checks.positive_number("width", width)
    repeat = depth_coefficient * checks.positive_number("depth", depth)
    checks.choice("stem", stem, STEMS)
    norm, norm_groups = check_norm(norm, norm_groups)
    stem_channels = make_divisible(32 * scale)
    attention, attention_ratio = check_attention(
        attention, attention_ratio, min_channels=None if attention == "se" else stem_channels
    )
    drop_path_rate = checks.fraction("drop_path_rate", drop_path_rate)
    dropout = checks.fraction("dropout", dropout)
    options = UnitOptions(
        norm=norm,
        norm_groups=norm_groups,
        epsilon=checks.positive_number("bn_epsilon", bn_epsilon),
        strided_padding=strided_padding_option(strided_padding),
    )
    if not isinstance(include_preprocessing, bool):
        raise ValueError(
            f"include_preprocessing must be True or False, got {include_preprocessing!r}"
        )
    shape = check_arguments(
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        default_shape=(resolution, resolution, 3),
        min_size=32 if stem == "imagenet" else 8,
    )
    if include_preprocessing and shape[-1] != len(IMAGENET_MEAN):
        raise ValueError(
            f"include_preprocessing=True standardizes RGB images with ImageNet's statistics: "
            f"input_shape must have 3 channels, got {shape}"
        )
    inputs = model_input(input_tensor, shape)
    x = _preprocessing(inputs) if include_preprocessing else inputs
    x = conv_unit(
        x,
        stem_channels,
        3,
        options,
        prefix="stem",
        strides=2 if stem == "imagenet" else 1,
        activation="swish",
    )
    stages = [[(e, k, s, c, math.ceil(n * repeat)) for e, k, s, c, n in rows] for rows in STAGES]
    total = sum(n for rows in stages for *_, n in rows)
    index = 0
    for stage, rows in enumerate(stages, start=1):
        b = 0
        for expansion, kernel, stride, channels, repeats in rows:
            if stem == "cifar" and stage == 2:
                stride = 1
            for i in range(repeats):
                b += 1
                x = InvertedResidual(
                    expansion,
                    kernel,
                    stride if i == 0 else 1,
                    make_divisible(channels * scale),
                    "swish",
                    attention=attention,
                    attention_ratio=SE_SQUEEZE * expansion
                    if attention == "se"
                    else attention_ratio,
                    se_activation="swish",
                    drop_path_rate=drop_path_rate * index / total,
                )(x, options, f"stage{stage}_block{b}")
                index += 1
    x = conv_unit(
        x, 4 * x.shape[-1], 1, options, prefix=f"stage{len(STAGES)}_top", activation="swish"
    )
    if not include_top:
        return finish(inputs, global_pool(x, pooling), name, weights)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = classifier(x, classes, classifier_activation, dropout=dropout)
    return finish(inputs, x, name, weights)


def _preprocessing(x):
    """Keras Applications' EfficientNet input layers: ``rescaling`` of [0, 255] to [0, 1], then
    ``normalization`` by ImageNet's mean and standard deviation (its variance a weight, as in
    Keras, so that converted models keep theirs)."""
    x = layers.Rescaling(1 / 255, name="rescaling")(x)
    normalize = layers.Normalization(axis=-1, name="normalization")
    x = normalize(x)
    normalize.adapt_mean.assign(np.array(IMAGENET_MEAN))
    normalize.adapt_variance.assign(np.square(IMAGENET_STD))
    normalize.finalize_state()
    return x


def _build(key, kwargs):
    """``efficientnet`` with the coefficients and defaults of variant ``key``."""
    variant = VARIANTS[key]
    defaults = {"name": key, "dropout": variant["dropout"]}
    return efficientnet(**{**defaults, **kwargs}, **{k: variant[k] for k in FIXED})


@register_model(
    family="efficientnet",
    paper=PAPER,
    input_shape=(224, 224, 3),
    min_input_size=32,
    gradcam_layer="stage5_top_act",
)
def efficientnet_b0(**kwargs):
    """EfficientNet-B0, the baseline found by the paper's architecture search: 16 MBConv blocks
    in five stages, SE and swish throughout, 224x224 input, dropout 0.2, stochastic depth 0.2.

    5,288,548 trainable parameters with 1000 classes, as torchvision's ``efficientnet_b0``.
    The options are those of `efficientnet` but the compound coefficients.
    """
    return _build("efficientnet_b0", kwargs)


@register_model(
    family="efficientnet",
    paper=PAPER,
    input_shape=(240, 240, 3),
    min_input_size=32,
    gradcam_layer="stage5_top_act",
)
def efficientnet_b1(**kwargs):
    """EfficientNet-B1: B0 with depth coefficient 1.1 (23 blocks), 240x240 input.

    7,794,184 trainable parameters with 1000 classes, as torchvision's ``efficientnet_b1``.
    The options are those of `efficientnet` but the compound coefficients.
    """
    return _build("efficientnet_b1", kwargs)


@register_model(
    family="efficientnet",
    paper=PAPER,
    input_shape=(260, 260, 3),
    min_input_size=32,
    gradcam_layer="stage5_top_act",
)
def efficientnet_b2(**kwargs):
    """EfficientNet-B2: B0 with width coefficient 1.1, depth 1.2, 260x260 input, dropout 0.3.

    9,109,994 trainable parameters with 1000 classes, as torchvision's ``efficientnet_b2``.
    The options are those of `efficientnet` but the compound coefficients.
    """
    return _build("efficientnet_b2", kwargs)


@register_model(
    family="efficientnet",
    paper=PAPER,
    input_shape=(300, 300, 3),
    min_input_size=32,
    gradcam_layer="stage5_top_act",
)
def efficientnet_b3(**kwargs):
    """EfficientNet-B3: B0 with width coefficient 1.2, depth 1.4, 300x300 input, dropout 0.3.

    12,233,232 trainable parameters with 1000 classes, as torchvision's ``efficientnet_b3``.
    The options are those of `efficientnet` but the compound coefficients.
    """
    return _build("efficientnet_b3", kwargs)


for _variant in (efficientnet_b0, efficientnet_b1, efficientnet_b2, efficientnet_b3):
    _key = _variant.__name__
    _variant.__signature__ = variant_signature(
        efficientnet, {"name": _key, "dropout": VARIANTS[_key]["dropout"]}, fixed=FIXED
    )
