"""The kernel penalty of kcnn's composite layers (`ResidualBlock`, `SqueezeExcite`, `CBAM`...):
one regularizer, their ``kernel_regularizer``, that such a layer gives every kernel inside it and
saves in its config, so a reloaded model is penalised as the saved one was."""

from __future__ import annotations

import keras

from kcnn.errors import UserError


def check_kernel_regularizer(value):
    """``value`` as a Keras regularizer: None, a name (``"l1"``, ``"l2"``, ``"l1_l2"``), a
    saved config, or a ``keras.regularizers.Regularizer``.

    Raises:
        kcnn.errors.UserError: naming ``kernel_regularizer``, for anything else.
    """
    try:
        return keras.regularizers.get(value)
    except (ValueError, TypeError) as error:
        raise UserError(
            "kernel_regularizer must be None, 'l1', 'l2', 'l1_l2' or a "
            f"keras.regularizers.Regularizer, got {value!r}",
            argument="kernel_regularizer",
        ) from error
