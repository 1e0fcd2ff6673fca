"""Builder options written on a command line as ``KEY=VALUE``.

The ``kcnn`` command's ``--model-option``, ``--backbone-option`` and ``--fix`` flags, and the
experiments' flags of the same names, pass builder arguments and hyperparameters as text; this
module reads them into Python values. It is kept apart from `kcnn.cli` so that scripts read their
flags the way the command does without importing the command.

Example:
    >>> parse_options(["stem=cifar", "width=0.5", "depths=(2, 2)"])
    {'stem': 'cifar', 'width': 0.5, 'depths': (2, 2)}
"""

from __future__ import annotations

import ast

from kcnn.errors import UserError


def parse_options(pairs, flag: str = "--model-option") -> dict:
    """``{key: value}`` from ``KEY=VALUE`` strings, each value read as a Python literal
    (``0.5``, ``True``, ``"cifar"``, ``(3, 3)``) or else kept as text.

    Args:
        pairs: the strings, one per flag given (None or empty: no options).
        flag: the flag they came from, for the error message.

    Returns:
        The options, in the order given (a key given twice keeps its last value).

    Raises:
        UserError: for a string without ``=`` or without a key; the message names ``flag``.
    """
    options = {}
    for pair in pairs or ():
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag} must be KEY=VALUE, got {pair!r}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        options[key.strip()] = value
    return options
