"""``kcnn explain`` and ``kcnn visualize`` on a saved model and image files."""

import numpy as np
import pytest
from PIL import Image

import kcnn
from kcnn import viz
from kcnn.cli import _EXPLAIN_METHODS, main
from kcnn.training import flip_averaged
from tests.viz.conftest import assert_png


@pytest.fixture
def saved(tmp_path):
    """A saved tiny_cnn (16x16 grey, 3 classes), a grey PNG and an RGB JPEG of another size."""
    model = kcnn.create_model("tiny_cnn", input_shape=(16, 16, 1), classes=3)
    model.save(tmp_path / "tiny.keras")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(tmp_path / "rgb.jpg")
    return tmp_path


def test_the_command_offers_every_method_of_kcnn_viz():
    assert list(_EXPLAIN_METHODS) == list(viz.METHODS)


@pytest.mark.parametrize("method", ["gradcam", "saliency"])
def test_explain_writes_one_figure_per_image(method, saved, capsys):
    out = saved / "out"
    argv = [
        "explain",
        str(saved / "tiny.keras"),
        str(saved / "grey.png"),
        str(saved / "rgb.jpg"),
        "--method",
        method,
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    for name in ("grey", "rgb"):
        assert_png(out / f"{name}_{method}.png", (440, 260))
    assert capsys.readouterr().out.count(f"_{method}.png: class ") == 2


def test_explain_reports_user_errors_in_one_line(saved, capsys):
    model, image = str(saved / "tiny.keras"), str(saved / "grey.png")
    cases = [
        (["explain", model, image, "--layer", "stage9_conv"], "stage1_conv, stage1_pool"),
        (["explain", model, image, "--class-index", "5"], "class_index"),
        (["explain", model, str(saved / "missing.png")], "does not exist"),
        (["explain", model, str(saved / "tiny.keras")], "not a readable image"),
        (["explain", model, image, "--method", "saliency", "--layer", "stage1_conv"], "--layer"),
    ]
    for argv, message in cases:
        assert main(argv + ["--out", str(saved / "out")]) == 1
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error


def test_a_saved_flip_view_is_explained_by_saliency_and_named_for_the_cam_methods(saved, capsys):
    # flip_averaged's view calls the model it wraps twice: a feature map inside it is two maps.
    view = flip_averaged(kcnn.load_model(saved / "tiny.keras"))
    view.save(saved / "flip.keras")
    argv = ["explain", str(saved / "flip.keras"), str(saved / "grey.png"), "--out", str(saved)]
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert "calls 'tiny_cnn' more than once" in error and error.count("\n") == 1, error
    assert main(argv + ["--method", "saliency"]) == 0
    assert_png(saved / "grey_saliency.png", (440, 260))


def test_visualize_draws_filters_and_feature_maps(saved, capsys):
    model, out = str(saved / "tiny.keras"), saved / "out"
    assert main(["visualize", "filters", model, "--out", str(out)]) == 0
    assert_png(out / "filters_stage1_conv.png", (360, 400))
    assert main(["visualize", "filters", model, "--layer", "stage2_conv", "--out", str(out)]) == 0
    assert (out / "filters_stage2_conv.png").is_file()
    assert (
        main(
            [
                "visualize",
                "feature-maps",
                model,
                str(saved / "rgb.jpg"),
                "--out",
                str(out),
                "--layer",
                "stage1_conv",
                "--layer",
                "stage2_conv",
            ]
        )
        == 0
    )
    assert_png(out / "feature_maps_rgb.png", (960, 400))
    assert capsys.readouterr().out.count(str(out)) == 3
    assert main(["visualize", "feature-maps", model, "--out", str(out)]) == 1
    assert "needs an image" in capsys.readouterr().err
