"""The course's teaching models: the MLP baseline, Listing 1's CNN, and a CNN of about 10,000
parameters (the course claims such a CNN beats the 100,000-parameter MLP on MNIST)."""

from __future__ import annotations

from keras import layers

from kcnn import checks
from kcnn.models.common import (
    Head, check_arguments, classifier, dense, finish, global_pool, model_input,
)
from kcnn.layers.normalization import BN_EPSILON, BN_MOMENTUM
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
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, default_shape=(28, 28, 1),
        min_size=1, head=Head(flatten=True),
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


def _conv_pool_cnn(inputs, filters, kernel_size=3, batch_norm=False):
    """Stages of ``conv(same) + ReLU + maxpool 2x2``, named ``stage{i}_conv``/``_pool``; with
    ``batch_norm`` the convolution loses its bias and ``stage{i}_bn`` and ``stage{i}_relu``
    follow it (Ioffe & Szegedy, ICML 2015)."""
    x = inputs
    for stage, width in enumerate(filters, start=1):
        if batch_norm:
            x = layers.Conv2D(width, kernel_size, padding="same", use_bias=False,
                              name=f"stage{stage}_conv")(x)
            x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM,
                                          name=f"stage{stage}_bn")(x)
            x = layers.Activation("relu", name=f"stage{stage}_relu")(x)
        else:
            x = layers.Conv2D(width, kernel_size, padding="same", activation="relu",
                              name=f"stage{stage}_conv")(x)
        x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    return x


def _small_cnn(
    filters, fc_units, dropout, *, include_top, weights, input_tensor, input_shape, pooling,
    classes, classifier_activation, name, kernel_size=3, batch_norm=False,
):
    shape = check_arguments(
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, default_shape=(28, 28, 1),
        min_size=2 ** len(filters), head=Head(flatten=True),
    )
    inputs = model_input(input_tensor, shape)
    x = _conv_pool_cnn(inputs, filters, kernel_size, batch_norm)
    if not include_top:
        return finish(inputs, global_pool(x, pooling), name, weights)
    x = layers.Flatten(name="flatten")(x)
    if fc_units:
        x = dense(x, fc_units, name="fc1", argument="fc_units", activation="relu")
    x = classifier(x, classes, classifier_activation, dropout=dropout)
    return finish(inputs, x, name, weights)


@register_model(
    family="simple_cnn", paper=COURSE, input_shape=(28, 28, 1), min_input_size=4,
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
        (32, 64), 128, 0.5, include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name,
    )


@register_model(
    family="simple_cnn", paper=COURSE, input_shape=(28, 28, 1), min_input_size=4,
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
        (8, 16), None, 0.0, include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name,
    )


@register_model(
    family="simple_cnn", paper=COURSE, input_shape=(28, 28, 1), min_input_size=4,
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
    batch_norm=False,
    fc_units=128,
    dropout=0.5,
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
        batch_norm: batch normalization between each convolution and its ReLU.
        fc_units: width of the hidden Dense layer, or ``None`` (or 0) for none.
        dropout: dropout rate before the classifier, in [0, 1).
        (The other arguments are those of keras.applications.)
    """
    if isinstance(filters, (str, bytes)) or not hasattr(filters, "__len__") or not filters or any(
        not checks.is_integer(f) or f < 1 for f in filters
    ):
        raise ValueError(
            f"filters must be a non-empty sequence of positive integers, got {filters!r}"
        )
    kernel_size = checks.positive_int("kernel_size", kernel_size)
    if not isinstance(batch_norm, bool):
        raise ValueError(f"batch_norm must be True or False, got {batch_norm!r}")
    if fc_units is not None:
        fc_units = checks.integer("fc_units", fc_units, low=0)
    dropout = checks.fraction("dropout", dropout)
    return _small_cnn(
        tuple(int(f) for f in filters), fc_units, dropout, include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, kernel_size=kernel_size,
        batch_norm=batch_norm,
    )
