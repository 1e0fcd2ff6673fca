"""ResNets (He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016),
version 1.5 as torchvision ships them, with the options the experiments need: CIFAR stem,
shortcuts off (plain networks), pre-activation, SE/CBAM attention, stochastic depth, a width
multiplier, the normalization, separable convolutions and grouped bottlenecks. Every block is a
`ResidualBlock` or `BottleneckBlock` from `kcnn.layers`."""

from __future__ import annotations

import dataclasses

from keras import layers

from kcnn import checks
from kcnn.layers.attention import check_attention
from kcnn.layers.blocks import BottleneckBlock, ResidualBlock
from kcnn.layers.convolution import check_conv
from kcnn.layers.normalization import NORM_GROUPS, check_norm, normalization, short_name
from kcnn.models.common import check_arguments, classifier, finish, global_pool, model_input
from kcnn.models.units import variant_signature
from kcnn.registry import register_model

PAPER = "He, Zhang, Ren & Sun, Deep Residual Learning for Image Recognition, CVPR 2016"
COURSE = "Course chapter 07, Listing 4 (after He et al., CVPR 2016)"
STEMS = ("imagenet", "cifar")
WIDTHS = (64, 128, 256, 512)


@dataclasses.dataclass(frozen=True)
class ResNetOptions:
    """The options every ResNet builder takes, checked once when made; their meaning is in the
    builders' ``Args``."""

    stem: str = "imagenet"
    skip: bool = True
    preact: bool = False
    attention: str | None = None
    attention_ratio: int = 16
    drop_path_rate: float = 0.0
    width: float = 1.0
    norm: str | None = "batch"
    norm_groups: int = NORM_GROUPS
    conv: str = "standard"
    groups: int = 1
    width_per_group: int = 64

    def __post_init__(self):
        checks.choice("stem", self.stem, STEMS)
        attention, attention_ratio = check_attention(self.attention, self.attention_ratio)
        drop_path_rate = checks.fraction("drop_path_rate", self.drop_path_rate)
        if drop_path_rate > 0 and not self.skip:
            raise ValueError(
                f"drop_path_rate={drop_path_rate} needs skip=True: stochastic depth drops "
                "residual branches, and a plain network has none"
            )
        norm, norm_groups = check_norm(self.norm, self.norm_groups)
        conv, _, groups = check_conv(self.conv, 1, self.groups)
        # A frozen dataclass sets its checked (and normalised: Python numbers) values this way.
        for field, value in dict(
            attention=attention,
            attention_ratio=attention_ratio,
            drop_path_rate=drop_path_rate,
            width=checks.positive_number("width", self.width),
            norm=norm,
            norm_groups=norm_groups,
            conv=conv,
            groups=groups,
            width_per_group=checks.positive_int("width_per_group", self.width_per_group),
        ).items():
            object.__setattr__(self, field, value)

    def block_options(self, block) -> dict:
        """The keyword arguments of ``block`` (`ResidualBlock` or `BottleneckBlock`) these
        options set.

        Raises:
            ValueError: for ``groups`` or ``width_per_group`` other than the default with basic
                blocks, which have no bottleneck to group.
        """
        shared = dict(
            skip=self.skip,
            preact=self.preact,
            attention=self.attention,
            attention_ratio=self.attention_ratio,
            norm=self.norm,
            norm_groups=self.norm_groups,
            conv=self.conv,
        )
        if block is BottleneckBlock:
            return {**shared, "groups": self.groups, "width_per_group": self.width_per_group}
        if (self.groups, self.width_per_group) != (1, 64):
            raise ValueError(
                f"groups={self.groups} and width_per_group={self.width_per_group} apply to "
                "bottleneck blocks only (resnet50 and deeper, or block='bottleneck')"
            )
        return shared


def _scaled(channels, width):
    return max(1, int(round(channels * width)))


def _stem(inputs, stem, channels, options: ResNetOptions):
    """ImageNet stem: 7x7/2 convolution, norm, ReLU, 3x3/2 max-pool (padded symmetrically, as
    in PyTorch). CIFAR stem: 3x3/1 convolution, norm, ReLU, no pooling. With ``preact`` the norm
    and ReLU move into the first block, as in He et al. (ECCV 2016). The convolution has a bias
    only without a norm."""
    x = inputs
    use_bias = options.norm is None
    if stem == "imagenet":
        x = layers.ZeroPadding2D(3, name="stem_pad")(x)
        x = layers.Conv2D(
            channels,
            7,
            strides=2,
            use_bias=use_bias,
            kernel_initializer="he_normal",
            name="stem_conv",
        )(x)
    else:
        x = layers.Conv2D(
            channels,
            3,
            padding="same",
            use_bias=use_bias,
            kernel_initializer="he_normal",
            name="stem_conv",
        )(x)
    if not options.preact:
        x = _norm_relu(x, channels, options, "stem")
    if stem == "imagenet":
        x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    return x


def _norm_relu(x, channels, options: ResNetOptions, prefix):
    """``{prefix}_bn`` (or ``_gn``, ``_ln``, ``_in``; none with ``norm=None``), then
    ``{prefix}_relu``."""
    norm = normalization(
        options.norm,
        channels,
        norm_groups=options.norm_groups,
        name=f"{prefix}_{short_name(options.norm)}",
    )
    if norm is not None:
        x = norm(x)
    return layers.Activation("relu", name=f"{prefix}_relu")(x)


def _resnet(
    block,
    depths,
    widths,
    options: ResNetOptions,
    *,
    default_shape,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    name,
):
    block_options = options.block_options(block)
    stage_widths = [_scaled(w, options.width) for w in widths]
    check_attention(
        options.attention, options.attention_ratio, min_channels=min(stage_widths) * block.expansion
    )
    downsampling = (4 if options.stem == "imagenet" else 1) * 2 ** (len(depths) - 1)
    shape = check_arguments(
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        default_shape=default_shape,
        min_size=downsampling,
    )
    inputs = model_input(input_tensor, shape)
    x = _stem(inputs, options.stem, _scaled(64, options.width), options)
    total_blocks = sum(depths)
    index = 0
    for stage, (depth, channels) in enumerate(zip(depths, stage_widths), start=1):
        for b in range(1, depth + 1):
            index += 1
            x = block(
                channels,
                stride=2 if (b == 1 and stage > 1) else 1,
                drop_path_rate=options.drop_path_rate * index / total_blocks,
                name=f"stage{stage}_block{b}",
                **block_options,
            )(x)
    if options.preact:
        x = _norm_relu(x, x.shape[-1], options, f"stage{len(depths)}_post")
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
            ECCV 2016), with a final norm and ReLU after the last stage.
        attention: ``None``, ``"se"`` (squeeze-and-excitation), ``"spatial"`` (CBAM's spatial
            attention alone) or ``"cbam"`` in every block.
        attention_ratio: reduction ratio of the channel attention (SE, CBAM).
        drop_path_rate: stochastic depth of the last block; block ``i`` of ``L`` drops its
            residual branch with probability ``drop_path_rate * i / L`` (Huang et al., 2016).
        width: multiplier of every channel count (0.25 gives a ResNet four times narrower).
        norm: ``"batch"`` (default), ``"group"``, ``"layer"``, ``"instance"`` or ``None``
            everywhere a ResNet normalizes (see `kcnn.layers.normalization`); with ``None``
            the convolutions have a bias.
        norm_groups: the groups of ``norm="group"`` (reduced to a divisor of the channels).
        conv: ``"standard"`` or ``"separable"`` 3x3 convolutions in the blocks.
        groups: groups of the bottleneck blocks' 3x3 convolution (ResNeXt's cardinality).
        width_per_group: channels per group of the bottleneck blocks, per 64 filters.
        (The other arguments are those of keras.applications.)
"""


BLOCKS = {"basic": ResidualBlock, "bottleneck": BottleneckBlock}


@register_model(
    family="resnet",
    paper=PAPER,
    input_shape=(224, 224, 3),
    min_input_size=32,
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
    norm="batch",
    norm_groups=NORM_GROUPS,
    conv="standard",
    groups=1,
    width_per_group=64,
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
    checks.choice("block", block, tuple(BLOCKS))
    if (
        isinstance(depths, (str, bytes))
        or not hasattr(depths, "__len__")
        or not (1 <= len(depths) <= len(WIDTHS))
        or any(not checks.is_integer(d) or d < 1 for d in depths)
    ):
        raise ValueError(
            f"depths must be 1 to {len(WIDTHS)} positive integers (blocks per stage), "
            f"got {depths!r}"
        )
    options = ResNetOptions(
        stem=stem,
        skip=skip,
        preact=preact,
        attention=attention,
        attention_ratio=attention_ratio,
        drop_path_rate=drop_path_rate,
        width=width,
        norm=norm,
        norm_groups=norm_groups,
        conv=conv,
        groups=groups,
        width_per_group=width_per_group,
    )
    return _resnet(
        BLOCKS[block],
        tuple(depths),
        WIDTHS[: len(depths)],
        options,
        default_shape=(224, 224, 3),
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
    )


resnet.__doc__ += _OPTIONS_DOC

# The variants: `resnet` with the paper's blocks per stage. Each takes the options of `resnet`
# but ``depths`` and ``block`` (see its signature), like torchvision's and Keras's ResNets.
_VARIANT_DOC = (
    """
    v1.5: the stride of stages 2-4 is on the 3x3 convolution, no convolution bias before BN,
    BN epsilon 1e-5, as torchvision's.
"""
    + _OPTIONS_DOC
)
_FIXED = ("depths", "block")


@register_model(
    family="resnet",
    paper=PAPER,
    input_shape=(224, 224, 3),
    min_input_size=32,
    gradcam_layer="stage4_block2",
)
def resnet18(**kwargs):
    """ResNet-18 (He et al., CVPR 2016): 2-2-2-2 `ResidualBlock`s in four stages of
    64-128-256-512 channels.

    11,689,512 parameters with 1000 classes, as torchvision's ``resnet18``.
    """
    return resnet(depths=(2, 2, 2, 2), block="basic", **{"name": "resnet18", **kwargs})


@register_model(
    family="resnet",
    paper=PAPER,
    input_shape=(224, 224, 3),
    min_input_size=32,
    gradcam_layer="stage4_block3",
)
def resnet34(**kwargs):
    """ResNet-34 (He et al., CVPR 2016): 3-4-6-3 `ResidualBlock`s in four stages of
    64-128-256-512 channels.

    21,797,672 parameters with 1000 classes, as torchvision's ``resnet34``.
    """
    return resnet(depths=(3, 4, 6, 3), block="basic", **{"name": "resnet34", **kwargs})


@register_model(
    family="resnet",
    paper=PAPER,
    input_shape=(224, 224, 3),
    min_input_size=32,
    gradcam_layer="stage4_block3",
)
def resnet50(**kwargs):
    """ResNet-50 (He et al., CVPR 2016): 3-4-6-3 `BottleneckBlock`s in four stages of
    64-128-256-512 bottleneck channels (outputs four times wider).

    25,557,032 parameters with 1000 classes, as torchvision's ``resnet50``.
    """
    return resnet(depths=(3, 4, 6, 3), block="bottleneck", **{"name": "resnet50", **kwargs})


@register_model(
    family="resnet",
    paper=PAPER,
    input_shape=(224, 224, 3),
    min_input_size=32,
    gradcam_layer="stage4_block3",
)
def resnet101(**kwargs):
    """ResNet-101 (He et al., CVPR 2016): 3-4-23-3 `BottleneckBlock`s in four stages of
    64-128-256-512 bottleneck channels (outputs four times wider).

    44,549,160 parameters with 1000 classes, as torchvision's ``resnet101``.
    """
    return resnet(depths=(3, 4, 23, 3), block="bottleneck", **{"name": "resnet101", **kwargs})


@register_model(
    family="resnet",
    paper=PAPER,
    input_shape=(224, 224, 3),
    min_input_size=32,
    gradcam_layer="stage4_block3",
)
def resnet152(**kwargs):
    """ResNet-152 (He et al., CVPR 2016): 3-8-36-3 `BottleneckBlock`s in four stages of
    64-128-256-512 bottleneck channels (outputs four times wider).

    60,192,808 parameters with 1000 classes, as torchvision's ``resnet152``.
    """
    return resnet(depths=(3, 8, 36, 3), block="bottleneck", **{"name": "resnet152", **kwargs})


for _variant in (resnet18, resnet34, resnet50, resnet101, resnet152):
    _variant.__doc__ += _VARIANT_DOC
    _variant.__signature__ = variant_signature(resnet, {"name": _variant.__name__}, _FIXED)

RESNEXT_PAPER = (
    "Xie, Girshick, Dollar, Tu & He, Aggregated Residual Transformations for Deep Neural "
    "Networks, CVPR 2017"
)
WIDE_PAPER = "Zagoruyko & Komodakis, Wide Residual Networks, BMVC 2016"
RESNEXT50_32X4D = {"name": "resnext50_32x4d", "groups": 32, "width_per_group": 4}
WIDE_RESNET50_2 = {"name": "wide_resnet50_2", "width_per_group": 128}


@register_model(
    family="resnext",
    paper=RESNEXT_PAPER,
    input_shape=(224, 224, 3),
    min_input_size=32,
    gradcam_layer="stage4_block3",
)
def resnext50_32x4d(**kwargs):
    """ResNeXt-50 32x4d: `resnet50` whose bottleneck 3x3 convolutions have 32 groups of 4
    channels per 64 filters (inner widths 128-256-512-1024).

    25,028,904 parameters with 1000 classes, as torchvision's ``resnext50_32x4d``. The options
    are those of `resnet50`, with ``groups=32, width_per_group=4`` as defaults.
    """
    return resnet50(**{**RESNEXT50_32X4D, **kwargs})


@register_model(
    family="wide_resnet",
    paper=WIDE_PAPER,
    input_shape=(224, 224, 3),
    min_input_size=32,
    gradcam_layer="stage4_block3",
)
def wide_resnet50_2(**kwargs):
    """Wide ResNet-50-2: `resnet50` with bottlenecks twice as wide (inner widths
    128-256-512-1024, outputs unchanged), torchvision's form of Zagoruyko & Komodakis's widening.

    68,883,240 parameters with 1000 classes, as torchvision's ``wide_resnet50_2``. The options
    are those of `resnet50`, with ``width_per_group=128`` as default.
    """
    return resnet50(**{**WIDE_RESNET50_2, **kwargs})


resnext50_32x4d.__signature__ = variant_signature(resnet50, RESNEXT50_32X4D)
wide_resnet50_2.__signature__ = variant_signature(resnet50, WIDE_RESNET50_2)


@register_model(
    family="resnet",
    paper=COURSE,
    input_shape=(32, 32, 3),
    min_input_size=4,
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
    norm="batch",
    norm_groups=NORM_GROUPS,
    conv="standard",
):
    """The course's TinyResNet (Listing 4) for 32x32x3: a 3x3 stem of 64 channels, three stages
    of two `ResidualBlock`s (64, 128/2, 256/2), global average pooling and FC classes.

    2,777,674 parameters with 10 classes. Takes the same options as the other ResNets (but
    ``groups`` and ``width_per_group``: its blocks are basic ones).
    """
    options = ResNetOptions(
        stem=stem,
        skip=skip,
        preact=preact,
        attention=attention,
        attention_ratio=attention_ratio,
        drop_path_rate=drop_path_rate,
        width=width,
        norm=norm,
        norm_groups=norm_groups,
        conv=conv,
    )
    return _resnet(
        ResidualBlock,
        (2, 2, 2),
        (64, 128, 256),
        options,
        default_shape=(32, 32, 3),
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
    )


tiny_resnet.__doc__ += _OPTIONS_DOC
