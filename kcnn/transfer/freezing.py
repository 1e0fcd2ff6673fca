"""Which layers of a transfer model train: the head, the top blocks of the backbone, or all.

The pitfall this module guards against: when a pretrained backbone with BatchNormalization is
fine-tuned, or partly frozen, its BN layers must run in inference mode, or the first fit steps
replace the moving statistics learned in pre-training with those of small batches of the new
data. The Keras guide's ``base_model(x, training=False)`` does not do it in Keras 3: ``fit``
calls the outer model with ``training=True`` and the Functional model passes that value to the
nested backbone, overriding the ``False`` (keras-team/keras#20285). What Keras 3 honours is a
BatchNormalization layer whose ``trainable`` is False: it then runs in inference mode whatever
the call says. So `set_trainable` keeps every BN layer of the backbone non-trainable (moving
statistics, gamma and beta fixed), except when the backbone is trained from scratch
(``weights=None`` with ``"finetune"``), where BN must learn.
"""

from __future__ import annotations

import math

from kcnn import checks
from kcnn.errors import UserError
from kcnn.transfer.parts import backbone_of, batchnorm_layers, blocks


def set_trainable(model, unfreeze, train_batchnorm: bool = False) -> None:
    """Make the head and the top ``unfreeze`` blocks of the backbone trainable, the rest not.

    Recompile the model afterwards (`train` does): Keras reads ``trainable`` when it compiles.

    Args:
        model: a transfer model made by `build`.
        unfreeze: ``0`` (the head only), a number of blocks counted from the top (see
            `blocks`), or ``"all"``.
        train_batchnorm: whether the backbone's BatchNormalization layers in the trainable
            blocks learn (batch statistics in training, moving averages, gamma and beta).
            Leave it False for a pretrained backbone: its BN layers then run in inference mode
            and keep their statistics (see this module's docstring); True is for training from
            scratch.

    Raises:
        ValueError: if ``unfreeze`` is not one of those, or more blocks than the backbone has.
    """
    backbone = backbone_of(model)
    groups = check_unfreeze(backbone, unfreeze)
    # A layer passes ``trainable`` down to its sublayers only when the value changes (on
    # TensorFlow, attribute tracking skips assigning the value already there), so setting True
    # on a trainable backbone would leave the blocks an earlier call froze frozen: False, then
    # True, reaches every layer.
    model.trainable = False
    model.trainable = True
    if unfreeze == 0:
        backbone.trainable = False
    elif unfreeze != "all":
        for _, block_layers in groups[: len(groups) - unfreeze]:
            for layer in block_layers:
                layer.trainable = False
    if not train_batchnorm:
        for layer in batchnorm_layers(backbone):
            layer.trainable = False


def batchnorm_trains(model) -> bool:
    """Whether a BatchNormalization layer of the transfer model's backbone is trainable (it is
    only when `build` made the backbone to be trained from scratch)."""
    return any(layer.trainable for layer in batchnorm_layers(backbone_of(model)))


def check_unfreeze(backbone, unfreeze) -> list:
    """The backbone's `blocks` (stem first), after checking that ``unfreeze`` fits them."""
    groups = blocks(backbone)
    count = len(groups) - 1
    if unfreeze != "all" and (not checks.is_integer(unfreeze) or not 0 <= unfreeze <= count):
        raise UserError(
            f"unfreeze must be 'all' or a number of blocks from 0 to {count} (backbone "
            f"{backbone.name!r} has {count} blocks), got {unfreeze!r}"
        )
    return groups


def trainable_parameters(model) -> int:
    """The number of trainable parameters of ``model`` as it is now."""
    return sum(math.prod(weight.shape) for weight in model.trainable_weights)
