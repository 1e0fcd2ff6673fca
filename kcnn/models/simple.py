"""The course's teaching models: the MLP baseline, Listing 1's CNN, and a CNN of about 10,000
parameters (the course claims such a CNN beats the 100,000-parameter MLP on MNIST)."""

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
from kcnn.registry import register_model

COURSE = "Course chapter 07, section 1.1 and Listing 1 (after LeCun et al., Proc. IEEE 1998)"


@register_model(
    family="mlp", paper=COURSE, input_shape=(28, 28, 1), min_input_size=1, gradcam_layer=None
)
def mlp(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="mlp",
    hidden_units=128,
):
    """The course's multilayer perceptron baseline: flatten, Dense(128, ReLU), Dense(classes).

    784-128-10 on 28x28x1 has 101,770 parameters. With ``include_top=False`` the model outputs
    the hidden layer; ``pooling`` does not apply (there is no feature map) and must be None.

    Args:
        hidden_units: width of the hidden layer.
        (The other arguments are those of keras.applications.)
    """
    shape = check_arguments(
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        default_shape=(28, 28, 1),
        min_size=1,
        head=Head(flatten=True),
    )
    if pooling is not None:
        raise ValueError(f"pooling={pooling!r} does not apply to the MLP, which has no feature map")
    hidden_units = checks.positive_int("hidden_units", hidden_units)
    inputs = model_input(input_tensor, shape)
    x = layers.Flatten(name="flatten")(inputs)
    x = dense(x, hidden_units, name="fc1", argument="hidden_units", activation="relu")
    if include_top:
        x = classifier(x, classes, classifier_activation)
    return finish(inputs, x, name, weights)


@dataclasses.dataclass(frozen=True)
class CNNOptions:
    """The options of the plain CNNs (`configurable_cnn`, and the fixed `simple_cnn` and
    `tiny_cnn`), checked once when made.

    Attributes:
        filters: the number of filters of each stage, e.g. ``(32, 64, 128)``.
        kernel_size: height and width of every convolution kernel ("same" padding).
        norm: ``None``, ``"batch"``, ``"group"``, ``"layer"`` or ``"instance"`` between each
            convolution and its ReLU (see `kcnn.layers.normalization`); the convolution has a
            bias only without one.
        norm_groups: the groups of ``norm="group"`` (reduced to a divisor of the channels).
        conv: ``"standard"`` or ``"separable"`` convolutions (see `kcnn.layers.convolution`).
        dilation: the dilation rate of every convolution (1: none; Yu & Koltun, ICLR 2016).
        spatial_dropout: rate of ``SpatialDropout2D`` (whole channels) at the end of every
            stage; 0 for none.
        element_dropout: rate of ``Dropout`` (single activations) at the end of every stage,
            after its pool; 0 for none. At most one of the two stage dropouts is above 0.
        fc_units: width of the hidden Dense layer, or ``None`` (or 0) for none.
        dropout: dropout rate before the classifier, in [0, 1).
        dropout_kind: ``"standard"`` (``Dropout`` of the classifier's inputs) or
            ``"targeted"`` (the classifier a `kcnn.layers.TargetedDropout`).
        targeted_fraction: with ``"targeted"``, the share of each unit's weights targeted, in
            [0, 1]: the share the trained classifier can lose to pruning (Gomez et al. 2019); None
            for `kcnn.layers.dropout.TARGETED_FRACTION` (0.5). Only ``"targeted"`` takes it.
    """

    filters: tuple = (32, 64)
    kernel_size: int = 3
    norm: str | None = None
    norm_groups: int = NORM_GROUPS
    conv: str = "standard"
    dilation: int = 1
    spatial_dropout: float = 0.0
    element_dropout: float = 0.0
    fc_units: int | None = 128
    dropout: float = 0.5
    dropout_kind: str = "standard"
    targeted_fraction: float | None = None

    def __post_init__(self):
        filters = self.filters
        if (
            isinstance(filters, (str, bytes))
            or not hasattr(filters, "__len__")
            or not filters
            or (any(not checks.is_integer(f) or f < 1 for f in filters))
        ):
            raise ValueError(
                f"filters must be a non-empty sequence of positive integers, got {filters!r}"
            )
        norm, norm_groups = check_norm(self.norm, self.norm_groups)
        conv, dilation, _ = check_conv(self.conv, self.dilation)
        fc_units = self.fc_units
        if fc_units is not None:
            fc_units = checks.integer("fc_units", fc_units, low=0)
        spatial_dropout, element_dropout = check_stage_dropout(
            self.spatial_dropout, self.element_dropout
        )
        dropout, dropout_kind, targeted_fraction = check_head_dropout(
            self.dropout, self.dropout_kind, self.targeted_fraction
        )
        # A frozen dataclass sets its checked (and normalised: Python numbers) values this way.
        for field, value in dict(
            filters=tuple(int(f) for f in filters),
            kernel_size=checks.positive_int("kernel_size", self.kernel_size),
            norm=norm,
            norm_groups=norm_groups,
            conv=conv,
            dilation=dilation,
            spatial_dropout=spatial_dropout,
            element_dropout=element_dropout,
            fc_units=fc_units,
            dropout=dropout,
            dropout_kind=dropout_kind,
            targeted_fraction=targeted_fraction,
        ).items():
            object.__setattr__(self, field, value)


def _conv_pool_cnn(inputs, options: CNNOptions):
    """Stages of ``conv(same) + ReLU + maxpool 2x2``, named ``stage{i}_conv``/``_pool``; with a
    ``norm`` the convolution loses its bias and ``stage{i}_bn`` (``gn``, ``ln``, ``in``) and
    ``stage{i}_relu`` follow it (Ioffe & Szegedy, ICML 2015, for batch norm); with
    ``spatial_dropout``, ``stage{i}_spatial_dropout`` before the pool; with ``element_dropout``,
    ``stage{i}_element_dropout`` after it (see `kcnn.models.common.close_stage`)."""
    x = inputs
    for stage, width in enumerate(options.filters, start=1):
        x = conv_norm_relu(
            x,
            width,
            options.kernel_size,
            prefix=f"stage{stage}",
            conv=options.conv,
            dilation=options.dilation,
            norm=options.norm,
            norm_groups=options.norm_groups,
        )
        x = close_stage(
            x,
            stage,
            spatial_dropout=options.spatial_dropout,
            element_dropout=options.element_dropout,
        )
    return x


def _small_cnn(
    options: CNNOptions,
    *,
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
        default_shape=(28, 28, 1),
        min_size=2 ** len(options.filters),
        head=Head(flatten=True),
    )
    inputs = model_input(input_tensor, shape)
    x = _conv_pool_cnn(inputs, options)
    if not include_top:
        return finish(inputs, global_pool(x, pooling), name, weights)
    x = layers.Flatten(name="flatten")(x)
    if options.fc_units:
        x = dense(x, options.fc_units, name="fc1", argument="fc_units", activation="relu")
    x = classifier(
        x,
        classes,
        classifier_activation,
        dropout=options.dropout,
        dropout_kind=options.dropout_kind,
        targeted_fraction=options.targeted_fraction,
    )
    return finish(inputs, x, name, weights)


@register_model(
    family="simple_cnn",
    paper=COURSE,
    input_shape=(28, 28, 1),
    min_input_size=4,
    gradcam_layer="stage2_conv",
)
def simple_cnn(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="simple_cnn",
):
    """The course's Listing 1: two ``conv3x3 + ReLU + maxpool`` stages (32 and 64 filters),
    Dense(128, ReLU), dropout 0.5 and Dense(classes).

    421,642 parameters on 28x28x1 with 10 classes. ``include_top=False`` gives the 7x7x64 feature
    map (or its global pooling).
    """
    return _small_cnn(
        CNNOptions(filters=(32, 64), fc_units=128, dropout=0.5),
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
    )


@register_model(
    family="simple_cnn",
    paper=COURSE,
    input_shape=(28, 28, 1),
    min_input_size=4,
    gradcam_layer="stage2_conv",
)
def tiny_cnn(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="tiny_cnn",
):
    """The course's "simple CNN (2 conv + pooling), 10K parameters": two ``conv3x3 + ReLU +
    maxpool`` stages of 8 and 16 filters, then Dense(classes) on the flattened 7x7x16 map.

    9,098 parameters on 28x28x1 with 10 classes, eleven times fewer than the MLP.
    """
    return _small_cnn(
        CNNOptions(filters=(8, 16), fc_units=None, dropout=0.0),
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
    )


@register_model(
    family="simple_cnn",
    paper=COURSE,
    input_shape=(28, 28, 1),
    min_input_size=4,
    gradcam_layer="stage2_conv",
)
def configurable_cnn(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="configurable_cnn",
    filters=(32, 64),
    kernel_size=3,
    norm=None,
    batch_norm=None,
    norm_groups=NORM_GROUPS,
    conv="standard",
    dilation=1,
    spatial_dropout=0.0,
    element_dropout=0.0,
    fc_units=128,
    dropout=0.5,
    dropout_kind="standard",
    targeted_fraction=None,
):
    """Listing 1 with its design choices as arguments: one ``conv + ReLU + maxpool 2x2`` stage
    per entry of ``filters``, an optional Dense(``fc_units``, ReLU), dropout and Dense(classes).

    The defaults build exactly `simple_cnn` (421,642 parameters on 28x28x1);
    ``filters=(8, 16), fc_units=None, dropout=0.0`` builds `tiny_cnn`. The hyperparameter
    search of `kcnn.tuning.CNNHyperModel` explores this space. Each stage halves the image, so
    the input must be at least ``2 ** len(filters)`` pixels high and wide.

    Args:
        filters: the number of filters of each stage, e.g. ``(32, 64, 128)`` for three stages.
        kernel_size: height and width of every convolution kernel ("same" padding).
        norm: ``None``, ``"batch"``, ``"group"``, ``"layer"`` or ``"instance"`` normalization
            between each convolution and its ReLU (see `CNNOptions`).
        batch_norm: the older spelling: ``True`` is ``norm="batch"``, ``False`` is ``None``.
        norm_groups: the groups of ``norm="group"``.
        conv: ``"standard"`` or ``"separable"`` convolutions.
        dilation: the dilation rate of every convolution.
        spatial_dropout: rate of ``SpatialDropout2D`` at the end of every stage.
        element_dropout: rate of ``Dropout`` (element-wise) at the end of every stage; not with
            ``spatial_dropout``.
        fc_units: width of the hidden Dense layer, or ``None`` (or 0) for none.
        dropout: dropout rate before the classifier, in [0, 1).
        dropout_kind: ``"standard"`` or ``"targeted"`` (see `CNNOptions`).
        targeted_fraction: the share of each unit's weights ``"targeted"`` targets (None:
            `kcnn.layers.dropout.TARGETED_FRACTION`, 0.5; see `CNNOptions`).
        (The other arguments are those of keras.applications.)
    """
    options = CNNOptions(
        filters=filters,
        kernel_size=kernel_size,
        norm=norm_from_alias(norm, batch_norm, default=None),
        norm_groups=norm_groups,
        conv=conv,
        dilation=dilation,
        spatial_dropout=spatial_dropout,
        element_dropout=element_dropout,
        fc_units=fc_units,
        dropout=dropout,
        dropout_kind=dropout_kind,
        targeted_fraction=targeted_fraction,
    )
    return _small_cnn(
        options,
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
    )
