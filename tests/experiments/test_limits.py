"""experiments/limits.py: rotation and scaling of test images, FGSM's step, and a quick mode
that reports accuracy against angle, scale and ε."""

import os

import numpy as np
import pytest

from tests.experiments.conftest import assert_png, assert_report, run_quick


@pytest.fixture(scope="module")
def results(quick_out):
    # float32: the unaltered accuracy it checks against the test accuracy comes from other
    # batches, and in mixed bfloat16 (precision auto on an AMX CPU) one image in 300 flipped.
    return run_quick("limits.py", quick_out, "--precision", "float32")


def _image():
    image = np.zeros((1, 9, 9, 1), "float32")
    image[0, 1:4, 2:7, 0] = 200.0  # a bar in the top half, off centre
    return image


def test_rotation_and_scale_about_the_centre():
    from limits import transform

    image = _image()
    assert transform(image) is not None
    np.testing.assert_array_equal(transform(image), image)
    np.testing.assert_allclose(
        transform(image, angle=90)[0, ..., 0], np.rot90(image[0, ..., 0]), atol=1e-3
    )  # counter-clockwise, as np.rot90
    np.testing.assert_allclose(
        transform(image, angle=180)[0, ..., 0], image[0, ::-1, ::-1, 0], atol=1e-3
    )
    half = transform(image, scale=0.5)
    assert half.sum() == pytest.approx(image.sum() / 4, rel=0.35)
    with pytest.raises(ValueError, match="scale"):
        transform(image, scale=0)


def test_augmentation_draws_zooms_independently_of_angles():
    from limits import ROTATION, ZOOM, augmentation

    rotation, zoom = augmentation(seed=0)
    images = np.zeros((256, 9, 9, 1), "float32")
    angles = np.asarray(rotation.get_random_transformation(images, training=True)["angle"])
    zooms = np.asarray(zoom.get_random_transformation(images, training=True)["height_zoom"])
    as_if_shared = 1 + angles.ravel() / (360 * ROTATION) * ZOOM  # one draw for both layers
    assert not np.allclose(zooms.ravel(), as_if_shared, atol=1e-3)
    assert abs(np.corrcoef(angles.ravel(), zooms.ravel())[0, 1]) < 0.3


def test_crossing_interpolates_the_first_epsilon_reaching_the_level():
    from limits import crossing

    assert crossing((0, 2, 4), (0.0, 0.2, 0.8), 0.5) == pytest.approx(3.0)
    assert crossing((0, 2), (0.0, 0.3), 0.5) is None


def test_fgsm_step_is_the_sign_of_the_loss_gradient_on_raw_pixels():
    import keras
    from limits import input_gradient_sign

    inputs = keras.Input((2,))
    model = keras.Model(
        inputs,
        keras.layers.Dense(2, activation="softmax", use_bias=False, kernel_initializer="identity")(
            inputs
        ),
    )
    # loss of label 0 falls when x0 grows and x1 shrinks: the gradient's sign is (-1, +1)
    sign = input_gradient_sign(model, np.array([[10.0, 20.0]]), np.array([0]))
    np.testing.assert_array_equal(sign, [[-1.0, 1.0]])


@pytest.mark.slow
def test_quick_mode_reports_rotation_scale_and_fgsm(results, quick_out):
    import limits

    assert_report(results, "experiments/limits.py")
    runs = results["results"]["runs"]
    assert list(runs) == ["plain", "augmented"]
    (plain,) = runs["plain"]
    assert len(plain["angle_accuracy"]) == len(limits.ANGLES)
    assert len(plain["scale_accuracy"]) == len(limits.SCALES)
    assert plain["angle_accuracy"][0] == pytest.approx(plain["test_accuracy"], abs=1e-6)
    assert plain["fgsm_flipped"][0] == 0 and plain["fgsm_accuracy"][0] == plain["angle_accuracy"][0]
    assert plain["fgsm_accuracy"][-1] <= plain["fgsm_accuracy"][0]
    claims = " ".join(c["claim"] for c in results["claims"])
    for part in ("rotation", "scale", "adversarial"):
        assert part in claims
    for name in ("invariance.png", "adversarial.png", "examples.png"):
        assert_png(os.path.join(quick_out, name))
        assert f"]({name})" in results["markdown"]
