"""Dropout layers Keras does not have: stochastic depth (`DropPath`).

Written with ``keras`` and ``keras.ops`` only, so they run on every Keras backend.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from kcnn import checks

__all__ = ["DropPath"]


@keras.saving.register_keras_serializable(package="kcnn")
class DropPath(layers.Layer):
    """Stochastic depth (Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016).

    In training, drops the whole input of a sample (a residual branch) with probability ``rate``
    and scales the kept ones by ``1 / (1 - rate)``; at inference it is the identity.

    Args:
        rate: drop probability in [0, 1).
        seed: optional integer seed of the random mask.
    """

    def __init__(self, rate: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = checks.fraction("rate", rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        noise_shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        return keras.random.dropout(
            inputs, self.rate, noise_shape=noise_shape, seed=self.seed_generator
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
