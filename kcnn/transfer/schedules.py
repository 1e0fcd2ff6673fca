"""The course's three strategies as training phases, with its learning rates.

The course (chapter 07, section 7.2) trains a new classifier on a network pretrained on another
task in one of three ways:

- ``"frozen"`` (feature extraction): the backbone is not trainable, only the new head learns.
- ``"finetune"``: everything learns, with a small learning rate (Adam 1e-4 in the course).
- ``"progressive"``: the head first (Adam 1e-3), then the top blocks of the backbone, or all of
  it, with a lower learning rate (1e-5 in the course).

`schedule` turns a strategy into a tuple of `Phase`, which `kcnn.transfer.train` runs.
"""

from __future__ import annotations

import dataclasses

from kcnn import checks
from kcnn.errors import UserError

STRATEGIES = ("frozen", "finetune", "progressive")
# The course's learning rates (chapter 07, Listing 5): the new head with Adam 1e-3, the whole
# network with 1e-4 when fine-tuning from the start, 1e-5 after the head in progressive
# fine-tuning.
HEAD_LEARNING_RATE = 1e-3
FINETUNE_LEARNING_RATE = 1e-4
PROGRESSIVE_LEARNING_RATE = 1e-5


def check_strategy(strategy) -> None:
    """Raise a UserError naming ``strategy`` unless it is one of `STRATEGIES`."""
    if strategy not in STRATEGIES:
        raise UserError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase of a transfer schedule: ``epochs`` epochs with the head and the top
    ``unfreeze`` blocks of the backbone trainable (``0``: the head only; ``"all"``: the whole
    network), at ``learning_rate``.

    Raises:
        ValueError: for ``epochs < 1``, a bad ``unfreeze`` or a learning rate that is not > 0.
    """

    epochs: int
    unfreeze: int | str
    learning_rate: float

    def __post_init__(self):
        checks.positive_int("Phase.epochs", self.epochs)
        if self.unfreeze != "all" and (not checks.is_integer(self.unfreeze) or self.unfreeze < 0):
            raise UserError(
                f"Phase.unfreeze must be 'all' or a number of blocks >= 0, got {self.unfreeze!r}"
            )
        checks.positive_number("Phase.learning_rate", self.learning_rate)


def schedule(
    strategy: str,
    epochs: int,
    *,
    learning_rate: float = HEAD_LEARNING_RATE,
    finetune_learning_rate: float | None = None,
    head_epochs: int | None = None,
    unfreeze="all",
) -> tuple[Phase, ...]:
    """The training phases of a strategy, with the course's learning rates by default.

    - ``"frozen"``: ``epochs`` epochs of the head alone at ``learning_rate`` (1e-3).
    - ``"finetune"``: ``epochs`` epochs of everything at ``finetune_learning_rate`` (1e-4).
    - ``"progressive"``: ``head_epochs`` epochs of the head alone at ``learning_rate``, then the
      rest with the top ``unfreeze`` blocks (default all) at ``finetune_learning_rate`` (1e-5).

    Args:
        strategy: ``"frozen"``, ``"finetune"`` or ``"progressive"``.
        epochs: the epochs of the whole schedule.
        learning_rate: the learning rate of the head-only phase.
        finetune_learning_rate: the learning rate when the backbone trains (default 1e-4 for
            ``"finetune"``, 1e-5 for the second phase of ``"progressive"``).
        head_epochs: ``"progressive"`` only: epochs before the switch (default half of
            ``epochs``, at least 1); the second phase starts at epoch ``head_epochs`` (counted
            from 0).
        unfreeze: ``"progressive"`` only: blocks unfrozen in the second phase, or ``"all"``.

    Returns:
        A tuple of `Phase`; pass it, or a list of your own phases, to `train`.

    Raises:
        ValueError: for an unknown strategy, ``epochs`` < 1 (< 2 for ``"progressive"``), a
            ``head_epochs`` outside [1, epochs), or options of another strategy.

    Example:
        >>> schedule("progressive", 10, head_epochs=3, unfreeze=2)
        (Phase(epochs=3, unfreeze=0, learning_rate=0.001),
         Phase(epochs=7, unfreeze=2, learning_rate=1e-05))
    """
    check_strategy(strategy)
    epochs = checks.positive_int("epochs", epochs)
    if strategy != "progressive" and (head_epochs is not None or unfreeze != "all"):
        raise UserError(
            f"head_epochs and unfreeze belong to the 'progressive' strategy, not {strategy!r}"
        )
    if strategy == "frozen":
        return (Phase(epochs, 0, learning_rate),)
    if strategy == "finetune":
        return (Phase(epochs, "all", finetune_learning_rate or FINETUNE_LEARNING_RATE),)
    if epochs < 2:
        raise UserError(f"the 'progressive' strategy needs epochs >= 2, got {epochs!r}")
    if head_epochs is None:
        head_epochs = max(1, epochs // 2)
    if not checks.is_integer(head_epochs) or not 1 <= head_epochs < epochs:
        raise UserError(f"head_epochs must be an integer in [1, {epochs}), got {head_epochs!r}")
    head_epochs = int(head_epochs)
    return (
        Phase(head_epochs, 0, learning_rate),
        Phase(epochs - head_epochs, unfreeze, finetune_learning_rate or PROGRESSIVE_LEARNING_RATE),
    )


def phases_of(strategy_or_phases, epochs) -> tuple:
    """The phases `kcnn.transfer.train` runs: a strategy's `schedule`, or the caller's own
    phases, checked (their epochs must add up to ``epochs`` when it is given)."""
    if isinstance(strategy_or_phases, str):
        if epochs is None:
            raise UserError(f"epochs is needed with strategy {strategy_or_phases!r}")
        return schedule(strategy_or_phases, epochs)
    phases = tuple(strategy_or_phases)
    if not phases or not all(isinstance(phase, Phase) for phase in phases):
        raise UserError(
            f"schedule must be a strategy name {STRATEGIES} or a sequence of Phase, got "
            f"{strategy_or_phases!r}"
        )
    total = sum(phase.epochs for phase in phases)
    if epochs is not None and epochs != total:
        raise UserError(f"epochs={epochs!r} does not match the {total} epochs of the phases")
    return phases
