"""Small transfer models and data for the transfer tests."""

import numpy as np
import pytest

from kcnn import transfer

# A narrow TinyResNet (course Listing 4) with BatchNormalization in every block: 6 blocks, fast.
KCNN_BACKBONE = "tiny_resnet"
KCNN_OPTIONS = {"width": 0.25}
SHAPE = (32, 32, 3)


def tiny_model(strategy="frozen", weights=None, classes=3, **kwargs):
    """A transfer model on the narrow TinyResNet, 32x32 RGB."""
    return transfer.build(
        KCNN_BACKBONE,
        classes,
        strategy,
        weights=weights,
        input_shape=SHAPE,
        backbone_options=KCNN_OPTIONS,
        **kwargs,
    )


def values(variables) -> list:
    """NumPy copies of Keras variables."""
    return [np.array(variable.numpy()) for variable in variables]


def weights_of(model) -> list:
    """Copies of every weight of ``model`` (trainable and not: BN moving statistics too)."""
    return values(model.weights)


@pytest.fixture
def images():
    """16 random 32x32 RGB images with pixels in [0, 255] and labels of 3 classes."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(16, *SHAPE)).astype("float32")
    y = np.arange(16) % 3
    return x, y
