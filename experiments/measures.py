"""Measurements several experiments make on a trained model: its accuracy on arrays of images,
its accuracy after magnitude pruning, and the statistics of its activations.

Import it from a script of this folder, like `common`: ``from measures import ...``.
"""

from __future__ import annotations

import contextlib

import numpy as np

from kcnn import checks

PRUNING_LEVELS = (0.5, 0.75, 0.9)  # fractions of each kernel's weights set to zero


def predictions(model, images, batch_size: int = 256) -> np.ndarray:
    """The class ``model`` predicts for each image (raw 0-255 pixels), in inference mode."""
    import keras

    found = []
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start : start + batch_size], dtype="float32")
        found.append(keras.ops.convert_to_numpy(model(batch, training=False)).argmax(axis=-1))
    return np.concatenate(found)


def accuracy(model, images, labels) -> float:
    """The share of ``images`` that ``model`` classifies as ``labels``."""
    return float(np.mean(predictions(model, images) == np.asarray(labels)))


@contextlib.contextmanager
def pruned(model, fraction: float, layer_names=None):
    """Inside the block, ``model`` with the ``fraction`` of smallest-magnitude weights of each
    kernel set to zero (magnitude pruning, Han et al., "Learning both Weights and Connections
    for Efficient Neural Networks", NeurIPS 2015); the weights are restored on exit.

    The kernels are those `kcnn.training.regularize_kernels` penalises (convolutions and dense
    layers, never biases nor normalization parameters), each pruned on its own.

    Args:
        model: a built Keras model.
        fraction: in [0, 1): the share of each kernel's weights set to zero.
        layer_names: prune only the layers of these names (None: every kernel).

    Raises:
        ValueError: for a fraction outside [0, 1), or a layer name the model lacks.
    """
    from kcnn.training.optimization import model_kernels

    fraction = checks.fraction("fraction", fraction)
    kernels = [
        (layer, kernel)
        for layer, kernel, _ in model_kernels(model)
        if layer_names is None or layer.name in layer_names
    ]
    missing = set(layer_names or ()) - {layer.name for layer, _ in kernels}
    if missing:
        raise ValueError(f"layer_names: the model has no kernel in {sorted(missing)}")
    saved = [np.array(kernel.numpy()) for _, kernel in kernels]
    try:
        for (_, kernel), weights in zip(kernels, saved):
            count = int(round(fraction * weights.size))
            if count:
                threshold = np.sort(np.abs(weights), axis=None)[count - 1]
                kernel.assign(np.where(np.abs(weights) <= threshold, 0, weights))
        yield model
    finally:
        for (_, kernel), weights in zip(kernels, saved):
            kernel.assign(weights)


def pruned_accuracy(model, images, labels, levels=PRUNING_LEVELS, layer_names=None) -> dict:
    """``{level: accuracy}`` of ``model`` with each pruning level (0 included: unpruned)."""
    result = {}
    for level in (0.0, *levels):
        with pruned(model, level, layer_names):
            result[level] = accuracy(model, images, labels)
    return result


def activation_statistics(model, images, layer_names, training: bool) -> dict:
    """``{layer name: (mean, std)}`` of the outputs of ``layer_names`` on ``images``.

    With ``training=True`` the normalization layers use the batch's statistics, as they do
    while training; their moving averages, which such a call updates, are put back, so the
    model is left as it was.
    """
    import keras

    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in layer_names])
    kept = [np.array(v.numpy()) for v in model.non_trainable_variables]
    outputs = probe([np.asarray(images, dtype="float32")], training=training)
    for variable, value in zip(model.non_trainable_variables, kept):
        variable.assign(value)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    result = {}
    for name, output in zip(layer_names, outputs):
        values = keras.ops.convert_to_numpy(output).astype("float64")
        result[name] = (float(values.mean()), float(values.std()))
    return result


def first_epoch_accuracy(runs) -> list[float]:
    """Per run (a `common.run` record): the validation accuracy after the first epoch. A run
    that diverged within it has none and counts 0.0 (NaN outputs are every one wrong), so each
    seed stays in the comparison."""
    return [r["val_accuracy"][0] if r["val_accuracy"] else 0.0 for r in runs]


def largest_drop(runs) -> list[float]:
    """Per run (a `common.run` record): the largest fall of validation accuracy below its best
    earlier value, the instability of training that batch normalization is said to remove.

    A run that diverged counts as the largest fall there is, 1.0: its curve stops at the last
    epoch before the loss became NaN (`kcnn.training.train` stops there), so it would look
    steady when it fell the furthest.
    """
    drops = []
    for r in runs:
        if r["diverged"]:
            drops.append(1.0)
            continue
        best, drop = 0.0, 0.0
        for v in r["val_accuracy"]:
            best = max(best, v)
            drop = max(drop, best - v)
        drops.append(drop)
    return drops
