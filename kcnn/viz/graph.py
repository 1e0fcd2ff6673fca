"""Reading a model from the inside: the feature maps of named layers and the class scores
(logits), in one forward pass, for kcnn, Sequential, Keras Applications and transfer models.

Why this is not ``keras.Model(model.inputs, [layer.output, model.output])``: in a transfer model
the backbone is a nested ``keras.Model``, one layer of the outer model, and the symbolic output
of a layer inside it belongs to the backbone's own graph, so that line fails with "Graph
disconnected". Here the outer model is rebuilt with `keras.models.clone_model`, reusing its
layers (hence its weights), and each nested model that holds a wanted layer is called as a copy
of itself that also outputs that layer, recursively. The rebuilt models are cached per model
(weakly: they go when the model goes).

The class scores are logits: kcnn heads end in a ``logits`` Dense and a ``predictions``
softmax, Keras Applications in a Dense with the softmax inside; a score taken after the softmax
mixes in every other class (Selvaraju et al. 2017 use the score before it).
"""

from __future__ import annotations

import dataclasses
import weakref

import keras
import numpy as np

from kcnn import checks
from kcnn.models.introspect import (
    feature_map_layers,
    find_layer,
    gradcam_layer,
    has_feature_map,
    holds,
    output_layer,
)

_PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid", "log_softmax")
_TAPPED = weakref.WeakKeyDictionary()


@dataclasses.dataclass(frozen=True)
class ScoreSource:
    """Where a model's logits are read: the ``tap`` (a layer's ``"input"`` or ``"output"``),
    and, for a Dense layer with a softmax inside, that layer, whose affine part gives them."""

    tap: tuple
    dense: keras.layers.Dense | None = None

    def logits(self, tapped):
        """The logits, float32, from the value read at ``tap``."""
        x = keras.ops.cast(tapped, "float32")
        if self.dense is None:
            return x
        logits = keras.ops.matmul(x, keras.ops.cast(self.dense.kernel, "float32"))
        if self.dense.use_bias:
            logits = logits + keras.ops.cast(self.dense.bias, "float32")
        return logits


def feature_layer(model, name: str | None = None):
    """The layer called ``name`` (default: the model's Grad-CAM target), nested models searched.

    Raises:
        ValueError: if there is no such layer or its output is not a feature map; the message
            lists the convolutional layers (4D outputs) the model has.
    """
    if name is None:
        name = gradcam_layer(model)
        if name is None:
            raise ValueError(
                f"model {model.name!r} has no convolutional feature map (no layer with a 4D "
                "output) to explain"
            )
    try:
        layer = find_layer(model, name)
    except ValueError:
        layer = None
    if layer is None or not has_feature_map(layer):
        raise ValueError(
            f"layer={name!r}: model {model.name!r} has no convolutional layer of that name; its "
            f"convolutional layers (4D outputs) are: {', '.join(feature_map_layers(model))}"
        )
    return layer


def score_source(model) -> ScoreSource:
    """Where ``model``'s logits are: the input of a final softmax/sigmoid activation layer, the
    affine part of a final Dense layer with that activation inside, or else the output itself.

    Raises:
        ValueError: if the model's output is not (batch, classes), e.g. ``include_top=False``.
    """
    shape = tuple(model.outputs[0].shape)
    if len(shape) != 2:
        raise ValueError(
            f"model {model.name!r} outputs shape {shape}, not (batch, classes): class scores need "
            "a classifier head (build it with include_top=True)"
        )
    layer = output_layer(model)
    activation = getattr(getattr(layer, "activation", None), "__name__", None)
    if isinstance(layer, keras.layers.Softmax) or (
        isinstance(layer, keras.layers.Activation) and activation in _PROBABILITY_ACTIVATIONS
    ):
        return ScoreSource(tap=(layer, "input"))
    if isinstance(layer, keras.layers.Dense) and activation in _PROBABILITY_ACTIVATIONS:
        return ScoreSource(tap=(layer, "input"), dense=layer)
    return ScoreSource(tap=(layer, "output"))


def tapped_model(model, taps) -> keras.Model:
    """A model from ``model``'s input to ``[model output, *tapped values]`` sharing its weights.

    Args:
        model: a Functional or Sequential model with one input, possibly with nested models.
        taps: ``(layer, "input" | "output")`` pairs; the layers may be inside nested models.

    Raises:
        ValueError: for a subclassed model, several inputs, a layer the forward pass of the
            model does not go through, or one it goes through more than once (its value is then
            not one value: `kcnn.training.flip_averaged`'s view calls the model it wraps on the
            images and on their mirror images).
    """
    taps = tuple(taps)
    key = tuple((id(layer), where) for layer, where in taps)
    # Only the model asked for is a key: a cached nested model would be kept alive by its own
    # entry (the outer graph's nodes, reachable from the entry, refer to it).
    cache = _TAPPED.setdefault(model, {})
    if key not in cache:
        cache[key] = _build_tapped_model(model, taps)
    return cache[key]


class _TappedTwice(ValueError):
    """A tapped layer, or the nested model holding it, is called more than once."""


def _build_tapped_model(model, taps) -> keras.Model:
    if len(model.inputs) != 1:
        raise ValueError(f"model {model.name!r} has {len(model.inputs)} inputs; kcnn.viz needs one")
    captured = {}
    called = set()

    def call(layer, *args, **kwargs):
        inner = [tap for tap in taps if isinstance(layer, keras.Model) and holds(layer, tap[0])]
        if inner or any(tap[0] is layer for tap in taps):
            if id(layer) in called:
                raise _TappedTwice(
                    f"model {model.name!r} calls {layer.name!r} more than once (as a test-time "
                    "flip view calls the model it wraps on each image and on its mirror image), "
                    f"so {', '.join(repr(tap[0].name) for tap in inner) or repr(layer.name)} "
                    f"has no single value to explain: explain {layer.name!r} itself (the model "
                    "it wraps, or the file that model was saved to)"
                )
            called.add(id(layer))
        if inner:
            outputs = _build_tapped_model(layer, inner)(*args, **kwargs)
            captured.update(zip(inner, outputs[1:]))
            output = outputs[0]
        else:
            output = layer(*args, **kwargs)
        for tap in taps:
            if tap[0] is layer:
                captured[tap] = args[0] if tap[1] == "input" else output
        return output

    if isinstance(model, keras.Sequential):
        inputs = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype)
        output = inputs
        for layer in model.layers:
            output = call(layer, output)
    else:
        try:
            clone = keras.models.clone_model(
                model, clone_function=lambda layer: layer, call_function=call
            )
        except _TappedTwice:
            raise
        except ValueError as error:
            raise ValueError(
                f"model {model.name!r} ({type(model).__name__}) cannot be explained: kcnn.viz "
                f"reads Functional and Sequential models ({error})"
            ) from error
        inputs, output = clone.inputs[0], clone.outputs[0]
    missing = [layer.name for layer, where in taps if (layer, where) not in captured]
    if missing:
        raise ValueError(f"the forward pass of model {model.name!r} does not use layers {missing}")
    outputs = [output, *(captured[tap] for tap in taps)]
    return keras.Model(inputs, outputs, name=f"{model.name}_tapped")


def check_images(model, images) -> np.ndarray:
    """``images`` as a float32 batch (N, H, W, C) that fits ``model``'s input.

    Raises:
        ValueError: naming ``images`` and the shape received, for anything else; or if the
            model has no symbolic inputs (a subclassed model, an unbuilt Sequential model).
    """
    try:
        inputs, _ = model.inputs, model.outputs
    except AttributeError as error:
        raise ValueError(
            f"model {model.name!r} ({type(model).__name__}) has no symbolic inputs and outputs: "
            "kcnn.viz reads Functional models and Sequential models that start with keras.Input"
        ) from error
    expected = tuple(inputs[0].shape[1:])
    array = np.asarray(images, dtype="float32")
    if array.ndim != 4:
        raise ValueError(
            f"images must be a batch of shape (N, height, width, channels), got shape "
            f"{array.shape}; for one image pass image[None]"
        )
    if len(array) == 0:
        raise ValueError("images is an empty batch")
    if any(want is not None and want != got for want, got in zip(expected, array.shape[1:])):
        raise ValueError(
            f"images of shape {array.shape[1:]} do not fit model {model.name!r}, whose input is "
            f"{expected}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError("images contain NaN or infinite values")
    return array


def to_numpy(tensor) -> np.ndarray:
    """A backend tensor as a float32 NumPy array (bfloat16 and float16 included)."""
    return keras.ops.convert_to_numpy(tensor).astype("float32")


def batches(count: int, batch_size: int):
    """Slices that cut ``count`` items into batches of at most ``batch_size``."""
    batch_size = checks.positive_int("batch_size", batch_size)
    return [slice(start, start + batch_size) for start in range(0, count, batch_size)]


def feature_maps(model, images, layers=None, batch_size: int = 32) -> dict:
    """The activations of ``layers`` (names, nested models searched) for a batch of images.

    Args:
        model: a kcnn, Sequential, Keras Applications or transfer model.
        images: float array (N, H, W, C) as the model takes it.
        layers: layer names; default the model's Grad-CAM target.
        batch_size: images per forward pass.

    Returns:
        ``{name: float32 array (N, h, w, channels)}`` in the order of ``layers``.

    Raises:
        ValueError: for a bad batch or a name that is not a convolutional layer (the message
            lists those there are).

    Example:
        >>> maps = feature_maps(model, x_test[:4], ["stage1_conv", "stage2_conv"])
    """
    images = check_images(model, images)
    if layers is None or isinstance(layers, str):
        layers = [layers]
    found = [feature_layer(model, name) for name in layers]
    tapped = tapped_model(model, [(layer, "output") for layer in found])
    chunks = [tapped(images[part], training=False)[1:] for part in batches(len(images), batch_size)]
    return {
        layer.name: np.concatenate([to_numpy(chunk[i]) for chunk in chunks])
        for i, layer in enumerate(found)
    }
