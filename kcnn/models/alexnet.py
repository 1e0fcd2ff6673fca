"""AlexNet (Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional
Neural Networks", NeurIPS 2012)."""

from __future__ import annotations

from keras import layers

from kcnn import checks
from kcnn.layers.convolution import convolution
from kcnn.models.common import (
    Head,
    check_arguments,
    classifier,
    dense,
    finish,
    global_pool,
    model_input,
)
from kcnn.registry import register_model

PAPER = "Krizhevsky, Sutskever & Hinton, ImageNet Classification with Deep CNNs, NeurIPS 2012"

# (filters of conv1..conv5, padding of conv1, default input size, smallest input size).
# The smallest input leaves a 3x3 map for the last 3x3/2 max-pool: for the course's variant
# 67 -> 15 -> 7 -> 7 -> 3 -> 3 -> 1; for torchvision's (conv1 padded by 2) 63 -> 15 -> ... -> 1.
VARIANTS = {
    "original": ((96, 256, 384, 384, 256), 0, 227, 67),
    "torchvision": ((64, 192, 384, 256, 256), 2, 224, 63),
}


@register_model(
    family="alexnet",
    paper=PAPER,
    input_shape=(227, 227, 3),
    min_input_size=67,
    gradcam_layer="stage3_conv3",
)
def alexnet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="alexnet",
    variant="original",
    groups=1,
    fc_units=4096,
    dropout=0.5,
):
    """AlexNet as the course draws it: 227x227x3, conv 96@11x11/4, maxpool 3/2, conv 256@5x5,
    maxpool, conv 384, 384, 256 @3x3, maxpool (6x6x256), FC 4096-4096-classes with ReLU and
    dropout 0.5 after each hidden FC.

    62,378,344 parameters with 1000 classes; ``groups=2`` splits conv2, conv4 and conv5 into the
    two halves the paper trained on two GPUs (60,965,224 parameters). Local response
    normalisation, which the course leaves out and later work found useless, is not included.

    Args:
        variant: ``"original"`` (above) or ``"torchvision"`` (the single-GPU "One weird trick"
            variant torchvision ships: 224x224, conv 64@11x11/4 padded by 2, 192, 384, 256, 256).
        groups: 1, or 2 for the paper's two-GPU grouping.
        fc_units: width of the two hidden FC layers.
        dropout: dropout rate after each hidden FC layer.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    filters, conv1_padding, default_size, min_size = VARIANTS[variant]
    if groups not in (1, 2):
        raise ValueError(f"groups must be 1 or 2, got {groups!r}")
    fc_units = checks.positive_int("fc_units", fc_units)
    dropout = checks.fraction("dropout", dropout)
    shape = check_arguments(
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        default_shape=(default_size, default_size, 3),
        min_size=min_size,
        head=Head(flatten=True),
    )
    inputs = model_input(input_tensor, shape)
    x = inputs
    if conv1_padding:
        x = layers.ZeroPadding2D(conv1_padding, name="stage1_pad")(x)
    x = layers.Conv2D(filters[0], 11, strides=4, activation="relu", name="stage1_conv")(x)
    x = layers.MaxPooling2D(3, strides=2, name="stage1_pool")(x)
    x = convolution(
        "standard", filters[1], 5, groups=groups, activation="relu", name="stage2_conv"
    )(x)
    x = layers.MaxPooling2D(3, strides=2, name="stage2_pool")(x)
    for i, (width, conv_groups) in enumerate(zip(filters[2:], (1, groups, groups)), start=1):
        x = convolution(
            "standard", width, 3, groups=conv_groups, activation="relu", name=f"stage3_conv{i}"
        )(x)
    x = layers.MaxPooling2D(3, strides=2, name="stage3_pool")(x)
    if not include_top:
        return finish(inputs, global_pool(x, pooling), name, weights)
    x = layers.Flatten(name="flatten")(x)
    x = dense(x, fc_units, name="fc6", argument="fc_units", activation="relu")
    x = layers.Dropout(dropout, name="fc6_dropout")(x)
    x = dense(x, fc_units, name="fc7", argument="fc_units", activation="relu")
    x = classifier(x, classes, classifier_activation, dropout=dropout)
    return finish(inputs, x, name, weights)
