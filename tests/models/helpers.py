"""Helpers of the model tests that work on every Keras backend (no TensorFlow import)."""

import os

import keras
import numpy as np
import pytest

import kcnn

# Full-size parameter counts: a model's weights and their shapes come from the same Python on
# every backend, and building a full-size model takes seconds (several times longer on JAX than
# on TensorFlow), so the counts against published references are checked on TensorFlow alone.
COUNTED_ON_TENSORFLOW = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="full-size parameter counts are the same on every backend: checked on TensorFlow",
)

# A test whose subprocess chooses its backend (JAX, TensorFlow blocked) does the same work in
# either pass of make test: it runs in the TensorFlow pass.
SUBPROCESS_ON_JAX = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="its subprocess runs on JAX whatever the backend here: run in the TensorFlow pass",
)

# Small configurations per family, so every registered model trains a step in about a second.
SMALL = {
    "alexnet": dict(input_shape=(67, 67, 3), fc_units=32),
    "vgg": dict(input_shape=(32, 32, 3), fc_units=32),
    "resnet": dict(input_shape=(32, 32, 3), width=0.25),
    "resnext": dict(input_shape=(32, 32, 3), width=0.25),
    "wide_resnet": dict(input_shape=(32, 32, 3), width=0.125),
    "mobilenet": dict(input_shape=(32, 32, 3), alpha=0.25),
    "efficientnet": dict(input_shape=(32, 32, 3), width=0.25, depth=0.4),
    "densenet": dict(input_shape=(32, 32, 3), growth_rate=4, blocks=(2, 2, 2, 2)),
    "inception": dict(input_shape=(75, 75, 3), width=0.125),
}
SMALL_CLASSES = 7

# Registered models that only scale another one's depth or width: the same layers and blocks.
SCALED_VARIANTS = frozenset(
    {
        "efficientnet_b1",
        "efficientnet_b2",
        "efficientnet_b3",
        "resnet34",
        "resnet101",
        "resnet152",
        "vgg13",
        "vgg16",
        "vgg19",
    }
)


def distinct_models():
    """The registered models less the scaled variants, whose layers and blocks the others
    hold; every model with ``KCNN_EXHAUSTIVE=1``. For checks that depend on the kinds of layer
    a model holds (a forward pass, gradients, saving, a backend, an export format), not on its
    depth or width."""
    names = kcnn.list_models()
    if os.environ.get("KCNN_EXHAUSTIVE"):
        return names
    return [name for name in names if name not in SCALED_VARIANTS]


def models_under_test():
    """The registered models the tests of a model's structure (its layers' names, the
    registry's facts) run on: every one on TensorFlow, the default backend; the distinct ones
    on another backend, where building the deep variants would take most of the run and
    exercise no layer the others do not."""
    if keras.backend.backend() == "tensorflow":
        return kcnn.list_models()
    return distinct_models()


def small_kwargs(name, **overrides):
    """Keyword arguments that build ``name`` small: few classes, small input, thin layers."""
    info = kcnn.model_info(name)
    kwargs = dict(classes=SMALL_CLASSES, **SMALL.get(info.family, {}))
    if name == "tiny_vgg":
        kwargs.pop("input_shape")
    kwargs.update(overrides)
    return kwargs


def small_model(name, **overrides):
    return kcnn.create_model(name, **small_kwargs(name, **overrides))


def random_batch(model, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    shape = tuple(model.input_shape[1:])
    x = rng.uniform(0, 1, size=(batch, *shape)).astype("float32")
    y = rng.integers(0, model.output_shape[-1], size=(batch,))
    return x, y


def trainable_gradients(model, x, y):
    """Gradients of the cross-entropy with respect to every trainable variable, in order."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = keras.losses.sparse_categorical_crossentropy(y, model(x, training=True))
        return [
            np.asarray(g) if g is not None else None
            for g in tape.gradient(loss, model.trainable_variables)
        ]
    if backend == "jax":
        import jax

        def loss_fn(trainable, non_trainable):
            y_pred, _ = model.stateless_call(trainable, non_trainable, x, training=True)
            return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, y_pred))

        # Compiled once: op-by-op gradients cost about three times as long on the CPU.
        grads = jax.jit(jax.grad(loss_fn))(
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
        )
        return [np.asarray(g) for g in grads]
    raise NotImplementedError(f"no gradient helper for the {backend} backend")
