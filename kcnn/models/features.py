"""Finding a model's stage outputs and its Grad-CAM target layer by name.

kcnn builders name the layers of feature stage ``i`` ``stage{i}_...``; the output of a stage is
the output of its last layer, and the Grad-CAM target is the last layer of the last stage that is
neither pooling nor dropout (the last convolutional feature map at full resolution; a dropout
layer is the identity at inference and would only hide the layer that made the map). For models
that do not follow the convention (Sequential models, Keras Applications), the target is the last
layer with a 4D output that is not pooling; nested sub-models (a backbone inside a transfer model)
are searched too.
"""

from __future__ import annotations

import re

import keras

_STAGE = re.compile(r"^stage(\d+)_")
_NOT_TARGETS = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.ZeroPadding2D,
    keras.layers.Dropout,  # SpatialDropout2D too
)


def _stage_layers(model) -> dict[int, list]:
    stages: dict[int, list] = {}
    for layer in model.layers:
        match = _STAGE.match(layer.name)
        if match:
            stages.setdefault(int(match.group(1)), []).append(layer)
    return dict(sorted(stages.items()))


def stage_outputs(model) -> dict:
    """The output tensor of every feature stage, ``{"stage1": tensor, ...}`` in order.

    Example:
        >>> extractor = keras.Model(model.inputs, stage_outputs(model))
    """
    return {f"stage{i}": layers[-1].output for i, layers in _stage_layers(model).items()}


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


def _is_4d(layer) -> bool:
    try:
        return len(layer.output.shape) == 4
    except (AttributeError, ValueError):
        return False


def gradcam_layer(model) -> str | None:
    """Name of the layer whose feature maps Grad-CAM should use, or None if there is none.

    For a layer inside a nested sub-model the name is that of the inner layer; use
    `find_layer` to get it.
    """
    stages = _stage_layers(model)
    if stages:
        candidates = [
            layer for layer in list(stages.values())[-1] if not isinstance(layer, _NOT_TARGETS)
        ]
        if candidates:
            return candidates[-1].name
    for layer in reversed(model.layers):
        if isinstance(layer, keras.Model):
            inner = gradcam_layer(layer)
            if inner is not None:
                return inner
        elif _is_4d(layer) and not isinstance(layer, _NOT_TARGETS) and not isinstance(
            layer, keras.layers.InputLayer
        ):
            return layer.name
    return None


def find_layer(model, name: str):
    """The layer called ``name`` in ``model`` or in any model nested inside it.

    Raises:
        ValueError: if there is none; the message lists the layers with 4D outputs.
    """
    for layer in model.layers:
        if layer.name == name:
            return layer
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            try:
                return find_layer(layer, name)
            except ValueError:
                pass
    conv_like = [layer.name for layer in model.layers if _is_4d(layer)]
    raise ValueError(
        f"model {model.name!r} has no layer named {name!r}; layers with feature maps: "
        f"{', '.join(conv_like) or 'none'}"
    )
