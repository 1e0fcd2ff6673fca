"""LeNet-5 (LeCun, Bottou, Bengio & Haffner, "Gradient-based learning applied to document
recognition", Proc. IEEE 86(11), 1998), as the course draws it."""

from __future__ import annotations

from keras import layers

from kcnn.models.common import Head, check_arguments, classifier, finish, global_pool, model_input
from kcnn.registry import register_model

PAPER = "LeCun et al., Gradient-based learning applied to document recognition, Proc. IEEE 1998"
# 16 is the smallest input S4 can pool: C1 16 -> 12, S2 -> 6, C3 -> 2, S4 -> 1 (at 14, C3's
# 1x1 output is too small for S4's 2x2 window).
MIN_FEATURE_SIZE = 16


@register_model(
    family="lenet",
    paper=PAPER,
    input_shape=(32, 32, 1),
    min_input_size=32,
    gradcam_layer="stage2_c3",
)
def lenet5(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="lenet5",
):
    """LeNet-5 on 32x32x1: C1 conv 6@5x5, S2 avgpool, C3 conv 16@5x5, S4 avgpool, C5 conv
    120@5x5 (1x1x120), F6 Dense(84), output Dense(classes); tanh throughout, as in the paper.

    61,706 parameters with 10 classes. Two simplifications the course makes too: C3 connects to
    all six S2 maps (the paper's sparse connection table is dropped) and the subsampling layers
    have no trainable coefficients. ``include_top=False`` gives the S4 feature map; C5 belongs to
    the head, so ``include_top=True`` needs exactly 32x32 inputs.
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
        default_shape=(32, 32, 1),
        min_size=MIN_FEATURE_SIZE,
        head=Head(flatten=True, exact_size=32),
    )
    inputs = model_input(input_tensor, shape)
    x = layers.Conv2D(6, 5, activation="tanh", name="stage1_c1")(inputs)
    x = layers.AveragePooling2D(2, name="stage1_s2")(x)
    x = layers.Conv2D(16, 5, activation="tanh", name="stage2_c3")(x)
    x = layers.AveragePooling2D(2, name="stage2_s4")(x)
    if not include_top:
        return finish(inputs, global_pool(x, pooling), name, weights)
    x = layers.Conv2D(120, 5, activation="tanh", name="c5")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(84, activation="tanh", name="f6")(x)
    x = classifier(x, classes, classifier_activation)
    return finish(inputs, x, name, weights)
