"""Grad-CAM family and saliency: values against direct tf.GradientTape computations, nested
(transfer), Sequential and Keras Applications models, every registry model, argument errors."""

import gc
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

import kcnn
from kcnn import viz
from kcnn.training import flip_averaged
from kcnn.viz.graph import score_source, tapped_model
from tests.models.helpers import distinct_models, random_batch, small_model
from tests.viz.conftest import outer_model


def reference_grad_cam(features_and_logits, x, classes=None):
    """Grad-CAM written out with tf.GradientTape: ``features_and_logits(x)`` returns the feature
    maps A and the logits; weights are the mean gradient per channel, then ReLU, bilinear
    upsampling to the image and division by the maximum."""
    with tf.GradientTape() as tape:
        features, logits = features_and_logits(tf.constant(x))
        if classes is None:
            classes = tf.argmax(logits, axis=-1)
        score = tf.reduce_sum(tf.gather(logits, classes, batch_dims=1))
    gradients = tape.gradient(score, features)
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))
    cam = tf.image.resize(cam[..., None], x.shape[1:3], method="bilinear")[..., 0].numpy()
    peak = cam.max(axis=(1, 2), keepdims=True)
    assert (peak > 0).any(), "the reference maps are all zero: the comparison would be empty"
    return np.where(peak > 0, cam / np.where(peak > 0, peak, 1), 0)


def test_grad_cam_matches_a_direct_gradient_tape_computation(tiny_model, images):
    """Gradients at the last conv feature maps (stage2_conv), not at the input as the course's
    Listing 9 takes them."""
    graph = keras.Model(
        tiny_model.inputs,
        [tiny_model.get_layer("stage2_conv").output, tiny_model.get_layer("logits").output],
    )
    expected = reference_grad_cam(graph, images)
    np.testing.assert_allclose(viz.grad_cam(tiny_model, images), expected, atol=1e-5)
    classes = np.array([2, 0, 1, 2])
    np.testing.assert_allclose(
        viz.grad_cam(tiny_model, images, class_index=classes),
        reference_grad_cam(graph, images, classes),
        atol=1e-5,
    )


def test_nested_backbone_gives_the_same_maps_as_the_network_written_out(images):
    """The "Graph disconnected" case: the target layer lives inside a nested model."""
    backbone = kcnn.create_model("tiny_cnn", include_top=False, input_shape=(16, 16, 1))
    model = outer_model(backbone)
    target = backbone.get_layer("stage2_conv")
    with pytest.raises(ValueError):
        keras.Model(model.inputs, [target.output, model.output])
    inner = keras.Model(backbone.inputs, [target.output, backbone.output])
    pool, dense = model.get_layer("head_pool"), model.get_layer("head_logits")

    def written_out(x):
        features, output = inner(x * 2.0 - 1.0)
        return features, dense(pool(output))

    assert kcnn.models.gradcam_layer(model) == "stage2_conv"
    np.testing.assert_allclose(
        viz.grad_cam(model, images), reference_grad_cam(written_out, images), atol=1e-5
    )
    twice_nested_input = keras.Input((16, 16, 1))
    twice_nested = keras.Model(twice_nested_input, model(twice_nested_input), name="wrapper")
    np.testing.assert_allclose(
        viz.grad_cam(twice_nested, images), viz.grad_cam(model, images), atol=1e-6
    )


def test_nested_keras_applications_backbone_matches_the_network_written_out():
    backbone = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(64, 64, 3)
    )
    model = outer_model(backbone, classes=4)
    x = np.random.default_rng(1).uniform(0, 1, size=(2, 64, 64, 3)).astype("float32")
    inner = keras.Model(backbone.inputs, [backbone.get_layer("out_relu").output, backbone.output])
    pool, dense = model.get_layer("head_pool"), model.get_layer("head_logits")

    def written_out(images):
        features, output = inner(images * 2.0 - 1.0, training=False)
        return features, dense(pool(output))

    maps = viz.grad_cam(model, x, class_index=[1, 3])
    np.testing.assert_allclose(maps, reference_grad_cam(written_out, x, [1, 3]), atol=1e-4)
    for method in (viz.grad_cam_plus_plus, viz.saliency):
        other = method(model, x)
        assert other.shape == (2, 64, 64) and np.isfinite(other).all()


def test_keras_applications_model_is_scored_from_the_logits_of_its_softmax_dense():
    """Keras Applications put the softmax inside the last Dense: the score is its affine part."""
    model = keras.applications.MobileNetV2(weights=None, input_shape=(64, 64, 3), classes=4)
    dense = model.get_layer("predictions")
    graph = keras.Model(model.inputs, [model.get_layer("out_relu").output, dense.input])

    def logits(x):
        features, pooled = graph(x, training=False)
        return features, pooled @ dense.kernel + dense.bias

    x = np.random.default_rng(2).uniform(-1, 1, size=(2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(
        viz.grad_cam(model, x, class_index=2), reference_grad_cam(logits, x, [2, 2]), atol=1e-4
    )
    pixels = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(pixels)
        score = tf.reduce_sum(logits(pixels)[1][:, 2])
    expected = np.abs(tape.gradient(score, pixels).numpy()).max(axis=-1)
    expected /= expected.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(viz.saliency(model, x, class_index=2), expected, atol=1e-4)


def test_sequential_model_with_a_softmax_dense_head(images):
    model = keras.Sequential(
        [
            keras.Input((16, 16, 1)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv1"),
            keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2"),
            keras.layers.GlobalAveragePooling2D(name="pool"),
            keras.layers.Dense(3, activation="softmax", name="dense"),
        ]
    )
    dense = model.get_layer("dense")
    graph = keras.Model(model.inputs, [model.get_layer("conv2").output, dense.input])

    def logits(x):
        features, pooled = graph(x)
        return features, pooled @ dense.kernel + dense.bias

    np.testing.assert_allclose(
        viz.grad_cam(model, images), reference_grad_cam(logits, images), atol=1e-5
    )
    assert viz.grad_cam(model, images, layer="conv1").shape == (4, 16, 16)


@pytest.mark.parametrize(
    "name", [n for n in distinct_models() if kcnn.model_info(n).gradcam_layer is not None]
)
def test_grad_cam_works_on_every_registry_model(name):
    model = small_model(name)
    x, _ = random_batch(model, batch=2)
    maps = viz.grad_cam(model, x)
    assert maps.shape == x.shape[:3]
    assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1


def test_models_without_feature_maps_or_symbolic_inputs_are_clear_errors():
    model = kcnn.create_model("mlp", input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="no convolutional feature map"):
        viz.grad_cam(model, np.zeros((1, 8, 8, 1)))
    unbuilt = keras.Sequential(
        [keras.layers.Conv2D(2, 3), keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    with pytest.raises(ValueError, match="keras.Input"):
        viz.grad_cam(unbuilt, np.zeros((1, 8, 8, 1)))


@pytest.mark.parametrize("method", list(viz.METHODS))
def test_every_method_is_batched_and_gives_maps_in_unit_range(method, tiny_model, images):
    explain = viz.METHODS[method]
    options = {"samples": 3} if method == "smoothgrad" else {}
    maps = explain(tiny_model, images, **options)
    assert maps.shape == (4, 16, 16) and maps.dtype == np.float32
    assert maps.min() >= 0
    assert np.allclose(maps.max(axis=(1, 2))[maps.max(axis=(1, 2)) > 0], 1)
    one_by_one = np.concatenate(
        [explain(tiny_model, images[i : i + 1], **options) for i in range(len(images))]
    )
    if method == "smoothgrad":  # the noise is drawn per batch, so compare the same draws
        one_by_one = explain(tiny_model, images, batch_size=1, **options)
    np.testing.assert_allclose(maps, one_by_one, atol=1e-5)


def test_default_class_is_the_predicted_one(tiny_model, images):
    predicted = np.argmax(tiny_model.predict(images, verbose=0), axis=-1)
    for explain in (viz.grad_cam, viz.score_cam, viz.saliency):
        np.testing.assert_allclose(
            explain(tiny_model, images),
            explain(tiny_model, images, class_index=predicted),
            atol=1e-6,
        )


def test_bad_class_index_is_a_value_error_naming_it(tiny_model, images):
    for class_index in (3, -1, [0, 1], 1.5, [0, 1, 2, 7]):
        with pytest.raises(ValueError, match="class_index"):
            viz.grad_cam(tiny_model, images, class_index=class_index)


def test_wrong_layer_name_is_a_value_error_listing_the_conv_layers(tiny_model, images):
    with pytest.raises(ValueError, match="stage2_cnov") as error:
        viz.grad_cam(tiny_model, images, layer="stage2_cnov")
    assert "stage1_conv" in str(error.value) and "stage2_conv" in str(error.value)
    with pytest.raises(ValueError, match="stage1_pool"):
        viz.score_cam(tiny_model, images, layer="logits")
    nested = outer_model(kcnn.create_model("tiny_cnn", include_top=False, input_shape=(16, 16, 1)))
    with pytest.raises(ValueError, match="stage1_conv, stage1_pool, stage2_conv"):
        viz.grad_cam(nested, images, layer="block5")


def test_bad_images_are_a_value_error(tiny_model):
    for bad, match in [
        (np.zeros((16, 16, 1)), "image\\[None\\]"),
        (np.zeros((2, 17, 16, 1)), "do not fit"),
        (np.full((1, 16, 16, 1), np.nan), "NaN"),
    ]:
        with pytest.raises(ValueError, match=match):
            viz.grad_cam(tiny_model, bad)


def test_a_model_without_classifier_head_is_a_value_error(images):
    features = kcnn.create_model("tiny_cnn", include_top=False, input_shape=(16, 16, 1))
    with pytest.raises(ValueError, match="include_top=True"):
        viz.grad_cam(features, images)


def test_logits_are_read_before_the_softmax_of_kcnn_heads(tiny_model):
    source = score_source(tiny_model)
    assert source.tap == (tiny_model.get_layer("predictions"), "input")
    linear = kcnn.create_model("tiny_cnn", input_shape=(16, 16, 1), classifier_activation=None)
    assert score_source(linear).tap == (linear.get_layer("predictions"), "output")


def test_the_rewired_model_is_built_once_per_model_and_layers_and_freed_with_it(images):
    backbone = kcnn.create_model("tiny_cnn", include_top=False, input_shape=(16, 16, 1))
    model = outer_model(backbone)
    taps = [(backbone.get_layer("stage2_conv"), "output")]
    assert tapped_model(model, taps) is tapped_model(model, taps)
    viz.grad_cam(model, images)
    alive = weakref.ref(model), weakref.ref(backbone)
    del model, backbone, taps
    gc.collect()
    gc.collect()  # the first pass drops the cache entry, the second its value
    assert [ref() for ref in alive] == [None, None]


def test_a_layer_a_model_calls_twice_has_no_single_feature_map_to_explain(tiny_model, images):
    view = flip_averaged(tiny_model)  # calls tiny_model on the images and on their mirrors
    for method in (viz.grad_cam, viz.score_cam):
        with pytest.raises(ValueError, match="calls 'tiny_cnn' more than once.*'stage2_conv'"):
            method(view, images)
    with pytest.raises(ValueError, match="calls 'tiny_cnn' more than once"):
        viz.feature_maps(view, images, ["stage1_conv"])
    # The gradient at the input goes through both calls: saliency explains the view, scoring
    # the class by the view's logits, the mean log-probability its softmax takes.
    scores = keras.Model(view.inputs, view.get_layer("mean_log_probability").output)
    with tf.GradientTape() as tape:
        pixels = tf.constant(images)
        tape.watch(pixels)
        logits = scores(pixels)
        score = tf.reduce_sum(tf.gather(logits, tf.argmax(logits, -1), batch_dims=1))
    expected = np.abs(tape.gradient(score, pixels).numpy()).max(axis=-1)
    expected /= expected.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(viz.saliency(view, images), expected, atol=1e-4)


def test_feature_maps_of_named_layers_nested_models_included(images):
    model = outer_model(kcnn.create_model("tiny_cnn", include_top=False, input_shape=(16, 16, 1)))
    maps = viz.feature_maps(model, images, ["stage1_conv", "stage2_conv"])
    assert list(maps) == ["stage1_conv", "stage2_conv"]
    assert maps["stage1_conv"].shape == (4, 16, 16, 8)
    assert maps["stage2_conv"].shape == (4, 8, 8, 16)
    backbone = model.get_layer("tiny_cnn")
    direct = keras.Model(backbone.input, backbone.get_layer("stage2_conv").output)
    np.testing.assert_allclose(maps["stage2_conv"], direct(images * 2.0 - 1.0), atol=1e-6)


def test_pointing_game_counts_the_peaks_inside_the_boxes():
    maps = np.zeros((3, 10, 10), dtype="float32")
    maps[0, 2, 3] = 1  # inside (1, 1, 4, 4)
    maps[1, 5, 5] = 1  # one pixel right of and below (1, 1, 5, 5)
    boxes = np.array([[1, 1, 4, 4], [1, 1, 5, 5], [0, 0, 10, 10]])  # map 2 is all zero: a miss
    assert viz.pointing_game(maps, boxes) == pytest.approx(1 / 3)
    assert viz.pointing_game(maps, boxes, tolerance=1) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="boxes"):
        viz.pointing_game(maps, boxes[:2])


def test_mixed_precision_models_give_float32_maps_close_to_float32_ones(images):
    reference = kcnn.create_model("tiny_cnn", input_shape=(16, 16, 1), classes=3)
    keras.config.set_dtype_policy("mixed_bfloat16")
    mixed = kcnn.create_model("tiny_cnn", input_shape=(16, 16, 1), classes=3)
    mixed.set_weights(reference.get_weights())
    for method in (viz.grad_cam, viz.saliency):
        maps = method(mixed, images, class_index=1)
        assert maps.dtype == np.float32
        expected = method(reference, images, class_index=1)
        assert np.corrcoef(maps.ravel(), expected.ravel())[0, 1] > 0.9
        assert np.abs(maps - expected).mean() < 0.05
