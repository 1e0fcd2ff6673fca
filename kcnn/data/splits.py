"""Train / validation / test splits: the seeded, stratified hold-out used when a source has no
validation split of its own."""

from __future__ import annotations

import numpy as np

from kcnn import checks
from kcnn.data.info import SPLITS


def check_split(split, validation_split) -> float:
    """Check ``split`` and ``validation_split`` and return the latter as a float.

    Raises:
        ValueError: naming the argument, for a split not in ``("train", "validation", "test")``
            or a ``validation_split`` outside [0, 1).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return checks.fraction("validation_split", validation_split)


def stratified_split(labels, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``fraction`` of each class, chosen at random with ``seed``.

    Each class keeps at least one training example, so a class of ``n`` examples gives
    ``min(round(n * fraction), n - 1)`` of them to validation. The same labels, fraction and
    seed always give the same split.

    Args:
        labels: 1-D integer labels of the training examples.
        fraction: the share of each class to hold out, in [0, 1).
        seed: seed of the random choice.

    Returns:
        ``(train_indices, validation_indices)``, both sorted, disjoint, covering every example.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held_out = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = min(round(len(members) * fraction), len(members) - 1)
        held_out.append(rng.permutation(members)[:count])
    validation = np.sort(np.concatenate(held_out)) if held_out else np.zeros(0, np.int64)
    train = np.setdiff1d(np.arange(len(labels)), validation, assume_unique=True)
    return train, validation


def hold_out(labels, split: str, fraction: float, seed: int, source: str) -> tuple:
    """`stratified_split` for a source with no validation split of its own.

    Returns:
        ``(train_indices, validation_indices)``.

    Raises:
        ValueError: when ``split="validation"`` is asked for with ``validation_split=0``, or
            when the split holds out no example at all (too few examples per class for the
            fraction to round to one).
    """
    if split == "validation" and fraction == 0.0:
        raise ValueError(
            f"{source} has no validation split of its own and validation_split=0: pass "
            "validation_split > 0 to hold out part of the training split"
        )
    train, validation = stratified_split(labels, fraction, seed)
    if split == "validation" and len(validation) == 0:
        raise ValueError(
            f"validation_split={fraction} holds out no image of the {len(train)} training "
            f"images of {source} (each class gives round(n * {fraction}) and keeps one): use "
            "more images, a larger validation_split, or validation_split=0"
        )
    return train, validation
