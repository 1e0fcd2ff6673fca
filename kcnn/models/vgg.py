"""VGG (Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015) and the course's small VGG of Listing 3."""

from __future__ import annotations

from keras import layers

from kcnn import checks
from kcnn.models.common import (
    Head, check_arguments, classifier, dense, finish, global_pool, model_input,
)
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


def _vgg_features(inputs, depths, widths, batch_norm):
    """Stages of 3x3 convolutions (ReLU, or BN then ReLU) closed by a 2x2 max-pool."""
    x = inputs
    for stage, (depth, width) in enumerate(zip(depths, widths), start=1):
        for i in range(1, depth + 1):
            if batch_norm:
                x = layers.Conv2D(width, 3, padding="same", name=f"stage{stage}_conv{i}")(x)
                x = layers.BatchNormalization(epsilon=1e-5, name=f"stage{stage}_bn{i}")(x)
                x = layers.Activation("relu", name=f"stage{stage}_relu{i}")(x)
            else:
                x = layers.Conv2D(
                    width, 3, padding="same", activation="relu", name=f"stage{stage}_conv{i}"
                )(x)
        x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    return x


def _vgg(
    depths, widths, fc_layers, *, batch_norm, fc_units, dropout, default_shape, include_top,
    weights, input_tensor, input_shape, pooling, classes, classifier_activation, name,
):
    fc_units = checks.positive_int("fc_units", fc_units)
    dropout = checks.fraction("dropout", dropout)
    shape = check_arguments(
        include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, default_shape=default_shape,
        min_size=2 ** len(depths), head=Head(flatten=True),
    )
    inputs = model_input(input_tensor, shape)
    x = _vgg_features(inputs, depths, widths, bool(batch_norm))
    if not include_top:
        return finish(inputs, global_pool(x, pooling), name, weights)
    x = layers.Flatten(name="flatten")(x)
    for i in range(1, fc_layers + 1):
        x = dense(x, fc_units, name=f"fc{i}", argument="fc_units", activation="relu")
        if i < fc_layers:
            x = layers.Dropout(dropout, name=f"fc{i}_dropout")(x)
    x = classifier(x, classes, classifier_activation, dropout=dropout)
    return finish(inputs, x, name, weights)


def _register_vgg(key, configuration, gradcam_layer):
    depths = DEPTHS[key]

    @register_model(
        key, family="vgg", paper=PAPER, input_shape=(224, 224, 3), min_input_size=32,
        gradcam_layer=gradcam_layer,
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
        batch_norm=False,
        fc_units=4096,
        dropout=0.5,
    ):
        return _vgg(
            depths, WIDTHS, 2, batch_norm=batch_norm, fc_units=fc_units, dropout=dropout,
            default_shape=(224, 224, 3), include_top=include_top, weights=weights,
            input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
            classifier_activation=classifier_activation, name=name,
        )

    builder.__name__ = builder.__qualname__ = key
    builder.__doc__ = f"""VGG-{sum(depths) + 3}, configuration {configuration} of the paper:
    stages of {'-'.join(map(str, depths))} 3x3 convolutions of 64-128-256-512-512 filters, each
    stage closed by a 2x2 max-pool, then FC {{fc_units}}-{{fc_units}}-classes with ReLU and
    dropout.

    Parameter counts with 1000 classes at 224x224 are torchvision's (its ``{key}`` and
    ``{key}_bn``). ``include_top=False`` gives the last stage's pooled feature map.

    Args:
        batch_norm: BatchNormalization after every convolution (torchvision's ``_bn`` models,
            which keep the convolution biases).
        fc_units: width of the two hidden FC layers (4096 in the paper; 512 suits CIFAR).
        dropout: dropout rate after each hidden FC layer.
        (The other arguments are those of keras.applications.)
    """
    return builder


vgg11 = _register_vgg("vgg11", "A", "stage5_conv2")
vgg13 = _register_vgg("vgg13", "B", "stage5_conv2")
vgg16 = _register_vgg("vgg16", "D", "stage5_conv3")
vgg19 = _register_vgg("vgg19", "E", "stage5_conv4")


@register_model(
    family="vgg", paper=COURSE, input_shape=(32, 32, 3), min_input_size=8,
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
    batch_norm=False,
    fc_units=512,
    dropout=0.5,
):
    """The course's VGG-style CNN (Listing 3) for 32x32x3: stages of 2x64, 2x128 and 3x256 3x3
    convolutions, each closed by a 2x2 max-pool (4x4x256), then FC 512, dropout 0.5, FC classes.

    3,838,282 parameters with 10 classes.

    Args:
        batch_norm: BatchNormalization after every convolution.
        fc_units: width of the hidden FC layer.
        dropout: dropout rate after the hidden FC layer.
        (The other arguments are those of keras.applications.)
    """
    return _vgg(
        (2, 2, 3), (64, 128, 256), 1, batch_norm=batch_norm, fc_units=fc_units, dropout=dropout,
        default_shape=(32, 32, 3), include_top=include_top, weights=weights,
        input_tensor=input_tensor, input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name,
    )
