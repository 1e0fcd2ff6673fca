"""Fixtures and checks of the kcnn.viz tests."""

import keras
import numpy as np
import pytest
from PIL import Image

import kcnn


@pytest.fixture
def tiny_model():
    """kcnn's tiny_cnn on 16x16 grey images, 3 classes: stage1_conv, stage2_conv (8x8x16)."""
    return kcnn.create_model("tiny_cnn", input_shape=(16, 16, 1), classes=3)


@pytest.fixture
def images():
    return np.random.default_rng(0).uniform(0, 1, size=(4, 16, 16, 1)).astype("float32")


def outer_model(backbone, classes=3, name="transfer"):
    """A transfer model as users build them: the backbone is one layer of an outer model, with
    a rescaling before it and a new head (a Dense then a softmax) after it."""
    inputs = keras.Input(backbone.inputs[0].shape[1:], name="image")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="rescale")(inputs)
    x = backbone(x, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    x = keras.layers.Dense(classes, name="head_logits")(x)
    outputs = keras.layers.Activation("softmax", name="head_predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def assert_png(path, size):
    """``path`` is a PNG of ``size`` (width, height) pixels that is not one flat colour."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == size
        pixels = np.asarray(image.convert("RGB"), dtype="float32")
    assert pixels.std() > 1.0
