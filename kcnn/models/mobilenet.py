"""MobileNetV2 (Sandler, Howard, Zhu, Zhmoginov & Chen, "MobileNetV2: Inverted Residuals and
Linear Bottlenecks", CVPR 2018), built from kcnn's units as torchvision builds it."""

from __future__ import annotations

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
)
from kcnn.registry import register_model

PAPER = "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, CVPR 2018"
STEMS = ("imagenet", "cifar")

# The paper's Table 2, grouped by resolution into the five stages (output strides 2 to 32):
# per stage, rows of (expansion t, output channels c, repeats n, stride s of the first).
STAGES = (
    ((1, 16, 1, 1),),
    ((6, 24, 2, 2),),
    ((6, 32, 3, 2),),
    ((6, 64, 4, 2), (6, 96, 3, 1)),
    ((6, 160, 3, 2), (6, 320, 1, 1)),
)


@register_model(
    family="mobilenet",
    paper=PAPER,
    input_shape=(224, 224, 3),
    min_input_size=32,
    gradcam_layer="stage5_top_act",
)
def mobilenet_v2(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="mobilenet_v2",
    alpha=1.0,
    stem="imagenet",
    norm="batch",
    norm_groups=NORM_GROUPS,
    attention=None,
    attention_ratio=16,
    drop_path_rate=0.0,
    dropout=0.2,
    strided_padding="symmetric",
    bn_epsilon=BN_EPSILON,
):
    """MobileNetV2: a 3x3/2 stem of 32 channels, 17 inverted residual blocks (1x1 expansion,
    3x3 depthwise convolution, linear 1x1 projection, ReLU6, a shortcut where the shape allows)
    in five stages of output stride 2 to 32, a 1x1 convolution to 1280 channels, global average
    pooling, dropout and the classifier.

    3,504,872 trainable parameters with 1000 classes at ``alpha=1``, as torchvision's
    ``mobilenet_v2`` and Keras Applications' ``MobileNetV2``. Layers: ``stem_conv``,
    ``stage{s}_block{b}_{expand,dw,project}_{conv,bn,act}``, ``stage5_top_conv``; the Grad-CAM
    target is ``stage5_top_act``.

    Args:
        alpha: width multiplier of every layer (channels rounded to multiples of 8); the last
            convolution keeps 1280 channels below 1.
        stem: ``"imagenet"`` (3x3/2 stem) or ``"cifar"`` (stride 1 in the stem and in stage 2:
            output stride 8, for 28-32 px images).
        norm: ``"batch"`` or another kind of `kcnn.layers.normalization` (``None``: biases).
        norm_groups: the groups of ``norm="group"``.
        attention: ``None`` (the paper), or ``"se"``, ``"spatial"``, ``"cbam"`` after every
            depthwise convolution.
        attention_ratio: reduction ratio of the channel attention.
        drop_path_rate: stochastic depth of the last residual block, growing linearly from 0
            over the blocks (Huang et al. 2016); 0 in the paper.
        dropout: rate of the dropout before the classifier (0.2 in torchvision).
        strided_padding: ``"symmetric"`` (torchvision) or ``"asymmetric"`` (Keras
            Applications) padding of the stride-2 convolutions.
        bn_epsilon: the normalizations' epsilon: 1e-5 as torchvision, 1e-3 as Keras
            Applications (`kcnn.models.from_keras_application` sets it).
        (The other arguments are those of keras.applications.)

    Raises:
        ValueError: naming the argument, for any bad one, before a layer is built.
    """
    alpha = checks.positive_number("alpha", alpha)
    checks.choice("stem", stem, STEMS)
    norm, norm_groups = check_norm(norm, norm_groups)
    first_expanded = make_divisible(32 * alpha)
    attention, attention_ratio = check_attention(
        attention, attention_ratio, min_channels=first_expanded
    )
    drop_path_rate = checks.fraction("drop_path_rate", drop_path_rate)
    dropout = checks.fraction("dropout", dropout)
    options = UnitOptions(
        norm=norm,
        norm_groups=norm_groups,
        epsilon=checks.positive_number("bn_epsilon", bn_epsilon),
        strided_padding=strided_padding_option(strided_padding),
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
        default_shape=(224, 224, 3),
        min_size=32 if stem == "imagenet" else 8,
    )
    inputs = model_input(input_tensor, shape)
    x = conv_unit(
        inputs,
        first_expanded,
        3,
        options,
        prefix="stem",
        strides=2 if stem == "imagenet" else 1,
        activation="relu6",
    )
    total = sum(n for rows in STAGES for _, _, n, _ in rows)
    index = 0
    for stage, rows in enumerate(STAGES, start=1):
        b = 0
        for expansion, channels, repeats, stride in rows:
            if stem == "cifar" and stage == 2:
                stride = 1
            for i in range(repeats):
                b += 1
                x = InvertedResidual(
                    expansion,
                    3,
                    stride if i == 0 else 1,
                    make_divisible(channels * alpha),
                    "relu6",
                    attention=attention,
                    attention_ratio=attention_ratio,
                    drop_path_rate=drop_path_rate * index / total,
                )(x, options, f"stage{stage}_block{b}")
                index += 1
    x = conv_unit(
        x,
        make_divisible(1280 * max(1.0, alpha)),
        1,
        options,
        prefix=f"stage{len(STAGES)}_top",
        activation="relu6",
    )
    if not include_top:
        return finish(inputs, global_pool(x, pooling), name, weights)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = classifier(x, classes, classifier_activation, dropout=dropout)
    return finish(inputs, x, name, weights)
