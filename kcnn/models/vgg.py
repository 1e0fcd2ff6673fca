"""VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015) and the course's small VGG of Listing 3."""

from __future__ import annotations

import dataclasses

from keras import layers

from kcnn import checks
from kcnn.layers.convolution import check_conv
from kcnn.layers.dropout import check_head_dropout
from kcnn.layers.normalization import NORM_GROUPS, check_norm, norm_from_alias
from kcnn.models.common import (
    Head,
    check_arguments,
    check_stage_dropout,
    classifier,
    close_stage,
    conv_norm_relu,
    dense,
    finish,
    global_pool,
    model_input,
)
from kcnn.models.units import variant_signature
from kcnn.registry import register_model

PAPER = "Simonyan & Zisserman, Very Deep Convolutional Networks, ICLR 2015"
COURSE = "Course chapter 07, Listing 3 (after Simonyan & Zisserman, ICLR 2015)"

# Convolutions per stage of the paper's configurations A, B, D and E.
DEPTHS = {
    "vgg11": (1, 1, 2, 2, 2),
    "vgg13": (2, 2, 2, 2, 2),
    "vgg16": (2, 2, 3, 3, 3),
    "vgg19": (2, 2, 4, 4, 4),
}
WIDTHS = (64, 128, 256, 512, 512)
BN_MOMENTUM = 0.99  # Keras's default, which kcnn's VGGs have always been trained with


@dataclasses.dataclass(frozen=True)
class VGGOptions:
    """The options every VGG builder takes, checked once when made.

    Attributes:
        norm: the normalization after every convolution: ``None`` (the paper's VGG),
            ``"batch"`` (torchvision's ``_bn`` models), ``"group"``, ``"layer"`` or
            ``"instance"`` (see `kcnn.layers.normalization`). The convolutions keep their
            biases with every norm, as torchvision's do.
        norm_groups: the groups of ``norm="group"`` (reduced to a divisor of the channels).
        conv: ``"standard"`` or ``"separable"`` 3x3 convolutions (see `kcnn.layers.convolution`).
        spatial_dropout: rate of ``SpatialDropout2D`` (whole channels) at the end of every
            convolution stage; 0 for none.
        element_dropout: rate of ``Dropout`` (single activations) at the end of every
            convolution stage, after its pool; 0 for none. At most one of the two stage
            dropouts is above 0.
        fc_units: width of the hidden FC layers.
        dropout: dropout rate before each FC layer after the first, and before the classifier.
        dropout_kind: ``"standard"`` (``Dropout`` of the FC inputs) or ``"targeted"`` (each FC
            layer a `kcnn.layers.TargetedDropout` that drops its own weakest weights).
        targeted_fraction: with ``"targeted"``, the share of each unit's weights targeted, in
            [0, 1]: the share the trained FC layers can lose to pruning (Gomez et al. 2019); None
            for `kcnn.layers.dropout.TARGETED_FRACTION` (0.5). Only ``"targeted"`` takes it.
    """

    norm: str | None = None
    norm_groups: int = NORM_GROUPS
    conv: str = "standard"
    spatial_dropout: float = 0.0
    element_dropout: float = 0.0
    fc_units: int = 4096
    dropout: float = 0.5
    dropout_kind: str = "standard"
    targeted_fraction: float | None = None

    def __post_init__(self):
        # A frozen dataclass sets its checked (and normalised: Python numbers) values this way.
        norm, norm_groups = check_norm(self.norm, self.norm_groups)
        spatial_dropout, element_dropout = check_stage_dropout(
            self.spatial_dropout, self.element_dropout
        )
        dropout, dropout_kind, targeted_fraction = check_head_dropout(
            self.dropout, self.dropout_kind, self.targeted_fraction
        )
        for field, value in dict(
            norm=norm,
            norm_groups=norm_groups,
            conv=check_conv(self.conv)[0],
            spatial_dropout=spatial_dropout,
            element_dropout=element_dropout,
            fc_units=checks.positive_int("fc_units", self.fc_units),
            dropout=dropout,
            dropout_kind=dropout_kind,
            targeted_fraction=targeted_fraction,
        ).items():
            object.__setattr__(self, field, value)


def _vgg_features(inputs, depths, widths, options: VGGOptions):
    """Stages of 3x3 convolutions (ReLU, or a norm then ReLU), each closed by a 2x2 max-pool
    and its optional dropout (`kcnn.models.common.close_stage`)."""
    x = inputs
    for stage, (depth, width) in enumerate(zip(depths, widths), start=1):
        for i in range(1, depth + 1):
            x = conv_norm_relu(
                x,
                width,
                3,
                prefix=f"stage{stage}",
                index=str(i),
                conv=options.conv,
                norm=options.norm,
                norm_groups=options.norm_groups,
                use_bias=True,
                momentum=BN_MOMENTUM,
            )
        x = close_stage(
            x,
            stage,
            spatial_dropout=options.spatial_dropout,
            element_dropout=options.element_dropout,
        )
    return x


def _vgg(
    depths,
    widths,
    fc_layers,
    options: VGGOptions,
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
        min_size=2 ** len(depths),
        head=Head(flatten=True),
    )
    inputs = model_input(input_tensor, shape)
    x = _vgg_features(inputs, depths, widths, options)
    if not include_top:
        return finish(inputs, global_pool(x, pooling), name, weights)
    x = layers.Flatten(name="flatten")(x)
    for i in range(1, fc_layers + 1):
        x = dense(
            x,
            options.fc_units,
            name=f"fc{i}",
            argument="fc_units",
            activation="relu",
            dropout=options.dropout if i > 1 else 0.0,
            dropout_kind=options.dropout_kind,
            targeted_fraction=options.targeted_fraction,
            dropout_name=f"fc{i - 1}_dropout",
        )
    x = classifier(
        x,
        classes,
        classifier_activation,
        dropout=options.dropout,
        dropout_kind=options.dropout_kind,
        targeted_fraction=options.targeted_fraction,
    )
    return finish(inputs, x, name, weights)


_OPTIONS_DOC = """
    Args:
        norm: the normalization after every convolution: ``None`` (default), ``"batch"``,
            ``"group"``, ``"layer"`` or ``"instance"`` (see `VGGOptions`).
        batch_norm: the older spelling: ``True`` is ``norm="batch"``, ``False`` is ``None``.
        norm_groups: the groups of ``norm="group"``.
        conv: ``"standard"`` or ``"separable"`` 3x3 convolutions.
        spatial_dropout: rate of ``SpatialDropout2D`` at the end of every convolution stage.
        element_dropout: rate of ``Dropout`` (element-wise) at the end of every convolution
            stage; not with ``spatial_dropout``.
        fc_units: width of the hidden FC layers ({fc_units} in {source}).
        dropout: dropout rate of the FC layers' inputs.
        dropout_kind: ``"standard"`` or ``"targeted"`` (see `VGGOptions`).
        targeted_fraction: the share of each unit's weights ``"targeted"`` targets (None:
            `kcnn.layers.dropout.TARGETED_FRACTION`, 0.5; see `VGGOptions`).
        (The other arguments are those of keras.applications.)
"""


def vgg(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="vgg",
    depths=DEPTHS["vgg16"],
    norm=None,
    batch_norm=None,
    norm_groups=NORM_GROUPS,
    conv="standard",
    spatial_dropout=0.0,
    element_dropout=0.0,
    fc_units=4096,
    dropout=0.5,
    dropout_kind="standard",
    targeted_fraction=None,
):
    """The VGG of the registered variants (Simonyan & Zisserman, ICLR 2015): five stages of
    3x3 convolutions of 64-128-256-512-512 filters, ``depths`` (five positive integers)
    convolutions per stage, each stage closed by a 2x2 max-pool, then FC
    ``fc_units``-``fc_units``-classes with ReLU and dropout. `vgg11`, `vgg13`, `vgg16` and
    `vgg19` are its configurations A, B, D and E; it is not registered itself.
    """
    if (
        isinstance(depths, (str, bytes))
        or not hasattr(depths, "__len__")
        or (len(depths) != len(WIDTHS))
        or any(not checks.is_integer(d) or d < 1 for d in depths)
    ):
        raise ValueError(
            f"depths must be {len(WIDTHS)} positive integers (convolutions per stage), "
            f"got {depths!r}"
        )
    options = VGGOptions(
        norm=norm_from_alias(norm, batch_norm, default=None),
        norm_groups=norm_groups,
        conv=conv,
        spatial_dropout=spatial_dropout,
        element_dropout=element_dropout,
        fc_units=fc_units,
        dropout=dropout,
        dropout_kind=dropout_kind,
        targeted_fraction=targeted_fraction,
    )
    return _vgg(
        tuple(depths),
        WIDTHS,
        2,
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


_PAPER_DOC = _OPTIONS_DOC.format(fc_units=4096, source="the paper; 512 suits CIFAR")
vgg.__doc__ += _PAPER_DOC
_VARIANT_DOC = (
    """
    Parameter counts with 1000 classes at 224x224 are torchvision's (its ``vggNN`` and
    ``vggNN_bn``). ``include_top=False`` gives the last stage's pooled feature map.
"""
    + _PAPER_DOC
)


@register_model(
    family="vgg",
    paper=PAPER,
    input_shape=(224, 224, 3),
    min_input_size=32,
    gradcam_layer="stage5_conv2",
)
def vgg11(**kwargs):
    """VGG-11, configuration A of Simonyan & Zisserman (ICLR 2015): 1-1-2-2-2 convolutions per
    stage (`vgg`).

    132,863,336 parameters with 1000 classes, as torchvision's ``vgg11``.
    """
    return vgg(depths=DEPTHS["vgg11"], **{"name": "vgg11", **kwargs})


@register_model(
    family="vgg",
    paper=PAPER,
    input_shape=(224, 224, 3),
    min_input_size=32,
    gradcam_layer="stage5_conv2",
)
def vgg13(**kwargs):
    """VGG-13, configuration B of Simonyan & Zisserman (ICLR 2015): 2-2-2-2-2 convolutions per
    stage (`vgg`).

    133,047,848 parameters with 1000 classes, as torchvision's ``vgg13``.
    """
    return vgg(depths=DEPTHS["vgg13"], **{"name": "vgg13", **kwargs})


@register_model(
    family="vgg",
    paper=PAPER,
    input_shape=(224, 224, 3),
    min_input_size=32,
    gradcam_layer="stage5_conv3",
)
def vgg16(**kwargs):
    """VGG-16, configuration D of Simonyan & Zisserman (ICLR 2015): 2-2-3-3-3 convolutions per
    stage (`vgg`).

    138,357,544 parameters with 1000 classes, as torchvision's ``vgg16``.
    """
    return vgg(depths=DEPTHS["vgg16"], **{"name": "vgg16", **kwargs})


@register_model(
    family="vgg",
    paper=PAPER,
    input_shape=(224, 224, 3),
    min_input_size=32,
    gradcam_layer="stage5_conv4",
)
def vgg19(**kwargs):
    """VGG-19, configuration E of Simonyan & Zisserman (ICLR 2015): 2-2-4-4-4 convolutions per
    stage (`vgg`).

    143,667,240 parameters with 1000 classes, as torchvision's ``vgg19``.
    """
    return vgg(depths=DEPTHS["vgg19"], **{"name": "vgg19", **kwargs})


for _variant in (vgg11, vgg13, vgg16, vgg19):
    _variant.__doc__ += _VARIANT_DOC
    _variant.__signature__ = variant_signature(vgg, {"name": _variant.__name__}, ("depths",))


@register_model(
    family="vgg",
    paper=COURSE,
    input_shape=(32, 32, 3),
    min_input_size=8,
    gradcam_layer="stage3_conv3",
)
def tiny_vgg(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="tiny_vgg",
    norm=None,
    batch_norm=None,
    norm_groups=NORM_GROUPS,
    conv="standard",
    spatial_dropout=0.0,
    element_dropout=0.0,
    fc_units=512,
    dropout=0.5,
    dropout_kind="standard",
    targeted_fraction=None,
):
    """The course's VGG-style CNN (Listing 3) for 32x32x3: stages of 2x64, 2x128 and 3x256 3x3
    convolutions, each closed by a 2x2 max-pool (4x4x256), then FC 512, dropout 0.5, FC classes.

    3,838,282 parameters with 10 classes.
    """
    options = VGGOptions(
        norm=norm_from_alias(norm, batch_norm, default=None),
        norm_groups=norm_groups,
        conv=conv,
        spatial_dropout=spatial_dropout,
        element_dropout=element_dropout,
        fc_units=fc_units,
        dropout=dropout,
        dropout_kind=dropout_kind,
        targeted_fraction=targeted_fraction,
    )
    return _vgg(
        (2, 2, 3),
        (64, 128, 256),
        1,
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


tiny_vgg.__doc__ += _OPTIONS_DOC.format(fc_units=512, source="the course")
