"""experiments/visualize.py: the filter measure, the perturbation test and Listing 9 on known
inputs; its quick mode writes a report, results, figures and the trained model."""

import os

import keras
import numpy as np
import pytest

from tests.experiments.conftest import assert_png, assert_report, run_quick


@pytest.fixture(scope="module")
def results(quick_out):
    return run_quick("visualize.py", quick_out)


def kernels(*arrays):
    """(3, 3, 1, N) kernels from 3x3 arrays."""
    return np.stack([np.asarray(a, "float32") for a in arrays], axis=-1)[:, :, None, :]


def test_edge_share_is_one_for_edge_filters_zero_for_blur_and_three_eighths_by_chance():
    import visualize

    from kcnn.models import classic_kernel

    edges = [classic_kernel(n) for n in ("vertical_edge", "horizontal_edge", "laplacian")]
    diagonal = np.array([[0, 1, 2], [-1, 0, 1], [-2, -1, 0]])  # a gradient at 45 degrees
    np.testing.assert_allclose(visualize.edge_share(kernels(*edges, diagonal)), 1, atol=1e-6)
    sobel = kernels(classic_kernel("sobel_x"), classic_kernel("sobel_y"))
    np.testing.assert_allclose(visualize.edge_share(sobel), 8 / 9, atol=1e-6)
    np.testing.assert_allclose(visualize.dc_share(kernels(*edges)), 0, atol=1e-6)
    np.testing.assert_allclose(visualize.dc_share(kernels(classic_kernel("box_blur"))), 1)
    random = np.random.default_rng(0).normal(size=(3, 3, 1, 20000))
    assert visualize.edge_share(random).mean() == pytest.approx(3 / 8, abs=0.01)
    rgb = np.repeat(kernels(classic_kernel("laplacian")), 3, axis=2)  # (3, 3, 3, 1)
    np.testing.assert_allclose(visualize.edge_share(rgb), 1, atol=1e-6)


def test_chance_level_draws_fresh_kernels_from_the_layers_initializer():
    import visualize

    conv = keras.layers.Conv2D(32, 3)
    conv.build((None, 8, 8, 1))
    means = visualize.chance_edge_share(conv, 50, seed=0)
    assert len(set(means)) == 50
    assert np.mean(means) == pytest.approx(3 / 8, abs=0.02)


def bright_square_model():
    """Scores class 1 by the brightness of the top-left 4x4 corner of an 8x8 image of 0-255
    pixels (a bright corner: logit 4 against 0)."""
    inputs = keras.Input((8, 8, 1))
    corner = keras.layers.Cropping2D(((0, 4), (0, 4)))(inputs)
    score = keras.layers.Flatten()(corner)
    score = keras.layers.Dense(
        1, kernel_initializer=keras.initializers.Constant(0.25 / 255), use_bias=False
    )(score)
    logits = keras.layers.Concatenate(name="logits")([keras.ops.zeros_like(score), score])
    return keras.Model(inputs, keras.layers.Activation("softmax", name="predictions")(logits))


def test_perturbation_falls_more_with_a_map_on_the_evidence_than_at_random():
    import visualize

    images = np.zeros((3, 8, 8, 1), "float32")
    images[:, :4, :4, 0] = 255  # the evidence: the top-left corner (noise in [0, 255] lowers it)
    model = bright_square_model()
    right = np.zeros((3, 8, 8), "float32")
    right[:, :4, :4] = 1
    most, least, random = visualize.perturbation(model, images, right, np.random.default_rng(0))
    assert np.all(most > random) and np.all(random > least)
    np.testing.assert_allclose(least, 0, atol=1e-6)  # its lowest-ranked pixels: no evidence
    wrong_most, wrong_least, _ = visualize.perturbation(
        model, images, 1 - right, np.random.default_rng(0)
    )
    np.testing.assert_allclose(wrong_most, 0, atol=1e-6)
    assert np.all(wrong_least > 0)
    np.testing.assert_allclose(visualize.object_mass(images, right), 1)


def test_listing9_on_a_grey_image_returns_the_image_itself_or_nothing():
    import visualize

    model = bright_square_model()
    images = np.random.default_rng(0).uniform(0.2, 1, size=(4, 8, 8, 1)).astype("float32")
    maps, empty = visualize.listing9(model, images)
    assert not empty.any()  # the corner's gradient is positive: the map is the image rescaled
    np.testing.assert_allclose(visualize.image_correlation(images, maps), 1, atol=1e-5)
    maps, empty = visualize.listing9(model, -images)  # negative weight: ReLU leaves nothing
    assert empty.all() and not maps.any()


@pytest.mark.slow
def test_quick_mode_measures_filters_depths_and_explanations(results):
    assert_report(results, "experiments/visualize.py")
    tables = results["results"]
    depths = tables["Three depths: feature maps and linear probes"]
    assert [row["layer"] for row in depths] == ["stage1_conv", "stage2_conv", "stage3_conv"]
    assert [row["receptive field (px)"] for row in depths] == [3, 8, 18]
    methods = {row["method"] for row in tables["Explanations"]}
    assert methods == {"gradcam", "gradcam++", "scorecam", "saliency", "smoothgrad", "listing9"}
    (run,) = tables["runs"]
    assert 0 <= run["edge_share"] <= 1 and len(run["chance_edge_share"]) == 1000
    assert set(run["probes"]) == {"stage1_conv", "stage2_conv", "stage3_conv"}
    listing9 = run["explanations"]["correct"]["listing9"]
    assert listing9["image itself"] + listing9["empty"] == pytest.approx(1)  # grey images


@pytest.mark.slow
def test_quick_mode_writes_figures_and_a_model_that_loads(results, quick_out):
    import kcnn

    for name in (
        "filters.png",
        "filters_initial.png",
        "feature_maps.png",
        "explanations_correct.png",
        "explanations_wrong.png",
    ):
        assert_png(os.path.join(quick_out, name))
        assert f"]({name})" in results["markdown"]
    model = kcnn.load_model(os.path.join(quick_out, "model.keras"))
    assert model.predict(np.zeros((2, 28, 28, 1), "float32"), verbose=0).shape == (2, 10)
