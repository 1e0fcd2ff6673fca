"""Feature extractors: models from a model's inputs to its stage outputs.

The searches they rely on (stage outputs, the Grad-CAM target, a layer by name) live in
`kcnn.models.introspect` and are re-exported here, their former home.
"""

from __future__ import annotations

import keras

from kcnn.models.introspect import find_layer, gradcam_layer, stage_outputs

__all__ = ["feature_extractor", "find_layer", "gradcam_layer", "stage_outputs"]


def feature_extractor(model, stages=None) -> keras.Model:
    """A model from ``model``'s inputs to a dict of its stage outputs (all, or ``stages``).

    Raises:
        ValueError: if the model has no named stages, or a requested stage does not exist.
    """
    outputs = stage_outputs(model)
    if not outputs:
        raise ValueError(f"model {model.name!r} has no layers named 'stage<i>_...'")
    if stages is not None:
        missing = [s for s in stages if s not in outputs]
        if missing:
            raise ValueError(f"unknown stages {missing}; model {model.name!r} has {list(outputs)}")
        outputs = {s: outputs[s] for s in stages}
    return keras.Model(model.inputs, outputs, name=f"{model.name}_features")
