"""Data augmentation from Keras preprocessing layers: presets, a RandomResizedCrop layer, and
MixUp / CutMix for batches.

The presets follow the course's list (Listing 6: random resized crop, horizontal flip, color
jitter, rotation by up to 15 degrees) and its "translation". They are lists of Keras
preprocessing layers, so the same augmentation runs in a tf.data pipeline on the CPU
(`kcnn.data.make_dataset(augment=...)`) or inside a model, on the accelerator
(`augmentation_layers`), which is the better place on a GPU.

This module uses ``keras`` and ``keras.ops`` only (no TensorFlow import), so
`RandomResizedCrop` (defined in `kcnn.layers.preprocessing` with kcnn's other saveable layers)
also runs inside models on the JAX and PyTorch backends.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from kcnn import checks
from kcnn.data.augment_presets import PRESETS
from kcnn.data.info import check_image_size
from kcnn.layers.preprocessing import RandomResizedCrop

__all__ = ["PRESETS", "RandomResizedCrop", "augmentation_layers", "label_mixing"]

# Seeds seed .. seed + LAYER_SEEDS - 1 belong to the augmentation layers, one each: Keras random
# layers given the same seed draw the same numbers, so whatever else a pipeline seeds (label
# mixing) starts past them.
LAYER_SEEDS = 100


def augmentation_layers(
    augment="standard",
    image_size=None,
    channels: int = 3,
    seed: int = 0,
    value_range=(0, 255),
    erasing: float | None = None,
    dtype=None,
) -> list:
    """The augmentation layers of a preset, for a tf.data pipeline or the start of a model.

    Presets (see `PRESETS`):

    - ``"none"``: no layers.
    - ``"flip"``: horizontal flip only, at next to no cost (measured with `fashion-fast` in
      `benchmarks/README.md`).
    - ``"light"``: horizontal flip, translation by up to 10%. Augmentation that strong needs
      epochs to pay off: in a 15-epoch Fashion-MNIST run it cost 0.9 points against flips
      alone (`benchmarks/README.md`, "Toward 93.5 %").
    - ``"standard"``: `RandomResizedCrop` (35-100% of the area), horizontal flip, rotation by
      up to 15 degrees, brightness (additive, up to 20% of the range), contrast (x0.8-1.2) and,
      for RGB, saturation (about x0.8-1.2): the course's Listing 6.
    - ``"strong"``: `RandomResizedCrop` (8-100%), flip, rotation 15 degrees, translation 10%,
      color 0.4, and RandomErasing (Zhong et al., AAAI 2020) with probability 0.25.

    RandomErasing (here and with ``erasing=``) is Keras's `keras.layers.RandomErasing`, which
    departs from the paper twice: it fills the patch with Gaussian noise of standard deviation
    the top of ``value_range`` (255 on raw pixels) clipped to the range, so about half of the
    patch's pixels are 0 and a sixth are 255, where the paper draws each pixel uniformly from the
    range; and it draws the patch's height and width fractions independently (each the square
    root of a uniform draw in [0.02, 0.33]) where the paper draws its area (2-40 %) and aspect
    ratio (0.3-3.3). `fashion-best`'s measured accuracy is with Keras's version.

    Horizontal flips suit photos and clothes, not digits or text: for those, pass a list of
    layers. MixUp and CutMix mix labels too, so they cannot run inside a model: they are
    `kcnn.data.make_dataset`'s ``mixup=`` and ``cutmix=`` (see `label_mixing`).

    Args:
        augment: a preset name, or a list of Keras layers (returned as a list, checked).
        image_size: ``(height, width)`` (or an int) of the images; needed by the presets with
            a `RandomResizedCrop`.
        channels: 1 (grayscale) or 3 (RGB); saturation applies to RGB only.
        seed: base seed; each layer gets its own seed derived from it.
        value_range: the range of the pixel values the layers receive (``(0, 255)`` for raw
            pixels; the color layers clip to it).
        erasing: probability of RandomErasing, overriding the preset's (0 to turn it off).
        dtype: the layers' dtype policy (``None``: the global one; `kcnn.data.make_dataset`
            uses ``"float32"`` so a mixed precision policy does not reach the pipeline).

    Returns:
        A list of Keras preprocessing layers with explicit names (``augment_flip``...). In a
        model: ``x = inputs`` then ``x = layer(x)`` for each; they are active only in training.

    Raises:
        ValueError: for an unknown preset, a preset that needs ``image_size`` without one,
            ``channels`` other than 1 or 3, or a list holding something that is not a layer.

    Example:
        >>> inputs = keras.Input((32, 32, 3))
        >>> x = inputs
        >>> for layer in augmentation_layers("standard", image_size=32):
        ...     x = layer(x)
    """
    if isinstance(augment, (list, tuple)):
        for layer in augment:
            if not isinstance(layer, layers.Layer):
                raise ValueError(f"augment must hold Keras layers, got {type(layer).__name__}")
        return list(augment)
    if augment not in PRESETS:
        raise ValueError(
            f"augment must be one of {tuple(PRESETS)} or a list of Keras layers, got {augment!r}"
        )
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    options = dict(PRESETS[augment])
    if erasing is not None:
        options["erasing"] = checks.probability("erasing", erasing)
    seeds = iter(range(seed, seed + LAYER_SEEDS))
    result = []
    if "crop_scale" in options:
        height, width = _size(image_size, augment)
        result.append(
            RandomResizedCrop(
                height,
                width,
                scale=options["crop_scale"],
                seed=next(seeds),
                name="augment_random_resized_crop",
                dtype=dtype,
            )
        )
    if options.get("flip"):
        result.append(
            layers.RandomFlip("horizontal", seed=next(seeds), name="augment_flip", dtype=dtype)
        )
    if options.get("rotation"):
        result.append(
            layers.RandomRotation(
                options["rotation"] / 360.0,
                fill_mode="constant",
                seed=next(seeds),
                name="augment_rotation",
                dtype=dtype,
            )
        )
    if options.get("translation"):
        result.append(
            layers.RandomTranslation(
                options["translation"],
                options["translation"],
                fill_mode="constant",
                seed=next(seeds),
                name="augment_translation",
                dtype=dtype,
            )
        )
    if options.get("color"):
        result += _color_layers(options["color"], channels, value_range, seeds, dtype)
    if options.get("erasing"):
        result.append(
            layers.RandomErasing(
                factor=(options["erasing"], options["erasing"]),
                value_range=value_range,
                seed=next(seeds),
                name="augment_erasing",
                dtype=dtype,
            )
        )
    return result


def _color_layers(strength: float, channels: int, value_range, seeds, dtype) -> list:
    """Brightness, contrast and (RGB) saturation jitter of ``strength`` (torchvision's
    ``ColorJitter(brightness, contrast, saturation)`` with Keras layers)."""
    color = [
        layers.RandomBrightness(
            strength,
            value_range=value_range,
            seed=next(seeds),
            name="augment_brightness",
            dtype=dtype,
        ),
        layers.RandomContrast(
            strength,
            value_range=value_range,
            seed=next(seeds),
            name="augment_contrast",
            dtype=dtype,
        ),
    ]
    if channels == 3:
        # Keras's saturation factor f scales saturation by f / (1 - f): 0.5 leaves it unchanged.
        low, high = (1.0 - strength) / (2.0 - strength), (1.0 + strength) / (2.0 + strength)
        color.append(
            layers.RandomSaturation(
                (low, high),
                value_range=value_range,
                seed=next(seeds),
                name="augment_saturation",
                dtype=dtype,
            )
        )
    return color


def _size(image_size, augment) -> tuple:
    if image_size is None:
        raise ValueError(
            f"augment={augment!r} needs image_size=(height, width) for its RandomResizedCrop"
        )
    return check_image_size(image_size)


class _PastedAreaCutMix(layers.CutMix):
    """Keras's ``CutMix``, with each label weighted by the share of pixels actually pasted.

    Keras weighs the labels by the area of the box it draws with fractional corners, but pastes
    whole pixels, so on small images the label and the pasted share differ by several points;
    Yun et al.'s code weighs them by the pasted pixel box. Only for batches in a pipeline
    (labels cannot mix inside a model), so it is not registered for saving.
    """

    def transform_labels(self, labels, transformation, training=True):
        if training and transformation is not None:
            masks = self.backend.cast(transformation["batch_masks"], self.compute_dtype)
            pasted = self.backend.numpy.mean(masks, axis=(1, 2, 3))
            transformation = {**transformation, "mix_weight": 1.0 - pasted}
        return super().transform_labels(labels, transformation, training)


def label_mixing(
    mixup: float | None = None, cutmix: float | None = None, seed: int = 0, dtype=None
):
    """A function that mixes a batch of images and one-hot labels with MixUp and/or CutMix.

    MixUp (Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018) blends pairs of
    images and their labels with a weight drawn from Beta(alpha, alpha); CutMix (Yun et al.,
    ICCV 2019) pastes a box of one image into another and mixes the labels by the share of
    pixels pasted. With both, each batch gets one of the two at random, as timm does. Keras's
    ``MixUp`` and ``CutMix`` layers do the work (CutMix's label weight corrected: see
    `_PastedAreaCutMix`).

    Args:
        mixup: MixUp's alpha, or ``None``.
        cutmix: CutMix's alpha, or ``None``.
        seed: seed of the mixing.
        dtype: the layers' dtype policy (``None``: the global one).

    Returns:
        ``mix(images, labels) -> (images, labels)`` on a batch ``(N, H, W, C)`` of float images
        and ``(N, classes)`` float one-hot labels; ``None`` when both are ``None``.

    Raises:
        ValueError: when an alpha is not a positive number.
    """
    for name, alpha in (("mixup", mixup), ("cutmix", cutmix)):
        if alpha is not None:
            checks.positive_number(name, alpha)
    mixers = []
    if mixup is not None:
        mixers.append(
            layers.MixUp(alpha=float(mixup), seed=seed, name="augment_mixup", dtype=dtype)
        )
    if cutmix is not None:
        alpha = float(cutmix)
        mixers.append(
            _PastedAreaCutMix(
                factor=(alpha, alpha), seed=seed + 1, name="augment_cutmix", dtype=dtype
            )
        )
    if not mixers:
        return None
    chooser = keras.random.SeedGenerator(seed + 2)

    def mix(images, labels):
        outputs = [mixer({"images": images, "labels": labels}) for mixer in mixers]
        if len(outputs) == 1:
            return outputs[0]["images"], outputs[0]["labels"]
        use_first = keras.random.uniform((), seed=chooser) < 0.5
        return (
            ops.where(use_first, outputs[0]["images"], outputs[1]["images"]),
            ops.where(use_first, outputs[0]["labels"], outputs[1]["labels"]),
        )

    return mix
