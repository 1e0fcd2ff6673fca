"""DenseNet-121 (Huang, Liu, van der Maaten & Weinberger, "Densely Connected Convolutional
Networks", CVPR 2017), built from kcnn's norms as torchvision builds it."""

from __future__ import annotations

from keras import layers

from kcnn import checks
from kcnn.layers.normalization import (
    BN_EPSILON,
    NORM_GROUPS,
    check_norm,
    normalization,
    short_name,
)
from kcnn.models.common import check_arguments, classifier, finish, global_pool, model_input
from kcnn.models.units import UnitOptions, conv_unit
from kcnn.registry import register_model

PAPER = (
    "Huang, Liu, van der Maaten & Weinberger, Densely Connected Convolutional Networks, CVPR 2017"
)
STEMS = ("imagenet", "cifar")
BLOCKS = (6, 12, 24, 16)  # dense layers per block of DenseNet-121
BOTTLENECK = 4  # the 1x1 convolution of a dense layer gives 4 * growth_rate channels (DenseNet-B)
COMPRESSION = 0.5  # a transition halves the channels (DenseNet-C)


def _norm_act_conv(x, filters, kernel_size, options: UnitOptions, prefix):
    """DenseNet's pre-activation unit: ``{prefix}_bn`` (or ``gn``...), ``{prefix}_act`` (ReLU),
    ``{prefix}_conv`` ("same" padding, a bias only without a norm)."""
    norm = normalization(
        options.norm,
        x.shape[-1],
        norm_groups=options.norm_groups,
        epsilon=options.epsilon,
        name=f"{prefix}_{short_name(options.norm)}",
    )
    if norm is not None:
        x = norm(x)
    x = layers.Activation("relu", name=f"{prefix}_act")(x)
    return layers.Conv2D(
        filters,
        kernel_size,
        padding="same",
        use_bias=options.norm is None,
        kernel_initializer="he_normal",
        name=f"{prefix}_conv",
    )(x)


def _dense_layer(x, growth_rate, options: UnitOptions, prefix):
    """One dense layer: 1x1 bottleneck, 3x3 convolution to ``growth_rate`` channels, and the new
    channels concatenated to its input (``{prefix}_concat``)."""
    y = _norm_act_conv(x, BOTTLENECK * growth_rate, 1, options, f"{prefix}_1")
    y = _norm_act_conv(y, growth_rate, 3, options, f"{prefix}_2")
    return layers.Concatenate(name=f"{prefix}_concat")([x, y])


def _transition(x, options: UnitOptions, prefix):
    """Norm, ReLU, 1x1 convolution halving the channels, 2x2 average pooling."""
    x = _norm_act_conv(x, int(x.shape[-1] * COMPRESSION), 1, options, prefix)
    return layers.AveragePooling2D(2, name=f"{prefix}_pool")(x)


@register_model(
    family="densenet",
    paper=PAPER,
    input_shape=(224, 224, 3),
    min_input_size=32,
    gradcam_layer="stage4_act",
)
def densenet121(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="densenet121",
    blocks=BLOCKS,
    growth_rate=32,
    stem="imagenet",
    norm="batch",
    norm_groups=NORM_GROUPS,
    bn_epsilon=BN_EPSILON,
):
    """DenseNet-121 (DenseNet-BC, k=32): a 7x7/2 stem of ``2 * growth_rate`` channels and a
    3x3/2 max-pool, four dense blocks of 6, 12, 24 and 16 layers (each a 1x1 bottleneck and a
    3x3 convolution whose ``growth_rate`` channels are concatenated to all before), transitions
    that halve the channels and the resolution, a final norm and ReLU, global average pooling
    and the classifier.

    7,978,856 trainable parameters with 1000 classes, as torchvision's ``densenet121`` and Keras
    Applications' ``DenseNet121``. Stage ``s`` is the transition before dense block ``s`` (none
    for the first) and the block: ``stage{s}_transition_{bn,act,conv,pool}``,
    ``stage{s}_layer{l}_{1,2}_{bn,act,conv}``, ``stage{s}_layer{l}_concat``; the Grad-CAM target
    is the final ``stage4_act``.

    Args:
        blocks: the dense layers of each of the four blocks; ``(6, 12, 32, 32)`` gives the
            paper's DenseNet-169, ``(6, 12, 48, 32)`` DenseNet-201, fewer a shallow model.
        growth_rate: channels each dense layer adds (the paper's k).
        stem: ``"imagenet"`` (7x7/2 convolution and 3x3/2 max-pool) or ``"cifar"`` (one 3x3/1
            convolution, no pooling: output stride 8, for 28-32 px images).
        norm: ``"batch"`` or another kind of `kcnn.layers.normalization` (``None``: biases).
        norm_groups: the groups of ``norm="group"``.
        bn_epsilon: the normalizations' epsilon: 1e-5 as torchvision, 1.001e-5 as Keras
            Applications (`kcnn.models.from_keras_application` sets it).
        (The other arguments are those of keras.applications.)

    Raises:
        ValueError: naming the argument, for any bad one, before a layer is built.
    """
    valid = (
        not isinstance(blocks, (str, bytes))
        and hasattr(blocks, "__len__")
        and len(blocks) == len(BLOCKS)
        and all(checks.is_integer(n) and n >= 1 for n in blocks)
    )
    if not valid:
        raise ValueError(f"blocks must be {len(BLOCKS)} positive integers, got {blocks!r}")
    growth_rate = checks.positive_int("growth_rate", growth_rate)
    checks.choice("stem", stem, STEMS)
    norm, norm_groups = check_norm(norm, norm_groups)
    options = UnitOptions(
        norm=norm, norm_groups=norm_groups, epsilon=checks.positive_number("bn_epsilon", bn_epsilon)
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
    if stem == "imagenet":
        x = layers.ZeroPadding2D(3, name="stem_pad")(inputs)
        x = conv_unit(x, 2 * growth_rate, 7, options, prefix="stem", strides=2, padding="valid")
        x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    else:
        x = conv_unit(inputs, 2 * growth_rate, 3, options, prefix="stem")
    for stage, depth in enumerate(blocks, start=1):
        if stage > 1:
            x = _transition(x, options, f"stage{stage}_transition")
        for layer in range(1, depth + 1):
            x = _dense_layer(x, growth_rate, options, f"stage{stage}_layer{layer}")
    last = f"stage{len(BLOCKS)}"
    norm_layer = normalization(
        norm,
        x.shape[-1],
        norm_groups=norm_groups,
        epsilon=options.epsilon,
        name=f"{last}_{short_name(norm)}",
    )
    if norm_layer is not None:
        x = norm_layer(x)
    x = layers.Activation("relu", name=f"{last}_act")(x)
    if not include_top:
        return finish(inputs, global_pool(x, pooling), name, weights)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = classifier(x, classes, classifier_activation)
    return finish(inputs, x, name, weights)
