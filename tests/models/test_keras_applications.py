"""`kcnn.models.from_keras_application`: a Keras Applications model with random weights and the
kcnn model converted from it compute the same outputs (to 1e-5 of the largest output) on small
inputs; the Keras conventions (asymmetric stride-2 padding, batch-norm epsilons, EfficientNet's
preprocessing) are the kcnn builders' options the converter sets. Keras Applications has no thin
variants, so the full-width models are built (ten to thirty seconds each on two busy cores:
marked slow).
"""

import keras
import numpy as np
import pytest

import kcnn
from kcnn.models import from_keras_application

# The weights are mapped in NumPy and assigned through Keras, the same on every backend. These
# tests run on TensorFlow only: on JAX, building the models is 10-40 times slower here (a thin
# ResNet-18 took 40 s on two busy cores), which would add minutes to make test's JAX pass; the
# fast tests of both files passed on JAX when run by hand (KERAS_BACKEND=jax).
pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="weights loading checked on TensorFlow"
)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def randomize_batch_norms(model, seed=0):
    """Non-trivial scales, offsets and running statistics, so that a mix-up of the norms, or an
    epsilon of the wrong size, shows in the outputs."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            if layer.scale:
                layer.gamma.assign(rng.uniform(0.5, 1.5, layer.gamma.shape))
            layer.beta.assign(rng.normal(0, 0.2, layer.beta.shape))
            layer.moving_mean.assign(rng.normal(0, 0.2, layer.moving_mean.shape))
            layer.moving_variance.assign(rng.uniform(1e-3, 2.0, layer.moving_variance.shape))


def assert_same_outputs(application, size, pixels=1.0, **kwargs):
    reference = application(weights=None, input_shape=(size, size, 3), **kwargs)
    randomize_batch_norms(reference)
    model = from_keras_application(reference)
    images = np.random.default_rng(1).uniform(0, pixels, (2, size, size, 3)).astype("float32")
    expected = numpy(reference(images, training=False))
    # float32 round-off grows with the largest activations, not with each output's own size: an
    # output a hundred times smaller than its neighbours (random weights on raw pixels reach 4e6)
    # carries their absolute error, which differs between CPUs' oneDNN kernels. So the absolute
    # tolerance scales with the largest output; a mixed-up norm or a wrong epsilon still shifts
    # outputs by a sizeable fraction of that scale.
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(
        numpy(model(images, training=False)), expected, rtol=1e-5, atol=1e-5 * scale
    )
    assert np.abs(expected).max() > 100 * 1e-5  # large enough for the tolerance to tell
    return model


@pytest.mark.slow
def test_mobilenet_v2_computes_the_same_logits_with_keras_conventions():
    # 32 px: every stride-2 convolution sees an even size, where the paddings differ.
    model = assert_same_outputs(
        keras.applications.MobileNetV2, 32, alpha=0.35, classes=5, classifier_activation=None
    )
    assert model.get_layer("stem_bn").epsilon == pytest.approx(1e-3)
    assert model.get_layer("stage2_block1_dw_pad").padding == ((0, 1), (0, 1))
    assert model.get_layer("stage5_top_conv").filters == 1280
    assert model.output_shape == (None, 5)


@pytest.mark.slow
def test_efficientnet_b0_computes_the_same_probabilities_from_raw_pixels():
    model = assert_same_outputs(
        keras.applications.EfficientNetB0, 32, pixels=255.0, classes=4, classifier_activation=None
    )
    assert model.get_layer("rescaling").scale == pytest.approx(1 / 255)
    assert model.get_layer("stage2_block1_se").reduce.units == 4  # 16 inputs // 4


@pytest.mark.slow
def test_densenet121_without_top_gives_the_same_pooled_features():
    model = assert_same_outputs(
        keras.applications.DenseNet121, 32, include_top=False, pooling="max"
    )
    assert model.get_layer("stem_bn").epsilon == pytest.approx(1.001e-5)
    assert model.output_shape == (None, 1024)


@pytest.mark.slow
def test_inception_v3_computes_the_same_probabilities_at_75_px():
    model = assert_same_outputs(keras.applications.InceptionV3, 75, classes=3)
    assert not model.get_layer("stem1_bn").scale


@pytest.mark.slow
def test_vgg16_computes_the_same_probabilities():
    model = assert_same_outputs(keras.applications.VGG16, 32, classes=3)
    assert model.name == "vgg16" and model.get_layer("fc2").units == 4096


@pytest.mark.slow
def test_vgg19_without_top_gives_the_same_pooled_features():
    # Nineteen ReLU layers shrink random features to about 1e-4 per unit pixel: raw pixels.
    model = assert_same_outputs(
        keras.applications.VGG19, 32, pixels=255.0, include_top=False, pooling="avg"
    )
    assert model.name == "vgg19" and model.output_shape == (None, 512)


def test_efficientnet_preprocessing_is_imagenet_standardization_by_default():
    model = kcnn.create_model(
        "efficientnet_b0",
        width=0.25,
        depth=0.2,
        input_shape=(32, 32, 3),
        include_preprocessing=True,
    )
    standardize = keras.Model(model.input, model.get_layer("normalization").output)
    pixels = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    expected = (pixels / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(numpy(standardize(pixels)), expected, rtol=1e-5, atol=1e-5)


def test_efficientnet_preprocessing_needs_rgb():
    with pytest.raises(ValueError, match="include_preprocessing"):
        kcnn.create_model(
            "efficientnet_b0", width=0.25, input_shape=(32, 32, 1), include_preprocessing=True
        )


@pytest.mark.parametrize(
    ("name", "kwargs", "argument"),
    [
        ("mobilenet_v2", {"bn_epsilon": 0}, "bn_epsilon"),
        ("efficientnet_b0", {"bn_epsilon": "small"}, "bn_epsilon"),
        ("efficientnet_b0", {"include_preprocessing": 1}, "include_preprocessing"),
        ("densenet121", {"bn_epsilon": -1e-5}, "bn_epsilon"),
    ],
)
def test_bad_convention_options_are_refused_by_name(name, kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        kcnn.create_model(name, **kwargs)


def test_a_model_of_another_topology_is_refused():
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, name="conv1")(inputs))
    with pytest.raises(ValueError, match="ResNets are v1"):
        from_keras_application(model)


def test_imagenet_weights_from_keras_applications_take_only_its_arguments():
    with pytest.raises(ValueError, match="no option alpha, norm"):
        kcnn.create_model("mobilenet_v2", weights="imagenet", alpha=0.5, norm="group")
