"""Data augmentation from Keras preprocessing layers: presets, a RandomResizedCrop layer, and
MixUp / CutMix for batches.

The presets follow the course's list (Listing 6: random resized crop, horizontal flip, color
jitter, rotation by up to 15 degrees) and its "translation". They are lists of Keras
preprocessing layers, so the same augmentation runs in a tf.data pipeline on the CPU
(`kcnn.data.make_dataset(augment=...)`) or inside a model, on the accelerator
(`augmentation_layers`), which is the better place on a GPU.

This module uses ``keras`` and ``keras.ops`` only (no TensorFlow import), so
`RandomResizedCrop` also runs inside models on the JAX and PyTorch backends.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from kcnn import checks
from kcnn.data.info import check_image_size

__all__ = ["PRESETS", "RandomResizedCrop", "augmentation_layers", "label_mixing"]

# What each preset does. crop_scale: RandomResizedCrop's area range (torchvision's default
# (0.08, 1) is for 224-px ImageNet crops; "standard" keeps at least 35% of a small image);
# rotation: degrees; translation: fraction of the size; color: brightness, contrast and
# saturation strength; erasing: probability of RandomErasing.
PRESETS = {
    "none": {},
    "light": {"flip": True, "translation": 0.1},
    "standard": {"crop_scale": (0.35, 1.0), "flip": True, "rotation": 15.0, "color": 0.2},
    "strong": {
        "crop_scale": (0.08, 1.0), "flip": True, "rotation": 15.0, "translation": 0.1,
        "color": 0.4, "erasing": 0.25,
    },
}
CROP_ATTEMPTS = 10  # torchvision's number of tries before falling back to a center crop


@keras.saving.register_keras_serializable(package="kcnn")
class RandomResizedCrop(layers.Layer):
    """Crop a random part of each image and resize it to ``(height, width)``.

    The crop is sampled as torchvision's ``RandomResizedCrop`` samples it (the "Inception"
    crop of Szegedy et al., "Going Deeper with Convolutions", CVPR 2015): an area of
    ``scale`` times the image's, an aspect ratio drawn log-uniformly from ``ratio``, rounded
    to whole pixels; up to 10 tries per image for a crop that fits, else a center crop clamped
    to ``ratio``. Keras has no such layer; this one is written with ``keras.ops`` and draws
    one crop per image of a batch, applied with ``keras.ops.image.affine_transform`` (a
    bilinear zoom onto the crop, pixel-center aligned as ``tf.image.resize``), then resized
    to ``(height, width)`` when the input has another size.

    At inference (``training=False``) the image is center-cropped to the aspect ratio of
    ``(height, width)`` and resized, as torchvision's evaluation transform does.

    The crop is computed in float32 and returned in the layer's compute dtype (bfloat16 under
    a mixed precision policy).

    Args:
        height: output height.
        width: output width.
        scale: ``(min, max)`` area of the crop as a fraction of the image's, in (0, 1].
        ratio: ``(min, max)`` aspect ratio (width / height) of the crop.
        interpolation: ``"bilinear"`` or ``"nearest"``.
        seed: seed of the random crops.

    Example:
        >>> crop = RandomResizedCrop(32, 32, scale=(0.35, 1.0), seed=0)
        >>> crop(keras.ops.ones((4, 40, 40, 3))).shape
        (4, 32, 32, 3)
    """

    def __init__(
        self,
        height,
        width,
        scale=(0.08, 1.0),
        ratio=(3.0 / 4.0, 4.0 / 3.0),
        interpolation="bilinear",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.height = checks.positive_int("height", height)
        self.width = checks.positive_int("width", width)
        self.scale = _check_range("scale", scale, upper=1.0)
        self.ratio = _check_range("ratio", ratio)
        if interpolation not in ("bilinear", "nearest"):
            raise ValueError(
                f"interpolation must be 'bilinear' or 'nearest', got {interpolation!r}"
            )
        self.interpolation = interpolation
        self.seed = None if seed is None else checks.integer("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def get_random_transformation(self, images):
        """Sample one crop per image of the batch ``images`` ``(N, H, W, C)``.

        Returns:
            A dict of float32 ``(N,)`` tensors: ``top``, ``left``, ``height``, ``width`` of each
            crop, in pixels of the input.
        """
        shape = ops.shape(images)
        batch = shape[0]
        image_height = ops.cast(shape[1], "float32")
        image_width = ops.cast(shape[2], "float32")
        area = image_height * image_width
        draws = (batch, CROP_ATTEMPTS)
        scale = keras.random.uniform(draws, self.scale[0], self.scale[1], seed=self.seed_generator)
        log_ratio = keras.random.uniform(
            draws, math.log(self.ratio[0]), math.log(self.ratio[1]), seed=self.seed_generator
        )
        aspect = ops.exp(log_ratio)
        crop_width = ops.round(ops.sqrt(area * scale * aspect))
        crop_height = ops.round(ops.sqrt(area * scale / aspect))
        fits = ops.logical_and(
            ops.logical_and(crop_width >= 1, crop_width <= image_width),
            ops.logical_and(crop_height >= 1, crop_height <= image_height),
        )
        first = ops.expand_dims(ops.argmax(ops.cast(fits, "int32"), axis=1), 1)
        found = ops.any(fits, axis=1)
        fallback_height, fallback_width = self._center_crop_size(image_height, image_width)
        crop_height = ops.where(
            found, ops.take_along_axis(crop_height, first, axis=1)[:, 0], fallback_height
        )
        crop_width = ops.where(
            found, ops.take_along_axis(crop_width, first, axis=1)[:, 0], fallback_width
        )
        top = self._offset(image_height, crop_height, found, batch)
        left = self._offset(image_width, crop_width, found, batch)
        return {"top": top, "left": left, "height": crop_height, "width": crop_width}

    def _center_crop_size(self, image_height, image_width):
        """torchvision's fallback: the whole image, clamped to the ratio range."""
        in_ratio = image_width / image_height
        too_narrow = in_ratio < self.ratio[0]
        too_wide = in_ratio > self.ratio[1]
        height = ops.where(
            too_narrow, ops.round(image_width / self.ratio[0]), image_height
        )
        width = ops.where(too_wide, ops.round(image_height * self.ratio[1]), image_width)
        return height, width

    def _offset(self, image_size, crop_size, found, batch):
        """A uniform integer offset in ``[0, image_size - crop_size]``; centered if not found."""
        draw = keras.random.uniform((batch,), seed=self.seed_generator)
        room = image_size - crop_size
        random_offset = ops.minimum(ops.floor(draw * (room + 1.0)), room)
        return ops.where(found, random_offset, ops.floor(room / 2.0))

    def call(self, images, training=True):
        images = ops.convert_to_tensor(images)
        single = len(images.shape) == 3
        if single:
            images = ops.expand_dims(images, 0)
        images = ops.cast(images, "float32")
        if training:
            images = self._crop(images, self.get_random_transformation(images))
        if tuple(images.shape[1:3]) != (self.height, self.width):
            images = ops.image.resize(
                images, (self.height, self.width), interpolation=self.interpolation,
                antialias=True, crop_to_aspect_ratio=not training,
            )
        images = ops.cast(images, self.compute_dtype)
        return images[0] if single else images

    def _crop(self, images, crop):
        """Zoom each image onto its crop with one affine transform (output size = input size)."""
        shape = ops.shape(images)
        scale_y = crop["height"] / ops.cast(shape[1], "float32")
        scale_x = crop["width"] / ops.cast(shape[2], "float32")
        zeros = ops.zeros_like(scale_x)
        # Output pixel (x, y) samples input (left + (x + 0.5) * scale_x - 0.5, ...).
        transform = ops.stack(
            [
                scale_x, zeros, crop["left"] + 0.5 * (scale_x - 1.0),
                zeros, scale_y, crop["top"] + 0.5 * (scale_y - 1.0),
                zeros, zeros,
            ],
            axis=1,
        )
        return ops.image.affine_transform(
            images, transform, interpolation=self.interpolation, fill_mode="nearest",
            data_format="channels_last",
        )

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-3], self.height, self.width, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            height=self.height,
            width=self.width,
            scale=list(self.scale),
            ratio=list(self.ratio),
            interpolation=self.interpolation,
            seed=self.seed,
        )
        return config


def _check_range(name: str, value, upper: float | None = None) -> tuple:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (min, max), got {value!r}") from None
    if not 0.0 < low <= high or (upper is not None and high > upper):
        limit = f" <= {upper}" if upper is not None else ""
        raise ValueError(f"{name} must satisfy 0 < min <= max{limit}, got {value!r}")
    return (low, high)


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
    - ``"light"``: horizontal flip, translation by up to 10%.
    - ``"standard"``: `RandomResizedCrop` (35-100% of the area), horizontal flip, rotation by
      up to 15 degrees, brightness (additive, up to 20% of the range), contrast (x0.8-1.2) and,
      for RGB, saturation (about x0.8-1.2): the course's Listing 6.
    - ``"strong"``: `RandomResizedCrop` (8-100%), flip, rotation 15 degrees, translation 10%,
      color 0.4, and RandomErasing (Zhong et al., AAAI 2020) with probability 0.25.

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
    seeds = iter(range(seed, seed + 100))
    result = []
    if "crop_scale" in options:
        height, width = _size(image_size, augment)
        result.append(RandomResizedCrop(
            height, width, scale=options["crop_scale"], seed=next(seeds),
            name="augment_random_resized_crop", dtype=dtype,
        ))
    if options.get("flip"):
        result.append(layers.RandomFlip(
            "horizontal", seed=next(seeds), name="augment_flip", dtype=dtype
        ))
    if options.get("rotation"):
        result.append(layers.RandomRotation(
            options["rotation"] / 360.0, fill_mode="constant", seed=next(seeds),
            name="augment_rotation", dtype=dtype,
        ))
    if options.get("translation"):
        result.append(layers.RandomTranslation(
            options["translation"], options["translation"], fill_mode="constant",
            seed=next(seeds), name="augment_translation", dtype=dtype,
        ))
    if options.get("color"):
        result += _color_layers(options["color"], channels, value_range, seeds, dtype)
    if options.get("erasing"):
        result.append(layers.RandomErasing(
            factor=(options["erasing"], options["erasing"]), value_range=value_range,
            seed=next(seeds), name="augment_erasing", dtype=dtype,
        ))
    return result


def _color_layers(strength: float, channels: int, value_range, seeds, dtype) -> list:
    """Brightness, contrast and (RGB) saturation jitter of ``strength`` (torchvision's
    ``ColorJitter(brightness, contrast, saturation)`` with Keras layers)."""
    color = [
        layers.RandomBrightness(
            strength, value_range=value_range, seed=next(seeds), name="augment_brightness",
            dtype=dtype,
        ),
        layers.RandomContrast(
            strength, value_range=value_range, seed=next(seeds), name="augment_contrast",
            dtype=dtype,
        ),
    ]
    if channels == 3:
        # Keras's saturation factor f scales saturation by f / (1 - f): 0.5 leaves it unchanged.
        low, high = (1.0 - strength) / (2.0 - strength), (1.0 + strength) / (2.0 + strength)
        color.append(layers.RandomSaturation(
            (low, high), value_range=value_range, seed=next(seeds), name="augment_saturation",
            dtype=dtype,
        ))
    return color


def _size(image_size, augment) -> tuple:
    if image_size is None:
        raise ValueError(
            f"augment={augment!r} needs image_size=(height, width) for its RandomResizedCrop"
        )
    return check_image_size(image_size)


def label_mixing(
    mixup: float | None = None, cutmix: float | None = None, seed: int = 0, dtype=None
):
    """A function that mixes a batch of images and one-hot labels with MixUp and/or CutMix.

    MixUp (Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018) blends pairs of
    images and their labels with a weight drawn from Beta(alpha, alpha); CutMix (Yun et al.,
    ICCV 2019) pastes a box of one image into another and mixes the labels by area. With both,
    each batch gets one of the two at random, as timm does. Keras's ``MixUp`` and ``CutMix``
    layers do the work.

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
        mixers.append(layers.MixUp(
            alpha=float(mixup), seed=seed, name="augment_mixup", dtype=dtype
        ))
    if cutmix is not None:
        alpha = float(cutmix)
        mixers.append(layers.CutMix(
            factor=(alpha, alpha), seed=seed + 1, name="augment_cutmix", dtype=dtype
        ))
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
