"""RandomResizedCrop against torchvision's sampling and a crop-then-resize reference; the
presets' shapes, dtypes and names; MixUp / CutMix on labels."""

import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from kcnn.data import PRESETS, RandomResizedCrop, augmentation_layers, label_mixing


def torchvision_crop(rng, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3)):
    """torchvision.transforms.RandomResizedCrop.get_params, in NumPy (the reference)."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.integers(0, height - h + 1), rng.integers(0, width - w + 1), h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


@pytest.mark.parametrize("shape, scale", [((24, 40), (0.08, 1.0)), ((30, 30), (0.5, 1.0))])
def test_crop_sampling_matches_torchvision(shape, scale):
    height, width = shape
    layer = RandomResizedCrop(height, width, scale=scale, seed=1)
    crops = layer.get_random_transformation(np.zeros((20000, height, width, 1), np.float32))
    crops = {key: np.asarray(value) for key, value in crops.items()}
    assert np.all(crops["height"] >= 1) and np.all(crops["top"] >= 0)
    assert np.all(crops["top"] + crops["height"] <= height)
    assert np.all(crops["left"] + crops["width"] <= width)
    assert np.all(crops["top"] == np.round(crops["top"]))
    rng = np.random.default_rng(0)
    reference = np.array([torchvision_crop(rng, height, width, scale) for _ in range(20000)])

    def summary(top, left, h, w):
        area = h * w / (height * width)
        return np.array(
            [
                np.mean(area),
                np.std(area),
                np.mean(np.log(w / h)),
                np.mean(top / height),
                np.mean(left / width),
            ]
        )

    ours = summary(crops["top"], crops["left"], crops["height"], crops["width"])
    theirs = summary(*reference.T.astype(float))
    np.testing.assert_allclose(ours, theirs, atol=0.01)


def test_fallback_is_a_center_crop_clamped_to_the_ratio():
    layer = RandomResizedCrop(10, 40, scale=(1.0, 1.0), ratio=(1.0, 1.0), seed=0)
    crops = layer.get_random_transformation(np.zeros((3, 10, 40, 1), np.float32))
    # A 10x40 image has no square crop of its full area: torchvision takes the central 10x10.
    assert np.asarray(crops["height"]).tolist() == [10.0] * 3
    assert np.asarray(crops["width"]).tolist() == [10.0] * 3
    assert np.asarray(crops["left"]).tolist() == [15.0] * 3


def test_full_crop_is_the_identity():
    images = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    layer = RandomResizedCrop(16, 16, scale=(1.0, 1.0), ratio=(1.0, 1.0), seed=0)
    np.testing.assert_allclose(layer(images, training=True), images, atol=1e-3)


def test_crop_equals_crop_then_resize_inside_the_crop():
    images = np.random.default_rng(0).uniform(0, 255, (2, 24, 24, 1)).astype("float32")
    layer = RandomResizedCrop(24, 24, seed=0)
    crop = {
        "top": np.float32([3, 10]),
        "left": np.float32([5, 0]),
        "height": np.float32([12, 14]),
        "width": np.float32([16, 8]),
    }
    result = np.asarray(layer._crop(images, crop))
    for i in range(2):
        top, left, h, w = (int(crop[k][i]) for k in ("top", "left", "height", "width"))
        expected = tf.image.resize(images[i, top : top + h, left : left + w], (24, 24)).numpy()
        # Bilinear sampling agrees away from the crop's border, where resize clamps.
        np.testing.assert_allclose(result[i, 2:-2, 2:-2], expected[2:-2, 2:-2], atol=1e-3)


def test_output_size_inference_and_single_images():
    layer = RandomResizedCrop(32, 32, seed=0)
    batch = np.random.default_rng(0).uniform(0, 255, (4, 40, 48, 3)).astype("float32")
    assert layer(batch, training=True).shape == (4, 32, 32, 3)
    assert layer(batch[0], training=True).shape == (32, 32, 3)
    center = keras.ops.image.resize(batch, (32, 32), crop_to_aspect_ratio=True, antialias=True)
    np.testing.assert_allclose(layer(batch, training=False), center, atol=1e-4)
    same = RandomResizedCrop(40, 48)
    np.testing.assert_array_equal(same(batch, training=False), batch)


def test_same_seed_same_crops_other_seed_other_crops():
    images = np.random.default_rng(0).uniform(0, 255, (8, 20, 20, 3)).astype("float32")
    first = RandomResizedCrop(20, 20, seed=5)(images)
    np.testing.assert_array_equal(first, RandomResizedCrop(20, 20, seed=5)(images))
    assert not np.allclose(first, RandomResizedCrop(20, 20, seed=6)(images))


def test_random_resized_crop_serialises_in_a_model(tmp_path):
    layer = RandomResizedCrop(
        24, 24, scale=(0.3, 0.9), ratio=(0.5, 2.0), interpolation="nearest", seed=3, name="crop"
    )
    config = layer.get_config()
    arguments = ("height", "width", "scale", "ratio", "interpolation", "seed")
    assert {k: config[k] for k in arguments} == {
        "height": 24,
        "width": 24,
        "scale": [0.3, 0.9],
        "ratio": [0.5, 2.0],
        "interpolation": "nearest",
        "seed": 3,
    }
    assert RandomResizedCrop.from_config(config).get_config() == config
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.GlobalAveragePooling2D()(layer(inputs))
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    images = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0))
    assert loaded.get_layer("crop").get_config() == config


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"height": 0, "width": 4}, "height"),
        ({"height": 4, "width": 4, "scale": (0.5, 1.5)}, "scale"),
        ({"height": 4, "width": 4, "ratio": (2.0, 1.0)}, "ratio"),
        ({"height": 4, "width": 4, "interpolation": "cubic"}, "interpolation"),
    ],
)
def test_random_resized_crop_checks_its_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        RandomResizedCrop(**arguments)


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("channels", [1, 3])
def test_presets_shapes_dtypes_names(preset, channels):
    layers = augmentation_layers(preset, image_size=(28, 28), channels=channels, seed=0)
    assert all(layer.name.startswith("augment_") for layer in layers)
    assert len({layer.name for layer in layers}) == len(layers)
    images = np.random.default_rng(0).uniform(0, 255, (4, 28, 28, channels)).astype("float32")
    x = images
    for layer in layers:
        x = layer(x, training=True)
    assert x.shape == images.shape and keras.backend.standardize_dtype(x.dtype) == "float32"
    assert np.all(np.isfinite(x))
    if preset != "none":
        assert not np.allclose(x, images)
    if channels == 1:
        assert "augment_saturation" not in [layer.name for layer in layers]


def test_flip_preset_mirrors_images_left_to_right_and_does_nothing_else():
    (layer,) = augmentation_layers("flip", channels=1, seed=0)
    images = np.random.default_rng(0).uniform(0, 255, (32, 28, 28, 1)).astype("float32")
    out = np.asarray(layer(images, training=True))
    mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images, strict=True)]
    unchanged = [np.array_equal(o, i) for o, i in zip(out, images, strict=True)]
    assert all(m != u for m, u in zip(mirrored, unchanged, strict=True))
    assert 0 < sum(mirrored) < len(images)


def test_presets_in_a_model_are_inactive_at_inference():
    inputs = keras.Input((28, 28, 3))
    x = inputs
    for layer in augmentation_layers("strong", image_size=28):
        x = layer(x)
    model = keras.Model(inputs, x)
    images = np.random.default_rng(0).uniform(0, 255, (2, 28, 28, 3)).astype("float32")
    np.testing.assert_allclose(model(images, training=False), images, atol=1e-4)
    assert not np.allclose(model(images, training=True), images)


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"augment": "heavy"}, "augment must be one of"),
        ({"augment": "standard"}, "needs image_size"),
        ({"augment": "light", "channels": 2}, "channels"),
        ({"augment": ["flip"]}, "Keras layers"),
        ({"augment": "light", "erasing": 1.5}, "erasing"),
    ],
)
def test_augmentation_layers_check_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        augmentation_layers(**arguments)


@pytest.mark.parametrize("mixup, cutmix", [(0.4, None), (None, 1.0), (0.4, 1.0)])
def test_label_mixing_mixes_images_and_labels_alike(mixup, cutmix):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (16, 12, 12, 3)).astype("float32")
    labels = keras.ops.one_hot(np.arange(16) % 4, 4)
    mixed_images, mixed_labels = label_mixing(mixup, cutmix, seed=0)(images, labels)
    mixed_labels = np.asarray(mixed_labels)
    np.testing.assert_allclose(mixed_labels.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(mixed_labels >= 0) and np.any((mixed_labels > 0.01) & (mixed_labels < 0.99))
    assert mixed_images.shape == images.shape and not np.allclose(mixed_images, images)


@pytest.mark.parametrize("mixup, cutmix", [(0.4, None), (None, 1.0)])
def test_each_label_weighs_the_share_of_its_class_in_the_mixed_image(mixup, cutmix):
    # Class 0 is black, class 1 white: the white share of a mixed image is its class-1 weight.
    # Keras's CutMix weighed the labels by a box with fractional corners, off by up to 7 points.
    labels = np.arange(64) % 2
    images = np.broadcast_to(255.0 * labels[:, None, None, None], (64, 28, 28, 1))
    mixed_images, mixed_labels = label_mixing(mixup, cutmix, seed=3)(
        images.astype("float32"), keras.ops.one_hot(labels, 2)
    )
    white = np.asarray(mixed_images).mean(axis=(1, 2, 3)) / 255.0
    np.testing.assert_allclose(np.asarray(mixed_labels)[:, 1], white, atol=1e-5)


def test_label_mixing_arguments():
    assert label_mixing(None, None) is None
    with pytest.raises(ValueError, match="mixup"):
        label_mixing(mixup=-1)


@pytest.mark.slow
def test_random_resized_crop_runs_on_jax():
    code = (
        "import sys, numpy as np, keras\n"
        "import kcnn.data.augment as a\n"
        "assert 'tensorflow' not in sys.modules, 'kcnn.data.augment imported tensorflow'\n"
        "out = a.RandomResizedCrop(8, 8, seed=0)(np.ones((2, 12, 12, 3), 'float32'))\n"
        "assert out.shape == (2, 8, 8, 3), out.shape\n"
        "print(keras.backend.backend())\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("jax")
