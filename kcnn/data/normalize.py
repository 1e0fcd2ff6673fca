"""Pixel normalisation: per-dataset standardisation, [0, 1] scaling, or the ``preprocess_input``
of a Keras Applications backbone."""

from __future__ import annotations

import difflib

import tensorflow as tf

from kcnn.data.info import DatasetInfo

NORMALIZATIONS = ("standardize", "unit", None)
# tf.image.rgb_to_grayscale's weights (ITU-R BT.601 luma).
GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)


def backbone_names() -> dict:
    """``{normalised name: keras.applications module}`` for every Keras Applications model
    and module: ``resnet50``, ``resnet50v2``, ``efficientnetb0``, ``mobilenetv3small``,
    ``convnexttiny``, ``vgg16``, ... (lower case, without ``_`` or ``-``)."""
    import keras

    table = {}
    for module_name in dir(keras.applications):
        module = getattr(keras.applications, module_name)
        if module_name.startswith("_") or not hasattr(module, "preprocess_input"):
            continue
        table.setdefault(_normalised(module_name), module)
        for attribute in dir(module):
            if attribute[:1].isupper() and attribute in dir(keras.applications):
                table.setdefault(_normalised(attribute), module)
    return table


def _normalised(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def backbone_preprocess(backbone: str):
    """The ``preprocess_input`` of the Keras Applications model ``backbone``.

    It takes pixels in [0, 255] (RGB) and gives what the model's ImageNet weights expect:
    BGR minus the ImageNet mean for VGG and ResNet ("caffe"), [-1, 1] for MobileNet and
    Inception ("tf"), ImageNet mean/std for DenseNet ("torch"), unchanged for EfficientNet
    and ConvNeXt, whose models normalise inside.

    Args:
        backbone: a model or module name, in any case, with or without underscores:
            ``"ResNet50"``, ``"resnet50_v2"``, ``"efficientnet_b0"``, ``"mobilenet_v2"``.

    Raises:
        ValueError: for an unknown name, with the closest ones.
    """
    table = backbone_names()
    key = _normalised(backbone)
    if key not in table:
        close = difflib.get_close_matches(key, list(table), n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"normalize={backbone!r} is neither 'standardize', 'unit', None, (mean, std) nor a "
            f"Keras Applications model name.{hint}"
        )
    return table[key].preprocess_input


def convert_statistics(mean, std, to_channels: int) -> tuple:
    """Per-channel ``(mean, std)`` of images converted to ``to_channels`` channels.

    Gray to RGB repeats them (exact). RGB to gray weights them with the luma weights of
    ``tf.image.rgb_to_grayscale``: exact for the mean, an upper bound for the standard
    deviation (equal when the channels are perfectly correlated, nearly so in photos).
    ``None`` statistics stay ``None``.
    """
    if mean is None or std is None or len(mean) == to_channels:
        return mean, std
    if len(mean) == 1:
        return tuple(mean) * to_channels, tuple(std) * to_channels
    return (
        (sum(w * m for w, m in zip(GRAY_WEIGHTS, mean)),),
        (sum(w * s for w, s in zip(GRAY_WEIGHTS, std)),),
    )


def normalizer(normalize, info: DatasetInfo):
    """A function mapping float32 images in [0, 255] to normalised float32 images.

    Args:
        normalize: ``"standardize"`` (``(x / 255 - mean) / std`` with ``info``'s training
            statistics), ``"unit"`` (``x / 255``), a ``(mean, std)`` pair in [0, 1] units
            (one value or one per channel each), a Keras Applications model name (its
            ``preprocess_input``, see `backbone_preprocess`), or ``None`` (unchanged, 0-255).
        info: the description of the images normalised (their channels, mean and std).

    Raises:
        ValueError: for an unknown ``normalize``, or ``"standardize"`` when ``info`` has no
            statistics.
    """
    if normalize is None:
        return lambda images: images
    if isinstance(normalize, str) and normalize == "unit":
        return lambda images: images / 255.0
    if isinstance(normalize, str) and normalize == "standardize":
        if info.mean is None or info.std is None:
            raise ValueError(
                f"normalize='standardize' needs the mean and std of {info.name}, which are not "
                "known: pass normalize='unit' or normalize=(mean, std)"
            )
        return _standardizer(info.mean, info.std)
    if isinstance(normalize, str):
        preprocess = backbone_preprocess(normalize)
        return lambda images: preprocess(images)
    if isinstance(normalize, (tuple, list)) and len(normalize) == 2:
        mean, std = (_as_tuple(values) for values in normalize)
        if len(mean) != len(std) or len(mean) not in (1, info.channels) or min(std) <= 0:
            raise ValueError(
                f"normalize=(mean, std) needs 1 or {info.channels} values each and std > 0, "
                f"got {normalize!r}"
            )
        return _standardizer(mean, std)
    raise ValueError(
        f"normalize must be 'standardize', 'unit', None, (mean, std) or a Keras Applications "
        f"model name, got {normalize!r}"
    )


def _as_tuple(values) -> tuple:
    if isinstance(values, (int, float)):
        return (float(values),)
    return tuple(float(v) for v in values)


def _standardizer(mean, std):
    offset = tf.constant(mean, tf.float32) * 255.0
    scale = 1.0 / (tf.constant(std, tf.float32) * 255.0)
    return lambda images: (images - offset) * scale
