"""Targeted dropout (`TargetedDropout`): a ``Dense`` layer that, in training, drops some of its
own lowest-magnitude weights, so the trained network does without them and they can be pruned.

Written with ``keras`` and ``keras.ops`` only, so it runs on every Keras backend.
"""

from __future__ import annotations

import keras
from keras import ops

from kcnn import checks

__all__ = ["TargetedDropout"]

VARIANTS = ("weight", "unit")


@keras.saving.register_keras_serializable(package="kcnn")
class TargetedDropout(keras.layers.Dense):
    """A ``keras.layers.Dense`` trained with targeted dropout (Gomez, Zhang, Kamalakara, Madaan,
    Swersky, Gal & Hinton, "Learning Sparse Networks Using Targeted Dropout", 2019).

    At each training step, before the product with the inputs:

    - ``variant="weight"``: in each unit's column of the kernel, the ``targ_rate`` fraction of
      weights with the smallest magnitude (the paper's gamma) are targeted, and each targeted
      weight is dropped (set to 0) with probability ``drop_rate`` (the paper's alpha);
    - ``variant="unit"``: the ``targ_rate`` fraction of units whose kernel column has the
      smallest L2 norm are targeted, and each targeted unit's whole column is dropped with
      probability ``drop_rate``.

    The targeted set is recomputed from the current weights at every step, and one mask is drawn
    per step for the whole batch, as in the paper's code. The weights kept are not rescaled
    (also as in the paper): the network learns to work without its weakest weights, which is
    what pruning them afterwards needs. Biases are never dropped. At inference the layer is a
    plain ``Dense``, every weight included. The number of targets is ``round(targ_rate * n)``
    (``n`` the inputs per unit, or the units), ties at the threshold included.

    It takes the arguments of ``keras.layers.Dense`` and is one in every other respect, so
    `kcnn.training.regularize_kernels`, `kcnn.training.kernel_sparsity` and `kcnn.convmath`
    treat it as one.

    Args:
        units: the number of output units, >= 1.
        drop_rate: probability in [0, 1] that a targeted weight (or unit) is dropped.
        targ_rate: fraction in [0, 1] of the weights of each unit (or of the units) targeted.
        variant: ``"weight"`` or ``"unit"``.
        seed: optional integer seed of the dropout masks.
        activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
            bias_regularizer, kernel_constraint, bias_constraint: as ``keras.layers.Dense``.
        **kwargs: a layer's arguments (``name``, ``dtype``, ``activity_regularizer``...).

    Raises:
        ValueError: for ``units`` below 1, a rate outside [0, 1], or an unknown ``variant``.

    Example:
        >>> x = TargetedDropout(128, drop_rate=0.5, targ_rate=0.5, activation="relu")(x)
    """

    def __init__(
        self,
        units: int,
        drop_rate: float = 0.5,
        targ_rate: float = 0.5,
        variant: str = "weight",
        seed: int | None = None,
        activation=None,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(
            checks.positive_int("units", units),
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
            **kwargs,
        )
        self.drop_rate = checks.probability("drop_rate", drop_rate)
        self.targ_rate = checks.probability("targ_rate", targ_rate)
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.variant = variant
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def targeted_count(self) -> int:
        """How many weights of each unit (``"weight"``) or how many units (``"unit"``) are
        targeted: ``round(targ_rate * n)``."""
        n = self.kernel.shape[0] if self.variant == "weight" else self.units
        return int(round(self.targ_rate * n))

    def dropped(self, kernel):
        """A new boolean mask of the weights dropped at this step: shaped like the kernel
        (``"weight"``), or ``(1, units)``, one value per unit's column (``"unit"``)."""
        count = self.targeted_count()
        if self.variant == "weight":
            magnitude = ops.abs(kernel)
            threshold = ops.sort(magnitude, axis=0)[count - 1]
            targeted = magnitude <= threshold[None, :]
            draw_shape = ops.shape(kernel)
        else:
            magnitude = ops.sqrt(ops.sum(ops.square(kernel), axis=0))
            threshold = ops.sort(magnitude)[count - 1]
            targeted = (magnitude <= threshold)[None, :]
            draw_shape = (1, self.units)
        chosen = keras.random.uniform(draw_shape, seed=self.seed_generator) < self.drop_rate
        return ops.logical_and(targeted, chosen)

    def call(self, inputs, training=None):
        if not training or self.drop_rate == 0.0 or self.targeted_count() == 0:
            return super().call(inputs)
        kernel = ops.convert_to_tensor(self.kernel)
        kernel = ops.where(self.dropped(kernel), ops.zeros_like(kernel), kernel)
        x = ops.matmul(inputs, kernel)
        if self.bias is not None:
            x = ops.add(x, self.bias)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def get_config(self):
        return {
            **super().get_config(),
            "drop_rate": self.drop_rate,
            "targ_rate": self.targ_rate,
            "variant": self.variant,
            "seed": self.seed,
        }
