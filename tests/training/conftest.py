"""Small learnable data for the training tests, and a helper to run training in a subprocess."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# `train` arguments that keep a test run small and quiet: float32, no logs, no progress.
FAST = dict(batch_size=30, tensorboard=False, verbose=0, precision="float32")


@pytest.fixture(autouse=True)
def fresh_keras_session():
    """The root conftest's fresh Keras session without its full garbage collection (0.4 s a
    test once TensorFlow is loaded), which these tests do not need."""
    keras.utils.clear_session(free_memory=False)
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")
    keras.utils.clear_session(free_memory=False)


def patterns(count: int, seed: int, size: int = 16):
    """``count`` uint8 ``(size, size, 1)`` images of 3 classes a CNN learns in a few steps: a
    bright square top-left (0), bottom-right (1), or a bright horizontal bar (2), on noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 3
    images = rng.integers(0, 60, (count, size, size, 1)).astype(np.uint8)
    half = size // 2
    for image, label in zip(images, labels):
        if label == 0:
            image[1 : half - 1, 1 : half - 1] = 220
        elif label == 1:
            image[half + 1 : -1, half + 1 : -1] = 220
        else:
            image[half - 1 : half + 1, :] = 220
    return images, labels.astype(np.int64)


@pytest.fixture
def pattern_data():
    """``((x_train, y_train), (x_test, y_test))``: 120 training and 30 test pattern images."""
    return patterns(120, 0), patterns(30, 1)


def run_python(code: str, *args: str, env=None, timeout: float = 300, check: bool = True):
    """Run ``code`` in a fresh Python process from the repository root; return it finished."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    process = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and process.returncode != 0:
        raise AssertionError(f"subprocess failed ({process.returncode}):\n{process.stderr[-4000:]}")
    return process
