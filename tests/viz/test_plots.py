"""Figures: written atomically as PNGs of the expected size, with the content they describe."""

import os

import keras
import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

import kcnn
from kcnn import viz
from tests.viz.conftest import assert_png, outer_model


def test_save_figure_writes_a_png_of_figure_size_times_dpi_atomically(tmp_path):
    figure = Figure(figsize=(3, 2))
    figure.subplots().plot([0, 1, 0])
    path = tmp_path / "new" / "curve.png"
    assert viz.save_figure(figure, path, dpi=50) == str(path)
    assert_png(path, (150, 100))
    viz.save_figure(figure, path, dpi=40)  # replaces the file
    assert_png(path, (120, 80))
    assert os.listdir(tmp_path / "new") == ["curve.png"]
    with pytest.raises(ValueError, match="must end in one of"):
        viz.save_figure(figure, tmp_path / "curve.docx")


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    figure = Figure(figsize=(2, 2))
    path = tmp_path / "figure.png"
    path.write_bytes(b"old")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(figure, "savefig", fail)
    with pytest.raises(OSError, match="disk full"):
        viz.save_figure(figure, path)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["figure.png"]


def test_overlay_blends_the_colour_map_into_the_image():
    image = np.full((4, 5, 1), 0.5, dtype="float32")
    heatmap = np.linspace(0, 1, 20, dtype="float32").reshape(4, 5)
    colours = matplotlib.colormaps["jet"](heatmap)[..., :3]
    np.testing.assert_allclose(viz.overlay(image, heatmap, alpha=0), np.full((4, 5, 3), 0.5))
    np.testing.assert_allclose(viz.overlay(image, heatmap, alpha=1), colours, atol=1e-6)
    np.testing.assert_allclose(
        viz.overlay(image * 255, heatmap, alpha=0.5), 0.25 + 0.5 * colours, atol=1e-6
    )
    with pytest.raises(ValueError, match="does not match"):
        viz.overlay(image, heatmap[:3])


def test_explanations_figure_has_one_row_per_image(tmp_path, tiny_model, images):
    maps = viz.grad_cam(tiny_model, images[:3])
    figure = viz.plot_explanations(images[:3], maps, ["a", "b", "c"])
    assert len(figure.axes) == 6
    assert_png(viz.save_figure(figure, tmp_path / "explanations.png", dpi=50), (220, 350))


def test_plot_filters_draws_colour_grey_and_per_channel_kernels(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(6, 3, name="rgb_conv"),
            keras.layers.Conv2D(5, 3, name="deep_conv"),
        ]
    )
    rgb = viz.plot_filters(model)
    assert "rgb_conv: 6 filters of 3x3x3" in rgb.texts[0].get_text()
    assert rgb.axes[0].images[0].get_array().shape == (3, 3, 3)
    assert_png(viz.save_figure(rgb, tmp_path / "rgb.png", dpi=40), (144, 112))
    deep = viz.plot_filters(model, "deep_conv", max_filters=4, max_channels=3)
    assert "(first 4)" in deep.texts[0].get_text()
    assert sum(1 for axis in deep.axes if axis.images) == 4 * 3
    grey = viz.plot_filters(kcnn.create_model("tiny_cnn", input_shape=(16, 16, 1)))
    assert "stage1_conv: 8 filters of 3x3x1" in grey.texts[0].get_text()
    assert viz.conv_layers(model) == ["rgb_conv", "deep_conv"]
    with pytest.raises(ValueError, match="rgb_conv, deep_conv"):
        viz.plot_filters(model, "dense")


def test_plot_feature_maps_shows_each_stage_of_a_kcnn_model(tmp_path, tiny_model, images):
    figure = viz.plot_feature_maps(tiny_model, images[0], max_maps=4)
    labels = [axis.get_ylabel() for axis in figure.axes if axis.get_ylabel()]
    assert labels == ["stage1_pool\n8x8x8", "stage2_pool\n4x4x16"]
    assert_png(viz.save_figure(figure, tmp_path / "maps.png", dpi=50), (240, 200))
    nested = outer_model(kcnn.create_model("tiny_cnn", include_top=False, input_shape=(16, 16, 1)))
    figure = viz.plot_feature_maps(nested, images[:1], layers=["stage1_conv"])
    assert [axis.get_ylabel() for axis in figure.axes if axis.get_ylabel()] == [
        "stage1_conv\n16x16x8"
    ]


def test_plot_history_has_a_panel_per_metric_with_both_curves(tmp_path):
    history = keras.callbacks.History()
    history.history = {
        "loss": [1.0, 0.6, 0.4],
        "accuracy": [0.5, 0.7, 0.8],
        "val_loss": [1.1, 0.8, 0.7],
        "val_accuracy": [0.4, 0.6, 0.7],
    }
    figure = viz.plot_history(history)
    assert [axis.get_title() for axis in figure.axes] == ["loss", "accuracy"]
    assert all(len(axis.lines) == 2 for axis in figure.axes)
    np.testing.assert_allclose(figure.axes[0].lines[1].get_ydata(), [1.1, 0.8, 0.7])
    assert_png(viz.save_figure(figure, tmp_path / "history.png", dpi=50), (320, 140))
    with pytest.raises(ValueError, match="history"):
        viz.plot_history({})


def test_confusion_matrix_counts_true_rows_against_predicted_columns(tmp_path):
    y_true = np.array([0, 0, 1, 2, 2, 2])
    scores = np.eye(3)[[0, 1, 1, 2, 0, 2]]
    figure = viz.plot_confusion_matrix(y_true, scores, class_names=["cat", "dog", "bird"])
    axis = figure.axes[0]
    counts = {
        (round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in axis.texts
    }
    assert counts[(0, 0)] == "1" and counts[(0, 1)] == "1" and counts[(2, 0)] == "1"
    assert counts[(2, 2)] == "2" and counts[(1, 1)] == "1" and counts[(1, 0)] == "0"
    assert axis.get_title() == "accuracy 0.667 on 6 images"
    assert [label.get_text() for label in axis.get_xticklabels()] == ["cat", "dog", "bird"]
    assert_png(viz.save_figure(figure, tmp_path / "confusion.png", dpi=50), (190, 150))
    normalized = viz.plot_confusion_matrix(y_true, scores, normalize=True)
    assert "0.67" in [t.get_text() for t in normalized.axes[0].texts]
    with pytest.raises(ValueError, match="same non-zero length"):
        viz.plot_confusion_matrix(y_true, scores[:4])


def test_plot_predictions_marks_the_errors_in_red(tmp_path, images):
    y_true = np.array([0, 1, 2, 1])
    probabilities = np.array([[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    figure = viz.plot_predictions(images, y_true, probabilities, class_names=["a", "b", "c"])
    titles = [axis.get_title() for axis in figure.axes if axis.images]
    assert titles == [
        "a (0.90)\ntrue: a",
        "b (0.70)\ntrue: b",
        "a (0.60)\ntrue: c",
        "c (0.80)\ntrue: b",
    ]
    red = [
        axis
        for axis in figure.axes
        if axis.images and matplotlib.colors.same_color(axis.title.get_color(), "red")
    ]
    assert len(red) == 2 and figure.texts[0].get_text() == "2 errors in 4 images"
    assert_png(viz.save_figure(figure, tmp_path / "predictions.png", dpi=50), (120, 150))
