"""How sparse a model's kernels are: the share of weights that are (nearly) zero, the visible
effect of L1 regularization (and of pruning-friendly training such as `TargetedDropout`)."""

from __future__ import annotations

import keras
import numpy as np

from kcnn import checks
from kcnn.training.optimization import model_kernels

SPARSITY_THRESHOLD = 1e-3


def kernel_sparsity(model, threshold: float = SPARSITY_THRESHOLD) -> dict:
    """The fraction of ``model``'s kernel weights with ``|w| < threshold``, over the whole model
    and per layer.

    The kernels are those `kcnn.training.regularize_kernels` penalises: the convolutions' and
    dense layers' (depthwise and pointwise kernels included), never biases nor normalization
    parameters.

    Args:
        model: a built Keras model.
        threshold: the magnitude under which a weight counts as zero (> 0).

    Returns:
        ``{"threshold": ..., "overall": fraction, "layers": {layer name: fraction}}``; the
        overall fraction is None for a model without kernels.

    Raises:
        ValueError: when ``threshold`` is not a positive number.

    Example:
        >>> kernel_sparsity(model)["overall"]
        0.42
    """
    threshold = checks.positive_number("threshold", threshold)
    counts = {}
    for layer, kernel, _ in model_kernels(model):
        weights = np.abs(keras.ops.convert_to_numpy(kernel))
        small, total = counts.get(layer.name, (0, 0))
        counts[layer.name] = (
            small + int(np.count_nonzero(weights < threshold)),
            total + weights.size,
        )
    small = sum(s for s, _ in counts.values())
    total = sum(t for _, t in counts.values())
    return {
        "threshold": threshold,
        "overall": small / total if total else None,
        "layers": {name: s / t for name, (s, t) in counts.items()},
    }
