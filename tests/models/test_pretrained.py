"""`kcnn.models.pretrained.input_preprocessing`: the layer that turns raw pixels into what a
model's weights expect, for each source of weights."""

import keras
import numpy as np
import pytest

from kcnn.layers import ApplicationPreprocessing
from kcnn.models.pretrained import IMAGENET_MEAN, IMAGENET_STD, input_preprocessing

PIXELS = np.array([[[[0.0, 127.5, 255.0], [255.0, 0.0, 51.0]]]], dtype="float32")


def apply(layer):
    return keras.ops.convert_to_numpy(layer(PIXELS))


@pytest.mark.parametrize(
    ("name", "weights"),
    [("resnet18", "imagenet"), ("mobilenet_v2", "resnet.safetensors"), ("vgg11", "imagenet")],
)
def test_torchvision_weights_get_imagenet_standardization_of_unit_pixels(name, weights):
    expected = (PIXELS / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(apply(input_preprocessing(name, weights)), expected, atol=1e-5)


def test_keras_applications_weights_get_their_models_preprocess_input():
    layer = input_preprocessing("mobilenet_v2", "imagenet")
    assert isinstance(layer, ApplicationPreprocessing) and layer.application == "MobileNetV2"
    np.testing.assert_allclose(apply(layer), PIXELS / 127.5 - 1, atol=1e-6)
    # EfficientNet preprocesses inside the model: raw pixels go in unchanged.
    np.testing.assert_allclose(apply(input_preprocessing("efficientnet_b0", "imagenet")), PIXELS)


@pytest.mark.parametrize("weights", [None, "source.weights.h5"])
def test_other_weights_get_pixels_in_the_unit_range(weights):
    layer = input_preprocessing("resnet18", weights)
    assert layer.name == "preprocess" and layer.dtype_policy.name == "float32"
    np.testing.assert_allclose(apply(layer), PIXELS / 255, atol=1e-7)


def test_a_model_without_imagenet_weights_is_named():
    with pytest.raises(ValueError, match="'tiny_cnn' has no ImageNet weights"):
        input_preprocessing("tiny_cnn", "imagenet")
