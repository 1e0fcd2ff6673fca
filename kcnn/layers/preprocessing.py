"""Preprocessing layers Keras lacks: `RandomResizedCrop` (augmentation) and
`ApplicationPreprocessing` (a Keras Applications backbone's ``preprocess_input`` inside a model).

They are used by `kcnn.data.augment` and `kcnn.transfer` and live here, with kcnn's other
saveable layers, so that registering kcnn's layers imports neither the data pipelines nor the
transfer module. ``keras`` and ``keras.ops`` only (no TensorFlow import), so they run inside
models on every Keras backend.
"""

from __future__ import annotations

import importlib
import math

import keras
from keras import layers, ops

from kcnn import checks

__all__ = ["ApplicationPreprocessing", "RandomResizedCrop", "keras_application"]

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
        height = ops.where(too_narrow, ops.round(image_width / self.ratio[0]), image_height)
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
                images,
                (self.height, self.width),
                interpolation=self.interpolation,
                antialias=True,
                crop_to_aspect_ratio=not training,
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
                scale_x,
                zeros,
                crop["left"] + 0.5 * (scale_x - 1.0),
                zeros,
                scale_y,
                crop["top"] + 0.5 * (scale_y - 1.0),
                zeros,
                zeros,
            ],
            axis=1,
        )
        return ops.image.affine_transform(
            images,
            transform,
            interpolation=self.interpolation,
            fill_mode="nearest",
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


def keras_application(name: str):
    """The Keras Applications constructor called ``name`` (``"ResNet50"``), or None."""
    if not isinstance(name, str) or not name[:1].isupper():
        return None
    constructor = getattr(keras.applications, name, None)
    return constructor if callable(constructor) else None


def preprocess_function(application: str):
    """``preprocess_input`` of the Keras Applications module that defines ``application``."""
    constructor = keras_application(application)
    if constructor is None:
        raise ValueError(
            f"application must be a Keras Applications model name such as 'ResNet50', "
            f"got {application!r}"
        )
    return importlib.import_module(constructor.__module__).preprocess_input


@keras.saving.register_keras_serializable(package="kcnn")
class ApplicationPreprocessing(layers.Layer):
    """The ``preprocess_input`` of a Keras Applications backbone, as a layer of the model.

    It takes RGB pixels in [0, 255] and gives what the backbone's ImageNet weights expect: BGR
    minus the ImageNet mean for VGG and ResNet, [-1, 1] for MobileNetV2 and ResNetV2, the
    ImageNet mean and std for DenseNet; it is the identity for EfficientNet(V2), ConvNeXt and
    MobileNetV3, which rescale inside the model (so pixels are never rescaled twice). It computes
    in float32 under mixed precision. Keras has no such layer: the guide applies the function
    in the input pipeline, where a saved model forgets it.

    Args:
        application: the Keras Applications model name, e.g. ``"ResNet50"``.
    """

    def __init__(self, application: str, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self._preprocess = preprocess_function(application)
        self.application = application

    def call(self, inputs):
        return self._preprocess(ops.cast(inputs, self.compute_dtype))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "application": self.application}
