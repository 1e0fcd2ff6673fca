"""Inception-v3 (Szegedy, Vanhoucke, Ioffe, Shlens & Wojna, "Rethinking the Inception
Architecture for Computer Vision", CVPR 2016), built from kcnn's units as Keras Applications'
``InceptionV3`` builds it (without the auxiliary classifier)."""

from __future__ import annotations

from keras import layers

from kcnn import checks
from kcnn.layers.normalization import NORM_GROUPS, check_norm
from kcnn.models.common import check_arguments, classifier, finish, global_pool, model_input
from kcnn.models.units import UnitOptions, conv_unit
from kcnn.registry import register_model

PAPER = "Szegedy et al., Rethinking the Inception Architecture for Computer Vision, CVPR 2016"
STEMS = ("imagenet", "cifar")
# The smallest input each stem takes: with the ImageNet stem's unpadded convolutions and the
# two reductions' unpadded 3x3/2 convolutions, 75 px leave a 1x1 map (Keras's minimum too).
MIN_SIZES = {"imagenet": 75, "cifar": 7}
BN_EPSILON = 1e-3  # Keras Applications' and torchvision's

# A branch is a list of operations: ("conv", filters, (height, width), stride, padding),
# ("avg",) a 3x3/1 average pool, ("max",) a 3x3/2 max pool, or ("split", a, b): two
# convolutions on the same input, concatenated (the expanded filter banks of the 8x8 blocks).


def _block_a(pool_filters):
    """The 35x35 block (the paper's figure 5): 1x1, 5x5, double 3x3 and pooled branches."""
    return {
        "b1x1": [("conv", 64, (1, 1), 1, "same")],
        "b5x5": [("conv", 48, (1, 1), 1, "same"), ("conv", 64, (5, 5), 1, "same")],
        "b3x3dbl": [
            ("conv", 64, (1, 1), 1, "same"),
            ("conv", 96, (3, 3), 1, "same"),
            ("conv", 96, (3, 3), 1, "same"),
        ],
        "pool": [("avg",), ("conv", pool_filters, (1, 1), 1, "same")],
    }


REDUCTION_A = {
    "b3x3": [("conv", 384, (3, 3), 2, "valid")],
    "b3x3dbl": [
        ("conv", 64, (1, 1), 1, "same"),
        ("conv", 96, (3, 3), 1, "same"),
        ("conv", 96, (3, 3), 2, "valid"),
    ],
    "pool": [("max",)],
}


def _block_b(width):
    """The 17x17 block (figure 6): 7x7 convolutions factorised into 1x7 and 7x1."""
    return {
        "b1x1": [("conv", 192, (1, 1), 1, "same")],
        "b7x7": [
            ("conv", width, (1, 1), 1, "same"),
            ("conv", width, (1, 7), 1, "same"),
            ("conv", 192, (7, 1), 1, "same"),
        ],
        "b7x7dbl": [
            ("conv", width, (1, 1), 1, "same"),
            ("conv", width, (7, 1), 1, "same"),
            ("conv", width, (1, 7), 1, "same"),
            ("conv", width, (7, 1), 1, "same"),
            ("conv", 192, (1, 7), 1, "same"),
        ],
        "pool": [("avg",), ("conv", 192, (1, 1), 1, "same")],
    }


REDUCTION_B = {
    "b3x3": [("conv", 192, (1, 1), 1, "same"), ("conv", 320, (3, 3), 2, "valid")],
    "b7x7x3": [
        ("conv", 192, (1, 1), 1, "same"),
        ("conv", 192, (1, 7), 1, "same"),
        ("conv", 192, (7, 1), 1, "same"),
        ("conv", 192, (3, 3), 2, "valid"),
    ],
    "pool": [("max",)],
}

_SPLIT = ("split", ("conv", 384, (1, 3), 1, "same"), ("conv", 384, (3, 1), 1, "same"))
BLOCK_C = {  # the 8x8 block (figure 7): expanded filter banks
    "b1x1": [("conv", 320, (1, 1), 1, "same")],
    "b3x3": [("conv", 384, (1, 1), 1, "same"), _SPLIT],
    "b3x3dbl": [("conv", 448, (1, 1), 1, "same"), ("conv", 384, (3, 3), 1, "same"), _SPLIT],
    "pool": [("avg",), ("conv", 192, (1, 1), 1, "same")],
}

# Keras's mixed0-2, mixed3-7 and mixed8-10: one stage per resolution (35, 17 and 8 at 299 px).
STAGES = (
    (_block_a(32), _block_a(64), _block_a(64)),
    (REDUCTION_A, _block_b(128), _block_b(160), _block_b(160), _block_b(192)),
    (REDUCTION_B, BLOCK_C, BLOCK_C),
)


def _scaled(filters, width):
    return max(1, int(round(filters * width)))


def _conv(x, op, options, prefix, width):
    _, filters, kernel, stride, padding = op
    return conv_unit(
        x, _scaled(filters, width), kernel, options, prefix=prefix, strides=stride, padding=padding
    )


def _branch(x, ops, options, prefix, width):
    """The operations of one branch, the ``j``-th named ``{prefix}_{j}``."""
    for j, op in enumerate(ops, start=1):
        if op[0] == "conv":
            x = _conv(x, op, options, f"{prefix}_{j}", width)
        elif op[0] == "avg":
            x = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{prefix}_{j}_avg")(x)
        elif op[0] == "max":
            x = layers.MaxPooling2D(3, strides=2, name=f"{prefix}_{j}_max")(x)
        else:
            x = layers.Concatenate(name=f"{prefix}_{j}_concat")(
                [
                    _conv(x, op[1], options, f"{prefix}_{j}a", width),
                    _conv(x, op[2], options, f"{prefix}_{j}b", width),
                ]
            )
    return x


def _block(x, branches, options, prefix, width):
    outputs = [
        _branch(x, ops, options, f"{prefix}_{branch}", width) for branch, ops in branches.items()
    ]
    return layers.Concatenate(name=f"{prefix}_concat")(outputs)


def _stem(x, stem, options, width):
    """ImageNet: five convolutions (3x3/2 and 3x3 unpadded, 3x3, 1x1, 3x3 unpadded) and two
    3x3/2 max pools, output stride 8. CIFAR: the same convolutions padded and at stride 1, no
    pooling, for 28-32 px images."""
    imagenet = stem == "imagenet"
    valid = "valid" if imagenet else "same"
    for index, (filters, kernel, stride, padding) in enumerate(
        [
            (32, 3, 2 if imagenet else 1, valid),
            (32, 3, 1, valid),
            (64, 3, 1, "same"),
            (80, 1, 1, valid),
            (192, 3, 1, valid),
        ],
        start=1,
    ):
        x = conv_unit(
            x,
            _scaled(filters, width),
            kernel,
            options,
            prefix=f"stem{index}",
            strides=stride,
            padding=padding,
        )
        if imagenet and index in (3, 5):
            x = layers.MaxPooling2D(3, strides=2, name=f"stem{index}_pool")(x)
    return x


@register_model(
    family="inception",
    paper=PAPER,
    input_shape=(299, 299, 3),
    min_input_size=75,
    gradcam_layer="stage3_block3_concat",
)
def inception_v3(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="inception_v3",
    width=1.0,
    stem="imagenet",
    norm="batch",
    norm_groups=NORM_GROUPS,
    norm_scale=False,
):
    """Inception-v3: a stem of five convolutions, three 35x35 blocks (5x5 as two 3x3), a
    reduction, four 17x17 blocks (7x7 as 1x7 and 7x1), a reduction, two 8x8 blocks of expanded
    filter banks, global average pooling and the classifier; every convolution is followed by a
    norm and a ReLU. No auxiliary classifier.

    23,817,352 trainable parameters with 1000 classes, as Keras Applications' ``InceptionV3``
    (whose batch normalizations learn no scale). Stage ``s`` holds the blocks of one
    resolution (Keras's mixed0-2, mixed3-7, mixed8-10): ``stage{s}_block{b}_{branch}_{j}_conv``,
    ``stage{s}_block{b}_concat``; the Grad-CAM target is ``stage3_block3_concat`` (mixed10).

    Args:
        width: multiplier of every channel count (thin models for tests).
        stem: ``"imagenet"`` (output stride 8, at least 75 px) or ``"cifar"`` (the stem padded
            and at stride 1: output stride 4 after the reductions, for 28-32 px images).
        norm: ``"batch"`` or another kind of `kcnn.layers.normalization` (``None``: biases).
        norm_groups: the groups of ``norm="group"``.
        norm_scale: whether the norms learn a scale: ``False`` as Keras Applications,
            ``True`` as torchvision.
        (The other arguments are those of keras.applications.)

    Raises:
        ValueError: naming the argument, for any bad one, before a layer is built.
    """
    width = checks.positive_number("width", width)
    checks.choice("stem", stem, STEMS)
    norm, norm_groups = check_norm(norm, norm_groups)
    if not isinstance(norm_scale, bool):
        raise ValueError(f"norm_scale must be True or False, got {norm_scale!r}")
    options = UnitOptions(norm=norm, norm_groups=norm_groups, epsilon=BN_EPSILON, scale=norm_scale)
    shape = check_arguments(
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        default_shape=(299, 299, 3),
        min_size=MIN_SIZES[stem],
    )
    inputs = model_input(input_tensor, shape)
    x = _stem(inputs, stem, options, width)
    for stage, blocks in enumerate(STAGES, start=1):
        for b, branches in enumerate(blocks, start=1):
            x = _block(x, branches, options, f"stage{stage}_block{b}", width)
    if not include_top:
        return finish(inputs, global_pool(x, pooling), name, weights)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = classifier(x, classes, classifier_activation)
    return finish(inputs, x, name, weights)
