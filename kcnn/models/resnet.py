"""ResNets (He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016),
version 1.5 as torchvision ships them, with the options the experiments need: CIFAR stem,
shortcuts off (plain networks), pre-activation, SE/CBAM attention, stochastic depth and a width
multiplier. Every block is a `ResidualBlock` or `BottleneckBlock` from `kcnn.layers`."""

from __future__ import annotations

from keras import layers

from kcnn import checks
from kcnn.models.common import check_arguments, classifier, finish, global_pool, model_input
from kcnn.layers.attention import ATTENTION_KINDS
from kcnn.layers.blocks import BottleneckBlock, ResidualBlock
from kcnn.layers.normalization import BN_EPSILON, BN_MOMENTUM
from kcnn.registry import register_model

PAPER = "He, Zhang, Ren & Sun, Deep Residual Learning for Image Recognition, CVPR 2016"
COURSE = "Course chapter 07, Listing 4 (after He et al., CVPR 2016)"
STEMS = ("imagenet", "cifar")
WIDTHS = (64, 128, 256, 512)

# name: (block, blocks per stage)
CONFIGS = {
    "resnet18": (ResidualBlock, (2, 2, 2, 2)),
    "resnet34": (ResidualBlock, (3, 4, 6, 3)),
    "resnet50": (BottleneckBlock, (3, 4, 6, 3)),
    "resnet101": (BottleneckBlock, (3, 4, 23, 3)),
    "resnet152": (BottleneckBlock, (3, 8, 36, 3)),
}


def _scaled(channels, width):
    return max(1, int(round(channels * width)))


def _stem(inputs, stem, channels, preact):
    """ImageNet stem: 7x7/2 convolution, BN, ReLU, 3x3/2 max-pool (padded symmetrically, as in
    PyTorch). CIFAR stem: 3x3/1 convolution, BN, ReLU, no pooling. With ``preact`` the BN and
    ReLU move into the first block, as in He et al. (ECCV 2016)."""
    x = inputs
    if stem == "imagenet":
        x = layers.ZeroPadding2D(3, name="stem_pad")(x)
        x = layers.Conv2D(channels, 7, strides=2, use_bias=False,
                          kernel_initializer="he_normal", name="stem_conv")(x)
    else:
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False,
                          kernel_initializer="he_normal", name="stem_conv")(x)
    if not preact:
        x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name="stem_bn")(x)
        x = layers.Activation("relu", name="stem_relu")(x)
    if stem == "imagenet":
        x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    return x


def _resnet(
    block, depths, widths, *, stem, skip, preact, attention, attention_ratio, drop_path_rate,
    width, default_shape, include_top, weights, input_tensor, input_shape, pooling, classes,
    classifier_activation, name,
):
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
    if attention not in ATTENTION_KINDS:
        raise ValueError(f"attention must be one of {ATTENTION_KINDS}, got {attention!r}")
    drop_path_rate = checks.fraction("drop_path_rate", drop_path_rate)
    if drop_path_rate > 0 and not skip:
        raise ValueError(
            f"drop_path_rate={drop_path_rate} needs skip=True: stochastic depth drops residual "
            "branches, and a plain network has none"
        )
    width = checks.positive_number("width", width)
    stage_widths = [_scaled(w, width) for w in widths]
    if attention in ("se", "cbam") and attention_ratio > min(stage_widths) * block.expansion:
        raise ValueError(
            f"attention_ratio={attention_ratio} is larger than the {min(stage_widths)} channels of "
            f"the narrowest stage (width={width}); lower attention_ratio"
        )
    downsampling = (4 if stem == "imagenet" else 1) * 2 ** (len(depths) - 1)
    shape = check_arguments(
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, default_shape=default_shape,
        min_size=downsampling,
    )
    inputs = model_input(input_tensor, shape)
    x = _stem(inputs, stem, _scaled(64, width), preact)
    total_blocks = sum(depths)
    index = 0
    for stage, (depth, channels) in enumerate(zip(depths, stage_widths), start=1):
        for b in range(1, depth + 1):
            index += 1
            x = block(
                channels,
                stride=2 if (b == 1 and stage > 1) else 1,
                skip=skip,
                preact=preact,
                attention=attention,
                attention_ratio=attention_ratio,
                drop_path_rate=drop_path_rate * index / total_blocks,
                name=f"stage{stage}_block{b}",
            )(x)
    if preact:
        last = len(depths)
        x = layers.BatchNormalization(
            epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"stage{last}_post_bn"
        )(x)
        x = layers.Activation("relu", name=f"stage{last}_post_relu")(x)
    if not include_top:
        return finish(inputs, global_pool(x, pooling), name, weights)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = classifier(x, classes, classifier_activation)
    return finish(inputs, x, name, weights)


_OPTIONS_DOC = """
    Args:
        stem: ``"imagenet"`` (7x7/2 convolution and 3x3/2 max-pool) or ``"cifar"`` (one 3x3/1
            convolution, no pooling, for 32x32 inputs).
        skip: ``False`` removes every shortcut: the "plain" network of the paper's degradation
            experiment, with the same layers and parameters.
        preact: pre-activation blocks (He et al., "Identity Mappings in Deep Residual Networks",
            ECCV 2016), with a final BN and ReLU after the last stage.
        attention: ``None``, ``"se"`` (squeeze-and-excitation), ``"spatial"`` (CBAM's spatial
            attention alone) or ``"cbam"`` in every block.
        attention_ratio: reduction ratio of the channel attention (SE, CBAM).
        drop_path_rate: stochastic depth of the last block; block ``i`` of ``L`` drops its
            residual branch with probability ``drop_path_rate * i / L`` (Huang et al., 2016).
        width: multiplier of every channel count (0.25 gives a ResNet four times narrower).
        (The other arguments are those of keras.applications.)
"""


def _register_resnet(key, params):
    block, depths = CONFIGS[key]

    @register_model(
        key, family="resnet", paper=PAPER, input_shape=(224, 224, 3), min_input_size=32,
        gradcam_layer=f"stage4_block{depths[-1]}",
    )
    def builder(
        include_top=True,
        weights=None,
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classes=1000,
        classifier_activation="softmax",
        name=key,
        stem="imagenet",
        skip=True,
        preact=False,
        attention=None,
        attention_ratio=16,
        drop_path_rate=0.0,
        width=1.0,
    ):
        return _resnet(
            block, depths, WIDTHS, stem=stem, skip=skip, preact=preact, attention=attention,
            attention_ratio=attention_ratio, drop_path_rate=drop_path_rate, width=width,
            default_shape=(224, 224, 3), include_top=include_top, weights=weights,
            input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
            classifier_activation=classifier_activation, name=name,
        )

    builder.__name__ = builder.__qualname__ = key
    builder.__doc__ = (
        f"""ResNet-{key[6:]} v1.5: {'-'.join(map(str, depths))} {block.__name__}s in four stages of
    64-128-256-512 {'bottleneck ' if block is BottleneckBlock else ''}channels, stride 2 at the
    start of stages 2-4 (on the 3x3 convolution), no convolution bias before BN, BN epsilon 1e-5.

    {params} parameters with 1000 classes, as torchvision's ``{key}``.
    """
        + _OPTIONS_DOC
    )
    return builder


BLOCKS = {"basic": ResidualBlock, "bottleneck": BottleneckBlock}


@register_model(
    family="resnet", paper=PAPER, input_shape=(224, 224, 3), min_input_size=32,
    gradcam_layer="stage4_block2",
)
def resnet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="resnet",
    depths=(2, 2, 2, 2),
    block="basic",
    stem="imagenet",
    skip=True,
    preact=False,
    attention=None,
    attention_ratio=16,
    drop_path_rate=0.0,
    width=1.0,
):
    """A ResNet with any number of blocks per stage: the generic form of the registered ResNets.

    ``depths`` gives the number of blocks of each stage (1 to 4 stages); stage ``i`` (from 1)
    has ``64 * 2 ** (i - 1)`` channels (times ``width``) and stride 2 at its start from stage 2
    on. ``block`` is ``"basic"`` (`ResidualBlock`, two 3x3 convolutions) or ``"bottleneck"``
    (`BottleneckBlock`, 1x1-3x3-1x1 with 4x expansion). ``depths=(2, 2, 2, 2)`` builds the layers
    of `resnet18`, ``depths=(3, 4, 6, 3), block="bottleneck"`` those of `resnet50`, and
    ``depths=(2, 2, 2), stem="cifar"`` those of `tiny_resnet`. `kcnn.tuning.ResNetHyperModel`
    searches ``depths`` with it. The registry's Grad-CAM layer is that of the default depths
    (`kcnn.models.gradcam_layer` finds the last block of any model by name).
    """
    if block not in BLOCKS:
        raise ValueError(f"block must be one of {tuple(BLOCKS)}, got {block!r}")
    if isinstance(depths, (str, bytes)) or not hasattr(depths, "__len__") or not (
        1 <= len(depths) <= len(WIDTHS)
    ) or any(not checks.is_integer(d) or d < 1 for d in depths):
        raise ValueError(
            f"depths must be 1 to {len(WIDTHS)} positive integers (blocks per stage), "
            f"got {depths!r}"
        )
    return _resnet(
        BLOCKS[block], tuple(depths), WIDTHS[: len(depths)], stem=stem, skip=skip, preact=preact,
        attention=attention, attention_ratio=attention_ratio, drop_path_rate=drop_path_rate,
        width=width, default_shape=(224, 224, 3), include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name,
    )


resnet.__doc__ += _OPTIONS_DOC


resnet18 = _register_resnet("resnet18", "11,689,512")
resnet34 = _register_resnet("resnet34", "21,797,672")
resnet50 = _register_resnet("resnet50", "25,557,032")
resnet101 = _register_resnet("resnet101", "44,549,160")
resnet152 = _register_resnet("resnet152", "60,192,808")


@register_model(
    family="resnet", paper=COURSE, input_shape=(32, 32, 3), min_input_size=4,
    gradcam_layer="stage3_block2",
)
def tiny_resnet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="tiny_resnet",
    stem="cifar",
    skip=True,
    preact=False,
    attention=None,
    attention_ratio=16,
    drop_path_rate=0.0,
    width=1.0,
):
    """The course's TinyResNet (Listing 4) for 32x32x3: a 3x3 stem of 64 channels, three stages
    of two `ResidualBlock`s (64, 128/2, 256/2), global average pooling and FC classes.

    2,777,674 parameters with 10 classes. Takes the same options as the other ResNets.
    """
    return _resnet(
        ResidualBlock, (2, 2, 2), (64, 128, 256), stem=stem, skip=skip, preact=preact,
        attention=attention, attention_ratio=attention_ratio, drop_path_rate=drop_path_rate,
        width=width, default_shape=(32, 32, 3), include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name,
    )


tiny_resnet.__doc__ += _OPTIONS_DOC
