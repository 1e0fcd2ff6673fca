"""kcnn.models.filters: the course's classic kernels and the fixed Conv2D made from them, and the
experiment that applies them to real images. Runs on every Keras backend (no TensorFlow)."""

import json
import os

import keras
import matplotlib.image
import numpy as np
import pytest

from kcnn.convmath import conv2d
from kcnn.models import CLASSIC_FILTERS, classic_kernel, fixed_conv2d
from tests.scripts import load_script

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"


def test_the_course_kernels_have_the_course_values():
    np.testing.assert_array_equal(classic_kernel("vertical_edge"), [[1, 0, -1]] * 3)
    np.testing.assert_array_equal(
        classic_kernel("horizontal_edge"), [[1, 1, 1], [0, 0, 0], [-1, -1, -1]]
    )
    np.testing.assert_allclose(classic_kernel("box_blur"), np.full((3, 3), 1 / 9))
    np.testing.assert_array_equal(classic_kernel("sobel_x"), [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    np.testing.assert_array_equal(classic_kernel("sobel_y"), classic_kernel("sobel_x").T)


@pytest.mark.parametrize("name", CLASSIC_FILTERS)
def test_smoothing_kernels_keep_the_mean_and_edge_kernels_remove_it(name):
    kernel = classic_kernel(name)
    assert kernel.shape == (3, 3) and kernel.dtype == np.float32
    expected_sum = 1.0 if name in ("box_blur", "gaussian", "sharpen") else 0.0
    assert kernel.sum() == pytest.approx(expected_sum, abs=1e-6)


def test_classic_kernel_returns_a_copy_and_rejects_unknown_names():
    classic_kernel("laplacian")[1, 1] = 100
    assert classic_kernel("laplacian")[1, 1] == -4
    with pytest.raises(ValueError, match="unknown filter 'prewitt'; the classic filters are: "):
        classic_kernel("prewitt")


def test_fixed_conv2d_computes_the_reference_convolution_of_the_channel_mean():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (2, 9, 11, 3)).astype("float32")
    layer = fixed_conv2d(CLASSIC_FILTERS, input_channels=3)
    bank = np.stack([classic_kernel(name) for name in CLASSIC_FILTERS], axis=-1)[:, :, None, :]
    expected = conv2d(images.mean(axis=-1, keepdims=True), bank, padding="same")
    np.testing.assert_allclose(np.asarray(layer(images)), expected, atol=1e-5)


def test_fixed_conv2d_takes_arrays_and_valid_padding():
    kernel = np.array([[0.0, 1.0], [2.0, 0.0]])
    layer = fixed_conv2d([kernel], padding="valid", name="custom")
    image = np.arange(20, dtype="float32").reshape(4, 5)
    out = np.asarray(layer(image[None, :, :, None]))[0, :, :, 0]
    np.testing.assert_allclose(out, conv2d(image, kernel))
    assert layer.name == "custom" and out.shape == (3, 4)


def test_fixed_conv2d_is_not_trained_and_survives_saving(tmp_path):
    inputs = keras.Input((8, 8, 1))
    features = fixed_conv2d(["sobel_x", "sobel_y"], name="edges")(inputs)
    outputs = keras.layers.Dense(1, name="head")(keras.layers.Flatten()(features))
    model = keras.Model(inputs, outputs)
    assert [w.path for w in model.trainable_weights] == ["head/kernel", "head/bias"]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = model.get_layer("edges").get_weights()[0]
    x = np.random.default_rng(1).uniform(size=(4, 8, 8, 1)).astype("float32")
    model.fit(x, np.ones((4, 1)), epochs=1, verbose=0)
    np.testing.assert_array_equal(model.get_layer("edges").get_weights()[0], before)
    path = tmp_path / "edges.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded.get_layer("edges").get_weights()[0], before)
    assert not loaded.get_layer("edges").trainable


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(filters=[]), "filters must name at least one filter"),
        (dict(filters=["sobel_x", np.ones((5, 5))]), r"same size, got sizes \[\(3, 3\), \(5, 5"),
        (dict(filters=[np.ones(3)]), r"a 2D \(kh, kw\) array, got an array of shape \(3,\)"),
        (dict(input_channels=0), "input_channels must be a positive integer, got 0"),
        (dict(padding="full"), "padding must be 'same' or 'valid', got 'full'"),
        (dict(filters=["blur"]), "unknown filter 'blur'"),
    ],
)
def test_fixed_conv2d_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fixed_conv2d(**kwargs)


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST), reason="no Fashion-MNIST IDX files")
def test_classic_filters_experiment_writes_its_figure_and_report(tmp_path, capsys):
    experiment = load_script("experiments/classic_filters.py")
    report = experiment.main(
        ["--index", "3", "--filters", "sobel_x", "laplacian", "--output-dir", str(tmp_path)]
    )
    figure = matplotlib.image.imread(tmp_path / "classic_filters.png")
    assert figure.shape[0] > 100 and figure.shape[1] > 300
    assert json.loads((tmp_path / "report.json").read_text()) == report
    assert list(report["images"]) == ["fashion-mnist[3]: Trouser", "grace_hopper.jpg"]
    for result in report["images"].values():
        assert result["max_abs_difference_numpy_vs_keras"] < 1e-5
        assert set(result["mean_abs_response"]) == {"sobel_x", "laplacian"}
    assert "max |difference|" in capsys.readouterr().out
