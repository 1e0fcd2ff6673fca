"""Dropout by name, and the dropout layer Keras does not have: stochastic depth (`DropPath`).

The kinds a builder takes (adding one touches this file only):

- ``"standard"``: ``keras.layers.Dropout``, each activation dropped on its own (Srivastava
  et al., JMLR 2014).
- ``"spatial"``: ``keras.layers.SpatialDropout2D``, whole channels of a feature map dropped
  (Tompson et al., CVPR 2015): neighbouring activations are correlated, so dropping them one by
  one regularizes convolutional layers little.
- ``"targeted"``: `kcnn.layers.targeted.TargetedDropout`, a Dense layer that drops its own
  lowest-magnitude weights (Gomez et al., 2019); it replaces the Dense layer it would precede.

Written with ``keras`` and ``keras.ops`` only, so they run on every Keras backend.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from kcnn import checks
from kcnn.errors import UserError
from kcnn.layers.targeted import TargetedDropout

__all__ = [
    "DROPOUTS",
    "HEAD_DROPOUTS",
    "TARGETED_FRACTION",
    "DropPath",
    "check_dropout",
    "check_head_dropout",
    "dense_with_dropout",
    "dropout_layer",
]

DROPOUTS = ("standard", "spatial", "targeted")
HEAD_DROPOUTS = ("standard", "targeted")  # the kinds that apply before a Dense layer
# The share of each unit's weights targeted dropout targets by default: half, the setting of
# Gomez et al.'s experiments; a network pruned harder needs as many of its weights targeted.
TARGETED_FRACTION = 0.5


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


def check_dropout(name: str, rate, kind_name: str, kind, kinds=DROPOUTS):
    """Check a dropout rate (argument ``name``) and its kind (argument ``kind_name``).

    Returns:
        ``(rate, kind)``, the rate as a Python ``float``.

    Raises:
        ValueError: naming ``name`` (a number in [0, 1)) or ``kind_name`` (one of ``kinds``).
    """
    return checks.fraction(name, rate), checks.choice(kind_name, kind, kinds)


def check_head_dropout(rate, kind, targeted_fraction=None):
    """Check the dropout of a builder's Dense layers: arguments ``dropout`` (the rate),
    ``dropout_kind`` (one of `HEAD_DROPOUTS`) and ``targeted_fraction`` (the share of each
    unit's weights targeted dropout targets, which only ``"targeted"`` takes; None for
    `TARGETED_FRACTION`).

    Returns:
        ``(rate, kind, targeted_fraction)``, the numbers as Python ``float``; the fraction is
        None for another kind than ``"targeted"``.

    Raises:
        UserError: naming the argument that is out of range or not a choice, or
            ``targeted_fraction`` given (any value, the default's too) with another kind than
            ``"targeted"``.
    """
    rate, kind = check_dropout("dropout", rate, "dropout_kind", kind, HEAD_DROPOUTS)
    if targeted_fraction is None:
        return rate, kind, TARGETED_FRACTION if kind == "targeted" else None
    fraction = checks.probability("targeted_fraction", targeted_fraction)
    if kind != "targeted":
        raise UserError(
            f"targeted_fraction={fraction:g} applies to dropout_kind='targeted' only, "
            f"got dropout_kind={kind!r}",
            argument="targeted_fraction",
        )
    return rate, kind, fraction


def dropout_layer(kind, rate: float, *, name: str, dtype=None):
    """The dropout layer of activations of kind ``"standard"`` or ``"spatial"``.

    Raises:
        ValueError: for another kind (``"targeted"`` drops weights: see `dense_with_dropout`)
            or a rate outside [0, 1).
    """
    rate, kind = check_dropout("rate", rate, "kind", kind, ("standard", "spatial"))
    if kind == "spatial":
        return layers.SpatialDropout2D(rate, name=name, dtype=dtype)
    return layers.Dropout(rate, name=name, dtype=dtype)


def dense_with_dropout(
    units: int,
    *,
    rate: float,
    kind: str = "standard",
    targeted_fraction: float | None = None,
    name: str,
    dropout_name: str,
    **options,
) -> list:
    """The layers of a Dense layer whose inputs get dropout, in the order to apply them.

    ``"standard"``: ``Dropout(rate)`` named ``dropout_name``, then ``Dense(units)`` named
    ``name``. ``"targeted"``: one `TargetedDropout` named ``name`` with ``drop_rate=rate``
    and ``targ_rate=targeted_fraction``, which drops weights of the Dense layer instead of its
    inputs. With ``rate=0`` both are a plain ``Dense``.

    Args:
        units: the Dense layer's units.
        rate: the dropout rate, in [0, 1).
        kind: one of `HEAD_DROPOUTS`.
        targeted_fraction: the share of each unit's weights ``"targeted"`` targets, in [0, 1]
            (None: `TARGETED_FRACTION`); pruning that share afterwards costs its network little
            (Gomez et al. 2019). Only ``"targeted"`` takes it.
        name: the Dense layer's name.
        dropout_name: the name of the ``Dropout`` layer of ``"standard"``.
        **options: ``keras.layers.Dense`` arguments (``activation``, ``dtype``...).

    Raises:
        ValueError: naming ``dropout``, ``dropout_kind`` or ``targeted_fraction``
            (see `check_head_dropout`).
    """
    rate, kind, targeted_fraction = check_head_dropout(rate, kind, targeted_fraction)
    if rate == 0:
        return [layers.Dense(units, name=name, **options)]
    if kind == "targeted":
        return [
            TargetedDropout(
                units, drop_rate=rate, targ_rate=targeted_fraction, name=name, **options
            )
        ]
    return [layers.Dropout(rate, name=dropout_name), layers.Dense(units, name=name, **options)]
