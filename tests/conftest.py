"""Shared test set-up: quiet TensorFlow, a fresh Keras session per test, reproducible seeds."""

import os

from tests.xla import QUICK_COMPILE_FLAGS, share_compilation_cache

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
share_compilation_cache()  # before JAX starts, here or in a subprocess
if os.environ.get("KERAS_BACKEND") == "jax":
    os.environ.setdefault("XLA_FLAGS", QUICK_COMPILE_FLAGS)

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_keras_session():
    # free_memory=False: the gc.collect() it would add costs about 0.3 s per call once
    # TensorFlow is loaded, and reference counting frees the models of one test anyway.
    keras.utils.clear_session(free_memory=False)
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")
    keras.utils.clear_session(free_memory=False)
