"""Seeing inside a CNN: filters, feature maps, the Grad-CAM family and saliency, training
curves, confusion matrices and prediction grids.

Explanations (`grad_cam`, `grad_cam_plus_plus`, `score_cam`, `saliency`, `smooth_grad`) take a
batch of images and return maps (N, H, W) in [0, 1]; they work on kcnn models, Sequential
models, Keras Applications and transfer models with a nested backbone, and score classes from
the logits. Figures are matplotlib ``Figure`` objects; `save_figure` writes them atomically.

Example:
    >>> from kcnn import viz
    >>> maps = viz.grad_cam(model, x_test[:8])
    >>> viz.save_figure(viz.plot_explanations(x_test[:8], maps), "results/gradcam.png")
"""

from kcnn.viz.cam import (
    grad_cam,
    grad_cam_plus_plus,
    pointing_game,
    saliency,
    score_cam,
    smooth_grad,
)
from kcnn.viz.graph import feature_map_layers, feature_maps
from kcnn.viz.plots import (
    conv_layers,
    overlay,
    plot_confusion_matrix,
    plot_explanations,
    plot_feature_maps,
    plot_filters,
    plot_history,
    plot_predictions,
    save_figure,
)

METHODS = {
    "gradcam": grad_cam,
    "gradcam++": grad_cam_plus_plus,
    "scorecam": score_cam,
    "saliency": saliency,
    "smoothgrad": smooth_grad,
}
"""The explanation methods by the names the ``kcnn explain --method`` option uses."""

__all__ = [
    "METHODS",
    "conv_layers",
    "feature_map_layers",
    "feature_maps",
    "grad_cam",
    "grad_cam_plus_plus",
    "overlay",
    "plot_confusion_matrix",
    "plot_explanations",
    "plot_feature_maps",
    "plot_filters",
    "plot_history",
    "plot_predictions",
    "pointing_game",
    "saliency",
    "save_figure",
    "score_cam",
    "smooth_grad",
]
