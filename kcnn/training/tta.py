"""Test-time augmentation by mirroring: a classifier's prediction on an image combined with
its prediction on the image's mirror image.

AlexNet (Krizhevsky et al., NIPS 2012) averaged its softmax over ten crops and their
horizontal reflections at test time; the mirror image alone keeps most of that gain for one
extra forward pass. It suits the data that flip augmentation suits, whose classes a left-right
flip keeps (clothes, objects), not text or digits.
"""

from __future__ import annotations

import keras

from kcnn.training.optimization import outputs_probabilities

# Floor under a probability before its logarithm, so that a class given exactly zero in one view
# is not -inf in the average.
_TINY = 1e-12


def flip_averaged(model: keras.Model) -> keras.Model:
    """A view of ``model`` whose prediction combines those on each image and on its mirror.

    The two predictions are averaged in log space, then a softmax gives probabilities: the
    logits of a model that outputs logits are averaged, and the probabilities of a model that
    ends in a softmax are combined by their normalised geometric mean. The view ends in a
    softmax whichever ``model`` is, so `classification_loss` fits it.

    The view shares ``model``'s layers and weights (nothing is copied), and saves and loads like
    any model (`kcnn.load_model`).

    Args:
        model: a classifier taking a batch of images (in ``keras.config.image_data_format()``,
            channels last by default) and returning logits or softmax probabilities.

    Raises:
        ValueError: when ``model`` ends in another activation, or does not take one 4-D input.
    """
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise ValueError(
            f"model {model.name!r} must take one batch of 2-D images with channels, got inputs "
            f"{[tuple(tensor.shape) for tensor in model.inputs]}"
        )
    probabilities = outputs_probabilities(model)
    width_axis = 2 if keras.config.image_data_format() == "channels_last" else 3
    images = keras.Input(model.inputs[0].shape[1:], dtype=model.inputs[0].dtype, name="images")
    views = [model(images), model(keras.ops.flip(images, axis=width_axis))]
    logs = [keras.ops.cast(view, "float32") for view in views]
    if probabilities:
        logs = [keras.ops.log(keras.ops.maximum(view, _TINY)) for view in logs]
    average = keras.layers.Average(name="mean_log_probability", dtype="float32")(logs)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="predictions")(average)
    return keras.Model(images, outputs, name=f"{model.name}_flip_averaged")
