"""Figures: first-layer filters, feature maps, explanations laid over images, training curves,
confusion matrices and prediction grids.

Every ``plot_*`` function returns a ``matplotlib.figure.Figure`` made without ``pyplot``, so it
needs no display and leaves the user's matplotlib backend alone (Agg renders the files); show
it in a notebook by leaving it as a cell's value, write it with `save_figure` (atomic).
"""

from __future__ import annotations

import math
import os

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from kcnn import checks
from kcnn.files import atomic_path
from kcnn.models import introspect
from kcnn.viz.graph import feature_map_layers, feature_maps, to_numpy

_TILE_INCHES = 1.2
_EXPLANATION_TILE_INCHES = 2.2
_ANNOTATE_MAX_CLASSES = 20


def save_figure(figure, path, dpi: int = 100) -> str:
    """Write ``figure`` to ``path`` atomically (`kcnn.files.atomic_path`), creating the folder;
    the format comes from the extension (``.png``...).

    The file is ``figure``'s size in inches times ``dpi`` pixels (no tight cropping), so the
    size of a PNG is known in advance.

    Returns:
        ``path`` as a string.

    Raises:
        ValueError: for an extension matplotlib cannot write or a dpi that is not positive.
    """
    path = os.fspath(path)
    extension = os.path.splitext(path)[1][1:].lower()
    supported = figure.canvas.get_supported_filetypes()
    if extension not in supported:
        raise ValueError(
            f"path {path!r} must end in one of {', '.join('.' + e for e in sorted(supported))}"
        )
    dpi = checks.positive_number("dpi", dpi)
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as file:
            figure.savefig(file, format=extension, dpi=dpi)
    return path


def _displayable(image) -> np.ndarray:
    """An image as (H, W) or (H, W, 3) floats in [0, 1] for ``imshow``: kept if already in
    [0, 1], divided by 255 if in [0, 255], else stretched from its minimum to its maximum."""
    image = np.asarray(image, dtype="float32")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[-1] != 3):
        raise ValueError(
            f"image must be (height, width), (height, width, 1) or (height, width, 3), got shape "
            f"{image.shape}"
        )
    low, high = float(image.min()), float(image.max())
    if low >= 0 and high <= 1:
        return image
    if low >= 0 and high <= 255:
        return image / 255
    return (image - low) / (high - low) if high > low else np.zeros_like(image)


def _show(axis, image, title=None, **title_options):
    image = _displayable(image)
    axis.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
    axis.set_xticks([])
    axis.set_yticks([])
    if title:
        axis.set_title(title, fontsize=8, **title_options)


def _grid(count: int) -> tuple[int, int]:
    columns = math.ceil(math.sqrt(count))
    return math.ceil(count / columns), columns


def _figure(rows, columns, title=None, extra_height=0.4, tile=_TILE_INCHES):
    figure = Figure(figsize=(columns * tile, rows * tile + extra_height), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    if title:
        figure.suptitle(title, fontsize=10)
    return figure, axes


def overlay(image, heatmap, alpha: float = 0.4, colormap: str = "jet") -> np.ndarray:
    """``image`` with ``heatmap`` laid over it in colour, as an RGB array (H, W, 3) in [0, 1].

    Args:
        image: (H, W), (H, W, 1) or (H, W, 3), in [0, 1], [0, 255] or any range (stretched).
        heatmap: (H, W) values in [0, 1], e.g. one map from `grad_cam`.
        alpha: weight of the heatmap colour.
        colormap: a matplotlib colormap name.

    Raises:
        ValueError: if the shapes do not match, or alpha is not in [0, 1].

    Example:
        >>> rgb = overlay(x_test[0], grad_cam(model, x_test[:1])[0])
    """
    image = _displayable(image)
    heatmap = np.asarray(heatmap, dtype="float32")
    if heatmap.shape != image.shape[:2]:
        raise ValueError(
            f"heatmap of shape {heatmap.shape} does not match the image's {image.shape[:2]}"
        )
    alpha = checks.probability("alpha", alpha)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    colours = matplotlib.colormaps[colormap](np.clip(heatmap, 0, 1))[..., :3]
    return ((1 - alpha) * image + alpha * colours).astype("float32")


def plot_explanations(images, heatmaps, titles=None, alpha: float = 0.4) -> Figure:
    """One row per image: the image, then the heatmap laid over it (`overlay`).

    Args:
        images: (N, H, W, C) as given to the explanation method.
        heatmaps: (N, H, W), e.g. from `grad_cam`.
        titles: optional text above each overlay (e.g. the class and the method).

    Raises:
        ValueError: if the counts or sizes do not match.
    """
    images = np.asarray(images)
    heatmaps = np.asarray(heatmaps)
    if len(images) != len(heatmaps) or (titles is not None and len(titles) != len(images)):
        raise ValueError(
            f"got {len(images)} images, {len(heatmaps)} heatmaps and "
            f"{'no' if titles is None else len(titles)} titles; give one of each per image"
        )
    figure, axes = _figure(len(images), 2, tile=_EXPLANATION_TILE_INCHES)
    for row, (image, heatmap) in enumerate(zip(images, heatmaps)):
        _show(axes[row, 0], image, "image")
        _show(axes[row, 1], overlay(image, heatmap, alpha), titles[row] if titles else None)
    return figure


def conv_layers(model) -> list[str]:
    """Names of the layers with a convolution kernel, in order, nested models included: the
    layers `plot_filters` can draw."""
    return [layer.name for layer in introspect.conv_layers(model)]


def plot_filters(model, layer=None, max_filters: int = 32, max_channels: int = 8) -> Figure:
    """The kernels of a convolutional layer, as the course's Listing 7 draws them.

    A layer over RGB inputs shows each filter as one colour image (each filter stretched to
    [0, 1]); a layer over one channel shows each filter in grey; a deeper layer shows one row per
    filter and one column per input channel. Grey tiles share one scale centred on zero (mid
    grey), so signs and magnitudes compare across tiles.

    Args:
        model: any Functional or Sequential model (nested models searched).
        layer: the convolutional layer's name; default the first one.
        max_filters: at most this many filters (the first ones).
        max_channels: at most this many input channels per filter for deeper layers.

    Raises:
        ValueError: if the model has no such convolutional layer (the message lists them).
    """
    convs = introspect.conv_layers(model)
    if not convs:
        raise ValueError(f"model {model.name!r} has no convolutional layer")
    chosen = convs[0] if layer is None else next((c for c in convs if c.name == layer), None)
    if chosen is None:
        raise ValueError(
            f"layer={layer!r}: model {model.name!r} has no convolutional layer of that name; its "
            f"convolutional layers are: {', '.join(c.name for c in convs)}"
        )
    max_filters = checks.positive_int("max_filters", max_filters)
    max_channels = checks.positive_int("max_channels", max_channels)
    kernel = to_numpy(introspect.kernel(chosen))
    height, width, channels, filters = kernel.shape
    shown = min(filters, max_filters)
    title = f"{chosen.name}: {filters} filters of {height}x{width}x{channels}"
    if shown < filters:
        title += f" (first {shown})"
    scale = float(np.abs(kernel).max()) or 1.0
    if channels in (1, 3):
        figure, axes = _figure(*_grid(shown), title)
        for index, axis in zip(range(shown), axes.flat):
            tile = kernel[:, :, :, index]
            if channels == 3:
                low, high = tile.min(), tile.max()
                axis.imshow((tile - low) / (high - low) if high > low else np.zeros_like(tile))
            else:
                axis.imshow(tile[..., 0], cmap="gray", vmin=-scale, vmax=scale)
            axis.set_title(str(index), fontsize=7)
        return figure
    columns = min(channels, max_channels)
    figure, axes = _figure(shown, columns, title)
    for row in range(shown):
        for column in range(columns):
            axes[row, column].imshow(
                kernel[:, :, column, row], cmap="gray", vmin=-scale, vmax=scale
            )
            if row == 0:
                axes[row, column].set_title(f"in {column}", fontsize=7)
        axes[row, 0].axis("on")
        axes[row, 0].set_xticks([])
        axes[row, 0].set_yticks([])
        axes[row, 0].set_ylabel(f"filter {row}", fontsize=7)
    return figure


def _default_feature_layers(model) -> list[str]:
    """kcnn models: the output of each stage. Others: up to four layers evenly spread over the
    convolutional layers, first and last included."""
    stages = introspect.stage_output_layers(model)
    if stages:
        return stages
    names = feature_map_layers(model)
    if len(names) <= 4:
        return names
    return [names[round(i * (len(names) - 1) / 3)] for i in range(4)]


def plot_feature_maps(model, image, layers=None, max_maps: int = 8) -> Figure:
    """The activations of several layers for one image, one row per layer, to show the
    hierarchy the course describes (edges, then textures, then parts), as its Listing 8 does
    for one layer.

    Each row shows the ``max_maps`` channels with the highest mean activation, each on its own
    colour scale, labelled with the layer name and its shape.

    Args:
        model: a kcnn, Sequential, Keras Applications or transfer model.
        image: one image (H, W, C), or a batch of one, preprocessed as the model takes it.
        layers: layer names (nested models searched); default the output of every stage for
            kcnn models, four convolutional layers spread over the network for others.
        max_maps: channels shown per layer.

    Raises:
        ValueError: for a bad image or a name that is not a convolutional layer.
    """
    batch = np.asarray(image, dtype="float32")
    if batch.ndim == 3:
        batch = batch[None]
    if batch.ndim != 4 or len(batch) != 1:
        raise ValueError(f"image must be (H, W, C) or (1, H, W, C), got shape {batch.shape}")
    max_maps = checks.positive_int("max_maps", max_maps)
    names = _default_feature_layers(model) if layers is None else list(layers)
    if not names:
        raise ValueError(f"model {model.name!r} has no convolutional layer")
    maps = feature_maps(model, batch, names)
    figure, axes = _figure(len(names) + 1, max_maps, f"feature maps of {model.name}")
    _show(axes[0, 0], batch[0], "input")
    for row, (name, values) in enumerate(maps.items(), start=1):
        values = values[0]
        strongest = np.argsort(values.mean(axis=(0, 1)))[::-1][:max_maps]
        for axis, channel in zip(axes[row], strongest):
            axis.imshow(values[:, :, channel], cmap="viridis")
            axis.set_title(f"#{channel}", fontsize=7)
        axes[row, 0].axis("on")
        axes[row, 0].set_xticks([])
        axes[row, 0].set_yticks([])
        height, width, channels = values.shape
        axes[row, 0].set_ylabel(f"{name}\n{height}x{width}x{channels}", fontsize=7)
    return figure


def plot_history(history) -> Figure:
    """Training curves: one panel per metric (loss, accuracy...), training and validation.

    Args:
        history: the ``keras.callbacks.History`` that ``model.fit`` returns, or its
            ``.history`` dict.

    Raises:
        ValueError: if there is nothing to plot.
    """
    values = getattr(history, "history", history)
    if not isinstance(values, dict) or not values or not all(len(v) for v in values.values()):
        raise ValueError(f"history must be a History or a dict of per-epoch lists, got {values!r}")
    names = [name for name in values if not name.startswith("val_")] or list(values)
    figure = Figure(figsize=(3.2 * len(names), 2.8), layout="constrained")
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    for axis, name in zip(axes, names):
        for key, label in ((name, "training"), (f"val_{name}", "validation")):
            if key in values:
                epochs = np.arange(1, len(values[key]) + 1)
                axis.plot(epochs, values[key], marker="o", markersize=3, label=label)
        axis.set_title(name, fontsize=10)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    return figure


def _labels(values, name) -> np.ndarray:
    """Class labels from labels (N,) or per-class scores / one-hot rows (N, classes)."""
    array = np.asarray(values)
    if array.ndim == 2:
        return array.argmax(axis=-1)
    if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
        raise ValueError(
            f"{name} must be integer labels (N,) or class scores (N, classes), got shape "
            f"{array.shape} and dtype {array.dtype}"
        )
    return array


def _class_names(class_names, count):
    if class_names is None:
        return [str(i) for i in range(count)]
    if len(class_names) < count:
        raise ValueError(f"class_names has {len(class_names)} names but there are {count} classes")
    return [str(name) for name in class_names]


def plot_confusion_matrix(y_true, y_pred, class_names=None, normalize: bool = False) -> Figure:
    """The confusion matrix: rows are true classes, columns predicted ones.

    Args:
        y_true: labels (N,) or one-hot rows (N, classes).
        y_pred: labels (N,) or class scores (N, classes), e.g. ``model.predict(x)``.
        class_names: names of the classes; default their indices.
        normalize: divide each row by its total (the per-class recall on the diagonal).

    Raises:
        ValueError: for labels of different lengths or of the wrong kind.
    """
    true, predicted = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if len(true) != len(predicted) or not len(true):
        raise ValueError(
            f"y_true and y_pred must have the same non-zero length, got {len(true)} "
            f"and {len(predicted)}"
        )
    scores = np.asarray(y_pred)
    count = max(
        int(true.max()) + 1,
        int(predicted.max()) + 1,
        scores.shape[-1] if scores.ndim == 2 else 0,
        len(class_names) if class_names is not None else 0,
    )
    names = _class_names(class_names, count)
    matrix = np.zeros((count, count), dtype="float64")
    np.add.at(matrix, (true, predicted), 1)
    accuracy = float(np.trace(matrix) / matrix.sum())
    if normalize:
        matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(3.0, 0.45 * count + 1.5)
    figure = Figure(figsize=(size + 0.8, size), layout="constrained")
    axis = figure.subplots()
    image = axis.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axis, shrink=0.8)
    axis.set_xticks(range(count), names, rotation=90, fontsize=8)
    axis.set_yticks(range(count), names, fontsize=8)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(f"accuracy {accuracy:.3f} on {len(true)} images", fontsize=10)
    if count <= _ANNOTATE_MAX_CLASSES:
        threshold = matrix.max() / 2
        for (row, column), value in np.ndenumerate(matrix):
            text = f"{value:.2f}" if normalize else str(int(value))
            axis.text(
                column,
                row,
                text,
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > threshold else "black",
            )
    return figure


def plot_predictions(images, y_true, y_pred, class_names=None, max_images: int = 25) -> Figure:
    """A grid of images titled with the predicted class (and its probability when ``y_pred``
    holds scores) and the true class; errors get a red title and a red frame.

    Args:
        images: (N, H, W, C).
        y_true: labels (N,) or one-hot rows.
        y_pred: labels (N,) or class probabilities (N, classes).
        class_names: names of the classes; default their indices.
        max_images: at most this many images (the first ones).

    Raises:
        ValueError: if the lengths differ or max_images is not positive.
    """
    images = np.asarray(images)
    true, predicted = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if not (len(images) == len(true) == len(predicted)) or not len(images):
        raise ValueError(
            f"got {len(images)} images, {len(true)} true and {len(predicted)} "
            "predicted labels; give one of each per image"
        )
    max_images = checks.positive_int("max_images", max_images)
    scores = np.asarray(y_pred)
    names = _class_names(class_names, max(int(true.max()), int(predicted.max())) + 1)
    shown = min(len(images), max_images)
    errors = int((true[:shown] != predicted[:shown]).sum())
    figure, axes = _figure(*_grid(shown), f"{errors} errors in {shown} images", extra_height=0.6)
    for index, axis in zip(range(shown), axes.flat):
        wrong = true[index] != predicted[index]
        title = names[predicted[index]]
        if scores.ndim == 2:
            title += f" ({scores[index, predicted[index]]:.2f})"
        title += f"\ntrue: {names[true[index]]}"
        _show(axis, images[index], title, color="red" if wrong else "black")
        if wrong:
            axis.axis("on")
            for spine in axis.spines.values():
                spine.set_color("red")
                spine.set_linewidth(3)
    return figure
