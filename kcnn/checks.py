"""Argument checks shared by the whole package: one implementation of each.

Every public function of kcnn checks its arguments before doing any work, and a bad one raises a
`kcnn.errors.UserError` (a ``ValueError``) that names the argument and the value received (see
DESIGN.md); its ``argument`` attribute is that name. The checks here are those the package
needs again and again: integers and numbers within bounds.

Two rules hold everywhere:

- ``bool`` is refused where a number is expected, although Python makes it an ``int``
  (``epochs=True`` is a mistake, not one epoch).
- NumPy scalars (``np.int64``, ``np.float32``...) are accepted like Python ones, and the checks
  return Python ``int`` and ``float``, so the values stay JSON-serialisable in model configs and
  run records.

The module imports NumPy and `kcnn.errors` only (no TensorFlow, no Keras), so `kcnn.models` can
use it on any Keras backend.

Example:
    >>> from kcnn import checks
    >>> checks.positive_int("epochs", 3)
    3
    >>> checks.positive_int("epochs", 0)
    Traceback (most recent call last):
    ...
    kcnn.errors.UserError: epochs must be a positive integer, got 0
"""

from __future__ import annotations

import numpy as np

from kcnn.errors import UserError

__all__ = [
    "choice",
    "fraction",
    "integer",
    "is_integer",
    "is_number",
    "non_negative_number",
    "positive_int",
    "positive_number",
    "probability",
]


def is_integer(value) -> bool:
    """Whether ``value`` is a Python or NumPy integer (``bool`` is not).

    For checks whose error message needs more context than the functions below give (the
    bound comes from another argument, for example).
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_number(value) -> bool:
    """Whether ``value`` is a Python or NumPy integer or float (``bool`` is not)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def integer(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """Check an integer argument with optional inclusive bounds.

    Args:
        name: the argument's name, for the error message.
        value: the value received.
        low: the smallest value allowed (None: no lower bound).
        high: the largest value allowed (None: no upper bound).

    Returns:
        ``value`` as a Python ``int``.

    Raises:
        UserError: ``"{name} must be an integer >= {low}, got {value!r}"`` (or ``from {low}
            to {high}``, ``<= {high}``) for a bool, a non-integer or a value out of bounds.

    Example:
        >>> integer("stages", 3, 1, 4)
        3
    """
    if (
        not is_integer(value)
        or (low is not None and value < low)
        or (high is not None and value > high)
    ):
        if low is not None and high is not None:
            bounds = f" from {low} to {high}"
        elif low is not None:
            bounds = f" >= {low}"
        elif high is not None:
            bounds = f" <= {high}"
        else:
            bounds = ""
        raise UserError(f"{name} must be an integer{bounds}, got {value!r}", name)
    return int(value)


def positive_int(name: str, value) -> int:
    """Check a count, a size or a number of epochs: an integer >= 1.

    Returns:
        ``value`` as a Python ``int``.

    Raises:
        UserError: ``"{name} must be a positive integer, got {value!r}"``.

    Example:
        >>> positive_int("batch_size", np.int64(32))
        32
    """
    if not is_integer(value) or value < 1:
        raise UserError(f"{name} must be a positive integer, got {value!r}", name)
    return int(value)


def _number(name: str, value, inside: bool, what: str) -> float:
    """``value`` as a float when ``inside`` (it is a number within the bounds), else raise."""
    if not inside:
        raise UserError(f"{name} must be {what}, got {value!r}", name)
    return float(value)


def positive_number(name: str, value) -> float:
    """Check a number > 0 (a learning rate, a width multiplier, an alpha); NaN is refused.

    Returns:
        ``value`` as a Python ``float``.

    Raises:
        UserError: ``"{name} must be a positive number, got {value!r}"``.
    """
    return _number(name, value, is_number(value) and value > 0, "a positive number")


def non_negative_number(name: str, value) -> float:
    """Check a number >= 0 (a weight decay, a noise level); NaN is refused.

    Returns:
        ``value`` as a Python ``float``.

    Raises:
        UserError: ``"{name} must be a number >= 0, got {value!r}"``.
    """
    return _number(name, value, is_number(value) and value >= 0, "a number >= 0")


def fraction(name: str, value) -> float:
    """Check a rate in [0, 1): dropout, drop-path, momentum, a validation split.

    1 is refused: a dropout or drop-path rate of 1 drops everything, and a validation split of
    1 leaves nothing to train on.

    Returns:
        ``value`` as a Python ``float``.

    Raises:
        UserError: ``"{name} must be a number in [0, 1), got {value!r}"``.

    Example:
        >>> fraction("dropout", 0.5)
        0.5
    """
    return _number(name, value, is_number(value) and 0 <= value < 1, "a number in [0, 1)")


def probability(name: str, value) -> float:
    """Check a probability or a blending weight in [0, 1].

    Returns:
        ``value`` as a Python ``float``.

    Raises:
        UserError: ``"{name} must be a number in [0, 1], got {value!r}"``.
    """
    return _number(name, value, is_number(value) and 0 <= value <= 1, "a number in [0, 1]")


def choice(name: str, value, choices):
    """Check that ``value`` is one of ``choices`` (a kind of layer, a preset, a mode).

    Returns:
        ``value`` unchanged.

    Raises:
        UserError: ``"{name} must be one of {choices}, got {value!r}"``.

    Example:
        >>> choice("norm", "group", ("batch", "group", None))
        'group'
    """
    choices = tuple(choices)
    if (value is None or isinstance(value, str)) and value in choices:
        return value
    raise UserError(f"{name} must be one of {choices}, got {value!r}", name)
