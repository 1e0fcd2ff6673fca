"""Which pixels a CNN's decision rests on: the Grad-CAM family and gradient saliency.

Every method takes a batch of images (N, H, W, C), as the model takes them, and returns float32
maps (N, H, W) in [0, 1]: each map divided by its maximum, a map that is zero everywhere left at
zero. The class explained is ``class_index`` (one for all images, or one per image) or else the
class the model predicts for each image. Class scores are logits, read before any softmax (see
`kcnn.viz.graph`). The methods work on kcnn models, Sequential models, Keras Applications and
transfer models whose backbone is a nested sub-model.

The gradient methods (grad_cam, grad_cam_plus_plus, saliency, smooth_grad) take gradients with
``tf.GradientTape`` and so need the TensorFlow backend; score_cam uses forward passes only and
runs on every backend.
"""

from __future__ import annotations

import keras
import numpy as np

from kcnn import checks
from kcnn.viz.graph import (
    batches,
    check_images,
    feature_layer,
    score_source,
    tapped_model,
    to_numpy,
)


def _tensorflow():
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            f"gradient explanations use tf.GradientTape and need the TensorFlow backend "
            f"(KERAS_BACKEND=tensorflow); this process uses {backend!r}. score_cam works on every "
            "backend"
        )
    import tensorflow as tf

    return tf


def _check_class_index(class_index, count: int, classes: int):
    """``class_index`` as one int64 class per image, or None for the predicted classes."""
    if class_index is None:
        return None
    array = np.asarray(class_index)
    if array.ndim == 0:
        array = np.full(count, array)
    if (
        array.shape != (count,)
        or not np.issubdtype(array.dtype, np.integer)
        or array.min() < 0
        or array.max() >= classes
    ):
        raise ValueError(
            f"class_index must be None, an integer in [0, {classes}) or a sequence of {count} "
            f"such integers (one per image), got {class_index!r}"
        )
    return array.astype("int64")


class _Explained:
    """A checked batch of images, the model re-wired to read ``layer`` and the logits, and the
    classes asked for (None: the predicted ones)."""

    def __init__(self, model, images, class_index, layer=None, with_features=True):
        self.images = check_images(model, images)
        self.source = score_source(model)
        self.classes = _check_class_index(
            class_index, len(self.images), int(model.outputs[0].shape[-1])
        )
        taps = [self.source.tap]
        if with_features:
            self.layer = feature_layer(model, layer)
            taps.insert(0, (self.layer, "output"))
        self.model = tapped_model(model, taps)

    def forward(self, images):
        """``(feature maps or None, logits)`` of a batch, float32 tensors."""
        outputs = self.model(images, training=False)
        features = outputs[1] if len(outputs) == 3 else None
        return features, self.source.logits(outputs[-1])

    def predicted_or_asked(self, batch_size):
        """One class per image: the one asked for, or the model's prediction."""
        if self.classes is not None:
            return self.classes
        return np.concatenate(
            [
                np.argmax(to_numpy(self.forward(self.images[part])[1]), axis=-1)
                for part in batches(len(self.images), batch_size)
            ]
        )


def _selected_scores(tf, logits, classes):
    """Sum over the batch of each image's logit for its class (argmax when ``classes`` is None);
    images do not interact, so its gradient holds every image's own gradient."""
    if classes is None:
        classes = tf.argmax(logits, axis=-1)
    return tf.reduce_sum(tf.gather(logits, classes, batch_dims=1))


def _feature_gradients(explained, batch_size):
    """Feature maps A and gradients dS/dA of the class logit S, both (N, h, w, K) float32."""
    tf = _tensorflow()
    features, gradients = [], []
    for part in batches(len(explained.images), batch_size):
        classes = None if explained.classes is None else explained.classes[part]
        with tf.GradientTape() as tape:
            maps, logits = explained.forward(explained.images[part])
            score = _selected_scores(tf, logits, classes)
        gradient = tape.gradient(score, maps)
        if gradient is None:
            raise ValueError(
                f"the class scores do not depend on layer {explained.layer.name!r}; choose a layer "
                "on the path from the input to the classifier"
            )
        features.append(to_numpy(maps))
        gradients.append(to_numpy(gradient))
    return np.concatenate(features), np.concatenate(gradients)


def _input_gradients(explained, images, classes, batch_size):
    """Gradients of each image's class logit with respect to its pixels, (N, H, W, C)."""
    tf = _tensorflow()
    gradients = []
    for part in batches(len(images), batch_size):
        x = tf.convert_to_tensor(images[part])
        with tf.GradientTape() as tape:
            tape.watch(x)
            _, logits = explained.forward(x)
            score = _selected_scores(tf, logits, None if classes is None else classes[part])
        gradients.append(to_numpy(tape.gradient(score, x)))
    return np.concatenate(gradients)


def _resize(maps, size):
    """Bilinear resize of (N, h, w, K) maps to ``size`` = (H, W)."""
    if tuple(maps.shape[1:3]) == tuple(size):
        return maps
    return to_numpy(keras.ops.image.resize(maps, size, interpolation="bilinear"))


def _to_images(cams, images):
    """(N, h, w) maps upsampled to the images' size and divided by their maximum."""
    maps = _resize(cams[..., None].astype("float32"), images.shape[1:3])[..., 0]
    maps = np.maximum(maps, 0)
    peak = maps.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, maps / np.where(peak > 0, peak, 1), 0).astype("float32")


def _weighted_sum(features, weights):
    """ReLU(sum_k w_k A_k) of (N, h, w, K) maps with (N, K) or (N, 1, 1, K) weights."""
    weights = weights.reshape(len(features), 1, 1, -1)
    return np.maximum((features * weights).sum(axis=-1), 0)


def grad_cam(model, images, class_index=None, layer=None, batch_size: int = 32) -> np.ndarray:
    """Grad-CAM (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
    Gradient-based Localization", ICCV 2017).

    The gradients of the class logit are taken with respect to the feature maps A of the last
    convolutional layer (not the input, as the course's simplified Listing 9 does); each channel
    is weighted by its global-average-pooled gradient, the weighted sum goes through a ReLU and
    is upsampled (bilinear) to the image.

    Args:
        model: a kcnn, Sequential, Keras Applications or transfer (nested backbone) model with a
            classifier head.
        images: float array (N, H, W, C), preprocessed as the model takes it.
        class_index: None (each image's predicted class), an int, or one int per image.
        layer: name of the feature-map layer; default the model's recorded Grad-CAM target
            (`kcnn.models.gradcam_layer`). Layers of nested models are found by name.
        batch_size: images per forward/backward pass.

    Returns:
        float32 array (N, H, W) in [0, 1].

    Raises:
        ValueError: for a bad batch or class_index, or a layer name that is not a convolutional
            layer of the model (the message lists those it has).
        RuntimeError: on a Keras backend other than TensorFlow.

    Example:
        >>> maps = grad_cam(model, x_test[:8])
        >>> figure = plot_explanations(x_test[:8], maps)
    """
    explained = _Explained(model, images, class_index, layer)
    features, gradients = _feature_gradients(explained, batch_size)
    return _to_images(_weighted_sum(features, gradients.mean(axis=(1, 2))), explained.images)


def grad_cam_plus_plus(
    model, images, class_index=None, layer=None, batch_size: int = 32
) -> np.ndarray:
    """Grad-CAM++ (Chattopadhay, Sarkar, Howlader & Balasubramanian, "Grad-CAM++: Improved
    Visual Explanations for Deep Convolutional Networks", WACV 2018).

    Like `grad_cam`, but each channel's weight sums the positive gradients with pixel-wise
    coefficients alpha = g^2 / (2 g^2 + sum(A) g^3) (the paper's closed form for an exponential
    score, where higher derivatives are powers of the first), which gives several instances of
    a class their own share of the map. Arguments, returns and errors as in `grad_cam`.
    """
    explained = _Explained(model, images, class_index, layer)
    features, gradients = _feature_gradients(explained, batch_size)
    squared = gradients**2
    denominator = 2 * squared + features.sum(axis=(1, 2), keepdims=True) * squared * gradients
    alpha = np.where(gradients != 0, squared / np.where(denominator != 0, denominator, 1), 0)
    weights = (alpha * np.maximum(gradients, 0)).sum(axis=(1, 2))
    return _to_images(_weighted_sum(features, weights), explained.images)


def _probabilities(logits):
    """Softmax over the classes, or the sigmoid of a single-unit head."""
    if logits.shape[-1] == 1:
        return 1 / (1 + np.exp(-logits))
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def score_cam(model, images, class_index=None, layer=None, batch_size: int = 32) -> np.ndarray:
    """Score-CAM (Wang et al., "Score-CAM: Score-Weighted Visual Explanations for Convolutional
    Neural Networks", CVPR Workshops 2020).

    No gradients: each channel of the feature maps, upsampled and scaled to [0, 1], masks the
    image, and the class probability the model gives the masked image is that channel's weight
    (channels that are constant get weight 0, as in the authors' code). It costs one forward pass
    per channel and image, done ``batch_size`` channels at a time. Arguments, returns and errors
    as in `grad_cam`; it runs on every Keras backend.
    """
    explained = _Explained(model, images, class_index, layer)
    classes = explained.predicted_or_asked(batch_size)
    cams = []
    for image, target in zip(explained.images, classes):
        maps, _ = explained.forward(image[None])
        maps = to_numpy(maps)
        cams.append(_weighted_sum(maps, _score_weights(explained, image, maps, target, batch_size)))
    return _to_images(np.concatenate(cams), explained.images)


def _score_weights(explained, image, maps, target, batch_size):
    channels = maps.shape[-1]
    weights = np.zeros(channels, dtype="float32")
    for part in batches(channels, batch_size):
        masks = _resize(maps[:, :, :, part], image.shape[:2])[0]
        low, high = masks.min(axis=(0, 1)), masks.max(axis=(0, 1))
        spread = high - low
        masks = (masks - low) / np.where(spread > 0, spread, 1)
        masked = image[None] * np.moveaxis(masks, -1, 0)[..., None]
        _, logits = explained.forward(masked)
        probability = _probabilities(to_numpy(logits))[:, target]
        weights[part] = np.where(spread > 0, probability, 0)
    return weights[None]


def saliency(model, images, class_index=None, batch_size: int = 32) -> np.ndarray:
    """Vanilla gradient saliency (Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional
    Networks: Visualising Image Classification Models and Saliency Maps", ICLR Workshop 2014):
    the absolute gradient of the class logit with respect to each pixel, maximum over channels.

    Arguments, returns and errors as in `grad_cam` (there is no layer: it is the input).
    """
    explained = _Explained(model, images, class_index, with_features=False)
    gradients = _input_gradients(explained, explained.images, explained.classes, batch_size)
    return _to_images(np.abs(gradients).max(axis=-1), explained.images)


def smooth_grad(
    model,
    images,
    class_index=None,
    samples: int = 25,
    noise: float = 0.15,
    seed: int | None = 0,
    batch_size: int = 32,
) -> np.ndarray:
    """SmoothGrad (Smilkov, Thorat, Kim, Viégas & Wattenberg, "SmoothGrad: removing noise by
    adding noise", ICML Workshop 2017): the `saliency` map averaged over ``samples`` copies of
    each image with Gaussian noise of standard deviation ``noise`` times the image's value range
    (the paper finds 10-20% and 50 samples work well; 25 halves the cost for a similar map).

    The class explained is the one asked for or predicted on the clean image. Other arguments,
    returns and errors as in `saliency`; ``seed`` fixes the noise (None: a fresh one).
    """
    samples = checks.positive_int("samples", samples)
    noise = checks.non_negative_number("noise", noise)
    explained = _Explained(model, images, class_index, with_features=False)
    images = explained.images
    classes = explained.predicted_or_asked(batch_size)
    rng = np.random.default_rng(seed)
    sigma = noise * (images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3)))
    total = np.zeros(images.shape[:3], dtype="float32")
    for _ in range(samples):
        noise_draw = rng.normal(size=images.shape).astype("float32")
        noisy = images + noise_draw * sigma[:, None, None, None]
        total += np.abs(_input_gradients(explained, noisy, classes, batch_size)).max(axis=-1)
    return _to_images(total / samples, images)


def pointing_game(maps, boxes, tolerance: int = 0) -> float:
    """The pointing game (Zhang, Lin, Brandt, Shen & Sclaroff, "Top-down Neural Attention by
    Excitation Backprop", ECCV 2016): the fraction of maps whose maximum lies on the object.

    Args:
        maps: array (N, H, W), e.g. from `grad_cam`.
        boxes: integer array (N, 4) of ``(top, left, bottom, right)`` pixel bounds of each
            object, bottom and right excluded (``image[top:bottom, left:right]``).
        tolerance: pixels the box is grown by on every side (Zhang et al. use 15 on 224-pixel
            images).

    Returns:
        The hit rate in [0, 1]. A map that is zero everywhere points nowhere and is a miss.

    Raises:
        ValueError: if the shapes do not match or tolerance is negative.
    """
    maps = np.asarray(maps, dtype="float32")
    boxes = np.asarray(boxes)
    if maps.ndim != 3 or boxes.shape != (len(maps), 4):
        raise ValueError(
            f"maps must be (N, H, W) and boxes (N, 4); got shapes {maps.shape} and {boxes.shape}"
        )
    tolerance = checks.integer("tolerance", tolerance, low=0)
    flat = maps.reshape(len(maps), -1).argmax(axis=1)
    rows, cols = np.unravel_index(flat, maps.shape[1:])
    top, left, bottom, right = boxes.T
    inside = (
        (rows >= top - tolerance)
        & (rows < bottom + tolerance)
        & (cols >= left - tolerance)
        & (cols < right + tolerance)
    )
    hits = inside & (maps.max(axis=(1, 2)) > 0)
    return float(hits.mean())
